// A differential test of the proxy's HTTP/1 request framing (http1_parser.h)
// against Boost.Beast's parser (http::basic_parser<true>, eager, with the
// same head and body limits): both read the same bytes, a request head and
// then its body by Content-Length or chunked, and must agree on where the
// message ends.
//
// Ours is what the proxy runs (proxy_connection.cc, proxy_forward.cc):
// ParseRequestHead on each prefix the input is cut into (as reads would
// deliver it), then a BodyScanner fed the same pieces, refusing a body
// whose wire bytes pass kBodyLimit (the proxy's 413 for local bodies). Beast gets the whole input at once.
//
// The rules (Compare):
//   - both accept: the same head size, body end and body data size;
//   - we accept and Beast does not: a failure, always;
//   - Beast accepts and we wait for more: a failure (we would read the next
//     request as this one's body);
//   - Beast accepts and we refuse: allowed only for a listed Asymmetry that
//     names the reason we gave and whose condition holds in the message as
//     Beast parsed it;
//   - neither accepts: agreement. Where we wait and Beast has refused, the
//     input is completed (CR LF CR LF, a last chunk) and compared again, so
//     that we cannot accept later what Beast refused on a prefix.
//
// Not part of the message: up to four empty lines (CR LF) before the
// request line, which RFC 9112 2.2 asks a server to skip. Beast, reading a
// fresh stream, does not skip them, so it is handed the bytes after them.
//
// Cases are generated from a seed (Generate): valid requests with random
// header sets, Content-Length or chunked bodies (extensions, trailers),
// sometimes at the limits, then byte mutations (CR, LF, spaces, tabs,
// colons, digits, hex, semicolons, quotes, obs-fold, duplicated lines,
// injected framing fields, truncation). Case i of a run from seed S has
// the seed S + i, so any failure replays alone.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace dspool::http1::differential {

// The body limit both sides get (the proxy's is ProxyOptions::max_local_body;
// a small one here so that generated bodies reach it).
constexpr uint64_t kBodyLimit = 4096;

// Where we refuse what Beast accepts, on purpose. Each is a place where
// RFC 9112 or 9110 lets or asks a recipient refuse, or a bound of ours.
enum class Asymmetry {
  kObsFold,                 // obs-fold in a header or trailer field (RFC 9112 5.2: a server may answer 400)
  kHost,                    // not exactly one Host in HTTP/1.1, several in HTTP/1.0 (RFC 9112 3.2: 400)
  kTransferEncoding,        // a Transfer-Encoding in HTTP/1.0 (RFC 9112 6.1: faulty framing), with
                            // Content-Length too (6.1), or whose list, all its field lines together
                            // (RFC 9110 5.3), is not tokens ending with one chunked (RFC 9112 6.3, 7:
                            // 400). Beast judges each field line apart, and reads a list only up to
                            // an element that is not a token.
  kTooManyFields,           // more than kMaxHeaders header fields
  kHeadSize,                // a head of more than kMaxHeadSize bytes in all (Beast bounds the start
                            // line and the fields apart, each by the limit)
  kChunkSizeLine,           // a chunk-size line over kMaxChunkSizeLine (Beast has no bound)
  kTrailerSize,             // a trailer section over kMaxHeadSize (Beast has no bound)
  kTrailerField,            // a trailer field that frames or routes the message or manages the
                            // connection (RFC 9110 6.5.1); Beast itself refuses some of them
  kControlInChunkExtension, // a control character (a bare LF too) in a quoted chunk extension, which
                            // RFC 9112 7.1.1's qdtext excludes; Beast takes any byte there
  kBodyLimit,               // a body within the limit in data bytes but not in wire bytes (ours
                            // counts chunk framing too, so extensions cannot bypass it)
  kCount,
};

const char* AsymmetryName(Asymmetry a);

struct Stats {
  uint64_t cases = 0;
  uint64_t both_complete = 0;
  uint64_t neither_complete = 0;
  uint64_t allowed[static_cast<size_t>(Asymmetry::kCount)] = {};
};

// One generated input, and where it is cut for our side (ascending offsets
// inside it).
struct Case {
  std::string input;
  std::vector<size_t> cuts;
};

Case Generate(uint64_t seed);

// Empty if the two sides agree on `input` (or differ as listed), else what
// differs. Counts the outcome in *stats.
std::string Compare(std::string_view input, const std::vector<size_t>& cuts, Stats* stats);

// Compares the cases seed .. seed + iterations - 1. Returns the failures
// (at most max_failures), each naming its case's seed and input.
std::vector<std::string> RunCases(uint64_t seed, uint64_t iterations, Stats* stats, size_t max_failures = 5);

// `s` with CR, LF and other unprintable bytes escaped, for messages.
std::string Escape(std::string_view s);

}  // namespace dspool::http1::differential
