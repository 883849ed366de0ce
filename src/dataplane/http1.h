#pragma once
// HTTP/1.1 message framing, sans I/O (proxygen habit): bytes in, parsed heads and body framing
// out. Written by hand rather than with Beast's parser: one pass over a contiguous buffer, no
// allocation per header (views into the caller's buffer), and strict RFC 9112 checks that close
// request-smuggling holes (both Content-Length and Transfer-Encoding, conflicting lengths, bare LF
// in the head, obs-fold). Debian 12 packages no llhttp or picohttpparser.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <boost/container/small_vector.hpp>

namespace gantry::dataplane::http1 {

struct Header {
  std::string_view name; // as received; compare case-insensitively
  std::string_view value; // leading/trailing whitespace removed
};

// A head's fields. On the heap: a keep-alive connection waiting for its next request keeps a head
// in its coroutine frame, and an idle connection should not carry room for fields it has not got.
using Fields = std::vector<Header>;
// A list of fields built for one request (the response's final fields): kept inline for up to 16.
using FieldList = boost::container::small_vector<Header, 16>;
// (Boost 1.74's small_vector does not convert to std::span by itself.)
inline std::span<const Header> asSpan(const FieldList& fields) { return {fields.data(), fields.size()}; }

enum class BodyKind {
  None,          // no body
  ContentLength, // `contentLength` bytes
  Chunked,       // chunked transfer coding (RFC 9112 section 7.1)
  UntilClose,    // response only: read until the connection closes (RFC 9112 section 6.3 item 8)
};

struct Head {
  // Request line
  std::string_view method;
  std::string_view target;
  // Status line
  int status = 0;
  std::string_view reason;
  int versionMinor = 1; // HTTP/1.x
  Fields headers;
  BodyKind body = BodyKind::None;
  uint64_t contentLength = 0;
  bool keepAlive = true;
  bool expectContinue = false;
  size_t headBytes = 0; // bytes of the head, including the final CRLF CRLF

  std::string_view header(std::string_view name) const; // first value or empty
};

enum class ParseStatus {
  Incomplete, // need more bytes
  Done,       // head parsed; `headBytes` of input consumed
  Error,      // malformed: answer `errorStatus` and close
};

struct ParseResult {
  ParseStatus status = ParseStatus::Incomplete;
  int errorStatus = 400; // 400, 413, 431, 501, 505
  std::string error;     // cause, for the log
};

// Parses a request head from `data`. `maxHeadBytes` bounds the head (431 past it).
ParseResult parseRequest(std::string_view data, size_t maxHeadBytes, Head& head);
// Parses a response head; `requestMethod` decides whether a body follows (HEAD, CONNECT).
ParseResult parseResponse(std::string_view data, size_t maxHeadBytes, std::string_view requestMethod,
                          Head& head);

// Tracks the chunked coding of a body so it can be relayed as-is: feed() reports how many of the
// given bytes belong to the message; the message ends when done() is true.
class ChunkedDecoder {
public:
  // Returns the number of bytes of `data` consumed (all, unless the message ended inside it).
  // On malformed input sets error() and returns what was consumed before the fault. With
  // `payloadOut`, the chunk data (without the framing) is appended to it.
  size_t feed(std::string_view data, std::string* payloadOut = nullptr);
  bool done() const { return state_ == State::Done; }
  bool error() const { return state_ == State::Error; }
  uint64_t payloadBytes() const { return payload_; }

private:
  enum class State {
    Size,         // hex digits of chunk-size
    Extension,    // chunk-ext up to CR
    SizeLf,       // LF after chunk-size line
    Data,         // chunk-data
    DataCr,       // CR after chunk-data
    DataLf,       // LF after chunk-data
    TrailerStart, // start of a trailer line, or the final CRLF
    Trailer,      // inside a trailer field line
    TrailerLf,    // LF ending a trailer field line
    FinalLf,      // LF ending the message
    Done,         // message complete
    Error,        // malformed
  };
  State state_ = State::Size;
  uint64_t remaining_ = 0;
  uint64_t payload_ = 0;
  int sizeDigits_ = 0;
  size_t lineBytes_ = 0;
};

// RFC 9110 section 7.6.1: connection-specific header fields a proxy must not forward.
bool isHopByHop(std::string_view name);

} // namespace gantry::dataplane::http1
