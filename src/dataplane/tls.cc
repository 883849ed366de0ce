#include "dataplane/tls.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include <cstring>
#include <ctime>

#include "common/strings.h"
#include "dataplane/ticket_keys.h"
#include "pki/pki.h"

namespace gantry::dataplane::tls {
namespace {

constexpr const char* kCiphers12 =
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256";
constexpr const char* kCiphers13 = "TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256";
constexpr const char* kGroups = "X25519:P-256:P-384";

std::string sslError() { return pki::opensslError(); }

bool commonSetup(SSL_CTX* ctx, std::string& error) {
  // RFC 8446 and the product's policy: TLS 1.2 minimum, AEAD (AES-GCM) suites only.
  if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
      SSL_CTX_set_cipher_list(ctx, kCiphers12) != 1 || SSL_CTX_set_ciphersuites(ctx, kCiphers13) != 1 ||
      SSL_CTX_set1_groups_list(ctx, kGroups) != 1) {
    error = "cannot apply the TLS policy: " + sslError();
    return false;
  }
  return true;
}

bool useCertificate(SSL_CTX* ctx, const ir::CertificateKeyPair& cert, std::string& error) {
  BIO* bio = BIO_new_mem_buf(cert.certPem.data(), static_cast<int>(cert.certPem.size()));
  X509* leaf = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  bool ok = leaf != nullptr && SSL_CTX_use_certificate(ctx, leaf) == 1;
  X509_free(leaf);
  // Intermediates follow the leaf in tls.crt.
  while (ok) {
    X509* extra = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
    if (extra == nullptr) {
      ERR_clear_error();
      break;
    }
    if (SSL_CTX_add0_chain_cert(ctx, extra) != 1) {
      X509_free(extra);
      ok = false;
    }
  }
  BIO_free(bio);
  if (!ok) {
    error = cert.source + ": cannot use certificate: " + sslError();
    return false;
  }
  bio = BIO_new_mem_buf(cert.keyPem.data(), static_cast<int>(cert.keyPem.size()));
  EVP_PKEY* key = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  ok = key != nullptr && SSL_CTX_use_PrivateKey(ctx, key) == 1 && SSL_CTX_check_private_key(ctx) == 1;
  EVP_PKEY_free(key);
  if (!ok) {
    error = cert.source + ": cannot use private key: " + sslError();
    return false;
  }
  return true;
}

// The certificate that failed verification, recorded by the verify callback so that the log can
// name it (after a failed handshake the peer certificate is no longer available).
int failureIndex() {
  static const int index = SSL_get_ex_new_index(
      0, nullptr, nullptr, nullptr, [](void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) {
        delete static_cast<std::string*>(ptr);
      });
  return index;
}

int recordVerifyFailure(int ok, X509_STORE_CTX* store) {
  if (ok == 1) {
    return ok;
  }
  auto* ssl = static_cast<SSL*>(X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
  X509* cert = X509_STORE_CTX_get_current_cert(store);
  if (ssl == nullptr || cert == nullptr || SSL_get_ex_data(ssl, failureIndex()) != nullptr) {
    return ok;
  }
  char subject[256];
  X509_NAME_oneline(X509_get_subject_name(cert), subject, sizeof subject);
  std::string info = subject;
  struct tm tm {};
  if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) == 1) {
    info += "|" + formatRfc3339(static_cast<int64_t>(timegm(&tm)));
  }
  SSL_set_ex_data(ssl, failureIndex(), new std::string(info));
  return ok;
}

// Adds every certificate of `pems` to the context's trust store; `names`, when given, collects
// their subjects. Returns how many were added.
size_t addTrustAnchors(SSL_CTX* ctx, const std::vector<std::string>& pems, STACK_OF(X509_NAME)* names) {
  X509_STORE* store = SSL_CTX_get_cert_store(ctx);
  size_t added = 0;
  for (const auto& pem : pems) {
    BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
    while (X509* ca = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr)) {
      X509_STORE_add_cert(store, ca);
      if (names != nullptr) {
        sk_X509_NAME_push(names, X509_NAME_dup(X509_get_subject_name(ca)));
      }
      X509_free(ca);
      ++added;
    }
    ERR_clear_error();
    BIO_free(bio);
  }
  return added;
}

int selectAlpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
               unsigned int inlen, void*) {
  // Ours in order of preference: HTTP/2 (RFC 9113 section 3.2), then HTTP/1.1.
  static const unsigned char kProtocols[] = {2, 'h', '2', 8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(&selected, outlen, kProtocols, sizeof kProtocols, in, inlen) ==
      OPENSSL_NPN_NEGOTIATED) {
    *out = selected;
    return SSL_TLSEXT_ERR_OK;
  }
  return SSL_TLSEXT_ERR_NOACK; // no ALPN agreement: carry on with HTTP/1.1
}

