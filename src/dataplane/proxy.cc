// The life of a request (docs/architecture.md): read the head, pin the snapshot, select the
// listener and virtual host, match a route, choose a backend, take a pooled upstream connection
// (or connect, TLS with the cluster's policy), relay the request and the response with their
// bodies streamed, and put the upstream connection back.
#include <openssl/err.h>
#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <sys/socket.h>

#include <array>
#include <cstring>
#include <functional>

#include "common/strings.h"
#include "dataplane/h2c_client.h"
#include "dataplane/headers.h"
#include "dataplane/http1.h"
#include "dataplane/tls.h"
#include "dataplane/worker.h"

namespace gantry::dataplane {

namespace {

using namespace std::chrono_literals;
using namespace std::string_view_literals; // append("..."sv): the length is known, no strlen

// Defaults of the product (DESIGN.md): request timeout 60 s, HTTP idle timeout 5 min, backend
// connect timeout 5 s, request headers up to 60 KB (431 past it).
constexpr std::chrono::milliseconds kRequestTimeout = 60s;
constexpr auto kIdleTimeout = 300s;
constexpr auto kConnectTimeout = 5s;
constexpr auto kHandshakeTimeout = 10s;
constexpr size_t kMaxRequestHead = 60 * 1024;
constexpr size_t kMaxResponseHead = 64 * 1024;
constexpr size_t kChunk = 64 * 1024;

// RFC 9110 section 15 reason phrases; the phrase is optional (RFC 9112 section 4), so an unknown
// code gets none.
const char* reasonPhrase(int status) {
  switch (status) {
  case 100: return "Continue";
  case 101: return "Switching Protocols";
  case 200: return "OK";
  case 201: return "Created";
  case 202: return "Accepted";
  case 203: return "Non-Authoritative Information";
  case 204: return "No Content";
  case 205: return "Reset Content";
  case 206: return "Partial Content";
  case 300: return "Multiple Choices";
  case 301: return "Moved Permanently";
  case 302: return "Found";
  case 303: return "See Other";
  case 304: return "Not Modified";
  case 307: return "Temporary Redirect";
  case 308: return "Permanent Redirect";
  case 400: return "Bad Request";
  case 401: return "Unauthorized";
  case 402: return "Payment Required";
  case 403: return "Forbidden";
  case 404: return "Not Found";
  case 405: return "Method Not Allowed";
  case 406: return "Not Acceptable";
  case 407: return "Proxy Authentication Required";
  case 408: return "Request Timeout";
  case 409: return "Conflict";
  case 410: return "Gone";
  case 411: return "Length Required";
  case 412: return "Precondition Failed";
  case 413: return "Content Too Large";
  case 414: return "URI Too Long";
  case 415: return "Unsupported Media Type";
  case 416: return "Range Not Satisfiable";
  case 417: return "Expectation Failed";
  case 421: return "Misdirected Request";
  case 422: return "Unprocessable Content";
  case 426: return "Upgrade Required";
  case 429: return "Too Many Requests";
  case 431: return "Request Header Fields Too Large";
  case 500: return "Internal Server Error";
  case 501: return "Not Implemented";
  case 502: return "Bad Gateway";
  case 503: return "Service Unavailable";
  case 504: return "Gateway Timeout";
  case 505: return "HTTP Version Not Supported";
  default: return "";
  }
}

void uuid4(Worker& w, char (&out)[36]) {
  const uint64_t a = w.random();
  formatUuid4(a, w.random(), out);
}

} // namespace

void Metrics::countStatus(int status) {
  switch (status / 100) {
  case 2: inc(responses2xx); break;
  case 3: inc(responses3xx); break;
  case 4: inc(responses4xx); break;
  case 5: inc(responses5xx); break;
  default: break;
  }
}

// --- UpstreamPool ---------------------------------------------------------------------------

std::unique_ptr<UpstreamConn> UpstreamPool::take(const std::string& key) {
  auto it = idle_.find(key);
  while (it != idle_.end() && !it->second.empty()) {
    auto conn = std::move(it->second.back());
    it->second.pop_back();
    // A pooled connection the backend has closed (or sent stray bytes on) is discarded. Bytes
    // OpenSSL has read ahead are looked at first (a close_notify, or a TLS 1.3 ticket that is
    // harmless); the socket is probed only after a second of idleness: backends close idle
    // connections after their keep-alive timeout, not within moments of answering, and the probe
    // is a system call on every request otherwise.
    if (conn->h2) {
      return conn; // HTTP/2 frames between requests are normal; the session reads them
    }
    if (SSL* ssl = conn->stream.ssl(); ssl != nullptr && (SSL_has_pending(ssl) != 0 || conn->stream.hasBufferedInput())) {
      char byte;
      ERR_clear_error();
      int r = SSL_peek(ssl, &byte, 1);
      if (r > 0 || SSL_get_error(ssl, r) != SSL_ERROR_WANT_READ) {
        ERR_clear_error();
        conn->stream.close();
        continue;
      }
    }
    if (coarseNow() - conn->idleSince < std::chrono::seconds(1)) {
      return conn;
    }
    char probe;
    ssize_t n = ::recv(conn->stream.socket().native_handle(), &probe, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      return conn;
    }
    conn->stream.close();
  }
  return nullptr;
}

void UpstreamPool::put(std::unique_ptr<UpstreamConn> conn) {
  conn->idleSince = coarseNow();
  auto& list = idle_[conn->poolKey];
  if (list.size() >= 256) {
    conn->stream.close();
    return;
  }
  list.push_back(std::move(conn));
}

void UpstreamPool::clear() {
  for (auto& [k, list] : idle_) {
    for (auto& c : list) {
      c->stream.close();
    }
  }
  idle_.clear();
  for (auto& [k, s] : sessions_) {
    SSL_SESSION_free(s);
  }
  sessions_.clear();
}

void UpstreamPool::sweep(std::chrono::steady_clock::time_point now, std::chrono::seconds maxIdle) {
  for (auto it = idle_.begin(); it != idle_.end();) {
    auto& list = it->second;
    std::erase_if(list, [&](auto& c) {
      if (now - c->idleSince > maxIdle) {
        c->stream.close();
        return true;
      }
      return false;
    });
    it = list.empty() ? idle_.erase(it) : std::next(it);
  }
}

SSL_SESSION* UpstreamPool::session(const std::string& key) const {
  auto it = sessions_.find(key);
  return it == sessions_.end() ? nullptr : it->second;
}

void UpstreamPool::storeSession(const std::string& key, SSL* ssl) {
  SSL_SESSION* s = SSL_get1_session(ssl);
  if (s == nullptr) {
    return;
  }
  if (SSL_SESSION_is_resumable(s) != 1) {
    SSL_SESSION_free(s);
    return;
  }
  auto& slot = sessions_[key];
  if (slot != nullptr) {
    SSL_SESSION_free(slot);
  }
  slot = s;
}

UpstreamPool::~UpstreamPool() { clear(); }

// --- Connection -----------------------------------------------------------------------------

namespace {

enum class TimeoutPhase {
  None,
  Handshake, // client TLS handshake
  Idle,      // waiting for the next request on a kept-alive connection
  Request,   // reading the request or waiting for the upstream's response head
  Connect,   // connecting (and TLS) to the backend
  Body,      // streaming a body (idle between reads)
};

// RequestMirror: the request's head goes to one endpoint of the mirror cluster on a connection
// of its own; the answer is read up to its head and dropped. Runs detached: the real request
// never waits for it. The snapshot is held so that the cluster outlives the mirror.
awaitable<void> mirrorRequest(Worker& w, SnapshotConstSharedPtr snap, std::string clusterName,
                              std::string head, std::string method) {
  const ClusterEntry* cluster = snap->cluster(clusterName);
  if (cluster == nullptr || cluster->ir.endpoints.empty() || cluster->ir.tlsError ||
      (cluster->ir.tls && !cluster->tlsContext) || cluster->ir.h2c) {
    co_return; // mirrors speak HTTP/1.1 only
  }
  const auto& ep = cluster->ir.endpoints[w.nextRoundRobin() % cluster->ir.endpoints.size()];
  error_code ec;
  auto addr = asio::ip::make_address(ep.address, ec);
  if (ec) {
    co_return;
  }
  struct Holder {
    explicit Holder(asio::io_context& ctx) : sock(ctx) {}
    tcp::socket sock;
    std::optional<Stream> stream;
  };
  auto h = std::make_shared<Holder>(w.context());
  asio::steady_timer guard(w.context(), std::chrono::seconds(10)); // the whole mirror, at most
  guard.async_wait([h](error_code e) {
    if (!e) {
      error_code ignored;
      h->stream ? h->stream->close() : (void)h->sock.close(ignored);
    }
  });
  co_await h->sock.async_connect(tcp::endpoint(addr, ep.port), asio::redirect_error(use_awaitable, ec));
  if (ec) {
    spdlog::debug("mirror to {}: connect failed: {}", clusterName, ec.message());
    co_return;
  }
  if (cluster->tlsContext) {
    h->stream.emplace(std::move(h->sock), cluster->tlsContext->native_handle(), false);
    tls::configureClient(h->stream->ssl(), *cluster->ir.tls);
    co_await h->stream->handshake(ec);
  } else {
    h->stream.emplace(std::move(h->sock));
  }
  if (!ec) {
    co_await h->stream->writeAll(asio::buffer(head), ec);
  }
  Buffer buf;
  while (!ec) {
    http1::Head resp;
    if (http1::parseResponse(buf.view(), kMaxResponseHead, method, resp).status != http1::ParseStatus::Incomplete) {
      break;
    }
    size_t n = co_await h->stream->readSome(buf.prepare(4096), ec);
    if (n == 0) {
      break;
    }
    buf.commit(n);
  }
  if (ec) {
    spdlog::debug("mirror to {}: {}", clusterName, ec.message());
  }
  h->stream->close();
  guard.cancel();
}

// How a body relay ended.
enum class RelayEnd {
  Complete,    // the whole body went through
  ReadFailed,  // the sender closed or failed before the end of the body
  WriteFailed, // the receiver closed or failed
  Malformed,   // the chunked framing was invalid
};

awaitable<RelayEnd> relayBody(Stream& from, Buffer& buf, Stream& to, http1::BodyKind kind,
                              uint64_t contentLength, std::string& head, bool closing);

// What routing made of a request. Filled without suspending, so that the request's coroutine
// frame holds this and not every temporary of the routing code.
struct Routed {
  enum class Action { Proxy, Answer };
  Action action = Action::Proxy;
  bool websocket = false; // Proxy: an Upgrade: websocket to pass on
  const CompiledRoute* route = nullptr;
  const ir::WeightedBackend* chosen = nullptr;
  const ClusterEntry* cluster = nullptr;
  std::string_view path, query; // of the target, in the read buffer (until the head is consumed)
  std::string answer;           // not Proxy: the whole answer to write
  std::string cors;             // CORS fields for the backend's response
  std::chrono::milliseconds attemptTimeout{0};
};

// The request line, kept for the log once the head has left the read buffer.
struct RequestLine {
  std::string method;
  std::string target;
};

const std::string kNoName;

// A short text/plain answer with `status`.
std::string statusAnswer(int status, bool keep);

// Whether a connection can serve another request after the gateway answered this one itself: not
// when the client asked to close, nor when a request body we did not read is still coming.
bool keepsAliveAfterAnswer(const http1::Head* head) {
  return head != nullptr && head->keepAlive && head->body == http1::BodyKind::None;
}

class Connection : public std::enable_shared_from_this<Connection>, private DeadlineEntry {
public:
  Connection(Worker& w, tcp::socket s, std::string portKey, std::string peer)
      : worker_(w), portKey_(std::move(portKey)), peer_(std::move(peer)) {
    error_code ec;
    s.set_option(tcp::no_delay(true), ec);
    pin();
    if (group_ != nullptr && group_->tls) {
      client_.emplace(std::move(s), group_->contexts.front()->native_handle(), true);
    } else {
      client_.emplace(std::move(s));
    }
  }

