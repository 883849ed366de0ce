#pragma once
// The main thread's event loop: the admin HTTP endpoint, file-change notifications, timers and
// signals. Sources, translation and snapshot building all run here (DESIGN.md threading model),
// so none of them needs a lock. Asio stays behind this header.
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace gantry::admin {

struct HttpResponse {
  int status = 200;
  std::string contentType = "text/plain";
  std::string body;
};

// Called on the main thread for each admin request.
using Handler = std::function<HttpResponse(const std::string& method, const std::string& path)>;

class MainLoop {
public:
  MainLoop();
  ~MainLoop();

  // Serves plain HTTP/1.1 on HOST:PORT. Returns an error message when it cannot bind.
  std::optional<std::string> serveAdmin(const std::string& hostPort, Handler handler);
  // Calls `fn` every `period` until stop().
  void every(std::chrono::milliseconds period, std::function<void()> fn);
  // Calls `fn` once after `delay`, replacing any pending call of the same `slot`.
  void debounce(int slot, std::chrono::milliseconds delay, std::function<void()> fn);
  // Calls `fn` whenever `fd` becomes readable (fn must drain it).
  void watchFd(int fd, std::function<void()> fn);
  // Calls `fn` on SIGINT or SIGTERM.
  void onStopSignal(std::function<void()> fn);
  // Runs `fn` on the main thread each time `signal` arrives (SIGHUP: reopen the access log).
  void onSignal(int signal, std::function<void()> fn);

  void run();
  void stop();

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

} // namespace gantry::admin
