#include "common/strings.h"

#include <gtest/gtest.h>

namespace gantry {
namespace {

TEST(StringsTest, ParseUintAcceptsOnlyWholeDecimalNumbers) {
  EXPECT_EQ(parseUint("0"), 0u);
  EXPECT_EQ(parseUint("443"), 443u);
  EXPECT_FALSE(parseUint(""));
  EXPECT_FALSE(parseUint("12a"));
  EXPECT_FALSE(parseUint("-1"));
  EXPECT_FALSE(parseUint(" 1"));
  EXPECT_FALSE(parseUint("99999999999999999999")); // overflow
}

TEST(StringsTest, TrimAndSplit) {
  EXPECT_EQ(trimOws(" \t a b \t"), "a b");
  auto parts = split("a,,b", ',');
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_EQ(parts[1], "");
  EXPECT_TRUE(iequals("Content-Length", "content-length"));
  EXPECT_FALSE(iequals("Content-Length", "content-lengt"));
}

TEST(StringsTest, IequalsFoldsLettersOnly) {
  // Against a plain per-byte lower-casing, over every pair of bytes.
  for (int x = 0; x < 256; ++x) {
    for (int y = 0; y < 256; ++y) {
      const char a[2] = {'k', static_cast<char>(x)};
      const char b[2] = {'K', static_cast<char>(y)};
      const bool want = asciiLower(static_cast<char>(x)) == asciiLower(static_cast<char>(y));
      ASSERT_EQ(iequals(std::string_view(a, 2), std::string_view(b, 2)), want) << x << " " << y;
    }
  }
  // Every pair of bytes at each place of a 17-byte string: in either 8-byte step and in the tail.
  std::string a(17, 'q');
  std::string b(17, 'Q');
  for (size_t at = 0; at < a.size(); ++at) {
    for (int x = 0; x < 256; ++x) {
      for (int y = 0; y < 256; ++y) {
        a[at] = static_cast<char>(x);
        b[at] = static_cast<char>(y);
        const bool want = asciiLower(static_cast<char>(x)) == asciiLower(static_cast<char>(y));
        ASSERT_EQ(iequals(a, b), want) << "at " << at << ": " << x << " " << y;
      }
    }
    a[at] = 'q';
    b[at] = 'Q';
  }
  EXPECT_FALSE(iequals("@", "`")); // 0x40 and 0x60 differ by the case bit but are not letters
  EXPECT_FALSE(iequals("[", "{"));
  EXPECT_TRUE(iequals("X-Request-ID", "x-request-id"));
}

TEST(StringsTest, SplitViewGivesWhatSplitGives) {
  for (std::string_view s : {"", "a", "a,,b", ",", "a,b,", ",a", "gzip, chunked"}) {
    std::vector<std::string_view> walked;
    for (auto part : SplitView(s, ',')) {
      walked.push_back(part);
    }
    EXPECT_EQ(walked, split(s, ',')) << '"' << s << '"';
  }
}

TEST(StringsTest, FormatsRfc3339InUtc) {
  EXPECT_EQ(formatRfc3339(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(formatRfc3339(1761343862), "2025-10-24T22:11:02Z");
}

} // namespace
} // namespace gantry

namespace gantry {
namespace {

TEST(StringsTest, JsonStringsEscapeWhatWouldBreakALine) {
  std::string out;
  appendJsonString(out, std::string("a\"b\\c\n\x01\xff", 8));
  EXPECT_EQ(out, "\"a\\\"b\\\\c\\u000a\\u0001\\u00ff\"");
}

} // namespace
} // namespace gantry
