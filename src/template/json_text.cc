#include "template/json_text.h"

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <set>

namespace dspool::arm {

namespace {

bool IsIdentifier(std::string_view key) {
  if (key.empty() || std::isdigit(static_cast<unsigned char>(key[0]))) return false;
  for (char c : key) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '$') return false;
  }
  return true;
}

class Parser {
 public:
  Parser(std::string_view text, JsonDocument& doc) : text_(text), doc_(doc) {}

  Status Parse() {
    DSP_RETURN_IF_ERROR(SkipSpace());
    DSP_ASSIGN_OR_RETURN(doc_.value, ParseValue("", 0));
    DSP_RETURN_IF_ERROR(SkipSpace());
    if (pos_ != text_.size()) return Error("unexpected text after the JSON value");
    return Status::Ok();
  }

 private:
  SourcePosition Here() const { return {line_, static_cast<int>(pos_ - line_start_) + 1}; }

  Status Error(const std::string& what) const {
    SourcePosition p = Here();
    return InvalidArgument("line " + std::to_string(p.line) + ", column " + std::to_string(p.column) + ": " + what);
  }

  void Advance() {
    if (text_[pos_] == '\n') {
      ++line_;
      line_start_ = pos_ + 1;
    }
    ++pos_;
  }

  // Whitespace and comments; an error for a block comment never closed.
  Status SkipSpace() {
    while (pos_ < text_.size()) {
      char c = text_[pos_];
      if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
        Advance();
      } else if (c == '/' && pos_ + 1 < text_.size() && text_[pos_ + 1] == '/') {
        while (pos_ < text_.size() && text_[pos_] != '\n') Advance();
      } else if (c == '/' && pos_ + 1 < text_.size() && text_[pos_ + 1] == '*') {
        Status at = Error("a comment that is never closed");
        Advance();
        Advance();
        while (pos_ + 1 < text_.size() && !(text_[pos_] == '*' && text_[pos_ + 1] == '/')) Advance();
        if (pos_ + 1 >= text_.size()) {
          pos_ = text_.size();
          return at;
        }
        Advance();
        Advance();
      } else if (c == '\xEF' && pos_ == 0 && text_.substr(0, 3) == "\xEF\xBB\xBF") {
        pos_ = 3;  // a byte-order mark
        line_start_ = 3;
      } else {
        return Status::Ok();
      }
    }
    return Status::Ok();
  }

  Result<Value> ParseValue(const std::string& path, int depth) {
    if (depth > kMaxJsonDepth) return Error("nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
    if (pos_ >= text_.size()) return Error("unexpected end of the text: expected a value");
    doc_.positions.emplace(path, Here());
    char c = text_[pos_];
    if (c == '{') return ParseObject(path, depth);
    if (c == '[') return ParseArray(path, depth);
    if (c == '"') {
      DSP_ASSIGN_OR_RETURN(std::string s, ParseString());
      return Value(std::move(s));
    }
    if (c == '-' || std::isdigit(static_cast<unsigned char>(c))) return ParseNumber();
    for (auto [word, value] : {std::pair<std::string_view, Value>{"true", true}, {"false", false}, {"null", nullptr}}) {
      if (text_.substr(pos_, word.size()) == word) {
        pos_ += word.size();
        return value;
      }
    }
    return Error(std::string("unexpected character '") + c + "': expected a value");
  }

  Result<Value> ParseObject(const std::string& path, int depth) {
    Value object = Value::object();
    std::set<std::string> keys;
    Advance();  // {
    DSP_RETURN_IF_ERROR(SkipSpace());
    if (pos_ < text_.size() && text_[pos_] == '}') {
      Advance();
      return object;
    }
    while (true) {
      if (pos_ >= text_.size() || text_[pos_] != '"') return Error("expected a member name in double quotes");
      SourcePosition key_at = Here();
      DSP_ASSIGN_OR_RETURN(std::string key, ParseString());
      if (!keys.insert(key).second) {
        return InvalidArgument("line " + std::to_string(key_at.line) + ", column " + std::to_string(key_at.column) +
                               ": the member '" + key + "' is given twice");
      }
      DSP_RETURN_IF_ERROR(SkipSpace());
      if (pos_ >= text_.size() || text_[pos_] != ':') return Error("expected ':' after the member name");
      Advance();
      DSP_RETURN_IF_ERROR(SkipSpace());
      DSP_ASSIGN_OR_RETURN(Value member, ParseValue(MemberPath(path, key), depth + 1));
      object[key] = std::move(member);
      DSP_RETURN_IF_ERROR(SkipSpace());
      if (pos_ >= text_.size()) return Error("unexpected end of the text: expected ',' or '}'");
      if (text_[pos_] == '}') {
        Advance();
        return object;
      }
      if (text_[pos_] != ',') return Error("expected ',' or '}' after a member");
      Advance();
      DSP_RETURN_IF_ERROR(SkipSpace());
      // A trailing comma, as the CLI's reader takes it.
      if (pos_ < text_.size() && text_[pos_] == '}') {
        Advance();
        return object;
      }
    }
  }

  Result<Value> ParseArray(const std::string& path, int depth) {
    Value array = Value::array();
    Advance();  // [
    DSP_RETURN_IF_ERROR(SkipSpace());
    if (pos_ < text_.size() && text_[pos_] == ']') {
      Advance();
      return array;
    }
    while (true) {
      DSP_ASSIGN_OR_RETURN(Value element, ParseValue(ElementPath(path, array.size()), depth + 1));
      array.push_back(std::move(element));
      DSP_RETURN_IF_ERROR(SkipSpace());
      if (pos_ >= text_.size()) return Error("unexpected end of the text: expected ',' or ']'");
      if (text_[pos_] == ']') {
        Advance();
        return array;
      }
      if (text_[pos_] != ',') return Error("expected ',' or ']' after an element");
      Advance();
      DSP_RETURN_IF_ERROR(SkipSpace());
      if (pos_ < text_.size() && text_[pos_] == ']') {
        Advance();
        return array;
      }
    }
  }

  static void AppendUtf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }

  Result<uint32_t> Hex4() {
    if (pos_ + 4 > text_.size()) return Error("a \\u escape needs four hexadecimal digits");
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      char c = text_[pos_ + i];
      if (!std::isxdigit(static_cast<unsigned char>(c))) return Error("a \\u escape needs four hexadecimal digits");
      v = v * 16 + static_cast<uint32_t>(std::isdigit(static_cast<unsigned char>(c)) ? c - '0' : std::tolower(c) - 'a' + 10);
    }
    pos_ += 4;
    return v;
  }

  // A string in double quotes; raw newlines and tabs inside are kept (the
  // CLI accepts them).
  Result<std::string> ParseString() {
    Advance();  // "
    std::string out;
    while (true) {
      if (pos_ >= text_.size()) return Error("a string that is never closed");
      char c = text_[pos_];
      if (c == '"') {
        Advance();
        return out;
      }
      if (c != '\\') {
        if (static_cast<unsigned char>(c) < 0x20 && c != '\n' && c != '\r' && c != '\t') {
          return Error("a control character inside a string");
        }
        out += c;
        Advance();
        continue;
      }
      Advance();
      if (pos_ >= text_.size()) return Error("a string that is never closed");
      char e = text_[pos_++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          DSP_ASSIGN_OR_RETURN(uint32_t cp, Hex4());
          if (cp >= 0xD800 && cp <= 0xDBFF && text_.substr(pos_, 2) == "\\u") {
            pos_ += 2;
            DSP_ASSIGN_OR_RETURN(uint32_t low, Hex4());
            if (low < 0xDC00 || low > 0xDFFF) return Error("a \\u escape with an unpaired surrogate");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          } else if (cp >= 0xD800 && cp <= 0xDFFF) {
            return Error("a \\u escape with an unpaired surrogate");
          }
          AppendUtf8(out, cp);
          break;
        }
        default: --pos_; return Error(std::string("an unknown escape '\\") + e + "' in a string");
      }
    }
  }

  Result<Value> ParseNumber() {
    const size_t start = pos_;
    if (text_[pos_] == '-') ++pos_;
    if (pos_ >= text_.size() || !std::isdigit(static_cast<unsigned char>(text_[pos_]))) {
      return Error("expected a digit");
    }
    bool integral = true;
    while (pos_ < text_.size()) {
      char c = text_[pos_];
      if (std::isdigit(static_cast<unsigned char>(c))) {
        ++pos_;
      } else if (c == '.' || c == 'e' || c == 'E' || ((c == '+' || c == '-') && (text_[pos_ - 1] == 'e' || text_[pos_ - 1] == 'E'))) {
        integral = false;
        ++pos_;
      } else {
        break;
      }
    }
    std::string number(text_.substr(start, pos_ - start));
    char* end = nullptr;
    errno = 0;
    if (integral) {
      long long v = std::strtoll(number.c_str(), &end, 10);
      if (errno == 0 && *end == '\0') return Value(static_cast<int64_t>(v));
    }
    errno = 0;
    double d = std::strtod(number.c_str(), &end);
    if (*end != '\0' || number.back() == '.' || number.find(".e") != std::string::npos) {
      return Error("'" + number + "' is not a number");
    }
    return Value(d);
  }

  std::string_view text_;
  JsonDocument& doc_;
  size_t pos_ = 0;
  int line_ = 1;
  size_t line_start_ = 0;
};

}  // namespace

