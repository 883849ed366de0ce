#pragma once
// The data-plane contract: what the translator hands to the data plane. Plain structs, printable
// as YAML (ir/dump.h), comparable, and free of Kubernetes notions. Names encode provenance
// (httproute/<ns>/<name>/rule/<index or name>/match/<j>, service/<ns>/<name>/<port>).
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace gantry::ir {

// A certificate chain with its private key. The key is secret: dumps show only the fingerprint.
struct CertificateKeyPair {
  std::string source;      // e.g. secret/test-infra/frontend.com
  std::string certPem;     // leaf first, then intermediates
  std::string keyPem;      // never printed
  std::string fingerprint; // sha256 of the leaf's DER, hex
  std::vector<std::string> dnsNames; // leaf subjectAltName DNS entries (SNI selection)
  bool operator==(const CertificateKeyPair&) const = default;
};

struct HeaderMatch {
  std::string type; // Exact | RegularExpression
  std::string name;
  std::string value;
  bool operator==(const HeaderMatch&) const = default;
};

struct RouteMatch {
  std::string pathType; // Exact | PathPrefix | RegularExpression
  std::string path;
  std::vector<HeaderMatch> headers;
  std::vector<HeaderMatch> queryParams;
  std::optional<std::string> method;
  bool operator==(const RouteMatch&) const = default;
};

// RequestHeaderModifier / ResponseHeaderModifier: names are lowercase.
struct HeaderMutation {
  std::vector<std::pair<std::string, std::string>> set;
  std::vector<std::pair<std::string, std::string>> add;
  std::vector<std::string> remove;
  bool operator==(const HeaderMutation&) const = default;
};

struct PathModifier {
  std::string type; // ReplaceFullPath | ReplacePrefixMatch (of the route's PathPrefix match)
  std::string value;
  bool operator==(const PathModifier&) const = default;
};

// RequestRedirect: the gateway answers `status` with a Location built from the request.
struct Redirect {
  std::optional<std::string> scheme;
  std::optional<std::string> hostname;
  std::optional<PathModifier> path;
  std::optional<uint16_t> port;
  int status = 302;
  bool operator==(const Redirect&) const = default;
};

// URLRewrite: what the backend sees instead of the client's Host and path.
struct Rewrite {
  std::optional<std::string> hostname;
  std::optional<PathModifier> path;
  bool operator==(const Rewrite&) const = default;
};

// CORS: the gateway answers preflights and adds the response headers (HTTPCORSFilter).
struct Cors {
  std::vector<std::string> allowOrigins; // "*", or scheme://host[:port] with "*." host wildcards
  bool allowCredentials = false;
  std::vector<std::string> allowMethods;
  std::vector<std::string> allowHeaders;
  std::vector<std::string> exposeHeaders;
  int32_t maxAge = 5;
  bool operator==(const Cors&) const = default;
};

// One weighted choice of a route. `cluster` empty means the backend is invalid and the share of
// traffic that picks it is answered with `status` (500), per the Gateway API.
struct WeightedBackend {
  std::string cluster;
  uint32_t weight = 1;
  int status = 0; // non-zero: answer this status instead of forwarding
  std::string reason; // why it is invalid (logged with the 500)
  // backendRef filters: applied only when this backend is chosen.
  std::optional<HeaderMutation> requestHeaders;
  std::optional<HeaderMutation> responseHeaders;
  bool operator==(const WeightedBackend&) const = default;
};

struct Route {
  std::string name;
  RouteMatch match;
  std::vector<WeightedBackend> backends; // empty: 500 (no backendRefs)
  // Until the response head, in milliseconds; 0 disables; unset: the gateway default (60 s).
  std::optional<uint32_t> requestTimeoutMs;
  std::optional<uint32_t> backendRequestTimeoutMs; // per upstream attempt
  std::optional<HeaderMutation> requestHeaders;
  std::optional<HeaderMutation> responseHeaders;
  std::optional<Redirect> redirect; // set: answered by the gateway, no backend
  std::optional<Rewrite> rewrite;
  std::optional<Cors> cors;
  struct Retry {
    std::vector<int32_t> codes;
    int32_t attempts = 1; // upstream tries in all
    uint32_t backoffMs = 0;
    bool operator==(const Retry&) const = default;
  };
  std::optional<Retry> retry;
  // RequestMirror: copies of the request (without body) to these clusters; answers discarded.
  struct Mirror {
    std::string cluster;
    uint32_t numerator = 100;
    uint32_t denominator = 100;
    bool operator==(const Mirror&) const = default;
  };
  std::vector<Mirror> mirrors;
  bool operator==(const Route&) const = default;
};

// Routes for one hostname, already ordered by Gateway API precedence: the first match wins.
struct VirtualHost {
  std::string hostname; // exact, "*.suffix" wildcard, or "*" for any
  std::vector<Route> routes;
  bool operator==(const VirtualHost&) const = default;
};

struct Listener {
  std::string name;    // gateway/<ns>/<gateway>/<listener>
  std::string address; // IP to bind
  uint16_t port = 0;   // port to bind (after --port-offset)
  uint16_t gatewayPort = 0; // the listener's port in the Gateway (redirects default to it)
  std::string protocol; // HTTP | HTTPS
  std::optional<std::string> hostname;
  std::vector<CertificateKeyPair> certificates; // HTTPS only
  // Client certificates (Gateway spec.tls.frontend): trusted CAs, and whether a client without a
  // valid certificate is still served (AllowInsecureFallback).
  struct ClientValidation {
    std::vector<std::string> caPems;
    bool insecureFallback = false;
    bool operator==(const ClientValidation&) const = default;
  };
  std::optional<ClientValidation> clientValidation;
  std::vector<VirtualHost> virtualHosts;
  bool operator==(const Listener&) const = default;
};

struct UpstreamTls {
  std::string policy; // the policy that asked for TLS, e.g. backendtlspolicy/test-infra/x
  std::string sni;
  std::vector<std::string> caPems; // trust anchors; empty with systemCa means system store
  bool systemCa = false;
  std::vector<std::string> subjectAltNames; // DNS names the backend must present (any one)
  std::vector<std::string> uriSubjectAltNames;
  std::optional<CertificateKeyPair> clientCertificate;
  bool operator==(const UpstreamTls&) const = default;
};

struct Endpoint {
  std::string address;
  uint16_t port = 0;
  bool operator==(const Endpoint&) const = default;
};

struct Cluster {
  std::string name; // service/<ns>/<name>/<port>
  std::vector<Endpoint> endpoints; // ready endpoints only; empty => 503
  std::optional<UpstreamTls> tls;
  // Set when a policy wants TLS but cannot be honoured (missing CA, bad client certificate):
  // requests answer 500 and are never sent in plaintext.
  std::optional<std::string> tlsError;
  bool h2c = false; // appProtocol kubernetes.io/h2c: HTTP/2 with prior knowledge (GEP-1911)
  bool operator==(const Cluster&) const = default;
};

struct Config {
  std::vector<Listener> listeners;
  std::vector<Cluster> clusters; // sorted by name
  bool operator==(const Config&) const = default;
};

// What the data plane reports back after applying a Config: the problems that left parts of it
// unserved, and the address:ports it could not bind (their listeners get PortUnavailable).
struct ApplyReport {
  std::vector<std::string> problems;
  std::vector<std::string> unboundPorts; // "address:port"
  std::vector<std::string> unusableAddresses; // addresses this machine does not have
};

} // namespace gantry::ir
