// Api: the REST resources of docs/api.md, and the agents' channel.
//
// A request is served by Handle(), on the HTTP server's threads. Which
// resources a request may reach depends on the listener it came through:
//   "api"        the Unix socket: only peers with uid 0
//   "api-tcp"    TCP: only with the bearer token
//   "agent:<id>" instance <id>'s own channel: only /v1/agent/*, and only
//                about that instance (the channel is the credential)
// The API writes desired state only (pools, users, and one flag of instance
// records, draining) and records every change as an event in the same store
// batch; the reconcile loop does the rest.
//
// Errors map to HTTP statuses in exactly one place (ErrorResponse).
//
// Thread safety: Handle may be called concurrently.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "base/clock.h"
#include "base/version.h"
#include "deploy/catalog.h"
#include "deploy/realize.h"
#include "http/message.h"
#include "identity/uid_allocator.h"
#include "model/instance.h"
#include "model/jupyter.h"
#include "model/pool.h"
#include "store/state_store.h"

namespace dspool {

// The largest request body the API reads: a template (ARM's limit is
// 4 MiB) with the files a local one sends for its relative fileUris
// (kMaxArtifactBytes, in base64).
inline constexpr size_t kMaxApiRequestBytes = 16u << 20;

struct HostKey {
  std::string private_key;  // OpenSSH format; secret
  std::string public_key;
};

// What the API needs from the rest of the server (host checks, files in the
// data dir, the reconcile loop). Implemented by server/.
class ApiHooks {
 public:
  virtual ~ApiHooks() = default;
  // Checks a new pool against the host: subnet vs routes and other pools,
  // the share directory. Errors name the spec field.
  virtual Status CheckPoolHost(const PoolSpec& spec, const std::vector<Pool>& existing) = 0;
  // The files each of `extensions` names in its fileUris, fetched (through
  // the server's mirror map; a relative one is what `artifacts` has), in
  // FileNames() order: for a pool about to be made. Errors name the
  // extension and the URI. Writes nothing.
  virtual Result<std::vector<std::vector<ExtensionFile>>> FetchExtensionFiles(
      const std::vector<ExtensionSpec>& extensions, const ExtensionArtifacts& artifacts) = 0;
  // Creates the pool's host key if it has none, and keeps `files` (one list
  // per extension of its spec) for its instances. Idempotent.
  virtual Status PreparePool(const PoolSpec& spec, const std::vector<std::vector<ExtensionFile>>& files) = 0;
  // The files PreparePool kept for one of the pool's extensions.
  virtual Result<std::vector<ExtensionFile>> ReadExtensionFiles(const PoolName& pool,
                                                                const ExtensionSpec& extension) = 0;
  virtual Result<HostKey> ReadHostKey(const PoolName& pool) = 0;
  // Desired state changed: reconcile soon.
  virtual void PoolsChanged() = 0;
  virtual void RecordReport(const InstanceId& id, const InstanceReport& report) = 0;
  virtual std::optional<InstanceReport> LastReport(const InstanceId& id) = 0;
  // What the gateway sees of the instance now; nullopt when it has nothing
  // for it (its pool has no loadBalancer, or the gateway does not run).
  virtual std::optional<dspool::InstanceHealth> InstanceHealth(const InstanceId& id) = 0;
  // Extra Prometheus lines (counters of the loops and listeners).
  virtual std::string ExtraMetrics() = 0;
  // The users' notebook servers the gateway knows, in every pool.
  virtual std::vector<NotebookSessionInfo> NotebookSessions() = 0;
  // The connections the gateway relays to instances now (SSH sessions),
  // in every pool, oldest first.
  virtual std::vector<RelayedSessionInfo> RelayedSessions() = 0;
  // Open SSH sessions and notebook servers on each of `ids`, for those whose
  // count is known (what scale-in waits on; reconcile/planner.h).
  virtual std::map<InstanceId, int64_t> OpenSessions(const std::vector<InstanceId>& ids) = 0;
  // Stops `user`'s notebook server in `pool` (a ready one through its
  // instance's agent; one starting or failed is forgotten) and the gateway
  // forgets it: the user's next request starts a new one. Their files stay.
  // REQUIRES: the session is among NotebookSessions().
  virtual Status StopNotebookSession(const PoolName& pool, const std::string& user) = 0;
  // The users changed (now at `version`): every running instance fetches
  // its configuration now. Returns once each has applied it, or said it
  // could not in time; the result says why for each of those ("instance
  // <id>: ..."), which apply it at their next report instead.
  virtual std::vector<std::string> PushUsersChange(int64_t version) = 0;
  // A storage account's share data on the host, by ShareKey ("name" for a
  // live share, "name/VERSION" for a deleted one): made (root's, 0755;
  // AlreadyExists if it is there), renamed from one key to another (soft
  // delete and restore), removed for good.
  virtual Status MakeShareData(const std::string& account, const std::string& key) = 0;
  virtual Status MoveShareData(const std::string& account, const std::string& from, const std::string& to) = 0;
  virtual Status RemoveShareData(const std::string& account, const std::string& key) = 0;
  // Mounts live share `share` of `account` at `target` in instance `id`
  // (its agent attaches it; the host resolves no path in the instance),
  // with the pool users' ids as on the pool's own share, after making
  // notebooks/<user> on it for every user. Errors name the instance.
  virtual Status AttachShare(const InstanceId& id, const std::string& account, const std::string& share,
                             const std::string& target, bool read_only) = 0;
  // Stops the server soon, as SIGTERM does (after this request's answer).
  virtual void RequestStop() = 0;
  // The gateway process (it outlives the server): what runs (GatewayInfo's
  // JSON, gateway/control.h); stopping it for good, with the connections
  // it carries; handing over to `binary` (empty: the server's own), whose
  // answer names the new process ({"pid", "previousPid", "binary"}).
  virtual Result<Json> DescribeGateway() = 0;
  virtual Status StopGateway() = 0;
  virtual Result<Json> UpgradeGateway(const std::string& binary) = 0;
  // `exit.user`'s notebook server on `instance` (of `pool`) ended without
  // being asked to, as its agent reported (the event is written already);
  // `description` is DescribeNotebookExit's ("ran out of memory (limit
  // 512 MiB) and was stopped"). Out of memory: the gateway shows the user
  // why, if that server is still the session's (gateway/web_entry.h).
  virtual void NotebookExited(const PoolName& pool, const InstanceId& instance, const NotebookExit& exit,
                              const std::string& description) = 0;
};

// Template deployments (api/deployments.h): where resources land on this
// host, the sizes and images scale sets may name, how long a scale set's
// instances may take to become Ready, and how often that is looked at.
struct DeploymentOptions {
  deploy::HostSettings host;
  deploy::Catalog catalog;
  std::chrono::milliseconds ready_timeout = std::chrono::minutes(20);
  std::chrono::milliseconds ready_poll = std::chrono::milliseconds(50);
};

struct ApiOptions {
  UidRange uid_range;
  std::string token;  // empty: TCP listener refuses everything
  std::string data_dir;
  std::string provider;
  std::string version = kVersion;
  DeploymentOptions deployments;
};

struct ApiRoute;  // api.cc
class Deployments;  // api/deployments.h
class Storage;      // api/storage.h

class Api {
 public:
  Api(StateStore& store, const Clock& clock, ApiHooks& hooks, ApiOptions options);
  ~Api();
  Response Handle(const Request& request);
  // Removes the deleted file shares whose retention ended (their data
  // first); the errors, each naming the share. The server calls it now and
  // then.
  std::vector<Status> PurgeExpiredShares();

