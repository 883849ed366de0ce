#include "pki/pki.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>
#include <stdexcept>

#include "common/strings.h"

namespace gantry::pki {
namespace {

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;

BioPtr memBio(const std::string& s) {
  return BioPtr(BIO_new_mem_buf(s.data(), static_cast<int>(s.size())));
}

std::string lastError() { return opensslError(); }

int64_t asn1ToUnix(const ASN1_TIME* t) {
  struct tm tm {};
  if (ASN1_TIME_to_tm(t, &tm) != 1) {
    return 0;
  }
  return static_cast<int64_t>(timegm(&tm));
}

std::string nameString(X509_NAME* name) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(len));
}

CertInfo inspect(X509* x) {
  CertInfo info;
  info.subject = nameString(X509_get_subject_name(x));
  info.issuer = nameString(X509_get_issuer_name(x));
  info.notBefore = asn1ToUnix(X509_get0_notBefore(x));
  info.notAfter = asn1ToUnix(X509_get0_notAfter(x));
  uint32_t xku = X509_get_extended_key_usage(x); // UINT32_MAX when the extension is absent
  info.hasExtendedKeyUsage = (X509_get_extension_flags(x) & EXFLAG_XKUSAGE) != 0;
  info.clientAuth = !info.hasExtendedKeyUsage || (xku & XKU_SSL_CLIENT) != 0;
  info.serverAuth = !info.hasExtendedKeyUsage || (xku & XKU_SSL_SERVER) != 0;
  auto* sans = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(x, NID_subject_alt_name, nullptr, nullptr));
  if (sans != nullptr) {
    for (int i = 0; i < sk_GENERAL_NAME_num(sans); ++i) {
      const GENERAL_NAME* gn = sk_GENERAL_NAME_value(sans, i);
      if (gn->type == GEN_DNS || gn->type == GEN_URI) {
        const ASN1_IA5STRING* s = gn->type == GEN_DNS ? gn->d.dNSName : gn->d.uniformResourceIdentifier;
        std::string v(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                      static_cast<size_t>(ASN1_STRING_length(s)));
        (gn->type == GEN_DNS ? info.dnsNames : info.uris).push_back(v);
      }
    }
    GENERAL_NAMES_free(sans);
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdLen = 0;
  X509_digest(x, EVP_sha256(), md, &mdLen);
  static const char* hex = "0123456789abcdef";
  for (unsigned int i = 0; i < mdLen; ++i) {
    info.fingerprint += hex[md[i] >> 4];
    info.fingerprint += hex[md[i] & 0xf];
  }
  return info;
}

} // namespace

std::string opensslError() {
  unsigned long e = ERR_peek_last_error();
  ERR_clear_error();
  if (e == 0) {
    return "unknown error";
  }
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

std::optional<std::string> parseCertificates(const std::string& pem, std::vector<CertInfo>& out) {
  if (pem.find("-----BEGIN CERTIFICATE-----") == std::string::npos) {
    return "no PEM certificate found";
  }
  auto bio = memBio(pem);
  while (true) {
    X509Ptr x(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    if (!x) {
      unsigned long e = ERR_peek_last_error();
      if (ERR_GET_REASON(e) == PEM_R_NO_START_LINE && !out.empty()) {
        ERR_clear_error();
        break;
      }
      return "malformed PEM certificate: " + lastError();
    }
    out.push_back(inspect(x.get()));
  }
  return std::nullopt;
}

std::optional<std::string> checkKeyPair(const std::string& certPem, const std::string& keyPem) {
  auto kb = memBio(keyPem);
  PkeyPtr key(PEM_read_bio_PrivateKey(kb.get(), nullptr, nullptr, nullptr));
  if (!key) {
    return "no usable PEM private key: " + lastError();
  }
  auto cb = memBio(certPem);
  X509Ptr cert(PEM_read_bio_X509(cb.get(), nullptr, nullptr, nullptr));
  if (!cert) {
    return "malformed PEM certificate: " + lastError();
  }
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    ERR_clear_error();
    return "private key does not match the certificate";
  }
  return std::nullopt;
}

std::vector<std::string> validityWarnings(const CertInfo& cert, int64_t now) {
  std::vector<std::string> out;
  if (cert.notAfter != 0 && now > cert.notAfter) {
    out.push_back("certificate " + cert.subject + " expired on " + formatRfc3339(cert.notAfter));
  }
  if (cert.notBefore != 0 && now < cert.notBefore) {
    out.push_back("certificate " + cert.subject + " is not valid before " +
                  formatRfc3339(cert.notBefore));
  }
  return out;
}

namespace {

PkeyPtr newP256Key() {
  PkeyPtr key(EVP_EC_gen("P-256"));
  if (!key) {
    throw std::runtime_error("cannot generate a P-256 key: " + lastError());
  }
  return key;
}

void addExt(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (ext == nullptr) {
    throw std::runtime_error("bad certificate extension " + value);
  }
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

std::string toPem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(bio.get(), cert);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(len));
}

std::string toPem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(len));
}

