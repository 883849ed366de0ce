#pragma once
// Small string helpers shared by every stage (no allocation unless the result is a string).
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace gantry {

inline char asciiLower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

inline bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) {
    return false;
  }
  for (size_t i = 0; i < a.size(); ++i) {
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
