// TLS streams over loopback TCP (src/dataplane/stream.cc): the thread's OpenSSL error queue is
// not cleared before each call, so an entry left there by something else must not turn a call
// that has to wait into a failure, and a real failure must still report its own cause.
#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <csignal>
#include <ctime>
#include <string>
#include <thread>

#include "dataplane/tls.h"
#include "dataplane/worker.h"
#include "pki/pki.h"

namespace gantry::dataplane {
namespace {

struct Pki {
  int64_t now = std::time(nullptr);
  pki::Issued ca = pki::makeCa("test CA", now - 60, now + 3600);
  pki::Issued otherCa = pki::makeCa("other CA", now - 60, now + 3600);
  pki::Issued server = pki::issue(ca, {"frontend.com", {"frontend.com"}, true, false, now - 60, now + 3600});
};

const Pki& certs() {
  static const Pki p;
  return p;
}

tls::SslCtxPtr serverContext() {
  ir::CertificateKeyPair pair;
  pair.source = "test";
  pair.certPem = certs().server.certPem;
  pair.keyPem = certs().server.keyPem;
  std::string error;
  auto ctx = tls::makeServerContext(pair, error);
  EXPECT_TRUE(ctx) << error;
  return ctx;
}

tls::SslCtxPtr clientContext(const std::string& caPem) {
  ir::UpstreamTls t;
  t.caPems = {caPem};
  t.sni = "frontend.com";
  t.subjectAltNames = {"frontend.com"};
  std::string error;
  auto ctx = tls::makeClientContext(t, error);
  EXPECT_TRUE(ctx) << error;
  return ctx;
}

// Runs coroutine `f` on `ctx` (started by ctx.run).
template <typename F>
void spawn(asio::io_context& ctx, F f) {
  asio::co_spawn(ctx, std::move(f), asio::detached);
}

// Leaves an entry in this thread's error queue, as a failed call elsewhere would.
void leaveStaleError() {
  ERR_raise(ERR_LIB_SSL, SSL_R_BAD_LENGTH);
}

struct Pair {
  asio::io_context ctx{1};
  std::optional<Stream> server;
  std::optional<Stream> client;