X509Ptr newCert(const std::string& cn, EVP_PKEY* key, int64_t notBefore, int64_t notAfter) {
  X509Ptr cert(X509_new());
  X509_set_version(cert.get(), 2);
  unsigned char serial[16];
  static uint64_t counter = 0;
  uint64_t v = static_cast<uint64_t>(notBefore) * 1000003u + ++counter;
  for (int i = 0; i < 16; ++i) {
    serial[i] = static_cast<unsigned char>((v >> ((i % 8) * 8)) ^ (i * 37));
  }
  serial[0] &= 0x7f;
  BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get()));
  BN_free(bn);
  ASN1_TIME_set(X509_getm_notBefore(cert.get()), static_cast<time_t>(notBefore));
  ASN1_TIME_set(X509_getm_notAfter(cert.get()), static_cast<time_t>(notAfter));
  X509_set_pubkey(cert.get(), key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  return cert;
}

} // namespace

Issued makeCa(const std::string& commonName, int64_t notBefore, int64_t notAfter) {
  auto key = newP256Key();
  auto cert = newCert(commonName, key.get(), notBefore, notAfter);
  X509_set_issuer_name(cert.get(), X509_get_subject_name(cert.get()));
  addExt(cert.get(), cert.get(), NID_basic_constraints, "critical,CA:TRUE");
  addExt(cert.get(), cert.get(), NID_key_usage, "critical,keyCertSign,cRLSign");
  addExt(cert.get(), cert.get(), NID_subject_key_identifier, "hash");
  X509_sign(cert.get(), key.get(), EVP_sha256());
  return {toPem(cert.get()), toPem(key.get())};
}

Issued issue(const Issued& ca, const IssueOptions& o) {
  auto cb = memBio(ca.certPem);
  X509Ptr caCert(PEM_read_bio_X509(cb.get(), nullptr, nullptr, nullptr));
  auto kb = memBio(ca.keyPem);
  PkeyPtr caKey(PEM_read_bio_PrivateKey(kb.get(), nullptr, nullptr, nullptr));
  if (!caCert || !caKey) {
    throw std::runtime_error("bad CA: " + lastError());
  }
  auto key = newP256Key();
  auto cert = newCert(o.commonName, key.get(), o.notBefore, o.notAfter);
  X509_set_issuer_name(cert.get(), X509_get_subject_name(caCert.get()));
  addExt(cert.get(), caCert.get(), NID_basic_constraints, "CA:FALSE");
  addExt(cert.get(), caCert.get(), NID_key_usage, "critical,digitalSignature,keyEncipherment");
  std::string eku;
  if (o.serverAuth) {
    eku = "serverAuth";
  }
  if (o.clientAuth) {
    eku += eku.empty() ? "clientAuth" : ",clientAuth";
  }
  if (!eku.empty()) {
    addExt(cert.get(), caCert.get(), NID_ext_key_usage, eku);
  }
  if (!o.dnsNames.empty()) {
    std::string san;
    for (const auto& d : o.dnsNames) {
      san += (san.empty() ? "DNS:" : ",DNS:") + d;
    }
    addExt(cert.get(), caCert.get(), NID_subject_alt_name, san);
  }
  addExt(cert.get(), caCert.get(), NID_authority_key_identifier, "keyid:always");
  X509_sign(cert.get(), caKey.get(), EVP_sha256());
  return {toPem(cert.get()), toPem(key.get())};
}

} // namespace gantry::pki
