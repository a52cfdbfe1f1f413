// SSH public keys as users give them: one OpenSSH authorized_keys line
// without options, "TYPE BASE64 [COMMENT]" (the content of id_ed25519.pub).
//
// A key is checked before it is stored, so a typo, a truncated paste or a
// private key is refused with an error saying what to do, instead of
// surfacing later as a failed login. Checking covers the structure of the
// key blob (type, lengths, RSA size), not the curve arithmetic; sshd does
// that when the key is used.
//
// Supported types: ssh-ed25519, ecdsa-sha2-nistp256/384/521, ssh-rsa (at
// least 2048 bits), sk-ssh-ed25519@openssh.com and
// sk-ecdsa-sha2-nistp256@openssh.com (FIDO security keys).
//
// Thread safety: both functions may be called concurrently.
#pragma once

#include <string>
#include <string_view>

#include "base/result.h"

namespace dspool {

// Checks one public key line and returns it normalised: "TYPE BASE64" or
// "TYPE BASE64 COMMENT", single spaces between the fields, surrounding
// whitespace (including a final newline) removed, the comment otherwise kept
// as given. Errors are InvalidArgument with a message for a person, for:
// a private key ("this is a private key; give the .pub file"), a PEM/RFC 4716
// block, an options prefix (from=, command=, ...), more than one line, an
// unsupported type, base64 that does not decode, a blob whose embedded type
// differs from the declared one or whose structure is wrong, an RSA key under
// 2048 bits, a comment over 256 bytes or with control characters, a line
// over 16 KiB.
Result<std::string> NormalizeSshPublicKey(std::string_view line);

// The key's fingerprint as `ssh-keygen -l` prints it: "SHA256:" and the
// unpadded base64 of the SHA-256 of the key blob.
// REQUIRES: `normalized_key` was returned by NormalizeSshPublicKey. Returns
// "" for a line whose key data does not decode.
std::string SshKeyFingerprint(const std::string& normalized_key);

}  // namespace dspool
