#include "cli/cli.h"

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <iostream>
#include <thread>

#include <termios.h>
#include <unistd.h>

#include "agent/agent.h"
#include "agent/share_mounts.h"
#include "model/jupyter.h"
#include "base/log.h"
#include "base/version.h"
#include "cli/api_client.h"
#include "cli/arm_cli.h"
#include "cli/commands.h"
#include "cli/options.h"
#include "net/socket.h"
#include "server/gateway_process.h"
#include "server/server.h"

namespace dspool {
namespace {

constexpr std::chrono::seconds kRequestTimeout{30};

// Flags every client command takes (before or after its name).
struct ClientFlags {
  std::string server;
  std::string data_dir;
  std::string server_fingerprint;
  std::string server_ca_file;
  std::string token_file;
  std::string output = "table";
  bool output_given = false;
};

// The message may come from the server: keep it one line.
int Fail(std::ostream& err, const Status& status) {
  std::string message = status.message().empty() ? status.ToString() : status.message();
  for (char& c : message) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  err << "dspool: " << message << "\n";
  return 1;
}

// A CLI11 validator from one of options.h's checks; CLI11 prefixes the
// option's name, so the check's own prefix ("--listen: ") is dropped. An
// empty `description` keeps --help's type name as set by type_name().
CLI::Validator CheckWith(std::function<Status(const std::string&)> check, std::string description) {
  return CLI::Validator(
      [check = std::move(check)](std::string& value) -> std::string {
        Status status = check(value);
        if (status.ok()) return "";
        const std::string& m = status.message();
        size_t colon = m.find(": ");
        return m.rfind("--", 0) == 0 && colon != std::string::npos ? m.substr(colon + 2) : m;
      },
      std::move(description));
}

struct ServerFlags {
  std::string data_dir = std::string(kDefaultDataDir);
  std::string listen;
  std::string tls_cert;
  std::string tls_key;
  bool no_tls = false;
  std::string token_file;
  std::string uid_range = "20000-59999";
  std::string log_level = "info";
  int gateway_threads = 0;
  std::string gateway_congestion_control = "cubic";
  int64_t hold_timeout_seconds = 120;
  int64_t hold_max = 1024;
  int64_t first_bytes_timeout_seconds = 10;
  int64_t pending_per_address = 256;
  int64_t cull_check_seconds = 30;
  std::string jupyter_program;
  std::string front_address = "0.0.0.0";
  std::string dns_domain = "dspool.internal";
  std::string storage_root = "/srv/dspool/storage";
  std::string catalog;
  std::vector<std::string> mirrors;
};

// The gateway's options, on `dspool server` (which starts the gateway
// process with them) and on `dspool gateway`.
void AddGatewayOptions(CLI::App* app, ServerFlags& server_flags) {
  app->add_option("--gateway-threads", server_flags.gateway_threads,
                     "Threads relaying the pools' connections, and as many serving their Jupyter addresses (0: one per CPU, at most 4)")
      ->type_name("N")
      ->capture_default_str()
      ->check(CLI::Range(0, 64));
  app->add_option("--gateway-congestion-control", server_flags.gateway_congestion_control,
                     "TCP congestion control of the gateway's connections to instances, which sit on the host's "
                     "own bridge ('default': the host's, which may be BBR, slow there)")
      ->type_name("NAME")
      ->capture_default_str()
      ->check(CheckWith(
          [](const std::string& v) { return v == "default" ? Status::Ok() : CheckCongestionControl(v); }, ""));
  app->add_option("--hold-timeout", server_flags.hold_timeout_seconds,
                     "Seconds a connection waits for an instance of a pool at zero before it is closed")
      ->type_name("SECONDS")
      ->capture_default_str()
      ->check(CLI::Range(1, 3600));
  app->add_option("--hold-max", server_flags.hold_max,
                     "Connections that may wait for an instance at once (more are closed)")
      ->type_name("N")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000000));
  app->add_option("--first-bytes-timeout", server_flags.first_bytes_timeout_seconds,
                     "Seconds a connection to an SSH port (backend port 22) may stay silent before it is closed; "
                     "the gateway connects to an instance only once the client has spoken")
      ->type_name("SECONDS")
      ->capture_default_str()
      ->check(CLI::Range(1, 300));
  app->add_option("--pending-per-address", server_flags.pending_per_address,
                     "Connections one client address may have accepted and not yet relayed (silent, connecting, "
                     "waiting); one more closes its oldest silent one")
      ->type_name("N")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000000));
}

