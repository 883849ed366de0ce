#include "translate/translator.h"

#include <gtest/gtest.h>

#include "api/decode.h"

namespace gantry::translate {
namespace {

api::ResourceSet load(const std::string& yaml) {
  api::ResourceSet rs;
  auto errors = api::decodeManifests("test.yaml", yaml, rs);
  EXPECT_TRUE(errors.empty()) << (errors.empty() ? "" : errors[0].str());
  return rs;
}

const std::string kBase = R"(
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: ns}
spec:
  gatewayClassName: gantry
  listeners:
  - {name: http, port: 80, protocol: HTTP, hostname: "*.example.com"}
---
apiVersion: v1
kind: Service
metadata: {name: svc, namespace: ns}
spec:
  ports: [{port: 80, targetPort: 8080}]
)";

std::vector<std::string> routeOrder(const Result& r) {
  std::vector<std::string> names;
  for (const auto& l : r.ir.listeners) {
    for (const auto& vh : l.virtualHosts) {
      for (const auto& route : vh.routes) {
        names.push_back(vh.hostname + " " + route.name);
      }
    }
  }
  return names;
}

TEST(TranslatorTest, OrdersMatchesByGatewayApiPrecedence) {
  auto rs = load(kBase + R"(---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: b, namespace: ns, creationTimestamp: "2026-01-02T00:00:00Z"}
spec:
  parentRefs: [{name: gw}]
  hostnames: [a.example.com]
  rules:
  - matches: [{path: {type: PathPrefix, value: /}}]
    backendRefs: [{name: svc, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /api}, headers: [{name: x, value: "1"}]}]
    backendRefs: [{name: svc, port: 80}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: a, namespace: ns, creationTimestamp: "2026-01-01T00:00:00Z"}
spec:
  parentRefs: [{name: gw}]
  hostnames: [a.example.com]
  rules:
  - matches: [{path: {type: Exact, value: /api}}, {path: {type: PathPrefix, value: /api}}]
    backendRefs: [{name: svc, port: 80}]
)");
  Options o;
  o.controllerName = "c";
  o.addressPool = {"127.0.0.1"};
  api::GatewayClass gc;
  gc.meta.name = "gantry";
  gc.controllerName = "c";
  rs.gatewayClasses.push_back(gc);
  auto r = translate(rs, o);
  EXPECT_EQ(routeOrder(r), (std::vector<std::string>{
                               "a.example.com httproute/ns/a/rule/0/match/0", // Exact
                               "a.example.com httproute/ns/b/rule/1/match/0", // /api + header
                               "a.example.com httproute/ns/a/rule/0/match/1", // /api, older route
                               "a.example.com httproute/ns/b/rule/0/match/0", // /
                           }));
}

TEST(TranslatorTest, HostnameIntersectionWithTheListener) {
  auto rs = load(kBase + R"(---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r, namespace: ns}
spec:
  parentRefs: [{name: gw}]
  hostnames: [foo.example.com, "*.example.com", other.org]
  rules: [{backendRefs: [{name: svc, port: 80}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: none, namespace: ns}
spec:
  parentRefs: [{name: gw}]
  hostnames: [other.org]
  rules: [{backendRefs: [{name: svc, port: 80}]}]
)");
  Options o;
  o.addressPool = {"127.0.0.1"};
  auto r = translate(rs, o);
  std::vector<std::string> hosts;
  for (const auto& vh : r.ir.listeners.at(0).virtualHosts) {
    hosts.push_back(vh.hostname);
  }
  EXPECT_EQ(hosts, (std::vector<std::string>{"*.example.com", "foo.example.com"}));
  const auto& none = r.statuses.at({api::kGatewayGroup, "HTTPRoute", "ns", "none"});
  ASSERT_EQ(none.parents.size(), 1u);
  EXPECT_EQ(none.parents[0].conditions.back().reason, "NoMatchingListenerHostname");
  EXPECT_FALSE(allHealthy(r));
}

} // namespace
} // namespace gantry::translate
