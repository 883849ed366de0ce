#pragma once
// Kubernetes and Gateway API resources as plain data. Decoding (YAML/JSON -> these structs) lives
// in decode.cc so that no parser type leaks into the translator. Defaults from the specs are
// applied by the decoder: a field here holds what the API server would have stored.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace gantry::api {

inline constexpr const char* kGatewayGroup = "gateway.networking.k8s.io";
inline constexpr const char* kAlbGroup = "alb.networking.azure.io";

// Where an object came from: the file and the line of its first key.
struct SourceLocation {
  std::string file;
  int line = 0;
};

struct ObjectMeta {
  std::string name;
  std::string ns; // empty for cluster-scoped kinds
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> annotations;
  int64_t generation = 1;        // kept by the store, per the API server's rule
  std::string creationTimestamp; // RFC 3339; stamped by the store on first sight if absent
};

// What every object carries: its metadata, where it was read, and the manifest as read (JSON,
// status removed, Secret values redacted) for `gantry get` to echo.
struct ObjectBase {
  ObjectMeta meta;
  SourceLocation source;
  std::string rawJson;
};

struct Condition {
  std::string type;
  std::string status; // "True", "False", "Unknown"
  std::string reason;
  std::string message;
  int64_t observedGeneration = 0;
  std::string lastTransitionTime; // set by the controller, never by the translator
};

// --- Gateway API --------------------------------------------------------------------------

struct ParentReference {
  std::string group = kGatewayGroup;
  std::string kind = "Gateway";
  std::optional<std::string> ns;
  std::string name;
  std::optional<std::string> sectionName;
  std::optional<int32_t> port;
};

// SecretObjectReference / ObjectReference: group "" and kind Secret by default.
struct ObjectReference {
  std::string group;
  std::string kind = "Secret";
  std::string name;
  std::optional<std::string> ns;
};

struct RouteGroupKind {
  std::string group = kGatewayGroup;
  std::string kind;
};

struct LabelSelector {
  std::map<std::string, std::string> matchLabels;
  struct Requirement {
    std::string key;
    std::string op; // In, NotIn, Exists, DoesNotExist
    std::vector<std::string> values;
  };
  std::vector<Requirement> matchExpressions;
};

struct Listener {
  std::string name;
  std::optional<std::string> hostname;
  int32_t port = 0;
  std::string protocol;
  struct Tls {
    std::string mode = "Terminate";
    std::vector<ObjectReference> certificateRefs;
  };
  std::optional<Tls> tls;
  std::string allowedFrom = "Same"; // Same | All | Selector
  std::optional<LabelSelector> allowedSelector;
  std::optional<std::vector<RouteGroupKind>> allowedKinds;
};

struct GatewayAddress {
  std::string type = "IPAddress";
  std::string value;
};

struct Gateway : ObjectBase {
  std::string gatewayClassName;
  std::vector<Listener> listeners;
  std::vector<GatewayAddress> addresses;
  std::optional<ObjectReference> backendClientCertificateRef; // spec.tls.backend
  // spec.tls.frontend (GEP-91): client-certificate validation for HTTPS listeners.
  struct FrontendValidation {
    std::vector<ObjectReference> caCertificateRefs; // kind defaults to ConfigMap
    std::string mode = "AllowValidOnly";            // or AllowInsecureFallback
  };
  std::optional<FrontendValidation> frontendDefault;
  std::map<int32_t, FrontendValidation> frontendPerPort;
  // spec.infrastructure: labels and annotations for generated resources (none in file mode) and a
  // LocalParametersReference (group, kind, name in the Gateway's namespace).
  std::map<std::string, std::string> infrastructureLabels;
  std::map<std::string, std::string> infrastructureAnnotations;
  std::optional<ObjectReference> parametersRef;
};

