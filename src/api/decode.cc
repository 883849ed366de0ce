#include "api/decode.h"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <functional>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <algorithm>
#include <optional>
#include <set>
#include <sstream>
#include <cctype>

#include "common/strings.h"

namespace gantry::api {

std::string DecodeError::str() const {
  std::string out = file;
  if (line > 0) {
    out += ":" + std::to_string(line) + ":" + std::to_string(column);
  }
  out += ": ";
  if (!path.empty()) {
    out += path + ": ";
  }
  out += message;
  return out;
}

namespace {

struct DecodeFailure {
  int line;
  int column;
  std::string path;
  std::string message;
};

[[noreturn]] void fail(const YAML::Node& n, const std::string& path, const std::string& msg) {
  auto mark = n.Mark();
  throw DecodeFailure{mark.line >= 0 ? mark.line + 1 : 0, mark.column >= 0 ? mark.column + 1 : 0,
                      path, msg};
}

std::string join(const std::string& path, const std::string& key) {
  return path.empty() ? key : path + "." + key;
}

std::string index(const std::string& path, size_t i) {
  return path + "[" + std::to_string(i) + "]";
}

void requireMap(const YAML::Node& n, const std::string& path) {
  if (!n.IsMap()) {
    fail(n, path, "expected an object");
  }
}

// Strictness: every key of `n` must be in `allowed`.
void checkKeys(const YAML::Node& n, const std::string& path,
               std::initializer_list<const char*> allowed) {
  requireMap(n, path);
  for (auto it = n.begin(); it != n.end(); ++it) {
    const auto key = it->first.as<std::string>();
    bool ok = false;
    for (const char* a : allowed) {
      if (key == a) {
        ok = true;
        break;
      }
    }
    if (!ok) {
      fail(it->first, join(path, key), "unknown field \"" + key + "\"");
    }
  }
}

std::string str(const YAML::Node& n, const std::string& path) {
  if (!n.IsScalar()) {
    fail(n, path, "expected a string");
  }
  return n.Scalar();
}

int64_t integer(const YAML::Node& n, const std::string& path, int64_t min, int64_t max) {
  if (!n.IsScalar()) {
    fail(n, path, "expected an integer");
  }
  const std::string& s = n.Scalar();
  std::string_view v = s;
  bool neg = !v.empty() && v.front() == '-';
  if (neg) {
    v.remove_prefix(1);
  }
  auto parsed = parseUint(v);
  if (!parsed || *parsed > static_cast<uint64_t>(INT64_MAX)) {
    fail(n, path, "expected an integer, got \"" + s + "\"");
  }
  int64_t value = neg ? -static_cast<int64_t>(*parsed) : static_cast<int64_t>(*parsed);
  if (value < min || value > max) {
    fail(n, path,
         "value " + s + " out of range [" + std::to_string(min) + ", " + std::to_string(max) + "]");
  }
  return value;
}

bool boolean(const YAML::Node& n, const std::string& path) {
  std::string s = str(n, path);
  if (s == "true") {
    return true;
  }
  if (s == "false") {
    return false;
  }
  fail(n, path, "expected true or false");
}

template <typename F>
void eachItem(const YAML::Node& n, const std::string& path, F&& f) {
  if (!n || n.IsNull()) {
    return;
  }
  if (!n.IsSequence()) {
    fail(n, path, "expected a list");
  }
  for (size_t i = 0; i < n.size(); ++i) {
    const YAML::Node item = n[i];
    const std::string itemPath = index(path, i);
    f(item, itemPath);
  }
}

// The CRDs' maxItems limits, which the API server enforces on apply: file mode refuses the object
// the same way, with the field and the limit.
void maxItems(const YAML::Node& n, const std::string& path, size_t max) {
  if (n && n.IsSequence() && n.size() > max) {
    fail(n, path, "at most " + std::to_string(max) + " items are allowed, got " + std::to_string(n.size()));
  }
}

std::map<std::string, std::string> stringMap(const YAML::Node& n, const std::string& path) {
  std::map<std::string, std::string> out;
  if (!n || n.IsNull()) {
    return out;
  }
  requireMap(n, path);
  for (auto it = n.begin(); it != n.end(); ++it) {
    auto key = it->first.as<std::string>();
    out[key] = str(it->second, join(path, key));
  }
  return out;
}

std::optional<std::string> optStr(const YAML::Node& parent, const char* key,
                                  const std::string& path) {
  auto n = parent[key];
  if (!n || n.IsNull()) {
    return std::nullopt;
  }
  return str(n, join(path, key));
}

// YAML scalar -> JSON value with the type a YAML 1.2 core-schema reader would give it.
nlohmann::json toJson(const YAML::Node& n) {
  switch (n.Type()) {
  case YAML::NodeType::Map: {
    auto obj = nlohmann::json::object();
    for (auto it = n.begin(); it != n.end(); ++it) {
      obj[it->first.as<std::string>()] = toJson(it->second);
    }
    return obj;
  }
  case YAML::NodeType::Sequence: {
    auto arr = nlohmann::json::array();
    for (const auto& item : n) {
      arr.push_back(toJson(item));
    }
    return arr;
  }
  case YAML::NodeType::Scalar: {
    const std::string& s = n.Scalar();
    if (n.Tag() == "!") { // quoted: always a string
      return s;
    }
    if (s == "true" || s == "false") {
      return s == "true";
    }
    if (s == "null" || s == "~") {
      return nullptr;
    }
    std::string_view v = s;
    bool neg = !v.empty() && v.front() == '-';
    if (neg) {
      v.remove_prefix(1);
    }
    if (auto u = parseUint(v); u && *u <= static_cast<uint64_t>(INT64_MAX)) {
      return neg ? -static_cast<int64_t>(*u) : static_cast<int64_t>(*u);
    }
    return s;
  }
  default:
    return nullptr;
  }
}

// Manifests may hold bytes that are not UTF-8; the echo replaces them instead of failing.
std::string dumpJson(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

ObjectMeta decodeMeta(const YAML::Node& n, bool namespaced) {
  const std::string path = "metadata";
  if (!n) {
    throw DecodeFailure{0, 0, path, "missing metadata"};
  }
  checkKeys(n, path,
            {"name", "namespace", "labels", "annotations", "generation", "creationTimestamp", "uid",
             "resourceVersion", "managedFields", "ownerReferences", "finalizers", "generateName",
             "selfLink", "deletionTimestamp", "deletionGracePeriodSeconds"});
  ObjectMeta m;
  auto name = optStr(n, "name", path);
  if (!name || name->empty()) {
    fail(n, join(path, "name"), "metadata.name is required");
  }
  m.name = *name;
  if (namespaced) {
    m.ns = optStr(n, "namespace", path).value_or("default");
  }
  m.labels = stringMap(n["labels"], join(path, "labels"));
  m.annotations = stringMap(n["annotations"], join(path, "annotations"));
  if (auto ts = optStr(n, "creationTimestamp", path)) {
    m.creationTimestamp = *ts;
  }
  return m;
}

// The fields of an object reference: group, kind, name, and namespace where one is allowed.
void checkRefKeys(const YAML::Node& n, const std::string& path, bool allowNamespace) {
  if (allowNamespace) {
    checkKeys(n, path, {"group", "kind", "name", "namespace"});
  } else {
    checkKeys(n, path, {"group", "kind", "name"});
  }
}

ObjectReference decodeObjectRef(const YAML::Node& n, const std::string& path,
                                const std::string& defaultKind, bool allowNamespace) {
  checkRefKeys(n, path, allowNamespace);
  ObjectReference r;
  r.group = optStr(n, "group", path).value_or("");
  r.kind = optStr(n, "kind", path).value_or(defaultKind);
  auto name = optStr(n, "name", path);
  if (!name || name->empty()) {
    fail(n, join(path, "name"), "required field is missing");
  }
  r.name = *name;
  r.ns = optStr(n, "namespace", path);
  return r;
}

LabelSelector decodeSelector(const YAML::Node& n, const std::string& path) {
  checkKeys(n, path, {"matchLabels", "matchExpressions"});
  LabelSelector s;
  s.matchLabels = stringMap(n["matchLabels"], join(path, "matchLabels"));
  eachItem(n["matchExpressions"], join(path, "matchExpressions"), [&](auto& e, auto& p) {
    checkKeys(e, p, {"key", "operator", "values"});
    LabelSelector::Requirement r;
    r.key = str(e["key"], join(p, "key"));
    r.op = str(e["operator"], join(p, "operator"));
    eachItem(e["values"], join(p, "values"),
             [&](auto& v, auto& vp) { r.values.push_back(str(v, vp)); });
    s.matchExpressions.push_back(std::move(r));
  });
  return s;
}

// BackendObjectReference fields (a backendRef or a mirror's backendRef): group "" and kind
// Service by default, port 1-65535.
template <typename T>
void decodeBackendObject(const YAML::Node& b, const std::string& bp, T& out) {
  out.group = optStr(b, "group", bp).value_or("");
  out.kind = optStr(b, "kind", bp).value_or("Service");
  out.name = str(b["name"], join(bp, "name"));
  out.ns = optStr(b, "namespace", bp);
  if (b["port"]) {
    out.port = static_cast<int32_t>(integer(b["port"], join(bp, "port"), 1, 65535));
  }
}

// ParametersReference (GatewayClass, with a namespace) or LocalParametersReference (Gateway
// infrastructure).
ObjectReference decodeParametersRef(const YAML::Node& pr, const std::string& pp, bool withNamespace) {
  checkRefKeys(pr, pp, withNamespace);
  ObjectReference ref;
  ref.group = optStr(pr, "group", pp).value_or("");
  ref.kind = str(pr["kind"], join(pp, "kind"));
  ref.name = str(pr["name"], join(pp, "name"));
  if (withNamespace) {
    ref.ns = optStr(pr, "namespace", pp);
  }
  return ref;
}

// --- per kind -----------------------------------------------------------------------------

void decodeGateway(const YAML::Node& doc, Gateway& g) {
  auto spec = doc["spec"];
  checkKeys(spec, "spec", {"gatewayClassName", "listeners", "addresses", "tls", "infrastructure"});
  g.gatewayClassName = str(spec["gatewayClassName"], "spec.gatewayClassName");
  maxItems(spec["listeners"], "spec.listeners", 64);
  maxItems(spec["addresses"], "spec.addresses", 16);
  eachItem(spec["listeners"], "spec.listeners", [&](auto& l, auto& p) {
    checkKeys(l, p, {"name", "hostname", "port", "protocol", "tls", "allowedRoutes"});
    Listener li;
    li.name = str(l["name"], join(p, "name"));
    li.hostname = optStr(l, "hostname", p);
    li.port = static_cast<int32_t>(integer(l["port"], join(p, "port"), 1, 65535));
    li.protocol = str(l["protocol"], join(p, "protocol"));
    if (auto tls = l["tls"]) {
      auto tp = join(p, "tls");
      checkKeys(tls, tp, {"mode", "certificateRefs", "options", "frontendValidation"});
      Listener::Tls t;
      t.mode = optStr(tls, "mode", tp).value_or("Terminate");
      maxItems(tls["certificateRefs"], join(tp, "certificateRefs"), 64);
      eachItem(tls["certificateRefs"], join(tp, "certificateRefs"), [&](auto& r, auto& rp) {
        t.certificateRefs.push_back(decodeObjectRef(r, rp, "Secret", true));
      });
      li.tls = std::move(t);
    }
    if (auto ar = l["allowedRoutes"]) {
      auto ap = join(p, "allowedRoutes");
      checkKeys(ar, ap, {"namespaces", "kinds"});
      if (auto ns = ar["namespaces"]) {
        auto np = join(ap, "namespaces");
        checkKeys(ns, np, {"from", "selector"});
        li.allowedFrom = optStr(ns, "from", np).value_or("Same");
        if (auto sel = ns["selector"]) {
          li.allowedSelector = decodeSelector(sel, join(np, "selector"));
        }
      }
      if (auto kinds = ar["kinds"]) {
        std::vector<RouteGroupKind> ks;
        eachItem(kinds, join(ap, "kinds"), [&](auto& k, auto& kp) {
          checkKeys(k, kp, {"group", "kind"});
          RouteGroupKind rgk;
          rgk.group = optStr(k, "group", kp).value_or(kGatewayGroup);
          rgk.kind = str(k["kind"], join(kp, "kind"));
          ks.push_back(rgk);
        });
        li.allowedKinds = std::move(ks);
      }
    }
    g.listeners.push_back(std::move(li));
  });
  eachItem(spec["addresses"], "spec.addresses", [&](auto& a, auto& p) {
    checkKeys(a, p, {"type", "value"});
    GatewayAddress ga;
    ga.type = optStr(a, "type", p).value_or("IPAddress");
    ga.value = optStr(a, "value", p).value_or("");
    g.addresses.push_back(ga);
  });
  if (auto infra = spec["infrastructure"]) {
    checkKeys(infra, "spec.infrastructure", {"labels", "annotations", "parametersRef"});
    g.infrastructureLabels = stringMap(infra["labels"], "spec.infrastructure.labels");
    g.infrastructureAnnotations = stringMap(infra["annotations"], "spec.infrastructure.annotations");
    if (auto pr = infra["parametersRef"]) {
      g.parametersRef = decodeParametersRef(pr, "spec.infrastructure.parametersRef", false);
    }
  }
  if (auto tls = spec["tls"]) {
    checkKeys(tls, "spec.tls", {"backend", "frontend"});
    auto validation = [&](const YAML::Node& n, const std::string& path) {
      checkKeys(n, path, {"validation"});
      auto v = n["validation"];
      auto vp = join(path, "validation");
      checkKeys(v, vp, {"caCertificateRefs", "mode"});
      Gateway::FrontendValidation fv;
      eachItem(v["caCertificateRefs"], join(vp, "caCertificateRefs"),
               [&](auto& r, auto& rp) { fv.caCertificateRefs.push_back(decodeObjectRef(r, rp, "ConfigMap", true)); });
      fv.mode = optStr(v, "mode", vp).value_or("AllowValidOnly");
      if (fv.mode != "AllowValidOnly" && fv.mode != "AllowInsecureFallback") {
        fail(v["mode"], join(vp, "mode"), "must be AllowValidOnly or AllowInsecureFallback");
      }
      return fv;
    };
    if (auto fe = tls["frontend"]) {
      checkKeys(fe, "spec.tls.frontend", {"default", "perPort"});
      if (fe["default"]) {
        g.frontendDefault = validation(fe["default"], "spec.tls.frontend.default");
      }
      eachItem(fe["perPort"], "spec.tls.frontend.perPort", [&](auto& pp, auto& ppath) {
        checkKeys(pp, ppath, {"port", "tls"});
        auto port = static_cast<int32_t>(integer(pp["port"], join(ppath, "port"), 1, 65535));
        g.frontendPerPort[port] = validation(pp["tls"], join(ppath, "tls"));
      });
    }
    if (auto be = tls["backend"]) {
      checkKeys(be, "spec.tls.backend", {"clientCertificateRef"});
      if (auto cr = be["clientCertificateRef"]) {
        g.backendClientCertificateRef =
            decodeObjectRef(cr, "spec.tls.backend.clientCertificateRef", "Secret", true);
      }
    }
  }
}

// Gateway API Duration (GEP-2257): ^([0-9]{1,5}(h|m|s|ms)){1,4}$, e.g. "500ms", "1h30m".
int64_t durationMs(const YAML::Node& n, const std::string& path) {
  const std::string s = str(n, path);
  int64_t total = 0;
  size_t i = 0;
  int parts = 0;
  while (i < s.size()) {
    size_t digits = 0;
    int64_t v = 0;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i])) && digits < 6) {
      v = v * 10 + (s[i] - '0');
      ++i;
      ++digits;
    }
    int64_t unit = 0;
    if (s.compare(i, 2, "ms") == 0) {
      unit = 1;
      i += 2;
    } else if (i < s.size() && s[i] == 's') {
      unit = 1000;
      ++i;
    } else if (i < s.size() && s[i] == 'm') {
      unit = 60 * 1000;
      ++i;
    } else if (i < s.size() && s[i] == 'h') {
      unit = 3600 * 1000;
      ++i;
    }
    if (digits == 0 || digits > 5 || unit == 0 || ++parts > 4) {
      fail(n, path, "invalid duration \"" + s + "\" (GEP-2257: e.g. 500ms, 10s, 1h30m)");
    }
    total += v * unit;
  }
  if (parts == 0) {
    fail(n, path, "empty duration");
  }
  return total;
}

