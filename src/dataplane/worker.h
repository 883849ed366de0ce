#pragma once
// Per-worker machinery (internal to the data plane): the byte stream that may or may not be TLS,
// the read buffer, the upstream connection pool, and the worker itself. Everything here belongs
// to one worker thread; nothing is locked.
#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "dataplane/deadlines.h"
#include "dataplane/h2c_client.h"
#include "dataplane/snapshot.h"

namespace gantry::dataplane {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using boost::system::error_code;

// The data plane's coroutines run on a worker's io_context and are typed with its executor, not
// the type-erased any_io_executor: resuming one, posting its completions and spawning it then
// need no type-erased executor copied, compared or called through.
using Executor = asio::io_context::executor_type;
template <typename T = void>
using awaitable = asio::awaitable<T, Executor>;
inline constexpr asio::use_awaitable_t<Executor> use_awaitable;

// Counters of one worker (relaxed atomics: written by the worker only, read by /metrics, which
// sums the workers'; one cache-line-aligned block each, so workers never share a line).
struct alignas(64) Metrics {
  std::atomic<uint64_t> connectionsAccepted{0};
  std::atomic<uint64_t> connectionsActive{0};
  std::atomic<uint64_t> tlsHandshakeFailures{0};
  std::atomic<uint64_t> requests{0};
  std::atomic<int64_t> requestsInFlight{0}; // drained on shutdown
  std::atomic<int64_t> h2StreamsOpen{0};     // drained too: a stream's response may still be queued
  std::atomic<uint64_t> responses2xx{0}, responses3xx{0}, responses4xx{0}, responses5xx{0};
  std::atomic<uint64_t> upstreamConnects{0};
  std::atomic<uint64_t> upstreamReuses{0};
  std::atomic<uint64_t> upstreamTlsResumed{0};
  std::atomic<uint64_t> upstreamFailures{0};
  void countStatus(int status);

