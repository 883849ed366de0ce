#include "dataplane/http1.h"

#include <algorithm>
#include <array>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "common/strings.h"

namespace gantry::dataplane::http1 {

std::string_view Head::header(std::string_view name) const {
  for (const auto& h : headers) {
    if (iequals(h.name, name)) {
      return h.value;
    }
  }
  return {};
}

namespace {

// Byte classes for the head's grammar, looked up instead of compared one case at a time (the
// parser runs twice per proxied request).
enum : uint8_t { kTchar = 1, kFieldValue = 2 };

constexpr std::array<uint8_t, 256> makeClasses() {
  std::array<uint8_t, 256> t{};
  // RFC 9110 section 5.6.2: tchar.
  for (unsigned c = 0; c < 256; ++c) {
    const bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (alnum || std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos) {
      t[c] |= kTchar;
    }
    // RFC 9110 section 5.5: field-value chars (VCHAR, obs-text, SP, HTAB); no CR, LF or NUL.
    if ((c >= 0x20 || c == '\t') && c != 0x7f) {
      t[c] |= kFieldValue;
    }
  }
  return t;
}
constexpr std::array<uint8_t, 256> kClasses = makeClasses();

// The first byte from `pos` on whose class lacks `cls`, or `n`: one byte at a time.
size_t scanClass(const char* p, size_t pos, size_t n, uint8_t cls) {
  while (pos < n && (kClasses[static_cast<unsigned char>(p[pos])] & cls) != 0) {
    ++pos;
  }
  return pos;
}

// The first byte from `pos` on that cannot be in a field value (kFieldValue), or `n`. Values are
// most of a head's bytes; SSE2 (every x86-64) checks 16 at a time, the table does the rest.
size_t scanFieldValue(const char* p, size_t pos, size_t n) {
#if defined(__SSE2__)
  const __m128i flip = _mm_set1_epi8(static_cast<char>(0x80)); // unsigned order as signed
  const __m128i space = _mm_set1_epi8(static_cast<char>(0x20 ^ 0x80));
  const __m128i tab = _mm_set1_epi8('\t');
  const __m128i del = _mm_set1_epi8(0x7f);
  while (pos + 16 <= n) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + pos));
    __m128i stop = _mm_cmplt_epi8(_mm_xor_si128(v, flip), space); // controls (below SP)...
    stop = _mm_andnot_si128(_mm_cmpeq_epi8(v, tab), stop);         // ...but HTAB
    stop = _mm_or_si128(stop, _mm_cmpeq_epi8(v, del));             // and DEL
    const int mask = _mm_movemask_epi8(stop);
    if (mask != 0) {
      return pos + static_cast<size_t>(__builtin_ctz(static_cast<unsigned>(mask)));
    }
    pos += 16;
  }
#endif
  return scanClass(p, pos, n, kFieldValue);
}

// Where a field name starting at `pos` ends: the first byte that is not a tchar (RFC 9110 section
// 5.6.2). Names are mostly letters, digits and '-': those are passed 16 at a time; at any other
// byte (':' ends the name; '_', '.' and the rest of tchar go on) the table decides, byte by byte.
size_t scanFieldName(const char* p, size_t pos, size_t n) {
#if defined(__SSE2__)
  const __m128i toA = _mm_set1_epi8(static_cast<char>(128 - 'a')); // 'a'..'z' -> -128..-103
  const __m128i to0 = _mm_set1_epi8(static_cast<char>(128 - '0')); // '0'..'9' -> -128..-119
  const __m128i letters = _mm_set1_epi8(static_cast<char>(-128 + 26));
  const __m128i digits = _mm_set1_epi8(static_cast<char>(-128 + 10));
  const __m128i lowerBit = _mm_set1_epi8(0x20);
  const __m128i dash = _mm_set1_epi8('-');
  while (pos + 16 <= n) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + pos));
    __m128i ok = _mm_cmplt_epi8(_mm_add_epi8(_mm_or_si128(v, lowerBit), toA), letters);
    ok = _mm_or_si128(ok, _mm_cmplt_epi8(_mm_add_epi8(v, to0), digits));
    ok = _mm_or_si128(ok, _mm_cmpeq_epi8(v, dash));
    const unsigned other = ~static_cast<unsigned>(_mm_movemask_epi8(ok)) & 0xffffU;
    if (other == 0) {
      pos += 16;
      continue;
    }
    pos += static_cast<size_t>(__builtin_ctz(other));
    if ((kClasses[static_cast<unsigned char>(p[pos])] & kTchar) == 0) {
      return pos;
    }
    ++pos; // another tchar: carry on past it
  }
#endif
  return scanClass(p, pos, n, kTchar);
}

bool isToken(std::string_view s) {
  return !s.empty() && scanClass(s.data(), 0, s.size(), kTchar) == s.size();
}

