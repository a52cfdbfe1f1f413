// `dspool agent`: the first process (PID 1) of every instance. It fetches the
// pool's users and host key from the server over its instance's channel,
// renders /etc/passwd, group and shadow, creates the users' directories on
// the share, runs sshd with the pool-wide host key, reaps orphans, and
// reports health and metrics every few seconds. On its control socket
// (control.h) it starts, lists and stops the users' Jupyter servers
// (jupyter.h) for the gateway.
#pragma once

#include <string>

#include "model/agent_config.h"

namespace dspool {

struct AgentOptions {
  // The instance's channel to the server: a socket the server listens on,
  // in a directory that belongs to the host's root and is bind-mounted
  // read-only (docs/security.md).
  std::string socket = std::string(kInstanceServerDir) + "/" + kAgentSocketName;
  // The agent's own directory, bind-mounted read-write from the host: its
  // control socket (control.sock, HTTP, mode 0600), where the gateway starts
  // and stops Jupyter servers, and its logs. The host never follows a name
  // in it: it reaches control.sock through a descriptor opened without
  // following links.
  std::string run_dir = kInstanceAgentDir;
};

// run_dir + "/" + kControlSocketName.
std::string ControlSocketPath(const AgentOptions& options);

// Runs until SIGTERM; returns the process exit code.
int RunAgent(const AgentOptions& options);

// sshd's AuthorizedKeysCommand: prints the current authorized_keys lines of
// `user` (asks the server, so a key added or removed counts at once; falls
// back to the copy of the last configuration if the server is unreachable).
// Returns the exit code.
int PrintAuthorizedKeys(const AgentOptions& options, const std::string& user);

}  // namespace dspool
