#include "dataplane/h2c_client.h"

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <cstring>

namespace gantry::dataplane::h2 {

namespace {

constexpr int32_t kStreamWindow = 1 << 20;     // per stream: fewer WINDOW_UPDATE round trips
constexpr int32_t kConnectionWindow = 4 << 20; // whole connection

nghttp2_nv field(std::string_view name, std::string_view value) {
  return nghttp2_nv{reinterpret_cast<uint8_t*>(const_cast<char*>(name.data())),
                    reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), name.size(), value.size(),
                    NGHTTP2_NV_FLAG_NONE};
}

} // namespace

struct ClientSession::Callbacks {
  static ClientSession& self(void* p) { return *static_cast<ClientSession*>(p); }

  static int onHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name, size_t namelen,
                      const uint8_t* value, size_t valuelen, uint8_t, void* user) {
    auto& s = self(user);
    if (frame->hd.type != NGHTTP2_HEADERS || frame->hd.stream_id != s.stream_ || s.headersDone_) {
      return 0; // trailers and other streams' fields are not relayed
    }
    std::string_view n(reinterpret_cast<const char*>(name), namelen);
    std::string_view v(reinterpret_cast<const char*>(value), valuelen);
    if (n == ":status") {
      int code = 0;
      for (char c : v) {
        code = code * 10 + (c - '0');
      }
      s.status_ = code;
    } else if (!n.empty() && n.front() != ':') {
      s.respHeaders_.emplace_back(n, v);
    }
    return 0;
  }

  static int onFrameRecv(nghttp2_session*, const nghttp2_frame* frame, void* user) {
    auto& s = self(user);
    if (frame->hd.type == NGHTTP2_GOAWAY) {
      s.goaway_ = true;
    } else if (frame->hd.type == NGHTTP2_HEADERS && frame->hd.stream_id == s.stream_ && !s.headersDone_ &&
               (frame->hd.flags & NGHTTP2_FLAG_END_HEADERS) != 0) {
      if (s.status_ >= 100 && s.status_ < 200) {
        s.status_ = 0; // an interim response (RFC 9113 section 8.1): the final one follows
        s.respHeaders_.clear();
      } else {
        s.headersDone_ = true;
      }
    }
    return 0;
  }

  static int onData(nghttp2_session*, uint8_t, int32_t stream, const uint8_t* data, size_t len, void* user) {
    auto& s = self(user);
    if (stream == s.stream_) {
      s.respBody_.append(reinterpret_cast<const char*>(data), len);
    }
    return 0;
  }

  static int onStreamClose(nghttp2_session*, int32_t stream, uint32_t code, void* user) {
    auto& s = self(user);
    if (stream == s.stream_) {
      s.streamClosed_ = true;
      s.streamError_ = code;
    }
    return 0;
  }

  static ssize_t readBody(nghttp2_session*, int32_t, uint8_t* buf, size_t length, uint32_t* flags,
                          nghttp2_data_source*, void* user) {
    auto& s = self(user);
    size_t n = std::min(length, s.bodyQueue_.size());
    std::memcpy(buf, s.bodyQueue_.data(), n);
    s.bodyQueue_.erase(0, n);
    if (s.bodyQueue_.empty()) {
      if (s.bodyEnd_) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
      } else if (n == 0) {
        s.bodyDeferred_ = true;
        return NGHTTP2_ERR_DEFERRED;
      }
    }
    return static_cast<ssize_t>(n);
  }
};

ClientSession::ClientSession() {
  nghttp2_session_callbacks* cb = nullptr;
  nghttp2_session_callbacks_new(&cb);
  nghttp2_session_callbacks_set_on_header_callback(cb, &Callbacks::onHeader);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cb, &Callbacks::onFrameRecv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, &Callbacks::onData);
  nghttp2_session_callbacks_set_on_stream_close_callback(cb, &Callbacks::onStreamClose);
  nghttp2_option* opt = nullptr;
  nghttp2_option_new(&opt);
  // Bounds on what a backend can make us hold: its HPACK table and header lists.
  nghttp2_option_set_max_deflate_dynamic_table_size(opt, 4096);
  if (nghttp2_session_client_new2(&session_, cb, this, opt) != 0) {
    session_ = nullptr;
    error_ = "cannot create an HTTP/2 session";
  }
  nghttp2_option_del(opt);
  nghttp2_session_callbacks_del(cb);
  if (session_ != nullptr) {
    // RFC 9113 section 3.4: the preface and our SETTINGS go first (nghttp2 adds the magic).
    const nghttp2_settings_entry settings[] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, kStreamWindow},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, 64 * 1024},
    };
    nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, sizeof settings / sizeof settings[0]);
    nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0, kConnectionWindow);
  }
}

