// HTTP/2 from clients (RFC 9113), over TLS with ALPN h2. nghttp2 (Debian's libnghttp2) does the
// framing, HPACK, stream states and flow control; each request stream is then served by the same
// request path as HTTP/1.1 (routing, filters, backends, timeouts, logs) through a Pipe. Heads
// cross it parsed (the request head built from the stream's fields, the response head handed
// back as fields); bodies cross it as bytes in HTTP/1.1 framing. Gantry's own short answers
// (errors, redirects) come back as HTTP/1.1 text and are parsed here.
#include <nghttp2/nghttp2.h>
#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <cstring>
#include <iterator>
#include <vector>

#include "common/strings.h"
#include "dataplane/http1.h"
#include "dataplane/worker.h"

namespace gantry::dataplane {

namespace {

constexpr size_t kMaxRequestHead = 60 * 1024;      // as for HTTP/1.1: 431 past it
constexpr uint32_t kMaxConcurrentStreams = 128;
constexpr int32_t kStreamWindow = 256 * 1024;      // request body bytes buffered per stream
constexpr size_t kMaxBufferedResponse = 256 * 1024; // response bytes waiting for DATA frames
constexpr auto kIdleTimeout = std::chrono::seconds(300);
constexpr uint32_t kMaxResetsPerSecond = 200; // client RST_STREAMs per connection

class Session;

// Wakes one coroutine that waits for a condition: an Asio timer that never expires, cancelled to
// wake. Made at the first wait, because most streams never wait (a GET has no body to wait for, a
// small answer fits the window) and making a timer costs a service-registry search under a mutex.
class Wakeup {
public:
  explicit Wakeup(asio::io_context& ctx) : ctx_(&ctx) {}
  void wake() {
    if (timer_) {
      timer_->cancel();
    }
  }
  // Returns after wake() (or when the context goes away): the caller checks its condition again.
  auto wait() {
    if (!timer_) {
      timer_.emplace(*ctx_);
    }
    timer_->expires_at(std::chrono::steady_clock::time_point::max());
    return timer_->async_wait(asio::redirect_error(use_awaitable, ignored_));
  }

private:
  asio::io_context* ctx_;
  std::optional<asio::steady_timer> timer_;
  error_code ignored_;
};

// One request stream: a Pipe for the HTTP/1.1 request path on one side, frames on the other.
class H2Stream : public Pipe {
public:
  H2Stream(Session& s, int32_t id, asio::io_context& ctx, Metrics& metrics)
      : metrics_(&metrics), session_(&s), id_(id), inReady_(ctx), outSpace_(ctx) {}

  int32_t id() const { return id_; }
  bool counted = false; // in Metrics::h2StreamsOpen until the stream closes
  ~H2Stream() override { uncount(); }
  void uncount() {
    if (counted) {
      Metrics::dec(metrics_->h2StreamsOpen);
    }
    counted = false;
  }

  // --- request side, fed by the session
  std::string method, path, authority, scheme;
  size_t headBytes = 0;
  bool tooLarge = false;
  bool hasContentLength = false;

  // A regular field of the request; the pseudo-header fields came first (RFC 9113 section 8.3,
  // enforced by nghttp2), so :authority is known by then.
  void field(std::string_view n, std::string_view v);
  void start(bool endStream);
  void requestData(const uint8_t* data, size_t len);
  void requestEnd();

  // --- response side, drained by nghttp2
  ssize_t readResponse(uint8_t* buf, size_t length, uint32_t* flags);
  // The stream is over for nghttp2 (closed, reset, or the connection gone): it leaves the drain
  // count and forgets the session, which its request path may outlive.
  void ended();

