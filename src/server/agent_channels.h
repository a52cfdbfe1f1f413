// AgentChannels: how the server and each instance's agent reach each other,
// built so that the host's root never follows a name an instance can write
// (docs/security.md has the whole rule and the audit).
//
//   <data>/instances/             root, 0711
//   <data>/instances/<id>/        root:R, 0710: never mounted anywhere
//     server/                     root:R, 0750 ─► /run/dspool/server (read-only)
//       agent.sock                the server listens; the instance's root
//                                 (owner, 0600) connects; the API answers
//                                 only a peer whose SO_PEERCRED uid is that
//                                 root, and only about this instance
//     agent/                      R:R, 0700 ─► /run/dspool/agent
//       control.sock              the agent listens; the server connects
//                                 through an O_PATH descriptor opened
//                                 without following links (a socket owned by
//                                 the instance's root, or nothing)
//       agent.log, sshd.log, ...  the agent's; the server never opens them
//
// R is the host uid (and gid) of the instance's root; no other host user
// gets in. Every name the server resolves as root lies in a directory only
// root can write (instances/, <id>/, server/); in agent/, which the
// instance owns, it opens only control.sock, as above, and removes the
// tree without following links when the instance is gone.
//
// For instances on other hosts (not built yet) the same two roles become a
// TCP channel with TLS: the agent dials the server with a credential issued
// at creation and revoked at deletion, and the server's calls to the agent
// go back over that connection; Mounts() and the paths below are then the
// local provider's business only.
//
// Thread safety: every method may be called from any thread.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "base/ids.h"
#include "base/result.h"
#include "http/server.h"
#include "model/json_reader.h"
#include "provider/compute_provider.h"

namespace dspool {

class AgentChannels {
 public:
  // Channels under `data_dir`/instances, served by `http` (listener tags
  // "agent:<id>"). The references must outlive this object.
  AgentChannels(std::string data_dir, HttpServer& http);

  // Makes <data>/instances (root, 0711; traversable: instances reach their
  // channel through it).
  Status Prepare();

  // Opens instance `id`'s channel, whose root is host uid `owner`: the
  // directories above, and the server's listener. Idempotent. A directory
  // left by an older layout, or not root's, is moved aside and removed
  // first (without following links).
  Status Open(const InstanceId& id, uid_t owner);

  // Closes the channels of instances not in `live` that were open before
  // `open_before` was taken (OpenChannels()), and removes every instance
  // directory not in `live` (a channel opened meanwhile for a record
  // written meanwhile is never taken for a leftover).
  void Sweep(const std::set<InstanceId>& open_before, const std::set<InstanceId>& live);
  std::set<InstanceId> OpenChannels() const;

  // The bind mounts that give instance `id` its two directories.
  std::vector<BindMount> Mounts(const InstanceId& id) const;

  // One request to the control socket of instance `id`'s agent (its root
  // is host uid `owner`): its JSON answer on 2xx (null when it has no
  // body). Otherwise an error naming the instance with the agent's
  // message: NotFound for a 404, else Unavailable (also when the agent
  // does not answer, or its socket is not a socket of `owner`'s).
  Result<Json> Call(const InstanceId& id, uid_t owner, const std::string& method, const std::string& path,
                    const std::string& body, std::chrono::seconds timeout) const;

  // Passes the detached mount `tree` to instance `id`'s agent (through its
  // mounts socket, found as Call finds the control socket), which attaches
  // it at `target` in the instance. OK once it says it did; otherwise an
  // error naming the instance with the agent's reason (Unavailable when it
  // does not answer within `timeout`).
  Status PassMount(const InstanceId& id, uid_t owner, int tree, const std::string& target, bool read_only,
                   std::chrono::seconds timeout) const;

 private:
  std::string InstanceDir(const InstanceId& id) const { return instances_ + "/" + id.value(); }

  const std::string instances_;
  HttpServer& http_;
  mutable std::mutex mu_;
  std::set<InstanceId> open_;  // guarded by mu_
};

}  // namespace dspool
