// AgentConfig: what the server tells an instance's agent (GET
// /v1/agent/config): who the instance is, the pool's users, its host key.
// Contains secrets (the host private key, password hashes): only ever sent
// over the instance's own channel.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "base/result.h"
#include "model/json_reader.h"

namespace dspool {

// The instance's channel to its server, as the instance sees it
// (docs/security.md): the server's directory, bind-mounted read-only,
// holding the socket the server listens on; and the agent's own directory,
// holding its control socket. The server makes both under
// <data>/instances/<id>/ ("server/" and "agent/").
inline constexpr const char* kInstanceServerDir = "/run/dspool/server";
inline constexpr const char* kInstanceAgentDir = "/run/dspool/agent";
inline constexpr const char* kAgentSocketName = "agent.sock";
inline constexpr const char* kControlSocketName = "control.sock";
// In the agent's directory too: the server connects to pass a detached
// mount (a storage share the instance asked for) for the agent to attach:
// one byte that carries the descriptor, then a frame (net/unix_socket.h)
// {"target", "readOnly"}; the agent answers one frame, {} or {"error"}.
inline constexpr const char* kMountSocketName = "mounts.sock";

// On the control socket: POST {"version": N} makes the agent fetch and apply
// its configuration now, answering once it has version N or later, or
// after kConfigRefreshTimeout with an error (agent/control.h).
inline constexpr const char* kConfigRefreshPath = "/v1/config/refresh";
inline constexpr std::chrono::seconds kConfigRefreshTimeout{10};

struct AgentUser {
  std::string name;
  int64_t uid = 0;
  bool admin = false;
  std::string password_hash;  // empty: no password login
  std::vector<std::string> ssh_keys;
};

struct AgentConfig {
  std::string instance_id;
  std::string pool;
  std::string hostname;
  // The instance's IPv4 address on its pool's bridge, where its Jupyter
  // servers listen for the gateway. Empty from a server that does not send it.
  std::string address;
  // Where the pool's share is mounted; homes are <it>/home/<user>. Empty:
  // the pool has none (share type none), and homes are /home/<user>.
  std::string share_mount_path;
  std::vector<AgentUser> users;
  std::string host_private_key;  // OpenSSH format; secret
  std::string host_public_key;
  int64_t config_version = 0;
  int64_t report_interval_ms = 2000;
  // The pool serves Jupyter: the agent keeps its zygote (agent/zygote.h)
  // ready for the first login. False from a server that does not send it.
  bool jupyter = false;
};

Json AgentConfigToJson(const AgentConfig& config);
Result<AgentConfig> ParseAgentConfig(const Json& json);

}  // namespace dspool