HTTPHeaderMatch decodeHeaderMatch(const YAML::Node& n, const std::string& p) {
  checkKeys(n, p, {"type", "name", "value"});
  HTTPHeaderMatch h;
  h.type = optStr(n, "type", p).value_or("Exact");
  h.name = str(n["name"], join(p, "name"));
  h.value = str(n["value"], join(p, "value"));
  return h;
}

HTTPHeaderFilter decodeHeaderFilter(const YAML::Node& n, const std::string& path) {
  checkKeys(n, path, {"set", "add", "remove"});
  HTTPHeaderFilter f;
  std::set<std::string> names; // one action per header name per filter
  auto header = [&](const YAML::Node& h, const std::string& p) {
    checkKeys(h, p, {"name", "value"});
    HTTPHeader out{str(h["name"], join(p, "name")), str(h["value"], join(p, "value"))};
    if (!names.insert(toLower(out.name)).second) {
      fail(h, join(p, "name"), "header " + out.name + " appears in more than one action");
    }
    return out;
  };
  eachItem(n["set"], join(path, "set"), [&](auto& h, auto& p) { f.set.push_back(header(h, p)); });
  eachItem(n["add"], join(path, "add"), [&](auto& h, auto& p) { f.add.push_back(header(h, p)); });
  eachItem(n["remove"], join(path, "remove"), [&](auto& h, auto& p) {
    auto name = str(h, p);
    if (!names.insert(toLower(name)).second) {
      fail(h, p, "header " + name + " appears in more than one action");
    }
    f.remove.push_back(name);
  });
  return f;
}