ParseResult fail(int status, std::string why) {
  return {ParseStatus::Error, status, std::move(why)};
}

// Finds the end of the head (CRLF CRLF). Returns npos when not there yet.
size_t findHeadEnd(std::string_view data) {
  return data.find("\r\n\r\n");
}

// Parses header lines in `block` (everything after the start line, up to but excluding the final
// CRLF) and derives framing. `isRequest` selects the request rules of RFC 9112 section 6.
ParseResult parseFields(std::string_view block, Head& head, bool isRequest) {
  bool sawTe = false;
  bool chunked = false;
  bool sawLength = false;
  uint64_t length = 0;
  bool connClose = false;
  bool connKeepAlive = false;
  // One pass over each line: name, colon, optional whitespace, value, CRLF (RFC 9112 section 5).
  if (head.headers.capacity() == 0) {
    head.headers.reserve(16); // one allocation for the usual head
  }
  const char* p = block.data();
  const size_t n = block.size();
  size_t pos = 0;
  while (pos < n) {
    if (p[pos] == '\r' && pos + 1 < n && p[pos + 1] == '\n') {
      pos += 2; // an empty line
      continue;
    }
    if (p[pos] == ' ' || p[pos] == '\t') {
      return fail(400, "obsolete line folding in header"); // RFC 9112 section 5.2
    }
    const size_t nameStart = pos;
    pos = scanFieldName(p, pos, n);
    if (pos == n || p[pos] != ':' || pos == nameStart) {
      const size_t eol = block.find("\r\n", nameStart);
      const bool colon = block.substr(nameStart, eol == std::string_view::npos ? eol : eol - nameStart).find(':') !=
                         std::string_view::npos;
      // (Also rejects "name :", RFC 9112 section 5.1.)
      return fail(400, colon ? "invalid header name" : "header line without a colon");
    }
    std::string_view name(p + nameStart, pos - nameStart);
    ++pos; // the colon
    while (pos < n && (p[pos] == ' ' || p[pos] == '\t')) {
      ++pos;
    }
    const size_t valueStart = pos;
    pos = scanFieldValue(p, pos, n);
    size_t valueEnd = pos;
    if (pos < n) {
      if (p[pos] != '\r' || pos + 1 >= n || p[pos + 1] != '\n') {
        return fail(400, "invalid character in header " + std::string(name));
      }
      pos += 2;
    }
    while (valueEnd > valueStart && (p[valueEnd - 1] == ' ' || p[valueEnd - 1] == '\t')) {
      --valueEnd;
    }
    std::string_view value(p + valueStart, valueEnd - valueStart);
    head.headers.push_back({name, value});
    if (iequals(name, "content-length")) {
      // RFC 9110 section 8.6: a list of identical values may be accepted; anything else is invalid.
      for (auto part : SplitView(value, ',')) {
        auto v = parseUint(trimOws(part));
        if (!v) {
          return fail(400, "invalid Content-Length");
        }
        if (sawLength && *v != length) {
          return fail(400, "conflicting Content-Length values");
        }
        sawLength = true;
        length = *v;
      }
    } else if (iequals(name, "transfer-encoding")) {
      sawTe = true;
      size_t codings = 0;
      for (auto coding : SplitView(value, ',')) {
        if (chunked) {
          return fail(400, "chunked applied more than once"); // chunked before another coding
        }
        chunked = iequals(trimOws(coding), "chunked");
        ++codings;
      }
      if (isRequest && !chunked) {
        // RFC 9112 section 6.3 item 4: a request whose final coding is not chunked cannot be framed.
        return fail(400, "Transfer-Encoding without chunked as the final coding");
      }
      if (isRequest && codings > 1) {
        return fail(501, "unsupported transfer coding");
      }
    } else if (iequals(name, "connection")) {
      for (auto part : SplitView(value, ',')) {
        auto tok = trimOws(part);
        if (iequals(tok, "close")) {
          connClose = true;
        } else if (iequals(tok, "keep-alive")) {
          connKeepAlive = true;
        }
      }
    } else if (isRequest && iequals(name, "expect")) {
      if (iequals(value, "100-continue")) {
        head.expectContinue = true;
      }
    }
  }
  if (sawTe && sawLength) {
    if (isRequest) {
      // RFC 9112 section 6.3 item 3: may be smuggling; we reject rather than guess.
      return fail(400, "both Transfer-Encoding and Content-Length");
    }
    sawLength = false; // responses: Transfer-Encoding overrides Content-Length
  }
  if (sawTe) {
    head.body = chunked ? BodyKind::Chunked : BodyKind::UntilClose;
  } else if (sawLength) {
    head.body = length > 0 || !isRequest ? BodyKind::ContentLength : BodyKind::None;
    head.contentLength = length;
  } else {
    head.body = isRequest ? BodyKind::None : BodyKind::UntilClose;
  }
  head.keepAlive = head.versionMinor >= 1 ? !connClose : (connKeepAlive && !connClose);
  return {ParseStatus::Done, 0, {}};
}

