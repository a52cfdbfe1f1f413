#include "template/value.h"

#include <algorithm>
#include <cctype>
#include <limits>

namespace dspool::arm {

std::string TypeName(const Value& v) {
  switch (v.type()) {
    case Value::value_t::string: return "String";
    case Value::value_t::number_integer:
    case Value::value_t::number_unsigned: return "Int";
    case Value::value_t::number_float: return "Float";
    case Value::value_t::boolean: return "Bool";
    case Value::value_t::array: return "Array";
    case Value::value_t::object: return "Object";
    default: return "Null";
  }
}

bool IsInteger(const Value& v) {
  if (v.is_number_integer() && !v.is_number_unsigned()) return true;
  return v.is_number_unsigned() && v.get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
}

int64_t AsInteger(const Value& v) {
  return v.is_number_unsigned() ? static_cast<int64_t>(v.get<uint64_t>()) : v.get<int64_t>();
}

namespace {

void AppendQuoted(std::string& out, const std::string& s, char quote) {
  if (quote == '"') {
    out += Value(s).dump();
    return;
  }
  // Single quotes: the JSON escapes, with ' escaped in place of ".
  std::string json = Value(s).dump();
  out += '\'';
  for (size_t i = 1; i + 1 < json.size(); ++i) {
    if (json[i] == '\\' && json[i + 1] == '"') {
      out += '"';
      ++i;
    } else if (json[i] == '\'') {
      out += "\\'";
    } else {
      out += json[i];
    }
  }
  out += '\'';
}

void AppendCompact(std::string& out, const Value& v, char quote) {
  switch (v.type()) {
    case Value::value_t::string: AppendQuoted(out, v.get_ref<const std::string&>(), quote); return;
    case Value::value_t::array: {
      out += '[';
      bool first = true;
      for (const Value& e : v) {
        if (!first) out += ',';
        first = false;
        AppendCompact(out, e, quote);
      }
      out += ']';
      return;
    }
    case Value::value_t::object: {
      out += '{';
      bool first = true;
      for (const auto& [k, e] : v.items()) {
        if (!first) out += ',';
        first = false;
        AppendQuoted(out, k, quote);
        out += ':';
        AppendCompact(out, e, quote);
      }
      out += '}';
      return;
    }
    default: out += v.dump(); return;
  }
}

std::string Text(const Value& v, char quote) {
  switch (v.type()) {
    case Value::value_t::string: return v.get<std::string>();
    case Value::value_t::boolean: return v.get<bool>() ? "True" : "False";
    case Value::value_t::null:
    case Value::value_t::discarded: return "";
    case Value::value_t::array:
    case Value::value_t::object: {
      std::string out;
      AppendCompact(out, v, quote);
      return out;
    }
    case Value::value_t::number_float: {
      // .NET writes a whole double without a fraction: 2, not 2.0.
      std::string s = v.dump();
      if (s.size() > 2 && s.compare(s.size() - 2, 2, ".0") == 0) s.resize(s.size() - 2);
      return s;
    }
    default: return v.dump();
  }
}

int FoldedCompare(unsigned char a, unsigned char b) {
  int la = std::tolower(a), lb = std::tolower(b);
  return la - lb;
}

}  // namespace

std::string ToText(const Value& v) { return Text(v, '"'); }
std::string ToFormatText(const Value& v) { return Text(v, '\''); }

const Value* FindMember(const Value& v, std::string_view key) {
  if (!v.is_object()) return nullptr;
  auto exact = v.find(std::string(key));
  if (exact != v.end()) return &*exact;
  for (auto it = v.begin(); it != v.end(); ++it) {
    if (EqualsIgnoreCase(it.key(), key)) return &*it;
  }
  return nullptr;
}

bool DeepEquals(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (IsInteger(a) && IsInteger(b)) return AsInteger(a) == AsInteger(b);
    return a.get<double>() == b.get<double>();
  }
  if (a.type() != b.type()) return false;
  switch (a.type()) {
    case Value::value_t::array:
      if (a.size() != b.size()) return false;
      for (size_t i = 0; i < a.size(); ++i) {
        if (!DeepEquals(a[i], b[i])) return false;
      }
      return true;
    case Value::value_t::object:
      if (a.size() != b.size()) return false;
      for (const auto& [k, e] : a.items()) {
        auto other = b.find(k);
        if (other == b.end() || !DeepEquals(e, *other)) return false;
      }
      return true;
    default: return a == b;
  }
}

int CultureCompare(std::string_view a, std::string_view b) {
  const size_t n = std::min(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) {
    if (int c = FoldedCompare(a[i], b[i]); c != 0) return c;
  }
  if (a.size() != b.size()) return a.size() < b.size() ? -1 : 1;
  // Equal but for case: at the first difference, lower case first.
  for (size_t i = 0; i < n; ++i) {
    if (a[i] != b[i]) return std::islower(static_cast<unsigned char>(a[i])) ? -1 : 1;
  }
  return 0;
}

std::string Quote(const Value& v) {
  std::string text = v.is_string() ? "'" + v.get<std::string>() + "'" : ToText(v);
  if (v.is_null()) text = "null";
  if (text.size() > 100) text = text.substr(0, 97) + "...";
  return text;
}

}  // namespace dspool::arm
