// Pure rendering of the files the agent writes inside an instance, from the
// configuration the server sends. No I/O: agent.cc reads and writes, these
// functions decide the content, and render_test.cc checks it.
#pragma once

#include <string>
#include <vector>

#include "model/agent_config.h"

namespace dspool {

// A user's home: on the pool's share, so it is the same on every instance;
// /home/<user> on the instance itself in a pool without one.
std::string HomeOf(const AgentConfig& config, const std::string& user);

// A pool user as the files below render them: who processes started for
// them run as.
struct RenderedUser {
  std::string name;
  int64_t uid = 0;
  int64_t gid = 0;              // the user's private group (gid == uid)
  std::vector<int64_t> groups;  // every group it is a member of in /etc/group
  std::string home;             // HomeOf
  std::string shell;
  friend bool operator==(const RenderedUser&, const RenderedUser&) = default;
};
std::vector<RenderedUser> RenderedUsers(const AgentConfig& config);

// /etc/passwd, /etc/group, /etc/shadow for the instance: the image's system
// accounts (uid < 1000, and nobody) kept as they are, any other account of
// the image dropped, then the pool's users. System accounts get a locked
// password ("*") in shadow: the image's shadow is never read.
std::string RenderPasswd(const std::string& image_passwd, const AgentConfig& config);
std::string RenderGroup(const std::string& image_group, const AgentConfig& config);
std::string RenderShadow(const std::string& image_passwd, const AgentConfig& config);

// /etc/hosts: localhost and the instance's own name.
std::string RenderHosts(const AgentConfig& config);

// /etc/sudoers.d/dspool: the pool's admins get sudo inside the instance
// (root of the instance, which is no host root); other users get none.
std::string RenderSudoers(const AgentConfig& config);

struct SshdPaths {
  std::string host_key;         // private key file
  std::string keys_command;     // absolute path of the dspool binary
  std::string pid_file = "/run/sshd.pid";
};
std::string RenderSshdConfig(const SshdPaths& paths);

}  // namespace dspool