  // --- Pipe
  awaitable<size_t> read(asio::mutable_buffer b, error_code& ec) override;
  awaitable<void> waitReadable(error_code& ec) override;
  awaitable<void> write(asio::const_buffer b, error_code& ec) override;
  void shutdown() override;
  void close() override;
  SSL* ssl() override;
  bool respond(int status, std::span<const http1::Header> fields, http1::BodyKind body, uint64_t contentLength) override;
  bool requestHead(http1::Head& head, std::string& error) override;

private:
  void wake() {
    inReady_.wake();
    outSpace_.wake();
  }
  bool responseHead();
  // Submits HEADERS for a final response (and the DATA provider when a body follows).
  bool submit(int status, std::span<const http1::Header> fields, http1::BodyKind body, uint64_t contentLength);
  void responseBody(std::string_view bytes);

  Metrics* metrics_;
  Session* session_;
  int32_t id_;
  void addField(std::string_view n, std::string_view v);
  // The regular fields, names and values back to back; views into it are taken in requestHead,
  // once it no longer grows.
  struct FieldAt {
    size_t name, nameLen, value, valueLen;
  };
  std::string fieldText_;
  boost::container::small_vector<FieldAt, 16> fieldsAt_;
  bool bodyless_ = false; // END_STREAM came with the HEADERS
  // request body bytes (HTTP/1.1-framed) not yet read by the request path
  std::string in_;
  std::string cookie_;
  bool inEnd_ = false;
  bool chunkedIn_ = false;
  size_t unconsumed_ = 0; // DATA bytes received but not yet given back to the window
  Wakeup inReady_;
  // response
  std::string raw_;          // HTTP/1.1 response bytes before the head is complete
  bool headDone_ = false;
  http1::BodyKind kind_ = http1::BodyKind::None;
  uint64_t left_ = 0;
  http1::ChunkedDecoder chunks_;
  std::string out_;          // body bytes for DATA frames
  bool outEnd_ = false;
  bool deferred_ = false;
  bool complete_ = false;    // the response was wholly framed
  bool closed_ = false;      // the stream is gone (RST, end of connection)
  Wakeup outSpace_;
};

class Session : public std::enable_shared_from_this<Session>, public DrainListener {
public:
  Session(Worker& w, Stream stream, std::string portKey, std::string peer)
      : worker_(w), stream_(std::move(stream)), portKey_(std::move(portKey)), peer_(std::move(peer)),
        idle_(w.context()), wake_(w.context()) {}
  ~Session() {
    if (session_ != nullptr) {
      nghttp2_session_del(session_);
    }
  }

  awaitable<void> run();
  void flush();
  // RFC 9113 section 6.8: a graceful GOAWAY; streams already open finish.
  void drain() override {
    if (session_ != nullptr && !dead_) {
      nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(session_),
                            NGHTTP2_NO_ERROR, nullptr, 0);
      flush();
    }
  }
  nghttp2_session* raw() { return session_; }
  SSL* ssl() { return stream_.ownSsl(); }
  Worker& worker() { return worker_; }

private:
  struct Cb;
  // Sends what nghttp2 has to send, for the whole life of the session: flush() wakes it. (One
  // coroutine per session rather than one spawned per flush.)
  awaitable<void> writer();
  void touch();
  // Counts a client RST_STREAM; true when this second's budget is spent.
  bool tooManyResets() {
    const auto now = std::chrono::steady_clock::now();
    if (now - resetWindow_ > std::chrono::seconds(1)) {
      resetWindow_ = now;
      resets_ = 0;
    }
    return ++resets_ > kMaxResetsPerSecond;
  }
  std::chrono::steady_clock::time_point resetWindow_;
  uint32_t resets_ = 0;

