#include "template/functions.h"

#include <algorithm>
#include <charconv>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <optional>

#include "base/strings.h"
#include "model/ipv4.h"
#include "template/hashes.h"
#include "template/json_text.h"

namespace dspool::arm::internal {

Status FunctionError(const std::string& name, const std::string& what) {
  return InvalidArgument("The template function '" + name + "' " + what);
}

namespace {

std::string Ordinal(size_t i) {
  static const char* kWords[] = {"first", "second", "third", "fourth", "fifth", "sixth"};
  return i < 6 ? kWords[i] : "argument " + std::to_string(i + 1) + " (the";
}

std::string ArgName(size_t i) { return i < 6 ? "its " + Ordinal(i) + " argument" : Ordinal(i) + ")"; }

Status TypeError(const std::string& name, const Args& args, size_t i, const std::string& expected) {
  return FunctionError(name, "expects " + ArgName(i) + " to be " + expected + "; it is " + TypeName(args[i]) + " " +
                                 Quote(args[i]));
}

}  // namespace

Result<bool> ArgBool(const std::string& name, const Args& args, size_t i) {
  if (!args[i].is_boolean()) return TypeError(name, args, i, "a Bool");
  return args[i].get<bool>();
}

Result<int64_t> ArgInt(const std::string& name, const Args& args, size_t i) {
  if (!IsInteger(args[i])) return TypeError(name, args, i, "an Int");
  return AsInteger(args[i]);
}

Result<std::string> ArgString(const std::string& name, const Args& args, size_t i) {
  if (!args[i].is_string()) return TypeError(name, args, i, "a String");
  return args[i].get<std::string>();
}

namespace {

// The longest string a function that multiplies text (replace) may make:
// a template file is at most 4 MB.
constexpr size_t kMaxString = 4 << 20;

// ---- text helpers ----

// JSON as json() takes it: strict JSON, or with single-quoted strings.
Result<Value> ParseLenientJson(const std::string& name, const std::string& text) {
  auto strict = ParseJsonDocument(text);
  if (strict.ok()) return std::move(strict->value);
  std::string converted;
  bool in_double = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (in_double) {
      converted += c;
      if (c == '\\' && i + 1 < text.size()) {
        converted += text[++i];
      } else if (c == '"') {
        in_double = false;
      }
    } else if (c == '"') {
      in_double = true;
      converted += c;
    } else if (c == '\'') {
      converted += '"';
      for (++i; i < text.size() && text[i] != '\''; ++i) {
        if (text[i] == '\\' && i + 1 < text.size()) {
          if (text[i + 1] == '\'') {
            converted += '\'';
          } else {
            converted += text[i];
            converted += text[i + 1];
          }
          ++i;
        } else if (text[i] == '"') {
          converted += "\\\"";
        } else {
          converted += text[i];
        }
      }
      converted += '"';
    } else {
      converted += c;
    }
  }
  auto lenient = ParseJsonDocument(converted);
  if (!lenient.ok()) return FunctionError(name, "was given text that is not JSON: " + strict.status().message());
  return std::move(lenient->value);
}

// The length in UTF-16 code units, as .NET counts a string.
int64_t Utf16Length(std::string_view s) {
  int64_t n = 0;
  for (size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    size_t len = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    n += len == 4 ? 2 : 1;
    i += len;
  }
  return n;
}

size_t FindIgnoreCase(std::string_view hay, std::string_view needle, bool last) {
  std::string h = ToLowerAscii(hay), n = ToLowerAscii(needle);
  return last ? h.rfind(n) : h.find(n);
}

std::string UriUnescape(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

// ---- argument checks ----

Status ExpectStringOrArray(const std::string& name, const Args& args, size_t i) {
  if (args[i].is_string() || args[i].is_array()) return Status::Ok();
  return TypeError(name, args, i, "a String or an Array");
}

// ---- strings ----

Result<Value> FnBase64(const std::string& name, Args& args) {
  DSP_ASSIGN_OR_RETURN(std::string s, ArgString(name, args, 0));
  return Value(Base64Encode(s));
}

Result<Value> FnBase64ToString(const std::string& name, Args& args) {
  DSP_ASSIGN_OR_RETURN(std::string s, ArgString(name, args, 0));
  auto decoded = Base64Decode(s);
  if (!decoded) return FunctionError(name, "was given text that is not base64: " + Quote(args[0]));
  if (name == "base64tojson") return ParseLenientJson(name, *decoded);
  return Value(*decoded);
}

Result<Value> FnConcat(const std::string& name, Args& args) {
  bool arrays = !args.empty() && std::all_of(args.begin(), args.end(), [](const Value& v) { return v.is_array() || v.is_null(); });
  if (arrays) {
    Value out = Value::array();
    for (const Value& a : args) {
      if (a.is_null()) continue;
      for (const Value& e : a) out.push_back(e);
    }
    return out;
  }
  std::string out;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i].is_array() || args[i].is_object()) {
      return FunctionError(name, "expects its arguments to be either all arrays or all strings, numbers and bools; " +
                                     ArgName(i) + " is " + TypeName(args[i]));
    }
    out += ToText(args[i]);
  }
  return Value(out);
}

Result<Value> FnDataUri(const std::string&, Args& args) {
  return Value("data:text/plain;charset=utf8;base64," + Base64Encode(ToText(args[0])));
}

