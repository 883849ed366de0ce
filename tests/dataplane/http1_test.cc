#include "dataplane/http1.h"

#include <gtest/gtest.h>

#include <random>

namespace gantry::dataplane::http1 {
namespace {

// Feeds `input` to the request parser the way a socket would deliver it: in pieces of `chunk`
// bytes (0 = all at once, -1 = random sizes), re-parsing the accumulated buffer each time, as the
// connection does. Returns the final result; `head` views into `buf`.
ParseResult parseInPieces(const std::string& input, int chunk, std::string& buf, Head& head) {
  std::mt19937 rng(42);
  size_t pos = 0;
  ParseResult r;
  while (pos < input.size()) {
    size_t n = chunk == 0 ? input.size() : chunk > 0 ? static_cast<size_t>(chunk) : 1 + rng() % 7;
    buf.append(input, pos, n);
    pos += n;
    head = Head{};
    r = parseRequest(buf, 60 * 1024, head);
    if (r.status != ParseStatus::Incomplete) {
      return r;
    }
  }
  return r;
}

const std::string kGet =
    "GET /path?q=1 HTTP/1.1\r\nHost: frontend.com\r\nUser-Agent: curl\r\nX-Two:  a b  \r\n\r\n";

TEST(Http1Test, ParsesARequestDeliveredInAnyPieces) {
  for (int chunk : {0, 1, 2, 3, 7, 64, -1}) {
    Head head;
    std::string buf;
    auto r = parseInPieces(kGet, chunk, buf, head);
    ASSERT_EQ(r.status, ParseStatus::Done) << "chunk " << chunk;
    EXPECT_EQ(head.method, "GET");
    EXPECT_EQ(head.target, "/path?q=1");
    EXPECT_EQ(head.header("host"), "frontend.com");
    EXPECT_EQ(head.header("x-two"), "a b");
    EXPECT_EQ(head.headBytes, kGet.size());
    EXPECT_EQ(head.body, BodyKind::None);
    EXPECT_TRUE(head.keepAlive);
  }
}

TEST(Http1Test, FramesBodies) {
  Head h;
  ASSERT_EQ(parseRequest("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello", 1024, h).status,
            ParseStatus::Done);
  EXPECT_EQ(h.body, BodyKind::ContentLength);
  EXPECT_EQ(h.contentLength, 5u);
  h = Head{};
  ASSERT_EQ(parseRequest("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", 1024, h).status,
            ParseStatus::Done);
  EXPECT_EQ(h.body, BodyKind::Chunked);
  h = Head{};
  ASSERT_EQ(parseRequest("GET / HTTP/1.0\r\n\r\n", 1024, h).status, ParseStatus::Done);
  EXPECT_FALSE(h.keepAlive); // HTTP/1.0 without keep-alive
}

struct BadRequest {
  const char* name;
  std::string input;
  int status;
};

class Http1RejectTest : public ::testing::TestWithParam<BadRequest> {};

TEST_P(Http1RejectTest, RejectsWithTheRightStatus) {
  Head h;
  auto r = parseRequest(GetParam().input, 60 * 1024, h);
  EXPECT_EQ(r.status, ParseStatus::Error);
  EXPECT_EQ(r.errorStatus, GetParam().status) << r.error;
  EXPECT_FALSE(r.error.empty());
}

INSTANTIATE_TEST_SUITE_P(
    Smuggling, Http1RejectTest,
    ::testing::Values(
        BadRequest{"BothLengthAndChunked",
                   "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
        BadRequest{"ConflictingLengths", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", 400},
        BadRequest{"NegativeLength", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400},
        BadRequest{"ChunkedNotLast", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400},
        BadRequest{"ChunkedTwiceOnTwoLines",
                   "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
        BadRequest{"OtherCodingBeforeChunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501},
        BadRequest{"SpaceBeforeColon", "GET / HTTP/1.1\r\nHost: a\r\nContent-Length : 3\r\n\r\n", 400},
        BadRequest{"ObsFold", "GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", 400},
        BadRequest{"BareLf", "GET / HTTP/1.1\nHost: a\r\n\r\n", 400},
        BadRequest{"BareLfInValue", "GET / HTTP/1.1\r\nHost: a\r\nX: a\nb\r\n\r\n", 400},
        BadRequest{"BareCrInValue", "GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", 400},
        BadRequest{"BareCrEndingTheHead", "GET / HTTP/1.1\r\nHost: a\r\r\n\r\n", 400},
        BadRequest{"DelInName", "GET / HTTP/1.1\r\nHost: a\r\nX\x7f: 1\r\n\r\n", 400},
        BadRequest{"DelInValue", "GET / HTTP/1.1\r\nHost: a\r\nX: \x7f\r\n\r\n", 400},
        BadRequest{"NulInValue", std::string("GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n", 35), 400},
        BadRequest{"MissingHost", "GET / HTTP/1.1\r\n\r\n", 400},
        BadRequest{"TwoHosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
        BadRequest{"Http2Preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505},
        BadRequest{"GarbageVersion", "GET / HTTQ/1.1\r\nHost: a\r\n\r\n", 400},
        BadRequest{"SpaceInTarget", "GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", 400}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(Http1Test, EveryByteAtEveryPlaceOfAValueIsJudgedByRfc9110) {
  // Field values (RFC 9110 section 5.5) take VCHAR, obs-text, SP and HTAB only. The value scanner
  // checks 16 bytes at a time and the rest one by one: every byte at each of 40 places (both
  // paths, and each lane of the wide one) must get the same answer.
  for (int b = 0; b < 256; ++b) {
    const bool allowed = b == '\t' || (b >= 0x20 && b != 0x7f);
    for (size_t at = 0; at < 40; ++at) {
      std::string value(at, 'a');
      value += static_cast<char>(b);
      value += "bcdefghijklmnopqrstuvwxyz0123";
      const std::string request = "GET / HTTP/1.1\r\nHost: x\r\nX-Probe: " + value + "\r\n\r\n";
      Head head;
      const auto r = parseRequest(request, 60 * 1024, head);
      if (allowed) {
        ASSERT_EQ(r.status, ParseStatus::Done) << "byte " << b << " at " << at << ": " << r.error;
        const bool leadingWhitespace = at == 0 && (b == ' ' || b == '\t'); // OWS, not the value's
        EXPECT_EQ(head.header("x-probe"), leadingWhitespace ? value.substr(1) : value) << "byte " << b << " at " << at;
      } else {
        ASSERT_EQ(r.status, ParseStatus::Error) << "byte " << b << " at " << at;
        EXPECT_EQ(r.errorStatus, 400);
      }
    }
  }
}

TEST(Http1Test, EveryByteAtEveryPlaceOfANameIsJudgedByRfc9110) {
  // Field names are tokens (RFC 9110 section 5.1): tchar only, then the colon. The name scanner
  // passes letters, digits and '-' 16 at a time and looks up anything else: every byte at each
  // of 40 places must get the table's answer.
  auto tchar = [](int b) {
    return (b >= '0' && b <= '9') || (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') ||
           std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(b)) != std::string_view::npos;
  };
  for (int b = 0; b < 256; ++b) {
    if (b == ':') {
      continue; // ends the name: "X-nn" with a value of its own
    }
    for (size_t at = 0; at < 40; ++at) {
      std::string name = "X-" + std::string(at, 'n');
      name += static_cast<char>(b);
      name += "-Probe-Name-Tail";
      const std::string request = "GET / HTTP/1.1\r\nHost: x\r\n" + name + ": v\r\nAccept: */*\r\n\r\n";
      Head head;
      const auto r = parseRequest(request, 60 * 1024, head);
      if (tchar(b)) {
        ASSERT_EQ(r.status, ParseStatus::Done) << "byte " << b << " at " << at << ": " << r.error;
        EXPECT_EQ(head.header(name), "v") << "byte " << b << " at " << at;
        EXPECT_EQ(head.header("accept"), "*/*");
      } else {
        ASSERT_EQ(r.status, ParseStatus::Error) << "byte " << b << " at " << at;
        EXPECT_EQ(r.errorStatus, 400);
      }
    }
  }
}

TEST(Http1Test, HeadersPastTheLimitGet431) {
  std::string big = "GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + std::string(70 * 1024, 'a') + "\r\n\r\n";
  Head h;
  auto r = parseRequest(big, 60 * 1024, h);
  EXPECT_EQ(r.status, ParseStatus::Error);
  EXPECT_EQ(r.errorStatus, 431);
  // Also while the head is still incomplete.
  h = Head{};
  r = parseRequest(big.substr(0, 61 * 1024), 60 * 1024, h);
  EXPECT_EQ(r.errorStatus, 431);
}

TEST(Http1Test, ParsesResponsesAndKnowsWhenThereIsNoBody) {
  Head h;
  ASSERT_EQ(parseResponse("HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n", 1024, "GET", h).status, ParseStatus::Done);
  EXPECT_EQ(h.status, 200);
  EXPECT_EQ(h.reason, "OK");
  EXPECT_EQ(h.body, BodyKind::ContentLength);
  h = Head{};
  ASSERT_EQ(parseResponse("HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n", 1024, "HEAD", h).status, ParseStatus::Done);
  EXPECT_EQ(h.body, BodyKind::None);
  h = Head{};
  ASSERT_EQ(parseResponse("HTTP/1.1 204 No Content\r\n\r\n", 1024, "GET", h).status, ParseStatus::Done);
  EXPECT_EQ(h.body, BodyKind::None);
  h = Head{};
  ASSERT_EQ(parseResponse("HTTP/1.0 200 OK\r\n\r\n", 1024, "GET", h).status, ParseStatus::Done);
  EXPECT_EQ(h.body, BodyKind::UntilClose);
  EXPECT_FALSE(h.keepAlive);
  h = Head{};
  EXPECT_EQ(parseResponse("HTTP/1.1 2000 OK\r\n\r\n", 1024, "GET", h).status, ParseStatus::Error);
  // Codings before chunked are relayed as they are; chunked frames the body.
  h = Head{};
  ASSERT_EQ(parseResponse("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 1024, "GET", h).status,
            ParseStatus::Done);
  EXPECT_EQ(h.body, BodyKind::Chunked);
  h = Head{};
  ASSERT_EQ(parseResponse("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", 1024, "GET", h).status,
            ParseStatus::Done);
  EXPECT_EQ(h.body, BodyKind::UntilClose); // RFC 9112 section 6.3 item 4 (response)
  // A head of many fields: every one kept, in order.
  std::string many = "HTTP/1.1 200 OK\r\n";
  for (int i = 0; i < 100; ++i) {
    many += "X-" + std::to_string(i) + ": " + std::to_string(i) + "\r\n";
  }
  many += "Content-Length: 0\r\n\r\n";
  h = Head{};
  ASSERT_EQ(parseResponse(many, 64 * 1024, "GET", h).status, ParseStatus::Done);
  ASSERT_EQ(h.headers.size(), 101u);
  EXPECT_EQ(h.headers[57].name, "X-57");
  EXPECT_EQ(h.headers[57].value, "57");
}

TEST(ChunkedDecoderTest, FindsTheEndOfTheMessageInAnyPieces) {
  const std::string body = "5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: x\r\n\r\nNEXT";
  for (size_t chunk : {1u, 2u, 5u, 100u}) {
    ChunkedDecoder d;
    size_t consumed = 0;
    for (size_t pos = 0; pos < body.size() && !d.done(); pos += chunk) {
      consumed += d.feed(std::string_view(body).substr(pos, chunk));
      ASSERT_FALSE(d.error());
    }
    EXPECT_TRUE(d.done());
    EXPECT_EQ(consumed, body.size() - 4) << "the next message is not part of this body";
    EXPECT_EQ(d.payloadBytes(), 11u);
  }
}

TEST(ChunkedDecoderTest, RejectsMalformedFraming) {
  for (std::string bad : {"x\r\n", "5\r\nhelloXX", "5\nhello\r\n", "FFFFFFFFFFFFFFFFF\r\n", "0\r\n\n"}) {
    ChunkedDecoder d;
    d.feed(bad);
    EXPECT_TRUE(d.error()) << bad;
  }
}

TEST(Http1Test, HopByHopHeaders) {
  EXPECT_TRUE(isHopByHop("Connection"));
  EXPECT_TRUE(isHopByHop("keep-alive"));
  EXPECT_FALSE(isHopByHop("Transfer-Encoding")); // relayed with the chunked body
  EXPECT_FALSE(isHopByHop("Host"));
}

} // namespace
} // namespace gantry::dataplane::http1
