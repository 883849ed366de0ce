#pragma once
// OpenSSL contexts built once per snapshot on the main thread and shared read-only by workers
// (an SSL_CTX is safe to use from many threads once configured).
#include <openssl/ssl.h>

#include <memory>
#include <string>
#include <vector>

#include "ir/ir.h"

namespace gantry::dataplane::tls {

struct SslCtxFree {
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
using SslCtxPtr = std::unique_ptr<SSL_CTX, SslCtxFree>;

// One certificate's server context: TLS 1.2/1.3, AES-GCM suites only (the product's 2023-06
// policy), P-256/P-384/X25519, session tickets on, ALPN http/1.1.
SslCtxPtr makeServerContext(const ir::CertificateKeyPair& cert, std::string& error);

// Client-certificate validation on a server context (Gateway spec.tls.frontend): the CA store,
// and either a failed handshake without a valid certificate (AllowValidOnly) or none
// (AllowInsecureFallback).
bool configureClientValidation(SSL_CTX* ctx, const ir::Listener::ClientValidation& validation,
                               std::string& error);

// An upstream context for a cluster: CA store (or the system's), client certificate, verify peer.
// SNI and the expected subjectAltName are set per connection (configureClient).
SslCtxPtr makeClientContext(const ir::UpstreamTls& tls, std::string& error);

// Per connection: SNI, hostname/SAN check, resumption session if any.
void configureClient(SSL* ssl, const ir::UpstreamTls& tls);

// Explains a failed upstream handshake in the words an operator needs: which check failed
// (expired certificate, subjectAltName mismatch, unknown CA, wrong purpose) or whether the backend
// refused our client certificate.
std::string explainHandshakeFailure(SSL* ssl, int errorCode, const std::string& errorText,
                                    const ir::UpstreamTls& tls);

} // namespace gantry::dataplane::tls
