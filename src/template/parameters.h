// What `--parameters` means: the Azure CLI's assembly of parameter values
// from its tokens (arm-templates.md §2.2), as pure logic. The CLI does the
// I/O (expanding "@file", reading a token that names a file) and hands the
// tokens here, left to right:
//
//   a file's text        {"parameters": {...}} or the object itself; comments allowed
//   JSON text            the same, inline: '{"count": {"value": 3}}'
//   KEY=VALUE            converted by the declared type: object/array/
//                        secureObject as JSON, bool as "true" (any case),
//                        int as an integer, strings as they are
//
// The last token wins per parameter, whole (no deep merge). Values are
// never expressions: "[x]" given here stays the literal "[x]" (the template
// evaluator is not involved).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "template/value.h"

namespace dspool::arm {

struct ParameterToken {
  std::string text;                      // the token (after "@file" expansion)
  std::optional<std::string> file_text;  // the file's text, if the token names a readable file
};

struct AssembledParameters {
  Value values = Value::object();  // name → {"value": v} (or {"reference": ...})
  std::vector<std::string> warnings;  // "KEY=VALUE on the command line: ..." for secure ones
};

// `declared` is the template's "parameters" object. Errors as az gives
// them: "unrecognized template parameter 'K'. Allowed parameters: a, b",
// "Unable to parse parameter: T", "Failed to parse <file>: ...".
Result<AssembledParameters> AssembleParameters(const std::vector<ParameterToken>& tokens, const Value& declared);

// Declared parameters with no default that `values` lacks (or gives as
// null), in template order.
std::vector<std::string> MissingParameters(const Value& values, const Value& declared);

// The value typed at a prompt for parameter `name`, converted by its type
// as KEY=VALUE is.
Result<Value> ConvertParameterText(const std::string& name, const std::string& text, const Value& declared);

}  // namespace dspool::arm
