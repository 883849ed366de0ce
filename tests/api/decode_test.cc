#include "api/decode.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

namespace gantry::api {
namespace {

std::string readExample(const std::string& name) {
  std::ifstream in(std::string(EXAMPLES_DIR) + "/" + name);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(DecodeTest, DecodesTheHowTosManifestsVerbatim) {
  ResourceSet rs;
  for (const char* f : {"gateway.yaml", "httproute.yaml", "backendtlspolicy.yaml", "deployment.yaml"}) {
    auto errors = decodeManifests(f, readExample(f), rs);
    ASSERT_TRUE(errors.empty()) << errors.front().str();
  }
  ASSERT_EQ(rs.gateways.size(), 1u);
  const auto& gw = rs.gateways[0];
  EXPECT_EQ(gw.meta.ns, "test-infra");
  EXPECT_EQ(gw.gatewayClassName, "azure-alb-external");
  ASSERT_EQ(gw.listeners.size(), 1u);
  EXPECT_EQ(gw.listeners[0].port, 443);
  EXPECT_EQ(gw.listeners[0].allowedFrom, "Same");
  ASSERT_TRUE(gw.listeners[0].tls);
  EXPECT_EQ(gw.listeners[0].tls->certificateRefs[0].name, "frontend.com");
  EXPECT_EQ(gw.meta.annotations.at("alb.networking.azure.io/alb-name"), "alb-test");

  ASSERT_EQ(rs.httpRoutes.size(), 1u);
  const auto& rule = rs.httpRoutes[0].rules.at(0);
  ASSERT_EQ(rule.matches.size(), 1u); // defaulted PathPrefix "/"
  EXPECT_EQ(rule.matches[0].pathType, "PathPrefix");
  EXPECT_EQ(rule.backendRefs.at(0).port, 443);
  EXPECT_EQ(rule.backendRefs.at(0).weight, 1);

  ASSERT_EQ(rs.albBackendTLSPolicies.size(), 1u);
  const auto& p = rs.albBackendTLSPolicies[0];
  EXPECT_EQ(p.sni, "backend.com");
  EXPECT_EQ(p.ports, std::vector<int32_t>{443});
  EXPECT_EQ(p.clientCertificateRef->name, "gateway-client-cert");
  EXPECT_EQ(p.caCertificateRef->name, "ca.bundle");
  EXPECT_EQ(p.subjectAltName, "backend.com");

  ASSERT_EQ(rs.services.size(), 1u);
  EXPECT_EQ(rs.services[0].ports.at(0).targetPortNumber, 8443);
  EXPECT_EQ(rs.namespaces.size(), 1u);
  EXPECT_EQ(rs.configMaps.size(), 1u);
  ASSERT_EQ(rs.others.size(), 1u); // the Deployment: read and ignored
  EXPECT_EQ(rs.others[0].kind, "Deployment");
}

TEST(DecodeTest, UnknownFieldIsAnErrorWithFileLineAndPath) {
  ResourceSet rs;
  const std::string yaml =
      "apiVersion: gateway.networking.k8s.io/v1\n"
      "kind: Gateway\n"
      "metadata: {name: g, namespace: ns}\n"
      "spec:\n"
      "  gatewayClassName: gantry\n"
      "  listeners:\n"
      "  - name: http\n"
      "    port: 80\n"
      "    protocl: HTTP\n";
  auto errors = decodeManifests("gw.yaml", yaml, rs);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].line, 9);
  EXPECT_EQ(errors[0].path, "spec.listeners[0].protocl");
  EXPECT_NE(errors[0].str().find("gw.yaml:9:"), std::string::npos) << errors[0].str();
  EXPECT_TRUE(rs.gateways.empty()) << "a file with an error contributes nothing";
}

TEST(DecodeTest, MalformedYamlAndBadValuesAreErrorsNotCrashes) {
  const std::pair<const char*, const char*> cases[] = {
      {"unclosed", "apiVersion: v1\nkind: Service\nmetadata: {name: [x\n"},
      {"port", "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec:\n  ports:\n  - port: 70000\n"},
      {"portText", "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec:\n  ports:\n  - port: https\n"},
      {"noKind", "apiVersion: v1\nmetadata: {name: s}\n"},
      {"noName", "apiVersion: v1\nkind: Secret\nmetadata: {namespace: x}\n"},
      {"scalarDoc", "just a string\n"},
      {"base64", "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata:\n  tls.crt: '%%%'\n"},
      {"listAsMap", "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r}\nspec:\n  rules: {a: b}\n"},
  };
  for (const auto& [name, yaml] : cases) {
    ResourceSet rs;
    auto errors = decodeManifests(name, yaml, rs);
    EXPECT_FALSE(errors.empty()) << name;
    if (!errors.empty()) {
      EXPECT_FALSE(errors[0].message.empty()) << name;
    }
  }
}

// A route with `rules` rules, each with `matchesPerRule` matches, and optional extra rule YAML.
std::string routeYaml(int rules, int matchesPerRule, const std::string& extraRule = "") {
  std::string y =
      "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r, namespace: ns}\n"
      "spec:\n  rules:\n";
  for (int i = 0; i < rules; ++i) {
    y += "  - matches:\n";
    for (int m = 0; m < matchesPerRule; ++m) {
      y += "    - path: {type: Exact, value: /r" + std::to_string(i) + "m" + std::to_string(m) + "}\n";
    }
  }
  return y + extraRule;
}

TEST(DecodeTest, RouteLimitsOfTheCrdAreEnforcedWithTheFieldNamed) {
  struct Case {
    const char* name;
    std::string yaml;
    const char* path;
    const char* message;
  };
  const Case cases[] = {
      {"17 rules", routeYaml(17, 1), "spec.rules", "at most 16 items are allowed, got 17"},
      {"65 matches in a rule", routeYaml(1, 65), "spec.rules[0].matches", "at most 64 items are allowed, got 65"},
      {"129 matches in all", routeYaml(3, 43), "spec.rules[2].matches", "at most 128 matches"},
      {"duplicate rule name",
       routeYaml(0, 0, "  - name: a\n  - name: a\n"), "spec.rules[1].name", "is used by another rule"},
      {"rule name with capitals", routeYaml(0, 0, "  - name: Checkout\n"), "spec.rules[0].name",
       "lower-case letters"},
  };
  for (const auto& c : cases) {
    ResourceSet rs;
    auto errors = decodeManifests("route.yaml", c.yaml, rs);
    ASSERT_EQ(errors.size(), 1u) << c.name;
    EXPECT_EQ(errors[0].path, c.path) << c.name;
    EXPECT_NE(errors[0].message.find(c.message), std::string::npos) << c.name << ": " << errors[0].message;
    EXPECT_TRUE(rs.httpRoutes.empty()) << c.name;
  }
  // At the limits exactly, the route is taken.
  ResourceSet rs;
  EXPECT_TRUE(decodeManifests("route.yaml", routeYaml(16, 8), rs).empty());
  EXPECT_TRUE(decodeManifests("route2.yaml", routeYaml(2, 64), rs).empty());
  EXPECT_EQ(rs.httpRoutes.size(), 2u);
}

TEST(DecodeTest, GatewayInfrastructureAndClassParametersRef) {
  ResourceSet rs;
  const std::string yaml =
      "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: g, namespace: ns}\n"
      "spec:\n  gatewayClassName: gantry\n  infrastructure:\n    labels: {team: a}\n"
      "    parametersRef: {group: \"\", kind: ConfigMap, name: p}\n"
      "  listeners:\n  - {name: http, port: 80, protocol: HTTP}\n"
      "---\napiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata: {name: c}\n"
      "spec:\n  controllerName: x/y\n  parametersRef: {group: \"\", kind: ConfigMap, name: p, namespace: ns}\n";
  ASSERT_TRUE(decodeManifests("gw.yaml", yaml, rs).empty());
  ASSERT_EQ(rs.gateways.size(), 1u);
  ASSERT_TRUE(rs.gateways[0].parametersRef.has_value());
  EXPECT_EQ(rs.gateways[0].parametersRef->kind, "ConfigMap");
  EXPECT_EQ(rs.gateways[0].infrastructureLabels.at("team"), "a");
  ASSERT_EQ(rs.gatewayClasses.size(), 1u);
  ASSERT_TRUE(rs.gatewayClasses[0].parametersRef.has_value());
  EXPECT_EQ(rs.gatewayClasses[0].parametersRef->ns.value_or(""), "ns");
  // An unknown field inside infrastructure is an error like anywhere else.
  ResourceSet rs2;
  auto errors = decodeManifests(
      "gw.yaml",
      "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: g, namespace: ns}\n"
      "spec:\n  gatewayClassName: gantry\n  infrastructure:\n    lables: {team: a}\n  listeners: []\n",
      rs2);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].path, "spec.infrastructure.lables");
}

