#include "http/http1_parser.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

namespace dspool::http1 {
namespace {

constexpr size_t kLimit = 16 * 1024;

ParseResult Parse(const std::string& text, RequestHead* head) { return ParseRequestHead(text, kLimit, head); }

TEST(Http1ParserTest, ParsesARequestHeadInPlace) {
  std::string text =
      "GET /user/a/api?x=1 HTTP/1.1\r\nHost: pool\r\nCookie:  s=1 \r\nConnection: keep-alive, Upgrade\r\n"
      "Upgrade: websocket\r\n\r\nrest";
  RequestHead head;
  ASSERT_EQ(Parse(text, &head), ParseResult::kComplete) << head.error;
  EXPECT_EQ(head.method, "GET");
  EXPECT_EQ(head.target, "/user/a/api?x=1");
  EXPECT_EQ(head.version_minor, 1);
  ASSERT_EQ(head.num_headers, 4u);
  EXPECT_EQ(head.headers[1].name, "Cookie");
  EXPECT_EQ(head.headers[1].value, "s=1");
  EXPECT_EQ(head.head_size, text.size() - 4);
  EXPECT_TRUE(head.framing.connection_keep_alive);
  EXPECT_TRUE(head.framing.connection_upgrade);
  EXPECT_TRUE(head.framing.has_upgrade);
  EXPECT_FALSE(head.framing.has_content_length);
  EXPECT_EQ(head.headers[0].value.data(), text.data() + text.find("pool")) << "views into the buffer";
}

TEST(Http1ParserTest, EveryPrefixIsIncompleteAndTheWholeIsComplete) {
  std::string text = "POST /a HTTP/1.0\r\nContent-Length: 5\r\nX: y\r\n\r\n";
  for (size_t n = 0; n < text.size(); ++n) {
    RequestHead head;
    EXPECT_EQ(Parse(text.substr(0, n), &head), ParseResult::kIncomplete) << n;
  }
  RequestHead head;
  ASSERT_EQ(Parse(text, &head), ParseResult::kComplete);
  EXPECT_EQ(head.version_minor, 0);
  EXPECT_EQ(head.framing.content_length, 5u);
}

TEST(Http1ParserTest, ToleratesLeadingEmptyLinesButNoBareLf) {
  RequestHead head;
  const std::string text = "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n";
  ASSERT_EQ(Parse(text, &head), ParseResult::kComplete) << head.error;
  EXPECT_EQ(head.target, "/");
  EXPECT_EQ(head.head_size, 31u);
  EXPECT_EQ(Parse("\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", &head), ParseResult::kError);
  EXPECT_STREQ(head.error, "empty lines before the request");
  for (const char* text : {"\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", "GET / HTTP/1.1\nHost: a\r\n\r\n",
                           "GET / HTTP/1.1\r\nHost: a\n\r\n", "GET / HTTP/1.1\r\nHost: a\r\n\n",
                           "GET / HTTP/1.1\nHost: a\n\n"}) {
    EXPECT_EQ(Parse(text, &head), ParseResult::kError) << text;
    EXPECT_STREQ(head.error, "bare LF in head") << text;
  }
  EXPECT_EQ(Parse("GET / HTTP/1.1\nHo", &head), ParseResult::kError) << "refused before the head is all here";
}

TEST(Http1ParserTest, RefusesWhatCouldSmuggle) {
  const std::string get = "GET / HTTP/1.1\r\nHost: a\r\n";
  const std::string post = "POST / HTTP/1.1\r\nHost: a\r\n";
  const struct {
    std::string text;
    const char* error;
  } bad[] = {
      {post + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", "both Content-Length and Transfer-Encoding"},
      {post + "Content-Length: 5\r\nContent-Length: 6\r\n\r\n", "invalid or conflicting Content-Length"},
      {post + "Content-Length: 5, 6\r\n\r\n", "invalid or conflicting Content-Length"},
      {post + "Content-Length: 5,\r\n\r\n", "invalid or conflicting Content-Length"},
      {post + "Content-Length: ,5\r\n\r\n", "invalid or conflicting Content-Length"},
      {post + "Content-Length: 5,,5\r\n\r\n", "invalid or conflicting Content-Length"},
      {post + "Content-Length: -1\r\n\r\n", "invalid or conflicting Content-Length"},
      {post + "Content-Length: 0x10\r\n\r\n", "invalid or conflicting Content-Length"},
      {post + "Content-Length:\r\n\r\n", "invalid or conflicting Content-Length"},
      {post + "Content-Length: 18446744073709551616\r\n\r\n", "invalid or conflicting Content-Length"},
      {post + "Transfer-Encoding: gzip\r\n\r\n", "request transfer coding is not chunked"},
      {post + "Transfer-Encoding: chunked, gzip\r\n\r\n", "chunked is not the last transfer coding"},
      {post + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
       "chunked is not the last transfer coding"},
      // Beast (and so an upstream like it) reads these lists only up to
      // the bad element: no body, where a lax reading sees a chunked one.
      {post + "Transfer-Encoding: x/y, chunked\r\n\r\n", "invalid Transfer-Encoding"},
      {post + "Transfer-Encoding: \"zip, chunked\r\n\r\n", "invalid Transfer-Encoding"},
      {post + "Transfer-Encoding: chunked;q=1\r\n\r\n", "invalid Transfer-Encoding"},
      {"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", "Transfer-Encoding in an HTTP/1.0 request"},
      {get + "Connection: keep-alive close\r\n\r\n", "invalid Connection"},
      {get + "Proxy-Connection: a/b\r\n\r\n", "invalid Connection"},
      {get + "X: a\r\n  folded\r\n\r\n", "obsolete line folding"},
      {get + "Content-Length : 5\r\n\r\n", "invalid header name"},
      {get + "X: a\rb\r\n\r\n", "bare CR in header"},
      {get + "X: a\x01\r\n\r\n", "control character in header value"},
      {get + ": novalue\r\n\r\n", "header line without a name"},
      {"GET /\r\nHost: a\r\n\r\n", "invalid request line"},
      {"GET  / HTTP/1.1\r\nHost: a\r\n\r\n", "invalid request line"},
      {"GET / HTTP/2.0\r\nHost: a\r\n\r\n", "invalid HTTP version"},
      {"GET / HTTP/1.1 x\r\nHost: a\r\n\r\n", "invalid HTTP version"},
      {"G(T / HTTP/1.1\r\nHost: a\r\n\r\n", "invalid method"},
      {"GET /a\x7f HTTP/1.1\r\nHost: a\r\n\r\n", "invalid request target"},
  };
  for (const auto& [text, error] : bad) {
    RequestHead head;
    EXPECT_EQ(Parse(text, &head), ParseResult::kError) << text;
    EXPECT_STREQ(head.error, error) << text;
  }
  RequestHead ok;
  EXPECT_EQ(Parse(post + "Content-Length: 5\r\ncontent-length: 5, 5\r\n\r\n", &ok), ParseResult::kComplete)
      << "the same length again is fine";
  EXPECT_EQ(Parse(post + "Content-Length: 00005\r\n\r\n", &ok), ParseResult::kComplete);
  EXPECT_EQ(ok.framing.content_length, 5u);
  EXPECT_EQ(Parse(post + "Content-Length: 18446744073709551615\r\n\r\n", &ok), ParseResult::kComplete);
  EXPECT_EQ(Parse(post + "Transfer-Encoding: gzip, Chunked,\r\nConnection: , close ,\r\n\r\n", &ok),
            ParseResult::kComplete)
      << ok.error;
  EXPECT_TRUE(ok.framing.chunked);
  EXPECT_TRUE(ok.framing.connection_close);
}

TEST(Http1ParserTest, ExactlyOneHostOnHttp11AtMostOneOnHttp10) {
  RequestHead head;
  EXPECT_EQ(Parse("GET / HTTP/1.1\r\n\r\n", &head), ParseResult::kError);
  EXPECT_STREQ(head.error, "no Host");
  EXPECT_EQ(Parse("GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n", &head), ParseResult::kError);
  EXPECT_STREQ(head.error, "several Host fields");
  EXPECT_EQ(Parse("GET / HTTP/1.0\r\nHost: a\r\nHOST: b\r\n\r\n", &head), ParseResult::kError);
  EXPECT_STREQ(head.error, "several Host fields");
  EXPECT_EQ(Parse("GET / HTTP/1.0\r\n\r\n", &head), ParseResult::kComplete) << "HTTP/1.0 may omit it";
  EXPECT_EQ(Parse("GET / HTTP/1.1\r\nHost:\r\n\r\n", &head), ParseResult::kComplete)
      << "empty, for a target without an authority (RFC 9112 3.2)";
}

TEST(Http1ParserTest, RefusesHeadsOverTheLimit) {
  const std::string start = "GET / HTTP/1.1\r\nHost: a\r\nX: ";
  RequestHead head;
  // A head of exactly the limit, final CR LF included, is the largest taken.
  std::string fits = start + std::string(kLimit - start.size() - 4, 'a') + "\r\n\r\n";
  EXPECT_EQ(Parse(fits, &head), ParseResult::kComplete) << head.error;
  EXPECT_EQ(head.head_size, kLimit);
  std::string over = start + std::string(kLimit - start.size() - 3, 'a') + "\r\n\r\n";
  EXPECT_EQ(Parse(over.substr(0, kLimit), &head), ParseResult::kError);
  EXPECT_STREQ(head.error, "head too large");
  EXPECT_EQ(Parse(over, &head), ParseResult::kError);
  std::string many = "GET / HTTP/1.1\r\nHost: a\r\n";
  for (size_t i = 1; i <= kMaxHeaders; ++i) many += "X: y\r\n";
  EXPECT_EQ(Parse(many + "\r\n", &head), ParseResult::kError);
  EXPECT_STREQ(head.error, "too many header fields");
}

TEST(Http1ParserTest, ParsesResponseHeads) {
  ResponseHead head;
  std::string text = "HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc";
  ASSERT_EQ(ParseResponseHead(text, kLimit, &head), ParseResult::kComplete) << head.error;
  EXPECT_EQ(head.status, 404);
  EXPECT_EQ(head.reason, "Not Found");
  EXPECT_TRUE(head.framing.connection_close);
  EXPECT_EQ(head.head_size, text.size() - 3);
  ASSERT_EQ(ParseResponseHead("HTTP/1.0 200\r\nTransfer-Encoding: gzip\r\n\r\n", kLimit, &head),
            ParseResult::kComplete);
  EXPECT_FALSE(head.framing.chunked) << "a response body then ends at close";
  for (size_t n = 0; n < text.size() - 3; ++n) {
    EXPECT_EQ(ParseResponseHead(text.substr(0, n), kLimit, &head), ParseResult::kIncomplete) << n;
  }
  EXPECT_EQ(ParseResponseHead("HTTP/1.1 2000 OK\r\n\r\n", kLimit, &head), ParseResult::kError);
  EXPECT_EQ(ParseResponseHead("HTTP/1.1 099 x\r\n\r\n", kLimit, &head), ParseResult::kError);
  EXPECT_EQ(ParseResponseHead("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", kLimit,
                              &head),
            ParseResult::kError);
  EXPECT_EQ(ParseResponseHead("HTTP/1.1 200 OK\nContent-Length: 1\r\n\r\n", kLimit, &head), ParseResult::kError);
  EXPECT_STREQ(head.error, "bare LF in head");
  EXPECT_EQ(ParseResponseHead("HTTP/1.1 200 O\x01K\r\n\r\n", kLimit, &head), ParseResult::kError);
  EXPECT_STREQ(head.error, "control character in reason phrase");
}

const std::string kChunked = "5;ext=1\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nTrailer: x\r\nT2: y\r\n\r\n";

TEST(ChunkedScannerTest, FindsTheEndAndTheData) {
  ChunkedScanner s;
  std::string data;
  std::string text = kChunked + "GET / HTTP/1.1\r\n";
  EXPECT_EQ(s.Scan(text.data(), text.size(), &data), kChunked.size());
  EXPECT_TRUE(s.done());
  EXPECT_EQ(data, "helloabcdefghijklmnopqrstuvwxyz");
}

TEST(ChunkedScannerTest, SplitAtEveryByte) {
  for (size_t split = 0; split <= kChunked.size(); ++split) {
    ChunkedScanner s;
    std::string data;
    size_t a = s.Scan(kChunked.data(), split, &data);
    EXPECT_EQ(a, split);
    EXPECT_EQ(s.done(), split == kChunked.size());
    size_t b = s.Scan(kChunked.data() + split, kChunked.size() - split, &data);
    EXPECT_EQ(a + b, kChunked.size());
    EXPECT_TRUE(s.done()) << split;
    EXPECT_EQ(data, "helloabcdefghijklmnopqrstuvwxyz");
  }
  ChunkedScanner one;
  for (size_t i = 0; i < kChunked.size(); ++i) {
    EXPECT_FALSE(one.done());
    EXPECT_EQ(one.Scan(kChunked.data() + i, 1), 1u);
  }
  EXPECT_TRUE(one.done());
}

// Feeds `text` to a new scanner in pieces of `step` bytes; what it took.
size_t ScanInSteps(ChunkedScanner& s, const std::string& text, size_t step) {
  size_t taken = 0;
  while (taken < text.size() && !s.done() && !s.failed()) {
    size_t n = std::min(step, text.size() - taken);
    size_t took = s.Scan(text.data() + taken, n);
    taken += took;
    if (took < n) break;
  }
  return taken;
}

TEST(ChunkedScannerTest, TakesRfcExtensionsAndLeadingZeros) {
  for (std::string text : {"0\r\n\r\n", "5 ; a = b ; c=\"q \\\" s\"\t;d\r\nhello\r\n0;last\r\n\r\n",
                           "0000000000000000005;a=\"\"\r\nhello\r\n000\r\nT: \x80\t v\r\n\r\n"}) {
    for (size_t step : {text.size(), size_t{1}}) {
      ChunkedScanner s;
      EXPECT_EQ(ScanInSteps(s, text, step), text.size()) << text << s.error();
      EXPECT_TRUE(s.done()) << text;
    }
  }
}

struct Refused {
  std::string text;
  const char* error;
};

// Each text is refused with its error, whole and fed byte by byte.
void ExpectRefused(const std::vector<Refused>& cases) {
  for (const auto& [text, error] : cases) {
    for (size_t step : {text.size(), size_t{1}}) {
      ChunkedScanner s;
      ScanInSteps(s, text, step);
      EXPECT_TRUE(s.failed()) << text;
      EXPECT_STREQ(s.error(), error) << text;
    }
  }
}

TEST(ChunkedScannerTest, BareLfIsRefusedEverywhere) {
  ExpectRefused({
      {"3\nabc\r\n0\r\n\r\n", "bare LF in chunk size line"},
      {"3;a=b\nabc\r\n0\r\n\r\n", "bare LF in chunk size line"},
      {"3;a=\"\n\"\r\nabc\r\n0\r\n\r\n", "control character in chunk extension"},
      {"3\r\nabc\n0\r\n\r\n", "no CR LF after chunk data"},
      {"3\r\nabc\r\r\n0\r\n\r\n", "no CR LF after chunk data"},
      {"0\n\r\n", "bare LF in chunk size line"},
      {"0\r\n\n", "invalid trailer line"},
      {"0\r\nX: y\n\r\n", "control character or bare LF in trailers"},
      {"0\r\nX: y\r\n\n", "invalid trailer line"},
      {"0\r\n\r\r\n", "bare CR in trailers"},
  });
}

TEST(ChunkedScannerTest, RefusesBadFraming) {
  ExpectRefused({
      {"x\r\n", "invalid chunk size"},
      {"\r\n", "invalid chunk size"},
      {" 5\r\n", "invalid chunk size"},
      {"5\r\nhelloX\r\n", "no CR LF after chunk data"},
      {"5\r\nhello\rX", "no CR LF after chunk data"},
      {"10000000000000000\r\n", "chunk size too large"},
      {"5 x\r\n", "invalid chunk extension"},
      {"5 \r\n", "invalid chunk extension"},
      {"5;\r\n", "invalid chunk extension"},
      {"5;a=\r\n", "invalid chunk extension"},
      {"5;a b\r\n", "invalid chunk extension"},
      {"5;a=b c\r\n", "invalid chunk extension"},
      {"5;a=\"x\"y\r\n", "invalid chunk size line"},
      {"5;a=\"x\r\n", "control character in chunk extension"},
      {"5x\r\n", "invalid chunk size line"},
      {"5\rX", "bare CR in chunk size line"},
      {"0\r\n folded\r\n\r\n", "invalid trailer line"},
      {"0\r\n: x\r\n\r\n", "invalid trailer line"},
      {"0\r\nbad name: x\r\n\r\n", "invalid trailer line"},
      {"0\r\nnocolon\r\n\r\n", "invalid trailer line"},
      {"0\r\nX: a\x01\r\n\r\n", "control character or bare LF in trailers"},
      {"0\r\nX: y\rZ", "bare CR in trailers"},
      {"0\r\n\rX", "bare CR in trailers"},
  });
}

TEST(ChunkedScannerTest, RefusesFramingAndConnectionFieldsInTrailers) {
  std::vector<Refused> refused;
  for (std::string name : {"Content-Length", "transfer-encoding", "HOST", "Connection", "Proxy-Connection",
                           "Keep-Alive", "Upgrade"}) {
    refused.push_back({"0\r\n" + name + ": x\r\n\r\n", "framing or connection field in trailers"});
  }
  ExpectRefused(refused);
  for (std::string name : {"Content-Lengths", "X-Host", "Transfer-Encoding-Extra", "Expires"}) {
    std::string text = "0\r\n" + name + ": x\r\n\r\n";
    ChunkedScanner s;
    EXPECT_EQ(s.Scan(text.data(), text.size()), text.size()) << name;
    EXPECT_TRUE(s.done()) << name;
  }
}

TEST(ChunkedScannerTest, BoundsTheSizeLineAndTheTrailerSection) {
  // A size line is counted from its first digit through its CR LF.
  const std::string ext = "1;e=";
  for (size_t n : {kMaxChunkSizeLine - ext.size() - 2, kMaxChunkSizeLine - ext.size() - 1}) {
    std::string text = ext + std::string(n, 'e') + "\r\nx\r\n0\r\n\r\n";
    ChunkedScanner s;
    s.Scan(text.data(), text.size());
    const bool fits = ext.size() + n + 2 <= kMaxChunkSizeLine;
    EXPECT_EQ(s.done(), fits) << n;
    EXPECT_STREQ(s.error(), fits ? "" : "chunk size line too long") << n;
  }
  std::string zeros = std::string(kMaxChunkSizeLine, '0') + "1\r\n";
  ChunkedScanner s;
  s.Scan(zeros.data(), zeros.size());
  EXPECT_STREQ(s.error(), "chunk size line too long") << "leading zeros count too";
  // The trailer section: its lines and the final CR LF.
  for (size_t bound : {size_t{10}, size_t{9}}) {
    std::string text = "0\r\nX: abc\r\n\r\n";  // 10 bytes of trailers
    ChunkedScanner t(bound);
    t.Scan(text.data(), text.size());
    EXPECT_EQ(t.done(), bound == 10);
    EXPECT_STREQ(t.error(), bound == 10 ? "" : "trailer section too large");
  }
}

TEST(BodyScannerTest, FramesRequestsAndResponsesAndCountsWireBytes) {
  Framing chunked;
  chunked.chunked = true;
  BodyScanner b = BodyScanner::ForRequest(chunked);
  EXPECT_EQ(b.kind(), BodyScanner::Kind::kChunked);
  std::string data;
  const std::string text = "3;a=\"long extension\"\r\nabc\r\n0\r\n\r\nnext";
  EXPECT_EQ(b.Take(text.data(), text.size(), &data), static_cast<long>(text.size() - 4));
  EXPECT_TRUE(b.done());
  EXPECT_EQ(data, "abc");
  EXPECT_EQ(b.consumed(), text.size() - 4) << "framing counts, not only data";

  Framing length;
  length.has_content_length = true;
  length.content_length = 3;
  b = BodyScanner::ForRequest(length);
  EXPECT_EQ(b.Take("ab", 2), 2);
  EXPECT_EQ(b.remaining(), 1u);
  EXPECT_EQ(b.Take("cGET", 4), 1);
  EXPECT_TRUE(b.done());
  EXPECT_EQ(BodyScanner::ForRequest(Framing{}).kind(), BodyScanner::Kind::kNone);

  EXPECT_EQ(BodyScanner::ForResponse(length, 200, true).kind(), BodyScanner::Kind::kNone) << "HEAD";
  EXPECT_EQ(BodyScanner::ForResponse(chunked, 304, false).kind(), BodyScanner::Kind::kNone);
  EXPECT_EQ(BodyScanner::ForResponse(length, 200, false).kind(), BodyScanner::Kind::kLength);
  Framing gzip;
  gzip.has_transfer_encoding = true;
  b = BodyScanner::ForResponse(gzip, 200, false);
  EXPECT_EQ(b.kind(), BodyScanner::Kind::kUntilClose);
  EXPECT_EQ(b.Take("abc", 3), 3);
  EXPECT_FALSE(b.done());
  b.EndOfStream();
  EXPECT_TRUE(b.done());
  EXPECT_EQ(BodyScanner::ForResponse(Framing{}, 200, false).kind(), BodyScanner::Kind::kUntilClose);

  b = BodyScanner::ForRequest(chunked);
  EXPECT_EQ(b.Take("3\nabc", 5), -1);
  EXPECT_TRUE(b.failed());
  EXPECT_STREQ(b.error(), "bare LF in chunk size line");
}

}  // namespace
}  // namespace dspool::http1
