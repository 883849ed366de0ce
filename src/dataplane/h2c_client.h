#pragma once
// The client side of one HTTP/2 connection to a backend (appProtocol kubernetes.io/h2c, GEP-1911:
// HTTP/2 over cleartext TCP with prior knowledge, RFC 9113 section 3.3), sans I/O like http1.h:
// the caller moves bytes between the socket and `output()`/`feed()`. Framing, HPACK and flow
// control are nghttp2's (Debian's libnghttp2): a hand-written HTTP/2 stack would be a large
// attack surface for no gain. One request at a time per connection; connections are pooled.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

struct nghttp2_session;

namespace gantry::dataplane::h2 {

class ClientSession {
public:
  ClientSession();
  ~ClientSession();
  ClientSession(const ClientSession&) = delete;
  ClientSession& operator=(const ClientSession&) = delete;

  // Starts a request. `headers` are regular fields with lower-case names (no connection-specific
  // ones, RFC 9113 section 8.2.2). With `hasBody`, body bytes follow through body(). Returns false
  // when the session cannot take a request (closed, GOAWAY).
  bool request(std::string_view method, std::string_view scheme, std::string_view authority,
               std::string_view path, const std::vector<std::pair<std::string, std::string>>& headers,
               bool hasBody);
  // Request body bytes; `end` with the last ones (may be empty).
  void body(std::string_view data, bool end);
  // True while request body bytes are queued but not yet framed (the peer's window is shut).
  bool bodyQueued() const;

  // Frames to send, and how many of them the caller has sent.
  std::string_view output();
  void sent(size_t n);
  // Bytes from the backend; false on a protocol error (see error()).
  bool feed(std::string_view data);

  // The response to the current request.
  bool headersDone() const { return headersDone_; }
  int status() const { return status_; }
  const std::vector<std::pair<std::string, std::string>>& responseHeaders() const { return respHeaders_; }
  std::string& responseBody() { return respBody_; } // the caller takes what it has relayed
  bool streamClosed() const { return streamClosed_; }
  uint32_t streamError() const { return streamError_; } // RST_STREAM / close error code, 0 if clean

  // Whether the connection can carry another request (no GOAWAY, no error).
  bool reusable() const;
  const std::string& error() const { return error_; }

private:
  struct Callbacks;
  nghttp2_session* session_ = nullptr;
  int32_t stream_ = -1;
  std::string out_;
  size_t outSent_ = 0;
  std::string bodyQueue_;
  bool bodyEnd_ = false;
  bool bodyDeferred_ = false;
  bool headersDone_ = false;
  int status_ = 0;
  std::vector<std::pair<std::string, std::string>> respHeaders_;
  std::string respBody_;
  bool streamClosed_ = false;
  uint32_t streamError_ = 0;
  bool goaway_ = false;
  std::string error_;
};

} // namespace gantry::dataplane::h2
