#pragma once
// Small string helpers shared by every stage (no allocation unless the result is a string).
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace gantry {

inline char asciiLower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

// Eight bytes at once: each byte in 'A'..'Z' gets the case bit (0x20), every other byte stays.
// A byte's low seven bits plus a constant sets its top bit past a bound, without carrying into
// the next byte; the two bounds together pick the capitals, `~x` leaves bytes >= 0x80 alone.
inline uint64_t asciiLower8(uint64_t x) {
  constexpr uint64_t kOnes = 0x0101010101010101ULL;
  const uint64_t low7 = x & (0x7f * kOnes);
  const uint64_t atLeastA = low7 + (0x80 - 'A') * kOnes;
  const uint64_t pastZ = low7 + (0x80 - 'Z' - 1) * kOnes;
  const uint64_t capitals = (atLeastA ^ pastZ) & ~x & (0x80 * kOnes);
  return x | (capitals >> 2);
}

// ASCII case-insensitive equality (field names, tokens: RFC 9110 section 5.1), 8 bytes a step.
inline bool iequals(std::string_view a, std::string_view b) {
  const size_t n = a.size();
  if (n != b.size()) {
    return false;
  }
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t x = 0;
    uint64_t y = 0;
    std::memcpy(&x, a.data() + i, 8);
    std::memcpy(&y, b.data() + i, 8);
    if (asciiLower8(x) != asciiLower8(y)) {
      return false;
    }
  }
  for (; i < n; ++i) {
    if (asciiLower(a[i]) != asciiLower(b[i])) {
      return false;
    }
  }
  return true;
}

std::string toLower(std::string_view s);
std::string_view trimOws(std::string_view s);
std::vector<std::string_view> split(std::string_view s, char sep);

// The parts of `s` between `sep`s, as split() gives them, without building a vector (for the
// request path: `for (auto part : SplitView(value, ','))`).
class SplitView {
public:
  SplitView(std::string_view s, char sep) : s_(s), sep_(sep) {}
  class iterator {
  public:
    iterator(std::string_view s, char sep, bool end) : s_(s), sep_(sep), end_(end) { cut(); }
    std::string_view operator*() const { return part_; }
    iterator& operator++() {
      if (rest_ == std::string_view::npos) {
        end_ = true;
      } else {
        s_.remove_prefix(rest_);
        cut();
      }
      return *this;
    }
    bool operator!=(const iterator& o) const { return end_ != o.end_; }

  private:
    void cut() {
      size_t pos = s_.find(sep_);
      part_ = s_.substr(0, pos);
      rest_ = pos == std::string_view::npos ? pos : pos + 1;
    }
    std::string_view s_;
    char sep_;
    bool end_;
    std::string_view part_;
    size_t rest_ = 0;
  };
  iterator begin() const { return {s_, sep_, false}; }
  iterator end() const { return {{}, sep_, true}; }

private:
  std::string_view s_;
  char sep_;
};
// Appends `s` as a JSON string literal: quotes, backslashes and control characters escaped; bytes
// outside ASCII as \u00XX, so that a line stays valid JSON whatever a client sent.
void appendJsonString(std::string& out, std::string_view s);
// The parts with `sep` between them.
std::string joinStrings(const std::vector<std::string>& parts, std::string_view sep);
bool startsWith(std::string_view s, std::string_view prefix);
bool endsWith(std::string_view s, std::string_view suffix);
// Parses a non-negative decimal integer that must be the whole of `s`.
std::optional<uint64_t> parseUint(std::string_view s);

// RFC 3339 UTC timestamp ("2023-06-19T21:04:55Z") for a Unix time in seconds.
std::string formatRfc3339(int64_t unixSeconds);

} // namespace gantry
