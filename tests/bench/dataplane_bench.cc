// Google Benchmark micro-benchmarks for the hot pieces of the data plane (not tests: no pass/fail;
// figures go to docs/performance.md). Run: build/tests/dataplane_bench
#include <benchmark/benchmark.h>

#include <string>

#include "dataplane/headers.h"
#include "dataplane/http1.h"
#include "dataplane/snapshot.h"

namespace gantry::dataplane {
namespace {

const std::string kRequest =
    "GET /api/v1/items/42?verbose=1 HTTP/1.1\r\nHost: frontend.com\r\nUser-Agent: wrk\r\n"
    "Accept: */*\r\nAccept-Encoding: gzip\r\nX-Request-Id: 5d3f1a2b-8c4e-4f6a-9b0d-1e2f3a4b5c6d\r\n"
    "X-Forwarded-For: 192.0.2.1\r\nCookie: session=abcdef0123456789\r\n\r\n";

// Parses `input` with `parse(input, head)` once per iteration.
template <class Parse>
void benchParse(benchmark::State& state, const std::string& input, Parse parse) {
  for (auto _ : state) {
    http1::Head head;
    auto r = parse(input, head);
    benchmark::DoNotOptimize(r);
    benchmark::DoNotOptimize(head);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * input.size()));
}

void BM_ParseRequest(benchmark::State& state) {
  benchParse(state, kRequest, [](std::string_view in, http1::Head& h) { return http1::parseRequest(in, 60 * 1024, h); });
}
BENCHMARK(BM_ParseRequest);

// What the benchmark's backend (nginx, `return 200 "Hello World!"`) answers, head and body.
const std::string kResponse =
    "HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Thu, 26 Nov 2026 14:00:00 GMT\r\n"
    "Content-Type: application/octet-stream\r\nContent-Length: 12\r\nConnection: keep-alive\r\n\r\n"
    "Hello World!";

void BM_ParseResponse(benchmark::State& state) {
  benchParse(state, kResponse,
             [](std::string_view in, http1::Head& h) { return http1::parseResponse(in, 60 * 1024, "GET", h); });
}
BENCHMARK(BM_ParseResponse);

void BM_ChunkedDecode(benchmark::State& state) {
  std::string body;
  for (int i = 0; i < 64; ++i) {
    body += "400\r\n" + std::string(1024, 'x') + "\r\n";
  }
  body += "0\r\n\r\n";
  for (auto _ : state) {
    http1::ChunkedDecoder d;
    benchmark::DoNotOptimize(d.feed(body));
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * body.size()));
}
BENCHMARK(BM_ChunkedDecode);

// The upstream head of kRequest with a RequestHeaderModifier (set, add, remove) on the rule and
// another on the backendRef: the per-request header work of the proxy.
void BM_UpstreamHeadWithHeaderMutation(benchmark::State& state) {
  http1::Head head;
  http1::parseRequest(kRequest, 60 * 1024, head);
  CompiledRoute route;
  route.match.path = "/api";
  route.requestHeaders = ir::HeaderMutation{{{"x-env", "prod"}}, {{"x-added", "1"}}, {"cookie"}};
  ir::WeightedBackend backend;
  backend.requestHeaders = ir::HeaderMutation{{{"x-backend", "blue"}}, {}, {"accept-encoding"}};
  Forwarding f{"5d3f1a2b-8c4e-4f6a-9b0d-1e2f3a4b5c6d", "127.0.0.1", true, "frontend.com", ""};
  for (auto _ : state) {
    auto out = upstreamHead(head, route, backend, "/api/v1/items/42", "verbose=1", f);
    benchmark::DoNotOptimize(out);
  }
}
BENCHMARK(BM_UpstreamHeadWithHeaderMutation);

// Route match in one virtual host with N PathPrefix routes, each under its own first path
// segment; the request matches the last one in precedence order.
void BM_RouteMatch(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  ir::Config c;
  ir::Listener l;
  l.name = "gateway/ns/gw/http";
  l.address = "127.0.0.1";
  l.port = 8080;
  l.protocol = "HTTP";
  ir::VirtualHost vh;
  vh.hostname = "*";
  for (int i = 0; i < n; ++i) {
    ir::Route r;
    r.name = "route" + std::to_string(i);
    r.match.pathType = "PathPrefix";
    r.match.path = "/service-" + std::to_string(n - i) + "/api";
    ir::WeightedBackend b;
    b.cluster = "c";
    r.backends.push_back(b);
    vh.routes.push_back(r);
  }
  l.virtualHosts.push_back(vh);
  c.listeners.push_back(l);
  std::vector<std::string> errors;
  auto snap = Snapshot::compile(c, 1, errors);
  const auto* vhost = snap->port("127.0.0.1:8080")->listenerFor("x")->vhostFor("x");
  http1::Fields headers;
  for (auto _ : state) {
    const auto* r = matchRoute(*vhost, {"GET", "/service-1/api/items", "", &headers});
    benchmark::DoNotOptimize(r);
  }
}
BENCHMARK(BM_RouteMatch)->Arg(1000)->Arg(10000);

} // namespace
} // namespace gantry::dataplane

BENCHMARK_MAIN();
