// Storage account keys: 64 random bytes (512 bits) in standard base64, 88
// characters ending in "==", the form Azure gives its storage keys, so
// that scripts which check or pass them keep working.
//
// Thread safety: NewAccountKey may be called concurrently.
#pragma once

#include <string>

namespace dspool {

inline constexpr size_t kAccountKeyBytes = 64;

std::string NewAccountKey();

}  // namespace dspool
