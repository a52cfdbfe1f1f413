#include "server/port_reservation.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>

#include <algorithm>
#include <iterator>

#include "os/fs.h"
#include "os/net.h"
#include "os/unique_fd.h"

namespace dspool {
namespace {

std::set<uint16_t> Minus(const std::set<uint16_t>& a, const std::set<uint16_t>& b) {
  std::set<uint16_t> out;
  std::set_difference(a.begin(), a.end(), b.begin(), b.end(), std::inserter(out, out.end()));
  return out;
}

}  // namespace

Reservation NextReservation(const Reservation& now, const std::set<uint16_t>& want) {
  Reservation next;
  std::set<uint16_t> added = Minus(want, now.kernel);
  std::set<uint16_t> released = Minus(now.ours, want);
  next.kernel = Minus(now.kernel, released);
  next.kernel.insert(added.begin(), added.end());
  next.ours = Minus(now.ours, released);
  next.ours.insert(added.begin(), added.end());
  return next;
}

PortReserver::PortReserver(std::string record, std::string kernel_path, std::string lock)
    : record_(std::move(record)), kernel_path_(std::move(kernel_path)), lock_(std::move(lock)) {}

Result<std::set<uint16_t>> PortReserver::ReadOurs() const {
  auto text = ReadFile(record_);
  if (!text.ok()) {
    if (text.status().code() == StatusCode::kNotFound) return std::set<uint16_t>{};
    return text.status();
  }
  auto ports = ParsePortList(*text);
  if (!ports.ok()) return ports.status().WithPrefix(record_);
  return ports;
}

Status PortReserver::WriteOurs(const std::set<uint16_t>& ours) const {
  return WriteFileAtomic(record_, FormatPortList(ours) + "\n", 0600);
}

Result<std::string> PortReserver::Apply(const std::set<uint16_t>& want) {
  UniqueFd lock(::open(lock_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!lock.valid()) return ErrnoStatus("open " + lock_, errno);
  if (::flock(lock.get(), LOCK_EX) != 0) return ErrnoStatus("flock " + lock_, errno);
  Reservation now;
  DSP_ASSIGN_OR_RETURN(now.kernel, ReadReservedPorts(kernel_path_));
  DSP_ASSIGN_OR_RETURN(now.ours, ReadOurs());
  Reservation next = NextReservation(now, want);
  if (next == now) return std::string();
  std::set<uint16_t> added = Minus(next.ours, now.ours);
  std::set<uint16_t> released = Minus(now.ours, next.ours);
  std::set<uint16_t> both = now.ours;
  both.insert(added.begin(), added.end());
  DSP_RETURN_IF_ERROR(WriteOurs(both));
  DSP_RETURN_IF_ERROR(WriteReservedPorts(next.kernel, kernel_path_).WithPrefix("net.ipv4.ip_local_reserved_ports"));
  DSP_RETURN_IF_ERROR(WriteOurs(next.ours));
  std::string said;
  if (!added.empty()) said = "reserved " + FormatPortList(added);
  if (!released.empty()) said += (said.empty() ? "" : "; ") + std::string("released ") + FormatPortList(released);
  return said;
}

}  // namespace dspool
