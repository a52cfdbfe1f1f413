#include "gateway/client.h"

#include "base/log.h"
#include "base/thread_name.h"
#include "net/unix_socket.h"

namespace dspool {

namespace {

constexpr const char* kLog = "gateway-link";
// How long a gateway that accepted the connection has to say hello.
constexpr auto kHelloTimeout = std::chrono::seconds(10);

}  // namespace

GatewayClient::GatewayClient(GatewayClientOptions options, GatewayEvents& events)
    : options_(std::move(options)), events_(events) {}

GatewayClient::~GatewayClient() { Stop(); }

Status GatewayClient::Start() {
  link_thread_ = std::thread([this] {
    SetThreadName("gateway-link");
    LinkLoop();
  });
  std::unique_lock lock(mu_);
  cv_.wait(lock, [this] { return first_link_done_; });
  return first_link_;
}

void GatewayClient::Stop() {
  std::shared_ptr<UniqueFd> fd;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    fd = fd_;
  }
  cv_.notify_all();
  if (fd) ShutdownSocket(fd->get());
  if (link_thread_.joinable()) link_thread_.join();
}

Status GatewayClient::Link() {
  auto fd = ConnectUnixStream(options_.socket_path);
  bool may_spawn;
  {
    std::lock_guard lock(mu_);
    may_spawn = may_spawn_;
  }
  if (!fd.ok() && fd.status().code() == StatusCode::kUnavailable && options_.spawn && may_spawn) {
    DSP_LOG(kInfo, kLog) << "no gateway answers on " << options_.socket_path << ": starting one";
    DSP_RETURN_IF_ERROR(options_.spawn());
    fd = ConnectUnixStream(options_.socket_path);
  }
  if (!fd.ok()) return fd.status();
  DSP_RETURN_IF_ERROR(SetIoTimeouts(fd->get(), std::chrono::milliseconds(0), kHelloTimeout));
  DSP_ASSIGN_OR_RETURN(std::string frame, ReadFrame(fd->get(), kMaxControlFrame));
  DSP_RETURN_IF_ERROR(SetIoTimeouts(fd->get(), std::chrono::milliseconds(0), std::chrono::milliseconds(0)));
  Json hello = Json::parse(frame, nullptr, false);
  if (!hello.is_object() || hello.value("event", "") != "hello") {
    return FailedPrecondition(options_.socket_path + ": the process there is not a dspool gateway");
  }
  DSP_ASSIGN_OR_RETURN(GatewayInfo info, ParseGatewayInfo(hello));
  if (info.protocol != kGatewayProtocol) {
    return FailedPrecondition("the gateway on " + options_.socket_path + " (pid " + std::to_string(info.pid) +
                              ", dspool " + info.version + ") speaks control protocol " +
                              std::to_string(info.protocol) + ", this server " + std::to_string(kGatewayProtocol) +
                              ": stop it (its connections end) or run the server of its version");
  }
  auto link = std::make_shared<UniqueFd>(std::move(*fd));
  // The last records go first, before any call that was waiting for the
  // link; under write_mu_, so a newer Apply cannot slip in between.
  std::lock_guard write(write_mu_);
  std::optional<Json> resend;
  {
    std::lock_guard lock(mu_);
    if (stopping_) return Aborted("stopping");
    fd_ = link;
    linked_ = true;
    info_ = info;
    if (last_apply_) {
      resend = *last_apply_;
      (*resend)["id"] = next_id_++;  // answered with no one waiting: errors are logged
      (*resend)["call"] = "apply";
    }
  }
  DSP_LOG(kInfo, kLog) << "linked to the gateway (pid " << info.pid << ", dspool " << info.version << ", "
                       << info.binary << ")";
  if (resend) (void)WriteFrame(link->get(), resend->dump());
  return Status::Ok();
}

void GatewayClient::LinkLoop() {
  std::string last_error;
  for (;;) {
    {
      std::lock_guard lock(mu_);
      if (stopping_) break;
    }
    Status s = Link();
    {
      std::lock_guard lock(mu_);
      if (!first_link_done_) {
        first_link_done_ = true;
        first_link_ = s;
        cv_.notify_all();
        if (!s.ok()) return;  // Start fails; the server does not start
      }
    }
    if (s.ok()) {
      std::shared_ptr<UniqueFd> fd;
      {
        std::lock_guard lock(mu_);
        fd = fd_;
      }
      s = ReadLoop(fd->get());
      Unlinked(s);
    }
    if (!s.ok() && s.message() != last_error) {
      bool stopping;
      {
        std::lock_guard lock(mu_);
        stopping = stopping_;
      }
      if (!stopping) DSP_LOG(kWarning, kLog) << "gateway link: " << s << " (trying again)";
    }
    last_error = s.ok() ? "" : s.message();
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, options_.retry_interval, [this] { return stopping_; });
  }
}