Result<Value> FnDataUriToString(const std::string& name, Args& args) {
  DSP_ASSIGN_OR_RETURN(std::string s, ArgString(name, args, 0));
  size_t comma = s.find(',');
  if (s.rfind("data:", 0) != 0 || comma == std::string::npos) {
    return FunctionError(name, "expects a data URI (data:[type][;base64],data); it was given " + Quote(args[0]));
  }
  std::string meta = s.substr(5, comma - 5), data = s.substr(comma + 1);
  if (meta.size() >= 7 && meta.compare(meta.size() - 7, 7, ";base64") == 0) {
    auto decoded = Base64Decode(data);
    if (!decoded) return FunctionError(name, "was given a data URI whose data is not base64");
    return Value(*decoded);
  }
  return Value(UriUnescape(data));
}

Result<Value> FnStartsEnds(const std::string& name, Args& args) {
  DSP_ASSIGN_OR_RETURN(std::string s, ArgString(name, args, 0));
  DSP_ASSIGN_OR_RETURN(std::string t, ArgString(name, args, 1));
  if (t.size() > s.size()) return Value(false);
  std::string part = name == "startswith" ? s.substr(0, t.size()) : s.substr(s.size() - t.size());
  return Value(EqualsIgnoreCase(part, t));
}

// .NET composite format: {index[,alignment][:format]}, with {{ and }}.
Result<std::string> FormatNumber(const std::string& name, const Value& v, const std::string& spec) {
  if (spec.empty() || !v.is_number()) return ToFormatText(v);
  char kind = static_cast<char>(std::toupper(static_cast<unsigned char>(spec[0])));
  int digits = -1;
  if (spec.size() > 1) {
    if (!std::all_of(spec.begin() + 1, spec.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); }) ||
        spec.size() > 4) {
      return FunctionError(name, "was given the format '" + spec + "', which it does not know");
    }
    digits = std::stoi(spec.substr(1));
  }
  const bool integral = IsInteger(v);
  const double d = v.get<double>();
  char buf[512];
  switch (kind) {
    case 'D': {
      if (!integral) return FunctionError(name, "can format only integers with 'D'");
      int64_t n = AsInteger(v);
      std::string body = std::to_string(n < 0 ? -(n + 1) + 1ULL : static_cast<uint64_t>(n));
      if (digits > 0 && static_cast<int>(body.size()) < digits) body.insert(0, digits - body.size(), '0');
      return (n < 0 ? "-" : "") + body;
    }
    case 'X': {
      if (!integral) return FunctionError(name, "can format only integers with 'X'");
      std::snprintf(buf, sizeof buf, spec[0] == 'x' ? "%llx" : "%llX", static_cast<unsigned long long>(AsInteger(v)));
      std::string body = buf;
      if (digits > 0 && static_cast<int>(body.size()) < digits) body.insert(0, digits - body.size(), '0');
      return body;
    }
    case 'F':
    case 'N': {
      int places = digits < 0 ? 2 : digits;
      std::snprintf(buf, sizeof buf, "%.*f", places, d);
      std::string s = buf;
      if (kind == 'N') {
        size_t start = s[0] == '-' ? 1 : 0;
        size_t point = s.find('.');
        size_t end = point == std::string::npos ? s.size() : point;
        for (size_t i = end; i > start + 3; i -= 3) s.insert(i - 3, ",");
      }
      return s;
    }
    case 'P': {
      int places = digits < 0 ? 2 : digits;
      std::snprintf(buf, sizeof buf, "%.*f %%", places, d * 100);
      return std::string(buf);
    }
    default: return FunctionError(name, "was given the format '" + spec + "', which it does not know");
  }
}

Result<Value> FnFormat(const std::string& name, Args& args) {
  DSP_ASSIGN_OR_RETURN(std::string fmt, ArgString(name, args, 0));
  std::string out;
  for (size_t i = 0; i < fmt.size(); ++i) {
    char c = fmt[i];
    if (c == '}') {
      if (i + 1 < fmt.size() && fmt[i + 1] == '}') {
        out += '}';
        ++i;
        continue;
      }
      return FunctionError(name, "was given a format string with a '}' that closes nothing at position " + std::to_string(i + 1));
    }
    if (c != '{') {
      out += c;
      continue;
    }
    if (i + 1 < fmt.size() && fmt[i + 1] == '{') {
      out += '{';
      ++i;
      continue;
    }
    size_t close = fmt.find('}', i);
    if (close == std::string::npos) return FunctionError(name, "was given a format string with a '{' that is never closed");
    std::string item = fmt.substr(i + 1, close - i - 1);
    std::string spec;
    if (size_t colon = item.find(':'); colon != std::string::npos) {
      spec = item.substr(colon + 1);
      item.resize(colon);
    }
    int align = 0;
    if (size_t comma = item.find(','); comma != std::string::npos) {
      try {
        align = std::stoi(item.substr(comma + 1));
      } catch (...) {
        return FunctionError(name, "was given a format item with a bad alignment: {" + fmt.substr(i + 1, close - i - 1) + "}");
      }
      item.resize(comma);
    }
    if (item.empty() || item.size() > 3 || !std::all_of(item.begin(), item.end(), [](char d) { return std::isdigit(static_cast<unsigned char>(d)); })) {
      return FunctionError(name, "was given a format item that is not {index[,alignment][:format]}: {" +
                                     fmt.substr(i + 1, close - i - 1) + "}");
    }
    size_t index = std::stoul(item) + 1;
    if (index >= args.size()) {
      return FunctionError(name, "was given the format item {" + item + "}, but only " + std::to_string(args.size() - 1) +
                                     " values to format");
    }
    DSP_ASSIGN_OR_RETURN(std::string text, FormatNumber(name, args[index], spec));
    if (align > 0 && static_cast<int>(text.size()) < align) text.insert(0, align - text.size(), ' ');
    if (align < 0 && static_cast<int>(text.size()) < -align) text.append(-align - text.size(), ' ');
    out += text;
    i = close;
  }
  return Value(out);
}