ParseResult parseVersion(std::string_view v, Head& head) {
  if (v.size() != 8 || v.substr(0, 5) != "HTTP/" || v[6] != '.' || v[5] < '0' || v[5] > '9' ||
      v[7] < '0' || v[7] > '9') {
    return fail(400, "malformed HTTP version");
  }
  if (v[5] != '1') {
    return fail(505, "HTTP version not supported");
  }
  head.versionMinor = v[7] - '0';
  return {ParseStatus::Done, 0, {}};
}

} // namespace

ParseResult parseRequest(std::string_view data, size_t maxHeadBytes, Head& head) {
  // RFC 9112 section 2.2: a server SHOULD ignore at least one empty line before the request-line.
  size_t skip = 0;
  while (skip + 1 < data.size() && data[skip] == '\r' && data[skip + 1] == '\n') {
    skip += 2;
  }
  size_t end = findHeadEnd(data.substr(skip));
  if (end == std::string_view::npos) {
    if (data.size() > maxHeadBytes) {
      return fail(431, "request header fields too large");
    }
    return {};
  }
  end += skip;
  if (end + 4 > maxHeadBytes) {
    return fail(431, "request header fields too large");
  }
  std::string_view block = data.substr(skip, end - skip);
  // Every LF must be part of a CRLF, and every CR (RFC 9112 section 2.2: no bare CR). Checked from
  // LF to LF: when each LF follows a CR, a bare CR shows as more CRs than LFs.
  size_t lfs = 0;
  for (size_t i = block.find('\n'); i != std::string_view::npos; i = block.find('\n', i + 1)) {
    if (i == 0 || block[i - 1] != '\r') {
      return fail(400, "bare LF in request head");
    }
    ++lfs;
  }
  if (static_cast<size_t>(std::count(block.begin(), block.end(), '\r')) != lfs) {
    return fail(400, "bare CR in request head");
  }
  size_t lineEnd = block.find("\r\n");
  std::string_view line = block.substr(0, lineEnd);
  size_t sp1 = line.find(' ');
  size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp1 == std::string_view::npos || sp2 == std::string_view::npos ||
      line.find(' ', sp2 + 1) != std::string_view::npos) {
    return fail(400, "malformed request line");
  }
  head.method = line.substr(0, sp1);
  head.target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  if (!isToken(head.method)) {
    return fail(400, "invalid method");
  }
  if (head.target.empty()) {
    return fail(400, "empty request target");
  }
  for (char c : head.target) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f) {
      return fail(400, "invalid character in request target");
    }
  }
  if (auto r = parseVersion(line.substr(sp2 + 1), head); r.status == ParseStatus::Error) {
    return r;
  }
  std::string_view fields = lineEnd == std::string_view::npos ? std::string_view{} : block.substr(lineEnd + 2);
  auto r = parseFields(fields, head, true);
  if (r.status == ParseStatus::Error) {
    return r;
  }
  // RFC 9112 section 3.2: a request without Host in HTTP/1.1 gets 400.
  size_t hosts = 0;
  for (const auto& h : head.headers) {
    if (iequals(h.name, "host")) {
      hosts++;
    }
  }
  if ((head.versionMinor >= 1 && hosts == 0) || hosts > 1) {
    return fail(400, hosts == 0 ? "missing Host header" : "more than one Host header");
  }
  head.headBytes = end + 4;
  return {ParseStatus::Done, 0, {}};
}

ParseResult parseResponse(std::string_view data, size_t maxHeadBytes, std::string_view requestMethod,
                          Head& head) {
  size_t end = findHeadEnd(data);
  if (end == std::string_view::npos) {
    if (data.size() > maxHeadBytes) {
      return fail(502, "upstream response head too large");
    }
    return {};
  }
  std::string_view block = data.substr(0, end);
  size_t lineEnd = block.find("\r\n");
  std::string_view line = block.substr(0, lineEnd);
  if (line.size() < 12 || line[8] != ' ') {
    return fail(502, "malformed upstream status line");
  }
  if (auto r = parseVersion(line.substr(0, 8), head); r.status == ParseStatus::Error) {
    return fail(502, "upstream: " + r.error);
  }
  auto code = parseUint(line.substr(9, 3));
  if (!code || *code < 100 || *code > 999 || (line.size() > 12 && line[12] != ' ')) {
    return fail(502, "malformed upstream status code");
  }
  head.status = static_cast<int>(*code);
  head.reason = line.size() > 13 ? line.substr(13) : std::string_view{};
  std::string_view fields = lineEnd == std::string_view::npos ? std::string_view{} : block.substr(lineEnd + 2);
  auto r = parseFields(fields, head, false);
  if (r.status == ParseStatus::Error) {
    return fail(502, "upstream: " + r.error);
  }
  // RFC 9112 section 6.3 items 1-2: no body for HEAD, 1xx, 204, 304, and 2xx to CONNECT.
  if (requestMethod == "HEAD" || (head.status >= 100 && head.status < 200) || head.status == 204 ||
      head.status == 304 || (requestMethod == "CONNECT" && head.status / 100 == 2)) {
    head.body = BodyKind::None;
  }
  if (head.body == BodyKind::UntilClose) {
    head.keepAlive = false;
  }
  head.headBytes = end + 4;
  return {ParseStatus::Done, 0, {}};
}

