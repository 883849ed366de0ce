#pragma once
// X.509 helpers over OpenSSL: inspect PEM certificates and keys (used by the translator to
// validate Secrets and to warn about expiry and key usage), and issue certificates (used by
// `gantry demo`). No I/O and no clock: callers pass the time.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace gantry::pki {

// The last OpenSSL error queued on this thread, as text (and clears the queue).
std::string opensslError();

struct CertInfo {
  std::string subject; // RFC 2253, e.g. CN=backend.com
  std::string issuer;
  int64_t notBefore = 0; // Unix seconds
  int64_t notAfter = 0;
  bool hasExtendedKeyUsage = false;
  bool clientAuth = false; // EKU permits TLS client authentication
  bool serverAuth = false;
  std::vector<std::string> dnsNames;
  std::vector<std::string> uris;
  std::string fingerprint; // sha256 of DER, lowercase hex
};

// Parses every CERTIFICATE block of `pem`. Returns an error message when there is none or one is
// malformed.
std::optional<std::string> parseCertificates(const std::string& pem, std::vector<CertInfo>& out);

// Checks that `keyPem` holds a private key (EC PARAMETERS blocks before it are skipped) that
// matches the first certificate of `certPem`.
std::optional<std::string> checkKeyPair(const std::string& certPem, const std::string& keyPem);

// Human-readable warnings for a certificate used at time `now`: expired, not yet valid.
std::vector<std::string> validityWarnings(const CertInfo& cert, int64_t now);

struct Issued {
  std::string certPem;
  std::string keyPem;
};

struct IssueOptions {
  std::string commonName;
  std::vector<std::string> dnsNames;
  bool serverAuth = true;
  bool clientAuth = false;
  int64_t notBefore = 0;
  int64_t notAfter = 0;
};

// A self-signed ECDSA P-256 CA.
Issued makeCa(const std::string& commonName, int64_t notBefore, int64_t notAfter);
// An ECDSA P-256 leaf signed by `ca`.
Issued issue(const Issued& ca, const IssueOptions& options);

} // namespace gantry::pki