HTTPPathModifier decodePathModifier(const YAML::Node& n, const std::string& path) {
  checkKeys(n, path, {"type", "replaceFullPath", "replacePrefixMatch"});
  HTTPPathModifier m;
  m.type = str(n["type"], join(path, "type"));
  if (m.type == "ReplaceFullPath") {
    m.value = str(n["replaceFullPath"], join(path, "replaceFullPath"));
  } else if (m.type == "ReplacePrefixMatch") {
    m.value = str(n["replacePrefixMatch"], join(path, "replacePrefixMatch"));
  } else {
    fail(n["type"], join(path, "type"), "must be ReplaceFullPath or ReplacePrefixMatch");
  }
  return m;
}

std::vector<HTTPRouteFilter> decodeFilters(const YAML::Node& n, const std::string& path) {
  maxItems(n, path, 16);
  std::vector<HTTPRouteFilter> out;
  std::set<std::string> once;
  eachItem(n, path, [&](auto& f, auto& p) {
    checkKeys(f, p,
              {"type", "requestHeaderModifier", "responseHeaderModifier", "requestRedirect",
               "urlRewrite", "requestMirror", "cors", "extensionRef", "externalAuth"});
    HTTPRouteFilter filter;
    filter.type = str(f["type"], join(p, "type"));
    // CEL: each of these may appear at most once per rule; redirect and rewrite exclude each other.
    if (filter.type != "RequestMirror" && filter.type != "ExtensionRef" &&
        !once.insert(filter.type).second) {
      fail(f["type"], join(p, "type"), filter.type + " may appear only once");
    }
    if (filter.type == "RequestHeaderModifier") {
      filter.requestHeaderModifier =
          decodeHeaderFilter(f["requestHeaderModifier"], join(p, "requestHeaderModifier"));
    } else if (filter.type == "ResponseHeaderModifier") {
      filter.responseHeaderModifier =
          decodeHeaderFilter(f["responseHeaderModifier"], join(p, "responseHeaderModifier"));
    } else if (filter.type == "RequestRedirect") {
      auto r = f["requestRedirect"];
      auto rp = join(p, "requestRedirect");
      checkKeys(r, rp, {"scheme", "hostname", "path", "port", "statusCode"});
      HTTPRequestRedirect red;
      red.scheme = optStr(r, "scheme", rp);
      if (red.scheme && *red.scheme != "http" && *red.scheme != "https") {
        fail(r["scheme"], join(rp, "scheme"), "must be http or https");
      }
      red.hostname = optStr(r, "hostname", rp);
      if (r["path"]) {
        red.path = decodePathModifier(r["path"], join(rp, "path"));
      }
      if (r["port"]) {
        red.port = static_cast<int32_t>(integer(r["port"], join(rp, "port"), 1, 65535));
      }
      if (r["statusCode"]) {
        red.statusCode = static_cast<int32_t>(integer(r["statusCode"], join(rp, "statusCode"), 301, 308));
        if (red.statusCode != 301 && red.statusCode != 302 && red.statusCode != 303 &&
            red.statusCode != 307 && red.statusCode != 308) {
          fail(r["statusCode"], join(rp, "statusCode"), "must be 301, 302, 303, 307 or 308");
        }
      }
      filter.requestRedirect = red;
    } else if (filter.type == "RequestMirror") {
      auto m = f["requestMirror"];
      auto mp = join(p, "requestMirror");
      checkKeys(m, mp, {"backendRef", "percent", "fraction"});
      HTTPRequestMirror mirror;
      auto b = m["backendRef"];
      auto bp = join(mp, "backendRef");
      checkKeys(b, bp, {"group", "kind", "name", "namespace", "port"});
      decodeBackendObject(b, bp, mirror);
      if (m["percent"] && m["fraction"]) {
        fail(m, mp, "percent and fraction cannot both be set");
      }
      if (m["percent"]) {
        mirror.numerator = static_cast<int32_t>(integer(m["percent"], join(mp, "percent"), 0, 100));
      }
      if (auto fr = m["fraction"]) {
        auto fp = join(mp, "fraction");
        checkKeys(fr, fp, {"numerator", "denominator"});
        mirror.numerator = static_cast<int32_t>(integer(fr["numerator"], join(fp, "numerator"), 0, INT32_MAX));
        if (fr["denominator"]) {
          mirror.denominator = static_cast<int32_t>(integer(fr["denominator"], join(fp, "denominator"), 1, INT32_MAX));
        }
        if (mirror.numerator > mirror.denominator) {
          fail(fr, fp, "numerator must not exceed denominator");
        }
      }
      filter.requestMirror = mirror;
    } else if (filter.type == "CORS") {
      auto c = f["cors"];
      auto cp = join(p, "cors");
      checkKeys(c, cp, {"allowOrigins", "allowCredentials", "allowMethods", "allowHeaders", "exposeHeaders", "maxAge"});
      HTTPCORSFilter cors;
      auto strings = [&](const char* key, std::vector<std::string>& out) {
        eachItem(c[key], join(cp, key), [&](auto& v, auto& vp) { out.push_back(str(v, vp)); });
      };
      strings("allowOrigins", cors.allowOrigins);
      strings("allowMethods", cors.allowMethods);
      strings("allowHeaders", cors.allowHeaders);
      strings("exposeHeaders", cors.exposeHeaders);
      if (c["allowCredentials"]) {
        cors.allowCredentials = boolean(c["allowCredentials"], join(cp, "allowCredentials"));
      }
      if (c["maxAge"]) {
        cors.maxAge = static_cast<int32_t>(integer(c["maxAge"], join(cp, "maxAge"), 1, INT32_MAX));
      }
      // CEL of HTTPCORSFilter: "*" stands alone in allowOrigins and allowMethods.
      for (const auto* list : {&cors.allowOrigins, &cors.allowMethods}) {
        if (list->size() > 1 && std::find(list->begin(), list->end(), "*") != list->end()) {
          fail(c, cp, "\"*\" must be the only entry where it is used");
        }
      }
      filter.cors = cors;
    } else if (filter.type == "URLRewrite") {
      auto r = f["urlRewrite"];
      auto rp = join(p, "urlRewrite");
      checkKeys(r, rp, {"hostname", "path"});
      HTTPURLRewrite rw;
      rw.hostname = optStr(r, "hostname", rp);
      if (r["path"]) {
        rw.path = decodePathModifier(r["path"], join(rp, "path"));
      }
      filter.urlRewrite = rw;
    }
    out.push_back(std::move(filter));
  });
  if (once.count("RequestRedirect") != 0 && once.count("URLRewrite") != 0) {
    fail(n, path, "RequestRedirect and URLRewrite cannot be used together");
  }
  return out;
}

