#include "identity/password.h"

#include <crypt.h>
#include <errno.h>
#include <sodium.h>
#include <string.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <memory>
#include <vector>

#include "identity/session.h"

namespace dspool {
namespace {

constexpr size_t kMinPasswordBytes = 8;
constexpr size_t kMaxPasswordBytes = 1024;

// Methods accepted in hashes supplied by admins. Order matters only for
// readability; prefixes are distinct.
constexpr std::array<std::string_view, 7> kAcceptedPrefixes = {"$y$", "$gy$", "$7$", "$2b$", "$2y$", "$6$", "$5$"};

// A NUL-terminated copy of a password, wiped when it goes away.
class PlaintextCopy {
 public:
  explicit PlaintextCopy(std::string_view text) : bytes_(text.begin(), text.end()) { bytes_.push_back('\0'); }
  ~PlaintextCopy() { explicit_bzero(bytes_.data(), bytes_.size()); }
  PlaintextCopy(const PlaintextCopy&) = delete;
  PlaintextCopy& operator=(const PlaintextCopy&) = delete;
  const char* c_str() const { return bytes_.data(); }

 private:
  std::vector<char> bytes_;
};

// libxcrypt's scratch space (about 32 KiB, so on the heap). It holds
// password-derived state after use, so it is wiped too.
class CryptScratch {
 public:
  CryptScratch() : data_(std::make_unique<struct crypt_data>()) {}
  ~CryptScratch() { explicit_bzero(data_.get(), sizeof(struct crypt_data)); }
  CryptScratch(const CryptScratch&) = delete;
  CryptScratch& operator=(const CryptScratch&) = delete;

  // crypt_rn: the full hash, or nullptr if `setting` is not usable.
  const char* Crypt(const char* phrase, const char* setting) {
    const char* out = ::crypt_rn(phrase, setting, data_.get(), sizeof(struct crypt_data));
    if (out == nullptr || out[0] == '*') return nullptr;  // '*': a failure token, never a hash
    return out;
  }

 private:
  std::unique_ptr<struct crypt_data> data_;
};

bool IsCryptBase64(char c) {
  return c == '.' || c == '/' || (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;  // hash lengths are not secret
  return ::sodium_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace

Status ValidatePassword(std::string_view password) {
  if (password.size() < kMinPasswordBytes) {
    return InvalidArgument("password is too short: use at least " + std::to_string(kMinPasswordBytes) + " characters");
  }
  if (password.size() > kMaxPasswordBytes) {
    return InvalidArgument("password is too long: use at most " + std::to_string(kMaxPasswordBytes) + " bytes");
  }
  if (password.find_first_of(std::string_view("\0\n\r", 3)) != std::string_view::npos) {
    return InvalidArgument("password must not contain NUL or line breaks");
  }
  return Status::Ok();
}

Result<std::string> HashPassword(std::string_view password) {
  DSP_RETURN_IF_ERROR(ValidatePassword(password));
  char setting[CRYPT_GENSALT_OUTPUT_SIZE];
  // Count 0: libxcrypt's default cost. No random bytes given: it reads them
  // from the kernel itself.
  if (::crypt_gensalt_rn("$y$", 0, nullptr, 0, setting, sizeof(setting)) == nullptr) {
    return ErrnoStatus("crypt_gensalt_rn", errno).WithPrefix("hash password");
  }
  PlaintextCopy phrase(password);
  CryptScratch scratch;
  const char* hash = scratch.Crypt(phrase.c_str(), setting);
  if (hash == nullptr) return Internal("hash password: crypt_rn failed");
  return std::string(hash);
}

bool VerifyPassword(std::string_view password, const std::string& hash) {
  if (password.empty() || password.size() > kMaxPasswordBytes) return false;
  if (password.find('\0') != std::string_view::npos) return false;
  if (hash.empty() || hash[0] == '*' || hash[0] == '!') return false;
  PlaintextCopy phrase(password);
  CryptScratch scratch;
  const char* computed = scratch.Crypt(phrase.c_str(), hash.c_str());
  if (computed == nullptr) return false;
  return ConstantTimeEquals(computed, hash);
}

const std::string& DummyPasswordHash() {
  static const std::string hash = [] {
    std::string password = NewToken();  // 256 random bits, forgotten below
    Result<std::string> made = HashPassword(password);
    explicit_bzero(password.data(), password.size());
    return made.ok() ? *made : std::string();
  }();
  return hash;
}

Status ValidatePasswordHash(const std::string& hash) {
  if (hash.empty()) return InvalidArgument("password hash is empty");
  if (hash[0] == '!' || hash[0] == '*') {
    return InvalidArgument("password hash is a locked or disabled marker, not a hash");
  }
  if (std::any_of(hash.begin(), hash.end(),
                  [](char c) { return c == ':' || static_cast<unsigned char>(c) < 0x20 || c == 0x7f; })) {
    return InvalidArgument("password hash must not contain ':' or control characters");
  }
  if (hash.size() >= CRYPT_OUTPUT_SIZE) return InvalidArgument("password hash is too long");
  bool accepted = std::any_of(kAcceptedPrefixes.begin(), kAcceptedPrefixes.end(),
                              [&](std::string_view p) { return hash.starts_with(p); });
  if (!accepted) {
    return InvalidArgument(
        "password hash uses an unsupported or weak method; use yescrypt ($y$), gost-yescrypt ($gy$), scrypt ($7$), "
        "bcrypt ($2b$), sha512crypt ($6$) or sha256crypt ($5$), for example from `mkpasswd -m yescrypt`");
  }
  if (::crypt_checksalt(hash.c_str()) == CRYPT_SALT_INVALID) {
    return InvalidArgument("password hash is malformed: its method, cost or salt does not parse");
  }
  // Hash any phrase with the full hash as the setting: crypt keeps the
  // setting and computes a new digest. A complete hash gives back the same
  // setting and a digest of the same length.
  CryptScratch scratch;
  const char* again = scratch.Crypt("dspool-check", hash.c_str());
  if (again == nullptr) return InvalidArgument("password hash is malformed: libxcrypt cannot use its setting");
  std::string_view computed(again);
  size_t setting_end = hash.rfind('$') + 1;
  bool same_shape = computed.size() == hash.size() && computed.substr(0, setting_end) == hash.substr(0, setting_end) &&
                    std::all_of(hash.begin() + static_cast<std::ptrdiff_t>(setting_end), hash.end(), IsCryptBase64);
  if (!same_shape || setting_end == hash.size()) {
    return InvalidArgument("password hash is malformed: the salt or digest is truncated or has extra characters");
  }
  return Status::Ok();
}

}  // namespace dspool
