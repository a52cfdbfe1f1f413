// ASCII string helpers that several modules need: protocol names (HTTP
// header names, ARM names and IDs) compare without case, and URLs carry
// percent-encoded text. ASCII only, whatever the locale.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace dspool {

// Inline: HTTP header parsing calls it for every header.
inline bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}
std::string ToLowerAscii(std::string_view s);
std::string ToUpperAscii(std::string_view s);

// `text` percent-encoded: every byte but A-Z a-z 0-9 - . _ ~ and those in
// `keep` becomes %XX (upper-case hex). With `keep` empty, the result is safe
// as one path segment or one query name or value (and is what .NET's
// Uri.EscapeDataString, ARM's uriComponent(), gives); PercentEncode(path,
// "/") keeps a decoded path's separators.
std::string PercentEncode(std::string_view text, std::string_view keep = {});

// Standard base64 (RFC 4648, with padding). Base64Decode gives nullopt for
// text that is not whole base64: a length not a multiple of 4, a character
// outside the alphabet (blanks included), padding in the middle.
std::string Base64Encode(std::string_view bytes);
std::optional<std::string> Base64Decode(std::string_view text);

}  // namespace dspool
