// `gantry run` and `gantry check`.
#include <spdlog/spdlog.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <fcntl.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <iostream>

#include "admin/main_loop.h"
#include "app/commands.h"
#include "common/strings.h"
#include "common/yaml_out.h"
#include "controller/controller.h"
#include "dataplane/server.h"

namespace gantry::app {

int64_t nowSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

namespace {

// Gateway addresses of type Hostname: the system resolver (getaddrinfo: /etc/hosts, DNS).
std::vector<std::string> resolveHostname(const std::string& name) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_ADDRCONFIG;
  addrinfo* res = nullptr;
  std::vector<std::string> out;
  if (getaddrinfo(name.c_str(), nullptr, &hints, &res) != 0) {
    return out;
  }
  for (addrinfo* a = res; a != nullptr; a = a->ai_next) {
    char buf[INET6_ADDRSTRLEN] = {};
    const void* src = a->ai_family == AF_INET
                          ? static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(a->ai_addr)->sin_addr)
                          : static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(a->ai_addr)->sin6_addr);
    if ((a->ai_family == AF_INET || a->ai_family == AF_INET6) && inet_ntop(a->ai_family, src, buf, sizeof buf) != nullptr) {
      out.emplace_back(buf);
    }
  }
  freeaddrinfo(res);
  return out;
}

controller::Options controllerOptions(const RunArgs& args) {
  controller::Options o;
  o.configDir = args.configDir;
  o.translate.controllerName = args.controllerName;
  o.translate.addressPool = args.addressPool;
  o.translate.frontends = args.frontends;
  o.translate.portOffset = args.portOffset;
  o.translate.resolveHostname = resolveHostname;
  return o;
}

// inotify on the folder and every folder below it; returns the fd or -1.
int watchTree(const std::string& dir) {
  int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0) {
    return -1;
  }
  const uint32_t mask = IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE |
                        IN_MODIFY | IN_ATTRIB | IN_DELETE_SELF;
  inotify_add_watch(fd, dir.c_str(), mask);
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) {
      break;
    }
    if (it->is_directory()) {
      inotify_add_watch(fd, it->path().c_str(), mask);
    }
  }
  return fd;
}

} // namespace

int run(const RunArgs& args, const std::function<void(const std::string&)>& onReady) {
  int accessFd = -1;
  if (args.accessLog == "-") {
    accessFd = STDOUT_FILENO;
  } else if (!args.accessLog.empty()) {
    accessFd = ::open(args.accessLog.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (accessFd < 0) {
      spdlog::error("--access-log {}: {}", args.accessLog, strerror(errno));
      return 2;
    }
  }
  dataplane::Server server({args.workers, accessFd});
  server.start();
  struct ServerAdapter : controller::DataPlane {
    explicit ServerAdapter(dataplane::Server& s) : server(s) {}
    ir::ApplyReport apply(const ir::Config& c) override { return server.apply(c); }
    ir::ApplyReport rebind() override { return server.rebind(); }
    dataplane::Server& server;
  } adapter(server);
  controller::Controller ctl(controllerOptions(args), adapter);
  admin::MainLoop loop;
  auto error = loop.serveAdmin(args.admin, [&](const std::string& method, const std::string& path)
                                               -> admin::HttpResponse {
    if (method != "GET") {
      return {405, "text/plain", "only GET\n"};
    }
    if (path == "/healthz") {
      return {200, "text/plain", "ok\n"};
    }
    if (path == "/readyz") {
      return ctl.ready() ? admin::HttpResponse{200, "text/plain", "ready\n"}
                         : admin::HttpResponse{503, "text/plain", "not ready\n"};
    }
    if (path == "/status") {
      return {200, "application/json", toJsonText(ctl.statusDocument(), 2) + "\n"};
    }
    if (path == "/config") {
      return {200, "application/json", toJsonText(ctl.configDocument(), 2) + "\n"};
    }
    if (path == "/metrics") {
      return {200, "text/plain; version=0.0.4", server.metricsText()};
    }
    return {404, "text/plain", "unknown admin path; try /healthz /readyz /status /config /metrics\n"};
  });
  if (error) {
    spdlog::error("{}", *error);
    server.stop();
    return 1;
  }
  spdlog::info("gantry serving {} with {} worker(s); admin on http://{}", args.configDir,
               server.workerCount(), args.admin);
  // Signals first: onReady may ask to stop.
  if (accessFd >= 0 && accessFd != STDOUT_FILENO) {
    // Log rotation: after the file is moved away, SIGHUP opens the path anew. dup2 swaps what the
    // workers' descriptor points to in one step, so no worker ever writes to a closed one.
    loop.onSignal(SIGHUP, [&] {
      int fresh = ::open(args.accessLog.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
      if (fresh < 0 || ::dup3(fresh, accessFd, O_CLOEXEC) < 0) {
        spdlog::error("SIGHUP: cannot reopen the access log {}: {}", args.accessLog, strerror(errno));
      } else {
        spdlog::info("SIGHUP: access log {} reopened", args.accessLog);
      }
      if (fresh >= 0) {
        ::close(fresh);
      }
    });
  }
  loop.onStopSignal([&] {
    spdlog::info("stopping");
    loop.stop();
  });
  ctl.reload(nowSeconds());
  if (onReady) {
    onReady(toJsonText(ctl.statusDocument()));
  }

  // Changes take effect within the debounce (150 ms) of the file event; a 1 s poll backs inotify
  // up for filesystems that do not report (network mounts) and for folders created later.
  int inotifyFd = watchTree(args.configDir);
  auto reload = [&] { ctl.reload(nowSeconds()); };
  if (inotifyFd >= 0) {
    loop.watchFd(inotifyFd, [&] {
      char buf[8192];
      while (::read(inotifyFd, buf, sizeof buf) > 0) {
      }
      loop.debounce(0, std::chrono::milliseconds(150), reload);
    });
  }
  loop.every(std::chrono::milliseconds(1000), [&] { ctl.poll(nowSeconds()); });
  loop.run();
  server.stop();
  if (inotifyFd >= 0) {
    ::close(inotifyFd);
  }
  return 0;
}

int check(const RunArgs& args, const std::string& output) {
  auto opts = controllerOptions(args);
  opts.translate.now = nowSeconds();
  store::FileStore store(args.configDir);
  auto loaded = store.load(opts.translate.now);
  auto result = translate::translate(loaded.resources, opts.translate);
  controller::StatusBook book;
  book.stamp(result, formatRfc3339(opts.translate.now));
  bool ok = loaded.errors.empty() && translate::allHealthy(result);
  for (const auto& e : loaded.errors) {
    std::cerr << "error: " << e.str() << "\n";
  }
  for (const auto& w : result.warnings) {
    std::cerr << "warning: " << controller::describe(w) << "\n";
  }
  // Only objects that carry a status are printed: the Gateway API kinds.
  auto all = controller::renderAll(loaded.resources, result, args.controllerName);
  auto items = nlohmann::json::array();
  for (auto& o : all) {
    if (o.contains("status")) {
      items.push_back(o);
    }
  }
  if (output == "json") {
    std::cout << toJsonText(nlohmann::json{{"items", items}}, 2) << "\n";
  } else {
    for (const auto& o : items) {
      std::cout << "---\n" << toYaml(o);
    }
  }
  std::cerr << (ok ? "check: everything is accepted and resolved\n"
                   : "check: some resources are not accepted or not resolved (see above)\n");
  return ok ? 0 : 1;
}

} // namespace gantry::app
