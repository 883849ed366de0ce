#include "admin/main_loop.h"

#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <map>

#include "dataplane/http1.h"

namespace gantry::admin {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using boost::system::error_code;

struct MainLoop::Impl {
  asio::io_context ctx{1};
  std::optional<tcp::acceptor> acceptor;
  Handler handler;
  std::vector<std::unique_ptr<asio::steady_timer>> timers;
  std::map<int, std::unique_ptr<asio::steady_timer>> debouncers;
  std::vector<std::unique_ptr<asio::posix::stream_descriptor>> fds;
  std::optional<asio::signal_set> signals;
  std::vector<std::unique_ptr<asio::signal_set>> signalSets; // onSignal
  std::vector<std::unique_ptr<std::function<void()>>> callbacks; // re-arming closures

  asio::awaitable<void> serveClient(tcp::socket s) {
    std::string buf;
    char chunk[4096];
    error_code ec;
    while (true) {
      dataplane::http1::Head head;
      auto r = dataplane::http1::parseRequest(buf, 16 * 1024, head);
      if (r.status == dataplane::http1::ParseStatus::Error) {
        co_return;
      }
      if (r.status == dataplane::http1::ParseStatus::Incomplete) {
        size_t n = co_await s.async_read_some(asio::buffer(chunk), asio::redirect_error(asio::use_awaitable, ec));
        if (ec || n == 0) {
          co_return;
        }
        buf.append(chunk, n);
        continue;
      }
      HttpResponse resp;
      try {
        resp = handler(std::string(head.method), std::string(head.target));
      } catch (const std::exception& e) {
        resp = {500, "text/plain", std::string("internal error: ") + e.what() + "\n"};
      }
      bool keep = head.keepAlive;
      buf.erase(0, head.headBytes);
      std::string out = "HTTP/1.1 " + std::to_string(resp.status) + " " +
                        (resp.status == 200 ? "OK" : resp.status == 404 ? "Not Found" : "Error") +
                        "\r\ncontent-type: " + resp.contentType +
                        "\r\ncontent-length: " + std::to_string(resp.body.size()) +
                        (keep ? "" : "\r\nconnection: close") + "\r\n\r\n" + resp.body;
      co_await asio::async_write(s, asio::buffer(out), asio::redirect_error(asio::use_awaitable, ec));
      if (ec || !keep) {
        co_return;
      }
    }
  }

  asio::awaitable<void> acceptLoop() {
    while (acceptor && acceptor->is_open()) {
      error_code ec;
      tcp::socket s = co_await acceptor->async_accept(asio::redirect_error(asio::use_awaitable, ec));
      if (ec) {
        if (ec == asio::error::operation_aborted) {
          co_return;
        }
        continue;
      }
      asio::co_spawn(ctx, serveClient(std::move(s)), asio::detached);
    }
  }
};

MainLoop::MainLoop() : impl_(std::make_unique<Impl>()) {}
MainLoop::~MainLoop() = default;

std::optional<std::string> MainLoop::serveAdmin(const std::string& hostPort, Handler handler) {
  auto colon = hostPort.rfind(':');
  if (colon == std::string::npos) {
    return "admin address must be HOST:PORT, got " + hostPort;
  }
  std::string host = hostPort.substr(0, colon);
  if (host.size() > 2 && host.front() == '[') {
    host = host.substr(1, host.size() - 2);
  }
  error_code ec;
  auto addr = asio::ip::make_address(host, ec);
  if (ec) {
    return "admin address: invalid IP " + host;
  }
  int port = std::atoi(hostPort.c_str() + colon + 1);
  impl_->handler = std::move(handler);
  impl_->acceptor.emplace(impl_->ctx);
  tcp::endpoint ep(addr, static_cast<uint16_t>(port));
  impl_->acceptor->open(ep.protocol(), ec);
  if (!ec) {
    impl_->acceptor->set_option(tcp::acceptor::reuse_address(true), ec);
    impl_->acceptor->bind(ep, ec);
  }
  if (!ec) {
    impl_->acceptor->listen(asio::socket_base::max_listen_connections, ec);
  }
  if (ec) {
    impl_->acceptor.reset();
    return "admin endpoint " + hostPort + ": " + ec.message();
  }
  asio::co_spawn(impl_->ctx, impl_->acceptLoop(), asio::detached);
  return std::nullopt;
}

void MainLoop::every(std::chrono::milliseconds period, std::function<void()> fn) {
  auto timer = std::make_unique<asio::steady_timer>(impl_->ctx);
  auto* t = timer.get();
  impl_->timers.push_back(std::move(timer));
  auto& tick = impl_->callbacks.emplace_back(std::make_unique<std::function<void()>>());
  auto* self = tick.get();
  *self = [t, period, self, fn = std::move(fn)]() {
    t->expires_after(period);
    t->async_wait([self, &fn](error_code ec) {
      if (ec) {
        return;
      }
      fn();
      (*self)();
    });
  };
  (*self)();
}

void MainLoop::debounce(int slot, std::chrono::milliseconds delay, std::function<void()> fn) {
  auto& timer = impl_->debouncers[slot];
  if (!timer) {
    timer = std::make_unique<asio::steady_timer>(impl_->ctx);
  }
  timer->expires_after(delay); // cancels a pending wait
  timer->async_wait([fn = std::move(fn)](error_code ec) {
    if (!ec) {
      fn();
    }
  });
}

void MainLoop::watchFd(int fd, std::function<void()> fn) {
  auto sd = std::make_unique<asio::posix::stream_descriptor>(impl_->ctx, fd);
  auto* raw = sd.get();
  impl_->fds.push_back(std::move(sd));
  auto& loop = impl_->callbacks.emplace_back(std::make_unique<std::function<void()>>());
  auto* self = loop.get();
  *self = [raw, self, fn = std::move(fn)]() {
    raw->async_wait(asio::posix::stream_descriptor::wait_read, [self, &fn](error_code ec) {
      if (ec) {
        return;
      }
      fn();
      (*self)();
    });
  };
  (*self)();
}

void MainLoop::onStopSignal(std::function<void()> fn) {
  impl_->signals.emplace(impl_->ctx, SIGINT, SIGTERM);
  impl_->signals->async_wait([fn = std::move(fn)](error_code ec, int) {
    if (!ec) {
      fn();
    }
  });
}

void MainLoop::onSignal(int signal, std::function<void()> fn) {
  auto* set = impl_->signalSets.emplace_back(std::make_unique<asio::signal_set>(impl_->ctx, signal)).get();
  auto& wait = impl_->callbacks.emplace_back(std::make_unique<std::function<void()>>());
  auto* self = wait.get();
  *self = [set, self, fn = std::move(fn)]() {
    set->async_wait([self, &fn](error_code ec, int) {
      if (ec) {
        return;
      }
      fn();
      (*self)();
    });
  };
  (*self)();
}

void MainLoop::run() { impl_->ctx.run(); }

void MainLoop::stop() {
  error_code ec;
  if (impl_->acceptor) {
    impl_->acceptor->close(ec);
  }
  impl_->ctx.stop();
}

} // namespace gantry::admin
