// How commands print what the API answered: as text for people (tables and
// "Key: value" blocks, see table.h) or as the API's JSON for scripts; and
// lenient readers for fields of those answers.
//
// The readers never throw and never assert: a field that is missing or of
// another type reads as empty, so a newer or older server degrades a table
// cell, not the command.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>

#include "model/json_reader.h"

namespace dspool {

// kTsv: tab-separated rows without a header (az's verbs; the others print
// their table).
enum class OutputFormat { kTable, kJson, kTsv };

// Writes `json` pretty-printed with 2-space indents and a final newline.
// Invalid UTF-8 in strings is replaced (U+FFFD) rather than thrown on.
void PrintJson(std::ostream& out, const Json& json);

// `json[key]` if `json` is an object holding `key`, else null.
const Json& JsonField(const Json& json, std::string_view key);
// A string field as is; a number or boolean as its JSON text; else "".
std::string JsonString(const Json& json, std::string_view key);
// An integer field (a whole float counts); else `fallback`.
int64_t JsonInt(const Json& json, std::string_view key, int64_t fallback = 0);
// A number field; else `fallback`.
double JsonNumber(const Json& json, std::string_view key, double fallback = 0);
// A boolean field; else false.
bool JsonBool(const Json& json, std::string_view key);
// An array field; else an empty array.
const Json& JsonArray(const Json& json, std::string_view key);

}  // namespace dspool