  // One HTTP/2 stream as a connection that carries one request.
  Connection(Worker& w, std::shared_ptr<Pipe> pipe, std::string portKey, std::string peer)
      : worker_(w), portKey_(std::move(portKey)), peer_(std::move(peer)) {
    pin();
    client_.emplace(std::move(pipe));
  }

  awaitable<void> run();

private:
  // Takes the worker's current snapshot and the connection's port group in it.
  void pin() {
    snapshot_ = worker_.snapshot();
    group_ = snapshot_ ? snapshot_->port(portKey_) : nullptr;
  }
  // One lazy deadline per connection, filed with the worker's Deadlines: arming only moves
  // `deadline_`; the entry is filed again only when the new deadline is sooner than the time it
  // is filed for, or when that time comes and the deadline has moved on (the usual case, as
  // deadlines move later with each request). Nothing is filed, cancelled or allocated per request.
  void arm(std::chrono::steady_clock::duration d, TimeoutPhase phase) {
    phase_ = phase;
    deadline_ = coarseNow() + coarseTick() + d; // (never early; late by at most a tick)
    if (!filed() || deadline_ < filedFor()) {
      worker_.deadlines().file(*this, deadline_);
    }
  }
  void expired() override {
    if (phase_ == TimeoutPhase::None) {
      return;
    }
    if (std::chrono::steady_clock::now() < deadline_) {
      worker_.deadlines().file(*this, deadline_);
      return;
    }
    auto self = shared_from_this(); // onTimeout closes streams; keep this alive through it
    onTimeout();
  }
  void disarm() { phase_ = TimeoutPhase::None; }
  void onTimeout() {
    timedOut_ = phase_;
    if (upstream_ != nullptr) {
      upstream_->stream.close();
    }
    if (phase_ == TimeoutPhase::Handshake || phase_ == TimeoutPhase::Idle || phase_ == TimeoutPhase::Body) {
      client_->close();
    } else if (phase_ == TimeoutPhase::Request && upstream_ == nullptr) {
      client_->close(); // the client is too slow sending its request
    }
  }

  awaitable<bool> handleRequest(http1::Head& head);
  // Routing (no suspension): listener, route, backend and cluster, or the answer to give instead.
  void routeRequest(const http1::Head& head, Routed& r);
  // HTTPCORSFilter: fills r.cors; a preflight is answered here (true; r.answer holds the answer).
  bool corsPreflight(const http1::Head& head, const ir::Cors& cors, Routed& r);
  void startMirrors(const CompiledRoute& route, const std::string& upstreamHead, const std::string& method);
  // Logs and answers `status` for a request that failed upstream; the connection closes.
  awaitable<bool> failRequest(int status, const std::string& cause, const RequestLine& line,
                              const std::string& routeName);
  awaitable<bool> proxyH2c(const http1::Head& head, const Routed& r, const std::string& upstreamHead,
                           const RequestLine& line);
  awaitable<void> backoff(std::chrono::milliseconds delay);
  // A request body after its head (answering Expect: 100-continue first).
  awaitable<RelayEnd> sendBody(const http1::Head& head, UpstreamConn& up, std::string& upstreamHead);
  // A 101 from the backend: relayed and tunnelled for a WebSocket upgrade we asked for, else 502.
  awaitable<bool> switchProtocols(UpstreamConn& up, const http1::Head& resp, const Routed& r,
                                  const RequestLine& line);
  // The response head for the client: as text in `out`, or handed to an HTTP/2 stream (false:
  // the stream is gone).
  bool responseHead(const http1::Head& resp, const Routed& r, bool keep, std::string& out);
  // A request the gateway answers itself: counted and logged; returns the answer to write (the
  // connection stays open after it when keepsAliveAfterAnswer(head)).
  std::string localAnswer(int status, const std::string& cause, const http1::Head* head,
                          const std::string& routeName);
  // A request that could not be parsed (`why`): answered, and the connection closes.
  awaitable<void> rejectRequest(int status, const std::string& why);
  // Parses the request head at the front of the read buffer: true when it is whole; a malformed one
  // sets badStatus and badCause.
  bool parseHead(http1::Head& head, int& badStatus, std::string& badCause);
  // The client's TLS handshake; a connection that chose HTTP/2 (ALPN h2) is served here to its
  // end. Returns whether HTTP/1.1 follows.
  awaitable<bool> handshakeClient();
  awaitable<std::unique_ptr<UpstreamConn>> connectUpstream(const ClusterEntry& cluster,
                                                           const ir::Endpoint& ep,
                                                           const std::string& key,
                                                           std::string& failure);
  std::string buildUpstreamHead(const http1::Head& head, const Routed& r);
  // After a 101 answer to an Upgrade: bytes both ways until both sides have finished.
  awaitable<void> tunnel(UpstreamConn& up);
  // A request to a kubernetes.io/h2c backend: HTTP/2 with prior knowledge upstream, HTTP/1.1 to
  // the client.
  struct H2cExchange {
    const ClusterEntry& cluster;
    const std::string& upstreamHead; // the HTTP/1.1 head as it would go upstream, filters applied
    http1::BodyKind body;
    uint64_t contentLength;
    bool expectContinue;
    const std::string& method;
    bool clientKeepAlive;
    const CompiledRoute& route;
    const ir::WeightedBackend& backend;
    const std::string& corsResponse;
    std::chrono::milliseconds timeout;
  };
  struct H2cOutcome {
    int failStatus = 0; // nothing was sent to the client: answer this
    std::string failure;
    bool keep = false; // the client connection stays open
  };
  awaitable<H2cOutcome> forwardH2c(const H2cExchange& x);
  std::string redirectAnswer(const http1::Head& head, const CompiledRoute& route, const ListenerView& listener,
                             const std::string& host, std::string_view path, std::string_view query);

