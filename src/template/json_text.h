// Template and parameters files as text: JSON as the Azure CLI reads it
// (`//` and `/* */` comments, raw newlines inside strings), parsed into an
// ordered value (ARM keeps the key order wherever an object becomes text)
// with the line and column of every value, so an error deep in a template
// can say where it is in the file, as az does ("at line '12' and column
// '9'").
//
//   Result<JsonDocument> doc = ParseJsonDocument(text);
//   doc->value["resources"][0]["name"];
//   doc->PositionOf("resources[0].name");   // {12, 9}
//
// Pure; a JsonDocument is a value.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <unordered_map>

#include "base/result.h"
#include "template/value.h"

namespace dspool::arm {

// 1-based; {0, 0} is unknown.
struct SourcePosition {
  int line = 0;
  int column = 0;
  bool known() const { return line > 0; }
};

struct JsonDocument {
  Value value;
  // Where each value starts, by its path as ARM writes it:
  // "resources[0].properties.osProfile" ("" is the root).
  std::unordered_map<std::string, SourcePosition> positions;

  // The position of `path`, else of its nearest ancestor that has one.
  SourcePosition PositionOf(std::string_view path) const;
};

// The deepest nesting accepted (arrays and objects): deeper input is an
// error, not a stack overflow.
inline constexpr int kMaxJsonDepth = 200;

// Parses `text`. An error says what is wrong and where ("line 3, column
// 14: expected ',' or '}' after a member"). A key given twice in one
// object is an error (ARM would keep one of them silently). Numbers
// without a fraction or exponent that fit int64 are integers; others are
// doubles.
Result<JsonDocument> ParseJsonDocument(std::string_view text);

// The path of member `key` of the value at `parent`, as ARM writes it
// ("a.b", or "a['odd key']" for keys that are not identifiers).
std::string MemberPath(std::string_view parent, std::string_view key);
// The path of element `index` of the array at `parent` ("a[3]").
std::string ElementPath(std::string_view parent, size_t index);

}  // namespace dspool::arm
