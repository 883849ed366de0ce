// Runs every file of tests/fuzz/corpus/<target>/ through its fuzz entry point: seeds and minimized
// crash reproducers stay regression tests in every build (and under ASan/UBSan in CI).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "fuzz/targets.h"

namespace {

namespace fs = std::filesystem;

void replay(const std::string& target, void (*fn)(const uint8_t*, size_t)) {
  size_t count = 0;
  for (const auto& entry : fs::directory_iterator(fs::path(FUZZ_CORPUS) / target)) {
    std::ifstream in(entry.path(), std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string bytes = ss.str();
    SCOPED_TRACE(entry.path().string());
    fn(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
    ++count;
  }
  EXPECT_GT(count, 0u) << "no corpus for " << target;
}

TEST(FuzzCorpusTest, Http1) { replay("http1", gantry::fuzz::http1); }
TEST(FuzzCorpusTest, Manifest) { replay("manifest", gantry::fuzz::manifest); }

} // namespace
