#pragma once
// The compiled, immutable form of an ir::Config that workers serve: listeners grouped by bound
// address:port with their TLS contexts, virtual hosts with routes in precedence order, and
// clusters with their upstream TLS contexts. Built on the main thread; read lock-free by workers,
// which pin it with a shared_ptr (a connection at accept, a request at its head).
#include <boost/asio/ssl/context.hpp>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "dataplane/http1.h"
#include "ir/ir.h"

namespace re2 {
class RE2;
}

namespace gantry::dataplane {

using RegexConstSharedPtr = std::shared_ptr<const re2::RE2>;

struct ClusterEntry;

struct CompiledRoute {
  std::string name;
  ir::RouteMatch match;
  std::vector<ir::WeightedBackend> backends;
  // Parallel to backends: each one's cluster in this snapshot (null when missing), looked up once
  // here rather than by name per request.
  std::vector<const ClusterEntry*> clusters;
  uint64_t totalWeight = 0;
  std::optional<uint32_t> requestTimeoutMs;
  std::optional<uint32_t> backendRequestTimeoutMs;
  std::optional<ir::HeaderMutation> requestHeaders;
  std::optional<ir::HeaderMutation> responseHeaders;
  std::optional<ir::Redirect> redirect;
  std::optional<ir::Rewrite> rewrite;
  std::optional<ir::Cors> cors;
  std::optional<ir::Route::Retry> retry;
  std::vector<ir::Route::Mirror> mirrors;
  // RegularExpression matches, compiled once per snapshot (RE2: linear time).
  RegexConstSharedPtr pathRegex;
  std::vector<RegexConstSharedPtr> headerRegex; // parallel to match.headers; null for Exact
  std::vector<RegexConstSharedPtr> queryRegex;  // parallel to match.queryParams
  bool exactPath = false;                       // match.pathType == "Exact", decided once
};

struct CompiledVirtualHost {
  std::string hostname;
  std::vector<CompiledRoute> routes; // in precedence order
  // The routes a path can match, by the path's first segment ("api" for "/api/v1"): those that
  // require that segment (Exact and PathPrefix paths) merged, in precedence order, with those that
  // match any first segment (PathPrefix "/", regular expressions). Built once per snapshot, so a
  // request scans only its own segment's routes, not the whole virtual host.
  std::unordered_map<std::string, std::vector<uint32_t>> bySegment;
  std::vector<uint32_t> anySegment;
};

struct ListenerView {
  std::string name;
  uint16_t gatewayPort = 0; // the port the Gateway declares (redirects default to it)
  std::optional<std::string> hostname;
  std::vector<CompiledVirtualHost> vhosts;
  std::unordered_map<std::string, size_t> exact; // hostname -> vhost index
  std::vector<size_t> wildcards;                 // "*.x" vhosts, most specific first
  std::optional<size_t> any;                     // "*"

  const CompiledVirtualHost* vhostFor(std::string_view host) const;
};

struct PortGroup {
  std::string key; // address:port
  std::string address;
  uint16_t port = 0;
  bool tls = false;
  std::vector<ListenerView> listeners;
  // TLS: one context per certificate; contexts[0] is the default and carries the SNI callback.
  std::vector<std::unique_ptr<boost::asio::ssl::context>> contexts;
  std::vector<std::vector<std::string>> contextNames; // DNS names per context
  std::vector<std::optional<std::string>> contextListenerHost;

  // Listener selection (spec 5.2): exact hostname, then the most specific wildcard, then a listener
  // without hostname.
  const ListenerView* listenerFor(std::string_view host) const;
  SSL_CTX* contextForSni(std::string_view sni) const;
};

struct ClusterEntry {
  ir::Cluster ir;
  // Per endpoint, built once per snapshot so that a request allocates neither: the upstream pool
  // key (cluster|address:port|snapshot version) and the name used in logs.
  std::vector<std::string> poolKeys;
  std::vector<std::string> endpointLabels;
  std::unique_ptr<boost::asio::ssl::context> tlsContext; // null: plaintext (or tlsError)
  std::string contextError;
};

class Snapshot {
public:
  // Compiles `config`; problems that make a listener or cluster unusable are appended to `errors`
  // (and that piece is left out or answers 5xx), the rest is served.
  static std::shared_ptr<const Snapshot> compile(const ir::Config& config, uint64_t version,
                                                 std::vector<std::string>& errors);

  uint64_t version() const { return version_; }
  const std::map<std::string, PortGroup>& ports() const { return ports_; }
  const PortGroup* port(const std::string& key) const;
  const ClusterEntry* cluster(const std::string& name) const;

private:
  uint64_t version_ = 0;
  std::map<std::string, PortGroup> ports_;
  std::unordered_map<std::string, ClusterEntry> clusters_;
};

using SnapshotConstSharedPtr = std::shared_ptr<const Snapshot>;

// Request facts the router matches on.
struct RequestView {
  std::string_view method;
  std::string_view path;  // target up to '?'
  std::string_view query; // after '?', may be empty
  const http1::Fields* headers = nullptr;
};

// First route of `vhost` whose match accepts the request (routes are in precedence order).
const CompiledRoute* matchRoute(const CompiledVirtualHost& vhost, const RequestView& req);

// HTTPPathModifier: ReplaceFullPath, or ReplacePrefixMatch of the route's `matchPrefix`.
std::string rewritePath(const ir::PathModifier& modifier, std::string_view matchPrefix,
                        std::string_view path);

// HTTPCORSFilter origin matching: "*", or scheme://host[:port] where a leftmost "*." matches any
// number of labels and a missing port is the scheme's default.
bool corsOriginAllowed(const ir::Cors& cors, std::string_view origin);

// PathPrefix semantics of the Gateway API: element-wise ("/foo" matches "/foo" and "/foo/bar", not
// "/foobar"); a trailing slash in the prefix is ignored.
bool pathPrefixMatches(std::string_view prefix, std::string_view path);

} // namespace gantry::dataplane
