// The values of the ARM template language and the rules every function
// shares: type names, how a value becomes text, comparison, member lookup.
//
// A Value is JSON with the key order kept (nlohmann's ordered_json): ARM
// writes objects in insertion order wherever they become text
// (`string()`, `concat()`, outputs), so a sorted map would change names
// built from them. Integers are int64; floats come only from `json()` and
// `float()`.
//
// Pure functions on values; thread-compatible.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "base/strings.h"  // EqualsIgnoreCase, ToLowerAscii, ToUpperAscii: ARM names compare without case

namespace dspool::arm {

using Value = nlohmann::ordered_json;

// ARM's name of a value's type, as outputs and errors write it: "String",
// "Int", "Float", "Bool", "Array", "Object", "Null".
std::string TypeName(const Value& v);

bool IsInteger(const Value& v);  // an integer (signed or unsigned that fits int64)
int64_t AsInteger(const Value& v);  // REQUIRES: IsInteger(v)

// `string(v)`: a string as is; an integer in decimal; a bool "True" or
// "False" (.NET's); a float as .NET prints a double; null ""; arrays and
// objects as compact JSON with double quotes, keys in their order.
std::string ToText(const Value& v);
// `format()`'s argument: as ToText, except that arrays and objects are
// written with single quotes ("{'a':1}"), as ARM does.
std::string ToFormatText(const Value& v);

// Member `key` of object `v`: the exact key, else the first that matches
// ignoring ASCII case (ARM's property access); nullptr if none or if `v`
// is not an object.
const Value* FindMember(const Value& v, std::string_view key);

// Deep equality as `equals()` has it: strings case-sensitive, objects
// regardless of key order, integers and floats by value.
bool DeepEquals(const Value& a, const Value& b);

// String order as .NET's invariant culture sorts: letters compare
// ignoring case first ("a" < "B"), and at the first difference of case
// only, lower case comes first ("a" < "A"), so greater('A', 'a') is true.
// <0, 0 or >0.
int CultureCompare(std::string_view a, std::string_view b);

// A value as the error messages quote it: strings in single quotes,
// others as compact JSON, cut at 100 characters.
std::string Quote(const Value& v);

}  // namespace dspool::arm
