#include "cli/options.h"

#include <charconv>
#include <sstream>

#include "net/tls.h"
#include "os/fs.h"

namespace dspool {
namespace {

constexpr std::string_view kSpace = " \t\r\n\v\f";

std::string_view Trim(std::string_view s) {
  size_t begin = s.find_first_not_of(kSpace);
  if (begin == std::string_view::npos) return {};
  size_t end = s.find_last_not_of(kSpace);
  return s.substr(begin, end - begin + 1);
}

// A whole decimal number without sign; nullopt otherwise.
std::optional<int64_t> ParseDecimal(std::string_view text) {
  if (text.empty() || text.size() > 18) return std::nullopt;
  int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || text[0] == '-' || text[0] == '+') {
    return std::nullopt;
  }
  return value;
}

Result<std::string> ReadFileFor(const std::string& path, std::string_view source) {
  Result<std::string> content = ReadFile(path);
  if (!content.ok()) return content.status().WithPrefix(source);
  return content;
}

}  // namespace

Result<Endpoint> ResolveEndpoint(const std::string& server_flag, const std::string& data_dir_flag,
                                 const std::optional<std::string>& env_server) {
  if (!server_flag.empty()) {
    Result<Endpoint> ep = ParseEndpoint(server_flag);
    if (!ep.ok()) return ep.status().WithPrefix("--server");
    return ep;
  }
  if (!data_dir_flag.empty()) {
    Result<Endpoint> ep = ParseEndpoint("unix:" + data_dir_flag + "/api.sock");
    if (!ep.ok()) return ep.status().WithPrefix("--data-dir");
    return ep;
  }
  if (env_server && !env_server->empty()) {
    Result<Endpoint> ep = ParseEndpoint(*env_server);
    if (!ep.ok()) return ep.status().WithPrefix("DSPOOL_SERVER");
    return ep;
  }
  return Endpoint::Unix(std::string(kDefaultDataDir) + "/api.sock");
}

Status ApplyServerVerification(const ServerVerification& given, Endpoint& endpoint) {
  bool flags = !given.fingerprint_flag.empty() || !given.ca_file_flag.empty();
  std::string fingerprint = flags ? given.fingerprint_flag : given.env_fingerprint.value_or("");
  std::string ca_file = flags ? given.ca_file_flag : given.env_ca_file.value_or("");
  std::string_view fingerprint_source = flags ? "--server-fingerprint" : "DSPOOL_SERVER_FINGERPRINT";
  std::string_view ca_file_source = flags ? "--server-ca-file" : "DSPOOL_SERVER_CA_FILE";
  if (fingerprint.empty() && ca_file.empty()) return Status::Ok();
  if (endpoint.kind != Endpoint::Kind::kTls) {
    if (!flags) return Status::Ok();
    return InvalidArgument(std::string(fingerprint.empty() ? ca_file_source : fingerprint_source) +
                           ": only for a tls: server, and the server is " + endpoint.ToString());
  }
  if (!fingerprint.empty() && !ca_file.empty()) {
    return InvalidArgument(std::string(fingerprint_source) + " and " + std::string(ca_file_source) +
                           ": give one (a pinned certificate needs no CA)");
  }
  if (!fingerprint.empty()) {
    Result<std::string> parsed = ParseCertificateFingerprint(fingerprint);
    if (!parsed.ok()) return parsed.status().WithPrefix(fingerprint_source);
    endpoint.tls_fingerprint = std::move(*parsed);
  }
  endpoint.tls_ca_file = ca_file;
  return Status::Ok();
}

Result<std::string> ReadTokenFile(const std::string& path, std::string_view source) {
  DSP_ASSIGN_OR_RETURN(std::string content, ReadFileFor(path, source));
  std::string token(Trim(content));
  if (token.empty()) return InvalidArgument(std::string(source) + ": token file " + path + " is empty");
  for (char c : token) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f) {
      return InvalidArgument(std::string(source) + ": token file " + path +
                             " must hold one token, without spaces or line breaks");
    }
  }
  return token;
}

Result<UidRange> ParseUidRange(std::string_view text) {
  constexpr int64_t kMin = 1000;
  constexpr int64_t kMax = 4294967294;
  auto bad = [&](const std::string& why) { return InvalidArgument("--uid-range: '" + std::string(text) + "' " + why); };
  size_t dash = text.find('-');
  if (dash == std::string_view::npos) return bad("is not FIRST-LAST, like 20000-59999");
  std::optional<int64_t> first = ParseDecimal(text.substr(0, dash));
  std::optional<int64_t> last = ParseDecimal(text.substr(dash + 1));
  if (!first || !last) return bad("is not FIRST-LAST, like 20000-59999");
  if (*first < kMin) return bad("starts below 1000, among the system's accounts");
  if (*last > kMax) return bad("ends above 4294967294");
  if (*first > *last) return bad("ends before it starts");
  return UidRange{*first, *last};
}

Status ValidateListenAddress(std::string_view text) {
  auto bad = [&](const std::string& why) { return InvalidArgument("--listen: '" + std::string(text) + "' " + why); };
  size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) return bad("is not ADDRESS:PORT, like 127.0.0.1:7070");
  std::string_view host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host.empty()) return bad("has no address; use 127.0.0.1:PORT, or 0.0.0.0:PORT for every interface");
  if (host.find_first_of("[]") != std::string_view::npos ||
      (host.find(':') != std::string_view::npos && text.front() != '[')) {
    return bad("is not ADDRESS:PORT; write an IPv6 address in brackets, like [::1]:7070");
  }
  std::optional<int64_t> port = ParseDecimal(text.substr(colon + 1));
  if (!port || *port < 1 || *port > 65535) return bad("needs a port between 1 and 65535");
  return Status::Ok();
}

std::string SshKeyMaterial(std::string_view line) {
  // An authorized_keys line may start with options (which may hold quoted
  // spaces); the key is the first field that names a key type, and the next.
  std::istringstream in{std::string(line)};
  std::vector<std::string> fields;
  for (std::string f; in >> f;) fields.push_back(f);
  for (size_t i = 0; i + 1 < fields.size(); ++i) {
    const std::string& type = fields[i];
    if (type.rfind("ssh-", 0) == 0 || type.rfind("ecdsa-", 0) == 0 || type.rfind("sk-", 0) == 0) {
      return type + " " + fields[i + 1];
    }
  }
  return fields.size() >= 2 ? fields[0] + " " + fields[1] : "";
}

Result<std::vector<std::string>> ReadSshKeyFile(const std::string& path, std::string_view source) {
  DSP_ASSIGN_OR_RETURN(std::string content, ReadFileFor(path, source));
  if (content.find("PRIVATE KEY") != std::string::npos) {
    return InvalidArgument(std::string(source) + ": " + path +
                           " is a private key; give the public one (usually the same name with .pub)");
  }
  std::vector<std::string> keys;
  std::istringstream in(content);
  for (std::string line; std::getline(in, line);) {
    std::string_view key = Trim(line);
    if (key.empty() || key.front() == '#') continue;
    keys.emplace_back(key);
  }
  if (keys.empty()) return InvalidArgument(std::string(source) + ": " + path + " holds no SSH public key");
  return keys;
}

Result<std::string> ReadPasswordLine(std::istream& in, std::string_view flag) {
  std::string line;
  if (!std::getline(in, line) && line.empty()) {
    return InvalidArgument(std::string(flag) + ": no password on standard input");
  }
  if (!line.empty() && line.back() == '\r') line.pop_back();
  if (line.empty()) return InvalidArgument(std::string(flag) + ": the password on standard input is empty");
  return line;
}

}  // namespace dspool