void decodeHTTPRoute(const YAML::Node& doc, HTTPRoute& r) {
  auto spec = doc["spec"];
  checkKeys(spec, "spec", {"parentRefs", "hostnames", "rules"});
  // HTTPRoute limits (spec 1.2): 32 parentRefs, 16 hostnames, 16 rules, 64 matches per rule and
  // 128 in all, 16 header and 16 query matches per match, 16 filters, 16 backendRefs.
  maxItems(spec["parentRefs"], "spec.parentRefs", 32);
  maxItems(spec["hostnames"], "spec.hostnames", 16);
  maxItems(spec["rules"], "spec.rules", 16);
  size_t totalMatches = 0;
  std::set<std::string> ruleNames;
  eachItem(spec["parentRefs"], "spec.parentRefs", [&](auto& n, auto& p) {
    checkKeys(n, p, {"group", "kind", "namespace", "name", "sectionName", "port"});
    ParentReference pr;
    pr.group = optStr(n, "group", p).value_or(kGatewayGroup);
    pr.kind = optStr(n, "kind", p).value_or("Gateway");
    pr.ns = optStr(n, "namespace", p);
    pr.name = str(n["name"], join(p, "name"));
    pr.sectionName = optStr(n, "sectionName", p);
    if (n["port"]) {
      pr.port = static_cast<int32_t>(integer(n["port"], join(p, "port"), 1, 65535));
    }
    r.parentRefs.push_back(std::move(pr));
  });
  eachItem(spec["hostnames"], "spec.hostnames",
           [&](auto& n, auto& p) { r.hostnames.push_back(str(n, p)); });
  eachItem(spec["rules"], "spec.rules", [&](auto& n, auto& p) {
    checkKeys(n, p,
              {"name", "matches", "filters", "backendRefs", "timeouts", "retry",
               "sessionPersistence"});
    HTTPRouteRule rule;
    rule.name = optStr(n, "name", p);
    if (rule.name) {
      // SectionName (RFC 1123 label-like) and unique within the route (CEL of HTTPRouteSpec).
      auto labelChar = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'; };
      const std::string& rn = *rule.name;
      if (rn.empty() || rn.size() > 253 || !std::all_of(rn.begin(), rn.end(), labelChar) || rn.front() == '-' ||
          rn.back() == '-') {
        fail(n["name"], join(p, "name"), "rule name \"" + *rule.name + "\" must be lower-case letters, digits and '-'");
      }
      if (!ruleNames.insert(*rule.name).second) {
        fail(n["name"], join(p, "name"), "rule name \"" + *rule.name + "\" is used by another rule of this route");
      }
    }
    maxItems(n["matches"], join(p, "matches"), 64);
    maxItems(n["backendRefs"], join(p, "backendRefs"), 16);
    if (n["matches"] && n["matches"].IsSequence()) {
      totalMatches += n["matches"].size();
      if (totalMatches > 128) {
        fail(n["matches"], join(p, "matches"), "a route may have at most 128 matches in all its rules");
      }
    }
    eachItem(n["matches"], join(p, "matches"), [&](auto& m, auto& mp) {
      maxItems(m["headers"], join(mp, "headers"), 16);
      maxItems(m["queryParams"], join(mp, "queryParams"), 16);
      checkKeys(m, mp, {"path", "headers", "queryParams", "method"});
      HTTPRouteMatch match;
      if (auto path = m["path"]) {
        auto pp = join(mp, "path");
        checkKeys(path, pp, {"type", "value"});
        match.pathType = optStr(path, "type", pp).value_or("PathPrefix");
        match.pathValue = optStr(path, "value", pp).value_or("/");
      }
      eachItem(m["headers"], join(mp, "headers"),
               [&](auto& h, auto& hp) { match.headers.push_back(decodeHeaderMatch(h, hp)); });
      eachItem(m["queryParams"], join(mp, "queryParams"),
               [&](auto& h, auto& hp) { match.queryParams.push_back(decodeHeaderMatch(h, hp)); });
      match.method = optStr(m, "method", mp);
      rule.matches.push_back(std::move(match));
    });
    if (rule.matches.empty()) {
      rule.matches.emplace_back(); // default: PathPrefix "/"
    }
    rule.filters = decodeFilters(n["filters"], join(p, "filters"));
    eachItem(n["backendRefs"], join(p, "backendRefs"), [&](auto& b, auto& bp) {
      checkKeys(b, bp, {"group", "kind", "name", "namespace", "port", "weight", "filters"});
      HTTPBackendRef br;
      decodeBackendObject(b, bp, br);
      if (b["weight"]) {
        br.weight = static_cast<int32_t>(integer(b["weight"], join(bp, "weight"), 0, 1000000));
      }
      br.filters = decodeFilters(b["filters"], join(bp, "filters"));
      rule.backendRefs.push_back(std::move(br));
    });
    auto replacesPrefix = [](const std::vector<HTTPRouteFilter>& fs) {
      for (const auto& f : fs) {
        if ((f.requestRedirect && f.requestRedirect->path && f.requestRedirect->path->type == "ReplacePrefixMatch") ||
            (f.urlRewrite && f.urlRewrite->path && f.urlRewrite->path->type == "ReplacePrefixMatch")) {
          return true;
        }
      }
      return false;
    };
    bool prefixFilter = replacesPrefix(rule.filters);
    for (const auto& b : rule.backendRefs) {
      prefixFilter = prefixFilter || replacesPrefix(b.filters);
    }
    // CEL of HTTPRouteRule: ReplacePrefixMatch needs exactly one match, of type PathPrefix.
    if (prefixFilter && (rule.matches.size() != 1 || rule.matches[0].pathType != "PathPrefix")) {
      fail(n, p, "ReplacePrefixMatch requires exactly one match, of type PathPrefix");
    }
    for (const auto& f : rule.filters) {
      if (f.type == "RequestRedirect" && !rule.backendRefs.empty()) {
        fail(n["backendRefs"], join(p, "backendRefs"), "a rule with a RequestRedirect filter cannot have backendRefs");
      }
    }
    if (auto rt = n["retry"]) {
      auto rp = join(p, "retry");
      checkKeys(rt, rp, {"codes", "attempts", "backoff"});
      HTTPRouteRule::Retry retry;
      eachItem(rt["codes"], join(rp, "codes"), [&](auto& c, auto& cp) {
        retry.codes.push_back(static_cast<int32_t>(integer(c, cp, 400, 599)));
      });
      if (rt["attempts"]) {
        retry.attempts = static_cast<int32_t>(integer(rt["attempts"], join(rp, "attempts"), 1, 100));
      }
      if (rt["backoff"]) {
        retry.backoffMs = durationMs(rt["backoff"], join(rp, "backoff"));
      }
      rule.retry = retry;
    }
    if (auto t = n["timeouts"]) {
      auto tp = join(p, "timeouts");
      checkKeys(t, tp, {"request", "backendRequest"});
      if (t["request"]) {
        rule.requestTimeoutMs = durationMs(t["request"], join(tp, "request"));
      }
      if (t["backendRequest"]) {
        rule.backendRequestTimeoutMs = durationMs(t["backendRequest"], join(tp, "backendRequest"));
      }
      // CEL rule of HTTPRouteTimeouts: backendRequest must not exceed request (unless request is 0).
      if (rule.requestTimeoutMs && rule.backendRequestTimeoutMs && *rule.requestTimeoutMs != 0 &&
          *rule.backendRequestTimeoutMs > *rule.requestTimeoutMs) {
        fail(t["backendRequest"], join(tp, "backendRequest"),
             "backendRequest timeout must be <= request timeout");
      }
    }
    r.rules.push_back(std::move(rule));
  });
}