Result<std::vector<std::string>> StringArgs(const std::string& name, const Args& args) {
  std::vector<std::string> parts;
  for (size_t i = 0; i < args.size(); ++i) {
    DSP_ASSIGN_OR_RETURN(std::string s, ArgString(name, args, i));
    parts.push_back(std::move(s));
  }
  return parts;
}

Result<Value> FnGuid(const std::string& name, Args& args) {
  DSP_ASSIGN_OR_RETURN(auto parts, StringArgs(name, args));
  return Value(GuidOf(parts));
}

Result<Value> FnUniqueString(const std::string& name, Args& args) {
  DSP_ASSIGN_OR_RETURN(auto parts, StringArgs(name, args));
  return Value(UniqueString(parts));
}

Result<Value> FnIndexOf(const std::string& name, Args& args) {
  const bool last = name == "lastindexof";
  if (args[0].is_array()) {
    const Value& a = args[0];
    for (size_t k = 0; k < a.size(); ++k) {
      size_t i = last ? a.size() - 1 - k : k;
      if (DeepEquals(a[i], args[1])) return Value(static_cast<int64_t>(i));
    }
    return Value(-1);
  }
  DSP_ASSIGN_OR_RETURN(std::string s, ArgString(name, args, 0));
  DSP_ASSIGN_OR_RETURN(std::string t, ArgString(name, args, 1));
  size_t at = FindIgnoreCase(s, t, last);
  return Value(at == std::string::npos ? int64_t{-1} : static_cast<int64_t>(at));
}

Result<Value> FnJoin(const std::string& name, Args& args) {
  if (!args[0].is_array()) return TypeError(name, args, 0, "an Array");
  DSP_ASSIGN_OR_RETURN(std::string delimiter, ArgString(name, args, 1));
  std::string out;
  for (size_t i = 0; i < args[0].size(); ++i) {
    if (i) out += delimiter;
    out += ToText(args[0][i]);
  }
  return Value(out);
}

Result<Value> FnJson(const std::string& name, Args& args) {
  DSP_ASSIGN_OR_RETURN(std::string s, ArgString(name, args, 0));
  return ParseLenientJson(name, s);
}

Result<Value> FnPadLeft(const std::string& name, Args& args) {
  if (!args[0].is_string() && !IsInteger(args[0])) return TypeError(name, args, 0, "a String or an Int");
  DSP_ASSIGN_OR_RETURN(int64_t width, ArgInt(name, args, 1));
  std::string pad = " ";
  if (args.size() > 2) {
    DSP_ASSIGN_OR_RETURN(pad, ArgString(name, args, 2));
    if (pad.size() != 1) return FunctionError(name, "expects its padding to be one character; it is " + Quote(args[2]));
  }
  if (width > 16384) return FunctionError(name, "pads to at most 16384 characters; it was asked for " + std::to_string(width));
  std::string s = ToText(args[0]);
  if (static_cast<int64_t>(s.size()) < width) s.insert(0, static_cast<size_t>(width) - s.size(), pad[0]);
  return Value(s);
}

Result<Value> FnReplace(const std::string& name, Args& args) {
  DSP_ASSIGN_OR_RETURN(std::string s, ArgString(name, args, 0));
  DSP_ASSIGN_OR_RETURN(std::string from, ArgString(name, args, 1));
  DSP_ASSIGN_OR_RETURN(std::string to, ArgString(name, args, 2));
  if (from.empty()) return FunctionError(name, "cannot replace an empty string");
  size_t count = 0;
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + from.size())) ++count;
  if (to.size() > from.size() && s.size() + count * (to.size() - from.size()) > kMaxString) {
    return FunctionError(name, "would make a string longer than " + std::to_string(kMaxString) + " characters");
  }
  std::string out;
  size_t at = 0;
  for (size_t next; (next = s.find(from, at)) != std::string::npos; at = next + from.size()) {
    out.append(s, at, next - at);
    out += to;
  }
  out.append(s, at);
  return Value(out);
}

