#include "gateway/control.h"

namespace dspool {

namespace {

// The wire is between two dspool processes; a message that does not parse
// is a bug or another program on the socket, named as such.
template <class F>
auto Parsed(const char* what, F&& f) -> Result<decltype(f())> {
  try {
    return f();
  } catch (const Json::exception& e) {
    return InvalidArgument(std::string("gateway control: bad ") + what + ": " + e.what());
  }
}

int64_t Nanos(MonoTime t) { return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count(); }
MonoTime FromNanos(int64_t n) { return MonoTime(std::chrono::duration_cast<MonoTime::duration>(std::chrono::nanoseconds(n))); }

}  // namespace

Json GatewayInfoToJson(const GatewayInfo& info) {
  return Json{{"pid", info.pid},         {"version", info.version},   {"binary", info.binary},
              {"started", FormatTime(info.started)}, {"protocol", info.protocol}, {"upgrades", info.upgrades}};
}

Result<GatewayInfo> ParseGatewayInfo(const Json& json) {
  DSP_ASSIGN_OR_RETURN(GatewayInfo info, Parsed("info", [&] {
                         GatewayInfo i;
                         i.pid = json.at("pid").get<int64_t>();
                         i.version = json.at("version").get<std::string>();
                         i.binary = json.at("binary").get<std::string>();
                         i.protocol = json.at("protocol").get<int>();
                         i.upgrades = json.value("upgrades", int64_t{0});
                         return i;
                       }));
  DSP_ASSIGN_OR_RETURN(info.started, ParseTime(json.value("started", std::string())));
  return info;
}

Json StatusToJson(const Status& status) {
  return Json{{"code", std::string(StatusCodeName(status.code()))}, {"message", status.message()}};
}

Status StatusFromJson(const Json& json) {
  try {
    return Status(StatusCodeFromName(json.at("code").get<std::string>()), json.at("message").get<std::string>());
  } catch (const Json::exception& e) {
    return InvalidArgument(std::string("gateway control: bad error: ") + e.what());
  }
}

Json InstanceHealthWire(const InstanceHealth& health) { return InstanceHealthToJson(health); }

Result<InstanceHealth> ParseInstanceHealthWire(const Json& json) {
  return Parsed("health", [&] {
    InstanceHealth h;
    h.state = json.at("state").get<std::string>();
    h.in_rotation = json.at("inRotation").get<bool>();
    h.connections = json.at("connections").get<int64_t>();
    return h;
  });
}

Json RelayedConnectionToJson(const RelayedConnection& c) {
  return Json{{"pool", c.pool.value()},
              {"instance", c.instance.value()},
              {"ssh", c.ssh},
              {"client", {c.client_address, c.client_port}},
              {"frontendPort", c.frontend_port},
              {"instanceEnd", {c.instance_address, c.instance_port}},
              {"seen", {c.seen_address, c.seen_port}},
              {"transparent", c.transparent},
              {"started", ToUnixMillis(c.started)}};
}

Result<RelayedConnection> ParseRelayedConnection(const Json& json) {
  return Parsed("connection", [&] {
    RelayedConnection c;
    c.pool = PoolName(json.at("pool").get<std::string>());
    c.instance = InstanceId(json.at("instance").get<std::string>());
    c.ssh = json.at("ssh").get<bool>();
    c.client_address = json.at("client").at(0).get<uint32_t>();
    c.client_port = json.at("client").at(1).get<uint16_t>();
    c.frontend_port = json.at("frontendPort").get<uint16_t>();
    c.instance_address = json.at("instanceEnd").at(0).get<uint32_t>();
    c.instance_port = json.at("instanceEnd").at(1).get<uint16_t>();
    c.seen_address = json.at("seen").at(0).get<uint32_t>();
    c.seen_port = json.at("seen").at(1).get<uint16_t>();
    c.transparent = json.at("transparent").get<bool>();
    c.started = FromUnixMillis(json.at("started").get<int64_t>());
    return c;
  });
}

Json PoolNotebookToJson(const Gateway::PoolNotebook& n) {
  const NotebookSession& s = n.session;
  return Json{{"pool", n.pool.value()},
              {"user", s.user},
              {"state", std::string(NotebookStateName(s.state))},
              {"instance", s.instance.value()},
              {"address", s.address},
              {"port", s.port},
              {"error", s.error},
              {"started", ToUnixMillis(s.started)},
              {"lastActivity", ToUnixMillis(s.last_activity)},
              {"startedMono", Nanos(s.started_mono)},
              {"lastTraffic", Nanos(s.last_traffic)},
              {"client", s.client}};
}

Result<Gateway::PoolNotebook> ParsePoolNotebook(const Json& json) {
  return Parsed("notebook", [&]() -> Gateway::PoolNotebook {
    Gateway::PoolNotebook n;
    n.pool = PoolName(json.at("pool").get<std::string>());
    NotebookSession& s = n.session;
    s.user = json.at("user").get<std::string>();
    const std::string state = json.at("state").get<std::string>();
    for (auto st : {NotebookSession::State::kStarting, NotebookSession::State::kReady, NotebookSession::State::kFailed}) {
      if (NotebookStateName(st) == state) s.state = st;
    }
    s.instance = InstanceId(json.at("instance").get<std::string>());
    s.address = json.at("address").get<uint32_t>();
    s.port = json.at("port").get<uint16_t>();
    s.error = json.at("error").get<std::string>();
    s.started = FromUnixMillis(json.at("started").get<int64_t>());
    s.last_activity = FromUnixMillis(json.at("lastActivity").get<int64_t>());
    s.started_mono = FromNanos(json.at("startedMono").get<int64_t>());
    s.last_traffic = FromNanos(json.at("lastTraffic").get<int64_t>());
    s.client = json.at("client").get<std::string>();
    return n;
  });
}

}  // namespace dspool