void decodeReferenceGrant(const YAML::Node& doc, ReferenceGrant& g) {
  auto spec = doc["spec"];
  checkKeys(spec, "spec", {"from", "to"});
  eachItem(spec["from"], "spec.from", [&](auto& n, auto& p) {
    checkKeys(n, p, {"group", "kind", "namespace"});
    g.from.push_back({str(n["group"], join(p, "group")), str(n["kind"], join(p, "kind")),
                      str(n["namespace"], join(p, "namespace"))});
  });
  eachItem(spec["to"], "spec.to", [&](auto& n, auto& p) {
    checkKeys(n, p, {"group", "kind", "name"});
    g.to.push_back(
        {str(n["group"], join(p, "group")), str(n["kind"], join(p, "kind")), optStr(n, "name", p)});
  });
}

void decodeBackendTLSPolicy(const YAML::Node& doc, BackendTLSPolicy& b) {
  auto spec = doc["spec"];
  checkKeys(spec, "spec", {"targetRefs", "validation", "options"});
  maxItems(spec["targetRefs"], "spec.targetRefs", 16);
  eachItem(spec["targetRefs"], "spec.targetRefs", [&](auto& n, auto& p) {
    checkKeys(n, p, {"group", "kind", "name", "sectionName"});
    b.targetRefs.push_back({optStr(n, "group", p).value_or(""), str(n["kind"], join(p, "kind")),
                            str(n["name"], join(p, "name")), optStr(n, "sectionName", p)});
  });
  auto v = spec["validation"];
  checkKeys(v, "spec.validation",
            {"caCertificateRefs", "wellKnownCACertificates", "hostname", "subjectAltNames"});
  maxItems(v["caCertificateRefs"], "spec.validation.caCertificateRefs", 8);
  maxItems(v["subjectAltNames"], "spec.validation.subjectAltNames", 5);
  eachItem(v["caCertificateRefs"], "spec.validation.caCertificateRefs", [&](auto& n, auto& p) {
    b.caCertificateRefs.push_back(decodeObjectRef(n, p, "ConfigMap", false));
  });
  b.wellKnownCACertificates = optStr(v, "wellKnownCACertificates", "spec.validation");
  b.hostname = str(v["hostname"], "spec.validation.hostname");
  eachItem(v["subjectAltNames"], "spec.validation.subjectAltNames", [&](auto& n, auto& p) {
    checkKeys(n, p, {"type", "hostname", "uri"});
    BackendTLSPolicy::SubjectAltName s;
    s.type = str(n["type"], join(p, "type"));
    s.value = s.type == "URI" ? str(n["uri"], join(p, "uri")) : str(n["hostname"], join(p, "hostname"));
    b.subjectAltNames.push_back(s);
  });
}

