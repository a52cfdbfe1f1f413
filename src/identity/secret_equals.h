// Comparing secrets without a timing oracle.
//
// A plain comparison stops at the first differing byte, and one that first
// compares lengths answers at once when they differ: both let a client find
// a secret, or its length, by timing many tries. Here secrets are compared,
// or remembered, only as keyed hashes under a random key nobody outside the
// process knows, and digests are compared with sodium_memcmp, whose time
// depends on nothing. Knowing where two digests differ tells nothing about
// the values, and two different values give equal digests only by a
// collision of the keyed hash (2^-128).
//
// Thread safety: SecretEquals may be called concurrently; a SecretHasher is
// immutable once made, so its methods may too.
#pragma once

#include <array>
#include <string_view>

namespace dspool {

// True iff `given` and `expected` are the same bytes; false when `expected`
// is empty (an unset secret matches nothing). Both are hashed with BLAKE2b-256
// (libsodium's crypto_generichash) under a key made once per process; the
// hash works in 128-byte blocks, so neither the contents nor the length of
// `expected` shows in the time (beyond its number of blocks: one for any
// token up to 128 bytes).
bool SecretEquals(std::string_view given, std::string_view expected);

// A fast keyed hash with a key of its own, for code that remembers secrets
// it has seen (SessionVerifier's memory of valid cookie values): it keeps
// digests, not values, and compares them with Equal. SipHash-2-4 with a
// 128-bit output (libsodium's crypto_shorthash_siphashx24), a keyed PRF
// made for lookups under attack: ~70 ns for a cookie, against 0.5-1 µs for
// a keyed BLAKE2b and 1.1-1.6 µs for the cookie's HMAC (identity/README.md).
// Its time grows with the value's length in 8-byte steps: hash values whose
// length is no secret (what a client sent), not the secret to match.
class SecretHasher {
 public:
  static constexpr size_t kDigestBytes = 16;
  using Digest = std::array<unsigned char, kDigestBytes>;

  // A fresh random key (aborts if the system has no entropy source).
  SecretHasher();

  // The digest of `value` under this hasher's key. No allocation.
  Digest Hash(std::string_view value) const;

  // Constant-time equality of two digests.
  static bool Equal(const Digest& a, const Digest& b);

 private:
  std::array<unsigned char, 16> key_;
};

}  // namespace dspool
