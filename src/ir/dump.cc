#include "ir/dump.h"

#include <nlohmann/json.hpp>

namespace gantry::ir {
namespace {

nlohmann::json certJson(const CertificateKeyPair& c) {
  return {{"source", c.source},
          {"fingerprint", "sha256:" + c.fingerprint},
          {"dnsNames", c.dnsNames},
          {"key", "[redacted]"}};
}

nlohmann::json headerMatches(const std::vector<HeaderMatch>& hs) {
  auto arr = nlohmann::json::array();
  for (const auto& h : hs) {
    arr.push_back({{"type", h.type}, {"name", h.name}, {"value", h.value}});
  }
  return arr;
}

nlohmann::json mutationJson(const HeaderMutation& m) {
  nlohmann::json j = nlohmann::json::object();
  auto pairs = [](const auto& v) {
    auto arr = nlohmann::json::array();
    for (const auto& [k, val] : v) {
      arr.push_back({{"name", k}, {"value", val}});
    }
    return arr;
  };
  if (!m.set.empty()) j["set"] = pairs(m.set);
  if (!m.add.empty()) j["add"] = pairs(m.add);
  if (!m.remove.empty()) j["remove"] = m.remove;
  return j;
}

nlohmann::json pathJson(const PathModifier& p) { return {{"type", p.type}, {"value", p.value}}; }

} // namespace

nlohmann::json toJson(const Config& config) {
  auto listeners = nlohmann::json::array();
  for (const auto& l : config.listeners) {
    nlohmann::json lj = {{"name", l.name},
                         {"address", l.address},
                         {"port", l.port},
                         {"gatewayPort", l.gatewayPort},
                         {"protocol", l.protocol}};
    if (l.hostname) {
      lj["hostname"] = *l.hostname;
    }
    if (!l.certificates.empty()) {
      auto certs = nlohmann::json::array();
      for (const auto& c : l.certificates) {
        certs.push_back(certJson(c));
      }
      lj["certificates"] = certs;
    }
    if (l.clientValidation) {
      lj["clientValidation"] = {{"caCertificates", l.clientValidation->caPems.size()},
                                {"insecureFallback", l.clientValidation->insecureFallback}};
    }
    auto vhosts = nlohmann::json::array();
    for (const auto& vh : l.virtualHosts) {
      auto routes = nlohmann::json::array();
      for (const auto& r : vh.routes) {
        nlohmann::json match = {{"pathType", r.match.pathType}, {"path", r.match.path}};
        if (!r.match.headers.empty()) {
          match["headers"] = headerMatches(r.match.headers);
        }
        if (!r.match.queryParams.empty()) {
          match["queryParams"] = headerMatches(r.match.queryParams);
        }
        if (r.match.method) {
          match["method"] = *r.match.method;
        }
        auto backends = nlohmann::json::array();
        for (const auto& b : r.backends) {
          nlohmann::json bj = {{"weight", b.weight}};
          if (!b.cluster.empty()) {
            bj["cluster"] = b.cluster;
          }
          if (b.status != 0) {
            bj["directResponse"] = {{"status", b.status}, {"reason", b.reason}};
          }
          if (b.requestHeaders) {
            bj["requestHeaders"] = mutationJson(*b.requestHeaders);
          }
          if (b.responseHeaders) {
            bj["responseHeaders"] = mutationJson(*b.responseHeaders);
          }
          backends.push_back(bj);
        }
        nlohmann::json rj = {{"name", r.name}, {"match", match}, {"backends", backends}};
        if (r.requestTimeoutMs) {
          rj["requestTimeoutMs"] = *r.requestTimeoutMs;
        }
        if (r.backendRequestTimeoutMs) {
          rj["backendRequestTimeoutMs"] = *r.backendRequestTimeoutMs;
        }
        if (r.requestHeaders) {
          rj["requestHeaders"] = mutationJson(*r.requestHeaders);
        }
        if (r.responseHeaders) {
          rj["responseHeaders"] = mutationJson(*r.responseHeaders);
        }
        if (r.redirect) {
          nlohmann::json red = {{"status", r.redirect->status}};
          if (r.redirect->scheme) red["scheme"] = *r.redirect->scheme;
          if (r.redirect->hostname) red["hostname"] = *r.redirect->hostname;
          if (r.redirect->port) red["port"] = *r.redirect->port;
          if (r.redirect->path) red["path"] = pathJson(*r.redirect->path);
          rj["redirect"] = red;
        }
        if (!r.mirrors.empty()) {
          auto ms = nlohmann::json::array();
          for (const auto& m : r.mirrors) {
            ms.push_back({{"cluster", m.cluster}, {"fraction", std::to_string(m.numerator) + "/" + std::to_string(m.denominator)}});
          }
          rj["mirrors"] = ms;
        }
        if (r.retry) {
          rj["retry"] = {{"codes", r.retry->codes}, {"attempts", r.retry->attempts}, {"backoffMs", r.retry->backoffMs}};
        }
        if (r.cors) {
          rj["cors"] = {{"allowOrigins", r.cors->allowOrigins},
                        {"allowCredentials", r.cors->allowCredentials},
                        {"allowMethods", r.cors->allowMethods},
                        {"allowHeaders", r.cors->allowHeaders},
                        {"exposeHeaders", r.cors->exposeHeaders},
                        {"maxAge", r.cors->maxAge}};
        }
        if (r.rewrite) {
          nlohmann::json rw = nlohmann::json::object();
          if (r.rewrite->hostname) rw["hostname"] = *r.rewrite->hostname;
          if (r.rewrite->path) rw["path"] = pathJson(*r.rewrite->path);
          rj["rewrite"] = rw;
        }
        if (r.backends.empty() && !r.redirect) {
          rj["directResponse"] = {{"status", 500}, {"reason", "rule has no backendRefs"}};
        }
        routes.push_back(rj);
      }
      vhosts.push_back({{"hostname", vh.hostname}, {"routes", routes}});
    }
    lj["virtualHosts"] = vhosts;
    listeners.push_back(lj);
  }
  auto clusters = nlohmann::json::array();
  for (const auto& c : config.clusters) {
    auto eps = nlohmann::json::array();
    for (const auto& e : c.endpoints) {
      eps.push_back(e.address + ":" + std::to_string(e.port));
    }
    nlohmann::json cj = {{"name", c.name}, {"endpoints", eps}};
    if (c.tls) {
      nlohmann::json tj = {{"policy", c.tls->policy},
                           {"sni", c.tls->sni},
                           {"caCertificates", c.tls->caPems.size()},
                           {"systemCA", c.tls->systemCa}};
      if (!c.tls->subjectAltNames.empty()) {
        tj["subjectAltNames"] = c.tls->subjectAltNames;
      }
      if (!c.tls->uriSubjectAltNames.empty()) {
        tj["uriSubjectAltNames"] = c.tls->uriSubjectAltNames;
      }
      if (c.tls->clientCertificate) {
        tj["clientCertificate"] = certJson(*c.tls->clientCertificate);
      }
      cj["tls"] = tj;
    }
    if (c.h2c) {
      cj["protocol"] = "h2c";
    }
    if (c.tlsError) {
      cj["tlsError"] = *c.tlsError;
    }
    clusters.push_back(cj);
  }
  return {{"listeners", listeners}, {"clusters", clusters}};
}

} // namespace gantry::ir
