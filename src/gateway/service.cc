#include "gateway/service.h"

#include "base/log.h"
#include "base/thread_name.h"
#include "gateway/handoff.h"
#include "gateway/routing_table.h"
#include "os/fs.h"
#include "os/process.h"
#include "net/socket.h"
#include "net/unix_socket.h"

namespace dspool {

namespace {

constexpr const char* kLog = "gateway";
// A controller that takes no message for this long (stopped, wedged) is
// dropped rather than holding up the gateway's threads.
constexpr auto kSendTimeout = std::chrono::seconds(5);
// How long a successor may take to say it serves.
constexpr auto kTakeOverTimeout = std::chrono::seconds(60);

// The pools' Jupyter certificates, where a spec names none: the files the
// server made for the pool.
void FillWebCertificates(RoutingTable& table, const std::string& data_dir) {
  for (WebListener& w : table.web) {
    if (!w.certificate_file.empty()) continue;
    const std::string dir = data_dir + "/pools/" + w.pool.value();
    w.certificate_file = dir + "/jupyter.crt";
    w.key_file = dir + "/jupyter.key";
  }
}

template <class T, class F>
Result<std::vector<T>> ParseList(const Json& list, F parse) {
  if (!list.is_array()) return InvalidArgument("gateway control: expected a list");
  std::vector<T> out;
  for (const Json& item : list) {
    DSP_ASSIGN_OR_RETURN(T v, parse(item));
    out.push_back(std::move(v));
  }
  return out;
}

}  // namespace

struct GatewayService::Controller {
  UniqueFd fd;
  std::mutex write_mu;
  Status Write(const Json& message) {
    std::lock_guard lock(write_mu);
    return WriteFrame(fd.get(), message.dump());
  }
  // Ends the controller's calls: its thread's read returns.
  void Drop() { ShutdownSocket(fd.get()); }
};

Result<std::unique_ptr<GatewayService>> GatewayService::Create(GatewayOptions gateway, GatewayServiceOptions options) {
  std::unique_ptr<GatewayService> service(new GatewayService(std::move(options)));
  DSP_ASSIGN_OR_RETURN(service->gateway_, Gateway::Create(std::move(gateway), *service));
  DSP_ASSIGN_OR_RETURN(auto pair, MakeSeqPacketPair("the gateway's stop"));
  service->stop_read_ = std::move(pair.first);
  service->stop_write_ = std::move(pair.second);
  return service;
}

GatewayService::~GatewayService() { Stop(); }

Status GatewayService::Start(UniqueFd listener) {
  DSP_RETURN_IF_ERROR(gateway_->Start());
  listener_ = std::move(listener);
  acceptor_ = std::thread([this] {
    SetThreadName("gw-control");
    AcceptLoop();
  });
  return Status::Ok();
}

void GatewayService::Stop() {
  if (stop_write_.valid()) ShutdownSocket(stop_write_.get());  // the accept loop's cancel turns readable
  if (acceptor_.joinable()) acceptor_.join();
  std::shared_ptr<Controller> last;
  {
    std::lock_guard lock(mu_);
    last = std::move(current_);
  }
  if (last) last->Drop();
  if (controller_thread_.joinable() && controller_thread_.get_id() != std::this_thread::get_id()) {
    controller_thread_.join();
  }
  if (gateway_) gateway_->Stop();
}

void GatewayService::AcceptLoop() {
  for (;;) {
    auto accepted = AcceptUnixStream(listener_.get(), stop_read_.get());
    if (!accepted.ok()) {
      DSP_LOG(kError, kLog) << "control socket: " << accepted.status();
      return;
    }
    if (!*accepted) return;  // stopping
    UniqueFd fd = std::move(**accepted);
    auto peer = UnixPeerCredentials(fd.get());
    if (!peer.ok() || peer->uid != 0) {
      DSP_LOG(kWarning, kLog) << "control connection refused: not root"
                              << (peer.ok() ? " (uid " + std::to_string(peer->uid) + ")" : "");
      continue;
    }
    (void)SetIoTimeouts(fd.get(), kSendTimeout, std::chrono::milliseconds(0));
    auto c = std::make_shared<Controller>();
    c->fd = std::move(fd);
    std::shared_ptr<Controller> previous;
    {
      std::lock_guard lock(mu_);
      previous = std::exchange(current_, c);
    }
    if (previous) {
      DSP_LOG(kInfo, kLog) << "a new controller (pid " << peer->pid << ") replaces the last one";
      previous->Drop();
    } else {
      DSP_LOG(kInfo, kLog) << "controller connected (pid " << peer->pid << ")";
    }
    if (controller_thread_.joinable()) controller_thread_.join();
    controller_thread_ = std::thread([this, c] {
      SetThreadName("gw-controller");
      Serve(c);
    });
  }
}

void GatewayService::Serve(std::shared_ptr<Controller> c) {
  GatewayInfo info = options_.info;
  info.upgrades = upgrades_.load();
  Json hello = GatewayInfoToJson(info);
  hello["event"] = "hello";
  Status s = c->Write(hello);
  // What the last controller was asked and did not answer.
  std::vector<Json> again;
  {
    std::lock_guard lock(mu_);
    for (const auto& [key, token] : pending_starts_) {
      again.push_back(Json{{"event", "startNotebook"}, {"pool", key.first.value()}, {"user", key.second}, {"token", token}});
    }
  }
  for (const Json& m : again) {
    if (s.ok()) s = c->Write(m);
  }
  while (s.ok()) {
    auto frame = ReadFrame(c->fd.get(), kMaxControlFrame);
    if (!frame.ok()) {
      s = frame.status();
      break;
    }
    Json call = Json::parse(*frame, nullptr, /*allow_exceptions=*/false);
    if (!call.is_object() || !call.contains("id") || !call["id"].is_number_integer() || !call.contains("call")) {
      s = InvalidArgument("gateway control: a message that is no call");
      break;
    }
    Result<Json> result = Handle(call);
    Json answer{{"id", call["id"]}};
    if (result.ok()) {
      answer["result"] = std::move(*result);
    } else {
      answer["error"] = StatusToJson(result.status());
    }
    s = c->Write(answer);
    const std::string name = call["call"].is_string() ? call["call"].get<std::string>() : "";
    if (s.ok() && result.ok() && name == "stop" && options_.on_stop) options_.on_stop();
    if (result.ok() && name == "upgrade") {
      // The successor serves controllers from now on; this one drains.
      ShutdownSocket(stop_write_.get());
      break;
    }
  }
  DSP_LOG(kInfo, kLog) << (s.ok() ? "controller let go: a successor serves it now"
                               : "controller gone" + (s.message() == "closed" ? std::string() : ": " + s.message()));
  std::lock_guard lock(mu_);
  if (current_ == c) current_.reset();
}

Result<Json> GatewayService::Handle(const Json& call) {
  const std::string name = call.value("call", std::string());
  try {
    if (name == "apply") {
      DSP_ASSIGN_OR_RETURN(auto pools, ParseList<Pool>(call.at("pools"), PoolFromJson));
      DSP_ASSIGN_OR_RETURN(auto instances, ParseList<Instance>(call.at("instances"), InstanceFromJson));
      auto passwords = call.at("passwords").get<std::map<std::string, std::string>>();
      {
        std::lock_guard lock(mu_);
        passwords_ = std::move(passwords);
        last_apply_ = Json{{"pools", call.at("pools")}, {"instances", call.at("instances")},
                           {"passwords", call.at("passwords")}};
      }
      RoutingTable table = BuildRoutingTable(pools, instances);
      FillWebCertificates(table, options_.data_dir);
      DSP_RETURN_IF_ERROR(gateway_->Apply(std::move(table)));
      return Json::object();
    }
    if (name == "checkListen") {
      DSP_ASSIGN_OR_RETURN(PoolSpec spec, ParsePoolSpec(call.at("spec")));
      DSP_RETURN_IF_ERROR(gateway_->CheckListen(spec));
      return Json::object();
    }
    if (name == "health") {
      auto h = gateway_->Health(InstanceId(call.at("instance").get<std::string>()));
      return h ? InstanceHealthWire(*h) : Json();
    }
    if (name == "metrics") return Json{{"text", GatewayMetrics(gateway_->counters())}};
    if (name == "notebooks") {
      Json out = Json::array();
      for (const auto& n : gateway_->Notebooks()) out.push_back(PoolNotebookToJson(n));
      return out;
    }
    if (name == "connections") {
      Json out = Json::array();
      for (const auto& c : gateway_->Connections()) out.push_back(RelayedConnectionToJson(c));
      return out;
    }
    if (name == "notebookReady" || name == "notebookFailed" || name == "notebookGone") {
      const PoolName pool(call.at("pool").get<std::string>());
      const std::string user = call.at("user").get<std::string>();
      {
        std::lock_guard lock(mu_);
        pending_starts_.erase({pool, user});
      }
      if (name == "notebookReady") {
        gateway_->NotebookReady(pool, user, InstanceId(call.at("instance").get<std::string>()),
                                call.at("address").get<uint32_t>(), call.at("port").get<uint16_t>());
      } else if (name == "notebookFailed") {
        gateway_->NotebookFailed(pool, user, call.at("error").get<std::string>());
      } else {
        gateway_->NotebookGone(pool, user);
      }
      return Json::object();
    }
    if (name == "notebookLost") {
      return Json{{"lost", gateway_->NotebookLost(PoolName(call.at("pool").get<std::string>()),
                                                  call.at("user").get<std::string>(),
                                                  InstanceId(call.at("instance").get<std::string>()),
                                                  call.at("port").get<uint16_t>(), call.at("why").get<std::string>())}};
    }
    if (name == "info") {
      GatewayInfo info = options_.info;
      info.upgrades = upgrades_.load();
      return GatewayInfoToJson(info);
    }
    if (name == "stop") return Json::object();  // Serve stops once the answer is out
    if (name == "upgrade") return Upgrade(call.at("argv").get<std::vector<std::string>>());
  } catch (const Json::exception& e) {
    return InvalidArgument("gateway control: bad " + name + " call: " + e.what());
  }
  return InvalidArgument("gateway control: unknown call '" + name + "'");
}

namespace {

}  // namespace

Result<Json> GatewayService::Upgrade(std::vector<std::string> argv) {
  if (argv.empty()) return InvalidArgument("upgrade: no program");
  DSP_RETURN_IF_ERROR(CheckRootProgram(argv[0]).WithPrefix("upgrade: the new binary"));
  Handoff h;
  {
    std::lock_guard lock(mu_);
    Json pending = Json::array();
    for (const auto& [key, token] : pending_starts_) {
      pending.push_back(Json{{"pool", key.first.value()}, {"user", key.second}, {"token", token}});
    }
    h.state = Json{{"apply", last_apply_}, {"pending", pending}, {"upgrades", upgrades_.load()}};
  }
  Json notebooks = Json::array();
  for (const auto& n : gateway_->HandOverNotebooks()) {
    Json j = PoolNotebookToJson({n.pool, n.session.session});
    j["token"] = n.session.token;
    notebooks.push_back(std::move(j));
  }
  h.state["notebooks"] = std::move(notebooks);
  DSP_ASSIGN_OR_RETURN(h.listeners, DuplicateListeners());
  DSP_ASSIGN_OR_RETURN(auto pair, MakeStreamPair("the gateway's handoff"));
  argv.insert(argv.end(), {"--takeover-fd", "3"});
  DSP_ASSIGN_OR_RETURN(pid_t pid, SpawnDaemon(argv, {kDefaultChildPath}, pair.second.get()));
  pair.second.reset();
  DSP_LOG(kInfo, kLog) << "upgrade: handing " << h.listeners.size() << " listeners and "
                       << h.state["notebooks"].size() << " notebook sessions to " << argv[0] << " (pid " << pid << ")";
  auto answer = [&]() -> Result<std::string> {
    DSP_ASSIGN_OR_RETURN(h.control, Duplicate(listener_.get()));
    DSP_ASSIGN_OR_RETURN(h.lock, Duplicate(options_.lock_fd));
    DSP_RETURN_IF_ERROR(SendHandoff(pair.first.get(), h));
    DSP_RETURN_IF_ERROR(SetIoTimeouts(pair.first.get(), std::chrono::milliseconds(0), kTakeOverTimeout));
    return ReadFrame(pair.first.get(), kMaxControlFrame);
  }();
  Json said = answer.ok() ? Json::parse(*answer, nullptr, false) : Json();
  if (!answer.ok() || !said.is_object() || said.value("ok", false) != true) {
    KillChild(pid);
    const std::string why = !answer.ok()          ? answer.status().message()
                            : said.contains("error") ? StatusFromJson(said["error"]).message()
                                                     : "a bad answer";
    return Unavailable("upgrade: the new gateway (" + argv[0] + ") did not take over: " + why +
                       "; this one goes on serving");
  }
  gateway_->StopListening();
  handed_over_ = true;
  std::vector<Gateway::HandedRelay> relays = gateway_->HandOverRelays();
  if (Status s = SendRelays(pair.first.get(), relays); !s.ok()) {
    DSP_LOG(kError, kLog) << "upgrade: handing over " << relays.size() << " relayed connections: " << s;
  }
  DSP_LOG(kInfo, kLog) << "upgrade: pid " << pid << " serves now, with " << relays.size()
                       << " relayed connections handed over; this process exits once its "
                       << gateway_->OpenConnections() << " other open connections have ended";
  return Json{{"pid", pid}};
}

Status GatewayService::TakeOver(const Json& state) {
  try {
    upgrades_ = state.at("upgrades").get<int64_t>() + 1;
    if (const Json& apply = state.at("apply"); apply.is_object()) {
      Json call = apply;
      call["call"] = "apply";
      auto applied = Handle(call);
      if (!applied.ok()) DSP_LOG(kWarning, kLog) << "take-over: " << applied.status();
    }
    std::vector<Gateway::HandedNotebook> notebooks;
    for (const Json& j : state.at("notebooks")) {
      DSP_ASSIGN_OR_RETURN(Gateway::PoolNotebook n, ParsePoolNotebook(j));
      notebooks.push_back({n.pool, {std::move(n.session), j.at("token").get<std::string>()}});
    }
    gateway_->TakeOverNotebooks(std::move(notebooks));
    std::lock_guard lock(mu_);
    for (const Json& p : state.at("pending")) {
      pending_starts_[{PoolName(p.at("pool").get<std::string>()), p.at("user").get<std::string>()}] =
          p.at("token").get<std::string>();
    }
  } catch (const Json::exception& e) {
    return InvalidArgument(std::string("take-over: bad state: ") + e.what());
  }
  return Status::Ok();
}

void GatewayService::Send(const Json& message) {
  std::shared_ptr<Controller> c;
  {
    std::lock_guard lock(mu_);
    c = current_;
  }
  if (!c) return;
  if (Status s = c->Write(message); !s.ok()) {
    DSP_LOG(kWarning, kLog) << "controller does not take messages (" << s << "): dropped";
    c->Drop();
  }
}

void GatewayService::WakePool(const PoolName& pool) { Send(Json{{"event", "wake"}, {"pool", pool.value()}}); }

std::optional<std::string> GatewayService::PasswordHash(const std::string& user) {
  std::lock_guard lock(mu_);
  auto it = passwords_.find(user);
  if (it == passwords_.end()) return std::nullopt;
  return it->second;
}

void GatewayService::StartNotebook(const PoolName& pool, const std::string& user, const std::string& token) {
  {
    std::lock_guard lock(mu_);
    pending_starts_[{pool, user}] = token;
  }
  Send(Json{{"event", "startNotebook"}, {"pool", pool.value()}, {"user", user}, {"token", token}});
}

}  // namespace dspool
