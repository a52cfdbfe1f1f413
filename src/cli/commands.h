// The client commands of `dspool`: one function per verb, each sending its
// requests through an ApiClient (docs/api.md) and printing the answer as a
// table for people or as the API's JSON for scripts.
//
// A command returns OK after printing its result to `out`, or the Status to
// report (the caller prints "dspool: <message>" and exits 1); it prints
// nothing to `out` then, unless part of the work was done (a key file with
// several keys, `events --follow`). Warnings and progress go to `err`.
// Commands never read the environment or the terminal themselves: cli.cc
// resolves flags, environment and terminal into a CommandContext, so tests
// run commands against any server and streams.
//
// Not thread-safe: a command uses its context's streams.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <istream>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/status.h"
#include "cli/api_client.h"
#include "cli/output.h"

namespace dspool {

struct CommandContext {
  const ApiClient& api;
  OutputFormat output = OutputFormat::kTable;
  std::istream& in;    // passwords given with --password-stdin
  std::ostream& out;   // results
  const Clock& clock;  // "now", for ages
  // Waits `delay` between polls of `events --follow`; returns false to stop
  // following (the real one sleeps and returns true: Ctrl-C ends the
  // process).
  std::function<bool(std::chrono::milliseconds delay)> wait;
  std::ostream& err;   // warnings and progress
  // -o was given (az's verbs print JSON unless it says otherwise).
  bool output_given = false;
  // Asks on the terminal and returns the line typed (without echo if
  // `secret`); nullopt on end of input. Empty when there is no terminal.
  std::function<std::optional<std::string>(const std::string& question, bool secret)> prompt;
};

// A client command, run once flags are parsed and the context is built.
using ClientAction = std::function<Status(const CommandContext&)>;

// ---- pools and instances ----

// POST /v1/pools with the JSON spec in the file at `spec_path` (errors name
// the file, and line and column for bad JSON). With
// `admin_password_from_stdin`, one line of `in` becomes adminUser.password.
Status PoolCreate(const CommandContext& ctx, const std::string& spec_path, bool admin_password_from_stdin);
Status PoolList(const CommandContext& ctx);
// The pool's details (with its frontends, if it has a loadBalancer), then a
// table of its instances as InstanceList prints them.
Status PoolShow(const CommandContext& ctx, const std::string& name);
// Sets the pool's instanceCount. Without `force`, what scale-in removes is
// drained and deleted when its sessions end; with it, at once.
// At least one of `count` and `standby`.
Status PoolScale(const CommandContext& ctx, const std::string& name, std::optional<int64_t> count,
                 std::optional<int64_t> standby, bool force);
// Returns once the server has accepted the deletion; it proceeds in the
// background.
Status PoolDelete(const CommandContext& ctx, const std::string& name);
// Every instance, or those of `pool` if not empty. Columns HEALTH and CONNS
// (the gateway's view; "(draining)", "(scale-in)") and NAT (ports) appear
// when some instance has them.
Status InstanceList(const CommandContext& ctx, const std::string& pool);
// Sets (`draining`) or clears the instance's draining flag: the gateway
// sends it no new connections, open ones go on, and scale-in removes it
// first. Idempotent.
Status InstanceDrain(const CommandContext& ctx, const std::string& id, bool draining);

// ---- server status and events ----

Status ShowStatus(const CommandContext& ctx);
// Asks the server to stop (POST /v1/server/stop; with `gateway`, the
// gateway process first) and returns once its API no longer answers
// (polling /v1/status through ctx.wait, for at most a minute:
// DeadlineExceeded after that).
Status ServerStop(const CommandContext& ctx, bool gateway);

// The gateway process (GET /v1/gateway), and handing it over to a new
// process of `binary` (POST /v1/gateway/upgrade; empty: the server's own).
Status GatewayShow(const CommandContext& ctx);
Status GatewayUpgrade(const CommandContext& ctx, const std::string& binary);

struct EventsOptions {
  std::optional<int64_t> after;  // only events with a larger seq
  std::optional<int64_t> limit;  // at most this many per request (server default 100)
  // Keep polling every second for events after the last one shown, until
  // ctx.wait says stop. The table's header is printed once; -o json prints
  // one event per line (JSON Lines) instead of whole answers.
  bool follow = false;
};
Status ListEvents(const CommandContext& ctx, const EventsOptions& options);

// ---- users ----

struct UserAddOptions {
  std::string name;
  std::vector<std::string> ssh_key_files;  // .pub or authorized_keys files
  bool password_from_stdin = false;
  bool admin = false;
  bool restore = false;  // a deleted user: their old uid, so their files are theirs again
  bool new_uid = false;  // a deleted user's name for someone new (a new uid)
};
Status UserAdd(const CommandContext& ctx, const UserAddOptions& options);
Status UserList(const CommandContext& ctx);
Status UserShow(const CommandContext& ctx, const std::string& name);
// The user's files on the shares are kept; the output says so.
Status UserDelete(const CommandContext& ctx, const std::string& name);
// Adds every key in the file (one request per key).
Status UserKeyAdd(const CommandContext& ctx, const std::string& name, const std::string& key_file);
// `key` is a fingerprint as `user show` prints it ("SHA256:..."), or a
// public key file: its keys are matched against the user's to find their
// fingerprints.
Status UserKeyRemove(const CommandContext& ctx, const std::string& name, const std::string& key);
// The new password is one line of ctx.in.
Status UserPasswd(const CommandContext& ctx, const std::string& name);

// ---- notebook sessions ----

// The users' notebook servers: POOL USER INSTANCE STATE STARTED
// LAST-ACTIVITY (gateway traffic) BUSY ("2 kernels, 1 terminal" or "-").
Status SessionList(const CommandContext& ctx);
// Stops `user`'s notebook server (in `pool`, if not empty; else in the one
// pool where they have one) and prints one line; their files stay.
Status SessionStop(const CommandContext& ctx, const std::string& user, const std::string& pool);

// ---- resource groups and template deployments (az's verbs) ----

// Print az's JSON (keys sorted, as az prints them) unless -o table or tsv.
Status GroupCreate(const CommandContext& ctx, const std::string& name, const std::string& location,
                   const std::vector<std::string>& tags);  // "k=v"
Status GroupList(const CommandContext& ctx);
Status GroupShow(const CommandContext& ctx, const std::string& name);
// Prints "true" or "false".
Status GroupExists(const CommandContext& ctx, const std::string& name);
// Deletes every resource of the group (its pools), after asking unless `yes`.
Status GroupDelete(const CommandContext& ctx, const std::string& name, bool yes);

struct DeploymentArgs {
  std::string group;
  std::string name;           // empty: the template file's name without its extension
  std::string template_file;  // one of these two
  std::string template_uri;   // http(s): or file: URL
  std::vector<std::string> parameters;  // -p tokens, in order: @FILE, K=V, K=@FILE, inline JSON
  std::string mode = "Incremental";
  bool no_wait = false;
  bool what_if = false;               // show the changes only
  bool confirm_with_what_if = false;  // show them, ask, then deploy
  // --rollback-on-error [NAME]: on failure, deploy NAME (or the group's
  // last successful deployment, without one) again.
  bool rollback_on_error = false;
  std::string rollback_to;
};
// Sends the template and parameters (missing ones asked for on a terminal,
// named all at once without one; `K=V` of a secure one warns that argv is
// visible), then follows the deployment on `err`, one line per resource as
// its state changes, and prints the final record. A failed deployment is
// the error, with az's codes.
Status DeploymentCreate(const CommandContext& ctx, const DeploymentArgs& args);
Status DeploymentValidate(const CommandContext& ctx, const DeploymentArgs& args);
Status DeploymentWhatIf(const CommandContext& ctx, const DeploymentArgs& args);
Status DeploymentShow(const CommandContext& ctx, const std::string& group, const std::string& name);
Status DeploymentList(const CommandContext& ctx, const std::string& group);
Status DeploymentDelete(const CommandContext& ctx, const std::string& group, const std::string& name);
Status DeploymentCancel(const CommandContext& ctx, const std::string& group, const std::string& name);
Status DeploymentOperationList(const CommandContext& ctx, const std::string& group, const std::string& name);

// ---- storage accounts and file shares (az's verbs) ----

struct StorageArgs {
  std::string account;  // -n (account verbs), --account-name, --storage-account
  std::string group;    // empty: the account's, found by its name
  std::string location, sku = "Standard_LRS", kind = "StorageV2";
  std::vector<std::string> tags, metadata;  // "k=v"
  std::string account_key;  // data-plane verbs: checked against the account's keys
  std::string key;          // keys renew: primary or secondary
  std::string share;
  std::optional<int64_t> quota;  // GiB
  std::string protocol;          // SMB or NFS
  std::string deleted_version;
  bool include_deleted = false;
  bool fail_on_exist = false, fail_not_exist = false;
  bool yes = false;
};
Status StorageAccountCreate(const CommandContext& ctx, const StorageArgs& args);
Status StorageAccountList(const CommandContext& ctx, const StorageArgs& args);
Status StorageAccountShow(const CommandContext& ctx, const StorageArgs& args);
// Asks first unless `yes`; the shares are kept, soft-deleted.
Status StorageAccountDelete(const CommandContext& ctx, const StorageArgs& args);
Status StorageAccountKeysList(const CommandContext& ctx, const StorageArgs& args);
Status StorageAccountKeysRenew(const CommandContext& ctx, const StorageArgs& args);
// `management`: share-rm's form (the share's JSON; delete asks first);
// else the data plane's ({"created": true}, {"deleted": true}).
Status StorageShareCreate(const CommandContext& ctx, const StorageArgs& args, bool management);
Status StorageShareList(const CommandContext& ctx, const StorageArgs& args);
Status StorageShareShow(const CommandContext& ctx, const StorageArgs& args);
Status StorageShareExists(const CommandContext& ctx, const StorageArgs& args);
Status StorageShareDelete(const CommandContext& ctx, const StorageArgs& args, bool management);
Status StorageShareRestore(const CommandContext& ctx, const StorageArgs& args);

}  // namespace dspool