// The gateway's part of `flags`.
GatewayOptions GatewayOptionsFrom(const ServerFlags& flags) {
  GatewayOptions g;
  g.relay_threads = flags.gateway_threads;
  g.backend_congestion_control =
      flags.gateway_congestion_control == "default" ? std::string() : flags.gateway_congestion_control;
  g.hold_timeout = std::chrono::seconds(flags.hold_timeout_seconds);
  g.max_held = static_cast<size_t>(flags.hold_max);
  g.first_bytes_timeout = std::chrono::seconds(flags.first_bytes_timeout_seconds);
  g.max_pending_per_address = static_cast<size_t>(flags.pending_per_address);
  return g;
}

int RunServerCommand(const ServerFlags& flags, std::ostream& err) {
  ServerOptions options;
  options.data_dir = flags.data_dir;
  options.listen_tcp = flags.listen;
  options.tls_certificate_file = flags.tls_cert;
  options.tls_key_file = flags.tls_key;
  options.no_tls = flags.no_tls;
  options.token_file = flags.token_file;
  Result<UidRange> range = ParseUidRange(flags.uid_range);
  if (!range.ok()) return Fail(err, range.status());  // CLI11 checked it already
  options.uid_first = range->first;
  options.uid_last = range->last;
  if (!ParseLogLevel(flags.log_level, &options.log_level)) {
    return Fail(err, InvalidArgument("--log-level: '" + flags.log_level + "' is not debug, info, warning or error"));
  }
  options.gateway = GatewayOptionsFrom(flags);
  options.cull_check_interval = std::chrono::seconds(flags.cull_check_seconds);
  options.jupyter_program = flags.jupyter_program;
  options.deploy_host = {.front_address = flags.front_address, .dns_domain = flags.dns_domain};
  options.catalog_file = flags.catalog;
  options.storage_root = flags.storage_root;
  for (const std::string& text : flags.mirrors) {
    auto mirror = ParseMirror(text);
    if (!mirror.ok()) return Fail(err, mirror.status());
    options.mirrors.push_back(*mirror);
  }
  return RunServer(options);
}

int RunGatewayCommand(const ServerFlags& flags, bool transparent_connect, int status_fd, int takeover_fd,
                      std::ostream& err) {
  GatewayProcessOptions options;
  options.data_dir = flags.data_dir;
  if (!ParseLogLevel(flags.log_level, &options.log_level)) {
    return Fail(err, InvalidArgument("--log-level: '" + flags.log_level + "' is not debug, info, warning or error"));
  }
  options.gateway = GatewayOptionsFrom(flags);
  options.gateway.transparent_connect = transparent_connect;
  options.status_fd = status_fd;
  options.takeover_fd = takeover_fd;
  return RunGateway(options);
}

