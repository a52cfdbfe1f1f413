// `dspool server`: the composition root of the control plane. Opens the
// state store, picks the compute provider, serves the API and the agents'
// channels, and runs the reconcile loop until SIGTERM or SIGINT.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "base/log.h"
#include "deploy/realize.h"
#include "gateway/gateway.h"
#include "server/extensions.h"

namespace dspool {

struct ServerOptions {
  std::string data_dir = "/var/lib/dspool";
  // "ADDRESS:PORT" for the TCP API; empty: Unix socket only. Served over
  // TLS, with the certificate and key below or, when both are empty, a
  // self-signed pair the server makes once as <data_dir>/api.crt and
  // api.key; plain TCP only with no_tls, and only on a loopback address.
  std::string listen_tcp;
  std::string tls_certificate_file;  // PEM chain
  std::string tls_key_file;          // PEM; root's, mode 0600 (ReadPrivateFile)
  bool no_tls = false;
  // File holding the bearer token for the TCP API (required with listen_tcp;
  // root's, mode 0600).
  std::string token_file;
  // First and last uid handed to pool users.
  int64_t uid_first = 20000;
  int64_t uid_last = 59999;
  LogLevel log_level = LogLevel::kInfo;
  // The gateway process the server starts when none runs on data_dir
  // (server/gateway_process.h); relay_threads 0: one per CPU, at most 4.
  // transparent_connect and session_key are the server's to decide.
  GatewayOptions gateway;
  // How often notebook servers are checked for culling.
  std::chrono::seconds cull_check_interval{30};
  // The program the agents run as each user's notebook server instead of
  // their default (/usr/bin/jupyter-notebook), given the same Notebook 6.4
  // arguments; an absolute path in the instances. Empty: the default. For
  // benchmarks (bench/jupyter.sh) and tests.
  std::string jupyter_program;
  // Template deployments: where public IPs, DNS labels and scale sets'
  // shares land on this host (deploy/realize.h). The share root is made at
  // start (root's, 0755).
  deploy::HostSettings deploy_host;
  // Storage accounts' file shares: <storage_root>/<account>/shares/<share>,
  // deleted ones under <account>/deleted/<share>/<version> (made at start,
  // root's, 0755).
  std::string storage_root = "/srv/dspool/storage";
  // An operator's sizes and images for scale sets (deploy/catalog.h);
  // empty: the built-in ones only.
  std::string catalog_file;
  // Where extensions' fileUris are fetched from instead (server/extensions.h).
  std::vector<Mirror> mirrors;
};

// Runs until SIGTERM/SIGINT; returns the process exit code. Errors before the
// server is up (bad data dir, no lxc, port in use) are printed as one line.
int RunServer(const ServerOptions& options);

}  // namespace dspool
