#include "controller/status.h"

#include "api/visit.h"

namespace gantry::controller {

namespace {

void stampAll(std::vector<api::Condition>& cs, const std::string& prefix, const std::string& now,
              std::map<std::string, std::pair<std::string, std::string>>& prev,
              std::map<std::string, std::pair<std::string, std::string>>& next) {
  for (auto& c : cs) {
    std::string path = prefix + "/" + c.type;
    auto it = prev.find(path);
    c.lastTransitionTime = (it != prev.end() && it->second.first == c.status) ? it->second.second : now;
    next[path] = {c.status, c.lastTransitionTime};
  }
}

std::string parentPath(const api::ParentReference& p) {
  return "/parent/" + p.ns.value_or("") + "/" + p.name + "/" + p.sectionName.value_or("") + "/" +
         (p.port ? std::to_string(*p.port) : "");
}

nlohmann::json parentRefJson(const api::ParentReference& p) {
  nlohmann::json j = {{"group", p.group}, {"kind", p.kind}, {"name", p.name}};
  if (p.ns) {
    j["namespace"] = *p.ns;
  }
  if (p.sectionName) {
    j["sectionName"] = *p.sectionName;
  }
  if (p.port) {
    j["port"] = *p.port;
  }
  return j;
}

} // namespace

void StatusBook::stamp(translate::Result& result, const std::string& nowStamp) {
  std::map<std::string, std::pair<std::string, std::string>> next;
  for (auto& [key, st] : result.statuses) {
    const std::string base = key.group + "/" + key.str();
    stampAll(st.conditions, base, nowStamp, previous_, next);
    for (auto& l : st.listeners) {
      stampAll(l.conditions, base + "/listener/" + l.name, nowStamp, previous_, next);
    }
    for (auto& p : st.parents) {
      stampAll(p.conditions, base + parentPath(p.parentRef), nowStamp, previous_, next);
    }
  }
  previous_ = std::move(next);
}

nlohmann::json conditionsJson(const std::vector<api::Condition>& cs) {
  auto arr = nlohmann::json::array();
  for (const auto& c : cs) {
    arr.push_back({{"type", c.type},
                   {"status", c.status},
                   {"reason", c.reason},
                   {"message", c.message},
                   {"observedGeneration", c.observedGeneration},
                   {"lastTransitionTime", c.lastTransitionTime}});
  }
  return arr;
}

nlohmann::json statusJson(const translate::ObjectKey& key, const translate::ObjectStatus& st) {
  nlohmann::json j = nlohmann::json::object();
  if (key.kind == "Gateway") {
    auto addrs = nlohmann::json::array();
    for (const auto& a : st.addresses) {
      addrs.push_back({{"type", a.type}, {"value", a.value}});
    }
    if (!addrs.empty()) {
      j["addresses"] = addrs;
    }
    j["conditions"] = conditionsJson(st.conditions);
    auto ls = nlohmann::json::array();
    for (const auto& l : st.listeners) {
      auto kinds = nlohmann::json::array();
      for (const auto& k : l.supportedKinds) {
        kinds.push_back({{"group", k.group}, {"kind", k.kind}});
      }
      ls.push_back({{"name", l.name},
                    {"attachedRoutes", l.attachedRoutes},
                    {"supportedKinds", kinds},
                    {"conditions", conditionsJson(l.conditions)}});
    }
    j["listeners"] = ls;
    return j;
  }
  if (key.kind == "HTTPRoute" || (key.kind == "BackendTLSPolicy" && key.group == api::kGatewayGroup)) {
    auto ps = nlohmann::json::array();
    for (const auto& p : st.parents) {
      ps.push_back({{key.kind == "HTTPRoute" ? "parentRef" : "ancestorRef", parentRefJson(p.parentRef)},
                    {"controllerName", p.controllerName},
                    {"conditions", conditionsJson(p.conditions)}});
    }
    j[key.kind == "HTTPRoute" ? "parents" : "ancestors"] = ps;
    return j;
  }
  j["conditions"] = conditionsJson(st.conditions);
  if (!st.supportedFeatures.empty()) {
    auto fs = nlohmann::json::array();
    for (const auto& f : st.supportedFeatures) {
      fs.push_back({{"name", f}});
    }
    j["supportedFeatures"] = fs;
  }
  return j;
}

nlohmann::json renderObjects(const api::ResourceSet& resources, const translate::Result& result) {
  auto out = nlohmann::json::array();
  auto add = [&](const char* group, const char* kind, const api::ObjectMeta& meta,
                 const std::string& raw, bool clusterScoped) {
    nlohmann::json obj = raw.empty() ? nlohmann::json::object() : nlohmann::json::parse(raw);
    auto& md = obj["metadata"];
    md["name"] = meta.name;
    if (!clusterScoped) {
      md["namespace"] = meta.ns;
    }
    md["generation"] = meta.generation;
    md["creationTimestamp"] = meta.creationTimestamp;
    if (!meta.labels.empty()) {
      md["labels"] = meta.labels;
    }
    translate::ObjectKey key{group, kind, meta.ns, meta.name};
    if (auto it = result.statuses.find(key); it != result.statuses.end()) {
      obj["status"] = statusJson(key, it->second);
    }
    out.push_back(std::move(obj));
  };
  api::forEachObject(resources, [&](const char* group, const char* kind, const api::ObjectMeta& meta,
                                    const api::SourceLocation&, const std::string& raw) {
    bool clusterScoped = std::string(kind) == "GatewayClass" || std::string(kind) == "Namespace";
    add(group, kind, meta, raw, clusterScoped);
  });
  return out;
}

} // namespace gantry::controller
