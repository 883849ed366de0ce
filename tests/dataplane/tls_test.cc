// Server contexts against an OpenSSL client over an in-memory BIO pair: session resumption across
// contexts rebuilt for a new snapshot, and not across client-certificate validations.
#include "dataplane/tls.h"

#include <gtest/gtest.h>
#include <openssl/err.h>

#include <ctime>
#include <string_view>

#include "pki/pki.h"

namespace gantry::dataplane::tls {
namespace {

struct SslFree {
  void operator()(SSL* s) const { SSL_free(s); }
};
struct SessionFree {
  void operator()(SSL_SESSION* s) const { SSL_SESSION_free(s); }
};
using SslPtr = std::unique_ptr<SSL, SslFree>;
using SessionPtr = std::unique_ptr<SSL_SESSION, SessionFree>;

struct Pki {
  int64_t now = std::time(nullptr);
  pki::Issued ca = pki::makeCa("test CA", now - 60, now + 3600);
  pki::Issued otherCa = pki::makeCa("other CA", now - 60, now + 3600);
  pki::Issued server = pki::issue(ca, {"frontend.com", {"frontend.com"}, true, false, now - 60, now + 3600});
  pki::Issued client = pki::issue(ca, {"client", {}, false, true, now - 60, now + 3600});
  pki::Issued otherClient = pki::issue(otherCa, {"client", {}, false, true, now - 60, now + 3600});
};

const Pki& certs() {
  static const Pki p;
  return p;
}

SslCtxPtr server(const std::vector<std::string>& clientCas = {}) {
  ir::CertificateKeyPair pair;
  pair.source = "test";
  pair.certPem = certs().server.certPem;
  pair.keyPem = certs().server.keyPem;
  std::string error;
  SslCtxPtr ctx = makeServerContext(pair, error);
  EXPECT_TRUE(ctx) << error;
  if (ctx && !clientCas.empty()) {
    ir::Listener::ClientValidation validation;
    validation.caPems = clientCas;
    EXPECT_TRUE(configureClientValidation(ctx.get(), validation, error)) << error;
  }
  return ctx;
}

SslCtxPtr client(const pki::Issued* identity, int maxVersion) {
  SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()));
  SSL_CTX_set_max_proto_version(ctx.get(), maxVersion);
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);
  if (identity != nullptr) {
    BIO* bio = BIO_new_mem_buf(identity->certPem.data(), static_cast<int>(identity->certPem.size()));
    X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
    BIO_free(bio);
    bio = BIO_new_mem_buf(identity->keyPem.data(), static_cast<int>(identity->keyPem.size()));
    EVP_PKEY* key = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
    BIO_free(bio);
    EXPECT_EQ(SSL_CTX_use_certificate(ctx.get(), cert), 1);
    EXPECT_EQ(SSL_CTX_use_PrivateKey(ctx.get(), key), 1);
    X509_free(cert);
    EVP_PKEY_free(key);
  }
  return ctx;
}

struct Outcome {
  bool connected = false;
  bool resumed = false;
  SessionPtr session;
};

// One connection: handshake, one byte from the server (a TLS 1.3 ticket comes before it), then
// the client's session.
Outcome connect(SSL_CTX* serverCtx, SSL_CTX* clientCtx, SSL_SESSION* offer) {
  SslPtr s(SSL_new(serverCtx));
  SslPtr c(SSL_new(clientCtx));
  BIO* sb = nullptr;
  BIO* cb = nullptr;
  BIO_new_bio_pair(&sb, 0, &cb, 0);
  SSL_set_bio(s.get(), sb, sb);
  SSL_set_bio(c.get(), cb, cb);
  SSL_set_accept_state(s.get());
  SSL_set_connect_state(c.get());
  SSL_set_tlsext_host_name(c.get(), "frontend.com");
  if (offer != nullptr) {
    SSL_set_session(c.get(), offer);
  }
  Outcome out;
  for (int i = 0; i < 20; ++i) {
    const int rc = SSL_do_handshake(c.get());
    const int rs = SSL_do_handshake(s.get());
    if (rc == 1 && rs == 1) {
      out.connected = true;
      break;
    }
  }
  ERR_clear_error();
  if (!out.connected) {
    return out;
  }
  char byte = 'x';
  EXPECT_EQ(SSL_write(s.get(), &byte, 1), 1);
  EXPECT_EQ(SSL_read(c.get(), &byte, 1), 1);
  out.resumed = SSL_session_reused(c.get()) == 1;
  out.session.reset(SSL_get1_session(c.get()));
  // Closed as a client would: a session of a connection freed without close_notify is marked
  // not resumable.
  SSL_shutdown(c.get());
  SSL_shutdown(s.get());
  return out;
}

