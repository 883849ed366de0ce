#include "translate/translator.h"

#include <arpa/inet.h>

#include <algorithm>
#include <functional>
#include <set>
#include <tuple>

#include "common/strings.h"
#include "pki/pki.h"

#include <re2/re2.h>

namespace gantry::translate {

std::string ObjectKey::str() const {
  return kind + "/" + (ns.empty() ? "" : ns + "/") + name;
}

namespace {

using api::Condition;

// Status wording the product prints (how-to, agc-product-notes §4).
constexpr const char* kProgrammedMessage =
    "Application Gateway For Containers resource has been successfully updated.";
constexpr const char* kCoreGroup = "";
constexpr const char* kAlbFrontendType = "alb.networking.azure.io/alb-frontend";

Condition cond(const std::string& type, bool ok, const std::string& reason,
               const std::string& message, int64_t generation) {
  return Condition{type, ok ? "True" : "False", reason, message, generation, ""};
}

bool isIpLiteral(const std::string& s) {
  unsigned char buf[sizeof(struct in6_addr)];
  return inet_pton(AF_INET, s.c_str(), buf) == 1 || inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

// Service port appProtocol values (GEP-1911) Gantry speaks to a backend.
bool supportedAppProtocol(const std::string& p) {
  return p == "http" || p == "https" || p == "kubernetes.io/ws" || p == "kubernetes.io/wss" ||
         p == "kubernetes.io/h2c";
}

// Gateway API hostname matching: "*.example.com" matches any name with at least one more label.
bool wildcardMatches(const std::string& pattern, const std::string& host) {
  if (!startsWith(pattern, "*.")) {
    return pattern == host;
  }
  std::string suffix = pattern.substr(1); // ".example.com"
  return host.size() > suffix.size() && endsWith(host, suffix);
}

// HTTPRouteSpec.hostnames vs Listener.hostname (spec: HTTPRoute hostnames "intersect" with the
// listener's). Returns the effective hostnames; empty means no intersection.
std::vector<std::string> intersectHostnames(const std::optional<std::string>& listenerHost,
                                            const std::vector<std::string>& routeHosts) {
  if (!listenerHost || listenerHost->empty()) {
    return routeHosts.empty() ? std::vector<std::string>{"*"} : routeHosts;
  }
  if (routeHosts.empty()) {
    return {*listenerHost};
  }
  std::vector<std::string> out;
  const std::string& l = *listenerHost;
  for (const auto& h : routeHosts) {
    if (h == l) {
      out.push_back(h);
    } else if (startsWith(l, "*.") && !startsWith(h, "*.") && wildcardMatches(l, h)) {
      out.push_back(h);
    } else if (startsWith(h, "*.") && !startsWith(l, "*.") && wildcardMatches(h, l)) {
      out.push_back(l);
    } else if (startsWith(h, "*.") && startsWith(l, "*.")) {
      // Both wildcards: the more specific one, if it is inside the other.
      if (wildcardMatches(l, h.substr(2))) {
        out.push_back(h);
      } else if (wildcardMatches(h, l.substr(2))) {
        out.push_back(l);
      }
    }
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

bool selectorMatches(const api::LabelSelector& sel, const std::map<std::string, std::string>& labels) {
  for (const auto& [k, v] : sel.matchLabels) {
    auto it = labels.find(k);
    if (it == labels.end() || it->second != v) {
      return false;
    }
  }
  for (const auto& r : sel.matchExpressions) {
    auto it = labels.find(r.key);
    bool has = it != labels.end();
    bool in = has && std::find(r.values.begin(), r.values.end(), it->second) != r.values.end();
    if ((r.op == "In" && !in) || (r.op == "NotIn" && in) || (r.op == "Exists" && !has) ||
        (r.op == "DoesNotExist" && has)) {
      return false;
    }
  }
  return true;
}

// Everything the translator needs to look things up, built once per translation.
class Index {
public:
  Index(const api::ResourceSet& rs) : rs_(rs) {
    for (const auto& s : rs.secrets) {
      secrets_[{s.meta.ns, s.meta.name}] = &s;
    }
    for (const auto& c : rs.configMaps) {
      configMaps_[{c.meta.ns, c.meta.name}] = &c;
    }
    for (const auto& s : rs.services) {
      services_[{s.meta.ns, s.meta.name}] = &s;
    }
    for (const auto& n : rs.namespaces) {
      nsLabels_[n.meta.name] = n.meta.labels;
    }
  }

  const api::Secret* secret(const std::string& ns, const std::string& name) const {
    auto it = secrets_.find({ns, name});
    return it == secrets_.end() ? nullptr : it->second;
  }
  const api::ConfigMap* configMap(const std::string& ns, const std::string& name) const {
    auto it = configMaps_.find({ns, name});
    return it == configMaps_.end() ? nullptr : it->second;
  }
  const api::Service* service(const std::string& ns, const std::string& name) const {
    auto it = services_.find({ns, name});
    return it == services_.end() ? nullptr : it->second;
  }
  // Namespace labels, with kubernetes.io/metadata.name as the API server sets it.
  std::map<std::string, std::string> namespaceLabels(const std::string& ns) const {
    std::map<std::string, std::string> labels;
    if (auto it = nsLabels_.find(ns); it != nsLabels_.end()) {
      labels = it->second;
    }
    labels["kubernetes.io/metadata.name"] = ns;
    return labels;
  }

  // GEP-709: a reference from (fromGroup, fromKind, fromNs) to (toGroup, toKind, toNs/toName) is
  // allowed when a ReferenceGrant in the target namespace lists both sides.
  bool referenceAllowed(const std::string& fromGroup, const std::string& fromKind,
                        const std::string& fromNs, const std::string& toGroup,
                        const std::string& toKind, const std::string& toNs,
                        const std::string& toName) const {
    if (fromNs == toNs) {
      return true;
    }
    for (const auto& g : rs_.referenceGrants) {
      if (g.meta.ns != toNs) {
        continue;
      }
      bool fromOk = std::any_of(g.from.begin(), g.from.end(), [&](const auto& f) {
        return f.group == fromGroup && f.kind == fromKind && f.ns == fromNs;
      });
      bool toOk = std::any_of(g.to.begin(), g.to.end(), [&](const auto& t) {
        return t.group == toGroup && t.kind == toKind && (!t.name || *t.name == toName);
      });
      if (fromOk && toOk) {
        return true;
      }
    }
    return false;
  }

  const api::ResourceSet& resources() const { return rs_; }

private:
  using Key = std::pair<std::string, std::string>;
  const api::ResourceSet& rs_;
  std::map<Key, const api::Secret*> secrets_;
  std::map<Key, const api::ConfigMap*> configMaps_;
  std::map<Key, const api::Service*> services_;
  std::map<std::string, std::map<std::string, std::string>> nsLabels_;
};

struct RefProblem {
  std::string reason;
  std::string message;
};

class Translator {
public:
  Translator(const api::ResourceSet& rs, const Options& o) : rs_(rs), opts_(o), index_(rs) {}

  Result run() {
    classes();
    gateways();
    routes();
    finishGateways();
    albPolicies();
    upstreamPolicies();
    emitClusters();
    dedupeWarnings();
    return std::move(result_);
  }

private:
  // --- certificates -------------------------------------------------------------------------

  void warn(const ObjectKey& key, const std::string& message) {
    result_.warnings.push_back({key, message});
  }

  static ObjectKey secretKey(const std::string& ns, const std::string& name) {
    return {kCoreGroup, "Secret", ns, name};
  }

  // Loads a kubernetes.io/tls-shaped Secret (tls.crt + tls.key) into a key pair.
  std::optional<ir::CertificateKeyPair> loadKeyPair(const std::string& ns, const std::string& name,
                                                    bool forClientAuth, RefProblem& problem) {
    const api::Secret* s = index_.secret(ns, name);
    if (s == nullptr) {
      problem = {"", "Secret " + ns + "/" + name + " not found"};
      return std::nullopt;
    }
    auto crt = s->data.find("tls.crt");
    auto key = s->data.find("tls.key");
    if (crt == s->data.end() || key == s->data.end()) {
      problem = {"", "Secret " + ns + "/" + name + " must hold tls.crt and tls.key"};
      return std::nullopt;
    }
    std::vector<pki::CertInfo> chain;
    if (auto err = pki::parseCertificates(crt->second, chain)) {
      problem = {"", "Secret " + ns + "/" + name + " tls.crt: " + *err};
      return std::nullopt;
    }
    if (auto err = pki::checkKeyPair(crt->second, key->second)) {
      problem = {"", "Secret " + ns + "/" + name + " tls.key: " + *err};
      return std::nullopt;
    }
    auto skey = secretKey(ns, name);
    for (const auto& w : pki::validityWarnings(chain.front(), opts_.now)) {
      warn(skey, w);
    }
    if (forClientAuth && !chain.front().clientAuth) {
      warn(skey, "certificate " + chain.front().subject +
                     " lacks the clientAuth extended key usage; a backend that verifies client "
                     "certificates will refuse it (unsupported certificate purpose)");
    }
    ir::CertificateKeyPair pair;
    pair.source = "secret/" + ns + "/" + name;
    pair.certPem = crt->second;
    pair.keyPem = key->second;
    pair.fingerprint = chain.front().fingerprint;
    pair.dnsNames = chain.front().dnsNames;
    return pair;
  }

  // Loads a CA bundle from a Secret or ConfigMap key `ca.crt`.
  std::optional<std::string> loadCa(const std::string& kind, const std::string& ns,
                                    const std::string& name, RefProblem& problem) {
    const std::map<std::string, std::string>* data = nullptr;
    if (kind == "Secret") {
      if (const auto* s = index_.secret(ns, name)) {
        data = &s->data;
      }
    } else {
      if (const auto* c = index_.configMap(ns, name)) {
        data = &c->data;
      }
    }
    if (data == nullptr) {
      problem = {"", kind + " " + ns + "/" + name + " not found"};
      return std::nullopt;
    }
    auto it = data->find("ca.crt");
    if (it == data->end()) {
      problem = {"", kind + " " + ns + "/" + name + " has no ca.crt key"};
      return std::nullopt;
    }
    std::vector<pki::CertInfo> certs;
    if (auto err = pki::parseCertificates(it->second, certs)) {
      problem = {"", kind + " " + ns + "/" + name + " ca.crt: " + *err};
      return std::nullopt;
    }
    for (const auto& c : certs) {
      for (const auto& w : pki::validityWarnings(c, opts_.now)) {
        warn({kCoreGroup, kind, ns, name}, "CA " + w);
      }
    }
    return it->second;
  }

  // --- GatewayClasses -----------------------------------------------------------------------

  void classes() {
    std::vector<api::GatewayClass> classes = rs_.gatewayClasses;
    if (classes.empty()) {
      // DESIGN.md: the classes azure-alb-external and gantry exist implicitly.
      for (const char* name : {"azure-alb-external", "gantry"}) {
        api::GatewayClass c;
        c.meta.name = name;
        c.controllerName = opts_.controllerName;
        c.implicit = true;
        classes.push_back(c);
      }
    }
    for (const auto& c : classes) {
      if (c.controllerName != opts_.controllerName) {
        continue; // another controller's class: not ours to touch
      }
      ObjectStatus st;
      // gatewayclass_types.go: Accepted=True/Accepted when the controller handles the class;
      // False/InvalidParameters when its parametersRef cannot be used. Gateways of a class that
      // is not accepted are left alone.
      if (auto problem = parametersProblem(c.parametersRef, c.parametersRef ? c.parametersRef->ns : std::nullopt)) {
        st.conditions.push_back(cond("Accepted", false, "InvalidParameters", *problem, c.meta.generation));
      } else {
        ourClasses_.insert(c.meta.name);
        st.conditions.push_back(cond("Accepted", true, "Accepted", "Valid GatewayClass",
                                     c.meta.generation));
      }
      st.supportedFeatures = {"Gateway", "HTTPRoute", "ReferenceGrant", "BackendTLSPolicy"};
      result_.statuses[{api::kGatewayGroup, "GatewayClass", "", c.meta.name}] = std::move(st);
    }
  }

  // A parametersRef (GatewayClass spec.parametersRef, Gateway spec.infrastructure.parametersRef)
  // may name a core ConfigMap; Gantry reads no parameters from it yet. Anything else, or a missing
  // ConfigMap, is InvalidParameters (spec 5.3, 8.1).
  std::optional<std::string> parametersProblem(const std::optional<api::ObjectReference>& ref,
                                               const std::optional<std::string>& ns) {
    if (!ref) {
      return std::nullopt;
    }
    if (ref->group != "" || ref->kind != "ConfigMap") {
      return "parametersRef " + (ref->group.empty() ? "" : ref->group + "/") + ref->kind + " " + ref->name +
             ": only a core ConfigMap is supported";
    }
    if (!ns) {
      return "parametersRef ConfigMap " + ref->name + " needs a namespace";
    }
    if (index_.configMap(*ns, ref->name) == nullptr) {
      return "parametersRef ConfigMap " + *ns + "/" + ref->name + " not found";
    }
    return std::nullopt;
  }

  // --- Gateways and listeners ---------------------------------------------------------------

  struct ListenerState {
    const api::Listener* spec = nullptr;
    ir::Listener ir;
    bool accepted = true;
    bool resolved = true;
    std::vector<Condition> conditions; // filled in finishGateways
    int32_t attached = 0;
    std::vector<api::RouteGroupKind> supportedKinds;
    std::string problemReason;
    std::string problemMessage;
    std::string acceptReason;
    std::string acceptMessage;
    std::string conflictReason; // HostnameConflict | ProtocolConflict, empty when distinct
    bool overlappingTls = false; // another HTTPS listener on the port has an overlapping hostname
  };

  struct GatewayState {
    const api::Gateway* gw = nullptr;
    ObjectKey key;
    std::vector<std::string> addresses; // empty when not assigned
    std::string addressProblem; // AddressNotAssigned | AddressNotUsable | UnsupportedAddress

    std::string addressMessage;
    std::vector<ListenerState> listeners;
    std::optional<ir::CertificateKeyPair> backendClientCert;
    std::optional<RefProblem> backendClientCertProblem;
    std::optional<std::string> parametersProblem; // spec.infrastructure.parametersRef
  };

  void gateways() {
    std::vector<const api::Gateway*> ours;
    for (const auto& g : rs_.gateways) {
      if (ourClasses_.count(g.gatewayClassName) != 0) {
        ours.push_back(&g);
      }
    }
    // The address pool is handed out in creation order, then by namespace/name.
    std::sort(ours.begin(), ours.end(), [](const api::Gateway* a, const api::Gateway* b) {
      return std::tie(a->meta.creationTimestamp, a->meta.ns, a->meta.name) <
             std::tie(b->meta.creationTimestamp, b->meta.ns, b->meta.name);
    });
    size_t pool = 0;
    for (const auto* g : ours) {
      GatewayState gs;
      gs.gw = g;
      gs.key = {api::kGatewayGroup, "Gateway", g->meta.ns, g->meta.name};
      // Gateway spec.addresses (spec 5.3, GatewayStaticAddresses): every listener is bound on every
      // address. IPAddress values are used as given, Hostname values as resolved; an empty value
      // asks for one from the pool (GatewayAddressEmpty). The product's
      // alb.networking.azure.io/alb-frontend names a frontend given by --frontend NAME=IP. Other
      // types are UnsupportedAddress; a value that cannot be used is AddressNotUsable.
      bool wantPool = g->addresses.empty();
      for (const auto& a : g->addresses) {
        if (!gs.addressProblem.empty()) {
          break;
        }
        if (a.type == "IPAddress" || a.type == "Hostname") {
          if (a.value.empty()) {
            wantPool = true;
          } else if (a.type == "IPAddress") {
            if (isIpLiteral(a.value)) {
              gs.addresses.push_back(a.value);
            } else {
              gs.addressProblem = "AddressNotUsable";
              gs.addressMessage = "address " + a.value + " is not an IP address";
            }
          } else {
            auto ips = opts_.resolveHostname ? opts_.resolveHostname(a.value) : std::vector<std::string>{};
            if (ips.empty()) {
              gs.addressProblem = "AddressNotUsable";
              gs.addressMessage = "hostname " + a.value + " does not resolve to an address";
            }
            gs.addresses.insert(gs.addresses.end(), ips.begin(), ips.end());
          }
        } else if (a.type == kAlbFrontendType) {
          if (auto it = opts_.frontends.find(a.value); it != opts_.frontends.end()) {
            gs.addresses.push_back(it->second);
          } else {
            gs.addressProblem = "AddressNotAssigned";
            gs.addressMessage = "frontend " + a.value + " is not known; give its address with --frontend " +
                                a.value + "=IP";
          }
        } else {
          gs.addressProblem = "UnsupportedAddress";
          gs.addressMessage = "address type " + a.type + " is not supported";
        }
      }
      if (gs.addressProblem.empty() && wantPool) {
        if (pool < opts_.addressPool.size()) {
          gs.addresses.push_back(opts_.addressPool[pool++]);
        } else {
          gs.addressProblem = "AddressNotAssigned";
          gs.addressMessage = "No addresses have been assigned to the Gateway: the address pool (" +
                              std::to_string(opts_.addressPool.size()) +
                              " addresses, --address-pool) is used up";
        }
      }
      std::sort(gs.addresses.begin(), gs.addresses.end());
      gs.addresses.erase(std::unique(gs.addresses.begin(), gs.addresses.end()), gs.addresses.end());
      if (!gs.addressProblem.empty()) {
        gs.addresses.clear(); // nothing is served on some of the addresses only
      }
      gs.parametersProblem = parametersProblem(g->parametersRef, g->meta.ns);
      if (g->backendClientCertificateRef) {
        const auto& ref = *g->backendClientCertificateRef;
        std::string ns = ref.ns.value_or(g->meta.ns);
        RefProblem p;
        if (ref.group != "" || ref.kind != "Secret") {
          gs.backendClientCertProblem =
              RefProblem{"InvalidClientCertificateRef",
                         "clientCertificateRef must name a core Secret, not " + ref.kind};
        } else if (!index_.referenceAllowed(api::kGatewayGroup, "Gateway", g->meta.ns, "",
                                            "Secret", ns, ref.name)) {
          gs.backendClientCertProblem = RefProblem{
              "RefNotPermitted", "Secret " + ns + "/" + ref.name +
                                     " is in another namespace and no ReferenceGrant allows it"};
        } else if (auto pair = loadKeyPair(ns, ref.name, true, p)) {
          gs.backendClientCert = std::move(pair);
        } else {
          gs.backendClientCertProblem = RefProblem{"InvalidClientCertificateRef", p.message};
        }
      }
      for (const auto& l : g->listeners) {
        gs.listeners.push_back(listener(gs, l));
      }
      markConflicts(gs);
      gatewayStates_.push_back(std::move(gs));
    }
  }

  // Spec 5.2: listeners must be distinct. HTTP and HTTPS on one port are ProtocolConflict; the same
  // port, protocol and hostname twice is HostnameConflict. None of the conflicting ones is served.
  // Two listener hostnames overlap when some name matches both: no hostname matches everything,
  // and a wildcard overlaps any name it matches (or a wildcard inside it).
  static bool hostnamesOverlap(const std::optional<std::string>& a, const std::optional<std::string>& b) {
    if (!a || !b || a->empty() || b->empty()) {
      return true;
    }
    return *a == *b || (startsWith(*a, "*.") && (wildcardMatches(*a, *b) || wildcardMatches(*a, b->substr(startsWith(*b, "*.") ? 2 : 0)))) ||
           (startsWith(*b, "*.") && (wildcardMatches(*b, *a) || wildcardMatches(*b, a->substr(startsWith(*a, "*.") ? 2 : 0))));
  }

  static void markConflicts(GatewayState& gs) {
    for (size_t i = 0; i < gs.listeners.size(); ++i) {
      auto& a = gs.listeners[i];
      if (!a.accepted) {
        continue;
      }
      for (size_t j = 0; j < gs.listeners.size(); ++j) {
        const auto& b = gs.listeners[j];
        if (i == j || !b.accepted || a.spec->port != b.spec->port) {
          continue;
        }
        if (a.spec->protocol != b.spec->protocol) {
          a.conflictReason = "ProtocolConflict";
        } else if (a.spec->hostname.value_or("") == b.spec->hostname.value_or("") &&
                   a.conflictReason.empty()) {
          a.conflictReason = "HostnameConflict";
        } else if (a.spec->protocol == "HTTPS" && hostnamesOverlap(a.spec->hostname, b.spec->hostname)) {
          // Spec 5.2: OverlappingTLSConfig=True (OverlappingHostnames) on both listeners.
          a.overlappingTls = true;
        }
      }
    }
  }

  ListenerState listener(const GatewayState& gs, const api::Listener& l) {
    const auto* g = gs.gw;
    ListenerState ls;
    ls.spec = &l;
    ls.ir.name = "gateway/" + g->meta.ns + "/" + g->meta.name + "/" + l.name;
    ls.ir.address = gs.addresses.empty() ? "" : gs.addresses.front();
    ls.ir.port = static_cast<uint16_t>(l.port + opts_.portOffset);
    ls.ir.gatewayPort = static_cast<uint16_t>(l.port);
    ls.ir.protocol = l.protocol;
    ls.ir.hostname = l.hostname;
    if (l.protocol != "HTTP" && l.protocol != "HTTPS") {
      // Listener Accepted=False/UnsupportedProtocol with no supported kinds (gateway_types.go).
      ls.accepted = false;
      ls.acceptReason = "UnsupportedProtocol";
      ls.acceptMessage = "protocol " + l.protocol + " is not supported; use HTTP or HTTPS";
      return ls;
    }
    ls.supportedKinds = {{api::kGatewayGroup, "HTTPRoute"}};
    if (l.allowedKinds) {
      std::vector<api::RouteGroupKind> kept;
      bool invalid = false;
      for (const auto& k : *l.allowedKinds) {
        if (k.group == api::kGatewayGroup && k.kind == "HTTPRoute") {
          kept.push_back(k);
        } else {
          invalid = true;
        }
      }
      ls.supportedKinds = kept;
      if (invalid) {
        ls.resolved = false;
        ls.problemReason = "InvalidRouteKinds";
        ls.problemMessage = "only HTTPRoute is supported on " + l.protocol + " listeners";
      }
    }
    if (l.protocol == "HTTPS") {
      if (!l.tls || l.tls->mode != "Terminate" || l.tls->certificateRefs.empty()) {
        ls.resolved = false;
        ls.problemReason = "InvalidCertificateRef";
        ls.problemMessage = "HTTPS listener needs tls.mode Terminate with a certificateRef";
        return ls;
      }
      for (const auto& ref : l.tls->certificateRefs) {
        std::string ns = ref.ns.value_or(g->meta.ns);
        // Listener certificateRefs: core is a Secret of type kubernetes.io/tls (spec 5.1).
        if (ref.group != "" || ref.kind != "Secret") {
          ls.resolved = false;
          ls.problemReason = "InvalidCertificateRef";
          ls.problemMessage = "certificateRef " + ref.name + " must be a core Secret, not " +
                              (ref.group.empty() ? "" : ref.group + "/") + ref.kind;
          continue;
        }
        if (!index_.referenceAllowed(api::kGatewayGroup, "Gateway", g->meta.ns, "", "Secret", ns,
                                     ref.name)) {
          ls.resolved = false;
          ls.problemReason = "RefNotPermitted";
          ls.problemMessage = "Secret " + ns + "/" + ref.name +
                              " is in another namespace and no ReferenceGrant allows it";
          continue;
        }
        RefProblem p;
        if (auto pair = loadKeyPair(ns, ref.name, false, p)) {
          ls.ir.certificates.push_back(std::move(*pair));
        } else {
          ls.resolved = false;
          ls.problemReason = "InvalidCertificateRef";
          ls.problemMessage = p.message;
        }
      }
      frontendValidation(*g, l, ls);
    }
    return ls;
  }

  // Gateway spec.tls.frontend (GEP-91): perPort wins over default for HTTPS listeners on that
  // port. Invalid refs: ResolvedRefs=False InvalidCACertificateRef (InvalidCACertificateKind for a
  // kind other than ConfigMap or Secret, RefNotPermitted across namespaces without a grant); when
  // no ref is usable, Accepted=False NoValidCACertificate and the listener serves no TLS.
  void frontendValidation(const api::Gateway& g, const api::Listener& l, ListenerState& ls) {
    const api::Gateway::FrontendValidation* v = nullptr;
    if (auto it = g.frontendPerPort.find(l.port); it != g.frontendPerPort.end()) {
      v = &it->second;
    } else if (g.frontendDefault) {
      v = &*g.frontendDefault;
    }
    if (v == nullptr) {
      return;
    }
    ir::Listener::ClientValidation cv;
    cv.insecureFallback = v->mode == "AllowInsecureFallback";
    for (const auto& ref : v->caCertificateRefs) {
      std::string ns = ref.ns.value_or(g.meta.ns);
      if (ref.group != "" || (ref.kind != "ConfigMap" && ref.kind != "Secret")) {
        ls.resolved = false;
        ls.problemReason = "InvalidCACertificateKind";
        ls.problemMessage = "caCertificateRef " + ref.name + ": kind " + ref.kind + " is not supported";
        continue;
      }
      if (!index_.referenceAllowed(api::kGatewayGroup, "Gateway", g.meta.ns, "", ref.kind, ns, ref.name)) {
        ls.resolved = false;
        ls.problemReason = "RefNotPermitted";
        ls.problemMessage = ref.kind + " " + ns + "/" + ref.name +
                            " is in another namespace and no ReferenceGrant allows it";
        continue;
      }
      RefProblem p;
      if (auto ca = loadCa(ref.kind, ns, ref.name, p)) {
        cv.caPems.push_back(*ca);
      } else {
        ls.resolved = false;
        ls.problemReason = "InvalidCACertificateRef";
        ls.problemMessage = p.message;
      }
    }
    if (cv.caPems.empty()) {
      ls.accepted = false;
      ls.acceptReason = "NoValidCACertificate";
      ls.acceptMessage = "no usable CA certificate for client validation" +
                         (ls.problemMessage.empty() ? std::string() : ": " + ls.problemMessage);
      return;
    }
    ls.ir.clientValidation = std::move(cv);
  }

  // --- HTTPRoutes ---------------------------------------------------------------------------

  struct PendingRoute {
    ir::Route route;
    const api::HTTPRoute* owner;
    size_t ruleIndex;
    size_t matchIndex;
  };
  // listener name -> hostname -> routes
  std::map<std::string, std::map<std::string, std::vector<PendingRoute>>> routeTable_;

  GatewayState* findGateway(const std::string& ns, const std::string& name) {
    for (auto& gs : gatewayStates_) {
      if (gs.gw->meta.ns == ns && gs.gw->meta.name == name) {
        return &gs;
      }
    }
    return nullptr;
  }

  bool gatewayExistsElsewhere(const std::string& ns, const std::string& name) const {
    for (const auto& g : rs_.gateways) {
      if (g.meta.ns == ns && g.meta.name == name) {
        return true;
      }
    }
    return false;
  }

  // Resolves one backendRef to a cluster, or explains why it cannot be used.
  ir::WeightedBackend backend(const api::HTTPRoute& r, const api::HTTPBackendRef& b,
                              std::optional<RefProblem>& problem, const GatewayState& gs) {
    ir::WeightedBackend wb;
    wb.weight = static_cast<uint32_t>(b.weight);
    std::string ns = b.ns.value_or(r.meta.ns);
    auto invalid = [&](const std::string& reason, const std::string& message) {
      wb.status = 500; // spec section 3: requests to an invalid backend get HTTP 500
      wb.reason = message;
      if (!problem) {
        problem = RefProblem{reason, message};
      }
      return wb;
    };
    if (b.group != "" || b.kind != "Service") {
      return invalid("InvalidKind", "backendRef " + b.name + ": kind " +
                                        (b.group.empty() ? "" : b.group + "/") + b.kind +
                                        " is not supported");
    }
    if (!index_.referenceAllowed(api::kGatewayGroup, "HTTPRoute", r.meta.ns, "", "Service", ns,
                                 b.name)) {
      return invalid("RefNotPermitted", "Service " + ns + "/" + b.name +
                                            " is in another namespace and no ReferenceGrant "
                                            "allows it");
    }
    const api::Service* svc = index_.service(ns, b.name);
    if (svc == nullptr) {
      usedBy_[{ns, b.name}].insert(gs.key); // a policy on the missing Service: TargetNotFound
      return invalid("BackendNotFound", "Service " + ns + "/" + b.name + " not found");
    }
    if (!b.port) {
      return invalid("BackendNotFound", "backendRef to Service " + ns + "/" + b.name +
                                            " needs a port");
    }
    const api::ServicePort* sp = nullptr;
    for (const auto& p : svc->ports) {
      if (p.port == *b.port) {
        sp = &p;
      }
    }
    if (sp == nullptr) {
      return invalid("BackendNotFound", "Service " + ns + "/" + b.name + " has no port " +
                                            std::to_string(*b.port));
    }
    if (svc->type == "ExternalName") {
      return invalid("BackendNotFound", "Service " + ns + "/" + b.name +
                                            " is of type ExternalName, which is not supported");
    }
    // GEP-1911 appProtocol: HTTP/1.1 (with WebSocket upgrades for kubernetes.io/ws and wss), HTTP/2
    // with prior knowledge for kubernetes.io/h2c; any protocol Gantry cannot speak to the backend
    // makes the ref ResolvedRefs=False/UnsupportedProtocol.
    if (sp->appProtocol && !supportedAppProtocol(*sp->appProtocol)) {
      return invalid("UnsupportedProtocol", "Service " + ns + "/" + b.name + " port " +
                                                std::to_string(*b.port) + ": appProtocol " +
                                                *sp->appProtocol + " is not supported");
    }
    wb.cluster = cluster(*svc, *sp, gs);
    return wb;
  }

  // Precedence (HTTPRouteRule docs / spec section 1): Exact path, then longest prefix, then method,
  // then most headers, then most query params, then oldest route, then namespace/name, then rule
  // order.
  static bool precedes(const PendingRoute& a, const PendingRoute& b) {
    // Spec 1.3 orders Exact before PathPrefix and leaves RegularExpression to implementations:
    // Gantry puts it between the two (longer patterns first), so that a catch-all PathPrefix "/"
    // does not hide every regular expression, as Envoy Gateway does.
    auto kindRank = [](const std::string& t) {
      return t == "Exact" ? 3 : (t == "RegularExpression" ? 2 : (t == "PathPrefix" ? 1 : 0));
    };
    const auto& ma = a.route.match;
    const auto& mb = b.route.match;
    if (kindRank(ma.pathType) != kindRank(mb.pathType)) {
      return kindRank(ma.pathType) > kindRank(mb.pathType);
    }
    if (ma.path.size() != mb.path.size()) {
      return ma.path.size() > mb.path.size();
    }
    if (ma.method.has_value() != mb.method.has_value()) {
      return ma.method.has_value();
    }
    if (ma.headers.size() != mb.headers.size()) {
      return ma.headers.size() > mb.headers.size();
    }
    if (ma.queryParams.size() != mb.queryParams.size()) {
      return ma.queryParams.size() > mb.queryParams.size();
    }
    const auto& ra = a.owner->meta;
    const auto& rb = b.owner->meta;
    if (ra.creationTimestamp != rb.creationTimestamp) {
      return ra.creationTimestamp < rb.creationTimestamp;
    }
    if (ra.ns != rb.ns) {
      return ra.ns < rb.ns;
    }
    if (ra.name != rb.name) {
      return ra.name < rb.name;
    }
    return std::tie(a.ruleIndex, a.matchIndex) < std::tie(b.ruleIndex, b.matchIndex);
  }

  // Match types and values Gantry can serve: Exact and PathPrefix paths (which must start with
  // "/"), RegularExpression in RE2 syntax (linear time, so no ReDoS) for paths, headers and query
  // parameters. Anything else leaves the rule unimplemented, with the reason.
  static std::optional<std::string> checkMatch(const api::HTTPRouteMatch& m) {
    auto regexError = [](const std::string& what, const std::string& pattern) -> std::optional<std::string> {
      RE2 re(pattern, RE2::Quiet);
      if (!re.ok()) {
        return what + " regular expression \"" + pattern + "\" is invalid: " + re.error();
      }
      return std::nullopt;
    };
    if (m.pathType == "RegularExpression") {
      if (auto e = regexError("path", m.pathValue)) {
        return e;
      }
    } else if (m.pathType != "Exact" && m.pathType != "PathPrefix") {
      return "path match type " + m.pathType + " is not supported";
    } else if (m.pathValue.empty() || m.pathValue.front() != '/') {
      return "path \"" + m.pathValue + "\" must start with /";
    }
    for (const auto* list : {&m.headers, &m.queryParams}) {
      for (const auto& h : *list) {
        if (h.type == "RegularExpression") {
          if (auto e = regexError(h.name, h.value)) {
            return e;
          }
        } else if (h.type != "Exact") {
          return "match type " + h.type + " for " + h.name + " is not supported";
        }
      }
    }
    return std::nullopt;
  }

  struct RouteFilters {
    std::optional<ir::HeaderMutation> requestHeaders;
    std::optional<ir::HeaderMutation> responseHeaders;
    std::optional<ir::Redirect> redirect;
    std::optional<ir::Rewrite> rewrite;
    std::optional<ir::Cors> cors;
    std::vector<api::HTTPRequestMirror> mirrors; // resolved by attach()
  };

  static ir::HeaderMutation mutation(const api::HTTPHeaderFilter& f) {
    ir::HeaderMutation m;
    for (const auto& h : f.set) {
      m.set.emplace_back(toLower(h.name), h.value);
    }
    for (const auto& h : f.add) {
      m.add.emplace_back(toLower(h.name), h.value);
    }
    for (const auto& h : f.remove) {
      m.remove.push_back(toLower(h));
    }
    return m;
  }

  static std::optional<ir::PathModifier> pathModifier(const std::optional<api::HTTPPathModifier>& p) {
    if (!p) {
      return std::nullopt;
    }
    return ir::PathModifier{p->type, p->value};
  }

  // Spec section 2: the filters Gantry implements become IR; any other type leaves the rule
  // unimplemented (returned as the reason), never served without it. Backend filters support the
  // header modifiers only.
  // Filters Gantry cannot apply: UnsupportedValue for a type it does not implement,
  // IncompatibleFilters for a known one where Gantry cannot apply it (on a backendRef).
  static std::optional<RefProblem> applyFilters(const std::vector<api::HTTPRouteFilter>& filters,
                                                RouteFilters& out, bool ruleLevel) {
    for (const auto& f : filters) {
      if (f.requestHeaderModifier) {
        out.requestHeaders = mutation(*f.requestHeaderModifier);
      } else if (f.responseHeaderModifier) {
        out.responseHeaders = mutation(*f.responseHeaderModifier);
      } else if (ruleLevel && f.requestRedirect) {
        const auto& r = *f.requestRedirect;
        ir::Redirect red;
        red.scheme = r.scheme;
        red.hostname = r.hostname;
        red.path = pathModifier(r.path);
        if (r.port) {
          red.port = static_cast<uint16_t>(*r.port);
        }
        red.status = r.statusCode;
        out.redirect = red;
      } else if (ruleLevel && f.requestMirror) {
        out.mirrors.push_back(*f.requestMirror);
      } else if (ruleLevel && f.cors) {
        const auto& c = *f.cors;
        out.cors = ir::Cors{c.allowOrigins, c.allowCredentials, c.allowMethods, c.allowHeaders,
                            c.exposeHeaders, c.maxAge};
      } else if (ruleLevel && f.urlRewrite) {
        out.rewrite = ir::Rewrite{f.urlRewrite->hostname, pathModifier(f.urlRewrite->path)};
      } else {
        if (f.requestRedirect || f.requestMirror || f.cors || f.urlRewrite) {
          return RefProblem{"IncompatibleFilters",
                            "filter type " + f.type + " on a backendRef is not supported; use it on the rule"};
        }
        return RefProblem{"UnsupportedValue", "filter type " + f.type + (ruleLevel ? "" : " on a backendRef") +
                                                  " is not supported yet"};
      }
    }
    return std::nullopt;
  }

  void routes() {
    for (const auto& r : rs_.httpRoutes) {
      ObjectKey key{api::kGatewayGroup, "HTTPRoute", r.meta.ns, r.meta.name};
      ObjectStatus st;
      const int64_t gen = r.meta.generation;
      for (const auto& pref : r.parentRefs) {
        std::string pns = pref.ns.value_or(r.meta.ns);
        ParentStatus ps;
        ps.parentRef = pref;
        ps.parentRef.ns = pns;
        ps.controllerName = opts_.controllerName;
        if (pref.group != api::kGatewayGroup || pref.kind != "Gateway") {
          continue; // not a parent kind we implement: leave it to its owner
        }
        GatewayState* gs = findGateway(pns, pref.name);
        if (gs == nullptr) {
          if (gatewayExistsElsewhere(pns, pref.name)) {
            continue; // a Gateway of another controller
          }
          ps.conditions.push_back(cond("Accepted", false, "NoMatchingParent",
                                       "Gateway " + pns + "/" + pref.name + " not found", gen));
          st.parents.push_back(std::move(ps));
          continue;
        }
        attach(r, pref, *gs, ps, gen);
        st.parents.push_back(std::move(ps));
      }
      result_.statuses[key] = std::move(st);
    }
  }

  // Route attachment to one Gateway (spec 5.4): selects listeners by sectionName/port, applies
  // allowedRoutes and hostname intersection, and writes the route's parent status.
  void attach(const api::HTTPRoute& r, const api::ParentReference& pref, GatewayState& gs,
              ParentStatus& ps, int64_t gen) {
    std::vector<ListenerState*> selected;
    for (auto& ls : gs.listeners) {
      if (pref.sectionName && *pref.sectionName != ls.spec->name) {
        continue;
      }
      if (pref.port && *pref.port != ls.spec->port) {
        continue;
      }
      selected.push_back(&ls);
    }
    if (selected.empty()) {
      ps.conditions.push_back(cond("Accepted", false, "NoMatchingParent",
                                   "no listener of Gateway " + gs.gw->meta.ns + "/" +
                                       gs.gw->meta.name + " matches the parentRef's " +
                                       (pref.sectionName ? "sectionName " + *pref.sectionName
                                                         : "port"),
                                   gen));
      return;
    }
    std::vector<std::pair<ListenerState*, std::vector<std::string>>> accepting;
    bool anyAllowed = false;
    for (auto* ls : selected) {
      bool kindOk = std::any_of(ls->supportedKinds.begin(), ls->supportedKinds.end(),
                                [](const auto& k) { return k.kind == "HTTPRoute"; });
      bool nsOk = false;
      const auto& from = ls->spec->allowedFrom;
      if (from == "All") {
        nsOk = true;
      } else if (from == "Selector" && ls->spec->allowedSelector) {
        nsOk = selectorMatches(*ls->spec->allowedSelector, index_.namespaceLabels(r.meta.ns));
      } else if (from == "Same") {
        nsOk = r.meta.ns == gs.gw->meta.ns;
      }
      if (!kindOk || !nsOk) {
        continue;
      }
      anyAllowed = true;
      auto hosts = intersectHostnames(ls->spec->hostname, r.hostnames);
      if (!hosts.empty()) {
        accepting.emplace_back(ls, std::move(hosts));
      }
    }
    if (!anyAllowed) {
      ps.conditions.push_back(cond("Accepted", false, "NotAllowedByListeners",
                                   "no listener of Gateway " + gs.gw->meta.ns + "/" +
                                       gs.gw->meta.name + " allows routes from namespace " +
                                       r.meta.ns,
                                   gen));
      return;
    }
    if (accepting.empty()) {
      ps.conditions.push_back(cond("Accepted", false, "NoMatchingListenerHostname",
                                   "no hostname of the route intersects a listener hostname",
                                   gen));
      return;
    }
    // Build IR routes once per rule and match; invalid backends become 500s, the route stays.
    std::optional<RefProblem> problem;
    std::optional<std::string> unsupported;
    std::string unsupportedReason = "UnsupportedValue"; // or IncompatibleFilters (spec 2)
    std::vector<PendingRoute> built;
    for (size_t ri = 0; ri < r.rules.size(); ++ri) {
      const auto& rule = r.rules[ri];
      // Named rules (HTTPRouteNamedRouteRule): messages and logs name the rule when it has a name.
      const std::string ruleId = rule.name ? *rule.name : std::to_string(ri);
      const std::string ruleLabel = "rule " + ruleId + ": ";
      bool ruleOk = true;
      RouteFilters rf;
      if (auto why = applyFilters(rule.filters, rf, true)) {
        unsupported = ruleLabel + why->message;
        unsupportedReason = why->reason;
        ruleOk = false;
      }
      // RequestMirror backends resolve like backendRefs; an unusable one is reported
      // (ResolvedRefs) and dropped, never failing the request itself (spec 2.4).
      std::vector<ir::Route::Mirror> mirrors;
      for (const auto& m : rf.mirrors) {
        api::HTTPBackendRef ref;
        ref.group = m.group;
        ref.kind = m.kind;
        ref.name = m.name;
        ref.ns = m.ns;
        ref.port = m.port;
        auto wb = backend(r, ref, problem, gs);
        if (wb.status == 0) {
          mirrors.push_back({wb.cluster, static_cast<uint32_t>(m.numerator), static_cast<uint32_t>(m.denominator)});
        }
      }
      std::vector<ir::WeightedBackend> backends;
      for (const auto& b : rule.backendRefs) {
        auto wb = backend(r, b, problem, gs);
        RouteFilters bf;
        if (auto why = applyFilters(b.filters, bf, false)) {
          unsupported = ruleLabel + why->message;
          unsupportedReason = why->reason;
          ruleOk = false;
        }
        wb.requestHeaders = bf.requestHeaders;
        wb.responseHeaders = bf.responseHeaders;
        backends.push_back(std::move(wb));
      }
      for (size_t mi = 0; mi < rule.matches.size(); ++mi) {
        const auto& m = rule.matches[mi];
        if (auto why = checkMatch(m)) {
          unsupported = ruleLabel + *why;
          unsupportedReason = "UnsupportedValue";
          ruleOk = false;
        }
        if (!ruleOk) {
          continue;
        }
        PendingRoute pr;
        pr.owner = &r;
        pr.ruleIndex = ri;
        pr.matchIndex = mi;
        pr.route.name = "httproute/" + r.meta.ns + "/" + r.meta.name + "/rule/" + ruleId + "/match/" +
                        std::to_string(mi);
        pr.route.match.pathType = m.pathType;
        pr.route.match.path = m.pathValue;
        pr.route.match.method = m.method;
        for (const auto& h : m.headers) {
          pr.route.match.headers.push_back({h.type, toLower(h.name), h.value});
        }
        for (const auto& q : m.queryParams) {
          pr.route.match.queryParams.push_back({q.type, q.name, q.value});
        }
        pr.route.backends = backends;
        pr.route.requestHeaders = rf.requestHeaders;
        pr.route.responseHeaders = rf.responseHeaders;
        pr.route.redirect = rf.redirect;
        pr.route.rewrite = rf.rewrite;
        pr.route.cors = rf.cors;
        pr.route.mirrors = mirrors;
        if (rule.retry) {
          // HTTPRouteRetry (GEP-1731): attempts counts every upstream try.
          pr.route.retry = ir::Route::Retry{rule.retry->codes, rule.retry->attempts,
                                            static_cast<uint32_t>(std::min<int64_t>(rule.retry->backoffMs, UINT32_MAX))};
        }
        // HTTPRouteTimeouts (GEP-1742): request and backendRequest, carried to the data plane.
        if (rule.requestTimeoutMs) {
          pr.route.requestTimeoutMs = static_cast<uint32_t>(std::min<int64_t>(*rule.requestTimeoutMs, UINT32_MAX));
        }
        if (rule.backendRequestTimeoutMs) {
          pr.route.backendRequestTimeoutMs =
              static_cast<uint32_t>(std::min<int64_t>(*rule.backendRequestTimeoutMs, UINT32_MAX));
        }
        built.push_back(std::move(pr));
      }
    }
    if (built.empty() && !r.rules.empty()) {
      ps.conditions.push_back(cond("Accepted", false, unsupportedReason,
                                   unsupported.value_or("no rule could be implemented"), gen));
      return;
    }
    for (auto& [ls, hosts] : accepting) {
      ls->attached++;
      for (const auto& h : hosts) {
        auto& list = routeTable_[ls->ir.name][h];
        for (const auto& pr : built) {
          list.push_back(pr);
        }
      }
    }
    // Condition order as the how-to prints it: ResolvedRefs, Accepted, Programmed.
    if (problem) {
      ps.conditions.push_back(cond("ResolvedRefs", false, problem->reason, problem->message, gen));
    } else {
      ps.conditions.push_back(cond("ResolvedRefs", true, "ResolvedRefs", "", gen));
    }
    ps.conditions.push_back(cond("Accepted", true, "Accepted", "Route is Accepted", gen));
    if (unsupported) {
      ps.conditions.push_back(cond("PartiallyInvalid", true, unsupportedReason,
                                   "Dropped Rule(s): " + *unsupported, gen));
    }
    ps.conditions.push_back(cond("Programmed", true, "Programmed", kProgrammedMessage, gen));
  }

  // --- Gateway status and IR listeners ------------------------------------------------------

  void finishGateways() {
    for (auto& gs : gatewayStates_) {
      const int64_t gen = gs.gw->meta.generation;
      ObjectStatus st;
      size_t programmed = 0;
      size_t valid = 0;
      for (auto& ls : gs.listeners) {
        ListenerStatus lst;
        lst.name = ls.spec->name;
        lst.supportedKinds = ls.supportedKinds;
        lst.attachedRoutes = ls.attached;
        lst.conditions.push_back(ls.resolved
                                     ? cond("ResolvedRefs", true, "ResolvedRefs", "", gen)
                                     : cond("ResolvedRefs", false, ls.problemReason,
                                            ls.problemMessage, gen));
        lst.conditions.push_back(ls.accepted ? cond("Accepted", true, "Accepted",
                                                    "Listener is accepted", gen)
                                             : cond("Accepted", false, ls.acceptReason,
                                                    ls.acceptMessage, gen));
        if (!ls.conflictReason.empty()) {
          lst.conditions.push_back(cond("Conflicted", true, ls.conflictReason,
                                        ls.conflictReason == "ProtocolConflict"
                                            ? "another listener uses port " + std::to_string(ls.spec->port) +
                                                  " with a different protocol"
                                            : "another listener has the same port, protocol and hostname",
                                        gen));
        }
        if (ls.overlappingTls && ls.conflictReason.empty()) {
          lst.conditions.push_back(cond("OverlappingTLSConfig", true, "OverlappingHostnames",
                                        "another HTTPS listener on port " + std::to_string(ls.spec->port) +
                                            " has a hostname that overlaps this one's",
                                        gen));
        }
        // Unsupported route kinds next to HTTPRoute leave the listener serving its HTTPRoutes
        // (spec 5.1: the invalid kinds are left out of supportedKinds, the valid ones stay).
        const bool resolvedEnough =
            ls.resolved || (ls.problemReason == "InvalidRouteKinds" && !ls.supportedKinds.empty());
        bool ok = ls.accepted && resolvedEnough && ls.conflictReason.empty() && !gs.addresses.empty() &&
                  !gs.parametersProblem;
        if (ls.accepted && ls.conflictReason.empty()) {
          valid++;
        }
        if (ok) {
          lst.conditions.push_back(cond("Programmed", true, "Programmed", kProgrammedMessage, gen));
          programmed++;
          buildListenerIr(ls, gs.addresses);
        } else {
          lst.conditions.push_back(cond("Programmed", false, "Invalid",
                                        gs.parametersProblem ? "the Gateway is not accepted"
                                        : gs.addresses.empty() ? "the Gateway has no address"
                                        : !ls.conflictReason.empty() ? "the listener conflicts with another"
                                                                     : "the listener has invalid configuration",
                                        gen));
        }
        st.listeners.push_back(std::move(lst));
      }
      if (gs.addressProblem == "UnsupportedAddress") {
        st.conditions.push_back(cond("Accepted", false, "UnsupportedAddress", gs.addressMessage, gen));
      } else if (gs.parametersProblem) {
        st.conditions.push_back(cond("Accepted", false, "InvalidParameters", *gs.parametersProblem, gen));
      } else if (valid == gs.listeners.size()) {
        st.conditions.push_back(cond("Accepted", true, "Accepted", "Valid Gateway", gen));
      } else {
        st.conditions.push_back(cond("Accepted", valid > 0, "ListenersNotValid",
                                     std::to_string(gs.listeners.size() - valid) +
                                         " listener(s) are not valid",
                                     gen));
      }
      if (gs.parametersProblem) {
        st.conditions.push_back(cond("Programmed", false, "Invalid", "the Gateway is not accepted", gen));
      } else if (gs.addresses.empty()) {
        st.conditions.push_back(cond("Programmed", false,
                                     gs.addressProblem == "UnsupportedAddress" ? "AddressNotAssigned"
                                                                               : gs.addressProblem,
                                     gs.addressMessage, gen));
      } else if (programmed == 0) {
        st.conditions.push_back(cond("Programmed", false, "Invalid",
                                     "no listener could be programmed", gen));
      } else {
        st.conditions.push_back(cond("Programmed", true, "Programmed", kProgrammedMessage, gen));
        for (const auto& a : gs.addresses) {
          st.addresses.push_back({"IPAddress", a});
        }
      }
      bool insecure = gs.gw->frontendDefault && gs.gw->frontendDefault->mode == "AllowInsecureFallback";
      for (const auto& [port, v] : gs.gw->frontendPerPort) {
        insecure = insecure || v.mode == "AllowInsecureFallback";
      }
      if (insecure) {
        // GEP-91: set while any frontend validation allows clients without a valid certificate.
        st.conditions.push_back(cond("InsecureFrontendValidationMode", true, "ConfigurationChanged",
                                     "client certificate validation allows insecure fallback", gen));
      }
      // Gateway ResolvedRefs (spec 8.2): the Gateway's own references (tls.backend), then a summary
      // of the listeners' ResolvedRefs. Written when there is something to say, so that the
      // how-to's Gateway keeps exactly its two conditions.
      std::vector<std::string> unresolved;
      for (const auto& ls : gs.listeners) {
        if (!ls.resolved) {
          unresolved.push_back(ls.spec->name);
        }
      }
      if (gs.backendClientCertProblem) {
        st.conditions.push_back(cond("ResolvedRefs", false, gs.backendClientCertProblem->reason,
                                     gs.backendClientCertProblem->message, gen));
      } else if (!unresolved.empty()) {
        st.conditions.push_back(cond("ResolvedRefs", false, "ListenersNotResolved",
                                     "listener(s) with unresolved references: " + joinStrings(unresolved, ", "),
                                     gen));
      } else if (gs.gw->backendClientCertificateRef) {
        st.conditions.push_back(cond("ResolvedRefs", true, "ResolvedRefs", "", gen));
      }
      result_.statuses[gs.key] = std::move(st);
    }
  }

  void buildListenerIr(ListenerState& ls, const std::vector<std::string>& addresses) {
    ir::Listener l = ls.ir;
    auto it = routeTable_.find(l.name);
    if (it != routeTable_.end()) {
      for (auto& [host, routes] : it->second) {
        std::stable_sort(routes.begin(), routes.end(), precedes);
        ir::VirtualHost vh;
        vh.hostname = host;
        for (auto& pr : routes) {
          vh.routes.push_back(pr.route);
        }
        l.virtualHosts.push_back(std::move(vh));
      }
    }
    // One data-plane listener per Gateway address (spec 5.3: every listener on every address).
    for (size_t i = 1; i < addresses.size(); ++i) {
      ir::Listener copy = l;
      copy.address = addresses[i];
      result_.ir.listeners.push_back(std::move(copy));
    }
    result_.ir.listeners.push_back(std::move(l));
  }

  // --- Clusters and backend TLS -------------------------------------------------------------

  struct ClusterState {
    ir::Cluster cluster;
    const api::Service* service = nullptr;
    const api::ServicePort* port = nullptr;
    std::string gatewayKey; // for the upstream policy's ancestor status
    const GatewayState* gateway = nullptr;
  };
  std::map<std::string, ClusterState> clusters_;

  std::string cluster(const api::Service& svc, const api::ServicePort& sp, const GatewayState& gs) {
    std::string name = "service/" + svc.meta.ns + "/" + svc.meta.name + "/" + std::to_string(sp.port);
    // A Gateway-wide backend client certificate (spec.tls.backend) makes the cluster specific to
    // that Gateway.
    bool perGateway = gs.backendClientCert.has_value();
    if (perGateway) {
      name += "@gateway/" + gs.gw->meta.ns + "/" + gs.gw->meta.name;
    }
    auto& cs = clusters_[name];
    if (cs.service == nullptr) {
      cs.cluster.name = name;
      cs.service = &svc;
      cs.port = &sp;
      cs.gateway = &gs;
      cs.cluster.endpoints = endpointsFor(svc, sp);
      cs.cluster.h2c = sp.appProtocol.value_or("") == "kubernetes.io/h2c";
    }
    usedBy_[{svc.meta.ns, svc.meta.name}].insert(gs.key);
    return name;
  }

  // Service port -> ready endpoints, through EndpointSlices (label kubernetes.io/service-name) or
  // an Endpoints object. Endpoints carry the target port (the slice's port of the same name).
  std::vector<ir::Endpoint> endpointsFor(const api::Service& svc, const api::ServicePort& sp) {
    std::vector<ir::Endpoint> out;
    const std::string portName = sp.name.value_or("");
    for (const auto& es : rs_.endpointSlices) {
      auto lbl = es.meta.labels.find("kubernetes.io/service-name");
      if (es.meta.ns != svc.meta.ns || lbl == es.meta.labels.end() || lbl->second != svc.meta.name) {
        continue;
      }
      std::optional<int32_t> port;
      for (const auto& p : es.ports) {
        if (p.name.value_or("") == portName && p.port) {
          port = p.port;
        }
      }
      if (!port && es.ports.empty()) {
        port = sp.targetPortNumber;
      }
      if (!port) {
        continue;
      }
      for (const auto& e : es.endpoints) {
        if (!e.ready) {
          continue;
        }
        for (const auto& a : e.addresses) {
          out.push_back({a, static_cast<uint16_t>(*port)});
        }
      }
    }
    for (const auto& ep : rs_.endpoints) {
      if (ep.meta.ns != svc.meta.ns || ep.meta.name != svc.meta.name) {
        continue;
      }
      for (const auto& s : ep.subsets) {
        std::optional<int32_t> port;
        for (const auto& p : s.ports) {
          if (p.name.value_or("") == portName) {
            port = p.port;
          }
        }
        if (!port) {
          continue;
        }
        for (const auto& a : s.addresses) {
          out.push_back({a, static_cast<uint16_t>(*port)});
        }
      }
    }
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
      return std::tie(a.address, a.port) < std::tie(b.address, b.port);
    });
    out.erase(std::unique(out.begin(), out.end(),
                          [](const auto& a, const auto& b) {
                            return a.address == b.address && a.port == b.port;
                          }),
              out.end());
    return out;
  }

  std::map<std::pair<std::string, std::string>, std::set<ObjectKey>> usedBy_;

  // The how-to's policy (alb.networking.azure.io/v1): per Service and Service port.
  void albPolicies() {
    for (const auto& p : rs_.albBackendTLSPolicies) {
      ObjectKey key{api::kAlbGroup, "BackendTLSPolicy", p.meta.ns, p.meta.name};
      const int64_t gen = p.meta.generation;
      ObjectStatus st;
      std::optional<RefProblem> problem;
      std::string targetNs = p.targetRef.ns.value_or(p.meta.ns);
      ir::UpstreamTls tls;
      tls.policy = "backendtlspolicy.alb/" + p.meta.ns + "/" + p.meta.name;
      tls.sni = p.sni.value_or("");
      if (p.hasOverride) {
        problem = RefProblem{"OverrideNotSupported", "spec.override is not supported; use spec.default"};
      } else if (p.targetRef.group != "" || p.targetRef.kind != "Service") {
        problem = RefProblem{"InvalidKind", "targetRef must be a core Service, not " + p.targetRef.kind};
      } else if (index_.service(targetNs, p.targetRef.name) == nullptr) {
        problem = RefProblem{"InvalidService", "Service " + targetNs + "/" + p.targetRef.name + " not found"};
      }
      if (!problem && p.caCertificateRef) {
        const auto& ref = *p.caCertificateRef;
        std::string ns = ref.ns.value_or(p.meta.ns);
        RefProblem rp;
        if (ref.group != "" || ref.kind != "Secret") {
          problem = RefProblem{"InvalidKind", "verify.caCertificateRef must be a core Secret"};
        } else if (auto ca = loadCa("Secret", ns, ref.name, rp)) {
          tls.caPems.push_back(*ca);
        } else {
          problem = RefProblem{"InvalidCertificateRef", rp.message};
        }
      }
      if (p.subjectAltName) {
        tls.subjectAltNames.push_back(*p.subjectAltName);
      }
      if (!problem && p.clientCertificateRef) {
        const auto& ref = *p.clientCertificateRef;
        std::string ns = ref.ns.value_or(p.meta.ns);
        RefProblem rp;
        if (ref.group != "" || ref.kind != "Secret") {
          problem = RefProblem{"InvalidKind", "clientCertificateRef must be a core Secret"};
        } else if (auto pair = loadKeyPair(ns, ref.name, true, rp)) {
          tls.clientCertificate = std::move(pair);
        } else {
          problem = RefProblem{"InvalidCertificateRef", rp.message};
        }
      }
      if (problem) {
        st.conditions.push_back(cond("Accepted", false, problem->reason, problem->message, gen));
        st.conditions.push_back(cond("ResolvedRefs", false, problem->reason, problem->message, gen));
      } else {
        st.conditions.push_back(cond("Accepted", true, "Accepted", "Valid BackendTLSPolicy", gen));
      }
      result_.statuses[key] = std::move(st);
      // Apply (or, when invalid, poison) every cluster of the target Service's selected ports.
      for (auto& [name, cs] : clusters_) {
        if (cs.service->meta.ns != targetNs || cs.service->meta.name != p.targetRef.name) {
          continue;
        }
        if (!p.ports.empty() &&
            std::find(p.ports.begin(), p.ports.end(), cs.port->port) == p.ports.end()) {
          continue; // ports are Service ports (443 in the how-to), not target ports
        }
        if (cs.cluster.tls && !cs.cluster.tlsError) {
          continue; // the oldest policy wins; files are read in order
        }
        if (problem) {
          cs.cluster.tlsError = "BackendTLSPolicy " + p.meta.ns + "/" + p.meta.name +
                                " is not accepted: " + problem->message;
          cs.cluster.tls = tls;
        } else {
          cs.cluster.tls = tls;
          cs.cluster.tlsError.reset();
        }
        albApplied_.insert(name);
      }
    }
  }
  std::set<std::string> albApplied_;

  // Upstream BackendTLSPolicy (gateway.networking.k8s.io/v1), with the Gateway-wide client
  // certificate of spec.tls.backend (GEP-3155).
  void upstreamPolicies() {
    std::vector<const api::BackendTLSPolicy*> policies;
    for (const auto& p : rs_.backendTLSPolicies) {
      policies.push_back(&p);
    }
    // Conflicts: the oldest policy wins, then namespace/name (GEP-713).
    std::sort(policies.begin(), policies.end(), [](const auto* a, const auto* b) {
      return std::tie(a->meta.creationTimestamp, a->meta.ns, a->meta.name) <
             std::tie(b->meta.creationTimestamp, b->meta.ns, b->meta.name);
    });
    for (const auto* p : policies) {
      ObjectKey key{api::kGatewayGroup, "BackendTLSPolicy", p->meta.ns, p->meta.name};
      const int64_t gen = p->meta.generation;
      ObjectStatus st;
      std::optional<RefProblem> problem;
      ir::UpstreamTls tls;
      tls.policy = "backendtlspolicy/" + p->meta.ns + "/" + p->meta.name;
      tls.sni = p->hostname;
      for (const auto& san : p->subjectAltNames) {
        (san.type == "URI" ? tls.uriSubjectAltNames : tls.subjectAltNames).push_back(san.value);
      }
      if (tls.subjectAltNames.empty() && tls.uriSubjectAltNames.empty()) {
        tls.subjectAltNames.push_back(p->hostname); // hostname is the identity when no SANs
      }
      size_t validCas = 0;
      for (const auto& ref : p->caCertificateRefs) {
        RefProblem rp;
        if (ref.group != "" || (ref.kind != "ConfigMap" && ref.kind != "Secret")) {
          problem = RefProblem{"InvalidKind", "caCertificateRef " + ref.name + ": kind " + ref.kind +
                                                  " is not supported"};
          continue;
        }
        if (auto ca = loadCa(ref.kind, p->meta.ns, ref.name, rp)) {
          tls.caPems.push_back(*ca);
          validCas++;
        } else {
          problem = RefProblem{"InvalidCACertificateRef", rp.message};
        }
      }
      if (p->wellKnownCACertificates) {
        if (*p->wellKnownCACertificates == "System") {
          tls.systemCa = true;
        } else {
          problem = RefProblem{"InvalidCACertificateRef", "wellKnownCACertificates " +
                                                              *p->wellKnownCACertificates +
                                                              " is not supported"};
        }
      }
      // Precedence among policies on one target (spec 7, GEP-713): the oldest, then
      // namespace/name, wins; the others are Accepted=False/Conflicted. A policy for one port
      // (sectionName) and one for the whole Service do not conflict.
      std::optional<std::string> conflictWith;
      for (const auto& t : p->targetRefs) {
        auto [it, fresh] = claimedTargets_.emplace(
            std::make_tuple(p->meta.ns, t.name, t.sectionName.value_or("")), p->meta.ns + "/" + p->meta.name);
        if (!fresh && it->second != p->meta.ns + "/" + p->meta.name) {
          conflictWith = it->second;
        }
      }
      bool targetFound = false;
      for (const auto& t : p->targetRefs) {
        targetFound = targetFound || (t.group == "" && t.kind == "Service" && index_.service(p->meta.ns, t.name) != nullptr);
      }
      bool accepted = (validCas > 0 || tls.systemCa) && !conflictWith && targetFound;
      std::set<ObjectKey> ancestors;
      for (const auto& t : p->targetRefs) {
        if (t.group != "" || t.kind != "Service") {
          continue;
        }
        auto used = usedBy_.find({p->meta.ns, t.name});
        if (used != usedBy_.end()) {
          ancestors.insert(used->second.begin(), used->second.end());
        }
      }
      if (!conflictWith) {
        UpstreamApplication app{p, tls, accepted, problem ? problem->message : "no CA certificate"};
        upstreamApplications_.push_back(std::move(app));
      }
      for (const auto& g : ancestors) {
        ParentStatus ps;
        ps.parentRef.group = api::kGatewayGroup;
        ps.parentRef.kind = "Gateway";
        ps.parentRef.ns = g.ns;
        ps.parentRef.name = g.name;
        ps.controllerName = opts_.controllerName;
        if (conflictWith) {
          ps.conditions.push_back(cond("Accepted", false, "Conflicted",
                                       "BackendTLSPolicy " + *conflictWith +
                                           " is older and has the same target",
                                       gen));
        } else if (!targetFound) {
          ps.conditions.push_back(cond("Accepted", false, "TargetNotFound",
                                       "no targetRef names an existing Service in " + p->meta.ns, gen));
        } else if (accepted) {
          ps.conditions.push_back(cond("Accepted", true, "Accepted", "Valid BackendTLSPolicy", gen));
        } else {
          ps.conditions.push_back(cond("Accepted", false, "NoValidCACertificate",
                                       problem ? problem->message : "no valid CA certificate", gen));
        }
        if (problem) {
          ps.conditions.push_back(cond("ResolvedRefs", false, problem->reason, problem->message, gen));
        } else {
          ps.conditions.push_back(cond("ResolvedRefs", true, "ResolvedRefs", "", gen));
        }
        st.parents.push_back(std::move(ps));
      }
      result_.statuses[key] = std::move(st);
    }
    // Port-specific targets first, so that a policy for one port beats a whole-Service one there.
    for (bool specific : {true, false}) {
      for (const auto& app : upstreamApplications_) {
        for (const auto& t : app.policy->targetRefs) {
          if (t.group != "" || t.kind != "Service" || t.sectionName.has_value() != specific) {
            continue;
          }
          for (auto& [name, cs] : clusters_) {
            if (cs.service->meta.ns != app.policy->meta.ns || cs.service->meta.name != t.name) {
              continue;
            }
            if (t.sectionName && cs.port->name.value_or("") != *t.sectionName) {
              continue;
            }
            if (albApplied_.count(name) != 0 || appliedUpstream_.count(name) != 0) {
              continue; // the how-to's per-Service policy wins; else the older upstream one
            }
            appliedUpstream_.insert(name);
            cs.cluster.tls = app.tls;
            if (cs.gateway && cs.gateway->backendClientCert) {
              cs.cluster.tls->clientCertificate = cs.gateway->backendClientCert;
            }
            if (!app.accepted) {
              cs.cluster.tlsError = "BackendTLSPolicy " + app.policy->meta.ns + "/" + app.policy->meta.name +
                                    " is not accepted: " + app.problem;
            }
          }
        }
      }
    }
  }
  struct UpstreamApplication {
    const api::BackendTLSPolicy* policy;
    ir::UpstreamTls tls;
    bool accepted;
    std::string problem;
  };
  std::vector<UpstreamApplication> upstreamApplications_;
  std::map<std::tuple<std::string, std::string, std::string>, std::string> claimedTargets_;
  std::set<std::string> appliedUpstream_;

  void emitClusters() {
    for (auto& [name, cs] : clusters_) {
      result_.ir.clusters.push_back(cs.cluster);
    }
  }

  void dedupeWarnings() {
    auto& w = result_.warnings;
    std::sort(w.begin(), w.end(), [](const Warning& a, const Warning& b) {
      return std::tie(a.object, a.message) < std::tie(b.object, b.message);
    });
    w.erase(std::unique(w.begin(), w.end(),
                        [](const Warning& a, const Warning& b) {
                          return a.object == b.object && a.message == b.message;
                        }),
            w.end());
  }

  const api::ResourceSet& rs_;
  const Options& opts_;
  Index index_;
  Result result_;
  std::set<std::string> ourClasses_;
  std::vector<GatewayState> gatewayStates_;
};

} // namespace

Result translate(const api::ResourceSet& resources, const Options& options) {
  return Translator(resources, options).run();
}

bool allHealthy(const Result& result) {
  auto healthy = [](const std::vector<Condition>& cs) {
    for (const auto& c : cs) {
      if ((c.type == "Accepted" || c.type == "ResolvedRefs" || c.type == "Programmed") &&
          c.status != "True") {
        return false;
      }
    }
    return true;
  };
  for (const auto& [key, st] : result.statuses) {
    if (!healthy(st.conditions)) {
      return false;
    }
    for (const auto& l : st.listeners) {
      if (!healthy(l.conditions)) {
        return false;
      }
    }
    for (const auto& p : st.parents) {
      if (!healthy(p.conditions)) {
        return false;
      }
    }
  }
  return true;
}

} // namespace gantry::translate
