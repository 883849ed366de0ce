// tls_relay: the floor of the benchmark, not a gateway.
//
// It does only what every gateway in the how-to's scenario must do for a keep-alive request and
// nothing else: decrypt what the client sent, re-encrypt it to the backend over mutual TLS (client
// certificate, CA check, name check, SNI), and the same for the answer. No HTTP parsing, no
// routing, no headers, no timers: each client connection is paired with one backend connection
// and bytes are relayed as they come. One thread, level-triggered epoll, one `recv` per record
// batch (read-ahead, and no read that would only say EAGAIN), one `send` per relayed chunk.
//
// `bench/run.py --only ... floor` runs it beside the gateways, so the table shows how much of a
// gateway's CPU per request is the part no HTTP-aware implementation can avoid on this machine
// (loopback TCP, system calls, OpenSSL's record layer). It handles exactly the benchmark's
// traffic: handshakes are done blocking at accept, writes wait in poll() if a socket is full.
//
// Built as `http_relay` (GANTRY_FLOOR_HTTP; bench/run.py's "floor+http") and given `--http
// CONFIG_DIR --port-offset N`, it also does a gateway's HTTP work on each message with Gantry's own
// functions (http_steps.cc): parse and check the request head, route it, build the upstream head,
// parse the response head, build the client's. That is Gantry's request path without its event
// loop, coroutines, deadlines, pool and logs: what Gantry would cost if those cost nothing.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#ifdef GANTRY_FLOOR_HTTP
#include "http_steps.h"
#endif

namespace {

struct Options {
  std::string tlsListen, tlsBackend, cert, key, clientCert, clientKey, ca, sni;
  std::string plainListen, plainBackend;
  std::string httpConfig; // http_relay only
  int portOffset = 0;
};

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "tls_relay: %s: %s\n", what, std::strerror(errno));
  ERR_print_errors_fp(stderr);
  std::exit(1);
}

sockaddr_in parseAddr(const std::string& hostPort) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  auto colon = hostPort.rfind(':');
  if (colon == std::string::npos || inet_pton(AF_INET, hostPort.substr(0, colon).c_str(), &a.sin_addr) != 1) {
    std::fprintf(stderr, "tls_relay: bad address %s (want IPv4:port)\n", hostPort.c_str());
    std::exit(2);
  }
  a.sin_port = htons(static_cast<uint16_t>(std::atoi(hostPort.c_str() + colon + 1)));
  return a;
}

int listenOn(const std::string& hostPort) {
  sockaddr_in a = parseAddr(hostPort);
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(fd, 1024) != 0) {
    die(hostPort.c_str());
  }
  return fd;
}

void setBlocking(int fd, bool blocking) {
  int flags = fcntl(fd, F_GETFL);
  fcntl(fd, F_SETFL, blocking ? (flags & ~O_NONBLOCK) : (flags | O_NONBLOCK));
}

int connectTo(const sockaddr_in& a) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return -1;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

// One side of a pair: a socket, with TLS or without.
struct End {
  int fd = -1;
#ifdef GANTRY_FLOOR_HTTP
  std::string in; // --http: bytes of messages not complete yet
#endif
  SSL* ssl = nullptr;
  struct Pair* pair = nullptr;
  End* peer = nullptr;
};

struct Pair {
  End client, backend;
  bool tls = false;
#ifdef GANTRY_FLOOR_HTTP
  gantry::bench::HttpExchange http;
#endif
};

#ifdef GANTRY_FLOOR_HTTP
const gantry::bench::HttpConfig* httpConfig = nullptr; // --http
#endif

// Writes all of `len` bytes to `e`, waiting in poll() while the socket is full.
bool writeAll(End& e, const char* data, size_t len) {
  while (len > 0) {
    ssize_t n;
    if (e.ssl != nullptr) {
      int r = SSL_write(e.ssl, data, static_cast<int>(len));
      if (r <= 0) {
        int err = SSL_get_error(e.ssl, r);
        if (err != SSL_ERROR_WANT_WRITE && err != SSL_ERROR_WANT_READ) {
          return false;
        }
        pollfd p{e.fd, static_cast<short>(err == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN), 0};
        poll(&p, 1, 1000);
        continue;
      }
      n = r;
    } else {
      n = send(e.fd, data, len, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno != EAGAIN) {
          return false;
        }
        pollfd p{e.fd, POLLOUT, 0};
        poll(&p, 1, 1000);
        continue;
      }
    }
    data += n;
    len -= static_cast<size_t>(n);
  }
  return true;
}

