#include "gateway/handoff.h"

#include <algorithm>

#include "gateway/control.h"
#include "net/unix_socket.h"

namespace dspool {

namespace {

constexpr size_t kListenersPerMessage = 200;
constexpr size_t kRelaysPerMessage = 100;

}  // namespace

Status SendHandoff(int socket, const Handoff& h) {
  DSP_RETURN_IF_ERROR(WriteFrame(socket, h.state.dump()));
  std::vector<int> fds;
  for (const UniqueFd& fd : h.listeners) fds.push_back(fd.get());
  for (size_t at = 0; at < fds.size(); at += kListenersPerMessage) {
    const size_t n = std::min(kListenersPerMessage, fds.size() - at);
    DSP_RETURN_IF_ERROR(SendWithFds(socket, "L", std::span<const int>(fds.data() + at, n)));
  }
  const int last[2] = {h.control.get(), h.lock.get()};
  return SendWithFds(socket, "C", last);
}

Result<Handoff> ReceiveHandoff(int socket) {
  Handoff h;
  DSP_ASSIGN_OR_RETURN(std::string state, ReadFrame(socket, kMaxControlFrame));
  h.state = Json::parse(state, nullptr, false);
  if (!h.state.is_object()) return InvalidArgument("handoff: the state is no JSON object");
  for (;;) {
    char mark = 0;
    DSP_ASSIGN_OR_RETURN(MessageWithFds m, ReceiveWithFds(socket, &mark, 1, kListenersPerMessage));
    if (m.size == 0) return Unavailable("handoff: the old gateway closed before it was done");
    if (mark == 'L') {
      for (UniqueFd& fd : m.fds) h.listeners.push_back(std::move(fd));
    } else if (mark == 'C' && m.fds.size() == 2) {
      h.control = std::move(m.fds[0]);
      h.lock = std::move(m.fds[1]);
      return h;
    } else {
      return InvalidArgument("handoff: unexpected message '" + std::string(1, mark) + "' with " +
                             std::to_string(m.fds.size()) + " descriptors");
    }
  }
}

Status SendRelays(int socket, const std::vector<Gateway::HandedRelay>& relays) {
  for (size_t at = 0; at < relays.size(); at += kRelaysPerMessage) {
    const size_t n = std::min(kRelaysPerMessage, relays.size() - at);
    std::vector<int> fds;
    Json described = Json::array();
    for (size_t i = at; i < at + n; ++i) {
      fds.push_back(relays[i].client.get());
      fds.push_back(relays[i].backend.get());
      described.push_back(Json{{"connection", RelayedConnectionToJson(relays[i].info)},
                               {"idleTimeoutMs", relays[i].idle_timeout.count()}});
    }
    DSP_RETURN_IF_ERROR(SendWithFds(socket, "R", fds));
    DSP_RETURN_IF_ERROR(WriteFrame(socket, described.dump()));
  }
  return SendWithFds(socket, "E", {});
}

Status ReceiveRelays(int socket, const std::function<void(std::vector<Gateway::HandedRelay>)>& take) {
  for (;;) {
    char mark = 0;
    DSP_ASSIGN_OR_RETURN(MessageWithFds m, ReceiveWithFds(socket, &mark, 1, 2 * kRelaysPerMessage));
    if (m.size == 0) return Unavailable("handoff: the old gateway closed before the end of its connections");
    if (mark == 'E') return Status::Ok();
    if (mark != 'R' || m.fds.size() % 2 != 0) return InvalidArgument("handoff: a bad batch of connections");
    DSP_ASSIGN_OR_RETURN(std::string frame, ReadFrame(socket, kMaxControlFrame));
    Json described = Json::parse(frame, nullptr, false);
    if (!described.is_array() || described.size() * 2 != m.fds.size()) {
      return InvalidArgument("handoff: connections and sockets do not match");
    }
    std::vector<Gateway::HandedRelay> batch;
    for (size_t i = 0; i < described.size(); ++i) {
      DSP_ASSIGN_OR_RETURN(RelayedConnection info, ParseRelayedConnection(described[i].value("connection", Json())));
      batch.push_back({std::move(info), std::move(m.fds[2 * i]), std::move(m.fds[2 * i + 1]),
                       std::chrono::milliseconds(described[i].value("idleTimeoutMs", int64_t{0}))});
    }
    take(std::move(batch));
  }
}

}  // namespace dspool
