// `gantry`: CLI wiring only; each subcommand lives in its own file.
#include <CLI/CLI.hpp>
#include <csignal>

#include "app/commands.h"
#include "common/log.h"
#include "common/strings.h"

int main(int argc, char** argv) {
  // OpenSSL writes to sockets with write(2): a peer that has gone must be an EPIPE error, not a
  // signal that kills the gateway.
  signal(SIGPIPE, SIG_IGN);
  CLI::App app{"Gantry: an application gateway for containers (Gateway API, backend mTLS)"};
  app.require_subcommand(1);
  std::string logLevel = "info";
  app.add_option("--log-level", logLevel, "trace, debug, info, warn, error")->capture_default_str();

  gantry::app::RunArgs runArgs;
  std::string pool = "127.0.0.1";
  std::vector<std::string> frontends;
  auto addRunOptions = [&](CLI::App* cmd, bool needConfig) {
    auto* c = cmd->add_option("--config", runArgs.configDir, "folder of Kubernetes manifests");
    if (needConfig) {
      c->required()->check(CLI::ExistingDirectory);
    }
    cmd->add_option("--address-pool", pool, "comma-separated IPs handed to Gateways in order")
        ->capture_default_str();
    cmd->add_option("--port-offset", runArgs.portOffset, "a listener on port P binds P+N")
        ->capture_default_str();
    cmd->add_option("--frontend", frontends,
                    "NAME=IP: the address of a frontend named by a Gateway address of type "
                    "alb.networking.azure.io/alb-frontend (repeatable)");
    cmd->add_option("--controller-name", runArgs.controllerName, "controllerName Gantry answers to")
        ->capture_default_str();
  };

  auto* run = app.add_subcommand("run", "serve the manifests of a folder (file mode)");
  addRunOptions(run, true);
  run->add_option("--admin", runArgs.admin, "admin endpoint HOST:PORT")->capture_default_str();
  run->add_option("--workers", runArgs.workers, "worker threads (default: one per core)");
  run->add_option("--access-log", runArgs.accessLog,
                  "append one JSON line per request to this file (- for standard output)");

  auto* check = app.add_subcommand("check", "load and translate offline; print every status");
  addRunOptions(check, true);
  std::string checkOutput = "yaml";
  check->add_option("-o,--output", checkOutput, "yaml or json")
      ->check(CLI::IsMember({"yaml", "json"}))
      ->capture_default_str();

  gantry::app::GetArgs getArgs;
  auto* get = app.add_subcommand("get", "show objects and their status from a running gantry");
  get->add_option("kind", getArgs.kind, "gateway, httproute, backendtlspolicy, ...")->required();
  get->add_option("name", getArgs.name, "object name");
  get->add_option("-n,--namespace", getArgs.ns, "namespace (default: default)");
  get->add_flag("-A,--all-namespaces", getArgs.allNamespaces, "all namespaces");
  get->add_option("-o,--output", getArgs.output, "yaml or json")->check(CLI::IsMember({"yaml", "json"}));
  get->add_option("--admin", getArgs.admin, "admin endpoint HOST:PORT")->capture_default_str();

  auto* demo = app.add_subcommand("demo", "run the how-to's backend-mTLS scenario on localhost");
  demo->add_option("--admin", runArgs.admin, "admin endpoint HOST:PORT")->capture_default_str();
  demo->add_option("--workers", runArgs.workers, "worker threads (default: one per core)");

  auto* controller = app.add_subcommand("controller", "Kubernetes mode (watch an API server)");
  std::string kubeconfig;
  bool inCluster = false;
  controller->add_option("--kubeconfig", kubeconfig, "kubeconfig file");
  controller->add_flag("--in-cluster", inCluster, "use the service account");

  CLI11_PARSE(app, argc, argv);
  gantry::log::init(logLevel);
  runArgs.addressPool.clear();
  for (auto part : gantry::split(pool, ',')) {
    auto p = gantry::trimOws(part);
    if (!p.empty()) {
      runArgs.addressPool.emplace_back(p);
    }
  }
  for (const auto& f : frontends) {
    auto eq = f.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == f.size()) {
      fprintf(stderr, "gantry: --frontend wants NAME=IP, got \"%s\"\n", f.c_str());
      return 2;
    }
    runArgs.frontends[f.substr(0, eq)] = f.substr(eq + 1);
  }
  try {
    if (*run) {
      return gantry::app::run(runArgs);
    }
    if (*check) {
      return gantry::app::check(runArgs, checkOutput);
    }
    if (*get) {
      return gantry::app::get(getArgs);
    }
    if (*demo) {
      return gantry::app::demo(runArgs);
    }
    if (*controller) {
      fprintf(stderr, "gantry controller: Kubernetes mode is not implemented yet; use `gantry run "
                      "--config DIR` (file mode)\n");
      return 2;
    }
  } catch (const std::exception& e) {
    fprintf(stderr, "gantry: %s\n", e.what());
    return 1;
  }
  return 0;
}
