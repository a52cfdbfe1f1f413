#include "identity/session.h"

#include <sodium.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <cstring>

namespace dspool {
namespace {

std::string Base64Url(const unsigned char* data, size_t size) {
  std::string out(sodium_base64_ENCODED_LEN(size, sodium_base64_VARIANT_URLSAFE_NO_PADDING), '\0');
  sodium_bin2base64(out.data(), out.size(), data, size, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  out.resize(std::strlen(out.c_str()));
  return out;
}

std::string Mac(std::string_view payload, std::string_view key) {
  unsigned char mac[crypto_auth_hmacsha256_BYTES];
  crypto_auth_hmacsha256_state state;
  crypto_auth_hmacsha256_init(&state, reinterpret_cast<const unsigned char*>(key.data()), key.size());
  crypto_auth_hmacsha256_update(&state, reinterpret_cast<const unsigned char*>(payload.data()), payload.size());
  crypto_auth_hmacsha256_final(&state, mac);
  return Base64Url(mac, sizeof(mac));
}

}  // namespace

std::string NewSessionKey() {
  if (sodium_init() < 0) std::abort();  // no entropy source: nothing safe to do
  std::string key(kSessionKeyBytes, '\0');
  randombytes_buf(key.data(), key.size());
  return key;
}

std::string NewToken() {
  std::string hex = SessionKeyToText(NewSessionKey());
  hex.pop_back();
  return hex;
}

std::string SessionKeyToText(std::string_view key) {
  std::string hex(key.size() * 2 + 1, '\0');
  sodium_bin2hex(hex.data(), hex.size(), reinterpret_cast<const unsigned char*>(key.data()), key.size());
  hex.back() = '\n';
  return hex;
}

Result<std::string> SessionKeyFromText(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.remove_suffix(1);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) text.remove_prefix(1);
  std::string key(kSessionKeyBytes, '\0');
  size_t length = 0;
  const char* end = nullptr;
  if (text.size() != kSessionKeyBytes * 2 ||
      sodium_hex2bin(reinterpret_cast<unsigned char*>(key.data()), key.size(), text.data(), text.size(), nullptr,
                     &length, &end) != 0 ||
      length != kSessionKeyBytes) {
    return InvalidArgument("not a session key (" + std::to_string(kSessionKeyBytes * 2) + " hex digits)");
  }
  return key;
}

std::string SignSession(std::string_view user, TimePoint expires, std::string_view key) {
  std::string payload = std::string(user) + "." + std::to_string(ToUnixMillis(expires) / 1000);
  return payload + "." + Mac(payload, key);
}

namespace {

struct VerifiedSession {
  std::string user;
  TimePoint expires;
};

Result<VerifiedSession> CheckSession(std::string_view value, TimePoint now, std::string_view key) {
  size_t last = value.rfind('.');
  if (last == std::string_view::npos || last == 0) return PermissionDenied("session cookie: malformed");
  size_t first = value.rfind('.', last - 1);
  if (first == std::string_view::npos || first == 0) return PermissionDenied("session cookie: malformed");
  std::string_view payload = value.substr(0, last);
  std::string expected = Mac(payload, key);
  std::string_view given = value.substr(last + 1);
  if (given.size() != expected.size() || sodium_memcmp(given.data(), expected.data(), expected.size()) != 0) {
    return PermissionDenied("session cookie: bad signature");
  }
  std::string_view expires = value.substr(first + 1, last - first - 1);
  int64_t seconds = 0;
  for (char c : expires) {
    if (c < '0' || c > '9' || seconds > (INT64_MAX - 9) / 10) return PermissionDenied("session cookie: malformed");
    seconds = seconds * 10 + (c - '0');
  }
  if (expires.empty() || FromUnixMillis(seconds * 1000) <= now) return PermissionDenied("session cookie: expired");
  return VerifiedSession{std::string(value.substr(0, first)), FromUnixMillis(seconds * 1000)};
}

}  // namespace

Result<std::string> VerifySession(std::string_view value, TimePoint now, std::string_view key) {
  DSP_ASSIGN_OR_RETURN(VerifiedSession session, CheckSession(value, now, key));
  return std::move(session.user);
}

SessionVerifier::SessionVerifier(std::string key) : key_(std::move(key)), id_([] {
  static std::atomic<uint64_t> next{1};
  return next++;
}()) {}

Result<std::string> SessionVerifier::Verify(std::string_view value, TimePoint now) const {
  struct Entry {
    uint64_t verifier = 0;  // 0: empty
    SecretHasher::Digest digest{};
    VerifiedSession session;
  };
  constexpr size_t kEntries = 8;
  thread_local std::array<Entry, kEntries> memory;
  thread_local size_t next = 0;
  const SecretHasher::Digest digest = memo_.Hash(value);
  for (const Entry& e : memory) {
    if (e.verifier != id_ || !SecretHasher::Equal(e.digest, digest)) continue;
    if (e.session.expires <= now) return PermissionDenied("session cookie: expired");
    return e.session.user;
  }
  DSP_ASSIGN_OR_RETURN(VerifiedSession session, CheckSession(value, now, key_));
  Entry& e = memory[next++ % kEntries];
  e.verifier = id_;
  e.digest = digest;
  e.session = session;
  return std::move(session.user);
}

std::chrono::seconds LoginThrottle::Wait(const std::string& user, const std::string& address) {
  std::lock_guard lock(mu_);
  MonoTime now = clock_.Monotonic();
  return std::max(WaitFor(by_user_, user, now), WaitFor(by_address_, address, now));
}

void LoginThrottle::RecordFailure(const std::string& user, const std::string& address) {
  std::lock_guard lock(mu_);
  MonoTime now = clock_.Monotonic();
  Count(by_user_, user, now);
  Count(by_address_, address, now);
  // Forget windows that ended, so the maps stay as small as the attack.
  for (auto* entries : {&by_user_, &by_address_}) {
    std::erase_if(*entries, [&](const auto& kv) { return now - kv.second.window_start >= limits_.window; });
  }
}

void LoginThrottle::RecordSuccess(const std::string& user) {
  std::lock_guard lock(mu_);
  by_user_.erase(user);
}

std::chrono::seconds LoginThrottle::WaitFor(std::map<std::string, Entry>& entries, const std::string& key,
                                            MonoTime now) {
  auto it = entries.find(key);
  if (it == entries.end() || it->second.failures < limits_.failures) return std::chrono::seconds(0);
  auto left = it->second.window_start + limits_.window - now;
  if (left <= MonoTime::duration::zero()) {
    entries.erase(it);
    return std::chrono::seconds(0);
  }
  return std::chrono::ceil<std::chrono::seconds>(left);
}

void LoginThrottle::Count(std::map<std::string, Entry>& entries, const std::string& key, MonoTime now) {
  Entry& e = entries[key];
  if (e.failures == 0 || now - e.window_start >= limits_.window) {
    e.failures = 0;
    e.window_start = now;
  }
  ++e.failures;
}

}  // namespace dspool
