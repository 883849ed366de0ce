#include <openssl/err.h>
#include <openssl/ssl.h>

#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include <boost/asio/async_result.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/version.hpp>

#if BOOST_VERSION == 107400 && defined(BOOST_ASIO_HAS_EPOLL)
#include <boost/asio/detail/reactor.hpp>
#include <boost/asio/detail/reactor_op.hpp>
#define GANTRY_DRAINING_READ 1
#endif

#include "dataplane/worker.h"

namespace gantry::dataplane {

namespace {

// The BIO under every TLS stream: reads are served from Stream::TlsIo (filled by Asio), writes go
// straight to the socket with send(2).
int bioRead(BIO* b, char* out, int len) {
  auto* io = static_cast<Stream::TlsIo*>(BIO_get_data(b));
  BIO_clear_retry_flags(b);
  size_t want = static_cast<size_t>(len);
  size_t n = 0;
  if (io->smallLen > io->smallPos) {
    n = std::min(want, io->smallLen - io->smallPos);
    std::memcpy(out, io->small + io->smallPos, n);
    io->smallPos += n;
    if (io->smallPos == io->smallLen) {
      io->smallPos = io->smallLen = 0;
    }
  }
  if (n < want && io->in.size() > 0) {
    size_t m = std::min(want - n, io->in.size());
    std::memcpy(out + n, io->in.view().data(), m);
    io->in.consume(m);
    n += m;
    if (io->in.size() == 0) {
      io->in.release(); // the block goes back to the worker's free list
    }
  }
  if (n > 0) {
    return static_cast<int>(n);
  }
  if (io->eof) {
    return 0;
  }
  if (io->readErrno != 0) {
    errno = io->readErrno;
    return -1;
  }
  BIO_set_retry_read(b);
  return -1;
}

int bioWrite(BIO* b, const char* data, int len) {
  auto* io = static_cast<Stream::TlsIo*>(BIO_get_data(b));
  BIO_clear_retry_flags(b);
  size_t want = static_cast<size_t>(len);
  size_t sent = 0;
  if (io->direct && io->out.size() == 0) {
    ssize_t n = ::send(io->fd, data, want, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      return -1; // errno tells OpenSSL (SSL_ERROR_SYSCALL)
    }
    sent = n > 0 ? static_cast<size_t>(n) : 0;
  }
  if (sent < want) {
    // Held back (see Stream::TlsIo); Stream::flush sends it, waiting for the socket if need be.
    auto room = io->out.prepare(want - sent);
    std::memcpy(room.data(), data + sent, want - sent);
    io->out.commit(want - sent);
  }
  return len;
}

long bioCtrl(BIO*, int cmd, long, void*) {
  return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

int bioCreate(BIO* b) {
  BIO_set_init(b, 1);
  return 1;
}

int bioDestroy(BIO* b) {
  BIO_set_data(b, nullptr); // the Stream owns its TlsIo
  return 1;
}

BIO_METHOD* tlsBioMethod() {
  static BIO_METHOD* method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "gantry-socket");
    BIO_meth_set_read(m, bioRead);
    BIO_meth_set_write(m, bioWrite);
    BIO_meth_set_ctrl(m, bioCtrl);
    BIO_meth_set_create(m, bioCreate);
    BIO_meth_set_destroy(m, bioDestroy);
    return m;
  }();
  return method;
}

#ifdef GANTRY_DRAINING_READ
// A socket read through Asio's reactor that tells the reactor when it drained the socket.
//
// Asio 1.74 tries a read before it waits on the descriptor, every time, unless the last read
// reported "exhausted" (done_and_exhausted), which its own read op does only at EOF. So every
// wait for a peer that has not answered yet cost a recv(2) that returns EAGAIN: two per proxied
// keep-alive request, one per HTTP/2 request. A read shorter than its buffer took everything the
// socket had; reported as exhausted, the reactor skips the speculative read until the next
// readiness edge (later Asio versions do the same in their own read op; nginx keeps a "ready"
// flag per descriptor for this). The op follows Asio's own reactor ops: the reactor performs it
// (speculatively, or on the edge) and completes it through the scheduler.
namespace detail = boost::asio::detail;

template <typename Handler>
class DrainingRead : public detail::reactor_op {
public:
  DrainingRead(int fd, asio::mutable_buffer buf, Handler h)
      : detail::reactor_op(error_code(), &DrainingRead::perform, &DrainingRead::complete), fd_(fd), buf_(buf),
        handler_(std::move(h)) {}

private:
  static status perform(detail::reactor_op* base) {
    auto* o = static_cast<DrainingRead*>(base);
    while (true) {
      ssize_t n = ::recv(o->fd_, o->buf_.data(), o->buf_.size(), 0);
      if (n >= 0) {
        o->bytes_transferred_ = static_cast<size_t>(n);
        if (n == 0) {
          o->ec_ = asio::error::eof;
        }
        return static_cast<size_t>(n) < o->buf_.size() ? done_and_exhausted : done;
      }
      if (errno == EINTR) {
        continue;
      }
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        return not_done;
      }
      o->ec_ = error_code(errno, asio::error::get_system_category());
      return done;
    }
  }
  // owner == nullptr: the io_context is being destroyed with the op queued; free it only.
  static void complete(void* owner, detail::scheduler_operation* base, const error_code&, std::size_t) {
    auto* o = static_cast<DrainingRead*>(base);
    Handler handler(std::move(o->handler_));
    const error_code ec = o->ec_;
    const size_t n = o->bytes_transferred_;
    delete o;
    if (owner != nullptr) {
      handler(ec, n);
    }
  }

