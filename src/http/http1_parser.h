// HTTP/1.x message heads parsed in place, and a chunked-framing scanner:
// the wire layer of ProxyServer (proxy.cc), with no allocation.
//
// ParseRequestHead / ParseResponseHead look at the bytes received so far
// and either need more (kIncomplete), fail (kError, with a short reason for
// logs — never a header value), or fill a head whose string_views point
// into the caller's buffer (valid while that buffer is unchanged). They
// also work out the message framing (Content-Length, chunked, Connection
// tokens) and refuse what could smuggle a second request past a proxy:
// Content-Length together with Transfer-Encoding, differing or malformed
// Content-Length values, a request whose last transfer coding is not
// chunked, obs-fold (a header line starting with space or tab), whitespace
// before a colon, control characters, an invalid request or status line,
// and heads larger than the given limit.
//
// ChunkedScanner finds where a chunked body ends without changing it: feed
// it bytes as they arrive, in any split; it says how many belong to the
// message (data, sizes, extensions, trailers) and when the last one passed.
//
// Thread safety: pure functions; a ChunkedScanner is one message's state.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace dspool::http1 {

struct Header {
  std::string_view name;   // as sent (case kept)
  std::string_view value;  // optional whitespace around it removed
};

constexpr size_t kMaxHeaders = 96;

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

// Parses the request head at the start of `data` (empty lines before the
// request line are skipped and count in head_size). kError if the head is
// malformed, unsafe (see above), or reaches max_head_size bytes without
// ending.
ParseResult ParseRequestHead(std::string_view data, size_t max_head_size, RequestHead* head);

// The same for a response. A Transfer-Encoding whose last coding is not
// chunked is allowed here (the body then ends at close, RFC 9112 6.3).
ParseResult ParseResponseHead(std::string_view data, size_t max_head_size, ResponseHead* head);

// ASCII case-insensitive equality.
bool EqualsIgnoreCase(std::string_view a, std::string_view b);

class ChunkedScanner {
 public:
  // Scans up to n bytes; returns how many belong to the body (all of them
  // unless the body ends inside, or on error). If `data` is not null the
  // chunk data (without framing) is appended to it.
  size_t Scan(const char* p, size_t n, std::string* data = nullptr);
  bool done() const { return state_ == State::kDone; }
  bool failed() const { return state_ == State::kError; }

 private:
  enum class State {
    kSize,         // hex digits of a chunk size
    kSizeSpace,    // whitespace after the size
    kExtension,    // ";..." up to CR LF
    kSizeLf,       // LF after the size line's CR
    kData,         // remaining_ bytes of data
    kDataCr,       // CR after data
    kDataLf,       // LF after data
    kTrailerStart, // start of a trailer line, or the final empty line
    kTrailer,      // inside a trailer line
    kTrailerLf,    // LF ending a trailer line
    kFinalLf,      // LF of the final empty line
    kDone,
    kError,
  };
  // The end of a size line leads to the data, or to the trailers after the
  // last (zero-size) chunk.
  State AfterSizeLine() const { return remaining_ == 0 ? State::kTrailerStart : State::kData; }
  // After a chunk's data and its CRLF: the next size line.
  void StartSizeLine() {
    state_ = State::kSize;
    digits_ = 0;
    remaining_ = 0;
  }

  State state_ = State::kSize;
  uint64_t remaining_ = 0;
  int digits_ = 0;
};

}  // namespace dspool::http1