void decodeAlbBackendTLSPolicy(const YAML::Node& doc, AlbBackendTLSPolicy& b) {
  auto spec = doc["spec"];
  checkKeys(spec, "spec", {"targetRef", "default", "override"});
  auto t = spec["targetRef"];
  checkKeys(t, "spec.targetRef", {"group", "kind", "name", "namespace", "sectionNames"});
  b.targetRef.group = optStr(t, "group", "spec.targetRef").value_or("");
  b.targetRef.kind = str(t["kind"], "spec.targetRef.kind");
  b.targetRef.name = str(t["name"], "spec.targetRef.name");
  b.targetRef.ns = optStr(t, "namespace", "spec.targetRef");
  eachItem(t["sectionNames"], "spec.targetRef.sectionNames",
           [&](auto& n, auto& p) { b.targetRef.sectionNames.push_back(str(n, p)); });
  b.hasOverride = static_cast<bool>(spec["override"]);
  auto d = spec["default"];
  if (!d) {
    return;
  }
  checkKeys(d, "spec.default", {"sni", "ports", "clientCertificateRef", "verify"});
  b.sni = optStr(d, "sni", "spec.default");
  eachItem(d["ports"], "spec.default.ports", [&](auto& n, auto& p) {
    checkKeys(n, p, {"port"});
    b.ports.push_back(static_cast<int32_t>(integer(n["port"], join(p, "port"), 1, 65535)));
  });
  if (auto c = d["clientCertificateRef"]) {
    b.clientCertificateRef =
        decodeObjectRef(c, "spec.default.clientCertificateRef", "Secret", true);
  }
  if (auto v = d["verify"]) {
    checkKeys(v, "spec.default.verify", {"caCertificateRef", "subjectAltName"});
    if (!v["caCertificateRef"]) {
      fail(v, "spec.default.verify.caCertificateRef", "required field is missing");
    }
    b.caCertificateRef = decodeObjectRef(v["caCertificateRef"],
                                         "spec.default.verify.caCertificateRef", "Secret", true);
    b.subjectAltName = optStr(v, "subjectAltName", "spec.default.verify");
  }
}

void decodeService(const YAML::Node& doc, Service& s) {
  auto spec = doc["spec"];
  if (!spec) {
    return;
  }
  requireMap(spec, "spec");
  s.type = optStr(spec, "type", "spec").value_or("ClusterIP");
  s.selector = stringMap(spec["selector"], "spec.selector");
  eachItem(spec["ports"], "spec.ports", [&](auto& n, auto& p) {
    checkKeys(n, p, {"name", "port", "protocol", "targetPort", "appProtocol", "nodePort"});
    ServicePort sp;
    sp.name = optStr(n, "name", p);
    sp.port = static_cast<int32_t>(integer(n["port"], join(p, "port"), 1, 65535));
    sp.protocol = optStr(n, "protocol", p).value_or("TCP");
    sp.appProtocol = optStr(n, "appProtocol", p);
    if (auto tp = n["targetPort"]) {
      auto v = str(tp, join(p, "targetPort"));
      if (auto num = parseUint(v)) {
        sp.targetPortNumber = static_cast<int32_t>(integer(tp, join(p, "targetPort"), 1, 65535));
      } else {
        sp.targetPortName = v;
      }
    } else {
      sp.targetPortNumber = sp.port; // Kubernetes default: targetPort = port
    }
    s.ports.push_back(std::move(sp));
  });
}

void decodeEndpointSlice(const YAML::Node& doc, EndpointSlice& e) {
  checkKeys(doc, "", {"apiVersion", "kind", "metadata", "addressType", "endpoints", "ports"});
  e.addressType = optStr(doc, "addressType", "").value_or("IPv4");
  eachItem(doc["endpoints"], "endpoints", [&](auto& n, auto& p) {
    checkKeys(n, p,
              {"addresses", "conditions", "hostname", "nodeName", "zone", "targetRef", "hints",
               "deprecatedTopology"});
    EndpointSlice::Endpoint ep;
    eachItem(n["addresses"], join(p, "addresses"),
             [&](auto& a, auto& ap) { ep.addresses.push_back(str(a, ap)); });
    if (auto c = n["conditions"]) {
      checkKeys(c, join(p, "conditions"), {"ready", "serving", "terminating"});
      if (c["ready"]) {
        ep.ready = boolean(c["ready"], join(p, "conditions.ready"));
      }
    }
    e.endpoints.push_back(std::move(ep));
  });
  eachItem(doc["ports"], "ports", [&](auto& n, auto& p) {
    checkKeys(n, p, {"name", "port", "protocol", "appProtocol"});
    EndpointSlice::Port port;
    port.name = optStr(n, "name", p);
    if (n["port"]) {
      port.port = static_cast<int32_t>(integer(n["port"], join(p, "port"), 1, 65535));
    }
    e.ports.push_back(port);
  });
}

