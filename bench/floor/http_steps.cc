#include "http_steps.h"

#include <ctime>
#include <random>

#include "dataplane/headers.h"
#include "dataplane/http1.h"
#include "dataplane/snapshot.h"
#include "store/file_store.h"
#include "translate/translator.h"

namespace gantry::bench {

using namespace std::string_view_literals;
using dataplane::CompiledRoute;
using dataplane::PortGroup;

struct HttpConfig {
  dataplane::SnapshotConstSharedPtr snapshot;
  const PortGroup* tlsGroup = nullptr;
  const PortGroup* plainGroup = nullptr;
};

std::shared_ptr<const HttpConfig> loadHttpConfig(const std::string& dir, int portOffset, std::string& error) {
  store::FileStore files(dir);
  auto loaded = files.load(static_cast<int64_t>(std::time(nullptr)));
  if (!loaded.errors.empty()) {
    error = loaded.errors.front().str();
    return nullptr;
  }
  translate::Options options;
  options.addressPool = {"127.0.0.1"};
  options.portOffset = portOffset;
  auto result = translate::translate(loaded.resources, options);
  std::vector<std::string> problems;
  auto config = std::make_shared<HttpConfig>();
  config->snapshot = dataplane::Snapshot::compile(result.ir, 1, problems);
  for (const auto& [key, group] : config->snapshot->ports()) {
    (group.tls ? config->tlsGroup : config->plainGroup) = &group;
  }
  if (config->tlsGroup == nullptr) {
    error = "no TLS listener in " + dir + (problems.empty() ? "" : ": " + problems.front());
    return nullptr;
  }
  return config;
}

namespace {

uint64_t nextRandom() {
  static std::mt19937_64 rng{std::random_device{}()};
  return rng();
}

} // namespace

bool forwardRequests(const HttpConfig& config, HttpExchange& x, std::string& in, std::string& out) {
  const PortGroup* group = x.tls ? config.tlsGroup : config.plainGroup;
  while (!in.empty()) {
    dataplane::http1::Head head;
    auto parsed = dataplane::http1::parseRequest(in, 64 * 1024, head);
    if (parsed.status == dataplane::http1::ParseStatus::Incomplete) {
      return true;
    }
    if (parsed.status == dataplane::http1::ParseStatus::Error || group == nullptr ||
        head.body == dataplane::http1::BodyKind::Chunked) {
      return false;
    }
    if (head.body == dataplane::http1::BodyKind::ContentLength && in.size() < head.headBytes + head.contentLength) {
      return true; // the body is not all here yet
    }
    const std::string host = dataplane::hostOnly(head.header("host"));
    const auto* listener = group->listenerFor(host);
    const auto* vhost = listener != nullptr ? listener->vhostFor(host) : nullptr;
    if (vhost == nullptr) {
      return false;
    }
    const std::string_view target = head.target;
    const size_t q = target.find('?');
    const std::string_view path = target.substr(0, q);
    const std::string_view query = q == std::string_view::npos ? std::string_view{} : target.substr(q + 1);
    const CompiledRoute* route = dataplane::matchRoute(*vhost, {head.method, path, query, &head.headers});
    if (route == nullptr || route->totalWeight == 0) {
      return false;
    }
    // Weighted choice (spec section 3: weight / sum of weights).
    uint64_t pick = nextRandom() % route->totalWeight;
    size_t chosen = 0;
    while (pick >= route->backends[chosen].weight) {
      pick -= route->backends[chosen].weight;
      ++chosen;
    }
    dataplane::Forwarding f;
    char uuid[36];
    f.requestId = head.header("x-request-id");
    if (f.requestId.empty()) {
      dataplane::formatUuid4(nextRandom(), nextRandom(), uuid);
      f.requestId = std::string_view(uuid, sizeof uuid);
    }
    f.peer = "127.0.0.1"sv;
    f.tls = x.tls;
    out += dataplane::upstreamHead(head, *route, route->backends[chosen], path, query, f);
    const size_t consumed = head.headBytes + (head.body == dataplane::http1::BodyKind::ContentLength ? head.contentLength : 0);
    out.append(in, head.headBytes, consumed - head.headBytes);
    in.erase(0, consumed);
    // (One request in flight per connection, as the benchmark's load sends them: the response
    // that comes next is this request's.)
    x.route = route;
    x.backend = &route->backends[chosen];
  }
  return true;
}

bool forwardResponses(HttpExchange& x, std::string& in, std::string& out) {
  while (!in.empty()) {
    if (x.route == nullptr) {
      return false; // a response nobody asked for
    }
    dataplane::http1::Head head;
    auto parsed = dataplane::http1::parseResponse(in, 64 * 1024, "GET"sv, head);
    if (parsed.status == dataplane::http1::ParseStatus::Incomplete) {
      return true;
    }
    if (parsed.status == dataplane::http1::ParseStatus::Error || head.body == dataplane::http1::BodyKind::Chunked ||
        head.body == dataplane::http1::BodyKind::UntilClose) {
      return false;
    }
    const size_t total = head.headBytes + (head.body == dataplane::http1::BodyKind::ContentLength ? head.contentLength : 0);
    if (in.size() < total) {
      return true;
    }
    const auto& route = *static_cast<const CompiledRoute*>(x.route);
    const auto& backend = *static_cast<const ir::WeightedBackend*>(x.backend);
    dataplane::http1::FieldList fields;
    dataplane::responseFields(head.headers, route, backend, {}, fields);
    dataplane::appendStatusLine(out, head.status, head.reason);
    dataplane::appendFields(out, dataplane::http1::asSpan(fields));
    out.append("\r\n"sv);
    out.append(in, head.headBytes, total - head.headBytes);
    in.erase(0, total);
  }
  return true;
}

} // namespace gantry::bench