  Worker& worker_;
  Stream stream_;
  std::string portKey_;
  std::string peer_;
  nghttp2_session* session_ = nullptr;
  // The open streams, in no order: at most kMaxConcurrentStreams and usually a handful, so a scan
  // costs less than a tree and allocates nothing per stream.
  std::vector<std::shared_ptr<H2Stream>> streams_;
  std::shared_ptr<H2Stream>* slot(int32_t id) {
    for (auto& st : streams_) {
      if (st->id() == id) {
        return &st;
      }
    }
    return nullptr;
  }
  H2Stream* find(int32_t id) {
    auto* held = slot(id);
    return held != nullptr ? held->get() : nullptr;
  }
  // Drops the session's hold on the stream (its request path may hold it longer).
  void erase(const H2Stream* stream) {
    for (auto& st : streams_) {
      if (st.get() == stream) {
        if (&st != &streams_.back()) {
          st = std::move(streams_.back());
        }
        streams_.pop_back();
        return;
      }
    }
  }
  bool writerRunning_ = false;
  bool writerWaiting_ = false;
  bool dead_ = false;
  asio::steady_timer idle_;
  Wakeup wake_; // the writer waits on it
  std::chrono::steady_clock::time_point lastActivity_;
  friend class H2Stream;
};

// --- H2Stream ------------------------------------------------------------------------------

void H2Stream::addField(std::string_view n, std::string_view v) {
  fieldsAt_.push_back({fieldText_.size(), n.size(), fieldText_.size() + n.size(), v.size()});
  fieldText_.append(n).append(v);
}

void H2Stream::field(std::string_view n, std::string_view v) {
  if (n == "host" && !authority.empty()) {
    return; // RFC 9113 section 8.3.1: :authority stands for Host
  }
  if (n == "cookie") {
    // Section 8.2.3: split cookie fields are joined with "; " before going to HTTP/1.1.
    cookie_.append(cookie_.empty() ? "" : "; ").append(v);
    return;
  }
  hasContentLength = hasContentLength || n == "content-length";
  addField(n, v);
}

void H2Stream::start(bool endStream) {
  if (!cookie_.empty()) {
    addField("cookie", cookie_);
  }
  if (!endStream && !hasContentLength) {
    chunkedIn_ = true; // a body of unknown length: chunked for the HTTP/1.1 side
    addField("transfer-encoding", "chunked");
  }
  bodyless_ = endStream;
  inEnd_ = endStream;
}

bool H2Stream::requestHead(http1::Head& head, std::string& error) {
  head.method = method;
  head.target = path;
  head.versionMinor = 1;
  head.keepAlive = false; // one request per stream
  head.headBytes = 0;     // nothing of the head is in the body bytes read() gives
  // nghttp2 checks :path; the backend's request line must hold whatever it lets through.
  for (char c : path) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f) {
      error = "invalid character in request target";
      return false;
    }
  }
  if (path.empty()) {
    error = "empty request target";
    return false;
  }
  size_t hosts = 0;
  head.headers.reserve(fieldsAt_.size() + 1);
  if (!authority.empty()) {
    head.headers.push_back({"host", authority});
    hosts++;
  }
  uint64_t length = 0;
  for (const auto& f : fieldsAt_) {
    std::string_view n(fieldText_.data() + f.name, f.nameLen);
    std::string_view v(fieldText_.data() + f.value, f.valueLen);
    head.headers.push_back({n, v});
    // (Names arrive in lower case: RFC 9113 section 8.2.1, enforced by nghttp2.)
    if (n == "host") {
      hosts++;
    } else if (n == "content-length") {
      // nghttp2 admits one decimal value and holds the DATA to it (RFC 9113 section 8.1.1).
      length = parseUint(v).value_or(0);
    } else if (n == "expect" && iequals(v, "100-continue")) {
      head.expectContinue = true;
    }
  }
  if (hosts != 1) {
    // RFC 9112 section 3.2, as for HTTP/1.1: exactly one Host. (nghttp2 already resets such a
    // stream; this holds should its checks change.)
    error = hosts == 0 ? "missing Host header" : "more than one Host header";
    return false;
  }
  if (bodyless_) {
    head.body = http1::BodyKind::None;
  } else if (chunkedIn_) {
    head.body = http1::BodyKind::Chunked;
  } else {
    head.body = length > 0 ? http1::BodyKind::ContentLength : http1::BodyKind::None;
    head.contentLength = length;
  }
  return true;
}