SourcePosition JsonDocument::PositionOf(std::string_view path) const {
  std::string p(path);
  while (true) {
    if (auto it = positions.find(p); it != positions.end()) return it->second;
    if (p.empty()) return {};
    // The parent: drop the last ".name", "[i]" or "['key']".
    size_t cut = p.find_last_of(".[");
    if (cut == std::string::npos) {
      p.clear();
      continue;
    }
    // A '.' or '[' inside a quoted key: find the bracket that opens it.
    if (p.back() == ']' && p.size() >= 2 && p[p.size() - 2] == '\'') {
      size_t open = p.rfind("['");
      if (open != std::string::npos) cut = open;
    }
    p.resize(cut);
  }
}

std::string MemberPath(std::string_view parent, std::string_view key) {
  std::string out(parent);
  if (IsIdentifier(key)) {
    if (!out.empty()) out += '.';
    out += key;
  } else {
    out += "['";
    out += key;
    out += "']";
  }
  return out;
}

std::string ElementPath(std::string_view parent, size_t index) {
  return std::string(parent) + "[" + std::to_string(index) + "]";
}

Result<JsonDocument> ParseJsonDocument(std::string_view text) {
  JsonDocument doc;
  Parser parser(text, doc);
  DSP_RETURN_IF_ERROR(parser.Parse());
  return doc;
}

}  // namespace dspool::arm
