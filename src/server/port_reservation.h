// The pools' frontend ports, kept out of the kernel's ephemeral range
// (net.ipv4.ip_local_reserved_ports) while the pools exist.
//
// A pool's rule, NAT and Jupyter ports are often inside 32768–60999, the
// range the kernel picks client ports from: a client socket of any program
// on the host can hold a NAT port, and the gateway then cannot listen on it.
// Reserved ports are never picked for a client; servers still listen on
// them.
//
// The kernel's list is the host's: an admin may have reserved ports of
// their own. The server adds only what is not reserved yet, remembers what
// it added (a file in the data directory, so a restarted server takes back
// what a deleted pool no longer needs), and removes only that.
//
// The kernel's list is read, changed and written under an exclusive flock
// of `lock` (one file for the host), so two servers on one host (tests, a
// second data directory) do not lose each other's ports.
//
// Thread safety: none; the server calls Apply from its routes thread only.
#pragma once

#include <cstdint>
#include <set>
#include <string>

#include "base/result.h"

namespace dspool {

struct Reservation {
  std::set<uint16_t> kernel;  // the kernel's whole list
  std::set<uint16_t> ours;    // what of it the server added
  friend bool operator==(const Reservation&, const Reservation&) = default;
};

// The lists after reserving `want` from `now`: ports in `want` that the
// kernel does not reserve yet are added and become ours; ours that are no
// longer wanted are removed; the rest of the kernel's list is left alone.
Reservation NextReservation(const Reservation& now, const std::set<uint16_t>& want);

class PortReserver {
 public:
  // `record`: the file that remembers our ports (0600); `kernel_path`: the
  // kernel's list (os/net.h kReservedPortsPath outside tests); `lock`: the
  // host's lock file for it (kReservedPortsLock outside tests).
  PortReserver(std::string record, std::string kernel_path, std::string lock);

  // Makes `want` the ports this server reserves. Writes nothing if nothing
  // changes. The record is written before the kernel's list grows and after
  // it shrinks, so a crash in between leaves no port of ours unrecorded.
  // Returns what changed ("reserved 50000-50002; released 2200"), empty
  // if nothing did.
  Result<std::string> Apply(const std::set<uint16_t>& want);

 private:
  Result<std::set<uint16_t>> ReadOurs() const;
  Status WriteOurs(const std::set<uint16_t>& ours) const;

  std::string record_;
  std::string kernel_path_;
  std::string lock_;
};

inline constexpr const char* kReservedPortsLock = "/run/lock/dspool-reserved-ports.lock";

}  // namespace dspool
