// Web sessions: what the gateway's login hands a browser, and how it checks
// it on every request.
//
//   cookie value:  <user>.<expires, unix seconds>.<HMAC-SHA256, base64url>
//
// The MAC (libsodium's crypto_auth_hmacsha256) covers the user and the
// expiry, keyed with the server's 32-byte session key, so a value cannot be
// forged, altered or extended without the key; it is checked in constant
// time. A session ends at its expiry, on logout (the browser drops the
// cookie), or for everyone when the key changes.
//
// LoginThrottle: failed logins are limited per user name and per client
// address, so a password cannot be guessed fast from one place, nor one
// account from many. Its windows run on the monotonic clock.
//
// Thread safety: the functions may be called concurrently; LoginThrottle is
// internally locked.
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

#include "base/clock.h"
#include "base/result.h"
#include "identity/secret_equals.h"

namespace dspool {

constexpr size_t kSessionKeyBytes = 32;

// A fresh random key (kSessionKeyBytes).
std::string NewSessionKey();

// A random token for a notebook server (64 hex characters, 256 bits).
std::string NewToken();

// A key in the form it is kept in a file: 64 hex characters and a newline;
// and back (surrounding whitespace ignored). InvalidArgument for anything
// that is not kSessionKeyBytes in hex.
std::string SessionKeyToText(std::string_view key);
Result<std::string> SessionKeyFromText(std::string_view text);

// The cookie value for `user` until `expires`. REQUIRES: key is
// kSessionKeyBytes long; user is a valid user name (no '.').
std::string SignSession(std::string_view user, TimePoint expires, std::string_view key);

// The user of a valid, unexpired cookie value; PermissionDenied otherwise
// (malformed, bad MAC, expired), with a message fit for a log line.
Result<std::string> VerifySession(std::string_view value, TimePoint now, std::string_view key);

// VerifySession with a memory: a cookie value found valid is not checked
// again (its HMAC, the cost: ~1 µs, a few per cent of a proxied request)
// until it expires. The memory is per thread, a few values each, so
// threads never wait for each other; verifiers never see each other's
// values. Thread-safe.
//
// The memory holds no cookie value, only its keyed hash (SecretHasher, a key
// per verifier), compared in constant time: a lookup's time tells nothing
// about how close a forged value came to a remembered one. A lookup hashes
// the value once (SipHash, a few per cent of the HMAC's cost) and allocates
// nothing.
class SessionVerifier {
 public:
  explicit SessionVerifier(std::string key);
  Result<std::string> Verify(std::string_view value, TimePoint now) const;
  const std::string& key() const { return key_; }

 private:
  const std::string key_;
  const uint64_t id_;  // unique for the process's life
  const SecretHasher memo_;
};

class LoginThrottle {
 public:
  struct Limits {
    int failures = 5;                                      // allowed per window
    std::chrono::seconds window{std::chrono::minutes(5)};  // counted over
  };
  LoginThrottle(const Clock& clock, Limits limits) : clock_(clock), limits_(limits) {}

  // Whether a login for `user` from `address` may be tried now; if not,
  // how long until it may.
  std::chrono::seconds Wait(const std::string& user, const std::string& address);
  void RecordFailure(const std::string& user, const std::string& address);
  // A success clears the user's count (not the address's).
  void RecordSuccess(const std::string& user);

 private:
  struct Entry {
    int failures = 0;
    MonoTime window_start;
  };
  std::chrono::seconds WaitFor(std::map<std::string, Entry>& entries, const std::string& key, MonoTime now);
  void Count(std::map<std::string, Entry>& entries, const std::string& key, MonoTime now);

  const Clock& clock_;
  const Limits limits_;
  std::mutex mu_;
  std::map<std::string, Entry> by_user_;     // guarded by mu_
  std::map<std::string, Entry> by_address_;  // guarded by mu_
};

}  // namespace dspool
