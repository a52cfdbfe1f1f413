#include "http/http1_parser.h"

#include <gtest/gtest.h>

#include <string>

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

TEST(Http1ParserTest, ToleratesLeadingEmptyLinesAndBareLf) {
  RequestHead head;
  const std::string text = "\r\nGET / HTTP/1.1\nHost: a\n\n";
  ASSERT_EQ(Parse(text, &head), ParseResult::kComplete) << head.error;
  EXPECT_EQ(head.target, "/");
  EXPECT_EQ(head.num_headers, 1u);
}

TEST(Http1ParserTest, RefusesWhatCouldSmuggle) {
  const char* bad[] = {
      "POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
      "POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
      "POST / HTTP/1.1\r\nContent-Length: 5, 6\r\n\r\n",
      "POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
      "POST / HTTP/1.1\r\nContent-Length: 0x10\r\n\r\n",
      "POST / HTTP/1.1\r\nContent-Length:\r\n\r\n",
      "POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
      "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
      "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
      "GET / HTTP/1.1\r\nX: a\r\n  folded\r\n\r\n",
      "GET / HTTP/1.1\r\nContent-Length : 5\r\n\r\n",
      "GET / HTTP/1.1\r\nX: a\rb\r\n\r\n",
      "GET / HTTP/1.1\r\nX: a\x01\r\n\r\n",
      "GET /\r\n\r\n",
      "GET  / HTTP/1.1\r\n\r\n",
      "GET / HTTP/2.0\r\n\r\n",
      "GET / HTTP/1.1 x\r\n\r\n",
      "G(T / HTTP/1.1\r\n\r\n",
      "GET /a\x7f HTTP/1.1\r\n\r\n",
      "GET / HTTP/1.1\r\n: novalue\r\n\r\n",
  };
  for (const char* text : bad) {
    RequestHead head;
    EXPECT_EQ(Parse(text, &head), ParseResult::kError) << text;
  }
  RequestHead ok;
  EXPECT_EQ(Parse("POST / HTTP/1.1\r\nContent-Length: 5\r\ncontent-length: 5\r\n\r\n", &ok), ParseResult::kComplete)
      << "the same length twice is fine";
  EXPECT_EQ(Parse("POST / HTTP/1.1\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n", &ok), ParseResult::kComplete);
  EXPECT_TRUE(ok.framing.chunked);
}

TEST(Http1ParserTest, RefusesHeadsOverTheLimit) {
  std::string text = "GET / HTTP/1.1\r\nX: " + std::string(kLimit, 'a') + "\r\n\r\n";
  RequestHead head;
  EXPECT_EQ(Parse(text.substr(0, kLimit), &head), ParseResult::kError);
  EXPECT_EQ(Parse(text, &head), ParseResult::kError);
  std::string many = "GET / HTTP/1.1\r\n";
  for (size_t i = 0; i <= kMaxHeaders; ++i) many += "X: y\r\n";
  EXPECT_EQ(Parse(many + "\r\n", &head), ParseResult::kError);
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

TEST(ChunkedScannerTest, EmptyBodyAndBareLf) {
  ChunkedScanner s;
  std::string text = "0\r\n\r\n";
  EXPECT_EQ(s.Scan(text.data(), text.size()), text.size());
  EXPECT_TRUE(s.done());
  ChunkedScanner lf;
  text = "3\nabc\n0\n\n";
  EXPECT_EQ(lf.Scan(text.data(), text.size()), text.size());
  EXPECT_TRUE(lf.done());
}

TEST(ChunkedScannerTest, RefusesBadFraming) {
  for (std::string text : {"x\r\n", "\r\n", "5\r\nhelloX\r\n", "5\r\nhello\rX", "1234567890123456\r\n",
                           "0\r\n folded\r\n\r\n", "5 x\r\n", "0\r\n\rX"}) {
    ChunkedScanner s;
    s.Scan(text.data(), text.size());
    EXPECT_TRUE(s.failed()) << text;
  }
}

}  // namespace
}  // namespace dspool::http1
