// The deterministic names ARM derives from strings: `uniqueString()` and
// `guid()` (arm-templates.md §5), so a template gives the same storage
// account and role names here as on Azure; and base64, as `base64()` and
// its inverses take it. The byte work is OpenSSL's, in hashes.cc only.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace dspool::arm {

// ARM's 13-character hash of the parts joined with '-', as UTF-8:
// MurmurHash64 (two 32-bit lanes, seed 0), written in base 32
// ("abcdefghijklmnopqrstuvwxyz234567"), five bits at a time from the top.
// UniqueString({"test"}) == "rbgf3xv4ufgzg". Reproduces every published
// pair (tests/hashes_test.cc).
std::string UniqueString(const std::vector<std::string>& parts);

// An RFC 4122 version 5 (SHA-1) UUID of the parts joined with '-' in the
// namespace 11fb06fb-712d-4ddd-98c7-e71bbd588830, lower case: the
// reconstruction the public ports agree on. No public source pairs an
// input with a value Azure produced, so parity is not verified.
std::string GuidOf(const std::vector<std::string>& parts);


}  // namespace dspool::arm