void H2Stream::requestData(const uint8_t* data, size_t len) {
  if (chunkedIn_) {
    char size[20];
    int n = snprintf(size, sizeof size, "%zx\r\n", len);
    in_.append(size, static_cast<size_t>(n));
    in_.append(reinterpret_cast<const char*>(data), len);
    in_.append("\r\n");
  } else {
    in_.append(reinterpret_cast<const char*>(data), len);
  }
  unconsumed_ += len;
  inReady_.wake();
}

void H2Stream::requestEnd() {
  if (chunkedIn_ && !inEnd_) {
    in_.append("0\r\n\r\n");
  }
  inEnd_ = true;
  inReady_.wake();
}

awaitable<void> H2Stream::waitReadable(error_code& ec) {
  while (in_.empty() && !inEnd_ && !closed_) {
    co_await inReady_.wait();
  }
  if (in_.empty() && (inEnd_ || closed_)) {
    ec = asio::error::eof;
  }
}

awaitable<size_t> H2Stream::read(asio::mutable_buffer b, error_code& ec) {
  if (in_.empty()) {
    co_await waitReadable(ec);
    if (ec) {
      co_return 0;
    }
  }
  size_t n = std::min(b.size(), in_.size());
  std::memcpy(b.data(), in_.data(), n);
  in_.erase(0, n);
  // Flow control follows what the request path has taken, so a slow backend holds the client.
  if (unconsumed_ > 0 && session_ != nullptr) {
    size_t give = std::min(unconsumed_, n);
    unconsumed_ -= give;
    nghttp2_session_consume(session_->raw(), id_, give);
    session_->flush();
  }
  co_return n;
}

SSL* H2Stream::ssl() { return session_ != nullptr ? session_->ssl() : nullptr; }

awaitable<void> H2Stream::write(asio::const_buffer b, error_code& ec) {
  if (closed_ || session_ == nullptr) {
    ec = asio::error::broken_pipe;
    co_return;
  }
  std::string_view bytes(static_cast<const char*>(b.data()), b.size());
  if (!headDone_) {
    raw_.append(bytes);
    if (!responseHead()) {
      if (closed_) {
        ec = asio::error::broken_pipe;
      }
      co_return;
    }
    bytes = {};
    std::string rest = std::move(raw_);
    raw_.clear();
    responseBody(rest);
  } else {
    responseBody(bytes);
  }
  session_->flush();
  // Back pressure: wait while nghttp2 has not framed what we hold (the client's window is shut).
  while (out_.size() > kMaxBufferedResponse && !closed_ && session_ != nullptr) {
    co_await outSpace_.wait();
  }
  if (closed_) {
    ec = asio::error::broken_pipe;
  }
}

// Parses the HTTP/1.1 response head in raw_ (a reply of Gantry's own: errors, redirects) and
// submits HEADERS. False while incomplete or on error (then the stream is reset). Leaves the
// bytes after the head in raw_.
bool H2Stream::responseHead() {
  while (true) {
    http1::Head h;
    auto r = http1::parseResponse(raw_, 64 * 1024, method, h);
    if (r.status == http1::ParseStatus::Incomplete) {
      return false;
    }
    if (r.status == http1::ParseStatus::Error) {
      spdlog::warn("HTTP/2 stream {}: cannot relay the response: {}", id_, r.error);
      close();
      return false;
    }
    if (h.status < 200) {
      raw_.erase(0, h.headBytes); // interim responses are not relayed
      continue;
    }
    if (!submit(h.status, h.headers, h.body, h.contentLength)) {
      return false;
    }
    raw_.erase(0, h.headBytes);
    return true;
  }
}

bool H2Stream::respond(int status, std::span<const http1::Header> fields, http1::BodyKind body, uint64_t contentLength) {
  if (closed_ || session_ == nullptr || headDone_) {
    return false;
  }
  // The body's write() or the end of the request path flushes: HEADERS and DATA leave together.
  return submit(status, fields, body, contentLength);
}

