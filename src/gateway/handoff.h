// What a gateway process hands its successor when it is upgraded to a new
// binary (HAProxy's seamless reload, Envoy's hot restart): the listening
// sockets themselves, so no connection waiting in a backlog is refused and
// no port is ever closed; the control socket and the lock of the data
// directory; and the state the successor cannot ask anyone for (the
// records last applied, the users' notebook sessions with their servers'
// tokens, the notebook starts not yet answered).
//
//   old ── spawn new (--takeover-fd 3) ──► new
//       ── state frame ─────────────────►
//       ── "L" + listeners (≤ 200 a message), "C" + control, lock ─►
//                                           adopts, applies, serves
//       ◄─────────────── {"ok": true} or {"error"} ──
//   old stops listening (its copies close; the sockets stay open in the
//   new one), then hands over its idle relayed connections:
//       ── "R" + sockets (2 a connection, ≤ 100 a message), then a frame
//          describing them, ... , "E" ──►          relays them
//   answers the server, lets its controller go, and exits once the
//   connections it still carries (bytes on their way, web ones) have ended.
//
// Over a Unix stream pair (net/unix_socket.h MakeStreamPair).
#pragma once

#include <functional>
#include <vector>

#include "base/result.h"
#include "gateway/gateway.h"
#include "model/json_reader.h"
#include "os/unique_fd.h"

namespace dspool {

struct Handoff {
  Json state;
  std::vector<UniqueFd> listeners;  // TCP listeners, rules, NAT slots and Jupyter addresses alike
  UniqueFd control;                 // the control socket's listener
  UniqueFd lock;                    // <data dir>/gateway.lock, locked
};

// Sends `h` (its descriptors are duplicated by the kernel, not moved).
Status SendHandoff(int socket, const Handoff& h);
Result<Handoff> ReceiveHandoff(int socket);

// The relayed connections, after the successor said it serves.
Status SendRelays(int socket, const std::vector<Gateway::HandedRelay>& relays);
// Until "E": each batch as it comes, to `take`.
Status ReceiveRelays(int socket, const std::function<void(std::vector<Gateway::HandedRelay>)>& take);

}  // namespace dspool
