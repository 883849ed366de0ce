#include "common/yaml_out.h"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <nlohmann/json.hpp>

namespace gantry {
namespace {

TEST(YamlOutTest, PrintsLikeKubectl) {
  nlohmann::json j = {{"status", {{"conditions", {{{"type", "Accepted"}, {"status", "True"}, {"message", ""}}}}}},
                      {"metadata", {{"name", "gateway-01"}, {"generation", 1}}}};
  EXPECT_EQ(toYaml(j),
            "metadata:\n"
            "  generation: 1\n"
            "  name: gateway-01\n"
            "status:\n"
            "  conditions:\n"
            "  - message: \"\"\n"
            "    status: \"True\"\n"
            "    type: Accepted\n");
}

TEST(YamlOutTest, QuotesWhatYamlWouldMisread) {
  EXPECT_EQ(toYaml(nlohmann::json{{"t", "2023-06-19T21:04:55Z"}}), "t: \"2023-06-19T21:04:55Z\"\n");
  nlohmann::json j = {{"a", "true"}, {"b", "443"}, {"c", "127.0.0.1"}, {"d", "1.5"}, {"e", "x: y"},
                      {"f", "-dash"}, {"g", "*.example.com"}, {"h", "line\nbreak"}};
  std::string out = toYaml(j);
  EXPECT_NE(out.find("a: \"true\""), std::string::npos);
  EXPECT_NE(out.find("b: \"443\""), std::string::npos);
  EXPECT_NE(out.find("c: 127.0.0.1\n"), std::string::npos);
  EXPECT_NE(out.find("d: \"1.5\""), std::string::npos);
  // Whatever the quoting, a YAML reader gets the same strings back.
  YAML::Node back = YAML::Load(out);
  for (auto it = j.begin(); it != j.end(); ++it) {
    EXPECT_EQ(back[it.key()].as<std::string>(), it.value().get<std::string>()) << it.key();
  }
}

TEST(YamlOutTest, RoundTripsNestedListsAndEmptyCollections) {
  nlohmann::json j = {{"items", {{{"name", "a"}, {"ports", {1, 2}}}, nlohmann::json::object()}},
                      {"empty", nlohmann::json::array()}};
  YAML::Node back = YAML::Load(toYaml(j));
  EXPECT_EQ(back["items"][0]["name"].as<std::string>(), "a");
  EXPECT_EQ(back["items"][0]["ports"][1].as<int>(), 2);
  EXPECT_TRUE(back["items"][1].IsMap());
  EXPECT_EQ(back["empty"].size(), 0u);
}

} // namespace
} // namespace gantry
