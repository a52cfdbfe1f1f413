#include "identity/ssh_key.h"

#include <sodium.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <optional>
#include <vector>

namespace dspool {
namespace {

constexpr size_t kMaxLineBytes = 16 * 1024;
constexpr size_t kMaxCommentBytes = 256;
constexpr size_t kMinRsaBits = 2048;
constexpr size_t kMaxRsaBits = 16384;  // OpenSSH's limit

enum class KeyKind { kEd25519, kEcdsa, kRsa, kSkEd25519, kSkEcdsa };

struct KeyType {
  std::string_view name;
  KeyKind kind;
  std::string_view curve;  // ECDSA only
  size_t point_bytes;      // ECDSA only: uncompressed point, 0x04 || X || Y
};

constexpr std::array<KeyType, 7> kKeyTypes = {{
    {"ssh-ed25519", KeyKind::kEd25519, "", 0},
    {"ecdsa-sha2-nistp256", KeyKind::kEcdsa, "nistp256", 65},
    {"ecdsa-sha2-nistp384", KeyKind::kEcdsa, "nistp384", 97},
    {"ecdsa-sha2-nistp521", KeyKind::kEcdsa, "nistp521", 133},
    {"ssh-rsa", KeyKind::kRsa, "", 0},
    {"sk-ssh-ed25519@openssh.com", KeyKind::kSkEd25519, "", 0},
    {"sk-ecdsa-sha2-nistp256@openssh.com", KeyKind::kSkEcdsa, "nistp256", 65},
}};

const KeyType* FindType(std::string_view name) {
  for (const KeyType& t : kKeyTypes) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

bool EnsureSodium() {
  static const bool ok = ::sodium_init() >= 0;
  return ok;
}

// Strict base64 (standard alphabet, padding required, canonical).
std::optional<std::vector<uint8_t>> DecodeBase64(std::string_view text) {
  if (!EnsureSodium() || text.empty()) return std::nullopt;
  std::vector<uint8_t> out(text.size() / 4 * 3 + 3);
  size_t len = 0;
  const char* end = nullptr;
  if (::sodium_base642bin(out.data(), out.size(), text.data(), text.size(), nullptr, &len, &end,
                          sodium_base64_VARIANT_ORIGINAL) != 0 ||
      end != text.data() + text.size()) {
    return std::nullopt;
  }
  out.resize(len);
  return out;
}

// Reads the SSH wire format (RFC 4251): uint32 length-prefixed strings.
class BlobReader {
 public:
  explicit BlobReader(const std::vector<uint8_t>& blob) : blob_(blob) {}

  std::optional<std::string_view> String() {
    if (blob_.size() - pos_ < 4) return std::nullopt;
    uint32_t len = (uint32_t{blob_[pos_]} << 24) | (uint32_t{blob_[pos_ + 1]} << 16) |
                   (uint32_t{blob_[pos_ + 2]} << 8) | uint32_t{blob_[pos_ + 3]};
    pos_ += 4;
    if (blob_.size() - pos_ < len) return std::nullopt;
    std::string_view s(reinterpret_cast<const char*>(blob_.data() + pos_), len);
    pos_ += len;
    return s;
  }
  bool AtEnd() const { return pos_ == blob_.size(); }

 private:
  const std::vector<uint8_t>& blob_;
  size_t pos_ = 0;
};

// Bits of a positive SSH mpint, or nullopt if it is not one (negative, or
// with a superfluous leading zero byte).
std::optional<size_t> PositiveMpintBits(std::string_view m) {
  if (m.empty() || static_cast<uint8_t>(m[0]) & 0x80) return std::nullopt;
  if (m[0] == 0) {
    if (m.size() < 2 || !(static_cast<uint8_t>(m[1]) & 0x80)) return std::nullopt;
    m.remove_prefix(1);
  }
  size_t bits = m.size() * 8;
  for (uint8_t top = static_cast<uint8_t>(m[0]); !(top & 0x80); top = static_cast<uint8_t>(top << 1)) --bits;
  return bits;
}

// Checks the blob after its type string, per RFC 8709 (ed25519), RFC 5656
// (ecdsa), RFC 4253 (rsa) and OpenSSH's PROTOCOL.u2f (sk-*).
Status CheckKeyBody(const KeyType& type, BlobReader& r) {
  auto malformed = [&](std::string_view what) {
    return InvalidArgument("the " + std::string(type.name) + " key data is malformed: " + std::string(what) +
                           "; was the key copied completely?");
  };
  switch (type.kind) {
    case KeyKind::kEd25519:
    case KeyKind::kSkEd25519: {
      auto key = r.String();
      if (!key || key->size() != 32) return malformed("the public key is not 32 bytes");
      break;
    }
    case KeyKind::kEcdsa:
    case KeyKind::kSkEcdsa: {
      auto curve = r.String();
      if (!curve || *curve != type.curve) return malformed("the curve name does not match the type");
      auto point = r.String();
      if (!point || point->size() != type.point_bytes || (*point)[0] != 0x04) {
        return malformed("the public point has the wrong size or form");
      }
      break;
    }
    case KeyKind::kRsa: {
      auto e = r.String();
      auto n = r.String();
      if (!e || !n) return malformed("the exponent or modulus is missing");
      auto e_bits = PositiveMpintBits(*e);
      auto n_bits = PositiveMpintBits(*n);
      if (!e_bits || !n_bits || *e_bits < 2 || !(static_cast<uint8_t>(e->back()) & 1)) {
        return malformed("the exponent or modulus is not a valid number");
      }
      if (*n_bits < kMinRsaBits) {
        return InvalidArgument("this RSA key has " + std::to_string(*n_bits) + " bits; at least " +
                               std::to_string(kMinRsaBits) +
                               " are required. Better: make an ed25519 key with `ssh-keygen -t ed25519`");
      }
      if (*n_bits > kMaxRsaBits) return malformed("the modulus is larger than 16384 bits");
      break;
    }
  }
  if (type.kind == KeyKind::kSkEd25519 || type.kind == KeyKind::kSkEcdsa) {
    auto application = r.String();
    if (!application || application->empty()) return malformed("the security key application is missing");
  }
  if (!r.AtEnd()) return malformed("there are extra bytes after the key");
  return Status::Ok();
}

bool IsBlank(char c) { return c == ' ' || c == '\t'; }
bool IsSpace(char c) { return IsBlank(c) || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

std::string_view Trim(std::string_view s) {
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return s;
}

// Splits off the next blank-separated field of `rest`.
std::string_view NextField(std::string_view& rest) {
  while (!rest.empty() && IsBlank(rest.front())) rest.remove_prefix(1);
  size_t end = 0;
  while (end < rest.size() && !IsBlank(rest[end])) ++end;
  std::string_view field = rest.substr(0, end);
  rest.remove_prefix(end);
  return field;
}

std::string Quote(std::string_view s) {
  constexpr size_t kMax = 40;
  return "'" + std::string(s.substr(0, kMax)) + (s.size() > kMax ? "...'" : "'");
}

std::string SupportedTypes() {
  std::string out;
  for (const KeyType& t : kKeyTypes) out += (out.empty() ? "" : ", ") + std::string(t.name);
  return out;
}

}  // namespace

Result<std::string> NormalizeSshPublicKey(std::string_view line) {
  if (line.size() > kMaxLineBytes) return InvalidArgument("the key is longer than 16 KiB; give one public key line");
  std::string_view text = Trim(line);
  if (text.empty()) return InvalidArgument("the key is empty");
  if (text.find("PRIVATE KEY-----") != std::string_view::npos || text.starts_with("PuTTY-User-Key-File-")) {
    return InvalidArgument("this is a private key; give the .pub file (for example ~/.ssh/id_ed25519.pub)");
  }
  if (text.find("BEGIN SSH2 PUBLIC KEY") != std::string_view::npos) {
    return InvalidArgument(
        "this is an RFC 4716 (SSH2) public key; convert it with `ssh-keygen -i -f FILE` and give the line it prints");
  }
  if (text.find("-----BEGIN") != std::string_view::npos) {
    return InvalidArgument("this is a PEM block, not an OpenSSH public key line; give the .pub file's line");
  }
  if (text.find_first_of("\n\r") != std::string_view::npos) {
    return InvalidArgument("give exactly one key, on a single line");
  }

  std::string_view rest = text;
  std::string_view type_name = NextField(rest);
  std::string_view base64 = NextField(rest);
  std::string_view comment = Trim(rest);
  const KeyType* type = FindType(type_name);
  if (type == nullptr) {
    // A known type later in the line means an authorized_keys options prefix.
    std::string_view probe_rest = text;
    NextField(probe_rest);
    for (std::string_view f = NextField(probe_rest); !f.empty(); f = NextField(probe_rest)) {
      if (FindType(f) != nullptr) {
        return InvalidArgument("key options (" + Quote(type_name) +
                               ") are not accepted; give only 'TYPE BASE64 [COMMENT]'");
      }
    }
    return InvalidArgument("unsupported key type " + Quote(type_name) + "; supported: " + SupportedTypes());
  }
  if (base64.empty()) return InvalidArgument("the key data is missing after '" + std::string(type->name) + "'");
  std::optional<std::vector<uint8_t>> blob = DecodeBase64(base64);
  if (!blob) return InvalidArgument("the key data is not valid base64; was the key copied completely?");

  BlobReader reader(*blob);
  std::optional<std::string_view> embedded = reader.String();
  if (!embedded) return InvalidArgument("the key data is malformed: it does not start with a key type");
  if (*embedded != type->name) {
    return InvalidArgument("the key data is a " + Quote(*embedded) + " key but the line says '" +
                           std::string(type->name) + "'");
  }
  DSP_RETURN_IF_ERROR(CheckKeyBody(*type, reader));

  if (comment.size() > kMaxCommentBytes) {
    return InvalidArgument("the key comment is longer than " + std::to_string(kMaxCommentBytes) + " bytes");
  }
  if (std::any_of(comment.begin(), comment.end(),
                  [](char c) { return (static_cast<unsigned char>(c) < 0x20 && c != '\t') || c == 0x7f; })) {
    return InvalidArgument("the key comment contains control characters");
  }
  std::string out = std::string(type->name) + " " + std::string(base64);
  if (!comment.empty()) out += " " + std::string(comment);
  return out;
}

std::string SshKeyFingerprint(const std::string& normalized_key) {
  std::string_view rest = normalized_key;
  NextField(rest);
  std::optional<std::vector<uint8_t>> blob = DecodeBase64(NextField(rest));
  if (!blob) return "";
  unsigned char digest[crypto_hash_sha256_BYTES];
  ::crypto_hash_sha256(digest, blob->data(), blob->size());
  char b64[sodium_base64_ENCODED_LEN(crypto_hash_sha256_BYTES, sodium_base64_VARIANT_ORIGINAL_NO_PADDING)];
  ::sodium_bin2base64(b64, sizeof(b64), digest, sizeof(digest), sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
  return std::string("SHA256:") + b64;
}

}  // namespace dspool
