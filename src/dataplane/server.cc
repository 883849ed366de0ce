#include "dataplane/server.h"

#include <netinet/in.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "dataplane/worker.h"

namespace gantry::dataplane {

using namespace std::chrono_literals;

// --- Worker ---------------------------------------------------------------------------------

Worker::Worker(unsigned id, int accessLogFd)
    : id_(id), rng_(std::random_device{}() ^ (uint64_t{id} << 32)), accessFd_(accessLogFd) {
  work_.emplace(ctx_.get_executor());
}

void Worker::accessLog(std::string_view line) {
  accessBuf_.append(line);
  if (accessBuf_.size() >= 16 * 1024) {
    flushAccessLog();
  } else if (!accessTimerArmed_) {
    accessTimerArmed_ = true;
    accessTimer_.expires_after(200ms);
    accessTimer_.async_wait([this](error_code) {
      accessTimerArmed_ = false;
      flushAccessLog();
    });
  }
}

void Worker::flushAccessLog() {
  size_t done = 0;
  while (done < accessBuf_.size()) {
    ssize_t n = ::write(accessFd_, accessBuf_.data() + done, accessBuf_.size() - done);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      break; // a full disk or a closed pipe loses lines, never requests
    }
    done += static_cast<size_t>(n);
  }
  accessBuf_.clear();
}

void Worker::run() {
  startSweep();
  ctx_.run();
}

void Worker::startSweep() {
  sweepTimer_.expires_after(5s);
  sweepTimer_.async_wait([this](error_code ec) {
    if (ec) {
      return;
    }
    pool_.sweep(std::chrono::steady_clock::now(), 60s);
    startSweep();
  });
}

void Worker::publish(SnapshotConstSharedPtr snapshot, std::map<std::string, int> newFds) {
  asio::post(ctx_, [this, snapshot = std::move(snapshot), newFds = std::move(newFds)]() mutable {
    bool changed = !snapshot_ || snapshot_->version() != snapshot->version();
    snapshot_ = std::move(snapshot);
    if (changed) {
      pool_.clear(); // connections of the old config are not reused (see UpstreamPool)
    }
    for (auto it = acceptors_.begin(); it != acceptors_.end();) {
      if (snapshot_->port(it->first) == nullptr) {
        error_code ec;
        it->second->close(ec);
        it = acceptors_.erase(it);
      } else {
        ++it;
      }
    }
    for (auto& [key, fd] : newFds) {
      auto acceptor = std::make_shared<tcp::acceptor>(ctx_);
      error_code ec;
      // The fd was bound by the main thread; its address family decides the protocol.
      sockaddr_storage ss{};
      socklen_t len = sizeof ss;
      getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
      acceptor->assign(ss.ss_family == AF_INET6 ? tcp::v6() : tcp::v4(), fd, ec);
      if (ec) {
        spdlog::error("worker {}: cannot adopt listening socket {}: {}", id_, key, ec.message());
        ::close(fd);
        continue;
      }
      if (auto old = acceptors_.find(key); old != acceptors_.end()) {
        old->second->close(ec);
      }
      acceptors_[key] = acceptor;
      asio::co_spawn(ctx_, acceptLoop(acceptor, key), asio::detached);
    }
  });
}

awaitable<void> Worker::acceptLoop(std::shared_ptr<tcp::acceptor> acceptor, std::string key) {
  while (acceptor->is_open()) {
    error_code ec;
    tcp::endpoint peer; // from accept(2) itself: no getpeername per connection
    tcp::socket s = co_await acceptor->async_accept(peer, asio::redirect_error(use_awaitable, ec));
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor->is_open()) {
        break;
      }
      // EMFILE and friends: back off briefly instead of spinning.
      spdlog::warn("accept on {} failed: {}", key, ec.message());
      asio::steady_timer t(ctx_, 50ms);
      co_await t.async_wait(asio::redirect_error(use_awaitable, ec));
      continue;
    }
    Metrics::inc(metrics_.connectionsAccepted);
    serveConnection(*this, std::move(s), key, peer.address().to_string());
  }
}

void Worker::closeAcceptors() {
  for (auto& [k, a] : acceptors_) {
    error_code ec;
    a->close(ec);
  }
  acceptors_.clear();
}

void Worker::stopAccepting() {
  asio::post(ctx_, [this] {
    closeAcceptors();
    draining_ = true;
    for (auto& weak : drainListeners_) {
      if (auto l = weak.lock()) {
        l->drain();
      }
    }
    drainListeners_.clear();
  });
}

void Worker::addDrainListener(std::weak_ptr<DrainListener> l) {
  std::erase_if(drainListeners_, [](const auto& w) { return w.expired(); });
  drainListeners_.push_back(std::move(l));
}

