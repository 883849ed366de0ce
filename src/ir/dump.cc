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

} // namespace

nlohmann::json toJson(const Config& config) {
  auto listeners = nlohmann::json::array();
  for (const auto& l : config.listeners) {
    nlohmann::json lj = {{"name", l.name},
                         {"address", l.address},
                         {"port", l.port},
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
          backends.push_back(bj);
        }
        nlohmann::json rj = {{"name", r.name}, {"match", match}, {"backends", backends}};
        if (r.requestTimeoutMs) {
          rj["requestTimeoutMs"] = *r.requestTimeoutMs;
        }
        if (r.backendRequestTimeoutMs) {
          rj["backendRequestTimeoutMs"] = *r.backendRequestTimeoutMs;
        }
        if (r.backends.empty()) {
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
    if (c.tlsError) {
      cj["tlsError"] = *c.tlsError;
    }
    clusters.push_back(cj);
  }
  return {{"listeners", listeners}, {"clusters", clusters}};
}

} // namespace gantry::ir