Result<Value> FnSplit(const std::string& name, Args& args) {
  DSP_ASSIGN_OR_RETURN(std::string s, ArgString(name, args, 0));
  std::vector<std::string> delimiters;
  if (args[1].is_array()) {
    for (const Value& d : args[1]) {
      if (!d.is_string()) return FunctionError(name, "expects its delimiters to be strings");
      delimiters.push_back(d.get<std::string>());
    }
  } else {
    DSP_ASSIGN_OR_RETURN(std::string d, ArgString(name, args, 1));
    delimiters.push_back(d);
  }
  delimiters.erase(std::remove(delimiters.begin(), delimiters.end(), ""), delimiters.end());
  Value out = Value::array();
  std::string part;
  for (size_t i = 0; i < s.size();) {
    bool matched = false;
    for (const std::string& d : delimiters) {
      if (s.compare(i, d.size(), d) == 0) {
        out.push_back(part);
        part.clear();
        i += d.size();
        matched = true;
        break;
      }
    }
    if (!matched) part += s[i++];
  }
  out.push_back(part);
  return out;
}

Result<Value> FnString(const std::string&, Args& args) { return Value(ToText(args[0])); }

Result<Value> FnSubstring(const std::string& name, Args& args) {
  DSP_ASSIGN_OR_RETURN(std::string s, ArgString(name, args, 0));
  int64_t start = 0;
  if (args.size() > 1) {
    DSP_ASSIGN_OR_RETURN(start, ArgInt(name, args, 1));
  }
  const auto size = static_cast<int64_t>(s.size());
  int64_t length = size - start;
  if (args.size() > 2) {
    DSP_ASSIGN_OR_RETURN(length, ArgInt(name, args, 2));
  }
  if (start < 0 || start > size) {
    return FunctionError(name, "was given the start index " + std::to_string(start) + ", outside the string of length " +
                                   std::to_string(size));
  }
  if (length < 0 || start + length > size) {
    return FunctionError(name, "was given the length " + std::to_string(length) + " from index " + std::to_string(start) +
                                   ", beyond the end of the string of length " + std::to_string(size));
  }
  return Value(s.substr(static_cast<size_t>(start), static_cast<size_t>(length)));
}

Result<Value> FnCase(const std::string& name, Args& args) {
  DSP_ASSIGN_OR_RETURN(std::string s, ArgString(name, args, 0));
  return Value(name == "tolower" ? ToLowerAscii(s) : ToUpperAscii(s));
}

Result<Value> FnTrim(const std::string& name, Args& args) {
  DSP_ASSIGN_OR_RETURN(std::string s, ArgString(name, args, 0));
  size_t b = s.find_first_not_of(" \t\r\n\v\f");
  if (b == std::string::npos) return Value("");
  size_t e = s.find_last_not_of(" \t\r\n\v\f");
  return Value(s.substr(b, e - b + 1));
}

Result<Value> FnUri(const std::string& name, Args& args) {
  DSP_ASSIGN_OR_RETURN(std::string base, ArgString(name, args, 0));
  DSP_ASSIGN_OR_RETURN(std::string relative, ArgString(name, args, 1));
  size_t scheme = base.find("://");
  if (scheme == std::string::npos) return FunctionError(name, "expects an absolute URI as its base; it was given " + Quote(args[0]));
  if (relative.find("://") != std::string::npos) return Value(relative);
  size_t host_end = base.find('/', scheme + 3);
  if (!relative.empty() && relative[0] == '/') {
    return Value((host_end == std::string::npos ? base : base.substr(0, host_end)) + relative);
  }
  if (host_end == std::string::npos) return Value(base + "/" + relative);
  if (base.back() == '/') return Value(base + relative);
  return Value(base.substr(0, base.rfind('/') + 1) + relative);
}

Result<Value> FnUriComponent(const std::string& name, Args& args) {
  DSP_ASSIGN_OR_RETURN(std::string s, ArgString(name, args, 0));
  return Value(name == "uricomponent" ? PercentEncode(s) : UriUnescape(s));
}

// ---- shared by strings and arrays ----

Result<Value> FnContains(const std::string& name, Args& args) {
  const Value& c = args[0];
  if (c.is_object()) {
    if (!args[1].is_string()) return TypeError(name, args, 1, "a String (a key of the object)");
    return Value(FindMember(c, args[1].get<std::string>()) != nullptr);
  }
  if (c.is_array()) {
    for (const Value& e : c) {
      if (DeepEquals(e, args[1])) return Value(true);
    }
    return Value(false);
  }
  if (c.is_string()) {
    if (args[1].is_array() || args[1].is_object()) return TypeError(name, args, 1, "a String, an Int or a Bool");
    return Value(c.get<std::string>().find(ToText(args[1])) != std::string::npos);
  }
  return TypeError(name, args, 0, "a String, an Array or an Object");
}

Result<Value> FnEmpty(const std::string&, Args& args) {
  const Value& v = args[0];
  return Value(v.is_null() || ((v.is_string() || v.is_array() || v.is_object()) && v.empty()) ||
               (v.is_string() && v.get<std::string>().empty()));
}

Result<Value> FnFirstLast(const std::string& name, Args& args) {
  const bool first = name == "first";
  DSP_RETURN_IF_ERROR(ExpectStringOrArray(name, args, 0));
  if (args[0].is_string()) {
    const std::string& s = args[0].get_ref<const std::string&>();
    if (s.empty()) return Value("");
    return Value(std::string(1, first ? s.front() : s.back()));
  }
  if (args[0].empty()) return Value(nullptr);
  return first ? args[0].front() : args[0].back();
}

Result<Value> FnLength(const std::string& name, Args& args) { return LengthOf(name, args[0]); }

}  // namespace

