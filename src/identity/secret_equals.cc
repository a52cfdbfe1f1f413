#include "identity/secret_equals.h"

#include <sodium.h>

#include <cstdlib>

namespace dspool {
namespace {

void InitSodium() {
  if (sodium_init() < 0) std::abort();  // no entropy source: nothing safe to do
}

}  // namespace

static_assert(SecretHasher::kDigestBytes == crypto_shorthash_siphashx24_BYTES);
static_assert(sizeof(std::array<unsigned char, 16>) == crypto_shorthash_siphashx24_KEYBYTES);

SecretHasher::SecretHasher() {
  InitSodium();
  randombytes_buf(key_.data(), key_.size());
}

SecretHasher::Digest SecretHasher::Hash(std::string_view value) const {
  Digest out;
  crypto_shorthash_siphashx24(out.data(), reinterpret_cast<const unsigned char*>(value.data()), value.size(),
                              key_.data());
  return out;
}

bool SecretHasher::Equal(const Digest& a, const Digest& b) { return sodium_memcmp(a.data(), b.data(), a.size()) == 0; }

bool SecretEquals(std::string_view given, std::string_view expected) {
  using Key = std::array<unsigned char, crypto_generichash_KEYBYTES>;
  using Digest = std::array<unsigned char, crypto_generichash_BYTES>;
  static const Key key = [] {
    InitSodium();
    Key k;
    randombytes_buf(k.data(), k.size());
    return k;
  }();
  auto hash = [&](std::string_view value) {
    Digest out;
    crypto_generichash(out.data(), out.size(), reinterpret_cast<const unsigned char*>(value.data()), value.size(),
                       key.data(), key.size());
    return out;
  };
  Digest a = hash(given);
  Digest b = hash(expected);
  bool equal = sodium_memcmp(a.data(), b.data(), a.size()) == 0;
  return equal && !expected.empty();
}

}  // namespace dspool
