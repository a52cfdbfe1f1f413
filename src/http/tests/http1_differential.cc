#include "http/tests/http1_differential.h"

#include <algorithm>
#include <cctype>
#include <boost/asio/buffer.hpp>
#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/error.hpp>
#include <cstring>
#include <utility>

#include "http/http1_parser.h"

namespace dspool::http1::differential {

namespace {

namespace bhttp = boost::beast::http;

constexpr const char* kBodyOverLimit = "body over the limit";
constexpr size_t kMaxLeadingEmptyLines = 4;

enum class Verdict { kIncomplete, kComplete, kError };

struct Outcome {
  Verdict verdict = Verdict::kIncomplete;
  size_t head_size = 0;  // offsets in the whole input
  size_t end = 0;
  uint64_t data = 0;
  std::string error;
};

const char* VerdictName(Verdict v) {
  switch (v) {
    case Verdict::kIncomplete: return "incomplete";
    case Verdict::kComplete: return "complete";
    case Verdict::kError: return "error";
  }
  return "?";
}

std::string Describe(const Outcome& o) {
  std::string s = VerdictName(o.verdict);
  if (o.verdict == Verdict::kComplete) {
    s += " (head " + std::to_string(o.head_size) + ", end " + std::to_string(o.end) + ", data " +
         std::to_string(o.data) + ")";
  } else if (o.verdict == Verdict::kError) {
    s += " (" + o.error + ")";
  }
  return s;
}

// ---- ours: as the proxy reads a request ----------------------------------

Outcome RunOurs(std::string_view input, const std::vector<size_t>& cuts) {
  Outcome o;
  std::vector<size_t> arrivals;
  for (size_t cut : cuts) {
    if (cut < input.size()) arrivals.push_back(cut);
  }
  arrivals.push_back(input.size());
  RequestHead head;
  ParseResult r = ParseResult::kIncomplete;
  size_t k = 0;
  for (; k < arrivals.size(); ++k) {
    r = ParseRequestHead(input.substr(0, arrivals[k]), kMaxHeadSize, &head);
    if (r != ParseResult::kIncomplete) break;
  }
  if (r == ParseResult::kIncomplete) return o;
  if (r == ParseResult::kError) {
    o.verdict = Verdict::kError;
    o.error = head.error;
    return o;
  }
  o.head_size = head.head_size;
  BodyScanner body = BodyScanner::ForRequest(head.framing);
  if (body.kind() == BodyScanner::Kind::kLength && body.remaining() > kBodyLimit) {
    o.verdict = Verdict::kError;
    o.error = kBodyOverLimit;
    return o;
  }
  size_t pos = head.head_size;
  std::string data;
  for (; k < arrivals.size() && !body.done(); ++k) {
    if (arrivals[k] <= pos) continue;
    long take = body.Take(input.data() + pos, arrivals[k] - pos, &data);
    if (take < 0) {
      o.verdict = Verdict::kError;
      o.error = body.error();
      return o;
    }
    pos += static_cast<size_t>(take);
    if (body.consumed() > kBodyLimit) {
      o.verdict = Verdict::kError;
      o.error = kBodyOverLimit;
      return o;
    }
  }
  if (!body.done()) return o;
  o.verdict = Verdict::kComplete;
  o.end = pos;
  o.data = data.size();
  return o;
}

// ---- Beast ------------------------------------------------------------------

std::string_view View(boost::beast::string_view s) { return {s.data(), s.size()}; }

// Records what Beast saw: fields (head and trailers apart), chunk
// extensions (views into the input), data bytes.
class BeastRequest : public bhttp::basic_parser<true> {
 public:
  int version = 0;
  std::vector<std::pair<std::string, std::string>> fields;
  std::vector<std::pair<std::string, std::string>> trailers;
  std::vector<std::string_view> extensions;
  uint64_t data = 0;