TEST(DecodeTest, SecretsAreDecodedAndRedactedInTheEcho) {
  ResourceSet rs;
  auto errors = decodeManifests("s.yaml",
                                "apiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: n}\n"
                                "data:\n  ca.crt: aGVsbG8=\nstringData:\n  extra: plain\n",
                                rs);
  ASSERT_TRUE(errors.empty());
  ASSERT_EQ(rs.secrets.size(), 1u);
  EXPECT_EQ(rs.secrets[0].type, "Opaque");
  EXPECT_EQ(rs.secrets[0].data.at("ca.crt"), "hello");
  EXPECT_EQ(rs.secrets[0].data.at("extra"), "plain");
  EXPECT_EQ(rs.secrets[0].rawJson.find("aGVsbG8"), std::string::npos);
  EXPECT_EQ(rs.secrets[0].rawJson.find("plain"), std::string::npos);
}

TEST(DecodeTest, UpstreamBackendTlsPolicy) {
  ResourceSet rs;
  auto errors = decodeManifests("p.yaml",
                                "apiVersion: gateway.networking.k8s.io/v1\nkind: BackendTLSPolicy\n"
                                "metadata: {name: p, namespace: n}\nspec:\n  targetRefs:\n"
                                "  - {group: '', kind: Service, name: svc, sectionName: https}\n"
                                "  validation:\n    caCertificateRefs:\n    - {group: '', kind: ConfigMap, name: ca}\n"
                                "    hostname: backend.com\n    subjectAltNames:\n"
                                "    - {type: URI, uri: 'spiffe://td/ns/n/sa/b'}\n",
                                rs);
  ASSERT_TRUE(errors.empty()) << errors.front().str();
  const auto& p = rs.backendTLSPolicies.at(0);
  EXPECT_EQ(p.targetRefs.at(0).sectionName, "https");
  EXPECT_EQ(p.caCertificateRefs.at(0).kind, "ConfigMap");
  EXPECT_EQ(p.hostname, "backend.com");
  EXPECT_EQ(p.subjectAltNames.at(0).value, "spiffe://td/ns/n/sa/b");
}

} // namespace
} // namespace gantry::api