// Seals and opens session tickets with the process's key ring (RFC 5077 section 4's layout, which
// OpenSSL builds: key name, IV, AES-256-CBC, HMAC-SHA256). Any trouble means "no ticket" or "not
// resumable", never a failed handshake. The cipher is fetched once; OpenSSL's own ticket code
// fetches it for every ticket.
int ticketKeyCallback(SSL* ssl, unsigned char name[16], unsigned char* iv, EVP_CIPHER_CTX* cipher,
                      EVP_MAC_CTX* mac, int seal) {
  static EVP_CIPHER* const aes = EVP_CIPHER_fetch(nullptr, "AES-256-CBC", nullptr);
  if (aes == nullptr) {
    return 0;
  }
  auto& ring = processTicketKeys();
  const auto now = TicketKeyRing::Clock::now();
  TicketKey key;
  int result = 1;
  if (seal == 1) {
    if (!ring.sealing(now, key) || RAND_bytes(iv, EVP_CIPHER_get_iv_length(aes)) != 1) {
      return 0;
    }
    std::memcpy(name, key.name.data(), key.name.size());
    if (EVP_EncryptInit_ex(cipher, aes, nullptr, key.aesKey.data(), iv) != 1) {
      result = 0;
    }
  } else {
    const auto found = ring.find(name, now, key);
    if (found == TicketKeyRing::Found::No) {
      return 0; // unknown or expired key: a full handshake
    }
    // 2 asks for a new ticket: always in TLS 1.3, where a client uses each ticket once (RFC 8446
    // appendix C.4) and without a new one would make its next connection a full handshake; in
    // TLS 1.2 only when the key is an older one (RFC 5077 section 3.3).
    const bool tls13 = SSL_version(ssl) >= TLS1_3_VERSION;
    result = found == TicketKeyRing::Found::Current && !tls13 ? 1 : 2;
    if (EVP_DecryptInit_ex(cipher, aes, nullptr, key.aesKey.data(), iv) != 1) {
      result = 0;
    }
  }
  char digest[] = "SHA256";
  const OSSL_PARAM params[] = {
      OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, key.hmacKey.data(), key.hmacKey.size()),
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0), OSSL_PARAM_construct_end()};
  if (result != 0 && EVP_MAC_CTX_set_params(mac, params) != 1) {
    result = 0;
  }
  OPENSSL_cleanse(&key, sizeof key);
  return result;
}

} // namespace

SslCtxPtr makeServerContext(const ir::CertificateKeyPair& cert, std::string& error) {
  SslCtxPtr ctx(SSL_CTX_new(TLS_server_method()));
  if (!ctx || !commonSetup(ctx.get(), error) || !useCertificate(ctx.get(), cert, error)) {
    if (error.empty()) {
      error = sslError();
    }
    return nullptr;
  }
  SSL_CTX_set_options(ctx.get(), SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_RENEGOTIATION);
  // Resumption by stateless tickets (RFC 8446 section 4.6.1; RFC 5077 for TLS 1.2): the session
  // travels in the ticket, so nothing is stored here — no cache insert per handshake, no periodic
  // flush, no memory held per client. The tickets are sealed with the process's keys, so they
  // resume on any worker and across configuration snapshots (ticket_keys.h).
  SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_SERVER | SSL_SESS_CACHE_NO_INTERNAL_STORE |
                                                SSL_SESS_CACHE_NO_AUTO_CLEAR);
  SSL_CTX_set_timeout(ctx.get(), kTicketLifetimeSeconds); // the lifetime a ticket states
  SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx.get(), ticketKeyCallback);
  // One TLS 1.3 session ticket per handshake (OpenSSL sends two by default, for clients that open
  // parallel connections): half the ticket encryption and one record less per handshake.
  SSL_CTX_set_num_tickets(ctx.get(), 1);
  // A client connection may sit idle for minutes: between records it gives its buffers back.
  // (Keeping them saves a free and a malloc of both per request, 760 instructions, but measured no
  // faster: 50 connections' own 34 KiB fall out of the cache where one reused pair stays in it.)
  SSL_CTX_set_mode(ctx.get(), SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_alpn_select_cb(ctx.get(), selectAlpn, nullptr);
  return ctx;
}

bool configureClientValidation(SSL_CTX* ctx, const ir::Listener::ClientValidation& validation,
                               std::string& error) {
  STACK_OF(X509_NAME)* names = sk_X509_NAME_new_null();
  const size_t added = addTrustAnchors(ctx, validation.caPems, names);
  if (added == 0) {
    sk_X509_NAME_pop_free(names, X509_NAME_free);
    error = "no CA certificate for client validation";
    return false;
  }
  SSL_CTX_set_client_CA_list(ctx, names); // RFC 8446 section 4.2.4: certificate_authorities
  // Sessions of a context that verifies clients need an ID context, or resumption fails. It is a
  // digest of the validation itself: ticket keys are the process's, and a session whose client
  // certificate was checked against other CAs (another port, or before the bundle changed) must
  // not resume here; OpenSSL resumes only a session of the same ID context.
  std::string what = validation.insecureFallback ? "gantry-frontend-validation/insecure-fallback"
                                                 : "gantry-frontend-validation/valid-only";
  for (const auto& pem : validation.caPems) {
    what += '\0';
    what += pem;
  }
  unsigned char context[EVP_MAX_MD_SIZE];
  unsigned int contextLength = 0;
  if (EVP_Digest(what.data(), what.size(), context, &contextLength, EVP_sha256(), nullptr) != 1 ||
      SSL_CTX_set_session_id_context(ctx, context, contextLength) != 1) {
    error = "cannot set the session ID context: " + sslError();
    return false;
  }
  if (validation.insecureFallback) {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, [](int, X509_STORE_CTX*) { return 1; });
  } else {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  }
  return true;
}

