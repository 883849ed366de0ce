#include "dataplane/snapshot.h"

#include <re2/re2.h>

#include <algorithm>
#include <iterator>
#include <map>

#include "common/strings.h"
#include "dataplane/tls.h"

namespace gantry::dataplane {

namespace {

bool wildcardMatches(std::string_view pattern, std::string_view host) {
  std::string_view suffix = pattern.substr(1); // ".example.com"
  return host.size() > suffix.size() && endsWith(host, suffix);
}

int sniCallback(SSL* ssl, int*, void* arg) {
  const auto* group = static_cast<const PortGroup*>(arg);
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  if (name == nullptr) {
    return SSL_TLSEXT_ERR_OK; // no SNI: the default certificate
  }
  SSL_CTX* ctx = group->contextForSni(toLower(name));
  if (ctx != nullptr && ctx != SSL_get_SSL_CTX(ssl)) {
    SSL_set_SSL_CTX(ssl, ctx);
  }
  return SSL_TLSEXT_ERR_OK;
}

} // namespace

const CompiledVirtualHost* ListenerView::vhostFor(std::string_view host) const {
  if (auto it = exact.find(std::string(host)); it != exact.end()) {
    return &vhosts[it->second];
  }
  for (size_t i : wildcards) {
    if (wildcardMatches(vhosts[i].hostname, host)) {
      return &vhosts[i];
    }
  }
  return any ? &vhosts[*any] : nullptr;
}

const ListenerView* PortGroup::listenerFor(std::string_view host) const {
  const ListenerView* best = nullptr;
  size_t bestScore = 0;
  for (const auto& l : listeners) {
    size_t score = 0;
    if (!l.hostname) {
      score = 1;
    } else if (*l.hostname == host) {
      score = SIZE_MAX;
    } else if (startsWith(*l.hostname, "*.") && wildcardMatches(*l.hostname, host)) {
      score = 2 + l.hostname->size(); // more labels right of '*' is more specific
    }
    if (score > bestScore) {
      best = &l;
      bestScore = score;
    }
  }
  return best;
}

SSL_CTX* PortGroup::contextForSni(std::string_view sni) const {
  // Longest match across certificates: exact DNS name first, then wildcard names, then the
  // certificate of a listener whose hostname matches.
  std::optional<size_t> wildcard;
  size_t wildcardLen = 0;
  for (size_t i = 0; i < contexts.size(); ++i) {
    for (const auto& n : contextNames[i]) {
      if (n == sni) {
        return contexts[i]->native_handle();
      }
      if (startsWith(n, "*.") && wildcardMatches(n, sni) && n.size() > wildcardLen) {
        wildcard = i;
        wildcardLen = n.size();
      }
    }
  }
  if (wildcard) {
    return contexts[*wildcard]->native_handle();
  }
  for (size_t i = 0; i < contexts.size(); ++i) {
    const auto& h = contextListenerHost[i];
    if (h && (*h == sni || (startsWith(*h, "*.") && wildcardMatches(*h, sni)))) {
      return contexts[i]->native_handle();
    }
  }
  return nullptr;
}

const PortGroup* Snapshot::port(const std::string& key) const {
  auto it = ports_.find(key);
  return it == ports_.end() ? nullptr : &it->second;
}

const ClusterEntry* Snapshot::cluster(const std::string& name) const {
  auto it = clusters_.find(name);
  return it == clusters_.end() ? nullptr : &it->second;
}

namespace {

// "/api/v1" -> "api"; "/" and "" -> "".
std::string_view firstSegment(std::string_view path) {
  if (!path.empty() && path.front() == '/') {
    path.remove_prefix(1);
  }
  return path.substr(0, path.find('/'));
}

void indexBySegment(CompiledVirtualHost& vh) {
  std::map<std::string, std::vector<uint32_t>> specific;
  for (uint32_t i = 0; i < vh.routes.size(); ++i) {
    const auto& r = vh.routes[i];
    std::string_view p = r.match.path;
    const bool any = r.pathRegex != nullptr || (!r.exactPath && firstSegment(p).empty());
    if (any) {
      vh.anySegment.push_back(i);
    } else {
      specific[std::string(firstSegment(p))].push_back(i);
    }
  }
  for (auto& [segment, list] : specific) {
    std::vector<uint32_t> merged;
    merged.reserve(list.size() + vh.anySegment.size());
    std::merge(list.begin(), list.end(), vh.anySegment.begin(), vh.anySegment.end(), std::back_inserter(merged));
    vh.bySegment.emplace(segment, std::move(merged));
  }
}

} // namespace

std::shared_ptr<const Snapshot> Snapshot::compile(const ir::Config& config, uint64_t version,
                                                  std::vector<std::string>& errors) {
  auto snap = std::make_shared<Snapshot>();
  snap->version_ = version;
  for (const auto& l : config.listeners) {
    std::string key = l.address + ":" + std::to_string(l.port);
    auto& group = snap->ports_[key];
    bool tls = l.protocol == "HTTPS";
    if (group.listeners.empty()) {
      group.key = key;
      group.address = l.address;
      group.port = l.port;
      group.tls = tls;
    } else if (group.tls != tls) {
      errors.push_back(l.name + ": " + key + " already serves " + (group.tls ? "HTTPS" : "HTTP") +
                       "; listener left out");
      continue;
    }
    ListenerView view;
    view.name = l.name;
    view.hostname = l.hostname;
    view.gatewayPort = l.gatewayPort;
    for (const auto& vh : l.virtualHosts) {
      CompiledVirtualHost cvh;
      cvh.hostname = vh.hostname;
      for (const auto& r : vh.routes) {
        CompiledRoute cr;
        cr.name = r.name;
        cr.match = r.match;
        cr.backends = r.backends;
        cr.requestTimeoutMs = r.requestTimeoutMs;
        cr.requestHeaders = r.requestHeaders;
        cr.responseHeaders = r.responseHeaders;
        cr.redirect = r.redirect;
        cr.rewrite = r.rewrite;
        cr.cors = r.cors;
        cr.retry = r.retry;
        cr.mirrors = r.mirrors;
        auto compile = [&](const std::string& pattern) {
          auto re = std::make_shared<const re2::RE2>(pattern, re2::RE2::Quiet);
          if (!re->ok()) {
            errors.push_back(r.name + ": invalid regular expression " + pattern);
          }
          return re;
        };
        if (r.match.pathType == "RegularExpression") {
          cr.pathRegex = compile(r.match.path);
        }
        for (const auto& h : r.match.headers) {
          cr.headerRegex.push_back(h.type == "RegularExpression" ? compile(h.value) : nullptr);
        }
        for (const auto& q : r.match.queryParams) {
          cr.queryRegex.push_back(q.type == "RegularExpression" ? compile(q.value) : nullptr);
        }
        cr.backendRequestTimeoutMs = r.backendRequestTimeoutMs;
        cr.exactPath = r.match.pathType == "Exact";
        for (const auto& b : r.backends) {
          cr.totalWeight += b.weight;
        }
        cvh.routes.push_back(std::move(cr));
      }
      indexBySegment(cvh);
      view.vhosts.push_back(std::move(cvh));
    }
    for (size_t i = 0; i < view.vhosts.size(); ++i) {
      const auto& h = view.vhosts[i].hostname;
      if (h == "*") {
        view.any = i;
      } else if (startsWith(h, "*.")) {
        view.wildcards.push_back(i);
      } else {
        view.exact[h] = i;
      }
    }
    std::sort(view.wildcards.begin(), view.wildcards.end(), [&](size_t a, size_t b) {
      return view.vhosts[a].hostname.size() > view.vhosts[b].hostname.size();
    });
    group.listeners.push_back(std::move(view));
    for (const auto& cert : l.certificates) {
      std::string err;
      auto ctx = tls::makeServerContext(cert, err);
      if (ctx && l.clientValidation && !tls::configureClientValidation(ctx.get(), *l.clientValidation, err)) {
        ctx.reset();
      }
      if (!ctx) {
        errors.push_back(l.name + ": " + err);
        continue;
      }
      group.contexts.push_back(std::make_unique<boost::asio::ssl::context>(ctx.release()));
      group.contextNames.push_back(cert.dnsNames);
      group.contextListenerHost.push_back(l.hostname);
    }
  }
  for (auto it = snap->ports_.begin(); it != snap->ports_.end();) {
    auto& g = it->second;
    if (g.tls && g.contexts.empty()) {
      errors.push_back(g.key + ": no usable certificate; not served");
      it = snap->ports_.erase(it);
      continue;
    }
    if (g.tls) {
      SSL_CTX* def = g.contexts.front()->native_handle();
      SSL_CTX_set_tlsext_servername_callback(def, sniCallback);
      SSL_CTX_set_tlsext_servername_arg(def, &g); // map nodes are stable
      for (auto& c : g.contexts) {
        SSL_CTX_set_tlsext_servername_callback(c->native_handle(), sniCallback);
        SSL_CTX_set_tlsext_servername_arg(c->native_handle(), &g);
      }
    }
    ++it;
  }
  for (const auto& c : config.clusters) {
    ClusterEntry entry;
    entry.ir = c;
    for (const auto& ep : c.endpoints) {
      const std::string where = ep.address + ":" + std::to_string(ep.port);
      entry.poolKeys.push_back(c.name + "|" + where + "|" + std::to_string(version) + (c.h2c ? "|h2c" : ""));
      entry.endpointLabels.push_back("upstream " + c.name + " " + where);
    }
    if (c.tls && !c.tlsError) {
      std::string err;
      auto ctx = tls::makeClientContext(*c.tls, err);
      if (ctx) {
        entry.tlsContext = std::make_unique<boost::asio::ssl::context>(ctx.release());
      } else {
        entry.contextError = err;
        errors.push_back(c.name + ": " + err);
      }
    }
    snap->clusters_.emplace(c.name, std::move(entry));
  }
  for (auto& [key, group] : snap->ports_) {
    for (auto& listener : group.listeners) {
      for (auto& vhost : listener.vhosts) {
        for (auto& route : vhost.routes) {
          for (const auto& b : route.backends) {
            route.clusters.push_back(snap->cluster(b.cluster));
          }
        }
      }
    }
  }
  return snap;
}

bool pathPrefixMatches(std::string_view prefix, std::string_view path) {
  while (prefix.size() > 1 && prefix.back() == '/') {
    prefix.remove_suffix(1);
  }
  if (prefix == "/" || prefix.empty()) {
    return true;
  }
  if (!startsWith(path, prefix)) {
    return false;
  }
  return path.size() == prefix.size() || path[prefix.size()] == '/';
}

namespace {

struct Origin {
  std::string scheme;
  std::string host;
  std::string port;
};

std::optional<Origin> parseOrigin(std::string_view o) {
  auto sep = o.find("://");
  if (sep == std::string_view::npos) {
    return std::nullopt;
  }
  Origin out;
  out.scheme = toLower(o.substr(0, sep));
  std::string_view rest = o.substr(sep + 3);
  auto colon = rest.rfind(':');
  if (colon != std::string_view::npos && rest.find(']') == std::string_view::npos) {
    out.port = std::string(rest.substr(colon + 1));
    rest = rest.substr(0, colon);
  }
  out.host = toLower(rest);
  if (out.port.empty()) {
    out.port = out.scheme == "https" ? "443" : out.scheme == "http" ? "80" : "";
  }
  return out;
}

} // namespace

bool corsOriginAllowed(const ir::Cors& cors, std::string_view origin) {
  auto req = parseOrigin(origin);
  if (!req) {
    return false;
  }
  for (const auto& allowed : cors.allowOrigins) {
    if (allowed == "*") {
      return true;
    }
    auto a = parseOrigin(allowed);
    if (!a || a->scheme != req->scheme || a->port != req->port) {
      continue;
    }
    if (a->host == req->host) {
      return true;
    }
    if (startsWith(a->host, "*.") && req->host.size() > a->host.size() - 1 &&
        endsWith(req->host, std::string_view(a->host).substr(1))) {
      return true;
    }
  }
  return false;
}

std::string rewritePath(const ir::PathModifier& modifier, std::string_view matchPrefix,
                        std::string_view path) {
  if (modifier.type == "ReplaceFullPath") {
    return modifier.value;
  }
  // ReplacePrefixMatch: the matched prefix (element-wise, trailing slash ignored) is replaced;
  // the rest of the path keeps its leading slash.
  while (!matchPrefix.empty() && matchPrefix.back() == '/') {
    matchPrefix.remove_suffix(1);
  }
  std::string_view rest = path.substr(std::min(matchPrefix.size(), path.size()));
  std::string_view replacement = modifier.value;
  while (!replacement.empty() && replacement.back() == '/') {
    replacement.remove_suffix(1);
  }
  std::string out(replacement);
  out.append(rest);
  if (out.empty() || out.front() != '/') {
    out.insert(out.begin(), '/');
  }
  return out;
}

namespace {

bool valueMatches(std::string_view value, const std::string& exact, const RegexConstSharedPtr& regex) {
  if (regex) {
    return regex->ok() && re2::RE2::FullMatch(re2::StringPiece(value.data(), value.size()), *regex);
  }
  return value == exact;
}

// The first occurrence of `name` decides (the spec leaves repeated parameters to implementations).
std::optional<std::string_view> queryValue(std::string_view query, std::string_view name) {
  for (auto pair : SplitView(query, '&')) {
    size_t eq = pair.find('=');
    if (pair.substr(0, eq) == name) {
      return eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1);
    }
  }
  return std::nullopt;
}

} // namespace

