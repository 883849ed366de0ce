#include "controller/controller.h"

#include <spdlog/spdlog.h>

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

Controller::Controller(Options options, Publisher publisher)
    : options_(std::move(options)), publisher_(std::move(publisher)), store_(options_.configDir) {}

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
  book_.stamp(result_, formatRfc3339(now));

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
    dataplaneProblems_ = publisher_(result_.ir);
    for (const auto& p : dataplaneProblems_) {
      spdlog::error("data plane: {}", p);
    }
    published_ = result_.ir;
    spdlog::info("config {} served: {} listener(s), {} cluster(s)", reloads_ + 1,
                 result_.ir.listeners.size(), result_.ir.clusters.size());
    reloads_++;
  }
  ready_ = true;
}

nlohmann::json Controller::statusDocument() const {
  return {{"items", renderAll(resources_, result_, options_.translate.controllerName)},
          {"errors", errors_},
          {"warnings", warnings_},
          {"dataplane", dataplaneProblems_}};
}

nlohmann::json Controller::configDocument() const { return ir::toJson(result_.ir); }

} // namespace gantry::controller
