#include "dataplane/headers.h"

#include <gtest/gtest.h>

namespace gantry::dataplane {
namespace {

// The head's views point into `raw`, which must outlive it.
http1::Head parse(const std::string& raw) {
  http1::Head h;
  EXPECT_EQ(http1::parseRequest(raw, 64 * 1024, h).status, http1::ParseStatus::Done);
  return h;
}

TEST(UpstreamHeadTest, AppliesRuleThenBackendModifiersAndDropsHopByHopFields) {
  const std::string raw =
      "GET /old/x?q=1 HTTP/1.1\r\nHost: a.example\r\nX-Env: dev\r\nConnection: keep-alive, X-Secret\r\n"
      "X-Secret: s\r\nKeep-Alive: 5\r\nAccept: */*\r\nX-Remove-Me: 1\r\nX-Forwarded-For: 192.0.2.9\r\n\r\n";
  auto head = parse(raw);
  CompiledRoute route;
  route.match.path = "/old";
  route.rewrite = ir::Rewrite{std::string("b.example"), ir::PathModifier{"ReplacePrefixMatch", "/new"}};
  route.requestHeaders = ir::HeaderMutation{{{"X-Env", "prod"}}, {{"X-Added", "1"}}, {"x-remove-me"}};
  ir::WeightedBackend backend;
  backend.requestHeaders = ir::HeaderMutation{{{"X-Backend", "blue"}}, {}, {}};
  Forwarding f{"rid-1", "127.0.0.1", true, "fallback", ""};
  const std::string out = upstreamHead(head, route, backend, "/old/x", "q=1", f);
  EXPECT_EQ(out,
            "GET /new/x?q=1 HTTP/1.1\r\n"
            "host: b.example\r\n"
            "Accept: */*\r\n"
            "X-Env: prod\r\n"
            "X-Added: 1\r\n"
            "X-Backend: blue\r\n"
            "x-forwarded-for: 192.0.2.9, 127.0.0.1\r\n"
            "x-forwarded-proto: https\r\n"
            "x-request-id: rid-1\r\n\r\n");
}

TEST(UpstreamHeadTest, HostlessRequestsGetTheFallbackAndUpgradesAreExplicit) {
  const std::string raw = "GET /ws HTTP/1.0\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n";
  auto head = parse(raw);
  CompiledRoute route;
  ir::WeightedBackend backend;
  Forwarding f{"rid-2", "10.0.0.1", false, "127.0.0.1:8080", "websocket"};
  const std::string out = upstreamHead(head, route, backend, "/ws", "", f);
  EXPECT_NE(out.find("host: 127.0.0.1:8080\r\n"), std::string::npos) << out;
  EXPECT_NE(out.find("x-forwarded-proto: http\r\n"), std::string::npos) << out;
  EXPECT_NE(out.find("connection: upgrade\r\nupgrade: websocket\r\n\r\n"), std::string::npos) << out;
  EXPECT_EQ(out.find("Upgrade: websocket"), std::string::npos) << "the client's hop-by-hop line is not copied";
}

TEST(ResponseFieldsTest, BackendFieldsThenRuleThenBackendRefModifiersThenGatewayLines) {
  const std::string raw =
      "HTTP/1.1 200 OK\r\nServer: nginx\r\nConnection: keep-alive\r\nX-Keep: original\r\n"
      "X-Drop: secret\r\nContent-Length: 2\r\nKeep-Alive: timeout=5\r\n\r\nok";
  http1::Head resp;
  ASSERT_EQ(http1::parseResponse(raw, 64 * 1024, "GET", resp).status, http1::ParseStatus::Done);
  CompiledRoute route;
  route.responseHeaders = ir::HeaderMutation{{{"x-keep", "replaced"}}, {{"X-Rule-Add", "r"}}, {"X-DROP"}};
  ir::WeightedBackend backend;
  backend.responseHeaders = ir::HeaderMutation{{{"X-Backend-Set", "b"}}, {}, {"server"}};
  http1::FieldList out;
  responseFields(resp.headers, route, backend, "access-control-allow-origin: https://app.example\r\nvary: Origin\r\n", out);
  std::string joined;
  for (const auto& f : out) {
    joined.append(f.name).append("=").append(f.value).append(";");
  }
  EXPECT_EQ(joined,
            "Content-Length=2;x-keep=replaced;X-Rule-Add=r;X-Backend-Set=b;"
            "access-control-allow-origin=https://app.example;vary=Origin;");
}

TEST(AppendFieldsTest, WritesEachFieldAsALineAfterWhatIsThere) {
  std::string out = "HTTP/1.1 200 OK\r\n";
  const std::string value(300, 'v'); // past any small-string buffer
  const http1::Header fields[] = {{"Server", "nginx"}, {"x-empty", ""}, {"x-long", value}, {"a", "b"}};
  appendFields(out, fields);
  EXPECT_EQ(out, "HTTP/1.1 200 OK\r\nServer: nginx\r\nx-empty: \r\nx-long: " + value + "\r\na: b\r\n");
  appendFields(out, {});
  appendField(out, "x-last", "1");
  appendField(out, "x-none", std::string_view{});
  EXPECT_EQ(out.substr(out.size() - 21), "x-last: 1\r\nx-none: \r\n");
}

TEST(UpstreamHeadTest, NamedInIsCaseInsensitive) {
  std::optional<ir::HeaderMutation> m = ir::HeaderMutation{{{"X-A", "1"}}, {}, {"x-b"}};
  EXPECT_TRUE(namedIn(m, "x-a"));
  EXPECT_TRUE(namedIn(m, "X-B"));
  EXPECT_FALSE(namedIn(m, "x-c"));
  EXPECT_FALSE(namedIn(std::nullopt, "x-a"));
}

TEST(FormatUuid4Test, LaysTheBitsOutAsRfc9562SaysWithVersionAndVariantSet) {
  char out[36];
  // RFC 9562 section 5.4: the version nibble (bits 48-51) becomes 4, the variant bits (64-65)
  // become 10; every other bit is the random input, most significant first, 8-4-4-4-12.
  formatUuid4(0x0123456789abcdefULL, 0xfedcba9876543210ULL, out);
  EXPECT_EQ(std::string(out, sizeof out), "01234567-89ab-4def-bedc-ba9876543210");
  formatUuid4(0, 0, out);
  EXPECT_EQ(std::string(out, sizeof out), "00000000-0000-4000-8000-000000000000");
  formatUuid4(~0ULL, ~0ULL, out);
  EXPECT_EQ(std::string(out, sizeof out), "ffffffff-ffff-4fff-bfff-ffffffffffff");
}

TEST(HostOnlyTest, DropsThePortAndTrailingDotsAndLowerCasesButKeepsIpv6Brackets) {
  EXPECT_EQ(hostOnly("Frontend.COM:8443"), "frontend.com");
  EXPECT_EQ(hostOnly("frontend.com."), "frontend.com");
  EXPECT_EQ(hostOnly("[::1]:443"), "[::1]");
  EXPECT_EQ(hostOnly("[2001:DB8::1]"), "[2001:db8::1]");
  EXPECT_EQ(hostOnly("127.0.0.1"), "127.0.0.1");
  EXPECT_EQ(hostOnly(""), "");
}

} // namespace
} // namespace gantry::dataplane