const CompiledRoute* matchRoute(const CompiledVirtualHost& vhost, const RequestView& req) {
  auto it = vhost.bySegment.find(std::string(firstSegment(req.path)));
  const auto& candidates = it != vhost.bySegment.end() ? it->second : vhost.anySegment;
  for (uint32_t index : candidates) {
    const auto& r = vhost.routes[index];
    const auto& m = r.match;
    if (r.pathRegex) {
      if (!valueMatches(req.path, m.path, r.pathRegex)) {
        continue;
      }
    } else if (r.exactPath) {
      if (req.path != m.path) {
        continue;
      }
    } else if (!pathPrefixMatches(m.path, req.path)) {
      continue;
    }
    if (m.method && req.method != *m.method) {
      continue;
    }
    bool ok = true;
    for (size_t i = 0; ok && i < m.headers.size(); ++i) {
      // Header names are case-insensitive; the first field line of the name decides.
      ok = false;
      for (const auto& rh : *req.headers) {
        if (iequals(rh.name, m.headers[i].name)) {
          ok = valueMatches(rh.value, m.headers[i].value, r.headerRegex[i]);
          break;
        }
      }
    }
    for (size_t i = 0; ok && i < m.queryParams.size(); ++i) {
      auto v = queryValue(req.query, m.queryParams[i].name);
      ok = v && valueMatches(*v, m.queryParams[i].value, r.queryRegex[i]);
    }
    if (ok) {
      return &r;
    }
  }
  return nullptr;
}

} // namespace gantry::dataplane