  // Each counter has one writer, its worker: a relaxed load and store, not a locked
  // read-modify-write (about 20 cycles each, several per request). Readers only load.
  template <typename T>
  static void inc(std::atomic<T>& c) {
    c.store(c.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
  template <typename T>
  static void dec(std::atomic<T>& c) {
    c.store(c.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
  }
};

// A growable byte buffer with a read cursor: bytes [begin, end) are unread. Storage comes in
// 16 KiB blocks from a per-thread free list, so a connection can give its block back while idle
// (release()) and take one again for the next request without malloc or memset.
class Buffer {
public:
  static constexpr size_t kBlock = 16 * 1024;

  explicit Buffer(size_t initial = kBlock) {
    if (initial > 0) {
      grow(initial);
    }
  }
  ~Buffer() { freeStorage(); }
  Buffer(Buffer&& o) noexcept : data_(o.data_), capacity_(o.capacity_), begin_(o.begin_), end_(o.end_) {
    o.data_ = nullptr;
    o.capacity_ = o.begin_ = o.end_ = 0;
  }
  Buffer& operator=(Buffer&&) = delete;
  Buffer(const Buffer&) = delete;

  std::string_view view() const { return {data_ + begin_, end_ - begin_}; }
  size_t size() const { return end_ - begin_; }
  void consume(size_t n) {
    begin_ += n;
    if (begin_ == end_) {
      begin_ = end_ = 0;
    }
  }
  // Space for at least `min` more bytes.
  asio::mutable_buffer prepare(size_t min = 4096) {
    if (capacity_ - end_ < min) {
      if (begin_ > 0) {
        std::memmove(data_, data_ + begin_, end_ - begin_);
        end_ -= begin_;
        begin_ = 0;
      }
      if (capacity_ - end_ < min) {
        grow(end_ + std::max(min, capacity_));
      }
    }
    return asio::buffer(data_ + end_, capacity_ - end_);
  }
  void commit(size_t n) { end_ += n; }
  // Gives the storage of an empty buffer back; the next prepare() takes a block again.
  void release() {
    if (begin_ == end_) {
      freeStorage();
    }
  }

private:
  struct FreeList {
    std::vector<char*> blocks;
    ~FreeList() {
      for (char* b : blocks) {
        delete[] b;
      }
    }
  };
  static std::vector<char*>& freeBlocks() {
    thread_local FreeList list;
    return list.blocks;
  }
  void grow(size_t want) {
    size_t cap = want <= kBlock ? kBlock : want;
    char* fresh = nullptr;
    if (cap == kBlock && !freeBlocks().empty()) {
      fresh = freeBlocks().back();
      freeBlocks().pop_back();
    } else {
      fresh = new char[cap];
    }
    if (data_ != nullptr) {
      std::memcpy(fresh, data_ + begin_, end_ - begin_);
      end_ -= begin_;
      begin_ = 0;
      freeStorage();
    }
    data_ = fresh;
    capacity_ = cap;
  }
  void freeStorage() {
    if (data_ == nullptr) {
      return;
    }
    if (capacity_ == kBlock && freeBlocks().size() < 1024) {
      freeBlocks().push_back(data_);
    } else {
      delete[] data_;
    }
    data_ = nullptr;
    capacity_ = 0;
  }

  char* data_ = nullptr;
  size_t capacity_ = 0;
  size_t begin_ = 0;
  size_t end_ = 0;
};

// TCP, or TLS over TCP with OpenSSL working on the socket itself (SSL_set_fd): records go
// straight between OpenSSL and the kernel, with no memory-BIO copy in between (Asio's
// ssl::stream keeps one). The socket is non-blocking; when OpenSSL wants to read or write, the
// coroutine waits for readiness on the worker's reactor. Operations report errors through `ec`
// in Asio's SSL category (the OpenSSL error code), as ssl::stream does.
// An in-process byte stream standing in for a client connection: one HTTP/2 stream, seen by the
// HTTP/1.1 request path as a connection that carries one request (h2_frontend.cc).
class Pipe {
public:
  virtual ~Pipe() = default;
  // Request bytes, as HTTP/1.1; 0 with asio::error::eof at the end.
  virtual awaitable<size_t> read(asio::mutable_buffer b, error_code& ec) = 0;
  virtual awaitable<void> waitReadable(error_code& ec) = 0;
  // Response bytes, as HTTP/1.1.
  virtual awaitable<void> write(asio::const_buffer b, error_code& ec) = 0;
  virtual void shutdown() = 0; // the response is complete
  virtual void close() = 0;    // abort (RST_STREAM unless the response was complete)
  virtual SSL* ssl() = 0;      // the TLS connection the stream belongs to
  // The response head, already parsed and with its final fields: HTTP/2 frames it as it is,
  // instead of reading it back from HTTP/1.1 text. The body follows through write(), framed as
  // `body` says (as the backend sent it). False when the stream is gone.
  virtual bool respond(int status, std::span<const http1::Header> fields, http1::BodyKind body, uint64_t contentLength) = 0;
  // The request head, built from the stream's fields rather than parsed from HTTP/1.1 text: true
  // with `head` set (its views live as long as the pipe), or false with the cause of a 400.
  // read() then gives only the body, HTTP/1.1-framed as `head.body` says.
  virtual bool requestHead(http1::Head& head, std::string& error) = 0;
};

class Stream {
public:
  explicit Stream(tcp::socket s);
  // An HTTP/2 stream: no socket of its own.
  explicit Stream(std::shared_ptr<Pipe> pipe) : pipe_(std::move(pipe)) {}
  // TLS on `s` with a new SSL object of `ctx`, as server or client.
  Stream(tcp::socket s, SSL_CTX* ctx, bool server);
  Stream(Stream&&) noexcept = default;
  Stream& operator=(Stream&&) noexcept = default;

  tcp::socket& socket() { return *socket_; } // not for a pipe
  // TLS: ciphertext read from the socket that OpenSSL has not taken yet.
  bool hasBufferedInput() const { return io_ && (io_->smallLen > io_->smallPos || io_->in.size() > 0); }
  SSL* ssl() { return pipe_ ? pipe_->ssl() : ssl_.get(); }
  bool isTls() const { return ssl_ != nullptr || (pipe_ && pipe_->ssl() != nullptr); }
  bool isPipe() const { return pipe_ != nullptr; }
  Pipe* pipe() { return pipe_.get(); }
  // An HTTP/2 connection's TLS stream is handed over whole (ALPN h2).
  SSL* ownSsl() { return ssl_.get(); }

  // Where OpenSSL's reads come from (a BIO of our own, tls_bio in stream.cc): the socket is read
  // by Asio's reactor, which reads speculatively and keeps an edge-triggered registration, so
  // waiting for a response costs no epoll_ctl and one read(2). An idle connection waits with a
  // small inline buffer (the next request usually fits), a busy one reads into 16 KiB blocks.
  //
  // Writes are held back until we would wait (for the peer, or because the socket is full): a
  // record OpenSSL writes on its own (the server's handshake flight, a session ticket, an alert)
  // waits in `out` and leaves with the next data we write or before the next read wait, so a
  // new connection's session ticket and first response share one send(2). Inside writeAll
  // (`direct`), with nothing held back, records go straight to the socket without a copy.
  // A read never waits for the socket to drain, except for a handshake flight (the peer cannot
  // go on without it): a reader blocked behind a writer would deadlock with a peer that only
  // reads when its own writes go through (a tunnel, HTTP/2 uploads and downloads at once).
  struct TlsIo {
    int fd = -1;
    char small[1024];
    size_t smallPos = 0;
    size_t smallLen = 0;
    Buffer in{0};
    bool eof = false;
    int readErrno = 0;
    Buffer out{0};
    bool direct = false;
    bool flushing = false; // a flush() is waiting for the socket and will send all of `out`
  };

  awaitable<size_t> readSome(asio::mutable_buffer b, error_code& ec);
  // Returns when there is something to read (TLS: already decrypted, or bytes on the socket).
  awaitable<void> waitReadable(error_code& ec);
  // `last`: the connection closes after this write; TLS sends close_notify (RFC 8446 section 6.1)
  // in the same send(2) as the data, and startShutdown has nothing left to send.
  awaitable<void> writeAll(asio::const_buffer buf, error_code& ec, bool last = false);
  awaitable<void> handshake(error_code& ec);
  // TLS: sends close_notify (RFC 8446 section 6.1); then, with `halfClose`, shuts the sending
  // side (tunnels keep reading after it; a connection about to close need not).
  awaitable<void> shutdown(bool halfClose = true);
  // TLS: queues close_notify and sends what it can without waiting; false when bytes are left
  // for flush() (the socket is full). Lets a caller bound the wait only when there is one.
  bool startShutdown();
  // TLS: sends the records held back (see TlsIo), waiting for the socket as needed.
  awaitable<void> flush(error_code& ec);
  bool holdsBack() const { return io_ && io_->out.size() > 0; }
  void close();

private:
  struct SslFree {
    void operator()(SSL* s) const { SSL_free(s); }
  };
  // The coroutines behind readSome, waitReadable and writeAll (which are not coroutines: they hand
  // back the awaitable of the path that does the work, one coroutine frame per call, not two).
  awaitable<size_t> readTls(asio::mutable_buffer b, error_code& ec);
  awaitable<void> waitTlsReadable(error_code& ec);
  awaitable<void> writeOwn(asio::const_buffer buf, error_code& ec, bool last);
  // Waits until OpenSSL's `want` (SSL_ERROR_WANT_READ/WRITE) can be satisfied; false on error.
  awaitable<bool> waitFor(int want, error_code& ec);
  // Reads from the socket into io_ (into `small` when `idle`); false on error (which OpenSSL then
  // reports through the BIO, as it does the end). Its three steps are also used one by one by the
  // coroutines on the request path, which await the socket read themselves (a coroutine less per
  // read): fillFirst sends held-back records and says whether a flush must be awaited first;
  // fillBuffer is where the bytes go; fillDone takes the read's outcome.
  awaitable<bool> fill(bool idle, error_code& ec);
  bool fillFirst(error_code& ec);
  asio::mutable_buffer fillBuffer(bool idle);
  bool fillDone(asio::mutable_buffer into, size_t n, error_code& ec);
  // Sends held-back records without waiting: false while bytes are left because the socket is
  // full; true when none are left or on a socket error (in `ec`).
  bool sendHeldBack(error_code& ec);

  std::optional<tcp::socket> socket_; // none for a pipe
  void* reactor_ = nullptr;            // Asio's reactor of socket_, once looked up (stream.cc)
  std::unique_ptr<TlsIo> io_;
  std::unique_ptr<SSL, SslFree> ssl_;
  std::shared_ptr<Pipe> pipe_;
};

// One connection to a backend endpoint; pooled between requests.
struct UpstreamConn {
  explicit UpstreamConn(Stream s) : stream(std::move(s)) {}
  Stream stream;
  Buffer buf{16 * 1024};
  std::string poolKey;
  std::chrono::steady_clock::time_point idleSince;
  std::unique_ptr<h2::ClientSession> h2; // kubernetes.io/h2c backends
  bool sessionStored = false;            // its TLS session is in the pool for resumption
};

class Worker;

// Per-worker keep-alive pool of upstream connections, keyed by cluster, endpoint and snapshot
// version (a new snapshot starts with an empty pool, so a rotated certificate or CA is never
// served by an old connection). Also keeps TLS sessions for resumption.
class UpstreamPool {
public:
  std::unique_ptr<UpstreamConn> take(const std::string& key);
  void put(std::unique_ptr<UpstreamConn> conn);
  void clear();
  void sweep(std::chrono::steady_clock::time_point now, std::chrono::seconds maxIdle);
  SSL_SESSION* session(const std::string& key) const;
  void storeSession(const std::string& key, SSL* ssl);
  ~UpstreamPool();

private:
  std::unordered_map<std::string, std::vector<std::unique_ptr<UpstreamConn>>> idle_;
  std::unordered_map<std::string, SSL_SESSION*> sessions_;
};

// Told when the worker starts draining (SIGTERM): an HTTP/2 session sends GOAWAY.
class DrainListener {
public:
  virtual ~DrainListener() = default;
  virtual void drain() = 0;
};

class Worker {
public:
  explicit Worker(unsigned id, int accessLogFd = -1);

  // Thread body: runs the event loop until stop().
  void run();
  // From the main thread: adopt `snapshot`, start accepting on `newFds` (key -> listening fd) and
  // stop accepting on keys not in the snapshot.
  void publish(SnapshotConstSharedPtr snapshot, std::map<std::string, int> newFds);
  // Stops accepting; requests in flight go on.
  void stopAccepting();
  // Ends the event loop; connections still open are closed.
  void stop();

  // Worker thread only.
  const SnapshotConstSharedPtr& snapshot() const { return snapshot_; }
  UpstreamPool& pool() { return pool_; }
  Metrics& metrics() { return metrics_; }
  asio::io_context& context() { return ctx_; }
  Deadlines& deadlines() { return deadlines_; }
  uint64_t random() { return rng_(); }
  uint64_t nextRoundRobin() { return rr_++; }
  unsigned id() const { return id_; }
  // Draining: no new connections; responses say `connection: close`, HTTP/2 sessions GOAWAY.
  bool draining() const { return draining_; }
  void addDrainListener(std::weak_ptr<DrainListener> l);
  // Access log: lines are gathered per worker and written whole, at 16 KiB or every 200 ms, so
  // the log costs no system call per request and lines of different workers never interleave.
  bool accessLogOn() const { return accessFd_ >= 0; }
  void accessLog(std::string_view line);
  void flushAccessLog();

private:
  awaitable<void> acceptLoop(std::shared_ptr<tcp::acceptor> acceptor, std::string key);
  void startSweep();
  void closeAcceptors();

  unsigned id_;
  Metrics metrics_;
  // One thread runs it, and only that thread touches its sockets (the main thread only posts to
  // it): no locking around each socket's operations, the scheduler's queue stays locked for posts.
  asio::io_context ctx_{BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO};
  Deadlines deadlines_{ctx_};
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  SnapshotConstSharedPtr snapshot_;
  std::map<std::string, std::shared_ptr<tcp::acceptor>> acceptors_;
  UpstreamPool pool_;
  asio::steady_timer sweepTimer_{ctx_};
  std::mt19937_64 rng_;
  uint64_t rr_ = 0;
  bool draining_ = false;
  std::vector<std::weak_ptr<DrainListener>> drainListeners_;
  int accessFd_ = -1;
  std::string accessBuf_;
  asio::steady_timer accessTimer_{ctx_};
  bool accessTimerArmed_ = false;
};

// Serves one accepted client connection until it closes (proxy.cc).
void serveConnection(Worker& worker, tcp::socket socket, std::string portKey, std::string peer);
// One HTTP/2 stream's request through the HTTP/1.1 request path (h2_frontend.cc calls it).
void serveStream(Worker& worker, std::shared_ptr<Pipe> pipe, std::string portKey, std::string peer);
// An HTTP/2 connection (ALPN h2) after its TLS handshake; returns when it is closed.
awaitable<void> serveHttp2(Worker& worker, Stream stream, std::string portKey, std::string peer);

} // namespace gantry::dataplane
