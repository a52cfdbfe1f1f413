#include "model/json_reader.h"

namespace dspool {

const Json JsonReader::kEmptyObject = Json::object();

Status ParseJsonText(const std::string& text, const std::string& source, Json* out) {
  try {
    *out = Json::parse(text);
  } catch (const Json::parse_error& e) {
    // what() is "[json.exception.parse_error.101] parse error at line 3,
    // column 4: syntax error ..."; keep the part from "line".
    std::string what = e.what();
    size_t at = what.find("line ");
    return InvalidArgument(source + ": invalid JSON at " + (at == std::string::npos ? what : what.substr(at)));
  }
  return Status::Ok();
}

JsonReader::JsonReader(const Json& value, std::string path)
    : JsonReader(value, std::move(path), std::make_shared<Status>()) {}

JsonReader::JsonReader(const Json& value, std::string path, std::shared_ptr<Status> error)
    : value_(value.is_object() ? value : kEmptyObject), path_(std::move(path)), error_(std::move(error)) {
  if (!value.is_object()) Fail("", "expected a JSON object");
}

std::string JsonReader::PathOf(const std::string& key) const {
  if (key.empty()) return path_.empty() ? "(document)" : path_;
  return path_.empty() ? key : path_ + "." + key;
}

void JsonReader::Fail(const std::string& key, const std::string& message) {
  if (error_->ok()) *error_ = InvalidArgument(PathOf(key) + ": " + message);
}

bool JsonReader::Has(const std::string& key) const { return value_.contains(key); }

const Json* JsonReader::Get(const std::string& key) {
  seen_.insert(key);
  auto it = value_.find(key);
  if (it == value_.end() || it->is_null()) return nullptr;
  return &*it;
}

void JsonReader::Required(const std::string& key, std::string* out) {
  if (!Has(key)) return Fail(key, "is required");
  Optional(key, out);
}

void JsonReader::Required(const std::string& key, int64_t* out) {
  if (!Has(key)) return Fail(key, "is required");
  Optional(key, out);
}

void JsonReader::Optional(const std::string& key, std::string* out) {
  const Json* v = Get(key);
  if (v == nullptr) return;
  if (!v->is_string()) return Fail(key, "expected a string, got " + std::string(v->type_name()));
  *out = v->get<std::string>();
}

void JsonReader::Optional(const std::string& key, int64_t* out) {
  const Json* v = Get(key);
  if (v == nullptr) return;
  if (!v->is_number_integer()) return Fail(key, "expected an integer, got " + v->dump());
  *out = v->get<int64_t>();
}

void JsonReader::Optional(const std::string& key, bool* out) {
  const Json* v = Get(key);
  if (v == nullptr) return;
  if (!v->is_boolean()) return Fail(key, "expected true or false, got " + v->dump());
  *out = v->get<bool>();
}

void JsonReader::Optional(const std::string& key, std::vector<std::string>* out) {
  const Json* v = Get(key);
  if (v == nullptr) return;
  if (!v->is_array()) return Fail(key, "expected an array of strings");
  out->clear();
  for (size_t i = 0; i < v->size(); ++i) {
    if (!(*v)[i].is_string()) return Fail(key + "[" + std::to_string(i) + "]", "expected a string");
    out->push_back((*v)[i].get<std::string>());
  }
}

JsonReader JsonReader::Object(const std::string& key, bool required) {
  const Json* v = Get(key);
  if (v == nullptr) {
    if (required) Fail(key, "is required");
    return JsonReader(kEmptyObject, PathOf(key), error_);
  }
  if (!v->is_object()) Fail(key, "expected an object, got " + std::string(v->type_name()));
  return JsonReader(*v, PathOf(key), error_);
}

Status JsonReader::Finish() {
  if (!error_->ok()) return *error_;
  for (auto it = value_.begin(); it != value_.end(); ++it) {
    if (!seen_.count(it.key())) {
      Fail(it.key(), "unknown field");
      break;
    }
  }
  return *error_;
}

}  // namespace dspool