Result<Value> LengthOf(const std::string& name, const Value& v) {
  if (v.is_string()) return Value(Utf16Length(v.get_ref<const std::string&>()));
  if (v.is_array() || v.is_object()) return Value(static_cast<int64_t>(v.size()));
  return TypeError(name, Args{v}, 0, "a String, an Array or an Object");
}

namespace {

Result<Value> FnSkipTake(const std::string& name, Args& args) {
  DSP_RETURN_IF_ERROR(ExpectStringOrArray(name, args, 0));
  DSP_ASSIGN_OR_RETURN(int64_t n, ArgInt(name, args, 1));
  const bool skip = name == "skip";
  const auto size = static_cast<int64_t>(args[0].is_string() ? args[0].get_ref<const std::string&>().size() : args[0].size());
  n = std::clamp<int64_t>(n, 0, size);
  const int64_t from = skip ? n : 0, to = skip ? size : n;
  if (args[0].is_string()) return Value(args[0].get_ref<const std::string&>().substr(from, to - from));
  Value out = Value::array();
  for (int64_t i = from; i < to; ++i) out.push_back(args[0][i]);
  return out;
}

// ---- arrays and objects ----

Result<Value> FnArray(const std::string&, Args& args) {
  if (args[0].is_array()) return args[0];
  return Value::array({args[0]});
}

Result<Value> FnCreateArray(const std::string&, Args& args) {
  Value out = Value::array();
  for (Value& a : args) out.push_back(std::move(a));
  return out;
}

Result<Value> FnCreateObject(const std::string& name, Args& args) {
  if (args.size() % 2 != 0) return FunctionError(name, "expects pairs of a key and a value; it was given " + std::to_string(args.size()) + " arguments");
  Value out = Value::object();
  for (size_t i = 0; i < args.size(); i += 2) {
    DSP_ASSIGN_OR_RETURN(std::string key, ArgString(name, args, i));
    out[key] = std::move(args[i + 1]);
  }
  return out;
}

Result<Value> FnFlatten(const std::string& name, Args& args) {
  if (!args[0].is_array()) return TypeError(name, args, 0, "an Array");
  Value out = Value::array();
  for (const Value& e : args[0]) {
    if (!e.is_array()) return FunctionError(name, "expects an array of arrays; one element is " + TypeName(e));
    for (const Value& x : e) out.push_back(x);
  }
  return out;
}

Status SameKinds(const std::string& name, const Args& args) {
  if (args.empty()) return Status::Ok();
  const bool arrays = args[0].is_array();
  for (size_t i = 0; i < args.size(); ++i) {
    if (arrays ? !args[i].is_array() : !args[i].is_object()) {
      return TypeError(name, args, i, arrays ? "an Array, as the first is" : "an Object, as the first is");
    }
  }
  return Status::Ok();
}

bool ContainsDeep(const Value& array, const Value& v) {
  return std::any_of(array.begin(), array.end(), [&](const Value& e) { return DeepEquals(e, v); });
}

Result<Value> FnIntersection(const std::string& name, Args& args) {
  DSP_RETURN_IF_ERROR(SameKinds(name, args));
  if (args[0].is_array()) {
    Value out = Value::array();
    for (const Value& e : args[0]) {
      if (ContainsDeep(out, e)) continue;
      if (std::all_of(args.begin() + 1, args.end(), [&](const Value& a) { return ContainsDeep(a, e); })) out.push_back(e);
    }
    return out;
  }
  Value out = Value::object();
  for (const auto& [k, v] : args[0].items()) {
    bool everywhere = std::all_of(args.begin() + 1, args.end(), [&](const Value& o) {
      auto it = o.find(k);
      return it != o.end() && DeepEquals(*it, v);
    });
    if (everywhere) out[k] = v;
  }
  return out;
}

void DeepMerge(Value& into, const Value& from) {
  for (const auto& [k, v] : from.items()) {
    auto it = into.find(k);
    if (it != into.end() && it->is_object() && v.is_object()) {
      DeepMerge(*it, v);
    } else {
      into[k] = v;
    }
  }
}

Result<Value> FnUnion(const std::string& name, Args& args) {
  DSP_RETURN_IF_ERROR(SameKinds(name, args));
  if (args[0].is_array()) {
    Value out = Value::array();
    for (const Value& a : args) {
      for (const Value& e : a) {
        if (!ContainsDeep(out, e)) out.push_back(e);
      }
    }
    return out;
  }
  Value out = Value::object();
  for (const Value& o : args) DeepMerge(out, o);
  return out;
}

Result<Value> FnShallowMerge(const std::string& name, Args& args) {
  if (!args[0].is_array()) return TypeError(name, args, 0, "an Array of Objects");
  Value out = Value::object();
  for (const Value& o : args[0]) {
    if (!o.is_object()) return FunctionError(name, "expects an array of objects; one element is " + TypeName(o));
    for (const auto& [k, v] : o.items()) out[k] = v;
  }
  return out;
}

Result<Value> FnItems(const std::string& name, Args& args) {
  if (!args[0].is_object()) return TypeError(name, args, 0, "an Object");
  std::vector<std::pair<std::string, const Value*>> entries;
  for (const auto& [k, v] : args[0].items()) entries.emplace_back(k, &v);
  std::stable_sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) { return CultureCompare(a.first, b.first) < 0; });
  Value out = Value::array();
  for (const auto& [k, v] : entries) out.push_back(Value{{"key", k}, {"value", *v}});
  return out;
}