  int fd_;
  asio::mutable_buffer buf_;
  Handler handler_;
};

// Waits until the socket is readable, through the same reactor queue as DrainingRead: when the
// last read drained the socket the reactor queues it without a system call and runs it on the
// next edge (async_wait would re-arm the descriptor with epoll_ctl every time). Otherwise it
// completes at once and the read that follows finds out.
template <typename Handler>
class ReadinessWait : public detail::reactor_op {
public:
  explicit ReadinessWait(Handler h)
      : detail::reactor_op(error_code(), &ReadinessWait::perform, &ReadinessWait::complete), handler_(std::move(h)) {}

private:
  static status perform(detail::reactor_op*) { return done; }
  static void complete(void* owner, detail::scheduler_operation* base, const error_code&, std::size_t) {
    auto* o = static_cast<ReadinessWait*>(base);
    Handler handler(std::move(o->handler_));
    const error_code ec = o->ec_;
    delete o;
    if (owner != nullptr) {
      handler(ec);
    }
  }

  Handler handler_;
};

// The reactor's per-descriptor state of a socket (protected in basic_socket; a pointer to the
// member taken through a derived class reaches it without any cast).
struct SocketInternals : tcp::socket {
  static detail::reactor::per_descriptor_data& of(tcp::socket& s) {
    return (s.*(&SocketInternals::impl_)).get_implementation().reactor_data_;
  }
};

// Queues `op` on the socket's read queue; the reactor tries it at once unless the socket is
// known to be drained. `cache` keeps the reactor for the stream's next reads: finding it is a
// service lookup under the io_context's mutex, by type name.
void startRead(tcp::socket& socket, void*& cache, detail::reactor_op* op) {
  if (cache == nullptr) {
    cache = &asio::use_service<detail::reactor>(asio::query(socket.get_executor(), asio::execution::context));
  }
  auto& reactor = *static_cast<detail::reactor*>(cache);
  reactor.start_op(detail::reactor::read_op, socket.native_handle(), SocketInternals::of(socket), op,
                   /*is_continuation=*/true, /*allow_speculative=*/true);
}

// One read of the socket (the stream's only way to read it).
awaitable<size_t> readSocket(tcp::socket& socket, void*& cache, asio::mutable_buffer buf, error_code& ec) {
  auto token = asio::redirect_error(use_awaitable, ec);
  return asio::async_initiate<decltype(token), void(error_code, size_t)>(
      [&socket, &cache, buf](auto handler) {
        using Op = DrainingRead<std::decay_t<decltype(handler)>>;
        startRead(socket, cache, new Op(static_cast<int>(socket.native_handle()), buf, std::move(handler)));
      },
      token);
}

// Waits until the socket has something to read.
awaitable<void> waitSocketReadable(tcp::socket& socket, void*& cache, error_code& ec) {
  auto token = asio::redirect_error(use_awaitable, ec);
  return asio::async_initiate<decltype(token), void(error_code)>(
      [&socket, &cache](auto handler) {
        startRead(socket, cache, new ReadinessWait<std::decay_t<decltype(handler)>>(std::move(handler)));
      },
      token);
}
#else
awaitable<size_t> readSocket(tcp::socket& socket, void*&, asio::mutable_buffer buf, error_code& ec) {
  return socket.async_read_some(buf, asio::redirect_error(use_awaitable, ec));
}