void Worker::stop() {
  asio::post(ctx_, [this] {
    if (accessFd_ >= 0) {
      accessTimer_.cancel();
      flushAccessLog();
    }
    closeAcceptors();
    sweepTimer_.cancel();
    pool_.clear();
    work_.reset();
    ctx_.stop();
  });
}

// --- Server ---------------------------------------------------------------------------------

struct Server::Impl {
  ServerOptions options;
  // Sum of the workers' counters.
  uint64_t sum(std::atomic<uint64_t> Metrics::*field) const {
    uint64_t total = 0;
    for (const auto& w : workers) {
      total += (w->metrics().*field).load(std::memory_order_relaxed);
    }
    return total;
  }
  int64_t inFlight() const {
    int64_t total = 0;
    for (const auto& w : workers) {
      total += w->metrics().requestsInFlight.load(std::memory_order_relaxed) +
               w->metrics().h2StreamsOpen.load(std::memory_order_relaxed);
    }
    return total;
  }
  std::vector<std::unique_ptr<Worker>> workers;
  std::vector<std::thread> threads;
  std::set<std::string> listening; // address:ports the workers listen on
  // address:ports this process stopped listening on, and when: their sockets close in the workers
  // a moment later, so a probe for another owner would find Gantry's own.
  std::map<std::string, std::chrono::steady_clock::time_point> released;
  SnapshotConstSharedPtr snapshot;  // the latest published
  std::vector<std::string> compileProblems;
  uint64_t version = 0;
};

Server::Server(ServerOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->options = options;
  unsigned n = options.workers != 0 ? options.workers : std::max(1u, std::thread::hardware_concurrency());
  for (unsigned i = 0; i < n; ++i) {
    impl_->workers.push_back(std::make_unique<Worker>(i, options.accessLogFd));
  }
}

Server::~Server() { stop(std::chrono::milliseconds(0)); }

unsigned Server::workerCount() const { return static_cast<unsigned>(impl_->workers.size()); }

void Server::start() {
  for (auto& w : impl_->workers) {
    impl_->threads.emplace_back([worker = w.get()] { worker->run(); });
  }
}

namespace {

// True when some socket already listens on `ep`. SO_REUSEPORT lets any process of the same user
// join a port and take a share of its connections; a listener without it (and with SO_REUSEADDR,
// so a closed connection's TIME_WAIT does not count) cannot bind while anyone listens there.
bool listenedOnElsewhere(const tcp::endpoint& ep) {
  int fd = ::socket(ep.protocol().family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return false;
  }
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  bool inUse = ::bind(fd, ep.data(), static_cast<socklen_t>(ep.size())) != 0 && errno == EADDRINUSE;
  ::close(fd);
  return inUse;
}

// A listening socket with SO_REUSEPORT: every worker gets its own on the same address:port and
// the kernel spreads connections across them. `probe`: first refuse a port another process
// listens on, instead of sharing it. `addressUnusable` tells an address this machine does not
// have (EADDRNOTAVAIL) from a port in use.
int openListener(const std::string& address, uint16_t port, bool probe, std::string& error,
                 bool& addressUnusable) {
  error_code ec;
  auto addr = asio::ip::make_address(address, ec);
  if (ec) {
    addressUnusable = true;
    error = "invalid address " + address;
    return -1;
  }
  tcp::endpoint ep(addr, port);
  if (probe && listenedOnElsewhere(ep)) {
    error = "bind " + address + ":" + std::to_string(port) + ": " + strerror(EADDRINUSE) +
            " (another process listens there; Gantry does not share a port with it)";
    return -1;
  }
  int family = addr.is_v6() ? AF_INET6 : AF_INET;
  int fd = ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    error = std::string("socket: ") + strerror(errno);
    return -1;
  }
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  if (::bind(fd, ep.data(), static_cast<socklen_t>(ep.size())) != 0) {
    addressUnusable = errno == EADDRNOTAVAIL;
    error = "bind " + address + ":" + std::to_string(port) + ": " + strerror(errno);
    ::close(fd);
    return -1;
  }
  if (::listen(fd, 4096) != 0) {
    error = std::string("listen: ") + strerror(errno);
    ::close(fd);
    return -1;
  }
  return fd;
}

} // namespace

ir::ApplyReport Server::apply(const ir::Config& config) {
  ir::ApplyReport report;
  impl_->snapshot = Snapshot::compile(config, ++impl_->version, report.problems);
  impl_->compileProblems = report.problems;
  auto bindReport = bindAndPublish(false);
  report.problems.insert(report.problems.end(), bindReport.problems.begin(), bindReport.problems.end());
  report.unboundPorts = bindReport.unboundPorts;
  report.unusableAddresses = bindReport.unusableAddresses;
  return report;
}

ir::ApplyReport Server::rebind() {
  if (!impl_->snapshot) {
    return {};
  }
  auto report = bindAndPublish(true);
  report.problems.insert(report.problems.begin(), impl_->compileProblems.begin(), impl_->compileProblems.end());
  return report;
}

