// Password hashes for pool users, in crypt(3) form.
//
// The pool stores only hashes. sshd (through PAM on every instance) and the
// gateway's login both check a password with the same libxcrypt, so a hash
// made here works everywhere. New hashes are yescrypt ("$y$...", the Debian
// default); hashes supplied by an admin may also use the other strong
// methods listed at ValidatePasswordHash.
//
// Plaintext passwords are never logged, never put in an error message, and
// the copies this code makes are wiped before their memory is released.
//
// Cost: hashing or verifying takes tens of milliseconds of CPU by design;
// callers facing the network must rate-limit attempts.
//
// Thread safety: all functions may be called concurrently.
#pragma once

#include <string>
#include <string_view>

#include "base/result.h"
#include "base/status.h"

namespace dspool {

// The password policy: 8 to 1024 bytes, no NUL, CR or LF. The error never
// contains the password.
Status ValidatePassword(std::string_view password);

// A new yescrypt hash of `password` with a fresh random salt.
// Errors: InvalidArgument if ValidatePassword rejects it; Internal if
// libxcrypt fails (no entropy, out of memory).
Result<std::string> HashPassword(std::string_view password);

// Whether `password` matches `hash`. False (never an error) for a malformed or
// unsupported hash, a locked hash ("!..." or "*"), an empty password, or a
// password that could not have been hashed (NUL, over 1024 bytes). The final
// comparison takes the same time wherever the outputs differ.
bool VerifyPassword(std::string_view password, const std::string& hash);

// A yescrypt hash of a random password that is then forgotten, made once
// per process (the first call takes as long as HashPassword; later calls
// return it at once). A login for a user who does not exist, or has no
// password, verifies the given password against it, so the answer takes as
// long as for a wrong password and its timing does not tell which names
// exist. Matches no password. Empty only if libxcrypt could not hash at all
// (then VerifyPassword refuses everything at once anyway).
const std::string& DummyPasswordHash();

// Checks a hash supplied by an admin (for example copied from /etc/shadow)
// before it is stored. Accepted methods: yescrypt "$y$", gost-yescrypt
// "$gy$", scrypt "$7$", bcrypt "$2b$"/"$2y$", sha512crypt "$6$" and
// sha256crypt "$5$". The hash must be complete: libxcrypt must parse its
// setting and produce a digest of the same shape. Rejected with
// InvalidArgument: empty, locked or disabled ("!", "*"), weak methods (DES,
// MD5, ...), and anything containing ':' or a control character (it would
// break /etc/shadow).
Status ValidatePasswordHash(const std::string& hash);

}  // namespace dspool