size_t ChunkedDecoder::feed(std::string_view data, std::string* payloadOut) {
  size_t i = 0;
  constexpr size_t kMaxLine = 4096; // chunk-size lines and trailer lines
  while (i < data.size() && state_ != State::Done && state_ != State::Error) {
    char c = data[i];
    switch (state_) {
    case State::Size: {
      int digit = -1;
      if (c >= '0' && c <= '9') {
        digit = c - '0';
      } else if (c >= 'a' && c <= 'f') {
        digit = c - 'a' + 10;
      } else if (c >= 'A' && c <= 'F') {
        digit = c - 'A' + 10;
      }
      if (digit >= 0) {
        if (++sizeDigits_ > 15) {
          state_ = State::Error; // larger than any body we would accept
          return i;
        }
        remaining_ = remaining_ * 16 + static_cast<uint64_t>(digit);
        ++i;
      } else if (sizeDigits_ == 0) {
        state_ = State::Error;
        return i;
      } else if (c == ';' || c == ' ' || c == '\t') {
        state_ = State::Extension;
        lineBytes_ = 0;
        ++i;
      } else if (c == '\r') {
        state_ = State::SizeLf;
        ++i;
      } else {
        state_ = State::Error;
        return i;
      }
      break;
    }
    case State::Extension:
      if (c == '\r') {
        state_ = State::SizeLf;
      } else if (c == '\n' || ++lineBytes_ > kMaxLine) {
        state_ = State::Error;
        return i;
      }
      ++i;
      break;
    case State::SizeLf:
      if (c != '\n') {
        state_ = State::Error;
        return i;
      }
      ++i;
      sizeDigits_ = 0;
      state_ = remaining_ == 0 ? State::TrailerStart : State::Data;
      break;
    case State::Data: {
      size_t take = static_cast<size_t>(std::min<uint64_t>(remaining_, data.size() - i));
      if (payloadOut != nullptr) {
        payloadOut->append(data.substr(i, take));
      }
      i += take;
      remaining_ -= take;
      payload_ += take;
      if (remaining_ == 0) {
        state_ = State::DataCr;
      }
      break;
    }
    case State::DataCr:
      if (c != '\r') {
        state_ = State::Error;
        return i;
      }
      ++i;
      state_ = State::DataLf;
      break;
    case State::DataLf:
      if (c != '\n') {
        state_ = State::Error;
        return i;
      }
      ++i;
      state_ = State::Size;
      break;
    case State::TrailerStart:
      if (c == '\r') {
        state_ = State::FinalLf;
      } else if (c == '\n') {
        state_ = State::Error;
        return i;
      } else {
        state_ = State::Trailer;
        lineBytes_ = 1;
      }
      ++i;
      break;
    case State::Trailer:
      if (c == '\r') {
        state_ = State::TrailerLf;
      } else if (c == '\n' || ++lineBytes_ > kMaxLine) {
        state_ = State::Error;
        return i;
      }
      ++i;
      break;
    case State::TrailerLf:
      if (c != '\n') {
        state_ = State::Error;
        return i;
      }
      ++i;
      state_ = State::TrailerStart;
      break;
    case State::FinalLf:
      if (c != '\n') {
        state_ = State::Error;
        return i;
      }
      ++i;
      state_ = State::Done;
      break;
    case State::Done:
    case State::Error:
      break;
    }
  }
  return i;
}

bool isHopByHop(std::string_view name) {
  // RFC 9110 section 7.6.1. Transfer-Encoding is relayed: chunked bodies pass through byte for
  // byte. (By length first: most fields are none of these.)
  switch (name.size()) {
  case 2:
    return iequals(name, "te");
  case 7:
    return iequals(name, "upgrade");
  case 10:
    return iequals(name, "connection") || iequals(name, "keep-alive");
  case 16:
    return iequals(name, "proxy-connection");
  default:
    return false;
  }
}

} // namespace gantry::dataplane::http1
