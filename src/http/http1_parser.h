// HTTP/1.x message heads parsed in place, and the framing of bodies: the
// wire layer of ProxyServer (proxy_connection.cc, proxy_forward.cc), with
// no allocation.
//
// ParseRequestHead / ParseResponseHead look at the bytes received so far
// and either need more (kIncomplete), fail (kError, with a short reason for
// logs — never a header value), or fill a head whose string_views point
// into the caller's buffer (valid while that buffer is unchanged). They
// also work out the message framing (Content-Length, chunked, Connection
// tokens) and refuse what could smuggle a second request past a proxy or
// make two parsers disagree on where a message ends:
//   - lines that do not end with CR LF (a bare LF or a bare CR anywhere);
//   - Content-Length together with Transfer-Encoding, differing or
//     malformed Content-Length values (an empty list element included);
//   - a Transfer-Encoding or Connection list with an element that is not a
//     token; a request whose transfer codings (all its Transfer-Encoding
//     lines together) do not end with one chunked; any Transfer-Encoding in
//     an HTTP/1.0 request;
//   - obs-fold (a header line starting with space or tab), whitespace
//     before a colon, control characters, an invalid request or status line;
//   - a request without exactly one Host field (HTTP/1.0 may have none);
//   - heads over max_head_size bytes, more than kMaxHeaders fields.
//
// ChunkedScanner finds where a chunked body ends without changing it: feed
// it bytes as they arrive, in any split; it says how many belong to the
// message (data, sizes, extensions, trailers) and when the last one passed.
// It takes RFC 9112's grammar to the letter: CR LF only, extensions as
// tokens or quoted strings, trailer fields like header fields (no obs-fold)
// and none of the fields that frame or route a message or manage its
// connection; a size line is at most kMaxChunkSizeLine bytes and the
// trailer section at most the bound it is given.
//
// BodyScanner picks the framing of a body from its head and runs it (no
// body, Content-Length, chunked, or until the stream ends).
//
// tests/http1_fuzz_test.cc runs these against Boost.Beast's parser on
// generated and mutated messages; where we are stricter than Beast, the
// reason is listed there (tests/http1_differential.h).
//
// Thread safety: pure functions; a scanner is one message's state.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/strings.h"  // EqualsIgnoreCase

namespace dspool::http1 {

struct Header {
  std::string_view name;   // as sent (case kept)
  std::string_view value;  // optional whitespace around it removed
};

constexpr size_t kMaxHeaders = 96;
// The proxy's bound on a message head, and a ChunkedScanner's default bound
// on a trailer section.
constexpr size_t kMaxHeadSize = 16 * 1024;
// The bound on one chunk-size line: size, extensions and CR LF.
constexpr size_t kMaxChunkSizeLine = 4 * 1024;

enum class ParseResult { kIncomplete, kComplete, kError };

// What the header fields say about the body and the connection.
struct Framing {
  bool has_content_length = false;
  uint64_t content_length = 0;
  bool has_transfer_encoding = false;
  bool chunked = false;  // the last transfer coding is "chunked"
  // Tokens of the Connection header(s), case-insensitive.
  bool connection_close = false;
  bool connection_keep_alive = false;
  bool connection_upgrade = false;
  bool has_upgrade = false;      // an Upgrade header is present
  bool expect_continue = false;  // Expect: 100-continue
};

struct RequestHead {
  std::string_view method;
  std::string_view target;
  int version_minor = 1;  // HTTP/1.<minor>
  Header headers[kMaxHeaders];
  size_t num_headers = 0;
  size_t head_size = 0;  // bytes of the head, the final empty line included
  Framing framing;
  const char* error = "";  // on kError: what was wrong (no header values)
};

struct ResponseHead {
  int version_minor = 1;
  int status = 0;
  std::string_view reason;
  Header headers[kMaxHeaders];
  size_t num_headers = 0;
  size_t head_size = 0;
  Framing framing;
  const char* error = "";
};

// Parses the request head at the start of `data`. Up to four empty lines
// (CR LF) before the request line are skipped, as RFC 9112 2.2 asks of a
// server, and count in head_size. kError if the head is malformed or unsafe
// (see above; a bare LF fails at once, before the head is all here), or
// reaches max_head_size bytes without ending.
ParseResult ParseRequestHead(std::string_view data, size_t max_head_size, RequestHead* head);

// The same for a response. A Transfer-Encoding whose last coding is not
// chunked is allowed here (the body then ends at close, RFC 9112 6.3).
ParseResult ParseResponseHead(std::string_view data, size_t max_head_size, ResponseHead* head);

class ChunkedScanner {
 public:
  explicit ChunkedScanner(size_t max_trailer_size = kMaxHeadSize) : max_trailer_size_(max_trailer_size) {}

