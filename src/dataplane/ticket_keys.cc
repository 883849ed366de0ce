#include "dataplane/ticket_keys.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <cstring>

namespace gantry::dataplane::tls {

TicketKeyRing::TicketKeyRing(std::chrono::seconds rotation, std::chrono::seconds lifetime)
    : rotation_(rotation), lifetime_(lifetime) {}

TicketKeyRing::~TicketKeyRing() {
  for (auto& e : keys_) {
    OPENSSL_cleanse(&e.key, sizeof e.key);
  }
}

void TicketKeyRing::update(Clock::time_point now) {
  if (keys_.empty() || now - keys_.front().since >= rotation_) {
    Entry fresh;
    // Key material from OpenSSL's private DRBG, as its own default ticket keys are made. Should
    // it fail, the current key seals on (and with none, no ticket is issued).
    if (RAND_priv_bytes(fresh.key.name.data(), fresh.key.name.size()) == 1 &&
        RAND_priv_bytes(fresh.key.aesKey.data(), fresh.key.aesKey.size()) == 1 &&
        RAND_priv_bytes(fresh.key.hmacKey.data(), fresh.key.hmacKey.size()) == 1) {
      fresh.since = now;
      keys_.push_front(fresh);
    }
    OPENSSL_cleanse(&fresh.key, sizeof fresh.key);
  }
  // An older key stopped sealing when the one in front of it began; its last ticket expires
  // `lifetime` after that.
  while (keys_.size() > 1 && now - keys_[keys_.size() - 2].since >= lifetime_) {
    OPENSSL_cleanse(&keys_.back().key, sizeof keys_.back().key);
    keys_.pop_back();
  }
}

bool TicketKeyRing::sealing(Clock::time_point now, TicketKey& out) {
  std::lock_guard lock(mutex_);
  update(now);
  if (keys_.empty()) {
    return false;
  }
  out = keys_.front().key;
  return true;
}

TicketKeyRing::Found TicketKeyRing::find(const unsigned char* name, Clock::time_point now, TicketKey& out) {
  std::lock_guard lock(mutex_);
  update(now);
  for (size_t i = 0; i < keys_.size(); ++i) {
    if (std::memcmp(keys_[i].key.name.data(), name, keys_[i].key.name.size()) == 0) {
      out = keys_[i].key;
      return i == 0 ? Found::Current : Found::Older;
    }
  }
  return Found::No;
}

size_t TicketKeyRing::size() const {
  std::lock_guard lock(mutex_);
  return keys_.size();
}

TicketKeyRing& processTicketKeys() {
  // Never destroyed: a worker finishing a handshake while the process exits must not find it gone.
  static TicketKeyRing* const ring = new TicketKeyRing(std::chrono::seconds(kTicketLifetimeSeconds / 2),
                                                       std::chrono::seconds(kTicketLifetimeSeconds));
  return *ring;
}

} // namespace gantry::dataplane::tls