awaitable<void> waitSocketReadable(tcp::socket& socket, void*&, error_code& ec) {
  return socket.async_wait(tcp::socket::wait_read, asio::redirect_error(use_awaitable, ec));
}
#endif

} // namespace

Stream::Stream(tcp::socket s) : socket_(std::move(s)) {
  // Plain TCP: reads go through the reactor ops above, which need a non-blocking socket.
  error_code ec;
  socket_->non_blocking(true, ec);
}

Stream::Stream(tcp::socket s, SSL_CTX* ctx, bool server)
    : socket_(std::move(s)), io_(std::make_unique<TlsIo>()), ssl_(SSL_new(ctx)) {
  error_code ec;
  socket_->non_blocking(true, ec);
  io_->fd = static_cast<int>(socket_->native_handle());
  BIO* bio = BIO_new(tlsBioMethod());
  BIO_set_data(bio, io_.get()); // stable: the Stream may move, its TlsIo does not
  SSL_set_bio(ssl_.get(), bio, bio);
  SSL_set_mode(ssl_.get(), SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  // Read as much as the socket has in one read(2), not a record header and then its body.
  SSL_set_read_ahead(ssl_.get(), 1);
  if (server) {
    SSL_set_accept_state(ssl_.get());
  } else {
    SSL_set_connect_state(ssl_.get());
  }
}

namespace {

// What an OpenSSL call's failure (`err`, from SSL_get_error) means for the caller: wait
// (SSL_ERROR_WANT_READ/WRITE), or 0 with an error in `ec`.
int classify(int err, error_code& ec) {
  if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
    return err;
  }
  if (err == SSL_ERROR_ZERO_RETURN) {
    ec = asio::error::eof; // the peer's close_notify
  } else if (err == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
    // EOF without close_notify (or a socket error): what ssl::stream reports as truncated.
    ec = errno != 0 && errno != EAGAIN ? error_code(errno, asio::error::get_system_category())
                                      : error_code(asio::ssl::error::stream_truncated);
  } else {
    unsigned long e = ERR_peek_last_error();
    ec = error_code(static_cast<int>(e != 0 ? e : static_cast<unsigned long>(err)),
                    asio::error::get_ssl_category());
  }
  return 0;
}

// Runs `call`, one OpenSSL I/O call on `ssl` (SSL_read, SSL_write, SSL_do_handshake). Returns its
// result when positive; otherwise 0, with `want` set to SSL_ERROR_WANT_READ or _WANT_WRITE, or to
// 0 with the error in `ec`.
//
// SSL_get_error takes any entry in the thread's error queue for this call's failure, so the queue
// must be empty before the call; making sure of that costs ~100 instructions (the thread's error
// state, OpenSSL's init check), four times a proxied request. Calls that succeed do not look at
// the queue, so it is looked at only after a failure: one that the queue made an error (it may
// hold entries older than the call) is run once more on an emptied queue. That is safe for these
// calls: one that failed wrote and consumed nothing, and the same call is what OpenSSL asks for
// after a WANT; after a real failure the SSL object is in its error state and fails again at once,
// and the first cause is the one reported.
template <typename Call>
int callSsl(SSL* ssl, Call call, int& want, error_code& ec) {
  errno = 0;
  int r = call();
  if (r > 0) {
    return r;
  }
  want = SSL_get_error(ssl, r);
  if ((want != SSL_ERROR_SSL && want != SSL_ERROR_SYSCALL) || ERR_peek_error() == 0) {
    want = classify(want, ec); // (the queue played no part)
    return 0;
  }
  const unsigned long cause = ERR_peek_last_error();
  const int causeErrno = errno;
  ERR_clear_error();
  errno = 0;
  r = call();
  if (r > 0) {
    want = 0;
    return r;
  }
  const int err = SSL_get_error(ssl, r);
  const bool saysLess = err == SSL_ERROR_SYSCALL && ERR_peek_error() == 0 && errno == 0;
  want = classify(err, ec);
  if (want == 0 && saysLess && (cause != 0 || causeErrno != 0)) {
    // An SSL object in its error state fails again without a new entry: report the first cause.
    ec = cause != 0 ? error_code(static_cast<int>(cause), asio::error::get_ssl_category())
                    : error_code(causeErrno, asio::error::get_system_category());
  }
  return 0;
}

} // namespace

awaitable<bool> Stream::waitFor(int want, error_code& ec) {
  if (want == SSL_ERROR_WANT_READ) {
    co_return co_await fill(false, ec);
  }
  co_await socket_->async_wait(tcp::socket::wait_write, asio::redirect_error(use_awaitable, ec));
  co_return !ec;
}

