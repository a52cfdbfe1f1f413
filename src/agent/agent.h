// `dspool agent`: the first process (PID 1) of every instance. It fetches the
// pool's users and host key from the server over its instance's channel,
// renders /etc/passwd, group and shadow, creates the users' directories on
// the share, runs sshd with the pool-wide host key, reaps orphans, and
// reports health and metrics every few seconds.
#pragma once

#include <string>

namespace dspool {

struct AgentOptions {
  // The instance's channel to the server, bind-mounted by the provider.
  std::string socket = "/run/dspool/agent.sock";
};

// Runs until SIGTERM; returns the process exit code.
int RunAgent(const AgentOptions& options);

// sshd's AuthorizedKeysCommand: prints the current authorized_keys lines of
// `user` (asks the server, so a key added or removed counts at once; falls
// back to the copy of the last configuration if the server is unreachable).
// Returns the exit code.
int PrintAuthorizedKeys(const AgentOptions& options, const std::string& user);

}  // namespace dspool