Status GatewayClient::ReadLoop(int fd) {
  for (;;) {
    DSP_ASSIGN_OR_RETURN(std::string frame, ReadFrame(fd, kMaxControlFrame));
    Json m = Json::parse(frame, nullptr, false);
    if (!m.is_object()) return InvalidArgument("gateway control: a message that is no JSON object");
    if (m.contains("id")) {
      const uint64_t id = m["id"].is_number_unsigned() ? m["id"].get<uint64_t>() : 0;
      Result<Json> result = m.contains("error") ? Result<Json>(StatusFromJson(m["error"]))
                                                : Result<Json>(m.value("result", Json()));
      std::lock_guard lock(mu_);
      auto it = waiters_.find(id);
      if (it == waiters_.end()) {
        if (!result.ok()) DSP_LOG(kError, kLog) << "gateway: " << result.status();
        continue;
      }
      it->second->done = true;
      it->second->result = std::move(result);
      cv_.notify_all();
      continue;
    }
    const std::string event = m.value("event", "");
    try {
      if (event == "wake") {
        events_.WakePool(PoolName(m.at("pool").get<std::string>()));
      } else if (event == "startNotebook") {
        events_.StartNotebook(PoolName(m.at("pool").get<std::string>()), m.at("user").get<std::string>(),
                              m.at("token").get<std::string>());
      } else {
        DSP_LOG(kWarning, kLog) << "gateway sent an unknown event '" << event << "'";
      }
    } catch (const Json::exception& e) {
      return InvalidArgument("gateway control: bad " + event + " event: " + e.what());
    }
  }
}

void GatewayClient::Unlinked(const Status& why) {
  std::lock_guard lock(mu_);
  linked_ = false;
  fd_.reset();
  info_.reset();
  for (auto& [id, w] : waiters_) {
    if (w->done) continue;  // answered before the link broke
    w->done = true;
    w->result = Unavailable("the link to the gateway broke: " + why.message());
  }
  cv_.notify_all();
}

Result<Json> GatewayClient::Call(const std::string& name, Json arguments) {
  return Call(name, std::move(arguments), options_.call_timeout);
}

Result<Json> GatewayClient::Call(const std::string& name, Json arguments, std::chrono::milliseconds timeout) {
  auto waiter = std::make_shared<Waiter>();
  std::shared_ptr<UniqueFd> fd;
  uint64_t id;
  {
    std::lock_guard lock(mu_);
    if (!linked_) return Unavailable("the gateway is not linked (starting or restarting); try again");
    fd = fd_;
    id = next_id_++;
    waiters_[id] = waiter;
  }
  arguments["id"] = id;
  arguments["call"] = name;
  Status sent;
  {
    std::lock_guard write(write_mu_);
    sent = WriteFrame(fd->get(), arguments.dump());
  }
  std::unique_lock lock(mu_);
  if (!sent.ok()) {
    waiters_.erase(id);
    ShutdownSocket(fd->get());  // the link thread sees it and links again
    return Unavailable("gateway " + name + ": " + sent.message());
  }
  const bool answered = cv_.wait_for(lock, timeout, [&] { return waiter->done; });
  waiters_.erase(id);
  if (!answered) return DeadlineExceeded("gateway " + name + ": no answer in " + std::to_string(timeout.count()) + " ms");
  return std::move(waiter->result);
}

Status GatewayClient::Apply(const std::vector<Pool>& pools, const std::vector<Instance>& instances,
                            const std::map<std::string, std::string>& passwords) {
  Json args{{"pools", Json::array()}, {"instances", Json::array()}, {"passwords", passwords}};
  for (const Pool& p : pools) args["pools"].push_back(PoolToJson(p));
  for (const Instance& i : instances) args["instances"].push_back(InstanceToJson(i));
  {
    std::lock_guard write(write_mu_);  // ordered with Link's resend
    std::lock_guard lock(mu_);
    last_apply_ = args;
    // Sent first on the next link.
    if (!linked_) return Status::Ok();
  }
  return Call("apply", std::move(args)).status();
}