  Pair(SSL_CTX* serverCtx, SSL_CTX* clientCtx) {
    tcp::acceptor acceptor(ctx, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    tcp::socket c(ctx);
    c.connect(acceptor.local_endpoint());
    tcp::socket s = acceptor.accept();
    server.emplace(std::move(s), serverCtx, true);
    client.emplace(std::move(c), clientCtx, false);
    SSL_set_tlsext_host_name(client->ssl(), "frontend.com");
  }
};

TEST(StreamTest, AStaleErrorInTheQueueDoesNotFailACallThatHasToWait) {
  auto serverCtx = serverContext();
  auto clientCtx = clientContext(certs().ca.certPem);
  Pair p(serverCtx.get(), clientCtx.get());
  error_code serverEc, clientEc;
  std::string got;
  bool serverDone = false;
  bool clientDone = false;
  spawn(p.ctx, [&]() -> awaitable<void> {
    leaveStaleError(); // the server's first SSL_do_handshake has to wait for the ClientHello
    co_await p.server->handshake(serverEc);
    if (!serverEc) {
      char buf[64];
      leaveStaleError();
      size_t n = co_await p.server->readSome(asio::buffer(buf), serverEc);
      got.assign(buf, n);
      leaveStaleError();
      co_await p.server->writeAll(asio::buffer(std::string_view("pong")), serverEc);
    }
    serverDone = true;
  });
  spawn(p.ctx, [&]() -> awaitable<void> {
    leaveStaleError();
    co_await p.client->handshake(clientEc);
    if (!clientEc) {
      co_await p.client->writeAll(asio::buffer(std::string_view("ping")), clientEc);
      char buf[64];
      leaveStaleError();
      size_t n = co_await p.client->readSome(asio::buffer(buf), clientEc);
      got += "/" + std::string(buf, n);
    }
    clientDone = true;
  });
  p.ctx.run_for(std::chrono::seconds(10));
  ERR_clear_error();
  EXPECT_TRUE(serverDone && clientDone);
  EXPECT_FALSE(serverEc) << serverEc.message();
  EXPECT_FALSE(clientEc) << clientEc.message();
  EXPECT_EQ(got, "ping/pong");
}

// A record that arrives in two pieces: the first SSL_read has to wait for the rest, with an entry
// of someone else's in the queue.
TEST(StreamTest, AStaleErrorDoesNotFailAReadThatHasToWaitForTheRestOfARecord) {
  std::signal(SIGPIPE, SIG_IGN); // (as gantry does) a failing side may write to a closed socket
  auto serverCtx = serverContext();
  asio::io_context ctx{1};
  tcp::acceptor acceptor(ctx, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  const auto port = acceptor.local_endpoint().port();
  std::string clientGot;
  std::thread client([port, &clientGot] {
    // A blocking OpenSSL client on its own thread (and error queue).
    asio::io_context cctx;
    tcp::socket sock(cctx);
    sock.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    SSL_CTX* c = SSL_CTX_new(TLS_client_method());
    SSL* ssl = SSL_new(c);
    SSL_set_fd(ssl, static_cast<int>(sock.native_handle()));
    if (SSL_connect(ssl) == 1) {
      BIO* mem = BIO_new(BIO_s_mem());
      BIO_up_ref(SSL_get_wbio(ssl));
      BIO* fdBio = SSL_get_wbio(ssl);
      SSL_set0_wbio(ssl, mem); // the record is made in memory and sent by hand, split
      SSL_write(ssl, "ping", 4);
      char* data = nullptr;
      const long len = BIO_get_mem_data(mem, &data);
      ::send(sock.native_handle(), data, 3, MSG_NOSIGNAL);
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      ::send(sock.native_handle(), data + 3, static_cast<size_t>(len - 3), MSG_NOSIGNAL);
      SSL_set0_wbio(ssl, fdBio);
      char buf[64];
      const int n = SSL_read(ssl, buf, sizeof buf);
      if (n > 0) {
        clientGot.assign(buf, static_cast<size_t>(n));
      }
    }
    SSL_free(ssl);
    SSL_CTX_free(c);
  });
  std::optional<Stream> server;
  server.emplace(acceptor.accept(), serverCtx.get(), true);
  error_code ec;
  std::string got;
  spawn(ctx, [&]() -> awaitable<void> {
    co_await server->handshake(ec);
    if (!ec) {
      char buf[64];
      size_t n = 0;
      while (!ec && got.size() < 4) {
        leaveStaleError();
        n = co_await server->readSome(asio::buffer(buf), ec);
        got.append(buf, n);
      }
      if (!ec) {
        co_await server->writeAll(asio::buffer(std::string_view("pong")), ec);
      }
    }
  });
  ctx.run_for(std::chrono::seconds(10));
  ERR_clear_error();
  server.reset(); // a client still waiting for "pong" sees the end
  client.join();
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_EQ(got, "ping");
  EXPECT_EQ(clientGot, "pong");
}

TEST(StreamTest, AFailedHandshakeReportsItsOwnCauseOverAStaleError) {
  auto serverCtx = serverContext();
  auto clientCtx = clientContext(certs().otherCa.certPem); // does not trust the server
  Pair p(serverCtx.get(), clientCtx.get());
  error_code serverEc, clientEc;
  int done = 0;
  spawn(p.ctx, [&]() -> awaitable<void> {
    co_await p.server->handshake(serverEc);
    ++done;
  });
  spawn(p.ctx, [&]() -> awaitable<void> {
    leaveStaleError();
    co_await p.client->handshake(clientEc);
    p.client->close(); // as the connection's owner does after a failed handshake
    ++done;
  });
  p.ctx.run_for(std::chrono::seconds(10));
  ERR_clear_error();
  EXPECT_EQ(done, 2);
  ASSERT_TRUE(clientEc);
  EXPECT_EQ(clientEc.category(), asio::error::get_ssl_category());
  EXPECT_NE(clientEc.message().find("certificate verify failed"), std::string::npos) << clientEc.message();
  EXPECT_TRUE(serverEc); // the client went away mid-handshake
}

} // namespace
} // namespace gantry::dataplane
