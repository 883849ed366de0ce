#pragma once
// The keys that seal TLS session tickets (RFC 8446 section 4.6.1; RFC 5077 section 4 for TLS 1.2),
// one ring for the whole process. Server contexts are rebuilt with every configuration snapshot;
// if each kept OpenSSL's own per-context keys, every reload would void every client's ticket and
// turn the next connection of each into a full handshake. The ring outlives the snapshots: a key
// seals new tickets for `rotation`, then only opens old ones until `lifetime` (the tickets' own
// lifetime) has passed since it stopped sealing, and is wiped.
#include <array>
#include <chrono>
#include <cstddef>
#include <deque>
#include <mutex>

namespace gantry::dataplane::tls {

struct TicketKey {
  std::array<unsigned char, 16> name{};   // sent in the clear at the head of each ticket
  std::array<unsigned char, 32> aesKey{}; // AES-256-CBC
  std::array<unsigned char, 32> hmacKey{}; // HMAC-SHA256
};

class TicketKeyRing {
public:
  using Clock = std::chrono::steady_clock;

  TicketKeyRing(std::chrono::seconds rotation, std::chrono::seconds lifetime);
  ~TicketKeyRing();
  TicketKeyRing(const TicketKeyRing&) = delete;
  TicketKeyRing& operator=(const TicketKeyRing&) = delete;

  // The key that seals a ticket issued at `now` (a new one once the current has served `rotation`);
  // false only if no key could ever be made (no random bytes).
  bool sealing(Clock::time_point now, TicketKey& out);

  enum class Found { No, Current, Older };
  // The key named `name` if it may still open tickets at `now`. Older: the ticket is good but
  // should be replaced by one under the current key (OpenSSL's "renew").
  Found find(const unsigned char* name, Clock::time_point now, TicketKey& out);

  size_t size() const;

private:
  struct Entry {
    TicketKey key;
    Clock::time_point since; // when it began sealing
  };
  void update(Clock::time_point now); // with mutex_ held

  mutable std::mutex mutex_;
  std::deque<Entry> keys_; // front: the sealing key; then older ones, newest first
  std::chrono::seconds rotation_;
  std::chrono::seconds lifetime_;
};

// The process's ring: keys rotate hourly and tickets live for kTicketLifetimeSeconds.
constexpr long kTicketLifetimeSeconds = 7200;
TicketKeyRing& processTicketKeys();

} // namespace gantry::dataplane::tls