 private:
  friend struct ApiRoute;
  friend class Deployments;  // makes pools with the code below
  friend class Storage;
  // A request as a route sees it: the request, who makes it (on an
  // agent's channel: its instance's id), and the path's {} segments.
  struct Call {
    const Request& request;
    const std::string& actor;
    std::vector<std::string> args;
  };

  // The routes: tables of method, path pattern and handler (api.cc).
  Result<Response> Route(const Request& request, const std::string& actor);
  Result<Response> RouteAgent(const Request& request, const InstanceId& id);
  Result<Response> Dispatch(const ApiRoute* routes, size_t count, const Request& request,
                            const std::string& actor, const std::string& not_found);
  // The agents' channel: the instance's configuration (users, host key),
  // its report, a user's current keys (sshd's AuthorizedKeysCommand).
  Result<Response> AgentConfigFor(const InstanceId& id);
  Result<Response> AgentReport(const InstanceId& id, const Request& request);
  // A report's notebook exits: one event each ("notebook.oom" or
  // "notebook.exit"), in one batch, then NotebookExited for each. An exit of
  // a user the store does not know is InvalidArgument naming it, and
  // nothing is written.
  Status RecordNotebookExits(const InstanceId& id, const InstanceReport& report);
  Result<Response> AgentKeys(const UserName& user);
  Result<Response> AgentExtensions(const InstanceId& id);