bool H2Stream::submit(int status, std::span<const http1::Header> fields, http1::BodyKind body, uint64_t contentLength) {
  const char statusText[3] = {static_cast<char>('0' + status / 100 % 10), static_cast<char>('0' + status / 10 % 10),
                               static_cast<char>('0' + status % 10)}; // 100-999, as parsed
  // Lower-case names (RFC 9113 section 8.2) in one block that does not move while nva points
  // into it. (On the stack for the usual response; only a large head takes the heap.)
  size_t nameBytes = 0;
  for (const auto& f : fields) {
    nameBytes += f.name.size();
  }
  char namesOnStack[2048];
  std::unique_ptr<char[]> namesOnHeap;
  char* names = namesOnStack;
  if (nameBytes > sizeof namesOnStack) {
    namesOnHeap = std::make_unique<char[]>(nameBytes);
    names = namesOnHeap.get();
  }
  size_t namesUsed = 0;
  nghttp2_nv nvOnStack[48];
  std::vector<nghttp2_nv> nvOnHeap;
  nghttp2_nv* nva = nvOnStack;
  if (fields.size() + 1 > std::size(nvOnStack)) {
    nvOnHeap.resize(fields.size() + 1);
    nva = nvOnHeap.data();
  }
  size_t nvUsed = 0;
  auto nv = [](std::string_view n, std::string_view v) {
    return nghttp2_nv{reinterpret_cast<uint8_t*>(const_cast<char*>(n.data())),
                      reinterpret_cast<uint8_t*>(const_cast<char*>(v.data())), n.size(), v.size(),
                      NGHTTP2_NV_FLAG_NONE};
  };
  nva[nvUsed++] = nv(":status", std::string_view(statusText, 3));
  for (const auto& f : fields) {
    // RFC 9113 section 8.2.2: no connection-specific fields; names in lower case.
    if (http1::isHopByHop(f.name) || iequals(f.name, "transfer-encoding")) {
      continue;
    }
    char* lower = names + namesUsed;
    for (size_t i = 0; i < f.name.size(); ++i) {
      lower[i] = asciiLower(f.name[i]);
    }
    namesUsed += f.name.size();
    nva[nvUsed++] = nv(std::string_view(lower, f.name.size()), f.value);
  }
  kind_ = body;
  left_ = contentLength;
  const bool bodyless = kind_ == http1::BodyKind::None || (kind_ == http1::BodyKind::ContentLength && left_ == 0);
  nghttp2_data_provider provider{};
  provider.source.ptr = this;
  provider.read_callback = [](nghttp2_session*, int32_t, uint8_t* buf, size_t length, uint32_t* flags,
                              nghttp2_data_source* src, void*) -> ssize_t {
    return static_cast<H2Stream*>(src->ptr)->readResponse(buf, length, flags);
  };
  int rv = nghttp2_submit_response(session_->raw(), id_, nva, nvUsed, bodyless ? nullptr : &provider);
  if (rv != 0) {
    spdlog::warn("HTTP/2 stream {}: cannot submit the response: {}", id_, nghttp2_strerror(rv));
    close();
    return false;
  }
  headDone_ = true;
  complete_ = bodyless;
  return true;
}

void H2Stream::responseBody(std::string_view bytes) {
  if (complete_ || bytes.empty()) {
    return;
  }
  switch (kind_) {
  case http1::BodyKind::ContentLength: {
    size_t take = static_cast<size_t>(std::min<uint64_t>(left_, bytes.size()));
    out_.append(bytes.substr(0, take));
    left_ -= take;
    if (left_ == 0) {
      outEnd_ = true;
    }
    break;
  }
  case http1::BodyKind::Chunked:
    chunks_.feed(bytes, &out_);
    if (chunks_.error()) {
      close();
      return;
    }
    outEnd_ = chunks_.done();
    break;
  case http1::BodyKind::UntilClose:
    out_.append(bytes);
    break;
  case http1::BodyKind::None:
    return;
  }
  if (deferred_ && session_ != nullptr) {
    deferred_ = false;
    nghttp2_session_resume_data(session_->raw(), id_);
  }
}