struct GatewayClass : ObjectBase {
  std::string controllerName;
  std::optional<ObjectReference> parametersRef; // ParametersReference (namespace for namespaced kinds)
  bool implicit = false; // created by Gantry, not read from a file
};

struct HTTPHeaderMatch {
  std::string type = "Exact";
  std::string name;
  std::string value;
};

struct HTTPRouteMatch {
  std::string pathType = "PathPrefix";
  std::string pathValue = "/";
  std::vector<HTTPHeaderMatch> headers;
  std::vector<HTTPHeaderMatch> queryParams;
  std::optional<std::string> method;
};

struct HTTPHeader {
  std::string name;
  std::string value;
};

// HTTPHeaderFilter: RequestHeaderModifier / ResponseHeaderModifier.
struct HTTPHeaderFilter {
  std::vector<HTTPHeader> set;
  std::vector<HTTPHeader> add;
  std::vector<std::string> remove;
};

// HTTPPathModifier.
struct HTTPPathModifier {
  std::string type; // ReplaceFullPath | ReplacePrefixMatch
  std::string value;
};

struct HTTPRequestRedirect {
  std::optional<std::string> scheme;
  std::optional<std::string> hostname;
  std::optional<HTTPPathModifier> path;
  std::optional<int32_t> port;
  int32_t statusCode = 302;
};

struct HTTPURLRewrite {
  std::optional<std::string> hostname;
  std::optional<HTTPPathModifier> path;
};

// HTTPCORSFilter.
struct HTTPCORSFilter {
  std::vector<std::string> allowOrigins;
  bool allowCredentials = false;
  std::vector<std::string> allowMethods;
  std::vector<std::string> allowHeaders;
  std::vector<std::string> exposeHeaders;
  int32_t maxAge = 5;
};

// HTTPRequestMirrorFilter.
struct HTTPRequestMirror {
  std::string group;
  std::string kind = "Service";
  std::string name;
  std::optional<std::string> ns;
  std::optional<int32_t> port;
  int32_t numerator = 100; // percent, or fraction numerator
  int32_t denominator = 100;
};

// One filter. Types Gantry does not implement yet are kept by name so that the rule can be
// reported (UnsupportedValue) rather than silently served without them.
struct HTTPRouteFilter {
  std::string type;
  std::optional<HTTPHeaderFilter> requestHeaderModifier;
  std::optional<HTTPHeaderFilter> responseHeaderModifier;
  std::optional<HTTPRequestRedirect> requestRedirect;
  std::optional<HTTPURLRewrite> urlRewrite;
  std::optional<HTTPCORSFilter> cors;
  std::optional<HTTPRequestMirror> requestMirror;
};

struct HTTPBackendRef {
  std::string group;
  std::string kind = "Service";
  std::string name;
  std::optional<std::string> ns;
  std::optional<int32_t> port;
  int32_t weight = 1;
  std::vector<HTTPRouteFilter> filters;
};

struct HTTPRouteRule {
  std::optional<std::string> name;
  std::vector<HTTPRouteMatch> matches; // defaulted to one PathPrefix "/" match
  std::vector<HTTPRouteFilter> filters;
  std::vector<HTTPBackendRef> backendRefs;
  // timeouts (GEP-1742), in milliseconds; 0 disables.
  std::optional<int64_t> requestTimeoutMs;
  std::optional<int64_t> backendRequestTimeoutMs;
  // retry (GEP-1731)
  struct Retry {
    std::vector<int32_t> codes;
    int32_t attempts = 1;
    int64_t backoffMs = 0;
  };
  std::optional<Retry> retry;
};

struct HTTPRoute : ObjectBase {
  std::vector<ParentReference> parentRefs;
  std::vector<std::string> hostnames;
  std::vector<HTTPRouteRule> rules;
};

struct ReferenceGrant : ObjectBase {
  struct From {
    std::string group;
    std::string kind;
    std::string ns;
  };
  struct To {
    std::string group;
    std::string kind;
    std::optional<std::string> name;
  };
  std::vector<From> from;
  std::vector<To> to;
};

