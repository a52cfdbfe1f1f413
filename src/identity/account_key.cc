#include "identity/account_key.h"

#include <sodium.h>

#include <array>
#include <cstdlib>

namespace dspool {

std::string NewAccountKey() {
  if (sodium_init() < 0) std::abort();  // no entropy source: nothing safe to do
  std::array<unsigned char, kAccountKeyBytes> bytes;
  randombytes_buf(bytes.data(), bytes.size());
  std::string out(sodium_base64_ENCODED_LEN(bytes.size(), sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(out.data(), out.size(), bytes.data(), bytes.size(), sodium_base64_VARIANT_ORIGINAL);
  out.resize(out.size() - 1);  // the terminating NUL
  sodium_memzero(bytes.data(), bytes.size());
  return out;
}

}  // namespace dspool