Status RunClientAction(const ClientAction& action, const ClientFlags& flags, const CliEnvironment& env) {
  DSP_ASSIGN_OR_RETURN(Endpoint endpoint, ResolveEndpoint(flags.server, flags.data_dir, env.getenv("DSPOOL_SERVER")));
  DSP_RETURN_IF_ERROR(ApplyServerVerification({flags.server_fingerprint, flags.server_ca_file,
                                               env.getenv("DSPOOL_SERVER_FINGERPRINT"),
                                               env.getenv("DSPOOL_SERVER_CA_FILE")},
                                              endpoint));
  std::string token;
  if (!flags.token_file.empty()) {
    DSP_ASSIGN_OR_RETURN(token, ReadTokenFile(flags.token_file, "--token-file"));
  } else if (std::optional<std::string> path = env.getenv("DSPOOL_TOKEN_FILE"); path && !path->empty()) {
    DSP_ASSIGN_OR_RETURN(token, ReadTokenFile(*path, "DSPOOL_TOKEN_FILE"));
  }
  ApiClient api(std::move(endpoint), std::move(token), kRequestTimeout);
  const OutputFormat format = flags.output == "json"  ? OutputFormat::kJson
                              : flags.output == "tsv" ? OutputFormat::kTsv
                                                      : OutputFormat::kTable;
  CommandContext ctx{api, format, env.in, env.out, env.clock, env.wait, env.err, flags.output_given, env.prompt};
  return action(ctx);
}

}  // namespace