  Result<Response> GetStatus();
  // Records a `server.stop` event and has the server stop as on SIGTERM
  // (the instances keep running). 202 {"stopping": true, "pid": N}.
  Result<Response> StopServer(const Request& request, const std::string& actor);
  Result<Response> GetGateway();
  Result<Response> UpgradeGateway(const Request& request, const std::string& actor);
  Result<Response> GetMetrics();
  Result<Response> CreatePool(const Request& request, const std::string& actor);
  Result<Response> GetPool(const PoolName& name);
  Result<Response> ListPools();
  Result<Response> ScalePool(const PoolName& name, const Request& request, const std::string& actor);
  // A pool spec from its JSON as a request gives it: parsed, the admin's
  // name, key and password checked, the key normalised. The password
  // stays in plain text: HashAdminPassword before the spec goes anywhere.
  Result<PoolSpec> ReadPoolSpec(const Json& json);
  // Replaces admin.password with its hash (yescrypt) and wipes it; nothing
  // without one.
  static Status HashAdminPassword(AdminUserSpec& admin);
  // Creates the pool (and its admin user) after the host's checks;
  // `artifacts` are the files a deployment sent for relative fileUris.
  Result<Pool> CreatePoolFromSpec(const PoolSpec& spec, const std::string& actor,
                                  const ExtensionArtifacts& artifacts = {});
  // Marks the pool Deleting (reconcile then removes its instances);
  // nothing if it is already.
  Result<Pool> MarkPoolDeleting(const PoolName& name, const std::string& actor);
  // Sets the pool's instanceCount and/or standbyCount (nullopt: kept);
  // `force` removes what scale-in takes at once.
  Result<Pool> ScalePoolTo(const PoolName& name, std::optional<int64_t> count, std::optional<int64_t> standby,
                           bool force, const std::string& actor);
  // Replaces the pool's network security groups and the address space
  // their VirtualNetwork tag holds: the gateway applies them to new
  // connections at once, the reconcile loop to its bridge.
  Result<Pool> SetPoolSecurity(const PoolName& name, const NetworkSecurity& security,
                               const std::vector<Ipv4Subnet>& address_space, const std::string& actor);
  // What an autoscale run decided (autoscale/scaler.h): the pool's count
  // becomes `target` and its autoscale memory `last_action` and `cooldown`,
  // with an event `autoscale.scale` whose detail is `summary`. Aborted when
  // the count is no longer `seen` (someone scaled it meanwhile: the next
  // run decides again).
  Result<Pool> ApplyAutoscale(const PoolName& name, int64_t seen, int64_t target, std::optional<TimePoint> last_action,
                              int64_t cooldown_seconds, const std::string& summary);
  // Keeps `setting` with the pool (nullopt: removes it).
  Result<Pool> SetPoolAutoscale(const PoolName& name, const std::optional<AutoscaleSetting>& setting,
                                const std::string& actor);
  // Applies `change` to the pool's spec and writes it with an event `kind`
  // whose detail `change` returns; nothing (and no event) when the spec is
  // the same after it. Retries when the reconcile loop wrote meanwhile.
  Result<Pool> UpdatePoolSpec(const PoolName& name, const std::string& kind,
                              const std::function<std::string(PoolSpec&)>& change, const std::string& actor);
  Result<Response> DeletePool(const PoolName& name, const std::string& actor);
  Result<Response> ListInstances(const Request& request);
  // Sets or clears the instance's draining flag (idempotent: no write and no
  // event when it already has that value).
  Result<Response> SetDraining(const InstanceId& id, bool draining, const Request& request,
                               const std::string& actor);
  Result<Response> CreateUser(const Request& request, const std::string& actor);
  Result<Response> GetUser(const UserName& name);
  Result<Response> ListUsers();
  Result<Response> DeleteUser(const UserName& name, const std::string& actor);
  Result<Response> AddKey(const UserName& name, const Request& request, const std::string& actor);
  Result<Response> RemoveKey(const UserName& name, const std::string& fingerprint, const std::string& actor);
  Result<Response> SetPassword(const UserName& name, const Request& request, const std::string& actor);
  Result<Response> ListEvents(const Request& request);
  Result<Response> ListSessions();
  // 404 if the user has no session (in ?pool=); 400 if they have several
  // and no ?pool= picks one.
  Result<Response> StopSession(const std::string& user, const Request& request, const std::string& actor);

