#pragma once
// The subcommands of the one `gantry` binary (DESIGN.md command-line contract).
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace gantry::app {

struct RunArgs {
  std::string configDir;
  std::vector<std::string> addressPool{"127.0.0.1"};
  std::map<std::string, std::string> frontends; // --frontend NAME=IP
  int portOffset = 0;
  std::string admin = "127.0.0.1:9901";
  unsigned workers = 0;
  std::string accessLog; // --access-log PATH ("-": standard output); empty: none
  std::string controllerName = "alb.networking.azure.io/alb-controller";
};

// Serves until SIGINT/SIGTERM. `onReady` runs once, on the main thread, after the first
// configuration is served; it gets the /status document (JSON text).
int run(const RunArgs& args, const std::function<void(const std::string& statusJson)>& onReady = {});

int check(const RunArgs& args, const std::string& output);

struct GetArgs {
  std::string kind;
  std::string name;
  std::string ns;
  bool allNamespaces = false;
  std::string output; // "", yaml, json
  std::string admin = "127.0.0.1:9901";
};
int get(const GetArgs& args);

int demo(const RunArgs& args);

// Blocking HTTP GET against the admin endpoint; returns the body or throws with a clear message.
std::string adminGet(const std::string& hostPort, const std::string& path);

int64_t nowSeconds();

} // namespace gantry::app