int RunCli(const std::vector<std::string>& args, const CliEnvironment& env) {
  CLI::App app{"dspool: one shared pool of data-science machines behind one address.", "dspool"};
  app.set_version_flag("--version", std::string("dspool ") + kVersion);
  app.require_subcommand(1);
  app.fallthrough();  // client flags may follow the command's name

  ClientFlags client;
  CLI::Option* server_opt = app.add_option("--server", client.server,
                                           "API endpoint: unix:PATH, tls:HOST:PORT or tcp:HOST:PORT (loopback, "
                                           "no TLS) (default: $DSPOOL_SERVER, else unix:/var/lib/dspool/api.sock)")
                                ->type_name("ENDPOINT");
  CLI::Option* fingerprint_opt =
      app.add_option("--server-fingerprint", client.server_fingerprint,
                     "A tls: server's certificate, pinned by the SHA-256 fingerprint `dspool server` logs at start "
                     "(default: $DSPOOL_SERVER_FINGERPRINT)")
          ->type_name("SHA256");
  CLI::Option* ca_file_opt =
      app.add_option("--server-ca-file", client.server_ca_file,
                     "Trust a tls: server whose certificate chains to a CA in FILE and names its host "
                     "(default: $DSPOOL_SERVER_CA_FILE, else the system's CAs)")
          ->type_name("FILE");
  fingerprint_opt->excludes(ca_file_opt);
  CLI::Option* data_dir_opt =
      app.add_option("--data-dir", client.data_dir, "The server's data directory; short for --server unix:DIR/api.sock")
          ->type_name("DIR");
  server_opt->excludes(data_dir_opt);
  CLI::Option* token_opt = app.add_option("--token-file", client.token_file,
                                          "File holding the API's bearer token (default: $DSPOOL_TOKEN_FILE)")
                               ->type_name("FILE");
  CLI::Option* output_opt =
      app.add_option("-o,--output", client.output,
                     "Output format: table or json (group and deployment commands: json by default, as az; "
                     "tsv too)")
          ->type_name("FORMAT")
          ->check(CLI::IsMember({"table", "json", "tsv"}));

  ClientAction action;  // set by the client command parsed

  // ---- server ----
  ServerFlags server_flags;
  CLI::App* server = app.add_subcommand("server", "Run the control plane (as root) until SIGTERM or SIGINT");
  server->fallthrough(false);
  server->add_option("--data-dir", server_flags.data_dir, "State, sockets and pool files")
      ->type_name("DIR")
      ->capture_default_str();
  server->add_option("--listen", server_flags.listen,
                     "Also serve the API on ADDRESS:PORT over TLS, with the bearer token (needs --token-file)")
      ->type_name("ADDRESS:PORT")
      ->check(CheckWith([](const std::string& v) { return ValidateListenAddress(v); }, ""));
  CLI::Option* tls_cert_opt =
      server->add_option("--tls-cert", server_flags.tls_cert,
                         "--listen's certificate chain (PEM); without --tls-cert and --tls-key, a self-signed pair "
                         "made once as DIR/api.crt and DIR/api.key")
          ->type_name("FILE");
  CLI::Option* tls_key_opt =
      server->add_option("--tls-key", server_flags.tls_key, "--listen's private key (PEM; root's, mode 0600)")
          ->type_name("FILE");
  server->add_flag("--no-tls", server_flags.no_tls,
                   "Serve --listen as plain TCP: for a loopback address only (the token would cross the network "
                   "in clear)")
      ->excludes(tls_cert_opt)
      ->excludes(tls_key_opt);
  server->add_option("--token-file", server_flags.token_file,
                     "File holding the bearer token for --listen (root's, mode 0600)")
      ->type_name("FILE");
  server->add_option("--uid-range", server_flags.uid_range, "uids given to pool users, FIRST-LAST")
      ->type_name("FIRST-LAST")
      ->capture_default_str()
      ->check(CheckWith([](const std::string& v) { return ParseUidRange(v).status(); }, ""));
  server->add_option("--log-level", server_flags.log_level, "debug, info, warning or error")
      ->type_name("LEVEL")
      ->capture_default_str()
      ->check(CLI::IsMember({"debug", "info", "warning", "error"}));
  AddGatewayOptions(server, server_flags);
  server->add_option("--cull-check-seconds", server_flags.cull_check_seconds,
                     "How often idle notebook servers are looked for (each pool's jupyter.cullIdleMinutes decides)")
      ->type_name("SECONDS")
      ->capture_default_str()
      ->check(CLI::Range(1, 3600));
  server->add_option("--front-address", server_flags.front_address,
                     "Template deployments: the host address a public IP becomes (its frontends listen there)")
      ->type_name("ADDRESS")
      ->capture_default_str();
  server->add_option("--dns-domain", server_flags.dns_domain,
                     "Template deployments: a public IP's domainNameLabel L is L.DOMAIN")
      ->type_name("DOMAIN")
      ->capture_default_str();
  server->add_option("--storage-root", server_flags.storage_root,
                     "Storage accounts' file shares live under DIR/ACCOUNT (made at start, root's, 0755)")
      ->type_name("DIR")
      ->capture_default_str();
  server->add_option("--mirror", server_flags.mirrors,
                     "Extensions' fileUris that start with the URL PREFIX are fetched from TARGET instead (an "
                     "http(s) URL or a directory), the rest of the URI appended; repeatable (docs/extensions.md)")
      ->type_name("PREFIX=TARGET");
  server->add_option("--catalog", server_flags.catalog,
                     "Template deployments: a JSON file of VM sizes and images to add to the built-in ones "
                     "(docs/templates.md)")
      ->type_name("FILE");
  CLI::App* server_stop = server->add_subcommand(
      "stop", "Stop the server running on --data-dir (the instances and users' notebook servers keep running)");
  bool stop_gateway = false;
  server_stop->add_flag("--gateway", stop_gateway,
                        "Stop the gateway process too: the SSH sessions and notebook connections it relays end "
                        "(without it, the gateway keeps serving them and the next server takes it up)");
  server_stop->add_option("--data-dir", server_flags.data_dir, "The server's data directory")
      ->type_name("DIR")
      ->capture_default_str();
  server->add_option("--jupyter-program", server_flags.jupyter_program,
                     "Run this program in the instances as each user's notebook server instead of "
                     "/usr/bin/jupyter-notebook, with the same Notebook 6.4 arguments (an absolute path "
                     "there; for benchmarks and tests)")
      ->type_name("PATH")
      ->check(CheckWith([](const std::string& v) { return ValidateNotebookProgram(v); }, ""));

  // ---- gateway ----
  ServerFlags gateway_flags;
  bool transparent_connect = false;
  int status_fd = -1;
  CLI::App* gateway = app.add_subcommand(
      "gateway", "Run the gateway of --data-dir (as root) until SIGTERM or SIGINT; `dspool server` starts it "
                 "when none runs, and it outlives the server");
  gateway->fallthrough(false);
  gateway->add_option("--data-dir", gateway_flags.data_dir, "The server's data directory")
      ->type_name("DIR")
      ->capture_default_str();
  gateway->add_option("--log-level", gateway_flags.log_level, "debug, info, warning or error")
      ->type_name("LEVEL")
      ->capture_default_str()
      ->check(CLI::IsMember({"debug", "info", "warning", "error"}));
  AddGatewayOptions(gateway, gateway_flags);
  gateway->add_flag("--transparent-connect", transparent_connect,
                    "Connect to instances from the client's address (the host's transparent routing must be in "
                    "place: the server decides)");
  int takeover_fd = -1;
  gateway->add_option("--takeover-fd", takeover_fd,
                      "Take over from the gateway that started this one (an upgrade), which hands its sockets "
                      "over on descriptor N")
      ->type_name("N")
      ->check(CLI::Range(3, 1 << 20));
  CLI::App* gateway_show = gateway->add_subcommand("show", "Show the gateway process serving the pools");
  gateway_show->callback([&] { action = GatewayShow; });
  std::string upgrade_binary;
  CLI::App* gateway_upgrade = gateway->add_subcommand(
      "upgrade", "Hand the gateway over to a new process of BINARY: its listening sockets, notebook sessions, "
                 "unanswered starts and idle relayed connections go to the new one and no port ever closes; the "
                 "old one keeps the connections with bytes on their way and Jupyter's TLS connections, and exits "
                 "when the last has ended");
  gateway_upgrade->add_option("--binary", upgrade_binary, "The dspool binary to run (default: the server's own)")
      ->type_name("PATH");
  gateway_upgrade->callback(
      [&] { action = [&](const CommandContext& ctx) { return GatewayUpgrade(ctx, upgrade_binary); }; });
  gateway->add_option("--status-fd", status_fd, "Report \"ok\" or the error on descriptor N once serving, then close it")
      ->type_name("N")
      ->check(CLI::Range(3, 1 << 20));

  // ---- agent ----
  AgentOptions agent_options;
  std::string authorized_user;
  CLI::App* agent = app.add_subcommand("agent", "Run the agent of an instance (its first process)");
  agent->fallthrough(false);
  agent->add_option("--socket", agent_options.socket, "The instance's channel to the server")
      ->type_name("PATH")
      ->capture_default_str();
  CLI::App* authorized_keys =
      agent->add_subcommand("authorized-keys", "Print USER's authorized_keys lines (sshd's AuthorizedKeysCommand)");
  authorized_keys->add_option("USER", authorized_user, "Login name")->required();
  authorized_keys->add_option("--socket", agent_options.socket, "The instance's channel to the server")
      ->type_name("PATH")
      ->capture_default_str();

  AddArmCommands(app, action);

  AddStorageCommands(app, action);

  // ---- pool ----
  CLI::App* pool = app.add_subcommand("pool", "Create, inspect, scale and delete pools");
  pool->require_subcommand(1);
  std::string pool_name, spec_path;
  bool admin_password_stdin = false;
  std::optional<int64_t> count, standby;
  bool force = false;

  CLI::App* pool_create = pool->add_subcommand("create", "Create a pool from a JSON spec");
  pool_create->add_option("-f,--file", spec_path, "The pool spec (JSON)")->type_name("SPEC.json")->required();
  pool_create->add_flag("--admin-password-stdin", admin_password_stdin,
                        "Read the admin user's password from the first line of standard input");
  pool_create->callback(
      [&] { action = [&](const CommandContext& ctx) { return PoolCreate(ctx, spec_path, admin_password_stdin); }; });

  pool->add_subcommand("list", "List pools")->callback([&] { action = PoolList; });

  CLI::App* pool_show = pool->add_subcommand("show", "Show a pool and its instances");
  pool_show->add_option("NAME", pool_name, "Pool name")->required();
  pool_show->callback([&] { action = [&](const CommandContext& ctx) { return PoolShow(ctx, pool_name); }; });

  CLI::App* pool_scale = pool->add_subcommand("scale", "Set a pool's number of instances");
  pool_scale->add_option("NAME", pool_name, "Pool name")->required();
  pool_scale->add_option("--count", count, "The number of instances wanted")->type_name("N");
  pool_scale->add_option("--standby", standby,
                         "The number of standbys wanted: instances kept booted and frozen beyond --count, which a "
                         "scale-out or a waking connection takes first (serving in milliseconds)")
      ->type_name("N");
  pool_scale->add_flag("--force", force,
                       "Delete the instances scale-in removes now, with their sessions (default: each is deleted "
                       "when its last SSH session and notebook server end, or after the pool's drainTimeoutMinutes)");
  pool_scale->callback([&] {
    if (!count && !standby) throw CLI::RequiredError("--count or --standby");
    action = [&](const CommandContext& ctx) { return PoolScale(ctx, pool_name, count, standby, force); };
  });

  CLI::App* pool_delete = pool->add_subcommand("delete", "Delete a pool (in the background; the share is kept)");
  pool_delete->add_option("NAME", pool_name, "Pool name")->required();
  pool_delete->callback([&] { action = [&](const CommandContext& ctx) { return PoolDelete(ctx, pool_name); }; });

  // ---- instance ----
  CLI::App* instance = app.add_subcommand("instance", "Inspect and drain instances");
  instance->require_subcommand(1);
  std::string instance_pool, instance_id;
  CLI::App* instance_list = instance->add_subcommand("list", "List instances, of every pool or one");
  instance_list->add_option("--pool", instance_pool, "Only this pool's instances")->type_name("NAME");
  instance_list->callback(
      [&] { action = [&](const CommandContext& ctx) { return InstanceList(ctx, instance_pool); }; });
  CLI::App* instance_drain = instance->add_subcommand(
      "drain", "Give an instance no new connections (open ones go on); scale-in removes it first");
  instance_drain->add_option("ID", instance_id, "Instance id, as `instance list` prints it")->required();
  instance_drain->callback(
      [&] { action = [&](const CommandContext& ctx) { return InstanceDrain(ctx, instance_id, true); }; });
  CLI::App* instance_undrain = instance->add_subcommand("undrain", "Put a drained instance back in rotation");
  instance_undrain->add_option("ID", instance_id, "Instance id, as `instance list` prints it")->required();
  instance_undrain->callback(
      [&] { action = [&](const CommandContext& ctx) { return InstanceDrain(ctx, instance_id, false); }; });

  // ---- status, events ----
  app.add_subcommand("status", "Show the server's status")->callback([&] { action = ShowStatus; });

  EventsOptions events_options;
  int64_t events_after = 0, events_limit = 0;
  CLI::App* events = app.add_subcommand("events", "Show the audit log of events, oldest first");
  CLI::Option* after_opt =
      events->add_option("--after", events_after, "Only events after this sequence number")->type_name("SEQ");
  CLI::Option* limit_opt =
      events->add_option("--limit", events_limit, "At most this many events (1-1000; default 100, the newest)")
          ->type_name("N");
  events->add_flag("-f,--follow", events_options.follow, "Keep printing new events as they come, until Ctrl-C");
  events->callback([&] {
    if (after_opt->count() > 0) events_options.after = events_after;
    if (limit_opt->count() > 0) events_options.limit = events_limit;
    action = [&](const CommandContext& ctx) { return ListEvents(ctx, events_options); };
  });

  // ---- user ----
  CLI::App* user = app.add_subcommand("user", "Manage the pool users");
  user->require_subcommand(1);
  std::string user_name, key_arg;

  UserAddOptions user_add_options;
  CLI::App* user_add = user->add_subcommand("add", "Add a user (the same uid on every instance)");
  user_add->add_option("NAME", user_add_options.name, "Login name")->required();
  user_add->add_option("--ssh-key", user_add_options.ssh_key_files, "A public key file (.pub); may be repeated")
      ->type_name("FILE")
      ->allow_extra_args(false);  // one file per --ssh-key, so NAME may follow
  user_add->add_flag("--password-stdin", user_add_options.password_from_stdin,
                     "Read a password from the first line of standard input");
  user_add->add_flag("--admin", user_add_options.admin, "Make the user an administrator");
  CLI::Option* restore = user_add->add_flag(
      "--restore", user_add_options.restore,
      "Bring back a deleted user: their old uid, so their home and notebooks on the shares are theirs again");
  user_add->add_flag("--new-uid", user_add_options.new_uid,
                     "Give a deleted user's name to someone new, with a new uid (the old files keep the old uid)")
      ->excludes(restore);
  user_add->callback([&] { action = [&](const CommandContext& ctx) { return UserAdd(ctx, user_add_options); }; });

  user->add_subcommand("list", "List users")->callback([&] { action = UserList; });

  CLI::App* user_show = user->add_subcommand("show", "Show a user and their SSH keys");
  user_show->add_option("NAME", user_name, "Login name")->required();
  user_show->callback([&] { action = [&](const CommandContext& ctx) { return UserShow(ctx, user_name); }; });

  CLI::App* user_delete = user->add_subcommand("delete", "Delete a user (their files on the shares are kept)");
  user_delete->add_option("NAME", user_name, "Login name")->required();
  user_delete->callback([&] { action = [&](const CommandContext& ctx) { return UserDelete(ctx, user_name); }; });

  CLI::App* user_passwd = user->add_subcommand("passwd", "Set a user's password");
  user_passwd->add_option("NAME", user_name, "Login name")->required();
  bool passwd_stdin = false;
  user_passwd->add_flag("--password-stdin", passwd_stdin, "Read the password from the first line of standard input")
      ->required();
  user_passwd->callback([&] { action = [&](const CommandContext& ctx) { return UserPasswd(ctx, user_name); }; });

  CLI::App* user_key = user->add_subcommand("key", "Add or remove a user's SSH keys");
  user_key->require_subcommand(1);
  CLI::App* key_add = user_key->add_subcommand("add", "Add the public key(s) in FILE");
  key_add->add_option("NAME", user_name, "Login name")->required();
  key_add->add_option("FILE", key_arg, "A public key file (.pub)")->required();
  key_add->callback([&] { action = [&](const CommandContext& ctx) { return UserKeyAdd(ctx, user_name, key_arg); }; });
  CLI::App* key_remove = user_key->add_subcommand("remove", "Remove a key, by fingerprint or by its public key file");
  key_remove->add_option("NAME", user_name, "Login name")->required();
  key_remove->add_option("KEY", key_arg, "A fingerprint as `user show` prints it (SHA256:...), or a .pub file")
      ->required();
  key_remove->callback(
      [&] { action = [&](const CommandContext& ctx) { return UserKeyRemove(ctx, user_name, key_arg); }; });

  // ---- session ----
  CLI::App* session = app.add_subcommand("session", "List and stop the users' notebook servers");
  session->require_subcommand(1);
  std::string session_user, session_pool;
  session->add_subcommand("list", "List the notebook servers of every pool")->callback([&] { action = SessionList; });
  CLI::App* session_stop =
      session->add_subcommand("stop", "Stop a user's notebook server (their files stay on the share)");
  session_stop->add_option("USER", session_user, "Login name")->required();
  session_stop->add_option("--pool", session_pool, "The pool, when the user has servers in several")
      ->type_name("NAME");
  session_stop->callback(
      [&] { action = [&](const CommandContext& ctx) { return SessionStop(ctx, session_user, session_pool); }; });

  // Set last: subcommands would inherit it.
  app.footer(
      "Client commands talk to the server at --server, else $DSPOOL_SERVER, else\n"
      "unix:/var/lib/dspool/api.sock. Over TCP (tls:HOST:PORT) they need the bearer token in\n"
      "--token-file or $DSPOOL_TOKEN_FILE, and check the server's certificate: by the\n"
      "fingerprint `dspool server` logs (--server-fingerprint), or by a CA (--server-ca-file,\n"
      "else the system's).");

  // CLI11 reads argv; keep ours alive and in its form.
  std::vector<std::string> storage;
  storage.reserve(args.size() + 1);
  storage.push_back("dspool");
  storage.insert(storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : storage) argv.push_back(a.data());
  try {
    app.parse(static_cast<int>(argv.size()), argv.data());
  } catch (const CLI::ParseError& e) {
    return app.exit(e, env.out, env.err) == 0 ? 0 : 2;
  } catch (const std::exception& e) {
    return Fail(env.err, Internal(e.what()));
  }

  // `gateway show` and `gateway upgrade` are client commands (action).
  if (server->parsed() || agent->parsed() || (gateway->parsed() && !action)) {
    for (CLI::Option* o : {server_opt, data_dir_opt, fingerprint_opt, ca_file_opt, token_opt, output_opt}) {
      if (o->count() > 0) {
        env.err << o->get_name() << " is an option of the client commands; give "
                << (server->parsed() ? "server" : "agent") << "'s options after its name\n"
                << "Run with --help for more information.\n";
        return 2;
      }
    }
    if (server_stop->parsed()) {
      ClientFlags local;
      local.data_dir = server_flags.data_dir;
      Status stopped =
          RunClientAction([&](const CommandContext& ctx) { return ServerStop(ctx, stop_gateway); }, local, env);
      return stopped.ok() ? 0 : Fail(env.err, stopped);
    }
    if (server->parsed()) return RunServerCommand(server_flags, env.err);
    if (gateway->parsed()) return RunGatewayCommand(gateway_flags, transparent_connect, status_fd, takeover_fd, env.err);
    if (authorized_keys->parsed()) return PrintAuthorizedKeys(agent_options, authorized_user);
    return RunAgent(agent_options);
  }
  if (!action) {  // CLI11 requires a leaf command, so this is a bug
    return Fail(env.err, Internal("no command was selected"));
  }
  client.output_given = output_opt->count() > 0;
  Status status;
  try {
    status = RunClientAction(action, client, env);
  } catch (const std::exception& e) {  // a bug: our code and its libraries should not throw here
    status = Internal(std::string("unexpected error: ") + e.what());
  }
  env.out.flush();
  return status.ok() ? 0 : Fail(env.err, status);
}

