#include "dataplane/ticket_keys.h"

#include <gtest/gtest.h>

namespace gantry::dataplane::tls {
namespace {

using std::chrono::hours;
using std::chrono::minutes;
using Clock = TicketKeyRing::Clock;

TEST(TicketKeyRingTest, OneKeySealsUntilItsRotationAndOpensAfterwardUntilItsTicketsExpire) {
  TicketKeyRing ring(hours(1), hours(2));
  const Clock::time_point t0{};
  TicketKey first, again, next, found;
  ASSERT_TRUE(ring.sealing(t0, first));
  ASSERT_TRUE(ring.sealing(t0 + minutes(59), again));
  EXPECT_EQ(first.name, again.name);
  EXPECT_EQ(first.aesKey, again.aesKey);
  EXPECT_EQ(ring.find(first.name.data(), t0 + minutes(59), found), TicketKeyRing::Found::Current);
  EXPECT_EQ(found.hmacKey, first.hmacKey);

  ASSERT_TRUE(ring.sealing(t0 + hours(1), next)); // rotated
  EXPECT_NE(next.name, first.name);
  EXPECT_NE(next.aesKey, first.aesKey);
  EXPECT_NE(next.hmacKey, first.hmacKey);
  EXPECT_EQ(ring.find(next.name.data(), t0 + hours(1), found), TicketKeyRing::Found::Current);
  // The first key's last ticket was sealed just before t0 + 1h and lives 2 h: it opens, to be renewed.
  EXPECT_EQ(ring.find(first.name.data(), t0 + hours(3) - minutes(1), found), TicketKeyRing::Found::Older);
  EXPECT_EQ(found.aesKey, first.aesKey);
  EXPECT_EQ(ring.find(first.name.data(), t0 + hours(3), found), TicketKeyRing::Found::No);
}

TEST(TicketKeyRingTest, UnknownNamesAreNotFoundAndTheRingStaysSmall) {
  TicketKeyRing ring(hours(1), hours(2));
  const Clock::time_point t0{};
  TicketKey key;
  const unsigned char stranger[16] = {1, 2, 3};
  EXPECT_EQ(ring.find(stranger, t0, key), TicketKeyRing::Found::No);
  for (int h = 0; h < 48; ++h) {
    ASSERT_TRUE(ring.sealing(t0 + hours(h), key));
  }
  // The sealing key and the two before it (each opening for 2 h after it stopped sealing).
  EXPECT_LE(ring.size(), 3u);
  EXPECT_GE(ring.size(), 2u);
}

TEST(TicketKeyRingTest, TheProcessRingIsOneRing) {
  EXPECT_EQ(&processTicketKeys(), &processTicketKeys());
  TicketKey a, b;
  const auto now = Clock::now();
  ASSERT_TRUE(processTicketKeys().sealing(now, a));
  ASSERT_TRUE(processTicketKeys().sealing(now, b));
  EXPECT_EQ(a.name, b.name);
}

} // namespace
} // namespace gantry::dataplane::tls