void decodeEndpoints(const YAML::Node& doc, Endpoints& e) {
  checkKeys(doc, "", {"apiVersion", "kind", "metadata", "subsets"});
  eachItem(doc["subsets"], "subsets", [&](auto& n, auto& p) {
    checkKeys(n, p, {"addresses", "notReadyAddresses", "ports"});
    Endpoints::Subset s;
    eachItem(n["addresses"], join(p, "addresses"), [&](auto& a, auto& ap) {
      requireMap(a, ap);
      s.addresses.push_back(str(a["ip"], join(ap, "ip")));
    });
    eachItem(n["ports"], join(p, "ports"), [&](auto& pt, auto& pp) {
      checkKeys(pt, pp, {"name", "port", "protocol", "appProtocol"});
      s.ports.push_back({optStr(pt, "name", pp),
                         static_cast<int32_t>(integer(pt["port"], join(pp, "port"), 1, 65535))});
    });
    e.subsets.push_back(std::move(s));
  });
}

// Standard base64 (RFC 4648 section 4), as Kubernetes stores Secret data; whitespace is ignored.
// Written here because yaml-cpp 0.7's DecodeBase64 reads out of bounds on bytes >= 0x80 (found by
// the manifest fuzzer); this one rejects anything outside the alphabet.
std::optional<std::string> decodeBase64(std::string_view in) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  int padding = 0;
  size_t symbols = 0;
  for (char c : in) {
    if (c == ' ' || c == '\n' || c == '\r' || c == '\t') {
      continue;
    }
    if (c == '=') {
      ++padding;
      ++symbols;
      continue;
    }
    int v = value(c);
    if (v < 0 || padding > 0) {
      return std::nullopt; // outside the alphabet, or data after padding
    }
    ++symbols;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  if (symbols % 4 != 0 || padding > 2) {
    return std::nullopt;
  }
  return out;
}

void decodeSecret(const YAML::Node& doc, Secret& s, nlohmann::json& raw) {
  checkKeys(doc, "", {"apiVersion", "kind", "metadata", "type", "data", "stringData", "immutable"});
  s.type = optStr(doc, "type", "").value_or("Opaque");
  if (auto data = doc["data"]; data && !data.IsNull()) {
    requireMap(data, "data");
    for (auto it = data.begin(); it != data.end(); ++it) {
      auto key = it->first.as<std::string>();
      auto bytes = decodeBase64(str(it->second, "data." + key));
      if (!bytes) {
        fail(it->second, "data." + key, "value is not valid base64");
      }
      s.data[key] = std::move(*bytes);
    }
  }
  for (auto& [k, v] : stringMap(doc["stringData"], "stringData")) {
    s.data[k] = v;
  }
  // Secret bytes never leave the store: echoes show only the keys.
  raw.erase("stringData");
  auto redacted = nlohmann::json::object();
  for (auto& [k, v] : s.data) {
    redacted[k] = "[redacted: " + std::to_string(v.size()) + " bytes]";
  }
  raw["data"] = redacted;
}

void decodeDocument(const YAML::Node& doc, const std::string& file, ResourceSet& out) {
  requireMap(doc, "");
  auto apiVersionNode = doc["apiVersion"];
  auto kindNode = doc["kind"];
  if (!apiVersionNode || !kindNode) {
    fail(doc, "", "a manifest needs apiVersion and kind");
  }
  const std::string apiVersion = str(apiVersionNode, "apiVersion");
  const std::string kind = str(kindNode, "kind");
  const std::string group = apiVersion.find('/') == std::string::npos
                                ? ""
                                : apiVersion.substr(0, apiVersion.find('/'));
  SourceLocation src{file, doc.Mark().line + 1};
  auto raw = toJson(doc);
  raw.erase("status"); // status is ours to write

  auto common = [&](auto& obj, bool namespaced, std::initializer_list<const char*> topKeys) {
    checkKeys(doc, "", topKeys);
    obj.meta = decodeMeta(doc["metadata"], namespaced);
    obj.source = src;
  };
  const auto specKinds = {"apiVersion", "kind", "metadata", "spec", "status"};

  if (group == kGatewayGroup && kind == "Gateway") {
    Gateway g;
    common(g, true, specKinds);
    decodeGateway(doc, g);
    g.rawJson = dumpJson(raw);
    out.gateways.push_back(std::move(g));
  } else if (group == kGatewayGroup && kind == "GatewayClass") {
    GatewayClass c;
    common(c, false, specKinds);
    auto spec = doc["spec"];
    checkKeys(spec, "spec", {"controllerName", "parametersRef", "description"});
    c.controllerName = str(spec["controllerName"], "spec.controllerName");
    if (auto pr = spec["parametersRef"]) {
      c.parametersRef = decodeParametersRef(pr, "spec.parametersRef", true);
    }
    c.rawJson = dumpJson(raw);
    out.gatewayClasses.push_back(std::move(c));
  } else if (group == kGatewayGroup && kind == "HTTPRoute") {
    HTTPRoute r;
    common(r, true, specKinds);
    decodeHTTPRoute(doc, r);
    r.rawJson = dumpJson(raw);
    out.httpRoutes.push_back(std::move(r));
  } else if (group == kGatewayGroup && kind == "ReferenceGrant") {
    ReferenceGrant g;
    common(g, true, specKinds);
    decodeReferenceGrant(doc, g);
    g.rawJson = dumpJson(raw);
    out.referenceGrants.push_back(std::move(g));
  } else if (group == kGatewayGroup && kind == "BackendTLSPolicy") {
    BackendTLSPolicy b;
    common(b, true, specKinds);
    decodeBackendTLSPolicy(doc, b);
    b.rawJson = dumpJson(raw);
    out.backendTLSPolicies.push_back(std::move(b));
  } else if (group == kAlbGroup && kind == "BackendTLSPolicy") {
    AlbBackendTLSPolicy b;
    common(b, true, specKinds);
    decodeAlbBackendTLSPolicy(doc, b);
    b.rawJson = dumpJson(raw);
    out.albBackendTLSPolicies.push_back(std::move(b));
  } else if (apiVersion == "v1" && kind == "Service") {
    Service s;
    common(s, true, specKinds);
    decodeService(doc, s);
    s.rawJson = dumpJson(raw);
    out.services.push_back(std::move(s));
  } else if (group == "discovery.k8s.io" && kind == "EndpointSlice") {
    EndpointSlice e;
    e.meta = decodeMeta(doc["metadata"], true);
    e.source = src;
    decodeEndpointSlice(doc, e);
    e.rawJson = dumpJson(raw);
    out.endpointSlices.push_back(std::move(e));
  } else if (apiVersion == "v1" && kind == "Endpoints") {
    Endpoints e;
    e.meta = decodeMeta(doc["metadata"], true);
    e.source = src;
    decodeEndpoints(doc, e);
    e.rawJson = dumpJson(raw);
    out.endpoints.push_back(std::move(e));
  } else if (apiVersion == "v1" && kind == "Secret") {
    Secret s;
    s.meta = decodeMeta(doc["metadata"], true);
    s.source = src;
    decodeSecret(doc, s, raw);
    s.rawJson = dumpJson(raw);
    out.secrets.push_back(std::move(s));
  } else if (apiVersion == "v1" && kind == "ConfigMap") {
    ConfigMap c;
    common(c, true, {"apiVersion", "kind", "metadata", "data", "binaryData", "immutable"});
    c.data = stringMap(doc["data"], "data");
    c.rawJson = dumpJson(raw);
    out.configMaps.push_back(std::move(c));
  } else if (apiVersion == "v1" && kind == "Namespace") {
    Namespace n;
    common(n, false, specKinds);
    n.rawJson = dumpJson(raw);
    out.namespaces.push_back(std::move(n));
  } else {
    OtherObject o;
    o.apiVersion = apiVersion;
    o.kind = kind;
    o.source = src;
    if (auto md = doc["metadata"]; md && md.IsMap()) {
      o.meta.name = md["name"] ? md["name"].as<std::string>() : "";
      o.meta.ns = md["namespace"] ? md["namespace"].as<std::string>() : "";
    }
    out.others.push_back(std::move(o));
  }
}

