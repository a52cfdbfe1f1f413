// The checks and look-ups behind the command-line options that are more than
// a string: where the API is (--server, --data-dir, DSPOOL_SERVER), the
// bearer token (--token-file, DSPOOL_TOKEN_FILE), `dspool server`'s
// --uid-range and --listen, and what is read from files and standard input
// (SSH public keys, passwords).
//
// Every error names the flag or file at fault, so the CLI can print it as is.
// Functions without a stream or path argument are pure.
#pragma once

#include <cstdint>
#include <istream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "http/endpoint.h"

namespace dspool {

inline constexpr std::string_view kDefaultDataDir = "/var/lib/dspool";

// Where the client commands send their requests. The first given wins:
// `server_flag` (--server, "unix:PATH", "tcp:HOST:PORT" or "tls:HOST:PORT"), `data_dir_flag`
// (--data-dir DIR, meaning unix:DIR/api.sock), `env_server` (the value of
// DSPOOL_SERVER), else unix:/var/lib/dspool/api.sock. Empty strings count as
// not given. InvalidArgument naming the flag or variable if its value does
// not parse.
Result<Endpoint> ResolveEndpoint(const std::string& server_flag, const std::string& data_dir_flag,
                                 const std::optional<std::string>& env_server);

// How the client checks a tls: server's certificate, set into `endpoint`:
// by its SHA-256 fingerprint (--server-fingerprint, net/tls.h's forms) or
// by a CA file (--server-ca-file); the flags, if either is given, else the
// environment (DSPOOL_SERVER_FINGERPRINT, DSPOOL_SERVER_CA_FILE); neither:
// the system's CAs. Empty strings count as not given. InvalidArgument
// naming the flag or variable: a malformed fingerprint, a fingerprint and a
// CA file together, or a flag for an endpoint that is not tls: (the
// variables are then ignored, so they may stay set for local use).
struct ServerVerification {
  std::string fingerprint_flag;
  std::string ca_file_flag;
  std::optional<std::string> env_fingerprint;
  std::optional<std::string> env_ca_file;
};
Status ApplyServerVerification(const ServerVerification& given, Endpoint& endpoint);

// The bearer token in the file at `path`, surrounding whitespace trimmed.
// `source` ("--token-file", "DSPOOL_TOKEN_FILE") prefixes every error:
// the file cannot be read, is empty, or holds more than one line.
Result<std::string> ReadTokenFile(const std::string& path, std::string_view source);

struct UidRange {
  int64_t first = 0;
  int64_t last = 0;
  friend bool operator==(const UidRange&, const UidRange&) = default;
};

// "FIRST-LAST", decimal, 1000 <= FIRST <= LAST <= 4294967294 (below 1000 are
// the system's accounts; 4294967295 is (uid_t)-1). InvalidArgument naming
// --uid-range otherwise.
Result<UidRange> ParseUidRange(std::string_view text);

// Checks `dspool server --listen`: "HOST:PORT" ("[::1]:7070" for an IPv6
// literal) with a port in 1..65535 and a non-empty host.
Status ValidateListenAddress(std::string_view text);

// The SSH public keys in a .pub or authorized_keys file: every line that is
// not empty or a '#' comment, trimmed. `source` prefixes errors (the flag,
// e.g. "--ssh-key"). InvalidArgument if the file holds no key, or holds a
// private key (people pass the wrong half of a key pair).
Result<std::vector<std::string>> ReadSshKeyFile(const std::string& path, std::string_view source);

// The key material of an authorized_keys line: "TYPE BASE64", without
// options or comment; empty if the line has no two fields. Two lines name the
// same key iff these are equal.
std::string SshKeyMaterial(std::string_view line);

// One line from `in`, without its line ending: a password given with
// --password-stdin (`flag` names it in errors). InvalidArgument if `in` is at
// its end or the line is empty.
Result<std::string> ReadPasswordLine(std::istream& in, std::string_view flag);

}  // namespace dspool