ssize_t H2Stream::readResponse(uint8_t* buf, size_t length, uint32_t* flags) {
  size_t n = std::min(length, out_.size());
  std::memcpy(buf, out_.data(), n);
  out_.erase(0, n);
  if (out_.size() <= kMaxBufferedResponse) {
    outSpace_.wake();
  }
  if (out_.empty()) {
    if (outEnd_) {
      *flags |= NGHTTP2_DATA_FLAG_EOF;
      complete_ = true;
    } else if (n == 0) {
      deferred_ = true;
      return NGHTTP2_ERR_DEFERRED;
    }
  }
  return static_cast<ssize_t>(n);
}

void H2Stream::shutdown() {
  // The request path is done writing. A body that runs until the connection closes ends here.
  if (!headDone_) {
    close();
    return;
  }
  if (kind_ == http1::BodyKind::UntilClose && !outEnd_) {
    outEnd_ = true;
    if (deferred_ && session_ != nullptr) {
      deferred_ = false;
      nghttp2_session_resume_data(session_->raw(), id_);
    }
  }
  if (session_ != nullptr) {
    session_->flush();
  }
}

void H2Stream::close() {
  if (closed_ || (headDone_ && (complete_ || outEnd_))) {
    return; // already gone, or the whole response is framed or queued: nothing to abort
  }
  closed_ = true;
  if (session_ != nullptr) {
    nghttp2_submit_rst_stream(session_->raw(), NGHTTP2_FLAG_NONE, id_, NGHTTP2_INTERNAL_ERROR);
    session_->flush();
  }
  wake();
}

void H2Stream::ended() {
  // A stream closed after the whole response went out is not an abort.
  closed_ = !(headDone_ && complete_);
  uncount();
  session_ = nullptr;
  wake();
}

// --- Session -------------------------------------------------------------------------------

struct Session::Cb {
  static Session& self(void* p) { return *static_cast<Session*>(p); }

  static int beginHeaders(nghttp2_session*, const nghttp2_frame* frame, void* user) {
    auto& s = self(user);
    if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
      s.streams_.push_back(std::make_shared<H2Stream>(s, frame->hd.stream_id, s.worker_.context(), s.worker_.metrics()));
    }
    return 0;
  }

  static int header(nghttp2_session* session, const nghttp2_frame* frame, const uint8_t* name, size_t namelen,
                    const uint8_t* value, size_t valuelen, uint8_t, void* user) {
    auto& s = self(user);
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) {
      return 0; // trailers are not relayed
    }
    // (The stream these fields are for is usually the one begun last.)
    H2Stream* found = !s.streams_.empty() && s.streams_.back()->id() == frame->hd.stream_id
                          ? s.streams_.back().get()
                          : s.find(frame->hd.stream_id);
    if (found == nullptr) {
      return 0;
    }
    auto& st = *found;
    st.headBytes += namelen + valuelen + 4;
    if (st.headBytes > kMaxRequestHead) {
      st.tooLarge = true;
      return 0;
    }
    std::string_view n(reinterpret_cast<const char*>(name), namelen);
    std::string_view v(reinterpret_cast<const char*>(value), valuelen);
    if (n == ":method") {
      st.method = v;
    } else if (n == ":path") {
      st.path = v;
    } else if (n == ":authority") {
      st.authority = v;
    } else if (n == ":scheme") {
      st.scheme = v;
    } else if (!n.empty() && n.front() != ':') {
      st.field(n, v);
    }
    (void)session;
    return 0;
  }

  static int frameRecv(nghttp2_session* session, const nghttp2_frame* frame, void* user) {
    auto& s = self(user);
    if (frame->hd.type == NGHTTP2_RST_STREAM && s.tooManyResets()) {
      // The "rapid reset" attack (CVE-2023-44487): streams opened and cancelled at once cost us a
      // request each. Past the budget the connection ends (RFC 9113 section 5.4.1 GOAWAY,
      // ENHANCE_YOUR_CALM).
      spdlog::warn("HTTP/2 connection from {}: more than {} stream resets per second; closing it", s.peer_,
                   kMaxResetsPerSecond);
      nghttp2_session_terminate_session(session, NGHTTP2_ENHANCE_YOUR_CALM);
      return 0;
    }
    auto* held = s.slot(frame->hd.stream_id);
    if (held == nullptr) {
      return 0;
    }
    H2Stream* st = held->get();
    const bool endStream = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
    if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
      if (st->tooLarge) {
        // The request head is over the limit (HTTP/1.1 answers 431): refuse the stream.
        spdlog::info("431 HTTP/2 stream {} from {}: request head over {} bytes", frame->hd.stream_id, s.peer_,
                     kMaxRequestHead);
        nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, frame->hd.stream_id, NGHTTP2_REFUSED_STREAM);
        s.erase(st);
        return 0;
      }
      if (st->method == "CONNECT") {
        nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, frame->hd.stream_id, NGHTTP2_REFUSED_STREAM);
        s.erase(st);
        return 0;
      }
      st->start(endStream);
      st->counted = true;
      Metrics::inc(s.worker_.metrics().h2StreamsOpen);
      serveStream(s.worker_, *held, s.portKey_, s.peer_); // (takes its own reference)
    } else if (endStream) {
      st->requestEnd(); // the last DATA frame, or trailers
    }
    return 0;
  }

  static int dataChunk(nghttp2_session*, uint8_t, int32_t id, const uint8_t* data, size_t len, void* user) {
    auto& s = self(user);
    if (H2Stream* st = s.find(id)) {
      st->requestData(data, len);
    }
    return 0;
  }

  static int streamClose(nghttp2_session*, int32_t id, uint32_t, void* user) {
    auto& s = self(user);
    if (H2Stream* st = s.find(id)) {
      st->ended();
      s.erase(st);
    }
    return 0;
  }
};