constexpr size_t kMaxDocumentNodes = 200000;
constexpr size_t kMaxFileBytes = 16 * 1024 * 1024;

// A document's size once YAML aliases are expanded: an anchor referenced over and over can make a
// few kilobytes of YAML into gigabytes ("billion laughs") — by node count (an anchored list), or by
// text (an anchored long string: 10^5 references to 5 KB are 500 MB of copies once decoded).
// True as soon as either passes what a document may hold: kMaxDocumentNodes nodes, or as much text
// as the largest file we read.
struct Expansion {
  size_t nodes = 0;
  size_t bytes = 0;
};
bool expandsBeyondLimits(const YAML::Node& n, Expansion& e) {
  ++e.nodes;
  if (n.IsScalar()) {
    e.bytes += n.Scalar().size();
  }
  if (e.nodes > kMaxDocumentNodes || e.bytes > kMaxFileBytes) {
    return true;
  }
  if (n.IsMap()) {
    for (auto it = n.begin(); it != n.end(); ++it) {
      if (expandsBeyondLimits(it->first, e) || expandsBeyondLimits(it->second, e)) {
        return true;
      }
    }
  } else if (n.IsSequence()) {
    for (auto it = n.begin(); it != n.end(); ++it) {
      if (expandsBeyondLimits(*it, e)) {
        return true;
      }
    }
  }
  return false;
}

// yaml-cpp 0.7 (Debian 12's) never returns from LoadAll on some malformed streams — a lone "," is
// one: its parser reports a document without consuming the token it stopped at, and LoadAll asks
// for the next document forever, allocating as it goes (fixed after 0.7.0 by yaml-cpp pull request
// 1319). A first pass over the parser's events finds such a place: a document that starts where
// the one before it started. Returns that place, if any.
class DocumentStarts : public YAML::EventHandler {
public:
  YAML::Mark start;
  void OnDocumentStart(const YAML::Mark& mark) override { start = mark; }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t, const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
};

std::optional<YAML::Mark> parserStallsAt(const std::string& content) {
  std::istringstream in(content);
  YAML::Parser parser(in);
  DocumentStarts starts;
  std::optional<int> previous;
  while (parser.HandleNextDocument(starts)) {
    if (previous && *previous == starts.start.pos) {
      return starts.start;
    }
    previous = starts.start.pos;
  }
  return std::nullopt;
}

} // namespace

std::vector<DecodeError> decodeManifests(const std::string& file, const std::string& content,
                                         ResourceSet& out) {
  ResourceSet local;
  std::vector<DecodeError> errors;
  std::vector<YAML::Node> docs;
  if (content.size() > kMaxFileBytes) {
    errors.push_back({file, 0, 0, "", "file larger than 16 MiB; not read"});
    return errors;
  }
  try {
    if (auto stall = parserStallsAt(content)) {
      errors.push_back({file, stall->line + 1, stall->column + 1, "", "malformed YAML: unexpected token here"});
      return errors;
    }
    docs = YAML::LoadAll(content);
  } catch (const YAML::Exception& e) {
    errors.push_back({file, e.mark.line + 1, e.mark.column + 1, "", e.msg});
    return errors;
  }
  for (const auto& doc : docs) {
    if (!doc || doc.IsNull()) {
      continue; // empty document between separators
    }
    try {
      if (Expansion e; expandsBeyondLimits(doc, e)) {
        errors.push_back({file, doc.Mark().line + 1, 0, "",
                          "document too large once YAML aliases are expanded (over " +
                              std::to_string(kMaxDocumentNodes) + " nodes or " +
                              std::to_string(kMaxFileBytes / (1024 * 1024)) + " MiB of text)"});
        continue;
      }
      if (doc.IsMap() && doc["kind"] && doc["kind"].IsScalar() && doc["kind"].Scalar() == "List" &&
          doc["items"]) {
        for (const auto& item : doc["items"]) {
          decodeDocument(item, file, local);
        }
      } else {
        decodeDocument(doc, file, local);
      }
    } catch (const DecodeFailure& f) {
      int line = f.line > 0 ? f.line : doc.Mark().line + 1;
      errors.push_back({file, line, f.column, f.path, f.message});
    } catch (const YAML::Exception& e) {
      errors.push_back({file, e.mark.line + 1, e.mark.column + 1, "", e.msg});
    } catch (const std::exception& e) {
      // Third-party exceptions stop at the decode boundary (STYLE.md section 8).
      errors.push_back({file, doc.Mark().line + 1, 0, "", std::string("cannot decode: ") + e.what()});
    }
  }
  if (!errors.empty()) {
    return errors;
  }
  auto append = [](auto& dst, auto& src) {
    for (auto& x : src) {
      dst.push_back(std::move(x));
    }
  };
  append(out.gatewayClasses, local.gatewayClasses);
  append(out.gateways, local.gateways);
  append(out.httpRoutes, local.httpRoutes);
  append(out.referenceGrants, local.referenceGrants);
  append(out.backendTLSPolicies, local.backendTLSPolicies);
  append(out.albBackendTLSPolicies, local.albBackendTLSPolicies);
  append(out.services, local.services);
  append(out.endpointSlices, local.endpointSlices);
  append(out.endpoints, local.endpoints);
  append(out.secrets, local.secrets);
  append(out.configMaps, local.configMaps);
  append(out.namespaces, local.namespaces);
  append(out.others, local.others);
  return errors;
}

} // namespace gantry::api