  // Counts the answer's status, and notes it for the access log.
  void noteStatus(int status) {
    worker_.metrics().countStatus(status);
    if (access_) {
      access_->status = status;
    }
  }
  // The access log line of the request that just ended (--access-log), as one JSON object.
  void logAccess();

  // What one request did, for the access log; kept only while the log is on.
  struct AccessEntry {
    std::chrono::system_clock::time_point start;
    std::string method, target, host, route, upstream;
    int status = 0;
  };
  std::optional<AccessEntry> access_;

  Worker& worker_;
  std::string portKey_;
  std::string peer_;
  SnapshotConstSharedPtr snapshot_; // pinned at accept (listener/TLS) and refreshed per request
  std::optional<Stream> client_;
  Buffer in_{0};
  TimeoutPhase phase_ = TimeoutPhase::None;
  TimeoutPhase timedOut_ = TimeoutPhase::None;
  const PortGroup* group_ = nullptr; // portKey_'s group in snapshot_ (see pin())
  std::chrono::steady_clock::time_point deadline_;
  UpstreamConn* upstream_ = nullptr; // the upstream connection in use, for timeouts
  error_code ec0_;                   // scratch for writes whose error only ends the connection
};

awaitable<void> Connection::run() {
  auto self = shared_from_this();
  if (!client_->isPipe()) { // (an HTTP/2 stream is counted as its connection)
    Metrics::inc(worker_.metrics().connectionsActive);
  }
  if (client_->isTls() && !client_->isPipe()) {
    if (!co_await handshakeClient()) {
      co_return;
    }
  }
  // The loop's own frame is the connection's for as long as it lives: what runs once (the
  // handshake, HTTP/2) or rarely (bad requests) keeps its temporaries in frames of its own.
  error_code ec;
  bool keepAlive = true;
  while (keepAlive) {
    if (!client_->isPipe()) {
      // (An HTTP/2 stream's head is already there; its session has its own idle timer.)
      arm(kIdleTimeout, TimeoutPhase::Idle);
    }
    http1::Head head;
    bool gotHead = false;
    bool closed = false;
    int badStatus = 0;     // the head cannot be served: answer this ...
    std::string badCause;  // ... because of this
    if (Pipe* pipe = client_->pipe()) {
      gotHead = pipe->requestHead(head, badCause);
      badStatus = gotHead ? 0 : 400;
    }
    while (!gotHead && badStatus == 0) {
      head = http1::Head{};
      if (in_.size() > 0) {
        gotHead = parseHead(head, badStatus, badCause);
        if (gotHead || badStatus != 0) {
          break;
        }
      }
      if (in_.size() == 0 && !client_->isPipe()) {
        // Idle between requests: hold no read buffer while waiting (an idle keep-alive connection
        // then costs little more than its socket and TLS state).
        in_.release();
        co_await client_->waitReadable(ec);
        if (ec) {
          closed = true;
          break;
        }
      }
      size_t n = co_await client_->readSome(in_.prepare(8192), ec);
      if (ec || n == 0) {
        closed = true;
        break;
      }
      in_.commit(n);
      if (phase_ == TimeoutPhase::Idle) {
        arm(kRequestTimeout, TimeoutPhase::Request);
      }
    }
    if (badStatus != 0) {
      co_await rejectRequest(badStatus, badCause);
      break;
    }
    if (closed) {
      break;
    }
    Metrics::inc(worker_.metrics().requests);
    Metrics::inc(worker_.metrics().requestsInFlight);
    if (worker_.accessLogOn()) {
      access_.emplace();
      access_->start = std::chrono::system_clock::now();
      access_->method = head.method;
      access_->target = head.target;
      access_->host = head.header("host");
    }
    keepAlive = co_await handleRequest(head) && !client_->isPipe(); // a stream carries one request
    if (access_) {
      logAccess();
      access_.reset();
    }
    Metrics::dec(worker_.metrics().requestsInFlight);
  }
  if (client_->isPipe()) {
    co_await client_->shutdown(false);
  } else if (!client_->startShutdown()) {
    // close_notify could not all go out at once: wait for the socket, at most 2 s. (The usual
    // close takes no timer.) The close below sends the FIN.
    arm(std::chrono::seconds(2), TimeoutPhase::Idle);
    co_await client_->flush(ec);
  }
  disarm();
  worker_.deadlines().remove(*this);
  client_->close();
  if (!client_->isPipe()) {
    Metrics::dec(worker_.metrics().connectionsActive);
  }
}

std::string Connection::localAnswer(int status, const std::string& cause, const http1::Head* head,
                                    const std::string& routeName) {
  noteStatus(status);
  if (status >= 500) {
    spdlog::warn("{} {} {}{}{}: {}", status, head ? std::string(head->method) : "-",
                 head ? std::string(head->target) : "-", routeName.empty() ? "" : " route=",
                 routeName, cause);
  } else {
    spdlog::info("{} {} {}: {}", status, head ? std::string(head->method) : "-",
                 head ? std::string(head->target) : "-", cause);
  }
  return statusAnswer(status, keepsAliveAfterAnswer(head));
}

awaitable<void> Connection::rejectRequest(int status, const std::string& why) {
  const std::string out = localAnswer(status, "bad request from " + peer_ + ": " + why, nullptr, kNoName);
  co_await client_->writeAll(asio::buffer(out), ec0_);
}

bool Connection::parseHead(http1::Head& head, int& badStatus, std::string& badCause) {
  auto r = http1::parseRequest(in_.view(), kMaxRequestHead, head);
  if (r.status == http1::ParseStatus::Error) {
    badStatus = r.errorStatus;
    badCause = std::move(r.error);
  }
  return r.status == http1::ParseStatus::Done;
}

awaitable<bool> Connection::handshakeClient() {
  error_code ec;
  arm(kHandshakeTimeout, TimeoutPhase::Handshake);
  co_await client_->handshake(ec);
  if (ec) {
    Metrics::inc(worker_.metrics().tlsHandshakeFailures);
    spdlog::debug("TLS handshake with client {} failed: {}", peer_, ec.message());
    ERR_clear_error();
    client_->close();
    Metrics::dec(worker_.metrics().connectionsActive);
    co_return false;
  }
  const unsigned char* alpn = nullptr;
  unsigned int alpnLen = 0;
  SSL_get0_alpn_selected(client_->ownSsl(), &alpn, &alpnLen);
  if (alpnLen == 2 && alpn[0] == 'h' && alpn[1] == '2') {
    // RFC 9113 section 3.2: HTTP/2 over TLS, chosen by ALPN.
    disarm();
    worker_.deadlines().remove(*this);
    co_await serveHttp2(worker_, std::move(*client_), portKey_, peer_);
    Metrics::dec(worker_.metrics().connectionsActive);
    co_return false;
  }
  co_return true;
}

std::string statusAnswer(int status, bool keep) {
  std::string body = std::to_string(status) + " " + reasonPhrase(status) + "\n";
  return "HTTP/1.1 " + std::to_string(status) + " " + reasonPhrase(status) +
         "\r\ncontent-type: text/plain\r\ncontent-length: " + std::to_string(body.size()) +
         (keep ? "\r\n" : "\r\nconnection: close\r\n") + "\r\n" + body;
}

std::string Connection::buildUpstreamHead(const http1::Head& head, const Routed& r) {
  Forwarding f;
  // The client's x-request-id, else a fresh UUIDv4 (in place: no allocation per request).
  char uuid[36];
  f.requestId = head.header("x-request-id");
  if (f.requestId.empty()) {
    uuid4(worker_, uuid);
    f.requestId = std::string_view(uuid, sizeof uuid);
  }
  f.peer = peer_;
  f.tls = client_->isTls();
  // Without Host: the name the client reached us by (SNI), else the address it connected to.
  const char* sni = client_->ssl() ? SSL_get_servername(client_->ssl(), TLSEXT_NAMETYPE_host_name) : nullptr;
  f.fallbackHost = sni != nullptr ? std::string_view(sni) : std::string_view(portKey_);
  f.upgrade = r.websocket ? "websocket"sv : std::string_view{};
  return upstreamHead(head, *r.route, *r.chosen, r.path, r.query, f);
}

std::string Connection::redirectAnswer(const http1::Head& head, const CompiledRoute& route,
                                       const ListenerView& listener, const std::string& host,
                                       std::string_view path, std::string_view query) {
  // HTTPRequestRedirectFilter: scheme, hostname (default: the request's), port (default: the
  // scheme's well-known port when a scheme is set, else the listener's), path, status.
  const auto& r = *route.redirect;
  const std::string scheme = r.scheme.value_or(client_->isTls() ? "https" : "http");
  uint16_t port = r.port ? *r.port : r.scheme ? (scheme == "https" ? 443 : 80) : listener.gatewayPort;
  std::string location = scheme + "://" + r.hostname.value_or(host);
  if (!((scheme == "http" && port == 80) || (scheme == "https" && port == 443))) {
    location += ":" + std::to_string(port);
  }
  location += r.path ? rewritePath(*r.path, route.match.path, path) : std::string(path);
  if (!query.empty()) {
    location.append("?"sv).append(query);
  }
  noteStatus(r.status);
  const char* reason = r.status == 301 ? "Moved Permanently" : r.status == 302 ? "Found"
                       : r.status == 303 ? "See Other" : r.status == 307 ? "Temporary Redirect"
                                                                           : "Permanent Redirect";
  const bool keep = keepsAliveAfterAnswer(&head);
  std::string out = "HTTP/1.1 " + std::to_string(r.status) + " " + reason + "\r\nlocation: " + location +
                    "\r\ncontent-length: 0\r\n" + (keep ? "" : "connection: close\r\n");
  std::string extra;
  appendMutation(extra, route.responseHeaders);
  out += extra + "\r\n";
  return out;
}

awaitable<std::unique_ptr<UpstreamConn>> Connection::connectUpstream(const ClusterEntry& cluster,
                                                                     const ir::Endpoint& ep,
                                                                     const std::string& key,
                                                                     std::string& failure) {
  error_code ec;
  auto addr = asio::ip::make_address(ep.address, ec);
  if (ec) {
    failure = "endpoint address " + ep.address + " is not an IP address";
    co_return nullptr;
  }
  arm(kConnectTimeout, TimeoutPhase::Connect);
  // The TCP connect runs under its own timer; the state the timer touches is shared with it so
  // that a late expiry never reaches a finished coroutine's frame.
  auto sockp = std::make_shared<tcp::socket>(worker_.context());
  auto connectTimedOut = std::make_shared<bool>(false);
  asio::steady_timer connectTimer(worker_.context());
  connectTimer.expires_after(kConnectTimeout);
  connectTimer.async_wait([sockp, connectTimedOut](error_code tec) {
    if (!tec) {
      *connectTimedOut = true;
      error_code ignored;
      sockp->close(ignored);
    }
  });
  co_await sockp->async_connect(tcp::endpoint(addr, ep.port), asio::redirect_error(use_awaitable, ec));
  connectTimer.cancel();
  if (ec) {
    failure = "connect to " + ep.address + ":" + std::to_string(ep.port) + " failed: " +
              (*connectTimedOut ? "timed out after 5s" : ec.message());
    if (*connectTimedOut) {
      timedOut_ = TimeoutPhase::Connect;
    }
    co_return nullptr;
  }
  tcp::socket sock(std::move(*sockp));
  sock.set_option(tcp::no_delay(true), ec);
  Metrics::inc(worker_.metrics().upstreamConnects);
  std::unique_ptr<UpstreamConn> conn;
  if (cluster.tlsContext) {
    conn = std::make_unique<UpstreamConn>(Stream(std::move(sock), cluster.tlsContext->native_handle(), false));
    SSL* ssl = conn->stream.ssl();
    tls::configureClient(ssl, *cluster.ir.tls);
    if (SSL_SESSION* s = worker_.pool().session(key)) {
      SSL_set_session(ssl, s);
    }
    upstream_ = conn.get();
    co_await conn->stream.handshake(ec);
    upstream_ = nullptr;
    if (ec) {
      if (timedOut_ == TimeoutPhase::Connect) {
        failure = "TLS handshake with backend " + ep.address + ":" + std::to_string(ep.port) +
                  " timed out";
      } else {
        failure = "TLS to backend " + ep.address + ":" + std::to_string(ep.port) + " (SNI " +
                  cluster.ir.tls->sni + ") failed: " +
                  tls::explainHandshakeFailure(ssl, ec.value(), ec.message(), *cluster.ir.tls);
      }
      ERR_clear_error();
      co_return nullptr;
    }
    if (SSL_session_reused(ssl) == 1) {
      Metrics::inc(worker_.metrics().upstreamTlsResumed);
    }
  } else {
    conn = std::make_unique<UpstreamConn>(Stream(std::move(sock)));
  }
  conn->poolKey = key;
  co_return conn;
}

// Relays one message body from `from` (whose read buffer is `buf`, possibly holding the first
// bytes already) to `to`, framed as `kind` (RFC 9112 section 6), after `head`: the head goes out
// in the same write as the body bytes already buffered (one TLS record, one send for a small
// message), or alone before waiting for more. Chunked bodies are passed through byte for byte
// while the decoder finds their end; nothing is buffered beyond one read. `closing`: `to` closes
// after the message, and its last write says so (Stream::writeAll's `last`).
awaitable<RelayEnd> relayBody(Stream& from, Buffer& buf, Stream& to, http1::BodyKind kind,
                              uint64_t contentLength, std::string& head, bool closing) {
  error_code ec;
  uint64_t left = contentLength;
  http1::ChunkedDecoder chunked;
  auto finished = [&] {
    return kind == http1::BodyKind::None || (kind == http1::BodyKind::ContentLength && left == 0) ||
           (kind == http1::BodyKind::Chunked && chunked.done());
  };
  while (true) {
    if (finished() || (buf.size() == 0 && !head.empty())) {
      if (!head.empty()) {
        co_await to.writeAll(asio::buffer(head), ec, closing && finished());
        head.clear();
        if (ec) {
          co_return RelayEnd::WriteFailed;
        }
      }
      if (finished()) {
        co_return RelayEnd::Complete;
      }
    }
    if (buf.size() == 0) {
      size_t n = co_await from.readSome(buf.prepare(kChunk), ec);
      if (ec || n == 0) {
        co_return kind == http1::BodyKind::UntilClose ? RelayEnd::Complete : RelayEnd::ReadFailed;
      }
      buf.commit(n);
    }
    size_t take = buf.size();
    if (kind == http1::BodyKind::ContentLength) {
      take = static_cast<size_t>(std::min<uint64_t>(left, take));
      left -= take;
    } else if (kind == http1::BodyKind::Chunked) {
      take = chunked.feed(buf.view());
      if (chunked.error()) {
        co_return RelayEnd::Malformed;
      }
    }
    if (!head.empty() && take <= kChunk) {
      head.append(buf.view().data(), take); // coalesce: one write for head and body
      buf.consume(take);
      co_await to.writeAll(asio::buffer(head), ec, closing && finished());
      head.clear();
    } else {
      if (!head.empty()) {
        co_await to.writeAll(asio::buffer(head), ec);
        head.clear();
        if (ec) {
          co_return RelayEnd::WriteFailed;
        }
      }
      co_await to.writeAll(asio::buffer(buf.view().data(), take), ec, closing && finished());
      buf.consume(take);
    }
    if (ec) {
      co_return RelayEnd::WriteFailed;
    }
  }
}

// One direction of a tunnel: what arrives on `from` goes to `to`. At the sender's end of stream
// the receiver is told so (TLS close_notify, FIN). Returns on end of stream or any error.
awaitable<void> pump(Stream& from, Buffer& buf, Stream& to, std::function<void()> touch) {
  error_code ec;
  while (true) {
    if (buf.size() == 0) {
      size_t n = co_await from.readSome(buf.prepare(kChunk), ec);
      if (ec || n == 0) {
        break;
      }
      buf.commit(n);
    }
    touch();
    co_await to.writeAll(asio::buffer(buf.view().data(), buf.size()), ec);
    if (ec) {
      co_return;
    }
    buf.consume(buf.size());
  }
  if (ec == asio::error::eof) {
    co_await to.shutdown();
  }
}

// As nginx does for upgraded connections, the tunnel ends when either side has finished: the
// other direction is woken (its socket waits cancelled) and both connections close after it.
awaitable<void> Connection::tunnel(UpstreamConn& up) {
  if (client_->isPipe()) {
    co_return; // RFC 9113 section 8.6: no 101 in HTTP/2 (and a stream has no socket to wake)
  }
  upstream_ = &up; // the idle timeout closes both sides
  auto touch = [this] { arm(kIdleTimeout, TimeoutPhase::Body); }; // stream idle: 5 min
  // The client-to-backend direction runs beside this coroutine; `done` wakes us when it ends.
  auto done = std::make_shared<asio::steady_timer>(worker_.context(), std::chrono::steady_clock::time_point::max());
  auto finished = std::make_shared<bool>(false);
  asio::co_spawn(worker_.context(), pump(*client_, in_, up.stream, touch),
                 [done, finished, &up](std::exception_ptr) {
                   *finished = true;
                   done->cancel();
                   error_code ec;
                   up.stream.socket().cancel(ec); // wake the backend-to-client direction
                 });
  co_await pump(up.stream, up.buf, *client_, touch);
  if (!*finished) {
    error_code ec;
    client_->socket().cancel(ec); // wake the client-to-backend direction
    co_await done->async_wait(asio::redirect_error(use_awaitable, ec));
  }
  disarm();
}

awaitable<Connection::H2cOutcome> Connection::forwardH2c(const H2cExchange& x) {
  H2cOutcome outcome;
  error_code ec;
  if (x.cluster.tlsContext) {
    outcome.failStatus = 502;
    outcome.failure = "appProtocol kubernetes.io/h2c is cleartext, but a BackendTLSPolicy asks for TLS";
    co_return outcome;
  }
  // The head we would send over HTTP/1.1, as HTTP/2 fields (RFC 9113 section 8.3.1): Host becomes
  // :authority; Transfer-Encoding and other connection-specific fields are not sent.
  http1::Head h;
  if (http1::parseRequest(x.upstreamHead, x.upstreamHead.size() + 1, h).status != http1::ParseStatus::Done) {
    outcome.failStatus = 500;
    outcome.failure = "cannot convert the request to HTTP/2";
    co_return outcome;
  }
  std::vector<std::pair<std::string, std::string>> fields;
  fields.reserve(h.headers.size());
  std::string authority;
  for (const auto& f : h.headers) {
    if (iequals(f.name, "host")) {
      authority = std::string(f.value);
    } else if (!iequals(f.name, "transfer-encoding") && !http1::isHopByHop(f.name)) {
      fields.emplace_back(toLower(f.name), std::string(f.value));
    }
  }
  const bool hasBody = x.body != http1::BodyKind::None;
  const size_t epIndex = worker_.nextRoundRobin() % x.cluster.ir.endpoints.size();
  const auto& ep = x.cluster.ir.endpoints[epIndex];
  const std::string& key = x.cluster.poolKeys[epIndex];
  if (access_) {
    access_->upstream = x.cluster.endpointLabels[epIndex];
  }
  std::unique_ptr<UpstreamConn> up = worker_.pool().take(key);
  if (up && !up->h2->request(h.method, "http", authority, h.target, fields, hasBody)) {
    up->stream.close();
    up.reset();
  }
  if (!up) {
    std::string failure;
    up = co_await connectUpstream(x.cluster, ep, key, failure);
    if (!up) {
      Metrics::inc(worker_.metrics().upstreamFailures);
      outcome.failStatus = timedOut_ == TimeoutPhase::Connect ? 504 : 502;
      timedOut_ = TimeoutPhase::None;
      outcome.failure = failure;
      co_return outcome;
    }
    up->h2 = std::make_unique<h2::ClientSession>();
    if (!up->h2->request(h.method, "http", authority, h.target, fields, hasBody)) {
      outcome.failStatus = 502;
      outcome.failure = up->h2->error();
      co_return outcome;
    }
  } else {
    Metrics::inc(worker_.metrics().upstreamReuses);
  }
  upstream_ = up.get();
  arm(x.timeout, TimeoutPhase::Request);
  if (hasBody && x.expectContinue) {
    static const std::string kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
    co_await client_->writeAll(asio::buffer(kContinue), ec);
  }
  auto& s = *up->h2;
  bool bodyDone = !hasBody;
  uint64_t bodyLeft = x.contentLength;
  http1::ChunkedDecoder chunks;
  std::string payload;
  bool headSent = false;
  bool chunked = false;
  bool bodyless = false;
  std::string out;
  auto failWith = [&](int status, std::string why) {
    outcome.failStatus = headSent ? 0 : status;
    outcome.failure = std::move(why);
    outcome.keep = false;
    if (headSent) {
      spdlog::warn("{} {}: {} (after the response head; the client connection is closed)", x.method,
                   x.route.name, outcome.failure);
      client_->close();
    }
  };
  while (true) {
    auto frames = s.output();
    if (!frames.empty()) {
      co_await up->stream.writeAll(asio::buffer(frames.data(), frames.size()), ec);
      if (ec) {
        failWith(502, "writing to the HTTP/2 backend failed: " + ec.message());
        break;
      }
      s.sent(frames.size());
      continue;
    }
    if (!s.error().empty()) {
      failWith(502, s.error());
      break;
    }
    if (s.headersDone() && !headSent) {
      // The response head, for the HTTP/1.1 client: framing of our own choosing.
      out.clear();
      const int status = s.status();
      appendStatusLine(out, status, reasonPhrase(status));
      http1::FieldList backendFields; // the framing is ours: no transfer-encoding from HTTP/2
      for (const auto& [n, v] : s.responseHeaders()) {
        if (!iequals(n, "transfer-encoding")) {
          backendFields.push_back({n, v});
        }
      }
      http1::FieldList fields;
      responseFields(http1::asSpan(backendFields), x.route, x.backend, x.corsResponse, fields);
      const bool hasLength = std::any_of(fields.begin(), fields.end(),
                                         [](const http1::Header& h) { return iequals(h.name, "content-length"); });
      appendFields(out, http1::asSpan(fields));
      // RFC 9112 section 6.3: no body for HEAD, 1xx, 204 and 304.
      bodyless = x.method == "HEAD" || status == 204 || status == 304;
      chunked = !bodyless && !hasLength;
      if (chunked) {
        out.append("transfer-encoding: chunked\r\n"sv);
      }
      outcome.keep = x.clientKeepAlive;
      if (!outcome.keep) {
        out.append("connection: close\r\n"sv);
      }
      out.append("\r\n"sv);
      noteStatus(status);
      headSent = true;
      arm(kIdleTimeout, TimeoutPhase::Body);
    }
    if (headSent && (!s.responseBody().empty() || (s.streamClosed() && chunked))) {
      auto& b = s.responseBody();
      if (!bodyless && !b.empty()) {
        if (chunked) {
          char size[20];
          int n = snprintf(size, sizeof size, "%zx\r\n", b.size());
          out.append(size, static_cast<size_t>(n)).append(b).append("\r\n"sv);
        } else {
          out.append(b);
        }
      }
      b.clear();
      if (s.streamClosed() && chunked && s.streamError() == 0) {
        out.append("0\r\n\r\n"sv);
      }
    }
    if (!out.empty()) {
      co_await client_->writeAll(asio::buffer(out), ec);
      out.clear();
      if (ec) {
        failWith(502, "the client went away: " + ec.message());
        break;
      }
      continue;
    }
    if (s.streamClosed()) {
      if (s.streamError() != 0) {
        failWith(502, "the backend reset the HTTP/2 stream (error code " + std::to_string(s.streamError()) + ")");
      } else if (!headSent) {
        failWith(502, "the HTTP/2 stream closed without a response");
      }
      break;
    }
    if (!bodyDone && !s.bodyQueued()) {
      // Request body from the client (what is already read first), unframed for DATA frames.
      if (in_.size() == 0) {
        size_t n = co_await client_->readSome(in_.prepare(kChunk), ec);
        if (ec || n == 0) {
          failWith(502, "the client closed during the request body");
          break;
        }
        in_.commit(n);
      }
      payload.clear();
      std::string_view avail = in_.view();
      if (x.body == http1::BodyKind::ContentLength) {
        size_t take = static_cast<size_t>(std::min<uint64_t>(bodyLeft, avail.size()));
        payload.assign(avail.substr(0, take));
        in_.consume(take);
        bodyLeft -= take;
        bodyDone = bodyLeft == 0;
      } else {
        size_t used = chunks.feed(avail, &payload);
        in_.consume(used);
        if (chunks.error()) {
          failWith(400, "malformed chunked request body");
          break;
        }
        bodyDone = chunks.done();
      }
      s.body(payload, bodyDone);
      continue;
    }
    size_t n = co_await up->stream.readSome(up->buf.prepare(16 * 1024), ec);
    if (ec || n == 0) {
      const bool timeout = timedOut_ == TimeoutPhase::Request;
      timedOut_ = TimeoutPhase::None;
      failWith(timeout ? 504 : 502, timeout ? "no response within " + std::to_string(x.timeout.count()) + "ms"
                                            : "the HTTP/2 backend closed the connection" +
                                                  (ec ? " (" + ec.message() + ")" : std::string()));
      break;
    }
    up->buf.commit(n);
    const bool fed = s.feed(up->buf.view());
    up->buf.consume(up->buf.size());
    if (!fed) {
      auto goaway = s.output(); // tell the backend why, best effort
      co_await up->stream.writeAll(asio::buffer(goaway.data(), goaway.size()), ec);
      failWith(502, s.error());
      break;
    }
  }
  upstream_ = nullptr;
  const bool sameSnapshot = worker_.snapshot() && worker_.snapshot()->version() == snapshot_->version();
  if (outcome.failStatus == 0 && outcome.failure.empty() && s.reusable() && sameSnapshot) {
    worker_.pool().put(std::move(up));
  } else {
    up->stream.close();
  }
  co_return outcome;
}

void Connection::routeRequest(const http1::Head& head, Routed& r) {
  auto local = [&](int status, const std::string& cause) {
    r.action = Routed::Action::Answer;
    r.answer = localAnswer(status, cause, &head, r.route != nullptr ? r.route->name : kNoName);
  };
  if (snapshot_ != worker_.snapshot()) {
    pin(); // a new config since the last request: this request and the next are served by it
  }
  const PortGroup* group = group_;
  if (group == nullptr) {
    return local(503, "listener " + portKey_ + " is no longer configured");
  }
  std::string host = hostOnly(head.header("host"));
  std::string_view target = head.target;
  if (startsWith(target, "http://") || startsWith(target, "https://")) {
    // absolute-form (RFC 9112 section 3.2.2): the authority in the target wins over Host.
    auto rest = target.substr(target.find("//") + 2);
    auto slash = rest.find('/');
    host = hostOnly(rest.substr(0, slash));
    target = slash == std::string_view::npos ? std::string_view("/") : rest.substr(slash);
  }
  const ListenerView* listener = group->listenerFor(host);
  if (listener == nullptr) {
    return local(404, "no listener on " + portKey_ + " for host " + host);
  }
  if (SSL* ssl = client_->ssl()) {
    // GEP-3567: the TLS connection was set up for the listener its SNI selected; a request whose
    // authority belongs to another listener on this port is misdirected (RFC 9110 section 15.5.20).
    if (const char* sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name)) {
      const ListenerView* bySni = group->listenerFor(toLower(sni));
      if (bySni != nullptr && bySni != listener) {
        return local(421, "request for " + host + " on a TLS connection for " + sni);
      }
    }
  }
  const CompiledVirtualHost* vhost = listener->vhostFor(host);
  const size_t q = target.find('?');
  r.path = target.substr(0, q);
  r.query = q == std::string_view::npos ? std::string_view{} : target.substr(q + 1);
  const CompiledRoute* route = vhost != nullptr ? matchRoute(*vhost, RequestView{head.method, r.path, r.query, &head.headers})
                                                : nullptr;
  if (route == nullptr) {
    return local(404, "no route on " + listener->name + " for host " + host + " path " + std::string(r.path));
  }
  r.route = route;
  if (access_) {
    access_->route = route->name;
  }
  if (route->cors && corsPreflight(head, *route->cors, r)) {
    return;
  }
  if (route->redirect) {
    r.action = Routed::Action::Answer;
    r.answer = redirectAnswer(head, *route, *listener, host, r.path, r.query);
    return;
  }
  if (route->backends.empty() || route->totalWeight == 0) {
    return local(500, "the rule has no backendRefs with weight");
  }
  // Weighted choice (spec section 3: weight / sum of weights).
  uint64_t pick = worker_.random() % route->totalWeight;
  const ir::WeightedBackend* chosen = &route->backends.back();
  for (const auto& b : route->backends) {
    if (pick < b.weight) {
      chosen = &b;
      break;
    }
    pick -= b.weight;
  }
  r.chosen = chosen;
  if (chosen->status != 0) {
    return local(chosen->status, "invalid backendRef: " + chosen->reason);
  }
  // The request timeout runs until the response head; a route's timeouts.request replaces the
  // default, and timeouts.backendRequest bounds each upstream attempt (GEP-1742). 0 disables.
  auto timeoutFor = [](std::optional<uint32_t> ms, std::chrono::milliseconds fallback) {
    if (!ms) {
      return fallback;
    }
    return *ms == 0 ? std::chrono::milliseconds(std::chrono::hours(24 * 365)) : std::chrono::milliseconds(*ms);
  };
  const auto requestTimeout = timeoutFor(route->requestTimeoutMs, kRequestTimeout);
  r.attemptTimeout = std::min(requestTimeout, timeoutFor(route->backendRequestTimeoutMs, requestTimeout));
  const ClusterEntry* cluster = route->clusters[static_cast<size_t>(chosen - route->backends.data())];
  if (cluster == nullptr) {
    return local(500, "cluster " + chosen->cluster + " is missing");
  }
  if (cluster->ir.tlsError) {
    return local(500, cluster->ir.name + ": " + *cluster->ir.tlsError + " (not sending plaintext)");
  }
  if (cluster->ir.tls && !cluster->tlsContext) {
    return local(500, cluster->ir.name + ": upstream TLS context unusable: " + cluster->contextError +
                          " (not sending plaintext)");
  }
  if (cluster->ir.endpoints.empty()) {
    return local(503, cluster->ir.name + " has no ready endpoints");
  }
  r.cluster = cluster;
  // WebSocket (RFC 6455 section 4.1, GEP-1911 kubernetes.io/ws): the Upgrade is passed on for a
  // bodiless request that asks for it in Connection; other protocols are not upgraded through us.
  if (head.body == http1::BodyKind::None && iequals(head.header("upgrade"), "websocket")) {
    for (const auto& h : head.headers) {
      if (iequals(h.name, "connection")) {
        for (auto part : SplitView(h.value, ',')) {
          r.websocket = r.websocket || iequals(trimOws(part), "upgrade");
        }
      }
    }
  }
}

bool Connection::corsPreflight(const http1::Head& head, const ir::Cors& cors, Routed& r) {
  // HTTPCORSFilter: the gateway answers preflights itself; allowed origins get their headers on
  // the backend's response.
  const std::string origin(head.header("origin"));
  const bool allowed = !origin.empty() && corsOriginAllowed(cors, origin);
  const bool star = cors.allowOrigins.size() == 1 && cors.allowOrigins[0] == "*";
  if (allowed) {
    r.cors.append("access-control-allow-origin: "sv).append(star && !cors.allowCredentials ? "*" : origin).append("\r\n"sv);
    if (cors.allowCredentials) {
      r.cors.append("access-control-allow-credentials: true\r\n"sv);
    }
  }
  const std::string requestMethod(head.header("access-control-request-method"));
  if (head.method == "OPTIONS" && !origin.empty() && !requestMethod.empty()) {
    std::string& out = r.answer;
    out = "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n";
    if (allowed) {
      out += r.cors;
      auto join = [](const std::vector<std::string>& v) {
        std::string j;
        for (const auto& x : v) {
          j += (j.empty() ? "" : ", ") + x;
        }
        return j;
      };
      const bool anyMethod = cors.allowMethods.size() == 1 && cors.allowMethods[0] == "*";
      out += "access-control-allow-methods: " +
             (anyMethod ? (cors.allowCredentials ? requestMethod : std::string("*")) : join(cors.allowMethods)) +
             "\r\n";
      const std::string requestHeaders(head.header("access-control-request-headers"));
      if (!requestHeaders.empty()) {
        const bool anyHeader = cors.allowHeaders.size() == 1 && cors.allowHeaders[0] == "*";
        out += "access-control-allow-headers: " +
               (anyHeader ? (cors.allowCredentials ? requestHeaders : std::string("*")) : join(cors.allowHeaders)) +
               "\r\n";
      }
      out += "access-control-max-age: " + std::to_string(cors.maxAge) + "\r\n";
    }
    if (!keepsAliveAfterAnswer(&head)) {
      out += "connection: close\r\n";
    }
    out += "\r\n";
    noteStatus(200);
    r.action = Routed::Action::Answer;
    return true;
  }
  if (allowed && !cors.exposeHeaders.empty()) {
    r.cors += "access-control-expose-headers: ";
    for (size_t i = 0; i < cors.exposeHeaders.size(); ++i) {
      r.cors += (i ? ", " : "") + cors.exposeHeaders[i];
    }
    r.cors += "\r\n";
  }
  return false;
}

void Connection::startMirrors(const CompiledRoute& route, const std::string& upstreamHead, const std::string& method) {
  for (const auto& m : route.mirrors) {
    // percent / fraction of the requests (spec 2.4); the mirror runs beside the real request.
    if (worker_.random() % m.denominator < m.numerator) {
      asio::co_spawn(worker_.context(), mirrorRequest(worker_, snapshot_, m.cluster, upstreamHead, method),
                     asio::detached);
    }
  }
}

awaitable<bool> Connection::failRequest(int status, const std::string& cause, const RequestLine& line,
                                        const std::string& routeName) {
  upstream_ = nullptr;
  noteStatus(status);
  spdlog::warn("{} {} {} route={}: {}", status, line.method, line.target, routeName, cause);
  const std::string out = statusAnswer(status, false);
  co_await client_->writeAll(asio::buffer(out), ec0_);
  co_return false;
}

awaitable<bool> Connection::proxyH2c(const http1::Head& head, const Routed& r, const std::string& upstreamHead,
                                     const RequestLine& line) {
  H2cExchange x{*r.cluster, upstreamHead, head.body, head.contentLength, head.expectContinue, line.method,
                head.keepAlive, *r.route, *r.chosen, r.cors, r.attemptTimeout};
  auto outcome = co_await forwardH2c(x);
  if (outcome.failStatus != 0) {
    co_return co_await failRequest(outcome.failStatus, "upstream " + r.cluster->ir.name + ": " + outcome.failure,
                                   line, r.route->name);
  }
  co_return outcome.keep;
}

awaitable<void> Connection::backoff(std::chrono::milliseconds delay) {
  asio::steady_timer timer(worker_.context(), delay);
  error_code ec;
  co_await timer.async_wait(asio::redirect_error(use_awaitable, ec));
}

awaitable<RelayEnd> Connection::sendBody(const http1::Head& head, UpstreamConn& up, std::string& upstreamHead) {
  if (head.expectContinue) {
    // RFC 9110 section 10.1.1: we answer the expectation ourselves and do not forward it.
    static const std::string kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
    error_code ec;
    co_await client_->writeAll(asio::buffer(kContinue), ec);
  }
  co_return co_await relayBody(*client_, in_, up.stream, head.body, head.contentLength, upstreamHead, false);
}

awaitable<bool> Connection::switchProtocols(UpstreamConn& up, const http1::Head& resp, const Routed& r,
                                            const RequestLine& line) {
  if (!r.websocket || !iequals(resp.header("upgrade"), "websocket")) {
    // RFC 9110 section 15.2.2: a switch we did not ask for cannot be relayed.
    up.stream.close();
    co_return co_await failRequest(502,
                                   "upstream " + r.cluster->ir.name + ": 101 Switching Protocols to \"" +
                                       std::string(resp.header("upgrade")) + "\" without a WebSocket upgrade request",
                                   line, r.route->name);
  }
  std::string out;
  appendStatusLine(out, 101, resp.reason);
  for (const auto& h : resp.headers) {
    if (!http1::isHopByHop(h.name)) {
      appendField(out, h.name, h.value);
    }
  }
  out.append("connection: upgrade\r\nupgrade: websocket\r\n\r\n"sv);
  up.buf.consume(resp.headBytes);
  error_code ec;
  co_await client_->writeAll(asio::buffer(out), ec);
  if (!ec) {
    co_await tunnel(up);
  }
  upstream_ = nullptr;
  up.stream.close();
  co_return false;
}

bool Connection::responseHead(const http1::Head& resp, const Routed& r, bool keep, std::string& out) {
  // Hop-by-hop fields dropped, our connection decision added.
  http1::FieldList fields;
  responseFields(resp.headers, *r.route, *r.chosen, r.cors, fields);
  if (Pipe* pipe = client_->pipe()) {
    // An HTTP/2 stream takes the head as fields; only the body goes through as bytes.
    return pipe->respond(resp.status, http1::asSpan(fields), resp.body, resp.contentLength);
  }
  out.reserve(resp.headBytes + 64);
  appendStatusLine(out, resp.status, resp.reason);
  appendFields(out, http1::asSpan(fields));
  if (!keep) {
    out.append("connection: close\r\n"sv);
  }
  out.append("\r\n"sv);
  return true;
}

// The coroutine keeps only what crosses a suspension: routing, the rare answers and the rare
// paths (CORS preflight, redirects, h2c, retries' backoff, request bodies, 101) are functions of
// their own, so that the frame every request allocates and writes stays small.
awaitable<bool> Connection::handleRequest(http1::Head& head) {
  Routed r;
  routeRequest(head, r);
  if (r.action == Routed::Action::Answer) {
    // Answered here (no route, a redirect, a CORS preflight, a backend that cannot be used).
    in_.consume(head.headBytes);
    co_await client_->writeAll(asio::buffer(r.answer), ec0_);
    co_return keepsAliveAfterAnswer(&head) && !ec0_;
  }
  const CompiledRoute& route = *r.route;
  const ClusterEntry& cluster = *r.cluster;
  const bool hasBody = head.body != http1::BodyKind::None;
  std::string upstreamHead = buildUpstreamHead(head, r);
  // What the rest needs of the request once its head leaves the read buffer.
  const RequestLine line{std::string(head.method), std::string(head.target)};
  in_.consume(head.headBytes);
  if (!hasBody && !r.websocket && !route.mirrors.empty()) {
    startMirrors(route, upstreamHead, line.method);
  }
  if (cluster.ir.h2c) {
    co_return co_await proxyH2c(head, r, upstreamHead, line);
  }
  // HTTPRouteRetry (GEP-1731): `attempts` upstream tries in all, on the listed status codes and on
  // connection errors, `backoff` apart, within the request timeout. Only requests without a body
  // are retried: a streamed body cannot be sent twice.
  const int maxTries = route.retry && !hasBody ? std::max<int>(1, route.retry->attempts) : 1;
  int failStatus = 0;
  std::string failure;
  std::unique_ptr<UpstreamConn> up;
  error_code ec;
  http1::Head resp;
  for (int tryNo = 1;; ++tryNo) {
    const bool lastTry = tryNo >= maxTries;
    if (tryNo > 1) {
      co_await backoff(std::chrono::milliseconds(route.retry->backoffMs));
    }
    const size_t epIndex = worker_.nextRoundRobin() % cluster.ir.endpoints.size();
    const std::string& key = cluster.poolKeys[epIndex];
    const std::string& where = cluster.endpointLabels[epIndex];
    if (access_) {
      access_->upstream = where;
    }
    // A pooled connection may have been closed by the backend at the moment we reuse it: one more
    // go on a fresh connection when nothing of the request body has been consumed yet.
    bool connected = false;
    for (int fresh = 0; fresh < 2 && !connected; ++fresh) {
      up = fresh == 0 ? worker_.pool().take(key) : nullptr;
      const bool reused = up != nullptr;
      if (reused) {
        Metrics::inc(worker_.metrics().upstreamReuses);
      } else {
        up = co_await connectUpstream(cluster, cluster.ir.endpoints[epIndex], key, failure);
        if (!up) {
          Metrics::inc(worker_.metrics().upstreamFailures);
          break;
        }
      }
      arm(r.attemptTimeout, TimeoutPhase::Request);
      upstream_ = up.get();
      if (hasBody) {
        // The head goes out with the first body bytes (relayBody), which may be slow to come: a
        // new connection's TLS Finished does not wait for them.
        if (up->stream.holdsBack()) {
          co_await up->stream.flush(ec);
        }
        connected = true;
        break;
      }
      co_await up->stream.writeAll(asio::buffer(upstreamHead), ec);
      if (!ec) {
        connected = true;
      } else {
        failure = "writing the request to the backend failed: " + ec.message();
        up->stream.close();
        up.reset();
        upstream_ = nullptr;
        if (!reused) {
          break;
        }
      }
    }
    if (!connected) {
      const int status = timedOut_ == TimeoutPhase::Connect ? 504 : 502;
      timedOut_ = TimeoutPhase::None;
      if (!lastTry) {
        spdlog::info("retrying {} {} after: {}", line.method, line.target, failure);
        continue;
      }
      failStatus = status;
      failure = "upstream " + cluster.ir.name + ": " + failure;
      break;
    }
    if (hasBody) {
      const RelayEnd requestEnd = co_await sendBody(head, *up, upstreamHead);
      if (requestEnd != RelayEnd::Complete) {
        failStatus = 502;
        failure = where + ": " +
                  (requestEnd == RelayEnd::ReadFailed  ? "the client closed during the request body"
                   : requestEnd == RelayEnd::Malformed ? "malformed chunked request body"
                                                       : "writing the request body to the backend failed");
        break;
      }
    }
    // Response head (interim 1xx responses are relayed as they come).
    int headStatus = 0; // nonzero: no response head, answer this
    while (true) {
      resp = http1::Head{};
      const auto parsed = http1::parseResponse(up->buf.view(), kMaxResponseHead, line.method, resp);
      if (parsed.status == http1::ParseStatus::Error) {
        headStatus = 502;
        failure = parsed.error;
        break;
      }
      if (parsed.status == http1::ParseStatus::Done) {
        if (resp.status >= 100 && resp.status < 200 && resp.status != 101) {
          co_await client_->writeAll(asio::buffer(up->buf.view().data(), resp.headBytes), ec);
          up->buf.consume(resp.headBytes);
          continue;
        }
        break;
      }
      const size_t n = co_await up->stream.readSome(up->buf.prepare(16 * 1024), ec);
      if (ec || n == 0) {
        const bool timeout = timedOut_ == TimeoutPhase::Request;
        timedOut_ = TimeoutPhase::None;
        headStatus = timeout ? 504 : 502;
        failure = timeout ? "no response within " + std::to_string(r.attemptTimeout.count()) + "ms"
                          : "backend closed the connection before responding" +
                                (ec ? " (" + ec.message() + ")" : std::string());
        break;
      }
      up->buf.commit(n);
    }
    if (headStatus != 0) {
      up->stream.close();
      if (!lastTry) {
        spdlog::info("retrying {} {} after {}: {}", line.method, line.target, where, failure);
        continue;
      }
      failStatus = headStatus;
      failure = where + ": " + failure;
      break;
    }
    if (!lastTry && route.retry &&
        std::find(route.retry->codes.begin(), route.retry->codes.end(), resp.status) != route.retry->codes.end()) {
      spdlog::info("retrying {} {}: {} answered {}", line.method, line.target, where, resp.status);
      up->stream.close(); // its response body is not wanted
      upstream_ = nullptr;
      continue;
    }
    break;
  }
  if (failStatus != 0) {
    co_return co_await failRequest(failStatus, failure, line, route.name);
  }
  arm(kIdleTimeout, TimeoutPhase::Body);
  noteStatus(resp.status);
  if (resp.status == 101) {
    co_return co_await switchProtocols(*up, resp, r, line);
  }
  const bool keep = head.keepAlive && resp.body != http1::BodyKind::UntilClose && !worker_.draining();
  std::string out;
  if (!responseHead(resp, r, keep, out)) {
    up->stream.close();
    upstream_ = nullptr;
    co_return false;
  }
  bool upstreamReusable = resp.keepAlive;
  up->buf.consume(resp.headBytes);
  // When the client connection closes after this response, its last write carries close_notify.
  RelayEnd responseEnd = RelayEnd::Complete;
  if (resp.body == http1::BodyKind::None ||
      (resp.body == http1::BodyKind::ContentLength && resp.contentLength <= kChunk &&
       up->buf.size() >= resp.contentLength)) {
    // The whole body came with the head (the usual small response): the one write relayBody would
    // make, without its loop.
    if (resp.body == http1::BodyKind::ContentLength) {
      out.append(up->buf.view().data(), static_cast<size_t>(resp.contentLength));
      up->buf.consume(static_cast<size_t>(resp.contentLength));
    }
    if (!out.empty()) {
      ec.clear(); // (it may hold the failure of a pooled connection that was replaced)
      co_await client_->writeAll(asio::buffer(out), ec, !keep);
      responseEnd = ec ? RelayEnd::WriteFailed : RelayEnd::Complete;
    }
  } else {
    responseEnd = co_await relayBody(up->stream, up->buf, *client_, resp.body, resp.contentLength, out, !keep);
  }
  const bool ok = responseEnd == RelayEnd::Complete;
  if (!ok || resp.body == http1::BodyKind::UntilClose) {
    upstreamReusable = false;
  }
  upstream_ = nullptr;
  const bool sameSnapshot = worker_.snapshot() && worker_.snapshot()->version() == snapshot_->version();
  if (ok && sameSnapshot && up->stream.ssl() != nullptr && !up->sessionStored) {
    // TLS 1.3 tickets arrive after the handshake: by now the first response has carried them in.
    // Once per connection: the session does not change while the connection lives.
    worker_.pool().storeSession(up->poolKey, up->stream.ssl());
    up->sessionStored = true;
  }
  if (ok && upstreamReusable && up->buf.size() == 0 && sameSnapshot) {
    worker_.pool().put(std::move(up));
  } else {
    up->stream.close();
  }
  co_return ok && keep;
}

void Connection::logAccess() {
  const auto& a = *access_;
  const auto end = std::chrono::system_clock::now();
  const auto ms = std::chrono::duration_cast<std::chrono::microseconds>(end - a.start).count() / 1000.0;
  const auto since = std::chrono::duration_cast<std::chrono::milliseconds>(a.start.time_since_epoch()).count();
  std::string line;
  line.reserve(256 + a.target.size());
  char millis[8];
  snprintf(millis, sizeof millis, ".%03d", static_cast<int>(since % 1000));
  std::string time = formatRfc3339(since / 1000);
  time.insert(time.size() - 1, millis); // 2026-11-26T10:00:00.123Z
  char duration[32];
  snprintf(duration, sizeof duration, "%.3f", ms);
  line.append("{\"time\":\""sv).append(time).append("\",\"client\":"sv);
  appendJsonString(line, peer_);
  line.append(",\"protocol\":\""sv).append(client_->isPipe() ? "HTTP/2" : "HTTP/1.1").append("\",\"method\":"sv);
  appendJsonString(line, a.method);
  line.append(",\"host\":"sv);
  appendJsonString(line, a.host);
  line.append(",\"target\":"sv);
  appendJsonString(line, a.target);
  line.append(",\"status\":"sv).append(std::to_string(a.status)).append(",\"duration_ms\":"sv).append(duration);
  line.append(",\"route\":"sv);
  appendJsonString(line, a.route);
  line.append(",\"upstream\":"sv);
  appendJsonString(line, a.upstream);
  line.append(",\"listener\":"sv);
  appendJsonString(line, portKey_);
  line.append("}\n"sv);
  worker_.accessLog(line);
}

} // namespace

namespace {

// The connection lives until its run() completes: the completion handler holds it. (Spawning
// run() itself, not a lambda coroutine that awaits it: one coroutine frame less per connection
// and per HTTP/2 stream.)
void start(Worker& worker, const std::shared_ptr<Connection>& conn) {
  asio::co_spawn(worker.context(), conn->run(), [conn](const std::exception_ptr&) {});
}

} // namespace

void serveStream(Worker& worker, std::shared_ptr<Pipe> pipe, std::string portKey, std::string peer) {
  start(worker, std::make_shared<Connection>(worker, std::move(pipe), std::move(portKey), std::move(peer)));
}

void serveConnection(Worker& worker, tcp::socket socket, std::string portKey, std::string peer) {
  start(worker, std::make_shared<Connection>(worker, std::move(socket), std::move(portKey), std::move(peer)));
}

} // namespace gantry::dataplane
