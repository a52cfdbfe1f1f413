#include "http/http1_parser.h"

#include <algorithm>
#include <cstring>

namespace dspool::http1 {

namespace {

constexpr size_t kNotFound = std::string_view::npos;
constexpr size_t kMaxLeadingEmptyLines = 4;

// RFC 9110 tchar.
bool IsTokenChar(unsigned char c) {
  if (c >= '0' && c <= '9') return true;
  if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') return true;
  return std::strchr("!#$%&'*+-.^_`|~", c) != nullptr && c != 0;
}

bool IsToken(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!IsTokenChar(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

// HTAB, SP, VCHAR and obs-text: what a field value, a reason phrase or a
// quoted pair may hold.
bool IsFieldChar(unsigned char c) { return c == '\t' || (c >= 0x20 && c != 0x7f); }

bool IsOws(unsigned char c) { return c == ' ' || c == '\t'; }

int HexValue(unsigned char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') return (c | 0x20) - 'a' + 10;
  return -1;
}

char LowerChar(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

// Where the head whose first line starts at `start` ends (just past its
// empty line): 0 if that is not in `data` yet, kNotFound at a LF without a
// CR before it.
size_t FindHeadEnd(std::string_view data, size_t start) {
  size_t i = start;
  for (;;) {
    if (i >= data.size()) return 0;
    const void* lf = std::memchr(data.data() + i, '\n', data.size() - i);
    if (!lf) return 0;
    i = static_cast<size_t>(static_cast<const char*>(lf) - data.data());
    if (i == start || data[i - 1] != '\r') return kNotFound;
    if (i >= start + 3 && data[i - 2] == '\n' && data[i - 3] == '\r') return i + 1;
    ++i;
  }
}

// The line at pos, without its CR LF (FindHeadEnd vouched for both); pos
// moves past it. False if the line holds a CR.
bool NextLine(std::string_view data, size_t& pos, std::string_view* line) {
  size_t lf = data.find('\n', pos);
  *line = data.substr(pos, lf - 1 - pos);
  pos = lf + 1;
  return line->find('\r') == kNotFound;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && IsOws(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsOws(s.back())) s.remove_suffix(1);
  return s;
}

// Calls fn(element) for each comma-separated element, trimmed, empty ones
// included; false as soon as fn does.
template <class Fn>
bool ForEachElement(std::string_view list, Fn fn) {
  for (;;) {
    size_t comma = list.find(',');
    if (!fn(Trim(list.substr(0, comma)))) return false;
    if (comma == kNotFound) return true;
    list.remove_prefix(comma + 1);
  }
}

bool ParseUint(std::string_view s, uint64_t* out) {
  if (s.empty()) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    uint64_t d = static_cast<uint64_t>(c - '0');
    if (v > (UINT64_MAX - d) / 10) return false;
    v = v * 10 + d;
  }
  *out = v;
  return true;
}

// Parses the header lines in [pos, head_end) into headers/framing.
// `request`: a final coding other than chunked is an error, and Host is
// counted into *hosts.
bool ParseHeaders(std::string_view data, size_t pos, size_t head_end, bool request, Header* headers,
                  size_t* num_headers, Framing* f, size_t* hosts, const char** error) {
  *num_headers = 0;
  *f = Framing{};
  *hosts = 0;
  bool te_chunked_seen = false;
  for (;;) {
    std::string_view line;
    if (!NextLine(data, pos, &line)) {
      *error = "bare CR in header";
      return false;
    }
    if (line.empty()) break;
    if (IsOws(line[0])) {
      *error = "obsolete line folding";
      return false;
    }
    size_t colon = line.find(':');
    if (colon == kNotFound || colon == 0) {
      *error = "header line without a name";
      return false;
    }
    std::string_view name = line.substr(0, colon);
    if (!IsToken(name)) {
      *error = "invalid header name";
      return false;
    }
    std::string_view value = Trim(line.substr(colon + 1));
    for (char c : value) {
      if (!IsFieldChar(static_cast<unsigned char>(c))) {
        *error = "control character in header value";
        return false;
      }
    }
    if (*num_headers == kMaxHeaders) {
      *error = "too many header fields";
      return false;
    }
    headers[(*num_headers)++] = Header{name, value};

    if (EqualsIgnoreCase(name, "content-length")) {
      bool ok = ForEachElement(value, [&](std::string_view v) {
        uint64_t n = 0;
        if (!ParseUint(v, &n) || (f->has_content_length && n != f->content_length)) return false;
        f->has_content_length = true;
        f->content_length = n;
        return true;
      });
      if (!ok) {
        *error = "invalid or conflicting Content-Length";
        return false;
      }
    } else if (EqualsIgnoreCase(name, "transfer-encoding")) {
      f->has_transfer_encoding = true;
      const char* why = nullptr;
      ForEachElement(value, [&](std::string_view v) {
        if (v.empty()) return true;
        if (!IsToken(v)) why = "invalid Transfer-Encoding";
        else if (te_chunked_seen) why = "chunked is not the last transfer coding";  // and only once
        if (why) return false;
        f->chunked = EqualsIgnoreCase(v, "chunked");
        te_chunked_seen = f->chunked;
        return true;
      });
      if (why) {
        *error = why;
        return false;
      }
    } else if (const bool connection = EqualsIgnoreCase(name, "connection");
               connection || EqualsIgnoreCase(name, "proxy-connection")) {
      bool ok = ForEachElement(value, [&](std::string_view v) {
        if (v.empty()) return true;
        if (!IsToken(v)) return false;
        if (!connection) return true;
        if (EqualsIgnoreCase(v, "close")) f->connection_close = true;
        if (EqualsIgnoreCase(v, "keep-alive")) f->connection_keep_alive = true;
        if (EqualsIgnoreCase(v, "upgrade")) f->connection_upgrade = true;
        return true;
      });
      if (!ok) {
        *error = "invalid Connection";
        return false;
      }
    } else if (EqualsIgnoreCase(name, "upgrade")) {
      f->has_upgrade = true;
    } else if (EqualsIgnoreCase(name, "expect")) {
      if (EqualsIgnoreCase(value, "100-continue")) f->expect_continue = true;
    } else if (request && EqualsIgnoreCase(name, "host")) {
      ++*hosts;
    }
    if (pos >= head_end) break;
  }
  if (f->has_transfer_encoding) {
    if (f->has_content_length) {
      *error = "both Content-Length and Transfer-Encoding";
      return false;
    }
    if (request && !f->chunked) {
      *error = "request transfer coding is not chunked";
      return false;
    }
  }
  return true;
}

bool ParseVersion(std::string_view v, int* minor) {
  if (v.size() != 8 || v.substr(0, 7) != "HTTP/1." || (v[7] != '0' && v[7] != '1')) return false;
  *minor = v[7] - '0';
  return true;
}

// The end of the head at `start` within max_head_size, or 0 (*result set:
// kIncomplete, or kError with *error).
size_t HeadEnd(std::string_view data, size_t start, size_t max_head_size, ParseResult* result, const char** error) {
  size_t end = FindHeadEnd(data.substr(0, std::min(data.size(), max_head_size)), start);
  if (end == kNotFound) {
    *error = "bare LF in head";
    *result = ParseResult::kError;
    return 0;
  }
  if (end == 0) {
    if (data.size() >= max_head_size) {
      *error = "head too large";
      *result = ParseResult::kError;
    } else {
      *result = ParseResult::kIncomplete;
    }
  }
  return end;
}

}  // namespace

ParseResult ParseRequestHead(std::string_view data, size_t max_head_size, RequestHead* head) {
  size_t start = 0;
  while (data.compare(start, 2, "\r\n") == 0) {
    start += 2;
    if (start > 2 * kMaxLeadingEmptyLines) {
      head->error = "empty lines before the request";
      return ParseResult::kError;
    }
  }
  ParseResult result = ParseResult::kComplete;
  size_t end = HeadEnd(data, start, max_head_size, &result, &head->error);
  if (end == 0) return result;
  size_t pos = start;
  std::string_view line;
  if (!NextLine(data, pos, &line)) {
    head->error = "bare CR in request line";
    return ParseResult::kError;
  }
  // method SP target SP HTTP/1.x
  size_t sp1 = line.find(' ');
  size_t sp2 = sp1 == kNotFound ? sp1 : line.find(' ', sp1 + 1);
  if (sp1 == kNotFound || sp2 == kNotFound || sp1 == 0 || sp2 == sp1 + 1) {
    head->error = "invalid request line";
    return ParseResult::kError;
  }
  head->method = line.substr(0, sp1);
  head->target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  if (!IsToken(head->method)) {
    head->error = "invalid method";
    return ParseResult::kError;
  }
  for (char c : head->target) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f) {
      head->error = "invalid request target";
      return ParseResult::kError;
    }
  }
  if (!ParseVersion(line.substr(sp2 + 1), &head->version_minor)) {
    head->error = "invalid HTTP version";
    return ParseResult::kError;
  }
  size_t hosts = 0;
  if (!ParseHeaders(data, pos, end, true, head->headers, &head->num_headers, &head->framing, &hosts,
                    &head->error)) {
    return ParseResult::kError;
  }
  if (head->version_minor == 0 && head->framing.has_transfer_encoding) {
    head->error = "Transfer-Encoding in an HTTP/1.0 request";
    return ParseResult::kError;
  }
  // RFC 9112 3.2: a server responds 400 to an HTTP/1.1 request without a
  // Host, and to any request with more than one.
  if (hosts > 1 || (hosts == 0 && head->version_minor == 1)) {
    head->error = hosts == 0 ? "no Host" : "several Host fields";
    return ParseResult::kError;
  }
  head->head_size = end;
  return ParseResult::kComplete;
}

ParseResult ParseResponseHead(std::string_view data, size_t max_head_size, ResponseHead* head) {
  ParseResult result = ParseResult::kComplete;
  size_t end = HeadEnd(data, 0, max_head_size, &result, &head->error);
  if (end == 0) return result;
  size_t pos = 0;
  std::string_view line;
  if (!NextLine(data, pos, &line)) {
    head->error = "bare CR in status line";
    return ParseResult::kError;
  }
  // HTTP/1.x SP 3DIGIT SP reason
  if (line.size() < 12 || !ParseVersion(line.substr(0, 8), &head->version_minor) || line[8] != ' ' ||
      (line.size() > 12 && line[12] != ' ')) {
    head->error = "invalid status line";
    return ParseResult::kError;
  }
  int status = 0;
  for (size_t i = 9; i < 12; ++i) {
    if (line[i] < '0' || line[i] > '9') {
      head->error = "invalid status code";
      return ParseResult::kError;
    }
    status = status * 10 + (line[i] - '0');
  }
  if (status < 100) {
    head->error = "invalid status code";
    return ParseResult::kError;
  }
  head->status = status;
  head->reason = line.size() > 13 ? line.substr(13) : std::string_view();
  for (char c : head->reason) {
    if (!IsFieldChar(static_cast<unsigned char>(c))) {
      head->error = "control character in reason phrase";
      return ParseResult::kError;
    }
  }
  size_t hosts = 0;
  if (!ParseHeaders(data, pos, end, false, head->headers, &head->num_headers, &head->framing, &hosts,
                    &head->error)) {
    return ParseResult::kError;
  }
  head->head_size = end;
  return ParseResult::kComplete;
}

bool ChunkedScanner::Step(unsigned char c) {
  if (state_ <= State::kSizeLf) {
    if (++line_bytes_ > kMaxChunkSizeLine) return Fail("chunk size line too long");
  } else if (state_ >= State::kTrailerStart) {
    if (++line_bytes_ > max_trailer_size_) return Fail("trailer section too large");
  }
  switch (state_) {
    case State::kSizeStart:
      if (HexValue(c) < 0) return Fail("invalid chunk size");
      remaining_ = static_cast<uint64_t>(HexValue(c));
      state_ = State::kSize;
      return true;
    case State::kSize:
      if (int v = HexValue(c); v >= 0) {
        if (remaining_ >> 60) return Fail("chunk size too large");
        remaining_ = remaining_ << 4 | static_cast<uint64_t>(v);
        return true;
      }
      return AfterSizeOrValue(c);
    case State::kExtBws:
      if (IsOws(c)) return true;
      if (c != ';') return Fail("invalid chunk extension");
      state_ = State::kExtNameStart;
      return true;
    case State::kExtNameStart:
      if (IsOws(c)) return true;
      if (!IsTokenChar(c)) return Fail("invalid chunk extension");
      state_ = State::kExtName;
      return true;
    case State::kExtName:
      if (IsTokenChar(c)) return true;
      if (IsOws(c)) {
        state_ = State::kExtNameBws;
        return true;
      }
      if (c == '=') {
        state_ = State::kExtValueStart;
        return true;
      }
      return AfterSizeOrValue(c);
    case State::kExtNameBws:
      if (IsOws(c)) return true;
      if (c == '=') state_ = State::kExtValueStart;
      else if (c == ';') state_ = State::kExtNameStart;
      else return Fail("invalid chunk extension");
      return true;
    case State::kExtValueStart:
      if (IsOws(c)) return true;
      if (c == '"') state_ = State::kExtQuoted;
      else if (IsTokenChar(c)) state_ = State::kExtToken;
      else return Fail("invalid chunk extension");
      return true;
    case State::kExtToken:
      if (IsTokenChar(c)) return true;
      return AfterSizeOrValue(c);
    case State::kExtQuoted:
      if (c == '"') state_ = State::kExtValueEnd;
      else if (c == '\\') state_ = State::kExtQuotedPair;
      else if (!IsFieldChar(c)) return Fail("control character in chunk extension");
      return true;
    case State::kExtQuotedPair:
      if (!IsFieldChar(c)) return Fail("control character in chunk extension");
      state_ = State::kExtQuoted;
      return true;
    case State::kExtValueEnd:
      return AfterSizeOrValue(c);
    case State::kSizeLf:
      line_bytes_ = 0;
      return Expect(c, '\n', remaining_ == 0 ? State::kTrailerStart : State::kData, "bare CR in chunk size line");
    case State::kDataCr:
      return Expect(c, '\r', State::kDataLf, "no CR LF after chunk data");
    case State::kDataLf:
      return Expect(c, '\n', State::kSizeStart, "no CR LF after chunk data");
    case State::kTrailerStart:
      if (c == '\r') {
        state_ = State::kFinalLf;
        return true;
      }
      if (!IsTokenChar(c)) return Fail("invalid trailer line");  // obs-fold and bare LF included
      name_len_ = 0;
      state_ = State::kTrailerName;
      [[fallthrough]];
    case State::kTrailerName:
      if (IsTokenChar(c)) {
        if (name_len_ < kNameKept) name_[name_len_] = LowerChar(static_cast<char>(c));
        if (name_len_ <= kNameKept) ++name_len_;
        return true;
      }
      if (c != ':') return Fail("invalid trailer line");
      if (ForbiddenTrailer()) return Fail("framing or connection field in trailers");
      state_ = State::kTrailerValue;
      return true;
    case State::kTrailerValue:
      if (c == '\r') state_ = State::kTrailerLf;
      else if (!IsFieldChar(c)) return Fail("control character or bare LF in trailers");
      return true;
    case State::kTrailerLf:
      return Expect(c, '\n', State::kTrailerStart, "bare CR in trailers");
    case State::kFinalLf:
      return Expect(c, '\n', State::kDone, "bare CR in trailers");
    case State::kData:
    case State::kDone:
    case State::kError:
      break;
  }
  return false;
}

size_t ChunkedScanner::Scan(const char* p, size_t n, std::string* data) {
  size_t i = 0;
  while (i < n) {
    if (state_ == State::kData) {
      size_t take = static_cast<size_t>(std::min<uint64_t>(remaining_, n - i));
      if (data) data->append(p + i, take);
      i += take;
      remaining_ -= take;
      if (remaining_ == 0) state_ = State::kDataCr;
      continue;
    }
    if (state_ == State::kDone || state_ == State::kError || !Step(static_cast<unsigned char>(p[i]))) return i;
    ++i;
    if (state_ == State::kDone) return i;
  }
  return i;
}

bool ChunkedScanner::AfterSizeOrValue(unsigned char c) {
  if (c == ';') state_ = State::kExtNameStart;
  else if (IsOws(c)) state_ = State::kExtBws;
  else if (c == '\r') state_ = State::kSizeLf;
  else return Fail(c == '\n' ? "bare LF in chunk size line" : "invalid chunk size line");
  return true;
}

// RFC 9110 6.5.1: trailers cannot carry what frames or routes a message or
// manages its connection; Beast, for one, would act on some of these.
bool ChunkedScanner::ForbiddenTrailer() const {
  if (name_len_ > kNameKept) return false;
  std::string_view name(name_, name_len_);
  for (std::string_view forbidden : {"content-length", "transfer-encoding", "host", "connection",
                                     "proxy-connection", "keep-alive", "upgrade"}) {
    if (name == forbidden) return true;
  }
  return false;
}

BodyScanner BodyScanner::ForRequest(const Framing& f) {
  BodyScanner b;
  if (f.chunked) {
    b.kind_ = Kind::kChunked;
  } else if (f.has_content_length && f.content_length > 0) {
    b.kind_ = Kind::kLength;
    b.remaining_ = f.content_length;
  }
  return b;
}

BodyScanner BodyScanner::ForResponse(const Framing& f, int status, bool head_request) {
  BodyScanner b;
  if (head_request || status == 204 || status == 304) return b;
  if (f.chunked) {
    b.kind_ = Kind::kChunked;
  } else if (f.has_transfer_encoding || !f.has_content_length) {
    b.kind_ = Kind::kUntilClose;
  } else if (f.content_length > 0) {
    b.kind_ = Kind::kLength;
    b.remaining_ = f.content_length;
  }
  return b;
}

long BodyScanner::Take(const char* p, size_t n, std::string* data) {
  size_t take = 0;
  switch (kind_) {
    case Kind::kNone:
      return 0;
    case Kind::kLength:
      take = static_cast<size_t>(std::min<uint64_t>(remaining_, n));
      remaining_ -= take;
      if (data) data->append(p, take);
      break;
    case Kind::kChunked:
      take = chunked_.Scan(p, n, data);
      if (chunked_.failed()) return -1;
      break;
    case Kind::kUntilClose:
      take = n;
      if (data) data->append(p, take);
      break;
  }
  consumed_ += take;
  return static_cast<long>(take);
}

void BodyScanner::EndOfStream() {
  if (kind_ == Kind::kUntilClose) kind_ = Kind::kNone;
}

}  // namespace dspool::http1