ClientSession::~ClientSession() {
  if (session_ != nullptr) {
    nghttp2_session_del(session_);
  }
}

bool ClientSession::request(std::string_view method, std::string_view scheme, std::string_view authority,
                            std::string_view path,
                            const std::vector<std::pair<std::string, std::string>>& headers, bool hasBody) {
  if (!reusable() || (stream_ != -1 && !streamClosed_)) {
    return false;
  }
  headersDone_ = false;
  status_ = 0;
  respHeaders_.clear();
  respBody_.clear();
  streamClosed_ = false;
  streamError_ = 0;
  bodyQueue_.clear();
  bodyEnd_ = !hasBody;
  bodyDeferred_ = false;
  std::vector<nghttp2_nv> nva;
  nva.reserve(headers.size() + 4);
  nva.push_back(field(":method", method));
  nva.push_back(field(":scheme", scheme));
  nva.push_back(field(":authority", authority));
  nva.push_back(field(":path", path));
  for (const auto& [n, v] : headers) {
    nva.push_back(field(n, v));
  }
  nghttp2_data_provider provider{};
  provider.read_callback = &Callbacks::readBody;
  stream_ = nghttp2_submit_request(session_, nullptr, nva.data(), nva.size(), hasBody ? &provider : nullptr, this);
  if (stream_ < 0) {
    error_ = std::string("cannot start an HTTP/2 request: ") + nghttp2_strerror(stream_);
    return false;
  }
  return true;
}

void ClientSession::body(std::string_view data, bool end) {
  bodyQueue_.append(data);
  bodyEnd_ = bodyEnd_ || end;
  if (bodyDeferred_ && (!bodyQueue_.empty() || bodyEnd_)) {
    bodyDeferred_ = false;
    nghttp2_session_resume_data(session_, stream_);
  }
}

bool ClientSession::bodyQueued() const { return !bodyQueue_.empty(); }

std::string_view ClientSession::output() {
  if (outSent_ == out_.size()) {
    out_.clear();
    outSent_ = 0;
  }
  if (session_ == nullptr) {
    return {};
  }
  while (out_.size() < 64 * 1024) {
    const uint8_t* data = nullptr;
    ssize_t n = nghttp2_session_mem_send(session_, &data);
    if (n < 0) {
      error_ = std::string("HTTP/2 framing failed: ") + nghttp2_strerror(static_cast<int>(n));
      break;
    }
    if (n == 0) {
      break;
    }
    out_.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
  }
  return std::string_view(out_).substr(outSent_);
}

void ClientSession::sent(size_t n) { outSent_ += n; }

bool ClientSession::feed(std::string_view data) {
  if (session_ == nullptr) {
    return false;
  }
  ssize_t n = nghttp2_session_mem_recv(session_, reinterpret_cast<const uint8_t*>(data.data()), data.size());
  if (n < 0) {
    error_ = std::string("HTTP/2 protocol error from the backend: ") + nghttp2_strerror(static_cast<int>(n));
    return false;
  }
  output(); // frames the input calls for (SETTINGS ACK, WINDOW_UPDATE, or a GOAWAY) are framed now
  if (nghttp2_session_want_read(session_) == 0 && !streamClosed_) {
    // nghttp2 answered a connection error with GOAWAY (queued in output()) and reads no more.
    error_ = "the backend broke the HTTP/2 protocol (is it really kubernetes.io/h2c?)";
    return false;
  }
  return true;
}

bool ClientSession::reusable() const {
  return session_ != nullptr && error_.empty() && !goaway_ && streamError_ == 0 &&
         nghttp2_session_want_read(session_) != 0;
}

} // namespace gantry::dataplane::h2