awaitable<void> Session::run() {
  auto self = shared_from_this();
  nghttp2_session_callbacks* cb = nullptr;
  nghttp2_session_callbacks_new(&cb);
  nghttp2_session_callbacks_set_on_begin_headers_callback(cb, &Cb::beginHeaders);
  nghttp2_session_callbacks_set_on_header_callback(cb, &Cb::header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cb, &Cb::frameRecv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, &Cb::dataChunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(cb, &Cb::streamClose);
  nghttp2_option* opt = nullptr;
  nghttp2_option_new(&opt);
  // Windows follow what the request path consumes (nghttp2_session_consume), not what arrives.
  nghttp2_option_set_no_auto_window_update(opt, 1);
  nghttp2_option_set_max_deflate_dynamic_table_size(opt, 4096);
  int rv = nghttp2_session_server_new2(&session_, cb, this, opt);
  nghttp2_option_del(opt);
  nghttp2_session_callbacks_del(cb);
  if (rv != 0) {
    session_ = nullptr;
    stream_.close();
    co_return;
  }
  // RFC 9113 section 3.4: our SETTINGS first. Streams and windows bounded (rapid-reset and
  // flood protection also come from nghttp2's own limits).
  const nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, kMaxConcurrentStreams},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, static_cast<uint32_t>(kStreamWindow)},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, static_cast<uint32_t>(kMaxRequestHead)},
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
      // RFC 9218 section 2.1: no RFC 7540 dependency tree (deprecated by RFC 9113 section 5.3.2);
      // streams are scheduled by RFC 9218 urgency instead, without a tree kept per stream.
      {NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1},
  };
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, sizeof settings / sizeof settings[0]);
  nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0, 4 * kStreamWindow);
  if (worker_.draining()) {
    drain();
  } else {
    worker_.addDrainListener(weak_from_this());
  }
  writerRunning_ = true;
  asio::co_spawn(worker_.context(), writer(), asio::detached);
  touch();
  Buffer buf;
  error_code ec;
  bool peerGone = false; // the client closed or the socket failed: nothing left to read
  while (!dead_) {
    size_t n = co_await stream_.readSome(buf.prepare(16 * 1024), ec);
    if (ec || n == 0) {
      peerGone = true;
      break;
    }
    lastActivity_ = coarseNow();
    buf.commit(n);
    ssize_t r = nghttp2_session_mem_recv(session_, reinterpret_cast<const uint8_t*>(buf.view().data()), buf.size());
    buf.consume(buf.size());
    if (r < 0) {
      spdlog::debug("HTTP/2 connection from {}: {}", peer_, nghttp2_strerror(static_cast<int>(r)));
      break;
    }
    flush();
    if (nghttp2_session_want_read(session_) == 0 && nghttp2_session_want_write(session_) == 0) {
      break;
    }
  }
  dead_ = true;
  idle_.cancel();
  // Streams still running lose their connection.
  auto streams = std::move(streams_);
  for (auto& st : streams) {
    st->ended();
  }
  // Let the writer send what is left (a GOAWAY), then close.
  wake_.wake();
  for (int i = 0; i < 50 && writerRunning_; ++i) {
    asio::steady_timer t(worker_.context(), std::chrono::milliseconds(10));
    co_await t.async_wait(asio::redirect_error(use_awaitable, ec));
  }
  co_await stream_.shutdown(); // close_notify, FIN
  // Lingering close (as nginx does): read and drop what the client is still sending, for up to a
  // second, so that closing with unread bytes does not reset the connection before the client
  // has read our GOAWAY.
  if (!peerGone) {
    asio::steady_timer linger(worker_.context(), std::chrono::seconds(1));
    linger.async_wait([self, this](error_code e) {
      if (!e) {
        stream_.close();
      }
    });
    for (int i = 0; i < 256; ++i) {
      size_t n = co_await stream_.readSome(buf.prepare(16 * 1024), ec);
      if (ec || n == 0) {
        break;
      }
    }
    linger.cancel();
  }
  stream_.close();
}