// Upstream BackendTLSPolicy (gateway.networking.k8s.io/v1).
struct BackendTLSPolicy : ObjectBase {
  struct TargetRef {
    std::string group;
    std::string kind;
    std::string name;
    std::optional<std::string> sectionName;
  };
  std::vector<TargetRef> targetRefs;
  std::vector<ObjectReference> caCertificateRefs; // kind defaults to ConfigMap here
  std::optional<std::string> wellKnownCACertificates;
  std::string hostname;
  struct SubjectAltName {
    std::string type; // Hostname | URI
    std::string value;
  };
  std::vector<SubjectAltName> subjectAltNames;
};

// The how-to's BackendTLSPolicy (alb.networking.azure.io/v1): per Service, with a client
// certificate.
struct AlbBackendTLSPolicy : ObjectBase {
  struct TargetRef {
    std::string group;
    std::string kind;
    std::string name;
    std::optional<std::string> ns;
    std::vector<std::string> sectionNames;
  };
  TargetRef targetRef;
  bool hasOverride = false; // spec.override: not supported by the product (OverrideNotSupported)
  std::optional<std::string> sni;
  std::vector<int32_t> ports;
  std::optional<ObjectReference> clientCertificateRef;
  std::optional<ObjectReference> caCertificateRef; // default.verify.caCertificateRef
  std::optional<std::string> subjectAltName;       // default.verify.subjectAltName
};

// --- Kubernetes core ----------------------------------------------------------------------

struct ServicePort {
  std::optional<std::string> name;
  int32_t port = 0;
  std::string protocol = "TCP";
  std::optional<int32_t> targetPortNumber;
  std::optional<std::string> targetPortName;
  std::optional<std::string> appProtocol;
};

struct Service : ObjectBase {
  std::string type = "ClusterIP";
  std::vector<ServicePort> ports;
  std::map<std::string, std::string> selector;
};

struct EndpointSlice : ObjectBase {
  std::string addressType = "IPv4";
  struct Endpoint {
    std::vector<std::string> addresses;
    bool ready = true;
  };
  std::vector<Endpoint> endpoints;
  struct Port {
    std::optional<std::string> name;
    std::optional<int32_t> port;
  };
  std::vector<Port> ports;
};

struct Endpoints : ObjectBase {
  struct Subset {
    std::vector<std::string> addresses; // ready addresses only
    struct Port {
      std::optional<std::string> name;
      int32_t port = 0;
    };
    std::vector<Port> ports;
  };
  std::vector<Subset> subsets;
};

struct Secret : ObjectBase {
  std::string type = "Opaque";
  std::map<std::string, std::string> data; // decoded bytes
};

struct ConfigMap : ObjectBase {
  std::map<std::string, std::string> data;
};

struct Namespace : ObjectBase {
  bool implicit = false; // only named by another object's metadata.namespace
};

// Any other kind: read, logged once, ignored.
struct OtherObject {
  std::string apiVersion;
  std::string kind;
  ObjectMeta meta;
  SourceLocation source;
};

// The translator's input: every object Gantry serves, as read from one source.
struct ResourceSet {
  std::vector<GatewayClass> gatewayClasses;
  std::vector<Gateway> gateways;
  std::vector<HTTPRoute> httpRoutes;
  std::vector<ReferenceGrant> referenceGrants;
  std::vector<BackendTLSPolicy> backendTLSPolicies;
  std::vector<AlbBackendTLSPolicy> albBackendTLSPolicies;
  std::vector<Service> services;
  std::vector<EndpointSlice> endpointSlices;
  std::vector<Endpoints> endpoints;
  std::vector<Secret> secrets;
  std::vector<ConfigMap> configMaps;
  std::vector<Namespace> namespaces;
  std::vector<OtherObject> others;
};

} // namespace gantry::api
