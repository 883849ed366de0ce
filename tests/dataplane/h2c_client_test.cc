#include "dataplane/h2c_client.h"

#include <gtest/gtest.h>

namespace gantry::dataplane::h2 {
namespace {

TEST(H2cClientTest, StartsWithThePrefaceAndSettings) {
  ClientSession s;
  ASSERT_TRUE(s.request("GET", "http", "app.example", "/x", {{"x-a", "1"}}, false));
  auto out = s.output();
  // RFC 9113 section 3.4: the client connection preface, then a SETTINGS frame (type 4).
  const std::string preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  ASSERT_GT(out.size(), preface.size() + 9);
  EXPECT_EQ(out.substr(0, preface.size()), preface);
  EXPECT_EQ(static_cast<int>(out[preface.size() + 3]), 4);
  s.sent(out.size());
  EXPECT_TRUE(s.output().empty());
  EXPECT_FALSE(s.headersDone());
  // A second request cannot start while the first is open.
  EXPECT_FALSE(s.request("GET", "http", "app.example", "/y", {}, false));
}

TEST(H2cClientTest, GarbageFromTheBackendIsAProtocolErrorNotACrash) {
  ClientSession s;
  ASSERT_TRUE(s.request("GET", "http", "a", "/", {}, false));
  s.sent(s.output().size());
  // A DATA frame on stream 0 is a connection error (RFC 9113 section 6.1): GOAWAY, no more reads.
  std::string dataOnStreamZero(9, '\0');
  dataOnStreamZero[2] = 4; // length 4, type DATA, no flags, stream 0
  dataOnStreamZero += "abcd";
  EXPECT_FALSE(s.feed(dataOnStreamZero));
  EXPECT_FALSE(s.error().empty());
  EXPECT_FALSE(s.reusable());
}

} // namespace
} // namespace gantry::dataplane::h2