Result<Value> FnObjectKeys(const std::string& name, Args& args) {
  if (!args[0].is_object()) return TypeError(name, args, 0, "an Object");
  Value out = Value::array();
  for (const auto& [k, v] : args[0].items()) out.push_back(k);
  return out;
}

Result<Value> FnMinMax(const std::string& name, Args& args) {
  Args values = args.size() == 1 && args[0].is_array() ? Args(args[0].begin(), args[0].end()) : args;
  if (values.empty()) return FunctionError(name, "needs at least one number");
  const bool max = name == "max";
  size_t best = 0;
  for (size_t i = 0; i < values.size(); ++i) {
    if (!values[i].is_number()) return FunctionError(name, "expects integers or one array of integers; one is " + TypeName(values[i]));
    if (i && (max ? values[i].get<double>() > values[best].get<double>() : values[i].get<double>() < values[best].get<double>())) {
      best = i;
    }
  }
  return values[best];
}

Result<Value> FnRange(const std::string& name, Args& args) {
  DSP_ASSIGN_OR_RETURN(int64_t start, ArgInt(name, args, 0));
  DSP_ASSIGN_OR_RETURN(int64_t count, ArgInt(name, args, 1));
  if (count < 0 || count > 10000) return FunctionError(name, "expects a count from 0 to 10000; it was given " + std::to_string(count));
  if (start + count > 2147483647LL || start < -2147483648LL) {
    return FunctionError(name, "expects start + count to be at most 2147483647");
  }
  Value out = Value::array();
  for (int64_t i = 0; i < count; ++i) out.push_back(start + i);
  return out;
}

Result<Value> FnTryGet(const std::string& name, Args& args) {
  const Value* v = &args[0];
  for (size_t i = 1; i < args.size(); ++i) {
    if (v->is_object() && args[i].is_string()) {
      v = FindMember(*v, args[i].get<std::string>());
    } else if (v->is_array() && IsInteger(args[i])) {
      int64_t index = AsInteger(args[i]);
      v = index >= 0 && index < static_cast<int64_t>(v->size()) ? &(*v)[static_cast<size_t>(index)] : nullptr;
    } else if (v->is_object() || v->is_array()) {
      return TypeError(name, args, i, v->is_object() ? "a String (a key)" : "an Int (an index)");
    } else {
      v = nullptr;
    }
    if (v == nullptr) return Value(nullptr);
  }
  return *v;
}

Result<Value> FnCoalesce(const std::string&, Args& args) {
  for (Value& a : args) {
    if (!a.is_null()) return std::move(a);
  }
  return Value(nullptr);
}

Result<Value> FnNull(const std::string&, Args&) { return Value(nullptr); }

// ---- comparison and logic ----

Result<Value> FnEquals(const std::string&, Args& args) { return Value(DeepEquals(args[0], args[1])); }

Result<Value> FnCompare(const std::string& name, Args& args) {
  int c;
  if (args[0].is_number() && args[1].is_number()) {
    double a = args[0].get<double>(), b = args[1].get<double>();
    if (IsInteger(args[0]) && IsInteger(args[1])) {
      c = AsInteger(args[0]) < AsInteger(args[1]) ? -1 : AsInteger(args[0]) > AsInteger(args[1]) ? 1 : 0;
    } else {
      c = a < b ? -1 : a > b ? 1 : 0;
    }
  } else if (args[0].is_string() && args[1].is_string()) {
    c = CultureCompare(args[0].get_ref<const std::string&>(), args[1].get_ref<const std::string&>());
  } else {
    return FunctionError(name, "expects two integers or two strings; it was given " + TypeName(args[0]) + " and " + TypeName(args[1]));
  }
  if (name == "less") return Value(c < 0);
  if (name == "lessorequals") return Value(c <= 0);
  if (name == "greater") return Value(c > 0);
  return Value(c >= 0);
}

Result<Value> FnNot(const std::string& name, Args& args) {
  DSP_ASSIGN_OR_RETURN(bool b, ArgBool(name, args, 0));
  return Value(!b);
}

Result<Value> FnBool(const std::string& name, Args& args) {
  const Value& v = args[0];
  if (v.is_boolean()) return v;
  if (IsInteger(v) && (AsInteger(v) == 0 || AsInteger(v) == 1)) return Value(AsInteger(v) == 1);
  if (v.is_string()) {
    if (EqualsIgnoreCase(v.get<std::string>(), "true")) return Value(true);
    if (EqualsIgnoreCase(v.get<std::string>(), "false")) return Value(false);
  }
  return FunctionError(name, "expects 'true', 'false', 1 or 0; it was given " + Quote(v));
}

Result<Value> FnTrue(const std::string&, Args&) { return Value(true); }
Result<Value> FnFalse(const std::string&, Args&) { return Value(false); }

// ---- numbers ----