  Result<Json> PoolJson(const Pool& pool);
  // `pool`: the instance's pool, for its NAT ports; nullptr if it is gone.
  Json InstanceJson(const Instance& instance, const Pool* pool);
  // What `pool scale --force` to `count` removes at once: the instances
  // scale-in is draining, and the excess live ones in ScaleInOrder.
  std::vector<InstanceId> ForcedScaleIn(const std::vector<Instance>& instances, int64_t count);
  Event MakeEvent(const std::string& actor, std::string action, std::string subject, std::string detail);
  // Adds the ops that record a change of the user set (agents re-render):
  // the users' next version, which it returns.
  Result<int64_t> BumpUsersVersion(WriteBatch& batch);
  // Commits `batch`, a change of the users, under `lock` (write_mu_, held;
  // released here), then has every running instance apply it
  // (ApiHooks::PushUsersChange) before answering `out`, with
  // "notAppliedOn" naming the instances that did not confirm.
  Result<Json> CommitUsersChange(std::unique_lock<std::mutex>& lock, WriteBatch& batch, Json out);
  // CommitUsersChange of an update of `u`, with its event (`action`,
  // `detail`); answers `status` and the user.
  Result<Response> CommitUserUpdate(std::unique_lock<std::mutex>& lock, const User& u, const std::string& actor,
                                    const std::string& action, const std::string& detail, int status);

  StateStore& store_;
  const Clock& clock_;
  ApiHooks& hooks_;
  ApiOptions options_;
  TimePoint started_at_;
  // Serialises read-modify-write of users and pools (uid allocation, key
  // lists); the store's preconditions still guard against other writers.
  std::mutex write_mu_;
  // Storage accounts and shares (deployments use them).
  std::unique_ptr<Storage> storage_;
  // Resource groups and deployments; declared last, so its threads end
  // before the rest of the Api goes.
  std::unique_ptr<Deployments> deployments_;
};

// The one mapping from Status to an HTTP error response.
Response ErrorResponse(const Status& status);
int HttpStatusFor(StatusCode code);

}  // namespace dspool