Status GatewayClient::CheckListen(const PoolSpec& spec) {
  return Call("checkListen", Json{{"spec", PoolSpecToJson(spec, Secrets::kInclude)}}).status();
}

std::optional<InstanceHealth> GatewayClient::Health(const InstanceId& id) {
  auto r = Call("health", Json{{"instance", id.value()}});
  if (!r.ok() || r->is_null()) return std::nullopt;
  auto h = ParseInstanceHealthWire(*r);
  if (!h.ok()) return std::nullopt;
  return *h;
}

Result<std::string> GatewayClient::Metrics() {
  DSP_ASSIGN_OR_RETURN(Json r, Call("metrics", Json::object()));
  return r.value("text", std::string());
}

void GatewayClient::NotebookReady(const PoolName& pool, const std::string& user, const InstanceId& instance,
                                  uint32_t address, uint16_t port) {
  Status s = Call("notebookReady", Json{{"pool", pool.value()},
                                        {"user", user},
                                        {"instance", instance.value()},
                                        {"address", address},
                                        {"port", port}})
                 .status();
  // Not lost: the gateway asks the next server again (its start is pending).
  if (!s.ok()) DSP_LOG(kWarning, kLog) << "notebook server of " << user << " in pool " << pool << ": " << s;
}

void GatewayClient::NotebookFailed(const PoolName& pool, const std::string& user, const std::string& error) {
  Status s = Call("notebookFailed", Json{{"pool", pool.value()}, {"user", user}, {"error", error}}).status();
  if (!s.ok()) DSP_LOG(kWarning, kLog) << "notebook server of " << user << " in pool " << pool << ": " << s;
}

void GatewayClient::NotebookGone(const PoolName& pool, const std::string& user) {
  Status s = Call("notebookGone", Json{{"pool", pool.value()}, {"user", user}}).status();
  if (!s.ok()) DSP_LOG(kWarning, kLog) << "notebook server of " << user << " in pool " << pool << ": " << s;
}

bool GatewayClient::NotebookLost(const PoolName& pool, const std::string& user, const InstanceId& instance,
                                 uint16_t port, const std::string& why) {
  auto r = Call("notebookLost", Json{{"pool", pool.value()},
                                     {"user", user},
                                     {"instance", instance.value()},
                                     {"port", port},
                                     {"why", why}});
  if (!r.ok()) {
    DSP_LOG(kWarning, kLog) << "notebook server of " << user << " in pool " << pool << ": " << r.status();
    return false;
  }
  return r->value("lost", false);
}

Result<std::vector<Gateway::PoolNotebook>> GatewayClient::Notebooks() {
  DSP_ASSIGN_OR_RETURN(Json r, Call("notebooks", Json::object()));
  std::vector<Gateway::PoolNotebook> out;
  for (const Json& n : r) {
    DSP_ASSIGN_OR_RETURN(auto parsed, ParsePoolNotebook(n));
    out.push_back(std::move(parsed));
  }
  return out;
}

Result<std::vector<RelayedConnection>> GatewayClient::Connections() {
  DSP_ASSIGN_OR_RETURN(Json r, Call("connections", Json::object()));
  std::vector<RelayedConnection> out;
  for (const Json& c : r) {
    DSP_ASSIGN_OR_RETURN(auto parsed, ParseRelayedConnection(c));
    out.push_back(std::move(parsed));
  }
  return out;
}

Result<GatewayInfo> GatewayClient::Info() {
  DSP_ASSIGN_OR_RETURN(Json r, Call("info", Json::object()));
  return ParseGatewayInfo(r);
}

Status GatewayClient::StopGateway() {
  {
    std::lock_guard lock(mu_);
    may_spawn_ = false;
  }
  return Call("stop", Json::object()).status();
}

Result<int64_t> GatewayClient::Upgrade(const std::vector<std::string>& argv) {
  // The successor's start (a new process, its key, the pools' certificates)
  // and the handing over take longer than a call.
  DSP_ASSIGN_OR_RETURN(Json r, Call("upgrade", Json{{"argv", argv}}, std::chrono::seconds(90)));
  if (!r.is_object() || !r.contains("pid") || !r["pid"].is_number_integer()) {
    return Internal("gateway upgrade: an answer without the new pid");
  }
  return r["pid"].get<int64_t>();
}

}  // namespace dspool