Result<Value> FnArithmetic(const std::string& name, Args& args) {
  DSP_ASSIGN_OR_RETURN(int64_t a, ArgInt(name, args, 0));
  DSP_ASSIGN_OR_RETURN(int64_t b, ArgInt(name, args, 1));
  int64_t r = 0;
  bool overflow = false;
  if (name == "add") {
    overflow = __builtin_add_overflow(a, b, &r);
  } else if (name == "sub") {
    overflow = __builtin_sub_overflow(a, b, &r);
  } else if (name == "mul") {
    overflow = __builtin_mul_overflow(a, b, &r);
  } else {
    if (b == 0) return FunctionError(name, "cannot divide by zero");
    if (a == std::numeric_limits<int64_t>::min() && b == -1) {
      overflow = name == "div";
    } else {
      r = name == "div" ? a / b : a % b;  // C++ truncates toward zero, as .NET does
    }
  }
  if (overflow) return FunctionError(name, "overflows 64 bits with " + std::to_string(a) + " and " + std::to_string(b));
  return Value(r);
}

Result<Value> FnInt(const std::string& name, Args& args) {
  const Value& v = args[0];
  if (IsInteger(v)) return Value(AsInteger(v));
  if (v.is_number_float()) {
    double d = std::trunc(v.get<double>());
    if (!(d >= -9.2e18 && d <= 9.2e18)) return FunctionError(name, "was given a number outside 64 bits");
    return Value(static_cast<int64_t>(d));
  }
  if (v.is_string()) {
    std::string s = v.get<std::string>();
    size_t used = 0;
    try {
      long long n = std::stoll(s, &used, 10);
      if (used == s.size()) return Value(static_cast<int64_t>(n));
    } catch (...) {
    }
    return FunctionError(name, "was given a string that is not an integer: " + Quote(v));
  }
  return TypeError(name, args, 0, "an Int or a String of digits");
}

Result<Value> FnFloat(const std::string& name, Args& args) {
  const Value& v = args[0];
  if (v.is_number()) return Value(v.get<double>());
  if (v.is_string()) {
    std::string s = v.get<std::string>();
    size_t used = 0;
    try {
      double d = std::stod(s, &used);
      if (used == s.size() && std::isfinite(d)) return Value(d);
    } catch (...) {
    }
    return FunctionError(name, "was given a string that is not a number: " + Quote(v));
  }
  return TypeError(name, args, 0, "a number or a String of one");
}

// ---- CIDR (IPv4) ----

// A range as parseCidr() takes it: host bits may be set ("192.168.1.5/24"
// is the range 192.168.1.0/24), unlike ParseIpv4Subnet.
Result<Ipv4Subnet> ParseCidr(const std::string& name, const std::string& s) {
  if (s.find(':') != std::string::npos) return FunctionError(name, "supports IPv4 ranges only; it was given '" + s + "'");
  const size_t slash = s.find('/');
  std::optional<uint32_t> addr = slash == std::string::npos ? std::nullopt : ParseIpv4(std::string_view(s).substr(0, slash));
  int prefix = -1;
  if (addr) {
    const char* p = s.data() + slash + 1;
    auto [next, ec] = std::from_chars(p, s.data() + s.size(), prefix);
    if (ec != std::errc() || next != s.data() + s.size()) prefix = -1;
  }
  if (!addr || prefix < 0 || prefix > 32) {
    return FunctionError(name, "expects an IPv4 range such as '10.0.0.0/16'; it was given '" + s + "'");
  }
  Ipv4Subnet range{0, prefix};
  range.network = *addr & range.Mask();
  return range;
}

Result<Value> FnParseCidr(const std::string& name, Args& args) {
  DSP_ASSIGN_OR_RETURN(std::string s, ArgString(name, args, 0));
  DSP_ASSIGN_OR_RETURN(Ipv4Subnet c, ParseCidr(name, s));
  uint32_t broadcast = c.network | ~c.Mask();
  uint32_t first = c.prefix >= 31 ? c.network : c.network + 1;
  uint32_t last = c.prefix >= 31 ? broadcast : broadcast - 1;
  return Value{{"network", FormatIpv4(c.network)}, {"netmask", FormatIpv4(c.Mask())}, {"broadcast", FormatIpv4(broadcast)},
               {"firstUsable", FormatIpv4(first)},  {"lastUsable", FormatIpv4(last)},   {"cidr", c.prefix}};
}

Result<Value> FnCidrSubnet(const std::string& name, Args& args) {
  DSP_ASSIGN_OR_RETURN(std::string s, ArgString(name, args, 0));
  DSP_ASSIGN_OR_RETURN(int64_t prefix, ArgInt(name, args, 1));
  DSP_ASSIGN_OR_RETURN(int64_t index, ArgInt(name, args, 2));
  DSP_ASSIGN_OR_RETURN(Ipv4Subnet c, ParseCidr(name, s));
  if (prefix < c.prefix || prefix > 32) {
    return FunctionError(name, "expects a prefix from " + std::to_string(c.prefix) + " to 32; it was given " + std::to_string(prefix));
  }
  const int64_t count = int64_t{1} << (prefix - c.prefix);
  if (index < 0 || index >= count) {
    return FunctionError(name, "expects an index from 0 to " + std::to_string(count - 1) + "; it was given " + std::to_string(index));
  }
  Ipv4Subnet subnet{c.network + static_cast<uint32_t>(index << (32 - prefix)), static_cast<int>(prefix)};
  return Value(subnet.ToString());
}

