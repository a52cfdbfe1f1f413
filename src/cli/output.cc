#include "cli/output.h"

#include <cmath>

namespace dspool {
namespace {

const Json& Null() {
  static const Json kNull;
  return kNull;
}

const Json& EmptyArray() {
  static const Json kEmpty = Json::array();
  return kEmpty;
}

}  // namespace

void PrintJson(std::ostream& out, const Json& json) {
  out << json.dump(2, ' ', false, Json::error_handler_t::replace) << "\n";
}

const Json& JsonField(const Json& json, std::string_view key) {
  if (!json.is_object()) return Null();
  auto it = json.find(key);
  return it == json.end() ? Null() : *it;
}

std::string JsonString(const Json& json, std::string_view key) {
  const Json& v = JsonField(json, key);
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number() || v.is_boolean()) return v.dump();
  return "";
}

int64_t JsonInt(const Json& json, std::string_view key, int64_t fallback) {
  const Json& v = JsonField(json, key);
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_number_float()) {
    double d = v.get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9e18) return static_cast<int64_t>(d);
  }
  return fallback;
}

double JsonNumber(const Json& json, std::string_view key, double fallback) {
  const Json& v = JsonField(json, key);
  return v.is_number() ? v.get<double>() : fallback;
}

bool JsonBool(const Json& json, std::string_view key) {
  const Json& v = JsonField(json, key);
  return v.is_boolean() && v.get<bool>();
}

const Json& JsonArray(const Json& json, std::string_view key) {
  const Json& v = JsonField(json, key);
  return v.is_array() ? v : EmptyArray();
}

}  // namespace dspool
