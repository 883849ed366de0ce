#pragma once
// The data plane's front door, for the main thread: start N workers, publish configurations,
// stop. Asio stays behind this header (pimpl) so that callers compile without it.
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "ir/ir.h"

namespace gantry::dataplane {

struct ServerOptions {
  unsigned workers = 0;    // 0: one per core
  int accessLogFd = -1;    // --access-log: JSON lines are appended here; -1: no access log
};

class Server {
public:
  explicit Server(ServerOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Starts the worker threads. Main thread.
  void start();

  // Compiles `config` into a snapshot, opens listening sockets for new address:ports, publishes
  // the snapshot to every worker and closes sockets no longer configured. Returns the problems
  // that left part of the config unserved (a port that cannot be bound, an unusable certificate).
  // In-flight requests finish on the snapshot they started with. Main thread.
  ir::ApplyReport apply(const ir::Config& config);

  // Tries again to bind the address:ports of the current snapshot that failed before (a port
  // that was in use may be free now); the snapshot itself is unchanged. Main thread.
  ir::ApplyReport rebind();

  // Stops accepting, gives requests in flight up to `drain` to finish, then stops the workers and
  // joins them. Main thread.
  void stop(std::chrono::milliseconds drain = std::chrono::seconds(10));

  // Prometheus text exposition of the data plane's counters. Any thread.
  std::string metricsText() const;

  unsigned workerCount() const;

private:
  ir::ApplyReport bindAndPublish(bool onlyIfNew);

  struct Impl;
  std::unique_ptr<Impl> impl_;
};

} // namespace gantry::dataplane
