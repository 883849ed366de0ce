#include "dataplane/headers.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <vector>

#include "common/strings.h"

namespace gantry::dataplane {

using namespace std::string_view_literals; // append("..."sv): the length is known, no strlen

namespace {

bool isConnectionField(const http1::Header& h) { return iequals(h.name, "connection"); }

// RFC 9110 section 7.6.1: the Connection field's options name further hop-by-hop fields. Checked
// in place (no list built per request): callers ask only when the head has a Connection field.
bool namedByConnection(const http1::Head& head, std::string_view name) {
  for (const auto& h : head.headers) {
    if (!isConnectionField(h)) {
      continue;
    }
    for (auto option : SplitView(h.value, ',')) {
      if (iequals(trimOws(option), name)) {
        return true;
      }
    }
  }
  return false;
}

} // namespace

bool namedIn(const std::optional<ir::HeaderMutation>& m, std::string_view name) {
  if (!m) {
    return false;
  }
  for (const auto& [n, v] : m->set) {
    if (iequals(n, name)) {
      return true;
    }
  }
  for (const auto& n : m->remove) {
    if (iequals(n, name)) {
      return true;
    }
  }
  return false;
}

void appendMutation(std::string& out, const std::optional<ir::HeaderMutation>& m) {
  if (!m) {
    return;
  }
  for (const auto& [n, v] : m->set) {
    appendField(out, n, v);
  }
  // "add" appends a value: one more field line of the same name (RFC 9110 section 5.3).
  for (const auto& [n, v] : m->add) {
    appendField(out, n, v);
  }
}

namespace {

void addMutation(http1::FieldList& out, const std::optional<ir::HeaderMutation>& m) {
  if (!m) {
    return;
  }
  for (const auto& [n, v] : m->set) {
    out.push_back({n, v});
  }
  for (const auto& [n, v] : m->add) {
    out.push_back({n, v});
  }
}

} // namespace

void responseFields(std::span<const http1::Header> backendFields, const CompiledRoute& route,
                    const ir::WeightedBackend& backend, std::string_view extraLines, http1::FieldList& out) {
  for (const auto& h : backendFields) {
    // ResponseHeaderModifier: set and remove replace what the backend sent (rule, then backend).
    if (http1::isHopByHop(h.name) || namedIn(route.responseHeaders, h.name) ||
        namedIn(backend.responseHeaders, h.name)) {
      continue;
    }
    out.push_back(h);
  }
  addMutation(out, route.responseHeaders);
  addMutation(out, backend.responseHeaders);
  for (std::string_view line : SplitView(extraLines, '\n')) {
    if (!line.empty() && line.back() == '\r') {
      line.remove_suffix(1);
    }
    if (auto colon = line.find(": "); colon != std::string_view::npos) {
      out.push_back({line.substr(0, colon), line.substr(colon + 2)});
    }
  }
}

namespace {

// Writes "name: value\r\n" at `p` (room for it is there); returns the end.
char* putField(char* p, std::string_view name, std::string_view value) {
  if (!name.empty()) {
    std::memcpy(p, name.data(), name.size());
  }
  p += name.size();
  *p++ = ':';
  *p++ = ' ';
  if (!value.empty()) {
    std::memcpy(p, value.data(), value.size());
  }
  p += value.size();
  *p++ = '\r';
  *p++ = '\n';
  return p;
}

} // namespace

// One resize and straight copies: four appends per field were four calls into the string.
void appendField(std::string& out, std::string_view name, std::string_view value) {
  const size_t at = out.size();
  out.resize(at + name.size() + value.size() + 4);
  putField(out.data() + at, name, value);
}

void appendFields(std::string& out, std::span<const http1::Header> fields) {
  size_t add = 0;
  for (const auto& h : fields) {
    add += h.name.size() + h.value.size() + 4;
  }
  const size_t at = out.size();
  out.resize(at + add);
  char* p = out.data() + at;
  for (const auto& h : fields) {
    p = putField(p, h.name, h.value);
  }
}

std::string upstreamHead(const http1::Head& head, const CompiledRoute& route, const ir::WeightedBackend& backend,
                         std::string_view path, std::string_view query, const Forwarding& f) {
  std::string out;
  out.reserve(head.headBytes + 256);
  out.append(head.method).append(" "sv);
  if (route.rewrite && route.rewrite->path) {
    // URLRewrite: the new path; the query is kept.
    out.append(rewritePath(*route.rewrite->path, route.match.path, path));
    if (!query.empty()) {
      out.append("?"sv).append(query);
    }
  } else {
    out.append(head.target);
  }
  out.append(" HTTP/1.1\r\n"sv);
  std::string xff;
  const bool hasConnection = std::any_of(head.headers.begin(), head.headers.end(), isConnectionField);
  for (const auto& h : head.headers) {
    if (http1::isHopByHop(h.name) || iequals(h.name, "expect") || (hasConnection && namedByConnection(head, h.name))) {
      continue;
    }
    if (iequals(h.name, "x-forwarded-for")) {
      xff = std::string(h.value) + ", ";
      continue;
    }
    if (iequals(h.name, "x-forwarded-proto") || iequals(h.name, "x-request-id")) {
      continue;
    }
    if (iequals(h.name, "host") && route.rewrite && route.rewrite->hostname) {
      appendField(out, "host", *route.rewrite->hostname);
      continue;
    }
    // RequestHeaderModifier: set and remove replace what the client sent (rule, then backend).
    if (namedIn(route.requestHeaders, h.name) || namedIn(backend.requestHeaders, h.name)) {
      continue;
    }
    appendField(out, h.name, h.value);
  }
  appendMutation(out, route.requestHeaders);
  appendMutation(out, backend.requestHeaders);
  if (head.header("host").empty() && !(route.rewrite && route.rewrite->hostname)) {
    // An HTTP/1.0 request may come without Host; HTTP/1.1 requires one (RFC 9112 section 3.2).
    appendField(out, "host", f.fallbackHost);
  }
  out.append("x-forwarded-for: "sv).append(xff).append(f.peer).append("\r\n"sv);
  appendField(out, "x-forwarded-proto", f.tls ? "https" : "http");
  appendField(out, "x-request-id", f.requestId);
  if (!f.upgrade.empty()) {
    out.append("connection: upgrade\r\nupgrade: "sv).append(f.upgrade).append("\r\n"sv);
  }
  out.append("\r\n"sv);
  return out;
}

void appendStatusLine(std::string& out, int status, std::string_view reason) {
  out.append("HTTP/1.1 "sv).append(std::to_string(status)).append(" "sv).append(reason).append("\r\n"sv);
}

std::string hostOnly(std::string_view hostHeader) {
  std::string_view h = hostHeader;
  if (!h.empty() && h.front() == '[') { // IPv6 literal
    auto close = h.find(']');
    return toLower(h.substr(0, close == std::string_view::npos ? h.size() : close + 1));
  }
  auto colon = h.rfind(':');
  if (colon != std::string_view::npos) {
    h = h.substr(0, colon);
  }
  while (!h.empty() && h.back() == '.') {
    h.remove_suffix(1);
  }
  return toLower(h);
}

void formatUuid4(uint64_t a, uint64_t b, char (&out)[36]) {
  a = (a & 0xffffffffffff0fffULL) | 0x0000000000004000ULL; // version 4
  b = (b & 0x3fffffffffffffffULL) | 0x8000000000000000ULL; // variant 10
  // 8-4-4-4-12 hex digits, two digits per byte from a table: this runs per request.
  static constexpr auto kPairs = [] {
    constexpr char kHex[] = "0123456789abcdef";
    std::array<char, 512> t{};
    for (int i = 0; i < 256; ++i) {
      t[2 * i] = kHex[i >> 4];
      t[2 * i + 1] = kHex[i & 0xf];
    }
    return t;
  }();
  // Where each of the 16 bytes (a, then b, most significant first) goes among the dashes.
  static constexpr uint8_t kAt[16] = {0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34};
  out[8] = out[13] = out[18] = out[23] = '-';
  for (int i = 0; i < 8; ++i) {
    std::memcpy(out + kAt[i], &kPairs[2 * ((a >> (56 - 8 * i)) & 0xff)], 2);
    std::memcpy(out + kAt[8 + i], &kPairs[2 * ((b >> (56 - 8 * i)) & 0xff)], 2);
  }
}

} // namespace gantry::dataplane