SslCtxPtr makeClientContext(const ir::UpstreamTls& tls, std::string& error) {
  SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()));
  if (!ctx || !commonSetup(ctx.get(), error)) {
    return nullptr;
  }
  bool verify = !tls.caPems.empty() || tls.systemCa;
  if (tls.systemCa && SSL_CTX_set_default_verify_paths(ctx.get()) != 1) {
    error = "cannot load the system CA store: " + sslError();
    return nullptr;
  }
  addTrustAnchors(ctx.get(), tls.caPems, nullptr);
  SSL_CTX_set_verify(ctx.get(), verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, recordVerifyFailure);
  if (tls.clientCertificate && !useCertificate(ctx.get(), *tls.clientCertificate, error)) {
    return nullptr;
  }
  SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
  // (Record buffers are kept: a backend connection is busy or pooled for the next request, and
  // freeing and allocating them with every record costs more than they weigh.)
  static const unsigned char kHttp11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
  SSL_CTX_set_alpn_protos(ctx.get(), kHttp11, sizeof kHttp11);
  return ctx;
}

void configureClient(SSL* ssl, const ir::UpstreamTls& tls) {
  if (!tls.sni.empty()) {
    SSL_set_tlsext_host_name(ssl, tls.sni.c_str()); // RFC 6066 section 3: server_name
  }
  if (!tls.subjectAltNames.empty()) {
    // Any one of the expected DNS names must be in the backend certificate's subjectAltName.
    SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    SSL_set1_host(ssl, tls.subjectAltNames.front().c_str());
    for (size_t i = 1; i < tls.subjectAltNames.size(); ++i) {
      SSL_add1_host(ssl, tls.subjectAltNames[i].c_str());
    }
  }
}

std::string explainHandshakeFailure(SSL* ssl, int errorCode, const std::string& errorText,
                                    const ir::UpstreamTls& tls) {
  long verify = ssl != nullptr ? SSL_get_verify_result(ssl) : X509_V_OK;
  std::string peer;
  std::string notAfter;
  if (ssl != nullptr) {
    if (auto* failed = static_cast<std::string*>(SSL_get_ex_data(ssl, failureIndex()))) {
      auto bar = failed->find('|');
      peer = failed->substr(0, bar);
      notAfter = bar == std::string::npos ? "" : failed->substr(bar + 1);
    } else if (X509* cert = SSL_get0_peer_certificate(ssl)) {
      char buf[256];
      X509_NAME_oneline(X509_get_subject_name(cert), buf, sizeof buf);
      peer = buf;
      struct tm tm {};
      if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) == 1) {
        notAfter = formatRfc3339(static_cast<int64_t>(timegm(&tm)));
      }
    }
  }
  std::string expected;
  for (const auto& s : tls.subjectAltNames) {
    expected += (expected.empty() ? "" : ", ") + s;
  }
  switch (verify) {
  case X509_V_OK:
    break;
  case X509_V_ERR_CERT_HAS_EXPIRED:
    return "backend certificate expired" + (notAfter.empty() ? "" : " on " + notAfter) +
           (peer.empty() ? "" : " (" + peer + ")");
  case X509_V_ERR_CERT_NOT_YET_VALID:
    return "backend certificate is not yet valid" + (peer.empty() ? "" : " (" + peer + ")");
  case X509_V_ERR_HOSTNAME_MISMATCH:
    return "backend certificate subjectAltName mismatch: expected " + expected +
           (peer.empty() ? "" : ", backend presented " + peer);
  case X509_V_ERR_INVALID_PURPOSE:
    return "backend certificate has the wrong purpose: it is not valid for TLS server "
           "authentication (extended key usage)";
  case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
  case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
  case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
  case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
  case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
  case X509_V_ERR_CERT_SIGNATURE_FAILURE:
    return "backend certificate is signed by an unknown CA (" +
           std::string(X509_verify_cert_error_string(verify)) + ")" +
           (peer.empty() ? "" : ": " + peer);
  default:
    return "backend certificate verification failed: " +
           std::string(X509_verify_cert_error_string(verify));
  }
  int reason = ERR_GET_REASON(static_cast<unsigned long>(errorCode));
  switch (reason) {
  case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
  case SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE:
  case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
  case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
  case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
  case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
  case SSL_R_TLSV1_ALERT_ACCESS_DENIED:
    return "backend refused our client certificate (" + errorText + ")";
  default:
    break;
  }
  return "TLS handshake with backend failed: " + errorText;
}

} // namespace gantry::dataplane::tls
