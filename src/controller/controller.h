#pragma once
// The control loop of file mode: source -> translate -> publish the IR to the data plane and the
// statuses to the admin API. Main thread only.
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "controller/status.h"
#include "store/file_store.h"
#include "translate/translator.h"

namespace gantry::controller {

struct Options {
  std::string configDir;
  translate::Options translate;
};

// The data plane as the controller sees it (main thread).
class DataPlane {
public:
  virtual ~DataPlane() = default;
  // Publishes `config`; reports what could not be served.
  virtual ir::ApplyReport apply(const ir::Config& config) = 0;
  // Retries the address:ports that could not be bound; the config is unchanged.
  virtual ir::ApplyReport rebind() = 0;
};

class Controller {
public:
  Controller(Options options, DataPlane& dataplane);

  // Re-reads the folder, translates, stamps statuses, and publishes the IR when it changed.
  // Logs decode errors (file:line: field: cause), new warnings and data-plane problems.
  void reload(int64_t now);
  // The periodic safety net: reloads when the folder changed (a change inotify did not report),
  // else retries ports that could not be bound.
  void poll(int64_t now);

  bool ready() const { return ready_; }
  uint64_t generation() const { return reloads_; }

  // {"items": [objects with status], "errors": [...], "warnings": [...]} for /status and `get`.
  nlohmann::json statusDocument() const;
  nlohmann::json configDocument() const;

private:
  Options options_;
  DataPlane& dataplane_;
  store::FileStore store_;
  StatusBook book_;
  api::ResourceSet resources_;
  translate::Result result_;
  std::optional<ir::Config> published_;
  std::vector<std::string> errors_;
  std::vector<std::string> warnings_;
  ir::ApplyReport dataplaneReport_;

  // Listeners on address:ports the data plane could not bind: Accepted=False, PortUnavailable.
  void markUnavailablePorts();
  bool ready_ = false;
  uint64_t reloads_ = 0;
};

// The text `gantry check` and the logs use for a warning.
std::string describe(const translate::Warning& w);

// Every object with status, including the implicit GatewayClasses (rendered for `get`).
nlohmann::json renderAll(const api::ResourceSet& resources, const translate::Result& result,
                         const std::string& controllerName);

} // namespace gantry::controller