namespace {

// A line typed on the terminal after `question` (on stderr); without echo
// if `secret`.
std::optional<std::string> TerminalPrompt(const std::string& question, bool secret) {
  std::cerr << question << std::flush;
  termios old{};
  const bool quiet = secret && ::tcgetattr(STDIN_FILENO, &old) == 0;
  if (quiet) {
    termios silent = old;
    silent.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &silent);
  }
  std::string line;
  const bool got = static_cast<bool>(std::getline(std::cin, line));
  if (quiet) {
    ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
    std::cerr << "\n";
  }
  if (!got) return std::nullopt;
  return line;
}

}  // namespace

int RunCli(int argc, char** argv) {
  std::vector<std::string> args(argv + (argc > 0 ? 1 : 0), argv + argc);
  // In an instance, mount(8) runs this binary as /usr/sbin/mount.cifs.
  if (argc > 0) {
    const std::string program = argv[0], base = program.substr(program.rfind('/') + 1);
    for (const char* helper : kMountHelperNames) {
      if (base == helper) {
        return RunMountHelper(base, args, std::string(kInstanceAgentDir) + "/" + kControlSocketName, std::cerr);
      }
    }
  }
  RealClock clock;
  CliEnvironment env{std::cin,
                     std::cout,
                     std::cerr,
                     [](const std::string& name) -> std::optional<std::string> {
                       const char* value = std::getenv(name.c_str());
                       return value ? std::optional<std::string>(value) : std::nullopt;
                     },
                     clock,
                     [](std::chrono::milliseconds delay) {
                       std::this_thread::sleep_for(delay);
                       return true;
                     },
                     ::isatty(STDIN_FILENO) ? PromptFunction(&TerminalPrompt) : PromptFunction()};
  return RunCli(args, env);
}

}  // namespace dspool