 private:
  void on_request_impl(bhttp::verb, boost::beast::string_view, boost::beast::string_view, int v,
                       boost::beast::error_code&) override {
    version = v;
  }
  void on_response_impl(int, boost::beast::string_view, int, boost::beast::error_code&) override {}
  void on_field_impl(bhttp::field, boost::beast::string_view name, boost::beast::string_view value,
                     boost::beast::error_code&) override {
    (header_done_ ? trailers : fields).emplace_back(std::string(View(name)), std::string(View(value)));
  }
  void on_header_impl(boost::beast::error_code&) override { header_done_ = true; }
  void on_body_init_impl(const boost::optional<uint64_t>&, boost::beast::error_code&) override {}
  size_t on_body_impl(boost::beast::string_view body, boost::beast::error_code&) override {
    data += body.size();
    return body.size();
  }
  void on_chunk_header_impl(uint64_t, boost::beast::string_view ext, boost::beast::error_code&) override {
    extensions.push_back(View(ext));
  }
  size_t on_chunk_body_impl(uint64_t, boost::beast::string_view body, boost::beast::error_code&) override {
    data += body.size();
    return body.size();
  }
  void on_finish_impl(boost::beast::error_code&) override {}

  bool header_done_ = false;
};

size_t LeadingEmptyLines(std::string_view input) {
  size_t skip = 0;
  while (skip < 2 * kMaxLeadingEmptyLines && input.substr(skip, 2) == "\r\n") skip += 2;
  return skip;
}

Outcome RunBeast(std::string_view input, BeastRequest& p) {
  Outcome o;
  const size_t skip = LeadingEmptyLines(input);
  p.header_limit(static_cast<std::uint32_t>(kMaxHeadSize));
  p.body_limit(kBodyLimit);
  p.eager(false);
  boost::beast::error_code ec;
  size_t head = p.put(boost::asio::const_buffer(input.data() + skip, input.size() - skip), ec);
  if (ec && ec != bhttp::error::need_more) {
    o.verdict = Verdict::kError;
    o.error = ec.message();
    return o;
  }
  if (!p.is_header_done()) return o;
  o.head_size = skip + head;
  size_t body = 0;
  if (!p.is_done()) {
    p.eager(true);
    body = p.put(boost::asio::const_buffer(input.data() + o.head_size, input.size() - o.head_size), ec);
    if (ec && ec != bhttp::error::need_more) {
      o.verdict = Verdict::kError;
      o.error = ec.message();
      return o;
    }
    if (!p.is_done()) return o;
  }
  o.verdict = Verdict::kComplete;
  o.end = o.head_size + body;
  o.data = p.data;
  return o;
}

// ---- the listed asymmetries ---------------------------------------------------

bool IsTokenChar(char c) {
  unsigned char u = static_cast<unsigned char>(c);
  return (u >= '0' && u <= '9') || ((u | 0x20) >= 'a' && (u | 0x20) <= 'z') ||
         (u != 0 && std::strchr("!#$%&'*+-.^_`|~", u) != nullptr);
}

bool IsControl(char c) {
  unsigned char u = static_cast<unsigned char>(c);
  return (u < 0x20 && u != '\t') || u == 0x7f;
}

bool IsHexDigit(char c) { return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f'); }

// Is the Transfer-Encoding list (its field lines together, RFC 9110 5.3)
// made of tokens, with chunked once and last (RFC 9112 7)?
bool IsChunkedOnceAndLast(const std::vector<std::pair<std::string, std::string>>& fields) {
  bool chunked_last = false;
  for (const auto& [name, value] : fields) {
    if (!EqualsIgnoreCase(name, "transfer-encoding")) continue;
    std::string_view list = value;
    for (;;) {
      size_t comma = list.find(',');
      std::string_view item = list.substr(0, comma);
      while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
      while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
      if (!std::all_of(item.begin(), item.end(), IsTokenChar)) return false;
      if (!item.empty()) {
        if (chunked_last) return false;
        chunked_last = EqualsIgnoreCase(item, "chunked");
      }
      if (comma == std::string_view::npos) break;
      list.remove_prefix(comma + 1);
    }
  }
  return chunked_last;
}

bool HasObsFold(std::string_view section) {
  for (size_t i = section.find("\r\n"); i != std::string_view::npos; i = section.find("\r\n", i + 1)) {
    if (i + 2 < section.size() && (section[i + 2] == ' ' || section[i + 2] == '\t')) return true;
  }
  return false;
}

size_t CountFields(const std::vector<std::pair<std::string, std::string>>& fields, std::string_view name) {
  return static_cast<size_t>(std::count_if(fields.begin(), fields.end(),
                                           [&](const auto& f) { return EqualsIgnoreCase(f.first, name); }));
}

// Where Beast's trailer section starts: after the last chunk's size line.
size_t TrailerStart(std::string_view input, const BeastRequest& p) {
  std::string_view last = p.extensions.back();
  return static_cast<size_t>(last.data() + last.size() - input.data()) + 2;
}

// Does `a` hold in the message as Beast parsed it (complete as `b`)?
bool Holds(Asymmetry a, std::string_view input, const Outcome& b, const BeastRequest& p) {
  const bool chunked = p.is_header_done() && p.chunked() && !p.extensions.empty();
  switch (a) {
    case Asymmetry::kObsFold: {
      const size_t skip = LeadingEmptyLines(input);
      if (HasObsFold(input.substr(skip, b.head_size - skip))) return true;
      if (!chunked) return false;
      size_t start = TrailerStart(input, p);
      return HasObsFold(input.substr(start, b.end - start));
    }
    case Asymmetry::kHost: {
      size_t hosts = CountFields(p.fields, "host");
      return hosts > 1 || (hosts == 0 && p.version == 11);
    }
    case Asymmetry::kTransferEncoding:
      return CountFields(p.fields, "transfer-encoding") > 0 &&
             (p.version == 10 || CountFields(p.fields, "content-length") > 0 || !IsChunkedOnceAndLast(p.fields));
    case Asymmetry::kTooManyFields:
      return p.fields.size() > kMaxHeaders;
    case Asymmetry::kHeadSize:
      return b.head_size > kMaxHeadSize;
    case Asymmetry::kChunkSizeLine:
      for (std::string_view ext : p.extensions) {
        const char* line = ext.data();
        while (line > input.data() && IsHexDigit(line[-1])) --line;
        if (static_cast<size_t>(ext.data() + ext.size() + 2 - line) > kMaxChunkSizeLine) return true;
      }
      return false;
    case Asymmetry::kTrailerSize:
      return chunked && b.end - TrailerStart(input, p) > kMaxHeadSize;
    case Asymmetry::kTrailerField:
      for (const auto& trailer : p.trailers) {
        for (std::string_view name : {"content-length", "transfer-encoding", "host", "connection", "proxy-connection",
                                      "keep-alive", "upgrade"}) {
          if (EqualsIgnoreCase(trailer.first, name)) return true;
        }
      }
      return false;
    case Asymmetry::kControlInChunkExtension:
      return std::any_of(p.extensions.begin(), p.extensions.end(),
                         [](std::string_view ext) { return std::any_of(ext.begin(), ext.end(), IsControl); });
    case Asymmetry::kBodyLimit:
      return b.end - b.head_size > kBodyLimit;
    case Asymmetry::kCount:
      break;
  }
  return false;
}

// Our reasons for refusing (ParseRequestHead's and ChunkedScanner's error
// strings) that may refuse what Beast accepts, and the asymmetry each is.
struct Listed {
  std::string_view reason;
  Asymmetry asymmetry;
};
constexpr Listed kListed[] = {
    {"obsolete line folding", Asymmetry::kObsFold},
    {"invalid trailer line", Asymmetry::kObsFold},
    {"no Host", Asymmetry::kHost},
    {"several Host fields", Asymmetry::kHost},
    {"Transfer-Encoding in an HTTP/1.0 request", Asymmetry::kTransferEncoding},
    {"request transfer coding is not chunked", Asymmetry::kTransferEncoding},
    {"both Content-Length and Transfer-Encoding", Asymmetry::kTransferEncoding},
    {"invalid Transfer-Encoding", Asymmetry::kTransferEncoding},
    {"chunked is not the last transfer coding", Asymmetry::kTransferEncoding},
    {"too many header fields", Asymmetry::kTooManyFields},
    {"head too large", Asymmetry::kHeadSize},
    {"chunk size line too long", Asymmetry::kChunkSizeLine},
    {"trailer section too large", Asymmetry::kTrailerSize},
    {"framing or connection field in trailers", Asymmetry::kTrailerField},
    {"control character in chunk extension", Asymmetry::kControlInChunkExtension},
    {kBodyOverLimit, Asymmetry::kBodyLimit},
};

std::string CompareOnce(std::string_view input, const std::vector<size_t>& cuts, Stats* stats, bool completed) {
  Outcome ours = RunOurs(input, cuts);
  BeastRequest parser;
  Outcome beast = RunBeast(input, parser);
  auto differ = [&](std::string_view what) {
    return std::string(what) + ": ours " + Describe(ours) + ", Beast " + Describe(beast);
  };
  if (ours.verdict == Verdict::kComplete) {
    if (beast.verdict != Verdict::kComplete) return differ("we accept what Beast does not");
    if (ours.head_size != beast.head_size || ours.end != beast.end || ours.data != beast.data) {
      return differ("the message ends elsewhere");
    }
    ++stats->both_complete;
    return "";
  }
  if (beast.verdict == Verdict::kComplete) {
    if (ours.verdict == Verdict::kIncomplete) return differ("Beast ends the message where we wait for more");
    for (const Listed& listed : kListed) {
      if (ours.error != listed.reason) continue;
      if (!Holds(listed.asymmetry, input, beast, parser)) {
        return differ(std::string("we refuse as ") + AsymmetryName(listed.asymmetry) +
                      " but Beast's message has no such thing");
      }
      ++stats->allowed[static_cast<size_t>(listed.asymmetry)];
      return "";
    }
    return differ("we refuse what Beast accepts, for no listed reason");
  }
  if (!completed && ours.verdict == Verdict::kIncomplete && beast.verdict == Verdict::kError) {
    for (std::string_view closer : {"\r\n\r\n", "\r\n0\r\n\r\n", "0\r\n\r\n"}) {
      std::string longer(input);
      longer += closer;
      std::string failure = CompareOnce(longer, cuts, stats, true);
      if (!failure.empty()) return "once completed with " + Escape(closer) + ", " + failure;
    }
    return "";
  }
  ++stats->neither_complete;
  return "";
}

// ---- generation -----------------------------------------------------------------

// splitmix64: small, and the same sequence everywhere.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  size_t Below(size_t n) { return n == 0 ? 0 : static_cast<size_t>(Next() % n); }
  bool Percent(size_t p) { return Below(100) < p; }
  template <class T, size_t N>
  const T& Pick(const T (&items)[N]) {
    return items[Below(N)];
  }

 private:
  uint64_t state_;
};

std::string Hex(uint64_t v, bool upper) {
  static const char* kDigits[] = {"0123456789abcdef", "0123456789ABCDEF"};
  std::string s;
  do {
    s.insert(s.begin(), kDigits[upper][v % 16]);
    v /= 16;
  } while (v > 0);
  return s;
}

std::string RandomBytes(Rng& r, size_t n) {
  std::string s(n, '\0');
  for (char& c : s) c = r.Percent(80) ? static_cast<char>('a' + r.Below(26)) : static_cast<char>(r.Below(256));
  return s;
}

std::string Cased(Rng& r, std::string name) {
  if (r.Percent(20)) {
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  } else if (r.Percent(10)) {
    for (char& c : name) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return name;
}

std::string Field(Rng& r, std::string_view name, std::string_view value) {
  static const char* kBefore[] = {"", " ", " ", " ", "  ", "\t"};
  static const char* kAfter[] = {"", "", "", " ", "\t"};
  return Cased(r, std::string(name)) + ":" + r.Pick(kBefore) + std::string(value) + r.Pick(kAfter);
}

std::string ChunkExtension(Rng& r) {
  static const char* kNames[] = {"a", "ext", "name", "x-y", "Q"};
  static const char* kTokens[] = {"1", "v", "abc", "x.y"};
  static const char* kQuoted[] = {"\"q\"", "\"with space\"", "\"esc\\\"aped\"", "\"semi;colon\"", "\"\""};
  std::string ext;
  for (size_t n = 1 + r.Below(2); n > 0; --n) {
    if (r.Percent(10)) ext += ' ';
    ext += ';';
    if (r.Percent(10)) ext += ' ';
    ext += r.Pick(kNames);
    if (r.Percent(50)) {
      if (r.Percent(10)) ext += ' ';
      ext += '=';
      if (r.Percent(10)) ext += '\t';
      ext += r.Percent(50) ? r.Pick(kTokens) : r.Pick(kQuoted);
    }
  }
  return ext;
}

std::string ChunkedBody(Rng& r) {
  std::string body;
  size_t chunks = r.Below(5);
  for (size_t i = 0; i < chunks; ++i) {
    size_t size = r.Percent(5) ? 1 + r.Below(2500) : 1 + r.Below(40);
    if (r.Percent(5)) body += "00";
    body += Hex(size, r.Percent(50));
    if (r.Percent(20)) body += ChunkExtension(r);
    if (r.Percent(1)) body += ";long=" + std::string(kMaxChunkSizeLine - 20 + r.Below(40), 'e');
    body += "\r\n" + RandomBytes(r, size) + "\r\n";
  }
  body += r.Percent(10) ? "000" : "0";
  if (r.Percent(10)) body += ChunkExtension(r);
  body += "\r\n";
  static const char* kTrailers[][2] = {{"X-Checksum", "abc"}, {"Expires", "never"}, {"Server-Timing", "db;dur=1"},
                                       {"Host", "t"},         {"Connection", "close"}, {"Upgrade", "x"},
                                       {"Content-Length", "5"}};
  for (size_t n = r.Below(3); n > 0; --n) {
    const auto& t = kTrailers[r.Percent(90) ? r.Below(3) : r.Below(std::size(kTrailers))];
    body += Field(r, t[0], t[1]) + "\r\n";
  }
  if (r.Percent(1)) body += "X-Big: " + std::string(kMaxHeadSize - 30 + r.Below(40), 't') + "\r\n";
  return body + "\r\n";
}

std::string Request(Rng& r) {
  static const char* kMethods[] = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "X-CUSTOM"};
  static const char* kTargets[] = {"/", "/a", "/user/alice/api/kernels?x=1", "*", "/%20a", "http://pool/x"};
  const std::string target = r.Percent(1) ? "/" + std::string(kMaxHeadSize / 2, 't') : r.Pick(kTargets);
  std::string m;
  if (r.Percent(3)) {
    for (size_t n = 1 + r.Below(5); n > 0; --n) m += "\r\n";
  }
  const bool http10 = r.Percent(10);
  m += std::string(r.Pick(kMethods)) + " " + target + (http10 ? " HTTP/1.0" : " HTTP/1.1") + "\r\n";

  std::vector<std::string> fields;
  for (size_t n = r.Percent(90) ? 1 : r.Below(3); n > 0; --n) fields.push_back(Field(r, "Host", "pool"));
  static const char* kOthers[][2] = {
      {"Accept", "*/*"},
      {"User-Agent", "fuzz/1.0 (x)"},
      {"Cookie", "a=b; c=d"},
      {"X-Forwarded-For", "10.0.0.1, 10.0.0.2"},
      {"Content-Type", "text/plain; charset=utf-8"},
      {"Connection", "keep-alive"},
      {"Connection", "close"},
      {"Connection", "keep-alive, Upgrade"},
      {"Connection", ", close ,"},
      {"Proxy-Connection", "keep-alive"},
      {"Upgrade", "websocket"},
      {"Expect", "100-continue"},
      {"X-Empty", ""},
      {"X-Obs-Text", "caf\xc3\xa9"},
      {"Accept-Encoding", "gzip, deflate"},
      {"TE", "trailers"},
      {"Trailer", "X-Checksum"},
  };
  for (size_t n = r.Below(8); n > 0; --n) {
    const auto& f = r.Pick(kOthers);
    fields.push_back(Field(r, f[0], f[1]));
  }
  if (r.Percent(1)) {
    for (size_t n = kMaxHeaders - 3 + r.Below(6); n > 0; --n) fields.push_back(Field(r, "X-Many", "y"));
  }
  if (r.Percent(2)) {
    size_t size = r.Percent(50) ? kMaxHeadSize - 120 + r.Below(100) : kMaxHeadSize / 2 - 50 + r.Below(100);
    fields.push_back("X-Big: " + std::string(size, 'b'));
  }

  std::string body;
  size_t kind = r.Below(100);
  if (kind >= 40 && kind < 65) {
    size_t size = r.Percent(5) ? r.Below(kBodyLimit + 200) : r.Below(64);
    static const char* kForms[] = {"N", "N", "N", "N, N", "0N", "N,N"};
    std::string form = r.Pick(kForms), value;
    for (char c : form) value += c == 'N' ? std::to_string(size) : std::string(1, c);
    fields.push_back(Field(r, "Content-Length", value));
    if (r.Percent(5)) fields.push_back(Field(r, "Content-Length", std::to_string(size)));
    body = RandomBytes(r, size);
  } else if (kind >= 65) {
    static const char* kCodings[] = {"chunked", "chunked", "chunked", "Chunked", "gzip, chunked", "chunked,"};
    if (r.Percent(5)) fields.push_back(Field(r, "Transfer-Encoding", "gzip"));
    fields.push_back(Field(r, "Transfer-Encoding", r.Pick(kCodings)));
    body = ChunkedBody(r);
  }
  for (size_t i = fields.size(); i > 1; --i) std::swap(fields[i - 1], fields[r.Below(i)]);
  for (const std::string& f : fields) m += f + "\r\n";
  return m + "\r\n" + body;
}

// The offset of a random CR LF in m, or npos.
size_t RandomCrLf(Rng& r, const std::string& m) {
  std::vector<size_t> at;
  for (size_t i = m.find("\r\n"); i != std::string::npos; i = m.find("\r\n", i + 1)) at.push_back(i);
  return at.empty() ? std::string::npos : at[r.Below(at.size())];
}

void Mutate(Rng& r, std::string& m) {
  static const char kPalette[] = {'\r', '\n', ' ', '\t', ':', ';', '=', ',', '"', '\\', '0', '1', '9',
                                  'a',  'f',  'F', 'g',  'x', '\0', '\x7f', '\x80', '\xff'};
  static const char* kFragments[] = {"\r\n",
                                     "\r\n\r\n",
                                     "Host: dup\r\n",
                                     "Content-Length: 3\r\n",
                                     "Content-Length: 0\r\n",
                                     "Transfer-Encoding: chunked\r\n",
                                     "Transfer-Encoding: identity\r\n",
                                     " folded\r\n",
                                     "\tfolded\r\n",
                                     "X-Bad : y\r\n",
                                     "0\r\n\r\n",
                                     "1\r\nz\r\n"};
  const size_t pos = r.Below(m.size() + 1);
  const size_t crlf = RandomCrLf(r, m);
  switch (r.Below(11)) {
    case 0:
      m.insert(m.begin() + static_cast<long>(pos), r.Pick(kPalette));
      break;
    case 1:
      if (pos < m.size()) m.erase(pos, 1);
      break;
    case 2:
      if (pos < m.size()) m[pos] = r.Pick(kPalette);
      break;
    case 3:  // CR LF to LF, or to CR
      if (crlf != std::string::npos) m.erase(crlf + (r.Percent(70) ? 0 : 1), 1);
      break;
    case 4:  // a line break doubled or turned around
      if (crlf != std::string::npos) m.replace(crlf, 2, r.Percent(50) ? "\r\r\n" : "\n\r");
      break;
    case 5:  // a field or chunk line injected at a line start
      if (crlf != std::string::npos) m.insert(crlf + 2, r.Pick(kFragments));
      break;
    case 6:  // a line duplicated
      if (crlf != std::string::npos) {
        size_t start = m.rfind("\r\n", crlf == 0 ? 0 : crlf - 1);
        start = start == std::string::npos || start >= crlf ? 0 : start + 2;
        m.insert(crlf + 2, m.substr(start, crlf + 2 - start));
      }
      break;
    case 7: {  // a hex digit changed
      std::vector<size_t> digits;
      for (size_t i = 0; i < m.size(); ++i) {
        if (IsHexDigit(m[i])) digits.push_back(i);
      }
      if (!digits.empty()) m[digits[r.Below(digits.size())]] = "0123456789abcdefABCDEF"[r.Below(22)];
      break;
    }
    case 8:
      m.resize(pos);
      break;
    case 9:
      if (pos + 1 < m.size()) std::swap(m[pos], m[pos + 1]);
      break;
    case 10:  // whitespace next to a colon or semicolon
      for (size_t i = pos; i < m.size(); ++i) {
        if (m[i] == ':' || m[i] == ';') {
          m.insert(i + (r.Percent(50) ? 0 : 1), r.Percent(50) ? " " : "\t");
          break;
        }
      }
      break;
  }
}

}  // namespace

const char* AsymmetryName(Asymmetry a) {
  switch (a) {
    case Asymmetry::kObsFold: return "obs-fold";
    case Asymmetry::kHost: return "Host count";
    case Asymmetry::kTransferEncoding: return "Transfer-Encoding";
    case Asymmetry::kTooManyFields: return "too many fields";
    case Asymmetry::kHeadSize: return "head size";
    case Asymmetry::kChunkSizeLine: return "chunk-size line length";
    case Asymmetry::kTrailerSize: return "trailer section size";
    case Asymmetry::kTrailerField: return "field not allowed in trailers";
    case Asymmetry::kControlInChunkExtension: return "control character in a chunk extension";
    case Asymmetry::kBodyLimit: return "body limit on wire bytes";
    case Asymmetry::kCount: break;
  }
  return "?";
}

Case Generate(uint64_t seed) {
  Rng r(seed);
  Case c;
  c.input = Request(r);
  if (r.Percent(50)) c.input += "GET /next HTTP/1.1\r\nHost: pool\r\n\r\n";
  else if (r.Percent(40)) c.input += RandomBytes(r, r.Below(12));
  if (!r.Percent(30)) {
    for (size_t n = 1 + r.Below(3); n > 0; --n) Mutate(r, c.input);
  }
  for (size_t n = r.Below(4); n > 0 && c.input.size() > 1; --n) c.cuts.push_back(1 + r.Below(c.input.size() - 1));
  std::sort(c.cuts.begin(), c.cuts.end());
  c.cuts.erase(std::unique(c.cuts.begin(), c.cuts.end()), c.cuts.end());
  return c;
}

std::string Compare(std::string_view input, const std::vector<size_t>& cuts, Stats* stats) {
  ++stats->cases;
  return CompareOnce(input, cuts, stats, false);
}

std::vector<std::string> RunCases(uint64_t seed, uint64_t iterations, Stats* stats, size_t max_failures) {
  std::vector<std::string> failures;
  for (uint64_t i = 0; i < iterations && failures.size() < max_failures; ++i) {
    Case c = Generate(seed + i);
    std::string failure = Compare(c.input, c.cuts, stats);
    if (failure.empty()) continue;
    std::string cuts;
    for (size_t cut : c.cuts) cuts += " " + std::to_string(cut);
    failures.push_back("case seed " + std::to_string(seed + i) + ": " + failure + "\n  cuts:" + cuts +
                       "\n  input: " + Escape(c.input.substr(0, 800)) + (c.input.size() > 800 ? "..." : ""));
  }
  return failures;
}

std::string Escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    unsigned char u = static_cast<unsigned char>(c);
    if (c == '\r') out += "\\r";
    else if (c == '\n') out += "\\n";
    else if (c == '\t') out += "\\t";
    else if (c == '\\') out += "\\\\";
    else if (u < 0x20 || u >= 0x7f) {
      static const char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[u >> 4];
      out += kHex[u & 15];
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace dspool::http1::differential
