#include "store/file_store.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

namespace gantry::store {
namespace {

namespace fs = std::filesystem;

class FileStoreTest : public ::testing::Test {
protected:
  void SetUp() override {
    char tmpl[] = "/tmp/gantry-store-test-XXXXXX";
    dir_ = mkdtemp(tmpl);
  }
  void TearDown() override { fs::remove_all(dir_); }
  void write(const std::string& name, const std::string& content) {
    fs::create_directories((dir_ / name).parent_path());
    std::ofstream(dir_ / name) << content;
  }
  fs::path dir_;
};

const char* kService = "apiVersion: v1\nkind: Service\nmetadata: {name: svc, namespace: app}\n"
                       "spec:\n  ports:\n  - port: 80\n";

TEST_F(FileStoreTest, ReadsNestedMultiDocumentFilesAndSkipsOthers) {
  write("a.yaml", std::string(kService) + "---\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm, namespace: app}\n");
  write("sub/b.yml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: other}\n");
  write("c.json", R"({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "app"}})");
  write("README.md", "not a manifest");
  write(".hidden.yaml", "::: not yaml");
  FileStore store(dir_.string());
  auto r = store.load(1000);
  EXPECT_TRUE(r.errors.empty());
  EXPECT_EQ(r.resources.services.size(), 1u);
  EXPECT_EQ(r.resources.configMaps.size(), 1u);
  EXPECT_EQ(r.resources.secrets.size(), 1u);
  // "other" declared, "app" implicit; both carry kubernetes.io/metadata.name.
  ASSERT_EQ(r.resources.namespaces.size(), 2u);
  for (const auto& n : r.resources.namespaces) {
    EXPECT_EQ(n.meta.labels.at("kubernetes.io/metadata.name"), n.meta.name);
  }
}

TEST_F(FileStoreTest, GenerationBumpsOnlyWhenTheSpecChanges) {
  write("svc.yaml", kService);
  FileStore store(dir_.string());
  auto first = store.load(1000);
  ASSERT_EQ(first.resources.services.at(0).meta.generation, 1);
  EXPECT_EQ(first.resources.services.at(0).meta.creationTimestamp, "1970-01-01T00:16:40Z");
  auto same = store.load(2000);
  EXPECT_EQ(same.resources.services.at(0).meta.generation, 1);
  write("svc.yaml", std::string(kService) + "  - port: 443\n");
  auto changed = store.load(3000);
  EXPECT_EQ(changed.resources.services.at(0).meta.generation, 2);
  EXPECT_EQ(changed.resources.services.at(0).meta.creationTimestamp, "1970-01-01T00:16:40Z");
}

TEST_F(FileStoreTest, ABrokenFileKeepsServingItsLastGoodVersion) {
  write("svc.yaml", kService);
  FileStore store(dir_.string());
  ASSERT_EQ(store.load(1).resources.services.size(), 1u);
  write("svc.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: svc, namespace: app}\nspec:\n  ports: [\n");
  auto r = store.load(2);
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_NE(r.errors[0].file.find("svc.yaml"), std::string::npos);
  EXPECT_GT(r.errors[0].line, 0);
  EXPECT_EQ(r.resources.services.size(), 1u) << "last good objects keep serving";
  fs::remove(dir_ / "svc.yaml");
  EXPECT_TRUE(store.load(3).resources.services.empty()) << "a deleted file's objects go away";
}

} // namespace
} // namespace gantry::store

namespace gantry::store {
namespace {

TEST_F(FileStoreTest, ImplicitNamespacesKeepTheirFirstSeenTimestamp) {
  write("svc.yaml", kService);
  FileStore store(dir_.string());
  auto first = store.load(1000);
  auto later = store.load(5000);
  ASSERT_EQ(later.resources.namespaces.size(), 1u);
  EXPECT_TRUE(later.resources.namespaces[0].implicit);
  EXPECT_EQ(later.resources.namespaces[0].meta.creationTimestamp,
            first.resources.namespaces[0].meta.creationTimestamp);
}

} // namespace
} // namespace gantry::store