bool Stream::sendHeldBack(error_code& ec) {
  Buffer& out = io_->out;
  while (out.size() > 0) {
    ssize_t n = ::send(io_->fd, out.view().data(), out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      out.consume(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      return false;
    }
    ec = error_code(n < 0 ? errno : EPIPE, asio::error::get_system_category());
    return true;
  }
  out.release();
  return true;
}

awaitable<void> Stream::flush(error_code& ec) {
  if (!io_) {
    co_return;
  }
  while (!sendHeldBack(ec)) {
    io_->flushing = true;
    co_await socket_->async_wait(tcp::socket::wait_write, asio::redirect_error(use_awaitable, ec));
    io_->flushing = false;
    if (ec) {
      co_return;
    }
  }
}

bool Stream::fillFirst(error_code& ec) {
  // Never wait for the peer while holding back what it may be waiting for. What cannot go out at
  // once is left to the flush in progress, or to the next write; only a handshake flight is
  // waited for (see TlsIo).
  return io_->out.size() > 0 && !io_->flushing && !sendHeldBack(ec) && SSL_in_init(ssl_.get()) != 0;
}

asio::mutable_buffer Stream::fillBuffer(bool idle) {
  if (idle && io_->smallLen == 0 && io_->in.size() == 0) {
    return asio::buffer(io_->small, sizeof io_->small);
  }
  return io_->in.prepare(16 * 1024);
}

bool Stream::fillDone(asio::mutable_buffer into, size_t n, error_code& ec) {
  if (into.data() == io_->small) {
    if (!ec) {
      io_->smallPos = 0;
      io_->smallLen = n;
    }
  } else if (!ec) {
    io_->in.commit(n);
  } else if (io_->in.size() == 0) {
    io_->in.release();
  }
  if (ec == asio::error::eof || (!ec && n == 0)) {
    ec = {};
    io_->eof = true; // OpenSSL sees the end through the BIO and reports it its way
    return true;
  }
  if (ec) {
    if (ec != asio::error::operation_aborted && ec.category() == asio::error::get_system_category()) {
      io_->readErrno = ec.value();
    }
    return false;
  }
  return true;
}

awaitable<bool> Stream::fill(bool idle, error_code& ec) {
  if (fillFirst(ec)) {
    co_await flush(ec);
  }
  if (ec) {
    io_->readErrno = ec.value();
    co_return false;
  }
  const auto into = fillBuffer(idle);
  const size_t n = co_await readSocket(*socket_, reactor_, into, ec);
  co_return fillDone(into, n, ec);
}

awaitable<void> Stream::waitReadable(error_code& ec) {
  if (pipe_) {
    return pipe_->waitReadable(ec);
  }
  if (!ssl_) {
    return waitSocketReadable(*socket_, reactor_, ec);
  }
  return waitTlsReadable(ec);
}

awaitable<void> Stream::waitTlsReadable(error_code& ec) {
  if (SSL_has_pending(ssl_.get()) != 0 || hasBufferedInput() || io_->eof) {
    co_return; // decrypted or buffered bytes (or the end) are there for readSome
  }
  // fill(true), its socket read awaited here rather than in a coroutine of its own.
  if (fillFirst(ec)) {
    co_await flush(ec);
  }
  if (ec) {
    io_->readErrno = ec.value();
    co_return;
  }
  const auto into = fillBuffer(true);
  const size_t n = co_await readSocket(*socket_, reactor_, into, ec);
  fillDone(into, n, ec);
}

awaitable<size_t> Stream::readSome(asio::mutable_buffer b, error_code& ec) {
  if (pipe_) {
    return pipe_->read(b, ec);
  }
  if (!ssl_) {
    return readSocket(*socket_, reactor_, b, ec);
  }
  return readTls(b, ec);
}

awaitable<size_t> Stream::readTls(asio::mutable_buffer b, error_code& ec) {
  while (true) {
    if (SSL_has_pending(ssl_.get()) == 0 && !hasBufferedInput() && !io_->eof && io_->readErrno == 0 &&
        SSL_in_init(ssl_.get()) == 0) {
      // Nothing to decrypt, in OpenSSL or in our buffers: SSL_read could only ask for more bytes,
      // and costs about a thousand instructions to say so. Read the socket first (fill(false),
      // its socket read awaited here rather than in a coroutine of its own).
      if (fillFirst(ec)) {
        co_await flush(ec);
      }
      if (ec) {
        io_->readErrno = ec.value();
        co_return 0;
      }
      const auto into = fillBuffer(false);
      const size_t got = co_await readSocket(*socket_, reactor_, into, ec);
      if (!fillDone(into, got, ec)) {
        co_return 0;
      }
      continue;
    }
    int want = 0;
    const int n = callSsl(
        ssl_.get(),
        [&] { return SSL_read(ssl_.get(), b.data(), static_cast<int>(std::min<size_t>(b.size(), INT32_MAX))); },
        want, ec);
    if (n > 0) {
      co_return static_cast<size_t>(n);
    }
    if (want == 0 || !co_await waitFor(want, ec)) {
      co_return 0;
    }
  }
}

awaitable<void> Stream::writeAll(asio::const_buffer buf, error_code& ec, bool last) {
  if (pipe_) {
    return pipe_->write(buf, ec);
  }
  return writeOwn(buf, ec, last);
}

awaitable<void> Stream::writeOwn(asio::const_buffer buf, error_code& ec, bool last) {
  if (!ssl_) {
    co_await asio::async_write(*socket_, buf, asio::redirect_error(use_awaitable, ec));
    co_return;
  }
  const char* p = static_cast<const char*>(buf.data());
  size_t left = buf.size();
  while (left > 0) {
    // (64 KiB at a time: what is held back when the socket is full stays bounded.)
    const size_t chunk = std::min<size_t>(left, 64 * 1024);
    const bool closing = last && chunk == left;
    io_->direct = !closing; // the last record waits for the close_notify behind it
    int want = 0;
    const int n = callSsl(ssl_.get(), [&] { return SSL_write(ssl_.get(), p, static_cast<int>(chunk)); }, want, ec);
    io_->direct = false;
    if (n > 0) {
      p += n;
      left -= static_cast<size_t>(n);
      if (closing && left == 0) {
        if (SSL_shutdown(ssl_.get()) < 0) {
          ERR_clear_error();
        }
      }
      if (io_->out.size() > 0 && !sendHeldBack(ec)) {
        co_await flush(ec);
      }
      if (ec) {
        co_return;
      }
      continue;
    }
    if (want == SSL_ERROR_WANT_READ) {
      // A write that needs a read first (TLS 1.3 key update): wait only; a read of ours may be
      // in progress beside this write (tunnels) and owns the socket's input.
      co_await socket_->async_wait(tcp::socket::wait_read, asio::redirect_error(use_awaitable, ec));
      if (ec) {
        co_return;
      }
      continue;
    }
    if (want == 0 || !co_await waitFor(want, ec)) {
      co_return;
    }
  }
}

awaitable<void> Stream::handshake(error_code& ec) {
  while (true) {
    int want = 0;
    if (callSsl(ssl_.get(), [&] { return SSL_do_handshake(ssl_.get()); }, want, ec) > 0) {
      co_return;
    }
    if (want == 0 || !co_await waitFor(want, ec)) {
      co_return;
    }
  }
}

awaitable<void> Stream::shutdown(bool halfClose) {
  if (pipe_) {
    pipe_->shutdown();
    co_return;
  }
  error_code ec;
  if (ssl_ && !startShutdown()) {
    co_await flush(ec);
  }
  if (halfClose) {
    socket_->shutdown(tcp::socket::shutdown_send, ec);
  }
}

bool Stream::startShutdown() {
  if (!ssl_) {
    return true;
  }
  // RFC 8446 section 6.1: close_notify before closing. Without it a client sees a truncated
  // stream, and OpenSSL clients drop the session (no resumption next time). We do not wait for
  // the peer's close_notify: the connection is ours to close. (Our BIO takes every record, so
  // SSL_shutdown does not ask to wait; the sending may.)
  if ((SSL_get_shutdown(ssl_.get()) & SSL_SENT_SHUTDOWN) == 0 && SSL_shutdown(ssl_.get()) < 0) {
    ERR_clear_error();
  }
  error_code ec;
  return sendHeldBack(ec);
}

void Stream::close() {
  if (pipe_) {
    pipe_->close();
    return;
  }
  if (ssl_) {
    // Closing without a close_notify exchange is deliberate here (a pooled backend connection we
    // drop, a timeout): tell OpenSSL so, or it marks the session not resumable when the SSL object
    // is freed, and the next handshake could not resume it.
    SSL_set_shutdown(ssl_.get(), SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
  }
  error_code ec;
  socket_->close(ec);
}

} // namespace gantry::dataplane