class ResumptionTest : public ::testing::TestWithParam<int> {};

TEST_P(ResumptionTest, TicketsResumeOnAContextBuiltForALaterSnapshot) {
  auto clientCtx = client(nullptr, GetParam());
  auto before = server();
  Outcome first = connect(before.get(), clientCtx.get(), nullptr);
  ASSERT_TRUE(first.connected);
  EXPECT_FALSE(first.resumed);
  auto after = server(); // a reload builds every context anew
  Outcome second = connect(after.get(), clientCtx.get(), first.session.get());
  ASSERT_TRUE(second.connected);
  EXPECT_TRUE(second.resumed);
  // TLS 1.3 clients use a ticket once (RFC 8446 appendix C.4): a resumed connection brings a new
  // one, or the client's next connection would be a full handshake. TLS 1.2 keeps its ticket
  // while the key that sealed it seals on.
  const unsigned char* offered = nullptr;
  const unsigned char* received = nullptr;
  size_t offeredLength = 0;
  size_t receivedLength = 0;
  SSL_SESSION_get0_ticket(first.session.get(), &offered, &offeredLength);
  SSL_SESSION_get0_ticket(second.session.get(), &received, &receivedLength);
  ASSERT_GT(receivedLength, 16u);
  const bool fresh = std::string_view(reinterpret_cast<const char*>(offered), offeredLength) !=
                     std::string_view(reinterpret_cast<const char*>(received), receivedLength);
  EXPECT_EQ(fresh, GetParam() == TLS1_3_VERSION);
  Outcome third = connect(after.get(), clientCtx.get(), second.session.get());
  ASSERT_TRUE(third.connected);
  EXPECT_TRUE(third.resumed);
}

TEST_P(ResumptionTest, ASessionResumesOnlyUnderTheClientValidationItWasCheckedWith) {
  const auto& p = certs();
  auto clientCtx = client(&p.client, GetParam());
  auto validating = server({p.ca.certPem});
  Outcome first = connect(validating.get(), clientCtx.get(), nullptr);
  ASSERT_TRUE(first.connected);
  EXPECT_FALSE(first.resumed);

  // The same validation in a new snapshot: resumed.
  auto same = server({p.ca.certPem});
  Outcome again = connect(same.get(), clientCtx.get(), first.session.get());
  ASSERT_TRUE(again.connected);
  EXPECT_TRUE(again.resumed);

  // Another CA bundle (another port, or the bundle rotated): the session does not resume, and a
  // client certificate the new bundle does not trust is refused in the full handshake.
  auto other = server({p.otherCa.certPem});
  Outcome refused = connect(other.get(), clientCtx.get(), first.session.get());
  EXPECT_FALSE(refused.connected);
  auto otherClientCtx = client(&p.otherClient, GetParam());
  Outcome full = connect(other.get(), otherClientCtx.get(), first.session.get());
  ASSERT_TRUE(full.connected);
  EXPECT_FALSE(full.resumed);

  // A context that validates nobody does not take it either.
  auto open = server();
  Outcome plain = connect(open.get(), clientCtx.get(), first.session.get());
  ASSERT_TRUE(plain.connected);
  EXPECT_FALSE(plain.resumed);
}

INSTANTIATE_TEST_SUITE_P(Versions, ResumptionTest, ::testing::Values(TLS1_3_VERSION, TLS1_2_VERSION),
                         [](const auto& info) { return info.param == TLS1_3_VERSION ? "Tls13" : "Tls12"; });

} // namespace
} // namespace gantry::dataplane::tls