// Relays what `from` has to its peer. False when either side is done.
bool relay(End& from, std::vector<char>& buf) {
  while (true) {
    ssize_t n;
    if (from.ssl != nullptr) {
      int r = SSL_read(from.ssl, buf.data(), static_cast<int>(buf.size()));
      if (r <= 0) {
        return SSL_get_error(from.ssl, r) == SSL_ERROR_WANT_READ;
      }
      n = r;
    } else {
      n = recv(from.fd, buf.data(), buf.size(), 0);
      if (n <= 0) {
        return n < 0 && errno == EAGAIN;
      }
    }
#ifdef GANTRY_FLOOR_HTTP
    if (httpConfig != nullptr) {
      // The HTTP work: whole messages only, rewritten by Gantry's functions.
      static std::string out;
      out.clear();
      from.in.append(buf.data(), static_cast<size_t>(n));
      Pair& pair = *from.pair;
      pair.http.tls = pair.tls;
      const bool ok = &from == &pair.client ? gantry::bench::forwardRequests(*httpConfig, pair.http, from.in, out)
                                            : gantry::bench::forwardResponses(pair.http, from.in, out);
      if (!ok || (!out.empty() && !writeAll(*from.peer, out.data(), out.size()))) {
        return false;
      }
    } else
#endif
    if (!writeAll(*from.peer, buf.data(), static_cast<size_t>(n))) {
      return false;
    }
    // Read again only if OpenSSL holds more already: a read that finds the socket empty would
    // cost a system call for nothing; level-triggered epoll reports what arrives later.
    if (from.ssl == nullptr ? static_cast<size_t>(n) < buf.size() : !SSL_has_pending(from.ssl)) {
      return true;
    }
  }
}

void closeEnd(End& e) {
  if (e.ssl != nullptr) {
    SSL_free(e.ssl);
  }
  if (e.fd >= 0) {
    close(e.fd);
  }
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--listen") o.tlsListen = v;
    else if (k == "--backend") o.tlsBackend = v;
    else if (k == "--cert") o.cert = v;
    else if (k == "--key") o.key = v;
    else if (k == "--client-cert") o.clientCert = v;
    else if (k == "--client-key") o.clientKey = v;
    else if (k == "--ca") o.ca = v;
    else if (k == "--sni") o.sni = v;
    else if (k == "--plain-listen") o.plainListen = v;
    else if (k == "--plain-backend") o.plainBackend = v;
#ifdef GANTRY_FLOOR_HTTP
    else if (k == "--http") o.httpConfig = v;
    else if (k == "--port-offset") o.portOffset = std::atoi(v.c_str());
#endif
    else {
      std::fprintf(stderr, "tls_relay: unknown option %s\n", k.c_str());
      return 2;
    }
  }
  if (o.tlsListen.empty() || o.tlsBackend.empty() || o.cert.empty() || o.key.empty() || o.clientCert.empty() ||
      o.clientKey.empty() || o.ca.empty() || o.sni.empty()) {
    std::fprintf(stderr,
                 "usage: tls_relay --listen IP:PORT --backend IP:PORT --cert F --key F --client-cert F "
                 "--client-key F --ca F --sni NAME [--plain-listen IP:PORT --plain-backend IP:PORT] "
                 "[--http CONFIG_DIR --port-offset N]\n");
    return 2;
  }
#ifdef GANTRY_FLOOR_HTTP
  std::shared_ptr<const gantry::bench::HttpConfig> http;
  if (!o.httpConfig.empty()) {
    std::string error;
    http = gantry::bench::loadHttpConfig(o.httpConfig, o.portOffset, error);
    if (!http) {
      std::fprintf(stderr, "tls_relay: %s\n", error.c_str());
      return 2;
    }
    httpConfig = http.get();
  }
