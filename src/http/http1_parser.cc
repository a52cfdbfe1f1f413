#include "http/http1_parser.h"

#include <cstring>

namespace dspool::http1 {

namespace {

// RFC 9110 tchar.
bool IsTokenChar(unsigned char c) {
  if (c >= '0' && c <= '9') return true;
  if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') return true;
  return std::strchr("!#$%&'*+-.^_`|~", c) != nullptr && c != 0;
}

char LowerChar(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

// Finds the end of the head (just past the empty line), or 0 if not there
// yet. `start` is where the first line begins.
size_t FindHeadEnd(std::string_view data, size_t start) {
  for (size_t i = start; i < data.size(); ++i) {
    if (data[i] != '\n') continue;
    // A line ending at i; is the next line empty?
    if (i + 1 < data.size() && data[i + 1] == '\n') return i + 2;
    if (i + 2 < data.size() && data[i + 1] == '\r' && data[i + 2] == '\n') return i + 3;
  }
  return 0;
}

// The next line in [pos, end): without its CR LF (or LF). False if a bare
// CR appears.
bool NextLine(std::string_view data, size_t& pos, std::string_view* line) {
  size_t lf = data.find('\n', pos);
  size_t stop = lf;
  if (stop > pos && data[stop - 1] == '\r') --stop;
  *line = data.substr(pos, stop - pos);
  pos = lf + 1;
  return line->find('\r') == std::string_view::npos;
}

bool ParseUint(std::string_view s, uint64_t* out) {
  if (s.empty() || s.size() > 19) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  *out = v;
  return true;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Calls fn(token) for each comma-separated, trimmed, non-empty element.
template <class Fn>
void ForEachToken(std::string_view list, Fn fn) {
  while (!list.empty()) {
    size_t comma = list.find(',');
    std::string_view item = Trim(list.substr(0, comma));
    if (!item.empty()) fn(item);
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
}

// Parses the header lines in [pos, head_end) into headers/framing.
// `request`: a final coding other than chunked is an error.
bool ParseHeaders(std::string_view data, size_t pos, size_t head_end, bool request, Header* headers,
                  size_t* num_headers, Framing* f, const char** error) {
  *num_headers = 0;
  *f = Framing{};
  bool te_chunked_seen = false;
  for (;;) {
    std::string_view line;
    if (!NextLine(data, pos, &line)) {
      *error = "bare CR in header";
      return false;
    }
    if (line.empty()) break;
    if (line[0] == ' ' || line[0] == '\t') {
      *error = "obsolete line folding";
      return false;
    }
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) {
      *error = "header line without a name";
      return false;
    }
    std::string_view name = line.substr(0, colon);
    for (char c : name) {
      if (!IsTokenChar(static_cast<unsigned char>(c))) {
        *error = "invalid header name";
        return false;
      }
    }
    std::string_view value = Trim(line.substr(colon + 1));
    for (char c : value) {
      unsigned char u = static_cast<unsigned char>(c);
      if ((u < 0x20 && u != '\t') || u == 0x7f) {
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
      bool bad = false;
      ForEachToken(value, [&](std::string_view v) {
        uint64_t n = 0;
        if (!ParseUint(v, &n) || (f->has_content_length && n != f->content_length)) {
          bad = true;
          return;
        }
        f->has_content_length = true;
        f->content_length = n;
      });
      if (bad || value.empty()) {
        *error = "invalid or conflicting Content-Length";
        return false;
      }
    } else if (EqualsIgnoreCase(name, "transfer-encoding")) {
      f->has_transfer_encoding = true;
      bool bad = false;
      ForEachToken(value, [&](std::string_view v) {
        if (te_chunked_seen) bad = true;  // chunked must be the last coding, and only once
        f->chunked = EqualsIgnoreCase(v, "chunked");
        if (f->chunked) te_chunked_seen = true;
      });
      if (bad) {
        *error = "chunked is not the last transfer coding";
        return false;
      }
    } else if (EqualsIgnoreCase(name, "connection")) {
      ForEachToken(value, [&](std::string_view v) {
        if (EqualsIgnoreCase(v, "close")) f->connection_close = true;
        if (EqualsIgnoreCase(v, "keep-alive")) f->connection_keep_alive = true;
        if (EqualsIgnoreCase(v, "upgrade")) f->connection_upgrade = true;
      });
    } else if (EqualsIgnoreCase(name, "upgrade")) {
      f->has_upgrade = true;
    } else if (EqualsIgnoreCase(name, "expect")) {
      if (EqualsIgnoreCase(value, "100-continue")) f->expect_continue = true;
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

}  // namespace

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (LowerChar(a[i]) != LowerChar(b[i])) return false;
  }
  return true;
}

ParseResult ParseRequestHead(std::string_view data, size_t max_head_size, RequestHead* head) {
  size_t start = 0;
  while (start < data.size() && (data[start] == '\r' || data[start] == '\n')) {
    if (data[start] == '\r' && (start + 1 >= data.size() || data[start + 1] != '\n')) break;
    ++start;
  }
  if (start > 8) {  // a few empty lines are tolerated, not a stream of them
    head->error = "empty lines before the request";
    return ParseResult::kError;
  }
  size_t end = FindHeadEnd(data.substr(0, std::min(data.size(), max_head_size)), start);
  if (end == 0) {
    if (data.size() >= max_head_size) {
      head->error = "request head too large";
      return ParseResult::kError;
    }
    return ParseResult::kIncomplete;
  }
  size_t pos = start;
  std::string_view line;
  if (!NextLine(data, pos, &line)) {
    head->error = "bare CR in request line";
    return ParseResult::kError;
  }
  // method SP target SP HTTP/1.x
  size_t sp1 = line.find(' ');
  size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp1 == std::string_view::npos || sp2 == std::string_view::npos || sp1 == 0 || sp2 == sp1 + 1) {
    head->error = "invalid request line";
    return ParseResult::kError;
  }
  head->method = line.substr(0, sp1);
  head->target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  for (char c : head->method) {
    if (!IsTokenChar(static_cast<unsigned char>(c))) {
      head->error = "invalid method";
      return ParseResult::kError;
    }
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
  if (!ParseHeaders(data, pos, end, true, head->headers, &head->num_headers, &head->framing, &head->error)) {
    return ParseResult::kError;
  }
  if (head->version_minor == 0 && head->framing.has_transfer_encoding) {
    head->error = "Transfer-Encoding in an HTTP/1.0 request";
    return ParseResult::kError;
  }
  head->head_size = end;
  return ParseResult::kComplete;
}

ParseResult ParseResponseHead(std::string_view data, size_t max_head_size, ResponseHead* head) {
  size_t end = FindHeadEnd(data.substr(0, std::min(data.size(), max_head_size)), 0);
  if (end == 0) {
    if (data.size() >= max_head_size) {
      head->error = "response head too large";
      return ParseResult::kError;
    }
    return ParseResult::kIncomplete;
  }
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
  if (!ParseHeaders(data, pos, end, false, head->headers, &head->num_headers, &head->framing, &head->error)) {
    return ParseResult::kError;
  }
  head->head_size = end;
  return ParseResult::kComplete;
}

size_t ChunkedScanner::Scan(const char* p, size_t n, std::string* data) {
  size_t i = 0;
  while (i < n) {
    char c = p[i];
    switch (state_) {
      case State::kSize: {
        int v = -1;
        if (c >= '0' && c <= '9') v = c - '0';
        else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') v = (c | 0x20) - 'a' + 10;
        if (v >= 0) {
          if (++digits_ > 15) {
            state_ = State::kError;
            return i;
          }
          remaining_ = remaining_ * 16 + static_cast<uint64_t>(v);
        } else if (digits_ == 0) {
          state_ = State::kError;
          return i;
        } else if (c == ' ' || c == '\t') {
          state_ = State::kSizeSpace;
        } else if (c == ';') {
          state_ = State::kExtension;
        } else if (c == '\r') {
          state_ = State::kSizeLf;
        } else if (c == '\n') {
          state_ = AfterSizeLine();
        } else {
          state_ = State::kError;
          return i;
        }
        ++i;
        break;
      }
      case State::kSizeSpace:
        if (c == ';') state_ = State::kExtension;
        else if (c == '\r') state_ = State::kSizeLf;
        else if (c == '\n') state_ = AfterSizeLine();
        else if (c != ' ' && c != '\t') {
          state_ = State::kError;
          return i;
        }
        ++i;
        break;
      case State::kExtension:
        if (c == '\r') state_ = State::kSizeLf;
        else if (c == '\n') state_ = AfterSizeLine();
        else if (static_cast<unsigned char>(c) < 0x20 && c != '\t') {
          state_ = State::kError;
          return i;
        }
        ++i;
        break;
      case State::kSizeLf:
        if (c != '\n') {
          state_ = State::kError;
          return i;
        }
        state_ = AfterSizeLine();
        ++i;
        break;
      case State::kData: {
        size_t take = static_cast<size_t>(std::min<uint64_t>(remaining_, n - i));
        if (data) data->append(p + i, take);
        i += take;
        remaining_ -= take;
        if (remaining_ == 0) state_ = State::kDataCr;
        break;
      }
      case State::kDataCr:
        if (c == '\r') state_ = State::kDataLf;
        else if (c == '\n') StartSizeLine();
        else {
          state_ = State::kError;
          return i;
        }
        ++i;
        break;
      case State::kDataLf:
        if (c != '\n') {
          state_ = State::kError;
          return i;
        }
        StartSizeLine();
        ++i;
        break;
      case State::kTrailerStart:
        if (c == '\r') state_ = State::kFinalLf;
        else if (c == '\n') {
          state_ = State::kDone;
          return i + 1;
        } else if (c == ' ' || c == '\t' || c == ':') {
          state_ = State::kError;  // obs-fold or a nameless trailer
          return i;
        } else {
          state_ = State::kTrailer;
        }
        ++i;
        break;
      case State::kTrailer:
        if (c == '\r') state_ = State::kTrailerLf;
        else if (c == '\n') state_ = State::kTrailerStart;
        ++i;
        break;
      case State::kTrailerLf:
        if (c != '\n') {
          state_ = State::kError;
          return i;
        }
        state_ = State::kTrailerStart;
        ++i;
        break;
      case State::kFinalLf:
        if (c != '\n') {
          state_ = State::kError;
          return i;
        }
        state_ = State::kDone;
        return i + 1;
      case State::kDone:
      case State::kError:
        return i;
    }
  }
  return i;
}

}  // namespace dspool::http1
