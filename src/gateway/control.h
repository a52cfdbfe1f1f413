// The gateway's control channel: how `dspool server` drives a gateway that
// runs as its own process (`dspool gateway`, GatewayService), so that
// restarting, killing or upgrading the server ends no relayed connection
// and no notebook WebSocket.
//
// One Unix stream socket, <data dir>/gateway.sock (root's, 0600), framed
// (net/unix_socket.h WriteFrame: a 4-byte length, then one JSON object).
// The gateway serves one controller at a time; a new one replaces the old
// (a restarted server).
//
//   gateway → server, on connect   {"event": "hello", "protocol", "pid", "version", "binary", "started"}
//   server → gateway, a call       {"id": N, "call": NAME, ...arguments}
//   gateway → server, its answer   {"id": N, "result": ...}  or  {"id": N, "error": {"code", "message"}}
//   gateway → server, any time     {"event": "wake", "pool"}
//                                  {"event": "startNotebook", "pool", "user", "token"}
//
// Calls: apply {pools, instances, passwords} (the records the routing table
// is built from, and the users' password hashes the Jupyter logins check),
// checkListen {spec}, health {instance}, metrics, notebooks, connections,
// notebookReady {pool, user, instance, address, port}, notebookFailed
// {pool, user, error}, notebookGone {pool, user}, notebookLost {pool, user,
// instance, port, why} (answered {"lost"}), info, stop, upgrade {argv}. A startNotebook not yet answered (notebookReady or
// notebookFailed) is sent again to the next controller, so a start the
// server was killed in the middle of is not lost.
//
// What crosses carries secrets (notebook tokens, password hashes): the
// socket is root's alone, and nothing here logs a message's body.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/result.h"
#include "gateway/gateway.h"
#include "model/json_reader.h"

namespace dspool {

inline constexpr int kGatewayProtocol = 1;
// The largest frame either side accepts (a routing table of thousands of
// instances, the connections of a busy gateway).
inline constexpr size_t kMaxControlFrame = size_t{256} << 20;

// What `dspool gateway show` prints of the running gateway.
struct GatewayInfo {
  int64_t pid = 0;
  std::string version;
  std::string binary;   // the executable it runs
  TimePoint started;    // this process
  int protocol = 0;
  int64_t upgrades = 0;  // binaries it took over from, since the first start
};
Json GatewayInfoToJson(const GatewayInfo& info);
Result<GatewayInfo> ParseGatewayInfo(const Json& json);

// The error half of an answer, and back.
Json StatusToJson(const Status& status);
Status StatusFromJson(const Json& json);

Json InstanceHealthWire(const InstanceHealth& health);
Result<InstanceHealth> ParseInstanceHealthWire(const Json& json);

Json RelayedConnectionToJson(const RelayedConnection& c);
Result<RelayedConnection> ParseRelayedConnection(const Json& json);

Json PoolNotebookToJson(const Gateway::PoolNotebook& n);
Result<Gateway::PoolNotebook> ParsePoolNotebook(const Json& json);

}  // namespace dspool