void Session::flush() {
  if (writerWaiting_ && session_ != nullptr && nghttp2_session_want_write(session_) != 0) {
    wake_.wake();
  }
}

awaitable<void> Session::writer() {
  auto self = shared_from_this();
  std::string batch;
  error_code ec;
  while (true) {
    batch.clear();
    while (batch.size() < 64 * 1024) {
      const uint8_t* data = nullptr;
      ssize_t n = nghttp2_session_mem_send(session_, &data);
      if (n <= 0) {
        break;
      }
      batch.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
    }
    if (batch.empty()) {
      if (dead_) {
        break;
      }
      writerWaiting_ = true;
      co_await wake_.wait();
      writerWaiting_ = false;
      continue;
    }
    co_await stream_.writeAll(asio::buffer(batch), ec);
    if (ec) {
      dead_ = true;
      stream_.close(); // the reader wakes with an error and cleans up
      break;
    }
    lastActivity_ = coarseNow();
  }
  writerRunning_ = false;
}

// Idle connections (no open stream for 5 min) get a GOAWAY and are closed.
void Session::touch() {
  lastActivity_ = coarseNow();
  idle_.expires_after(kIdleTimeout);
  idle_.async_wait([weak = weak_from_this()](error_code ec) {
    auto s = weak.lock();
    if (ec || !s || s->dead_) {
      return;
    }
    if (!s->streams_.empty() || std::chrono::steady_clock::now() - s->lastActivity_ < kIdleTimeout) {
      s->touch();
      return;
    }
    nghttp2_session_terminate_session(s->session_, NGHTTP2_NO_ERROR);
    s->flush();
    s->dead_ = true;
    s->stream_.close();
  });
}

} // namespace

awaitable<void> serveHttp2(Worker& worker, Stream stream, std::string portKey, std::string peer) {
  auto session = std::make_shared<Session>(worker, std::move(stream), std::move(portKey), std::move(peer));
  co_await session->run();
}

} // namespace gantry::dataplane