// Opens sockets for the snapshot's address:ports that no worker listens on yet (one per worker),
// then publishes the snapshot with them. `onlyIfNew`: publish only when a socket was opened.
ir::ApplyReport Server::bindAndPublish(bool onlyIfNew) {
  ir::ApplyReport report;
  const auto& snapshot = impl_->snapshot;
  std::vector<std::map<std::string, int>> fds(impl_->workers.size());
  std::set<std::string> nowBound;
  bool opened = false;
  for (const auto& [key, group] : snapshot->ports()) {
    if (impl_->listening.count(key) != 0) {
      nowBound.insert(key);
      continue;
    }
    std::vector<int> sockets;
    std::string error;
    bool addressUnusable = false;
    auto released = impl_->released.find(key);
    bool ownSocketsClosing = released != impl_->released.end() &&
                             std::chrono::steady_clock::now() - released->second < std::chrono::seconds(5);
    for (size_t i = 0; i < impl_->workers.size(); ++i) {
      int fd = openListener(group.address, group.port, i == 0 && !ownSocketsClosing, error, addressUnusable);
      if (fd < 0) {
        break;
      }
      sockets.push_back(fd);
    }
    if (sockets.size() != impl_->workers.size()) {
      for (int fd : sockets) {
        ::close(fd);
      }
      report.problems.push_back("listener " + key + " not served: " + error);
      report.unboundPorts.push_back(key);
      if (addressUnusable) {
        report.unusableAddresses.push_back(group.address);
      }
      continue;
    }
    for (size_t i = 0; i < sockets.size(); ++i) {
      fds[i][key] = sockets[i];
    }
    nowBound.insert(key);
    impl_->released.erase(key);
    opened = true;
  }
  for (const auto& key : impl_->listening) {
    if (nowBound.count(key) == 0) {
      impl_->released[key] = std::chrono::steady_clock::now();
    }
  }
  impl_->listening = nowBound;
  if (onlyIfNew && !opened) {
    return report;
  }
  for (size_t i = 0; i < impl_->workers.size(); ++i) {
    impl_->workers[i]->publish(snapshot, std::move(fds[i]));
  }
  return report;
}

void Server::stop(std::chrono::milliseconds drain) {
  if (impl_->threads.empty()) {
    return;
  }
  // Drain: no new connections; requests in flight get up to `drain` to finish.
  for (auto& w : impl_->workers) {
    w->stopAccepting();
  }
  const auto deadline = std::chrono::steady_clock::now() + drain;
  while (impl_->inFlight() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
  }
  if (impl_->inFlight() > 0) {
    spdlog::warn("stopping with {} request(s) still in flight", impl_->inFlight());
  }
  for (auto& w : impl_->workers) {
    w->stop();
  }
  for (auto& t : impl_->threads) {
    t.join();
  }
  impl_->threads.clear();
}

std::string Server::metricsText() const {
  const auto& m = *impl_;
  std::ostringstream o;
  auto counter = [&](const char* name, const char* help, uint64_t v, const char* type = "counter") {
    o << "# HELP " << name << " " << help << "\n# TYPE " << name << " " << type << "\n"
      << name << " " << v << "\n";
  };
  counter("gantry_downstream_connections_total", "Client connections accepted.", m.sum(&Metrics::connectionsAccepted));
  counter("gantry_downstream_connections_active", "Client connections open.", m.sum(&Metrics::connectionsActive), "gauge");
  counter("gantry_downstream_tls_handshake_failures_total", "Client TLS handshakes that failed.",
          m.sum(&Metrics::tlsHandshakeFailures));
  counter("gantry_requests_total", "Requests received.", m.sum(&Metrics::requests));
  o << "# HELP gantry_responses_total Responses sent, by status class.\n"
    << "# TYPE gantry_responses_total counter\n"
    << "gantry_responses_total{class=\"2xx\"} " << m.sum(&Metrics::responses2xx) << "\n"
    << "gantry_responses_total{class=\"3xx\"} " << m.sum(&Metrics::responses3xx) << "\n"
    << "gantry_responses_total{class=\"4xx\"} " << m.sum(&Metrics::responses4xx) << "\n"
    << "gantry_responses_total{class=\"5xx\"} " << m.sum(&Metrics::responses5xx) << "\n";
  counter("gantry_upstream_connections_total", "Backend connections opened.", m.sum(&Metrics::upstreamConnects));
  counter("gantry_upstream_reuses_total", "Requests sent on a pooled backend connection.", m.sum(&Metrics::upstreamReuses));
  counter("gantry_upstream_tls_resumed_total", "Backend TLS handshakes that resumed a session.",
          m.sum(&Metrics::upstreamTlsResumed));
  counter("gantry_upstream_failures_total", "Backend connects or TLS handshakes that failed.",
          m.sum(&Metrics::upstreamFailures));
  return o.str();
}

} // namespace gantry::dataplane