#endif
  signal(SIGPIPE, SIG_IGN);

  SSL_CTX* server = SSL_CTX_new(TLS_server_method());
  if (SSL_CTX_use_certificate_chain_file(server, o.cert.c_str()) != 1 ||
      SSL_CTX_use_PrivateKey_file(server, o.key.c_str(), SSL_FILETYPE_PEM) != 1) {
    die("frontend certificate");
  }
  SSL_CTX_set_read_ahead(server, 1);
  SSL_CTX* client = SSL_CTX_new(TLS_client_method());
  if (SSL_CTX_use_certificate_chain_file(client, o.clientCert.c_str()) != 1 ||
      SSL_CTX_use_PrivateKey_file(client, o.clientKey.c_str(), SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_load_verify_locations(client, o.ca.c_str(), nullptr) != 1) {
    die("client certificate or CA");
  }
  SSL_CTX_set_verify(client, SSL_VERIFY_PEER, nullptr);
  SSL_CTX_set_read_ahead(client, 1);

  const sockaddr_in tlsBackend = parseAddr(o.tlsBackend);
  sockaddr_in plainBackend{};
  int ep = epoll_create1(EPOLL_CLOEXEC);
  int tlsListener = listenOn(o.tlsListen);
  int plainListener = -1;
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = &tlsListener;
  epoll_ctl(ep, EPOLL_CTL_ADD, tlsListener, &ev);
  if (!o.plainListen.empty()) {
    plainBackend = parseAddr(o.plainBackend);
    plainListener = listenOn(o.plainListen);
    ev.data.ptr = &plainListener;
    epoll_ctl(ep, EPOLL_CTL_ADD, plainListener, &ev);
  }

  std::vector<char> buf(64 * 1024);
  std::vector<epoll_event> events(256);
  auto accept1 = [&](int listener) {
    int fd = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    auto* p = new Pair;
    p->tls = listener == tlsListener;
    p->client.fd = fd;
    p->backend.fd = connectTo(p->tls ? tlsBackend : plainBackend);
    bool ok = p->backend.fd >= 0;
    if (ok && p->tls) {
      // Handshakes blocking: the benchmark's rows that use this relay are keep-alive ones.
      p->client.ssl = SSL_new(server);
      SSL_set_fd(p->client.ssl, fd);
      p->backend.ssl = SSL_new(client);
      SSL_set_fd(p->backend.ssl, p->backend.fd);
      SSL_set_tlsext_host_name(p->backend.ssl, o.sni.c_str());  // RFC 6066 section 3: SNI
      SSL_set1_host(p->backend.ssl, o.sni.c_str());              // RFC 6125: the name in the SAN
      ok = SSL_accept(p->client.ssl) == 1 && SSL_connect(p->backend.ssl) == 1;
    }
    if (!ok) {
      ERR_clear_error();
      closeEnd(p->client);
      closeEnd(p->backend);
      delete p;
      return;
    }
    setBlocking(p->client.fd, false);
    setBlocking(p->backend.fd, false);
    for (End* e : {&p->client, &p->backend}) {
      e->pair = p;
      e->peer = e == &p->client ? &p->backend : &p->client;
      epoll_event add{};
      add.events = EPOLLIN;
      add.data.ptr = e;
      epoll_ctl(ep, EPOLL_CTL_ADD, e->fd, &add);
    }
  };

  while (true) {
    int n = epoll_wait(ep, events.data(), static_cast<int>(events.size()), -1);
    std::vector<Pair*> dead;
    for (int i = 0; i < n; ++i) {
      void* tag = events[i].data.ptr;
      if (tag == &tlsListener || tag == &plainListener) {
        accept1(*static_cast<int*>(tag));
        continue;
      }
      auto* e = static_cast<End*>(tag);
      if (e->pair == nullptr) {
        continue;  // closed earlier in this batch
      }
      if (!relay(*e, buf)) {
        Pair* p = e->pair;
        for (End* x : {&p->client, &p->backend}) {
          epoll_ctl(ep, EPOLL_CTL_DEL, x->fd, nullptr);
          x->pair = nullptr;
        }
        dead.push_back(p);
      }
    }
    for (Pair* p : dead) {
      closeEnd(p->client);
      closeEnd(p->backend);
      delete p;
    }
    if (ERR_peek_error() != 0) {
      ERR_clear_error();
    }
  }
}
