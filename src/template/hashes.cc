#include "template/hashes.h"

#include <openssl/evp.h>

#include <cctype>
#include <cstdint>

namespace dspool::arm {

namespace {

std::string Join(const std::vector<std::string>& parts) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i) out += '-';
    out += parts[i];
  }
  return out;
}

uint32_t Rotl(uint32_t x, int r) { return (x << r) | (x >> (32 - r)); }

uint32_t Le32(const unsigned char* p, size_t n) {
  uint32_t v = 0;
  for (size_t i = 0; i < n; ++i) v |= static_cast<uint32_t>(p[i]) << (8 * i);
  return v;
}

uint32_t Fmix(uint32_t h) {
  h ^= h >> 16;
  h *= 0x85EBCA6BU;
  h ^= h >> 13;
  h *= 0xC2B2AE35U;
  h ^= h >> 16;
  return h;
}

uint64_t MurmurHash64(const std::string& s) {
  constexpr uint32_t c1 = 0x239B961BU, c2 = 0xAB0E9789U, c3 = 0x561CCD1BU, c4 = 0x0BCAA747U;
  const auto* bytes = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  uint32_t h1 = 0, h2 = 0;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint32_t a = Le32(bytes + i, 4), b = Le32(bytes + i + 4, 4);
    h1 = (Rotl(h1 ^ (Rotl(a * c1, 15) * c2), 19) + h2) * 5 + c3;
    h2 = (Rotl(h2 ^ (Rotl(b * c2, 17) * c1), 13) + h1) * 5 + c4;
  }
  const size_t r = n - i;
  if (r > 0) {
    uint32_t a = Le32(bytes + i, r < 4 ? r : 4);
    h1 ^= Rotl(a * c1, 15) * c2;
    if (r > 4) {
      uint32_t b = Le32(bytes + i + 4, r - 4);
      h2 ^= Rotl(b * c2, 17) * c1;
    }
  }
  h1 ^= static_cast<uint32_t>(n);
  h2 ^= static_cast<uint32_t>(n);
  h1 += h2;
  h2 += h1;
  h1 = Fmix(h1);
  h2 = Fmix(h2);
  h1 += h2;
  h2 += h1;
  return (static_cast<uint64_t>(h2) << 32) | h1;
}

}  // namespace

std::string UniqueString(const std::vector<std::string>& parts) {
  static constexpr char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz234567";
  uint64_t h = MurmurHash64(Join(parts));
  std::string out;
  for (int i = 0; i < 13; ++i) {
    out += kAlphabet[h >> 59];
    h <<= 5;
  }
  return out;
}

std::string GuidOf(const std::vector<std::string>& parts) {
  static constexpr unsigned char kNamespace[16] = {0x11, 0xfb, 0x06, 0xfb, 0x71, 0x2d, 0x4d, 0xdd,
                                                   0x98, 0xc7, 0xe7, 0x1b, 0xbd, 0x58, 0x88, 0x30};
  const std::string name = Join(parts);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha1(), nullptr);
  EVP_DigestUpdate(ctx, kNamespace, sizeof kNamespace);
  EVP_DigestUpdate(ctx, name.data(), name.size());
  EVP_DigestFinal_ex(ctx, digest, &length);
  EVP_MD_CTX_free(ctx);
  digest[6] = static_cast<unsigned char>((digest[6] & 0x0F) | 0x50);
  digest[8] = static_cast<unsigned char>((digest[8] & 0x3F) | 0x80);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out += '-';
    out += kHex[digest[i] >> 4];
    out += kHex[digest[i] & 0x0F];
  }
  return out;
}

}  // namespace dspool::arm
