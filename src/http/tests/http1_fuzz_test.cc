// The differential fuzz test of the proxy's request framing against Beast
// (http1_differential.h). A bounded run here; a long one with
// bench/http_fuzz.sh, which sets HTTP1_FUZZ_ITERATIONS and HTTP1_FUZZ_SEED
// for this binary (HTTP1_FUZZ_ITERATIONS=1 and a failure's case seed
// replay that case alone).
#include <gtest/gtest.h>

#include <cstdlib>
#include <iostream>
#include <string>

#include "http/http1_parser.h"
#include "http/tests/http1_differential.h"

namespace dspool::http1::differential {
namespace {

constexpr uint64_t kDefaultSeed = 0x5eed0001;
constexpr uint64_t kDefaultIterations = 30000;

uint64_t EnvOr(const char* name, uint64_t fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::strtoull(v, nullptr, 0) : fallback;
}

TEST(Http1DifferentialTest, GeneratedAndMutatedRequestsEndWhereBeastSaysOrAreRefusedForAListedReason) {
  const uint64_t seed = EnvOr("HTTP1_FUZZ_SEED", kDefaultSeed);
  const uint64_t iterations = EnvOr("HTTP1_FUZZ_ITERATIONS", kDefaultIterations);
  Stats stats;
  for (const std::string& failure : RunCases(seed, iterations, &stats)) ADD_FAILURE() << failure;
  std::cout << "seed " << seed << ": " << stats.cases << " cases, both complete " << stats.both_complete
            << ", neither " << stats.neither_complete << "\n";
  for (size_t i = 0; i < static_cast<size_t>(Asymmetry::kCount); ++i) {
    std::cout << "  refused as listed, " << AsymmetryName(static_cast<Asymmetry>(i)) << ": " << stats.allowed[i]
              << "\n";
  }
  if (iterations >= 1000) {
    // The cases reach both outcomes, not just one.
    EXPECT_GT(stats.both_complete, iterations / 5);
    EXPECT_GT(stats.neither_complete, iterations / 10);
  }
}

// One message for each listed asymmetry: Beast takes it, we refuse it, and
// the comparison allows exactly that.
TEST(Http1DifferentialTest, EachListedAsymmetryIsAllowedWhereItHolds) {
  const std::string host = "Host: a\r\n";
  struct {
    Asymmetry asymmetry;
    std::string input;
  } cases[] = {
      {Asymmetry::kObsFold, "GET / HTTP/1.1\r\n" + host + "X: a\r\n b\r\n\r\n"},
      {Asymmetry::kObsFold, "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n0\r\nX: a\r\n b\r\n\r\n"},
      {Asymmetry::kHost, "GET / HTTP/1.1\r\n\r\n"},
      {Asymmetry::kHost, "GET / HTTP/1.0\r\n" + host + host + "\r\n"},
      {Asymmetry::kTransferEncoding, "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: gzip\r\n\r\n"},
      {Asymmetry::kTransferEncoding, "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
      {Asymmetry::kTransferEncoding,
       "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: gzip\r\nContent-Length: 1\r\n\r\nx"},
      {Asymmetry::kTransferEncoding, "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked;q=1\r\n\r\n0\r\n\r\n"},
      // Chunked twice: Beast looks at each line apart, RFC 9110 5.3 at both.
      {Asymmetry::kTransferEncoding,
       "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked, a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
      {Asymmetry::kTooManyFields, "GET / HTTP/1.1\r\n" + host + [] {
         std::string many;
         for (size_t i = 0; i < kMaxHeaders; ++i) many += "X: y\r\n";
         return many;
       }() + "\r\n"},
      // Beast bounds the start line and the fields apart: each is under the
      // limit here, the whole head is not.
      {Asymmetry::kHeadSize, "GET /" + std::string(kMaxHeadSize / 2, 'p') + " HTTP/1.1\r\n" + host +
                                 "X: " + std::string(kMaxHeadSize / 2, 'a') + "\r\n\r\n"},
      {Asymmetry::kChunkSizeLine, "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n1;e=" +
                                      std::string(kMaxChunkSizeLine, 'e') + "\r\nx\r\n0\r\n\r\n"},
      {Asymmetry::kTrailerSize, "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n0\r\nX: " +
                                    std::string(kMaxHeadSize, 't') + "\r\n\r\n"},
      {Asymmetry::kTrailerField,
       "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n0\r\nConnection: close\r\n\r\n"},
      {Asymmetry::kControlInChunkExtension,
       "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n1;a=\"\n\"\r\nx\r\n0\r\n\r\n"},
      {Asymmetry::kBodyLimit, "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n" + [] {
         std::string chunks;
         for (uint64_t i = 0; i < kBodyLimit / 4; ++i) chunks += "1\r\nx\r\n";
         return chunks;
       }() + "0\r\n\r\n"},
  };
  for (const auto& c : cases) {
    Stats stats;
    EXPECT_EQ(Compare(c.input, {}, &stats), "") << AsymmetryName(c.asymmetry);
    EXPECT_EQ(stats.allowed[static_cast<size_t>(c.asymmetry)], 1u) << AsymmetryName(c.asymmetry);
  }
}

// Where both accept, the comparison holds them to the same end, whatever
// the cuts; leading empty lines are not part of the message.
TEST(Http1DifferentialTest, AgreementOnValidMessages) {
  const std::string next = "GET /next HTTP/1.1\r\nHost: a\r\n\r\n";
  for (std::string input : {
           "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n" + next,
           "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\n\r\nabc" + next,
           "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
           "3 ; a = \"b\\\"\" ;c\r\nabc\r\n00\r\nX-T: v\r\n\r\n" +
               next,
       }) {
    for (size_t cut = 1; cut < input.size(); ++cut) {
      Stats stats;
      ASSERT_EQ(Compare(input, {cut}, &stats), "") << cut;
      ASSERT_EQ(stats.both_complete, 1u) << cut;
    }
  }
}

}  // namespace
}  // namespace dspool::http1::differential