Result<Value> FnCidrHost(const std::string& name, Args& args) {
  DSP_ASSIGN_OR_RETURN(std::string s, ArgString(name, args, 0));
  DSP_ASSIGN_OR_RETURN(int64_t index, ArgInt(name, args, 1));
  DSP_ASSIGN_OR_RETURN(Ipv4Subnet c, ParseCidr(name, s));
  // Azure skips the network address: host 0 is the first usable one.
  const int64_t usable = c.prefix >= 31 ? int64_t{1} << (32 - c.prefix) : (int64_t{1} << (32 - c.prefix)) - 2;
  if (index < 0 || index >= usable) {
    return FunctionError(name, "expects a host index from 0 to " + std::to_string(usable - 1) + "; it was given " + std::to_string(index));
  }
  uint32_t first = c.prefix >= 31 ? c.network : c.network + 1;
  return Value(FormatIpv4(first + static_cast<uint32_t>(index)));
}

const std::map<std::string, Builtin>& Table() {
  static const auto* table = new std::map<std::string, Builtin>{
      // strings
      {"base64", {1, 1, FnBase64}},
      {"base64tojson", {1, 1, FnBase64ToString}},
      {"base64tostring", {1, 1, FnBase64ToString}},
      {"concat", {1, -1, FnConcat}},
      {"datauri", {1, 1, FnDataUri}},
      {"datauritostring", {1, 1, FnDataUriToString}},
      {"endswith", {2, 2, FnStartsEnds}},
      {"format", {1, -1, FnFormat}},
      {"guid", {1, -1, FnGuid}},
      {"indexof", {2, 2, FnIndexOf}},
      {"join", {2, 2, FnJoin}},
      {"json", {1, 1, FnJson}},
      {"lastindexof", {2, 2, FnIndexOf}},
      {"padleft", {2, 3, FnPadLeft}},
      {"replace", {3, 3, FnReplace}},
      {"split", {2, 2, FnSplit}},
      {"startswith", {2, 2, FnStartsEnds}},
      {"string", {1, 1, FnString}},
      {"substring", {1, 3, FnSubstring}},
      {"tolower", {1, 1, FnCase}},
      {"toupper", {1, 1, FnCase}},
      {"trim", {1, 1, FnTrim}},
      {"uniquestring", {1, -1, FnUniqueString}},
      {"uri", {2, 2, FnUri}},
      {"uricomponent", {1, 1, FnUriComponent}},
      {"uricomponenttostring", {1, 1, FnUriComponent}},
      // strings and arrays
      {"contains", {2, 2, FnContains}},
      {"empty", {1, 1, FnEmpty}},
      {"first", {1, 1, FnFirstLast}},
      {"last", {1, 1, FnFirstLast}},
      {"length", {1, 1, FnLength}},
      {"skip", {2, 2, FnSkipTake}},
      {"take", {2, 2, FnSkipTake}},
      // arrays and objects
      {"array", {1, 1, FnArray}},
      {"coalesce", {1, -1, FnCoalesce}},
      {"createarray", {0, -1, FnCreateArray}},
      {"createobject", {0, -1, FnCreateObject}},
      {"flatten", {1, 1, FnFlatten}},
      {"intersection", {2, -1, FnIntersection}},
      {"items", {1, 1, FnItems}},
      {"max", {1, -1, FnMinMax}},
      {"min", {1, -1, FnMinMax}},
      {"null", {0, 0, FnNull}},
      {"objectkeys", {1, 1, FnObjectKeys}},
      {"range", {2, 2, FnRange}},
      {"shallowmerge", {1, 1, FnShallowMerge}},
      {"tryget", {2, -1, FnTryGet}},
      {"union", {2, -1, FnUnion}},
      // comparison and logic
      {"bool", {1, 1, FnBool}},
      {"equals", {2, 2, FnEquals}},
      {"false", {0, 0, FnFalse}},
      {"greater", {2, 2, FnCompare}},
      {"greaterorequals", {2, 2, FnCompare}},
      {"less", {2, 2, FnCompare}},
      {"lessorequals", {2, 2, FnCompare}},
      {"not", {1, 1, FnNot}},
      {"true", {0, 0, FnTrue}},
      // numbers
      {"add", {2, 2, FnArithmetic}},
      {"div", {2, 2, FnArithmetic}},
      {"float", {1, 1, FnFloat}},
      {"int", {1, 1, FnInt}},
      {"mod", {2, 2, FnArithmetic}},
      {"mul", {2, 2, FnArithmetic}},
      {"sub", {2, 2, FnArithmetic}},
      // dates
      {"datetimeadd", {2, 3, DateTimeAdd}},
      {"datetimefromepoch", {1, 1, DateTimeFromEpoch}},
      {"datetimetoepoch", {1, 1, DateTimeToEpoch}},
      // CIDR
      {"cidrhost", {2, 2, FnCidrHost}},
      {"cidrsubnet", {3, 3, FnCidrSubnet}},
      {"parsecidr", {1, 1, FnParseCidr}},
  };
  return *table;
}

}  // namespace

const Builtin* FindBuiltin(const std::string& lower_name) {
  auto it = Table().find(lower_name);
  return it == Table().end() ? nullptr : &it->second;
}

}  // namespace dspool::arm::internal
