#include "pki/pki.h"

#include <gtest/gtest.h>

namespace gantry::pki {
namespace {

constexpr int64_t kNow = 1795000000; // 2026-11-18

TEST(PkiTest, IssuedCertificatesInspectAsIssued) {
  auto ca = makeCa("foo", kNow - 10, kNow + 1000);
  auto client = issue(ca, {"gateway-client-cert", {"gateway-client-cert"}, false, true, kNow - 10, kNow + 100});
  std::vector<CertInfo> infos;
  ASSERT_FALSE(parseCertificates(client.certPem, infos));
  ASSERT_EQ(infos.size(), 1u);
  EXPECT_EQ(infos[0].subject, "CN=gateway-client-cert");
  EXPECT_EQ(infos[0].issuer, "CN=foo");
  EXPECT_TRUE(infos[0].clientAuth);
  EXPECT_FALSE(infos[0].serverAuth);
  EXPECT_EQ(infos[0].dnsNames, std::vector<std::string>{"gateway-client-cert"});
  EXPECT_EQ(infos[0].fingerprint.size(), 64u);
  EXPECT_FALSE(checkKeyPair(client.certPem, client.keyPem));
  EXPECT_TRUE(validityWarnings(infos[0], kNow).empty());
}

TEST(PkiTest, WarnsAboutExpiryAndNotYetValid) {
  auto ca = makeCa("foo", kNow - 10, kNow + 1000);
  auto cert = issue(ca, {"backend.com", {"backend.com"}, true, false, kNow - 10, kNow + 100});
  std::vector<CertInfo> infos;
  ASSERT_FALSE(parseCertificates(cert.certPem, infos));
  auto late = validityWarnings(infos[0], kNow + 101);
  ASSERT_EQ(late.size(), 1u);
  EXPECT_NE(late[0].find("expired"), std::string::npos);
  auto early = validityWarnings(infos[0], kNow - 11);
  ASSERT_EQ(early.size(), 1u);
  EXPECT_NE(early[0].find("not valid before"), std::string::npos);
}

TEST(PkiTest, RejectsMismatchedKeysAndGarbage) {
  auto ca = makeCa("foo", kNow - 10, kNow + 1000);
  auto a = issue(ca, {"a", {"a"}, true, false, kNow - 10, kNow + 100});
  auto b = issue(ca, {"b", {"b"}, true, false, kNow - 10, kNow + 100});
  auto mismatch = checkKeyPair(a.certPem, b.keyPem);
  ASSERT_TRUE(mismatch);
  EXPECT_NE(mismatch->find("does not match"), std::string::npos);
  std::vector<CertInfo> infos;
  EXPECT_TRUE(parseCertificates("hello", infos));
  EXPECT_TRUE(parseCertificates("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", infos));
  EXPECT_TRUE(checkKeyPair(a.certPem, "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n"));
}

} // namespace
} // namespace gantry::pki