  // Scans up to n bytes; returns how many belong to the body (all of them
  // unless the body ends inside, or on error: then the ones before the
  // offending byte). If `data` is not null the chunk data (without
  // framing) is appended to it.
  size_t Scan(const char* p, size_t n, std::string* data = nullptr);
  bool done() const { return state_ == State::kDone; }
  bool failed() const { return state_ == State::kError; }
  const char* error() const { return error_; }  // on failed(): what was wrong

 private:
  // The size-line states come first and the trailer ones last: Step counts
  // a line's bytes by that order.
  enum class State : uint8_t {
    kSizeStart,      // the first hex digit of a chunk size
    kSize,           // more hex digits
    kExtBws,         // whitespace after the size or an extension value: ";" must follow
    kExtNameStart,   // after ";": whitespace, then an extension name
    kExtName,        // in the name
    kExtNameBws,     // whitespace after the name: "=" or ";" must follow
    kExtValueStart,  // after "=": whitespace, then a token or a quoted string
    kExtToken,       // in a token value
    kExtQuoted,      // in a quoted string
    kExtQuotedPair,  // after a backslash in it
    kExtValueEnd,    // after the closing quote
    kSizeLf,         // LF after the size line's CR
    kData,           // remaining_ bytes of data
    kDataCr,         // CR after data
    kDataLf,         // LF after data
    kTrailerStart,   // start of a trailer line, or the final empty line's CR
    kTrailerName,    // a trailer field's name
    kTrailerValue,   // after its colon, up to CR
    kTrailerLf,      // LF ending a trailer line
    kFinalLf,        // LF of the final empty line
    kDone,
    kError,
  };
  // One framing byte (any state but kData, kDone, kError); false on error.
  // Inlined into Scan's loop: a call per framing byte made bodies of small
  // chunks twice as slow to scan.
  [[gnu::always_inline]] inline bool Step(unsigned char c);
  // After a size or an extension value: ";", whitespace before one, or CR.
  bool AfterSizeOrValue(unsigned char c);
  bool Fail(const char* why) {
    state_ = State::kError;
    error_ = why;
    return false;
  }
  // `c` must be `want`; then on to `next`.
  bool Expect(unsigned char c, char want, State next, const char* why) {
    if (c != static_cast<unsigned char>(want)) return Fail(why);
    state_ = next;
    return true;
  }
  bool ForbiddenTrailer() const;

  // The longest trailer name ForbiddenTrailer looks for.
  static constexpr size_t kNameKept = 17;

  State state_ = State::kSizeStart;
  uint8_t name_len_ = 0;       // of the trailer name so far (kNameKept + 1: longer)
  char name_[kNameKept] = {};  // its first bytes, lower-cased
  size_t line_bytes_ = 0;      // of the current size line, or of the trailer section
  uint64_t remaining_ = 0;
  size_t max_trailer_size_;
  const char* error_ = "";
};

// One message's body, framed as its head says: the proxy streams every body
// through one. Take() says how many of the bytes at hand belong to it.
class BodyScanner {
 public:
  enum class Kind { kNone, kLength, kChunked, kUntilClose };

  BodyScanner() = default;  // no body
  // A request's body (RFC 9112 6.3): chunked, else Content-Length, else none.
  static BodyScanner ForRequest(const Framing& f);
  // A final response's body: none for HEAD, 204 and 304; chunked; until
  // close for another transfer coding; Content-Length; else until close.
  // REQUIRES: status >= 200 (1xx heads are handled, and skipped, apart).
  static BodyScanner ForResponse(const Framing& f, int status, bool head_request);

  // How many of the n bytes at p belong to the body (and notes them); -1 on
  // a framing error (see error()). If `data` is not null the body's data
  // (without chunked framing) is appended to it.
  long Take(const char* p, size_t n, std::string* data = nullptr);
  // The stream ended: a body that lasts until then is complete.
  void EndOfStream();

  Kind kind() const { return kind_; }
  bool done() const {
    return kind_ == Kind::kNone || (kind_ == Kind::kLength && remaining_ == 0) ||
           (kind_ == Kind::kChunked && chunked_.done());
  }
  bool failed() const { return kind_ == Kind::kChunked && chunked_.failed(); }
  const char* error() const { return chunked_.error(); }
  // Content-Length: what is still to come.
  uint64_t remaining() const { return remaining_; }
  // Bytes taken so far, framing included: what a body limit counts, so
  // that chunk extensions and trailers cannot bypass it.
  uint64_t consumed() const { return consumed_; }

 private:
  Kind kind_ = Kind::kNone;
  uint64_t remaining_ = 0;
  uint64_t consumed_ = 0;
  ChunkedScanner chunked_;
};

}  // namespace dspool::http1
