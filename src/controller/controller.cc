#include "controller/controller.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <set>

#include "common/strings.h"
#include "ir/dump.h"

namespace gantry::controller {

std::string describe(const translate::Warning& w) { return w.object.str() + ": " + w.message; }

nlohmann::json renderAll(const api::ResourceSet& resources, const translate::Result& result,
                         const std::string& controllerName) {
  auto items = renderObjects(resources, result);
  std::set<std::string> declared;
  for (const auto& c : resources.gatewayClasses) {
    declared.insert(c.meta.name);
  }
  for (const auto& [key, st] : result.statuses) {
    if (key.kind != "GatewayClass" || declared.count(key.name) != 0) {
      continue;
    }
    items.push_back({{"apiVersion", "gateway.networking.k8s.io/v1"},
                     {"kind", "GatewayClass"},
                     {"metadata", {{"name", key.name}, {"generation", 1}}},
                     {"spec", {{"controllerName", controllerName}}},
                     {"status", statusJson(key, st)}});
  }
  return items;
}

Controller::Controller(Options options, DataPlane& dataplane)
    : options_(std::move(options)), dataplane_(dataplane), store_(options_.configDir) {}

void Controller::markUnavailablePorts() {
  // Spec 5.3: a Gateway address this machine cannot listen on is Programmed=False/AddressNotUsable
  // and is not listed in status.addresses.
  for (const auto& bad : dataplaneReport_.unusableAddresses) {
    for (auto& [key, st] : result_.statuses) {
      if (key.kind != "Gateway") {
        continue;
      }
      auto it = std::find_if(st.addresses.begin(), st.addresses.end(),
                             [&](const api::GatewayAddress& a) { return a.value == bad; });
      if (it == st.addresses.end()) {
        continue;
      }
      st.addresses.erase(it);
      for (auto& c : st.conditions) {
        if (c.type == "Programmed") {
          c = {"Programmed", "False", "AddressNotUsable", "cannot listen on address " + bad + ": it is not an address of this machine",
               c.observedGeneration, ""};
        }
      }
    }
  }
  for (const auto& key : dataplaneReport_.unboundPorts) {
    for (const auto& l : result_.ir.listeners) {
      if (l.address + ":" + std::to_string(l.port) != key) {
        continue;
      }
      // l.name is gateway/<ns>/<gateway>/<listener>
      auto parts = split(l.name, '/');
      if (parts.size() != 4) {
        continue;
      }
      auto it = result_.statuses.find({api::kGatewayGroup, "Gateway", std::string(parts[1]), std::string(parts[2])});
      if (it == result_.statuses.end()) {
        continue;
      }
      for (auto& ls : it->second.listeners) {
        if (ls.name != parts[3]) {
          continue;
        }
        for (auto& c : ls.conditions) {
          // Listener Accepted=False/PortUnavailable (gateway_types.go ListenerReasonPortUnavailable).
          if (c.type == "Accepted") {
            c = {"Accepted", "False", "PortUnavailable",
                 "cannot listen on " + key + ": " + [&] {
                   for (const auto& p : dataplaneReport_.problems) {
                     if (p.find(key) != std::string::npos) {
                       return p.substr(p.rfind(": ") + 2);
                     }
                   }
                   return std::string("unavailable");
                 }(),
                 c.observedGeneration, ""};
          } else if (c.type == "Programmed") {
            c = {"Programmed", "False", "Invalid", "the listener's port is not available",
                 c.observedGeneration, ""};
          }
        }
      }
    }
  }
}

void Controller::reload(int64_t now) {
  auto loaded = store_.load(now);
  std::vector<std::string> errors;
  for (const auto& e : loaded.errors) {
    errors.push_back(e.str());
  }
  if (errors != errors_) {
    for (const auto& e : errors) {
      spdlog::error("config: {} (the last good version of this file keeps serving)", e);
    }
  }
  errors_ = std::move(errors);
  for (const auto& o : loaded.resources.others) {
    static std::set<std::string> logged;
    std::string id = o.source.file + ":" + o.kind + "/" + o.meta.name;
    if (logged.insert(id).second) {
      spdlog::info("config: {}:{}: {} {} is not served by Gantry; ignored", o.source.file,
                   o.source.line, o.apiVersion, o.kind + "/" + o.meta.name);
    }
  }
  resources_ = std::move(loaded.resources);
  options_.translate.now = now;
  result_ = translate::translate(resources_, options_.translate);

  std::vector<std::string> warnings;
  for (const auto& w : result_.warnings) {
    warnings.push_back(describe(w));
  }
  if (warnings != warnings_) {
    for (const auto& w : warnings) {
      spdlog::warn("{}", w);
    }
  }
  warnings_ = std::move(warnings);

  if (!published_ || !(*published_ == result_.ir)) {
    dataplaneReport_ = dataplane_.apply(result_.ir);
    for (const auto& p : dataplaneReport_.problems) {
      spdlog::error("data plane: {}", p);
    }
    published_ = result_.ir;
    spdlog::info("config {} served: {} listener(s), {} cluster(s)", reloads_ + 1,
                 result_.ir.listeners.size(), result_.ir.clusters.size());
    reloads_++;
  } else if (!dataplaneReport_.unboundPorts.empty()) {
    auto before = dataplaneReport_.unboundPorts;
    dataplaneReport_ = dataplane_.rebind();
    if (dataplaneReport_.unboundPorts != before) {
      spdlog::info("data plane: now listening on {} more address:port(s)",
                   before.size() - dataplaneReport_.unboundPorts.size());
    }
  }
  markUnavailablePorts();
  book_.stamp(result_, formatRfc3339(now));
  ready_ = true;
}

void Controller::poll(int64_t now) {
  if (store_.changedSinceLoad() || !dataplaneReport_.unboundPorts.empty()) {
    reload(now);
  }
}

nlohmann::json Controller::statusDocument() const {
  return {{"items", renderAll(resources_, result_, options_.translate.controllerName)},
          {"errors", errors_},
          {"warnings", warnings_},
          {"dataplane", dataplaneReport_.problems}};
}

nlohmann::json Controller::configDocument() const { return ir::toJson(result_.ir); }

} // namespace gantry::controller
