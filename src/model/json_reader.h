// JsonReader: strict, path-aware reading of user-written JSON objects.
//
// Every error names the JSON path of the offending value ("network.subnet:
// expected a string"), and an object is checked for unknown keys, so a typo in
// a spec is an error, not a silently ignored field.
//
//   JsonReader r(json, "spec");
//   std::string name;  r.Required("name", &name);
//   int count = 1;     r.Optional("count", &count);
//   JsonReader net = r.Object("network");
//   ...
//   DSP_RETURN_IF_ERROR(r.Finish());   // first error, or unknown keys
//
// Not thread-safe; one reader per parse.
#pragma once

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "base/status.h"

namespace dspool {

using Json = nlohmann::json;

// Parses text as JSON; the error names `source` and the line and column.
Status ParseJsonText(const std::string& text, const std::string& source, Json* out);

class JsonReader {
 public:
  // `path` is the JSON path of `value` itself, "" for the document root.
  JsonReader(const Json& value, std::string path);
  JsonReader(const Json& value, std::string path, std::shared_ptr<Status> error);

  void Required(const std::string& key, std::string* out);
  void Required(const std::string& key, int64_t* out);
  void Optional(const std::string& key, std::string* out);
  void Optional(const std::string& key, int64_t* out);
  void Optional(const std::string& key, bool* out);
  void Optional(const std::string& key, std::vector<std::string>* out);
  // A nested object; absent gives a reader over an empty object. Errors go to
  // the same first-error slot as this reader's.
  JsonReader Object(const std::string& key, bool required = false);
  bool Has(const std::string& key) const;
  // The raw value at `key` (nullptr if absent or null), marked as read, for
  // shapes the typed readers do not cover (arrays of objects).
  const Json* Raw(const std::string& key) { return Get(key); }

  // Records an error at `key` (a path relative to this object) unless an
  // earlier error was recorded.
  void Fail(const std::string& key, const std::string& message);
  std::string PathOf(const std::string& key) const;

  // The first error recorded by this reader or any nested one, else the
  // first unknown key of this object and of every nested reader that was
  // finished; OK if none.
  Status Finish();
  bool ok() const { return error_->ok(); }

 private:
  const Json* Get(const std::string& key);

  const Json& value_;
  std::string path_;
  std::set<std::string> seen_;
  std::shared_ptr<Status> error_;
  static const Json kEmptyObject;
};

}  // namespace dspool