namespace gantry::api {
namespace {

TEST(DecodeTest, RouteTimeoutsFollowGep2257) {
  auto route = [](const std::string& timeouts) {
    return "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r}\nspec:\n"
           "  rules:\n  - timeouts: " + timeouts + "\n";
  };
  ResourceSet rs;
  ASSERT_TRUE(decodeManifests("r.yaml", route("{request: 1h30m, backendRequest: 500ms}"), rs).empty());
  EXPECT_EQ(rs.httpRoutes.at(0).rules.at(0).requestTimeoutMs, 5400000);
  EXPECT_EQ(rs.httpRoutes.at(0).rules.at(0).backendRequestTimeoutMs, 500);
  for (const char* bad : {"{request: 10}", "{request: 1.5s}", "{request: 123456s}", "{request: 1h1m1s1ms1h}",
                          "{request: 1s, backendRequest: 2s}"}) {
    ResourceSet r2;
    auto errors = decodeManifests("r.yaml", route(bad), r2);
    ASSERT_EQ(errors.size(), 1u) << bad;
    EXPECT_NE(errors[0].path.find("spec.rules[0].timeouts"), std::string::npos) << errors[0].str();
  }
}

} // namespace
} // namespace gantry::api

namespace gantry::api {
namespace {

TEST(DecodeTest, SecretBase64IsStrict) {
  auto secret = [](const std::string& value) {
    return "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata:\n  k: \"" + value + "\"\n";
  };
  ResourceSet rs;
  ASSERT_TRUE(decodeManifests("s.yaml", secret("aGVs\\nbG8="), rs).empty());
  EXPECT_EQ(rs.secrets.at(0).data.at("k"), "hello");
  for (std::string bad : {"aGVsbG8", "aGVs*G8=", "aGVsbG8=x===", "\xc3\xa9\xc3\xa9", "a==="}) {
    ResourceSet r2;
    auto errors = decodeManifests("s.yaml", secret(bad), r2);
    ASSERT_EQ(errors.size(), 1u) << bad;
    EXPECT_EQ(errors[0].path, "data.k");
  }
}

} // namespace
} // namespace gantry::api

