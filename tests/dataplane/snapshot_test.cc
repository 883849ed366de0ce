#include "dataplane/snapshot.h"

#include <gtest/gtest.h>

namespace gantry::dataplane {
namespace {

TEST(RouterTest, PathPrefixIsElementWise) {
  EXPECT_TRUE(pathPrefixMatches("/", "/anything"));
  EXPECT_TRUE(pathPrefixMatches("/foo", "/foo"));
  EXPECT_TRUE(pathPrefixMatches("/foo", "/foo/bar"));
  EXPECT_TRUE(pathPrefixMatches("/foo/", "/foo"));
  EXPECT_FALSE(pathPrefixMatches("/foo", "/foobar"));
  EXPECT_FALSE(pathPrefixMatches("/foo/bar", "/foo"));
}

ir::Route route(const std::string& name, const std::string& type, const std::string& path) {
  ir::Route r;
  r.name = name;
  r.match.pathType = type;
  r.match.path = path;
  ir::WeightedBackend b;
  b.cluster = "service/ns/svc/80";
  r.backends.push_back(b);
  return r;
}

ir::Config config() {
  ir::Config c;
  ir::Listener l;
  l.name = "gateway/ns/gw/http";
  l.address = "127.0.0.1";
  l.port = 8080;
  l.protocol = "HTTP";
  ir::VirtualHost exact{"a.example.com", {route("exact", "Exact", "/x"), route("prefix", "PathPrefix", "/")}};
  ir::VirtualHost wild{"*.example.com", {route("wild", "PathPrefix", "/")}};
  ir::VirtualHost any{"*", {route("any", "PathPrefix", "/")}};
  auto withHeader = route("header", "PathPrefix", "/h");
  withHeader.match.headers.push_back({"Exact", "x-env", "canary"});
  withHeader.match.queryParams.push_back({"Exact", "v", "2"});
  withHeader.match.method = "POST";
  any.routes.insert(any.routes.begin(), withHeader);
  l.virtualHosts = {exact, wild, any};
  c.listeners.push_back(l);
  c.clusters.push_back({"service/ns/svc/80", {{"127.0.0.1", 9000}}, std::nullopt, std::nullopt});
  return c;
}

TEST(SnapshotTest, SelectsVirtualHostAndRoute) {
  std::vector<std::string> errors;
  auto snap = Snapshot::compile(config(), 1, errors);
  ASSERT_TRUE(errors.empty());
  const PortGroup* g = snap->port("127.0.0.1:8080");
  ASSERT_NE(g, nullptr);
  const ListenerView* l = g->listenerFor("a.example.com");
  ASSERT_NE(l, nullptr);
  http1::Fields none;
  auto match = [&](const std::string& host, std::string_view method, std::string_view path,
                   std::string_view query, const http1::Fields& headers) -> std::string {
    const auto* vh = l->vhostFor(host);
    if (vh == nullptr) {
      return "<no vhost>";
    }
    const auto* r = matchRoute(*vh, {method, path, query, &headers});
    return r == nullptr ? "<no route>" : r->name;
  };
  EXPECT_EQ(match("a.example.com", "GET", "/x", "", none), "exact");
  EXPECT_EQ(match("a.example.com", "GET", "/x/y", "", none), "prefix");
  EXPECT_EQ(match("b.example.com", "GET", "/", "", none), "wild");
  EXPECT_EQ(match("deep.b.example.com", "GET", "/", "", none), "wild");
  EXPECT_EQ(match("example.com", "GET", "/", "", none), "any");
  http1::Fields canary{{"X-Env", "canary"}};
  EXPECT_EQ(match("other", "POST", "/h", "a=1&v=2", canary), "header");
  EXPECT_EQ(match("other", "GET", "/h", "v=2", canary), "any");  // method differs
  EXPECT_EQ(match("other", "POST", "/h", "v=3", canary), "any"); // query differs
  EXPECT_EQ(match("other", "POST", "/h", "v=2", none), "any");   // header missing
  ASSERT_NE(snap->cluster("service/ns/svc/80"), nullptr);
  EXPECT_EQ(snap->cluster("missing"), nullptr);
}

// The first-segment index must give the same answer as a scan in precedence order: routes that
// need a segment and routes that match any path interleave by precedence.
TEST(SnapshotTest, SegmentIndexKeepsPrecedenceAcrossSpecificAndAnyPathRoutes) {
  ir::Config c = config();
  auto& vh = c.listeners[0].virtualHosts[0]; // a.example.com
  vh.routes = {route("exact-root", "Exact", "/"),       route("api-v1", "PathPrefix", "/api/v1"),
               route("regex", "RegularExpression", "/api/v[0-9]+/items"),
               route("api", "PathPrefix", "/api"),      route("catch-all", "PathPrefix", "/")};
  std::vector<std::string> errors;
  auto snap = Snapshot::compile(c, 1, errors);
  ASSERT_TRUE(errors.empty());
  const auto* v = snap->port("127.0.0.1:8080")->listenerFor("a.example.com")->vhostFor("a.example.com");
  ASSERT_NE(v, nullptr);
  http1::Fields none;
  auto name = [&](std::string_view path) {
    const auto* r = matchRoute(*v, {"GET", path, "", &none});
    return r ? r->name : std::string("-");
  };
  EXPECT_EQ(name("/"), "exact-root");
  EXPECT_EQ(name("/api/v1/items"), "api-v1");   // the longer prefix comes before the regex
  EXPECT_EQ(name("/api/v2/items"), "regex");    // an any-segment route between two /api ones
  EXPECT_EQ(name("/api/v2/other"), "api");
  EXPECT_EQ(name("/apix"), "catch-all");        // element-wise: not /api
  EXPECT_EQ(name("/elsewhere/deep"), "catch-all"); // a segment no route names
  EXPECT_EQ(name(""), "catch-all");
}

TEST(SnapshotTest, HttpsPortWithoutUsableCertificateIsNotServed) {
  ir::Config c;
  ir::Listener l;
  l.name = "gateway/ns/gw/https";
  l.address = "127.0.0.1";
  l.port = 8443;
  l.protocol = "HTTPS";
  l.certificates.push_back({"secret/ns/bad", "not a pem", "nor a key", "", {}});
  c.listeners.push_back(l);
  std::vector<std::string> errors;
  auto snap = Snapshot::compile(c, 1, errors);
  EXPECT_EQ(snap->port("127.0.0.1:8443"), nullptr);
  ASSERT_FALSE(errors.empty());
  EXPECT_NE(errors.front().find("secret/ns/bad"), std::string::npos) << errors.front();
}

TEST(SnapshotTest, RegularExpressionMatchesAreFullMatchesInRe2) {
  ir::Config c = config();
  auto& any = c.listeners[0].virtualHosts[2];
  auto re = route("regex", "RegularExpression", "/items/[0-9]+");
  re.match.headers.push_back({"RegularExpression", "x-version", "v[12]"});
  re.match.queryParams.push_back({"RegularExpression", "id", "[a-f]{3}"});
  any.routes.insert(any.routes.begin(), re);
  std::vector<std::string> errors;
  auto snap = Snapshot::compile(c, 1, errors);
  ASSERT_TRUE(errors.empty());
  const auto* vh = snap->port("127.0.0.1:8080")->listenerFor("x")->vhostFor("x");
  http1::Fields v1{{"X-Version", "v1"}};
  http1::Fields v3{{"X-Version", "v3"}};
  auto name = [&](std::string_view path, std::string_view query, const http1::Fields& h) {
    const auto* r = matchRoute(*vh, {"GET", path, query, &h});
    return r ? r->name : "<none>";
  };
  EXPECT_EQ(name("/items/42", "id=abc", v1), "regex");
  EXPECT_EQ(name("/items/42/more", "id=abc", v1), "any");  // full match only
  EXPECT_EQ(name("/items/42", "id=abc", v3), "any");
  EXPECT_EQ(name("/items/42", "id=abcd", v1), "any");
  EXPECT_EQ(name("/items/x", "id=abc", v1), "any");
}

TEST(RouterTest, ReplacePrefixMatchFollowsTheSpecTable) {
  // Gateway API HTTPPathModifier.ReplacePrefixMatch examples.
  struct Case {
    const char* prefix;
    const char* replacement;
    const char* path;
    const char* want;
  } cases[] = {
      {"/foo", "/xyz", "/foo/bar", "/xyz/bar"}, {"/foo/", "/xyz", "/foo/bar", "/xyz/bar"},
      {"/foo", "/xyz/", "/foo/bar", "/xyz/bar"}, {"/foo", "/xyz", "/foo", "/xyz"},
      {"/foo", "/xyz", "/foo/", "/xyz/"},        {"/foo", "", "/foo/bar", "/bar"},
      {"/foo", "", "/foo", "/"},                 {"/foo", "", "/foo/", "/"},
      {"/foo", "/", "/foo/", "/"},               {"/foo", "/", "/foo", "/"},
      {"/strip-prefix", "/", "/strip-prefix/three", "/three"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(rewritePath({"ReplacePrefixMatch", c.replacement}, c.prefix, c.path), c.want)
        << c.prefix << " -> " << c.replacement << " on " << c.path;
  }
  EXPECT_EQ(rewritePath({"ReplaceFullPath", "/new"}, "/foo", "/foo/bar"), "/new");
}

} // namespace
} // namespace gantry::dataplane