namespace gantry::api {
namespace {

TEST(DecodeTest, AliasBombsAreRefusedNotExpanded) {
  // Each level doubles: 2^30 nodes once expanded, a few hundred bytes as YAML.
  std::string yaml = "a0: &a0 [x, x]\n";
  for (int i = 1; i <= 30; ++i) {
    yaml += "a" + std::to_string(i) + ": &a" + std::to_string(i) + " [*a" + std::to_string(i - 1) +
            ", *a" + std::to_string(i - 1) + "]\n";
  }
  yaml += "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bomb}\n";
  ResourceSet rs;
  auto errors = decodeManifests("bomb.yaml", yaml, rs);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].message.find("aliases"), std::string::npos) << errors[0].str();
}

TEST(DecodeTest, StreamsTheYamlParserCannotGetPastAreRefusedNotLoopedOn) {
  // yaml-cpp 0.7's LoadAll loops forever (allocating) on these; each is refused at its place.
  struct Case {
    std::string yaml;
    int line;
  };
  for (const Case& c : std::vector<Case>{{",\n", 1},
                                         {"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n ,\n", 5}}) {
    ResourceSet rs;
    auto errors = decodeManifests("stall.yaml", c.yaml, rs);
    ASSERT_EQ(errors.size(), 1u) << c.yaml;
    EXPECT_EQ(errors[0].line, c.line) << errors[0].str();
    EXPECT_TRUE(rs.configMaps.empty()); // the file is refused as a whole
  }
  // Empty documents between separators are not a stall.
  ResourceSet rs;
  EXPECT_TRUE(decodeManifests("empty-docs.yaml", "---\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n", rs).empty());
  EXPECT_EQ(rs.configMaps.size(), 1u);
}

TEST(DecodeTest, AliasesOfLongStringsAreRefusedBeforeTheyAreCopied) {
  // 10^4 references to a 5,000-byte string: 11,112 nodes (well under the node limit) but 50 MB of
  // text once each reference is decoded into a string of its own.
  std::string yaml = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: long}\ndata:\n  s0: &s0 \"" +
                     std::string(5000, 'A') + "\"\n";
  for (int i = 1; i <= 4; ++i) {
    yaml += "  s" + std::to_string(i) + ": &s" + std::to_string(i) + " [";
    for (int j = 0; j < 10; ++j) {
      yaml += (j ? ", *s" : "*s") + std::to_string(i - 1);
    }
    yaml += "]\n";
  }
  ResourceSet rs;
  auto errors = decodeManifests("long.yaml", yaml, rs);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].message.find("16 MiB of text"), std::string::npos) << errors[0].str();
  // The same document with one level less (5 MB once expanded) is not refused for its size (a
  // ConfigMap's data must be strings, so it is refused for that).
  const auto cut = yaml.rfind("  s4:");
  ResourceSet other;
  for (const auto& e : decodeManifests("long.yaml", yaml.substr(0, cut), other)) {
    EXPECT_EQ(e.message.find("aliases"), std::string::npos) << e.str();
  }
}

} // namespace
} // namespace gantry::api
