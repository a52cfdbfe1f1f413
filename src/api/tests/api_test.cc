#include "api/api.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <thread>

#include "store/memory/memory_store.h"
#include "store/forwarding_store.h"

namespace dspool {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr const char* kKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAsDfSdchIXBDskRtcDOzDKEHH+e6vlnFY2yuSF2eBwd test@dspool";
constexpr const char* kFingerprint = "SHA256:y1L0+LWUlnyNevjJ6PvN601OV6bQ0ZPlNnWlg9++FXM";

class FakeHooks final : public ApiHooks {
 public:
  Status CheckPoolHost(const PoolSpec& spec, const std::vector<Pool>& existing) override {
    // As the server's: the gateway's check reads the spec's stored form.
    if (Result<PoolSpec> back = ParsePoolSpec(PoolSpecToJson(spec, Secrets::kInclude)); !back.ok()) return back.status();
    for (const Pool& p : existing) {
      if (p.spec.network.subnet.Overlaps(spec.network.subnet)) return InvalidArgument("network.subnet: overlaps");
    }
    return host_check;
  }
  Result<std::vector<std::vector<ExtensionFile>>> FetchExtensionFiles(const std::vector<ExtensionSpec>& extensions,
                                                                      const ExtensionArtifacts& artifacts) override {
    std::vector<std::vector<ExtensionFile>> out;
    for (const ExtensionSpec& e : extensions) {
      std::vector<ExtensionFile>& files = out.emplace_back();
      const std::vector<std::string> names = e.FileNames();
      std::vector<std::string> uris = e.settings.file_uris;
      uris.insert(uris.end(), e.protected_settings.file_uris.begin(), e.protected_settings.file_uris.end());
      for (size_t i = 0; i < names.size(); ++i) {
        if (names[i] == "missing.sh") return NotFound("extensions: GET " + names[i] + " answered HTTP 404");
        if (IsRelativeFileUri(uris[i])) {
          if (!artifacts.count(uris[i])) return NotFound("extensions: " + uris[i] + ": no such file was sent");
          files.push_back({names[i], artifacts.at(uris[i])});
        } else {
          files.push_back({names[i], "contents of " + names[i]});
        }
      }
    }
    return out;
  }
  Status PreparePool(const PoolSpec& spec, const std::vector<std::vector<ExtensionFile>>& files) override {
    prepared.push_back(spec.name.value());
    for (size_t i = 0; i < files.size(); ++i) kept_files[spec.name.value()][spec.extensions[i].name] = files[i];
    return Status::Ok();
  }
  Result<std::vector<ExtensionFile>> ReadExtensionFiles(const PoolName& pool, const ExtensionSpec& e) override {
    return kept_files.at(pool.value()).at(e.name);
  }
  Result<HostKey> ReadHostKey(const PoolName&) override { return HostKey{"PRIVATE", "ssh-ed25519 HOST"}; }
  void PoolsChanged() override { ++pokes; }
  void RecordReport(const InstanceId& id, const InstanceReport& r) override { reports[id] = r; }
  std::optional<InstanceReport> LastReport(const InstanceId& id) override {
    auto it = reports.find(id);
    if (it == reports.end()) return std::nullopt;
    return it->second;
  }
  std::optional<dspool::InstanceHealth> InstanceHealth(const InstanceId& id) override {
    auto it = health.find(id);
    if (it == health.end()) return std::nullopt;
    return it->second;
  }
  std::string ExtraMetrics() override { return "dspool_extra 1\n"; }
  std::vector<NotebookSessionInfo> NotebookSessions() override { return sessions; }
  std::vector<RelayedSessionInfo> RelayedSessions() override { return relayed; }
  Status StopNotebookSession(const PoolName& pool, const std::string& user) override {
    if (!stop_status.ok()) return stop_status;
    std::erase_if(sessions, [&](const NotebookSessionInfo& s) { return s.pool == pool.value() && s.user == user; });
    stopped.push_back(pool.value() + "/" + user);
    return Status::Ok();
  }
  std::vector<std::string> PushUsersChange(int64_t version) override {
    pushed_versions.push_back(version);
    return not_applied;
  }
  std::map<InstanceId, int64_t> OpenSessions(const std::vector<InstanceId>& ids) override {
    std::map<InstanceId, int64_t> known;
    for (const InstanceId& id : ids) {
      if (open_sessions.count(id)) known[id] = open_sessions.at(id);
    }
    return known;
  }
  std::map<InstanceId, int64_t> open_sessions;
  void RequestStop() override { ++stop_requests; }
  // Storage share data, by "<account>/<ShareKey>": what it holds.
  std::map<std::string, std::string> share_data;
  Status MakeShareData(const std::string& account, const std::string& key) override {
    if (!share_data.emplace(account + "/" + key, "").second) return AlreadyExists(account + "/" + key);
    return Status::Ok();
  }
  Status MoveShareData(const std::string& account, const std::string& from, const std::string& to) override {
    auto it = share_data.find(account + "/" + from);
    if (it == share_data.end()) return NotFound(account + "/" + from);
    if (share_data.count(account + "/" + to)) return AlreadyExists(account + "/" + to);
    share_data[account + "/" + to] = it->second;
    share_data.erase(account + "/" + from);
    return Status::Ok();
  }
  Status RemoveShareData(const std::string& account, const std::string& key) override {
    share_data.erase(account + "/" + key);
    return Status::Ok();
  }
  // "<instance> <account>/<share> at <target>[ ro]"
  std::vector<std::string> attached;
  Status AttachShare(const InstanceId& id, const std::string& account, const std::string& share,
                     const std::string& target, bool read_only) override {
    attached.push_back(id.value() + " " + account + "/" + share + " at " + target + (read_only ? " ro" : ""));
    return Status::Ok();
  }
  void NotebookExited(const PoolName& pool, const InstanceId& instance, const NotebookExit& exit,
                      const std::string& description) override {
    exited.push_back(pool.value() + " " + instance.value() + " " + exit.user + ": " + description);
  }
  std::vector<std::string> exited;
  int stop_requests = 0;
  Result<Json> DescribeGateway() override { return Json{{"pid", 42}}; }
  Status StopGateway() override {
    ++gateway_stops;
    return gateway_stop;
  }
  int gateway_stops = 0;
  Status gateway_stop;
  Result<Json> UpgradeGateway(const std::string& binary) override {
    upgraded_to.push_back(binary);
    if (!upgrade.ok()) return upgrade;
    return Json{{"previousPid", 42}, {"pid", 43}, {"binary", binary.empty() ? "/usr/bin/dspool" : binary}};
  }
  std::vector<std::string> upgraded_to;
  Status upgrade;
  std::vector<int64_t> pushed_versions;
  std::vector<std::string> not_applied;  // what PushUsersChange answers

  Status host_check;
  std::vector<NotebookSessionInfo> sessions;
  std::vector<RelayedSessionInfo> relayed;
  Status stop_status;
  std::vector<std::string> stopped;
  std::vector<std::string> prepared;
  std::map<std::string, std::map<std::string, std::vector<ExtensionFile>>> kept_files;  // pool → extension →
  int pokes = 0;
  std::map<InstanceId, InstanceReport> reports;
  std::map<InstanceId, dspool::InstanceHealth> health;
};

// Lets another writer (the reconcile loop) change the record just before
// each of the first `races` conditional instance updates.
class RacingStore final : public ForwardingStore {
 public:
  RacingStore(MemoryStore& inner, int races) : ForwardingStore(inner), inner_(inner), races_(races) {}
  Status Write(const WriteBatch& batch) override {
    for (const WriteBatch::Op& op : batch.ops()) {
      auto* update = std::get_if<WriteBatch::UpdateInstance>(&op);
      if (!update || races_ == 0) continue;
      --races_;
      Instance moved = update->expected;
      moved.phase_since += std::chrono::seconds(1);
      moved.reason += "+";
      DSP_RETURN_IF_ERROR(inner_.Write(WriteBatch().Add(WriteBatch::PutInstance{moved})));
    }
    return ForwardingStore::Write(batch);
  }

 private:
  MemoryStore& inner_;
  int races_;
};

class ApiTest : public ::testing::Test {
 protected:
  ApiTest() : ApiTest(DeploymentOptions{}) {}
  explicit ApiTest(DeploymentOptions deployments)
      : api_(store_, clock_, hooks_,
             ApiOptions{{20000, 20010}, "s3cret-token-0123456789", "/d", "fake", kVersion, std::move(deployments)}) {}

  Response Call(const std::string& method, const std::string& path, const std::string& body = "",
                const std::string& tag = "api", uid_t uid = 0) {
    return api_.Handle(MakeRequest(method, path, body, tag, uid));
  }

  static Request MakeRequest(const std::string& method, const std::string& path, const std::string& body = "",
                             const std::string& tag = "api", uid_t uid = 0) {
    Request r;
    r.method = method;
    r.target = path;
    size_t q = path.find('?');
    r.path = path.substr(0, q);
    if (q != std::string::npos) {
      std::string query = path.substr(q + 1);
      size_t eq = query.find('=');
      r.query[query.substr(0, eq)] = query.substr(eq + 1);
    }
    r.body = body;
    r.listener_tag = tag;
    r.peer.is_unix = tag != "api-tcp";
    r.peer.uid = uid;
    return r;
  }

  static std::string Spec(const std::string& name, const std::string& subnet, const std::string& extra = "") {
    return R"({"name": ")" + name + R"(", "instanceCount": 2, "network": {"subnet": ")" + subnet +
           R"("}, "share": {"type": "bind", "source": "/srv/s"}, "adminUser": {"name": "dsvmuser", "sshPublicKey": ")" +
           kKey + "\"" + extra + "}}";
  }

  Json Body(const Response& r) { return Json::parse(r.body); }
  size_t EventCount() { return store_.ListEvents(0, 10000)->size(); }

  // A record as the reconcile loop writes it.
  Instance AddInstance(const std::string& pool, int64_t index, InstancePhase phase = InstancePhase::kReady) {
    Instance i;
    i.id = InstanceId(pool + "-" + std::to_string(index) + "-abc");
    i.pool = PoolName(pool);
    i.index = index;
    i.phase = phase;
    i.reason = phase == InstancePhase::kDeleting ? "scale-in" : "";
    i.address = "10.231.0." + std::to_string(2 + index);
    EXPECT_TRUE(store_.Write(WriteBatch().Add(WriteBatch::PutInstance{i})).ok());
    return i;
  }

  // Gives pool `name` a loadBalancer: two rules on 127.0.0.2, NAT pools of 3
  // and 10 ports.
  void AddLoadBalancer(const std::string& name) {
    Pool pool = *store_.GetPool(PoolName(name));
    LoadBalancerSpec lb;
    lb.frontend_address = "127.0.0.2";
    lb.probes = {{.name = "tcp22", .port = 22}, {.name = "tcp8000", .port = 8000}};
    lb.rules = {{.name = "SSH", .frontend_port = 2222, .backend_port = 22, .probe = "tcp22"},
                {.name = "Jupyter", .frontend_port = 8000, .backend_port = 8000, .probe = "tcp8000"}};
    lb.nat_pools = {{.name = "sshnat", .frontend_port_start = 50000, .frontend_port_end = 50002, .backend_port = 22},
                    {.name = "jupnat", .frontend_port_start = 51000, .frontend_port_end = 51009, .backend_port = 8000}};
    pool.spec.load_balancer = lb;
    ASSERT_TRUE(store_.Write(WriteBatch().Add(WriteBatch::UpdatePool{pool, pool.generation})).ok());
  }

  MemoryStore store_;
  SimulatedClock clock_;
  FakeHooks hooks_;
  Api api_;
};

TEST_F(ApiTest, CreatePoolCreatesAdminUserAndEvents) {
  Response r = Call("POST", "/v1/pools", Spec("demo", "10.231.0.0/24", R"(, "password": "correct horse")"));
  ASSERT_EQ(r.status, 201) << r.body;
  Json pool = Body(r);
  EXPECT_EQ(pool["name"], "demo");
  EXPECT_EQ(pool["bridge"], "dsp-demo");
  EXPECT_EQ(r.body.find("correct horse"), std::string::npos);
  auto user = store_.GetUser(UserName("dsvmuser"));
  ASSERT_TRUE(user.ok());
  EXPECT_EQ(user->uid, 20000);
  EXPECT_TRUE(user->admin);
  EXPECT_EQ(user->password_hash.rfind("$y$", 0), 0u);
  EXPECT_EQ(hooks_.prepared, std::vector<std::string>{"demo"});
  EXPECT_EQ(hooks_.pokes, 1);
  auto events = *store_.ListEvents(0, 100);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].action, "pool.create");
  EXPECT_EQ(events[0].actor, "root");
  EXPECT_EQ(events[1].action, "user.create");
  for (const Event& e : events) EXPECT_EQ(e.detail.find("correct horse"), std::string::npos);
}

TEST_F(ApiTest, BadInputChangesNothing) {
  struct Case {
    std::string body;
    int status;
    std::string message;
  } cases[] = {
      {"{", 400, "request body: invalid JSON"},
      {Spec("Demo", "10.231.0.0/24"), 400, "name: 'Demo' is not a valid pool name"},
      {Spec("demo", "10.231.0.1/24"), 400, "network.subnet: '10.231.0.1/24'"},
      {Spec("demo", "10.231.0.0/24", R"(, "password": "short")"), 400, "adminUser.password: password is too short"},
      {R"({"name": "demo", "instanceCount": 1, "network": {"subnet": "10.231.0.0/24"}, "share": {"type": "bind", "source": "/s"}, "adminUser": {"name": "root", "sshPublicKey": "x"}})",
       400, "adminUser.name: 'root' is reserved"},
      {R"({"name": "demo", "instanceCount": 1, "network": {"subnet": "10.231.0.0/24"}, "share": {"type": "bind", "source": "/s"}, "adminUser": {"name": "bob", "sshPublicKey": "ssh-ed25519 AAAA"}})",
       400, "adminUser.sshPublicKey: "},
  };
  for (const Case& c : cases) {
    Response r = Call("POST", "/v1/pools", c.body);
    EXPECT_EQ(r.status, c.status) << c.body;
    std::string message = Body(r)["error"]["message"];
    EXPECT_EQ(message.rfind(c.message, 0), 0u) << message;
  }
  hooks_.host_check = InvalidArgument("network.subnet: 10.231.0.0/24 collides with the host route");
  EXPECT_EQ(Call("POST", "/v1/pools", Spec("demo", "10.231.0.0/24")).status, 400);
  EXPECT_TRUE(store_.ListPools()->empty());
  EXPECT_TRUE(store_.ListUsers()->empty());
  EXPECT_EQ(EventCount(), 0u);
  EXPECT_TRUE(hooks_.prepared.empty());
}

TEST_F(ApiTest, LoadBalancerIsValidatedAndKeptWithThePool) {
  std::string lb = R"(, "loadBalancer": {"rules": [{"name": "SSH", "frontendPort": 22, "backendPort": 22,
    "probe": "nope"}]})";
  std::string spec = Spec("demo", "10.231.0.0/24");
  spec.insert(spec.size() - 1, lb);
  Response bad = Call("POST", "/v1/pools", spec);
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(Body(bad)["error"]["message"], "loadBalancer.rules[0].probe: no probe is named 'nope'");
  EXPECT_TRUE(store_.ListPools()->empty());
  EXPECT_EQ(EventCount(), 0u);
  // A valid one is kept with the pool.
  spec = Spec("demo", "10.231.0.0/24");
  spec.insert(spec.size() - 1, R"(, "loadBalancer": {"rules": [{"name": "SSH", "frontendPort": 2222,
    "backendPort": 22, "probe": "ssh"}], "probes": [{"name": "ssh", "protocol": "Tcp", "port": 22}]})");
  Response ok = Call("POST", "/v1/pools", spec);
  ASSERT_EQ(ok.status, 201) << ok.body;
  auto pool = store_.GetPool(PoolName("demo"));
  ASSERT_TRUE(pool.ok() && pool->spec.load_balancer);
  EXPECT_EQ(pool->spec.load_balancer->rules[0].frontend_port, 2222);
}

TEST_F(ApiTest, DuplicateAndOverlappingPoolsAreRefused) {
  ASSERT_EQ(Call("POST", "/v1/pools", Spec("demo", "10.231.0.0/24")).status, 201);
  size_t events = EventCount();
  Response dup = Call("POST", "/v1/pools", Spec("demo", "10.232.0.0/24"));
  EXPECT_EQ(dup.status, 409);
  EXPECT_EQ(Body(dup)["error"]["message"], "pool 'demo' already exists");
  EXPECT_EQ(Call("POST", "/v1/pools", Spec("other", "10.231.0.128/25")).status, 400);
  EXPECT_EQ(EventCount(), events);
}

TEST_F(ApiTest, ScaleAndDelete) {
  ASSERT_EQ(Call("POST", "/v1/pools", Spec("demo", "10.231.0.0/28")).status, 201);
  Response r = Call("POST", "/v1/pools/demo/scale", R"({"instanceCount": 5})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(store_.GetPool(PoolName("demo"))->spec.instance_count, 5);
  EXPECT_EQ(Body(Call("POST", "/v1/pools/demo/scale", R"({"instanceCount": 14})"))["error"]["message"],
            "instanceCount: must be between 0 and 13 for pool 'demo'");
  EXPECT_EQ(Call("POST", "/v1/pools/nope/scale", R"({"instanceCount": 1})").status, 404);
  EXPECT_EQ(Call("DELETE", "/v1/pools/demo").status, 202);
  EXPECT_EQ(store_.GetPool(PoolName("demo"))->state, PoolState::kDeleting);
  EXPECT_EQ(Call("POST", "/v1/pools/demo/scale", R"({"instanceCount": 1})").status, 409);
  EXPECT_EQ(store_.TailEvents(1)->at(0).action, "pool.delete");
}

TEST_F(ApiTest, ForcedScaleInMarksWhatGoesAtOnceInOneWrite) {
  ASSERT_EQ(Call("POST", "/v1/pools", Spec("demo", "10.231.0.0/28")).status, 201);
  ASSERT_EQ(Call("POST", "/v1/pools/demo/scale", R"({"instanceCount": 4})").status, 200);
  Instance busy = AddInstance("demo", 0);
  Instance idle = AddInstance("demo", 1);
  Instance unknown = AddInstance("demo", 2);  // no count yet: taken last
  Instance draining = AddInstance("demo", 3);
  draining.scale_in = ScaleIn::kDrain;  // scale-in was waiting for its sessions
  ASSERT_TRUE(store_.Write(WriteBatch().Add(WriteBatch::PutInstance{draining})).ok());
  AddInstance("demo", 4, InstancePhase::kDeleting);  // leaving anyway: untouched
  hooks_.open_sessions = {{busy.id, 2}, {idle.id, 0}, {draining.id, 1}};
  auto listed = [&](const std::string& id) {
    Json all = Body(Call("GET", "/v1/instances"));
    for (const Json& i : all["instances"]) {
      if (i["id"] == id) return i;
    }
    return Json();
  };
  EXPECT_EQ(listed("demo-0-abc")["openSessions"], 2);
  EXPECT_FALSE(listed("demo-2-abc").contains("openSessions")) << "unknown is not 0";

  // Without --force nothing is marked: the reconcile loop drains.
  ASSERT_EQ(Call("POST", "/v1/pools/demo/scale", R"({"instanceCount": 2})").status, 200);
  EXPECT_EQ(store_.GetInstance(idle.id)->scale_in, ScaleIn::kNo);

  Response r = Call("POST", "/v1/pools/demo/scale", R"({"instanceCount": 1, "force": true})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(store_.GetPool(PoolName("demo"))->spec.instance_count, 1);
  EXPECT_EQ(store_.GetInstance(draining.id)->scale_in, ScaleIn::kNow);
  EXPECT_EQ(store_.GetInstance(idle.id)->scale_in, ScaleIn::kNow);
  EXPECT_EQ(store_.GetInstance(busy.id)->scale_in, ScaleIn::kNow);
  EXPECT_EQ(store_.GetInstance(unknown.id)->scale_in, ScaleIn::kNo) << "the one kept: its count is unknown";
  EXPECT_EQ(store_.GetInstance(InstanceId("demo-4-abc"))->scale_in, ScaleIn::kNo);
  Event e = store_.TailEvents(1)->at(0);
  EXPECT_EQ(e.action, "pool.scale");
  EXPECT_EQ(e.detail, "2 → 1, forced: 3 removed at once");
  EXPECT_EQ(listed("demo-1-abc")["scaleIn"], "now");

  EXPECT_EQ(Body(Call("POST", "/v1/pools/demo/scale", R"({"instanceCount": 1, "force": "yes"})"))["error"]["message"],
            "force: expected true or false, got \"yes\"");
}

TEST_F(ApiTest, ScaleSetsStandbysAloneOrWithTheCountAndNeverForcesThemOut) {
  ASSERT_EQ(Call("POST", "/v1/pools", Spec("demo", "10.231.0.0/28")).status, 201);
  ASSERT_EQ(Call("POST", "/v1/pools/demo/scale", R"({"instanceCount": 2})").status, 200);
  Response r = Call("POST", "/v1/pools/demo/scale", R"({"standbyCount": 1})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Body(r)["spec"]["standbyCount"], 1);
  EXPECT_EQ(store_.GetPool(PoolName("demo"))->spec.instance_count, 2) << "the count stays";
  EXPECT_EQ(store_.TailEvents(1)->at(0).detail, "standbys 0 → 1");
  ASSERT_EQ(Call("POST", "/v1/pools/demo/scale", R"({"instanceCount": 3, "standbyCount": 2})").status, 200);
  EXPECT_EQ(store_.TailEvents(1)->at(0).detail, "2 → 3, standbys 1 → 2");
  ASSERT_EQ(Call("POST", "/v1/pools/demo/scale", R"({"instanceCount": 2, "standbyCount": 1})").status, 200);

  const size_t events = EventCount();
  EXPECT_EQ(Body(Call("POST", "/v1/pools/demo/scale", "{}"))["error"]["message"],
            "give instanceCount, standbyCount or both");
  EXPECT_EQ(Body(Call("POST", "/v1/pools/demo/scale", R"({"standbyCount": 101})"))["error"]["message"],
            "standbyCount: must be between 0 and 100");
  EXPECT_EQ(EventCount(), events);

  // A forced scale-in takes instances, never a standby.
  AddLoadBalancer("demo");
  AddInstance("demo", 0);
  Instance standby = AddInstance("demo", 1);
  standby.standby = true;
  ASSERT_TRUE(store_.Write(WriteBatch().Add(WriteBatch::PutInstance{standby})).ok());
  hooks_.open_sessions = {{InstanceId("demo-0-abc"), 0}};
  ASSERT_EQ(Call("POST", "/v1/pools/demo/scale", R"({"instanceCount": 0, "force": true})").status, 200);
  EXPECT_EQ(store_.GetInstance(InstanceId("demo-0-abc"))->scale_in, ScaleIn::kNow);
  EXPECT_EQ(store_.GetInstance(standby.id)->scale_in, ScaleIn::kNo);
  EXPECT_EQ(store_.GetPool(PoolName("demo"))->spec.standby_count, 1) << "standbyCount stays";

  // Nor is a standby drained: it gets no connection anyway.
  r = Call("POST", "/v1/instances/demo-1-abc/drain");
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(Body(r)["error"]["message"],
            "instance 'demo-1-abc' is a standby of pool 'demo': it gets no connection until a scale-out takes it; "
            "lower the pool's standbyCount to remove it");
  EXPECT_FALSE(store_.GetInstance(standby.id)->draining);
  Json listed = Body(Call("GET", "/v1/instances?pool=demo"));
  ASSERT_EQ(listed["instances"].size(), 2u);
  EXPECT_EQ(listed["instances"][1]["standby"], true);
  EXPECT_EQ(listed["instances"][0]["natPorts"].size(), 2u);
  EXPECT_EQ(listed["instances"][1]["natPorts"], Json::array()) << "no NAT slot reaches a standby";
}

TEST_F(ApiTest, ServerStopIsRecordedThenAsked) {
  EXPECT_EQ(Call("POST", "/v1/server/stop", R"({"now": true})").status, 400);
  EXPECT_EQ(hooks_.stop_requests, 0);
  Response r = Call("POST", "/v1/server/stop");
  ASSERT_EQ(r.status, 202) << r.body;
  EXPECT_EQ(Body(r)["stopping"], true);
  EXPECT_EQ(Body(r)["pid"], static_cast<int64_t>(::getpid()));
  EXPECT_EQ(hooks_.stop_requests, 1);
  Event e = store_.TailEvents(1)->at(0);
  EXPECT_EQ(e.action, "server.stop");
  EXPECT_EQ(e.actor, "root");
  EXPECT_EQ(Call("GET", "/v1/server/stop").status, 400) << "a GET stops nothing";
  EXPECT_EQ(hooks_.stop_requests, 1);
  EXPECT_EQ(hooks_.gateway_stops, 0) << "the gateway outlives the server unless asked";
}

TEST_F(ApiTest, ServerStopWithTheGatewayStopsItFirst) {
  hooks_.gateway_stop = Unavailable("the gateway is not linked");
  Response r = Call("POST", "/v1/server/stop", R"({"gateway": true})");
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_EQ(hooks_.stop_requests, 0) << "the server stays while its gateway could not be stopped";
  hooks_.gateway_stop = Status::Ok();
  r = Call("POST", "/v1/server/stop", R"({"gateway": true})");
  ASSERT_EQ(r.status, 202) << r.body;
  EXPECT_EQ(hooks_.gateway_stops, 2);
  EXPECT_EQ(hooks_.stop_requests, 1);
  EXPECT_EQ(store_.TailEvents(1)->at(0).detail, "stopped by request with the gateway; the instances keep running");
}

TEST_F(ApiTest, GatewayUpgradeIsAskedThenRecorded) {
  EXPECT_EQ(Body(Call("GET", "/v1/gateway"))["pid"], 42);
  EXPECT_EQ(Call("POST", "/v1/gateway/upgrade", R"({"binary": 7})").status, 400);
  EXPECT_TRUE(hooks_.upgraded_to.empty()) << "a bad body asks nothing";
  hooks_.upgrade = PermissionDenied("upgrade: the new binary /tmp/x: must be root's and writable by root alone");
  Response r = Call("POST", "/v1/gateway/upgrade", R"({"binary": "/tmp/x"})");
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(Body(r)["error"]["message"], "upgrade: the new binary /tmp/x: must be root's and writable by root alone");
  EXPECT_TRUE(store_.TailEvents(1)->empty()) << "a failed upgrade is not recorded as done";
  hooks_.upgrade = Status::Ok();
  r = Call("POST", "/v1/gateway/upgrade");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Body(r)["pid"], 43);
  EXPECT_EQ(hooks_.upgraded_to.back(), "") << "no binary: the server's own";
  Event e = store_.TailEvents(1)->at(0);
  EXPECT_EQ(e.action, "gateway.upgrade");
  EXPECT_EQ(e.detail, "pid 42 handed over to pid 43 (/usr/bin/dspool)");
}

TEST_F(ApiTest, UsersKeysAndStableUids) {
  Response r = Call("POST", "/v1/users", R"({"name": "alice", "sshKeys": [")" + std::string(kKey) + R"("]})");
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(Body(r)["uid"], 20000);
  EXPECT_EQ(Body(r)["sshKeys"][0]["fingerprint"], kFingerprint);
  EXPECT_EQ(Call("POST", "/v1/users", R"({"name": "alice"})").status, 409);
  EXPECT_EQ(Body(Call("POST", "/v1/users", R"({"name": "bob"})"))["uid"], 20001);
  ASSERT_EQ(Call("DELETE", "/v1/users/bob").status, 200);
  // bob's files keep uid 20001 on the share: never reused.
  EXPECT_EQ(Body(Call("POST", "/v1/users", R"({"name": "carol"})"))["uid"], 20002);
  EXPECT_EQ(Call("DELETE", "/v1/users/bob").status, 404);

  EXPECT_EQ(Call("POST", "/v1/users/alice/keys", R"({"key": ")" + std::string(kKey) + R"("})").status, 409);
  EXPECT_EQ(Call("DELETE", std::string("/v1/users/alice/keys?fingerprint=") + kFingerprint).status, 200);
  EXPECT_TRUE(store_.GetUser(UserName("alice"))->ssh_keys.empty());
  EXPECT_EQ(Call("DELETE", std::string("/v1/users/alice/keys/") + kFingerprint).status, 404);
  Response bad = Call("POST", "/v1/users/alice/keys", R"({"key": "-----BEGIN OPENSSH PRIVATE KEY-----"})");
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(Body(bad)["error"]["message"], "key: this is a private key; give the .pub file (for example ~/.ssh/id_ed25519.pub)");
  // The hash never leaves the server.
  ASSERT_EQ(Call("PUT", "/v1/users/alice/password", R"({"password": "a long passphrase"})").status, 200);
  EXPECT_EQ(Call("GET", "/v1/users/alice").body.find("$y$"), std::string::npos);
  EXPECT_EQ(Call("GET", "/v1/users").body.find("$y$"), std::string::npos);
}

// A deleted name keeps its uid: a plain re-add is refused and says what to
// do; --restore gives the old uid back (and with it the files on the
// shares); --new-uid makes someone new of that name.
TEST_F(ApiTest, ADeletedUserIsRestoredWithTheirUidAndAPlainReAddIsRefused) {
  ASSERT_EQ(Call("POST", "/v1/users", R"({"name": "alice"})").status, 201);
  ASSERT_EQ(Call("POST", "/v1/users", R"({"name": "bob"})").status, 201);
  ASSERT_EQ(Call("DELETE", "/v1/users/bob").status, 200);
  ASSERT_EQ(Call("POST", "/v1/users", R"({"name": "carol"})").status, 201);

  size_t events = EventCount();
  Response plain = Call("POST", "/v1/users", R"({"name": "bob"})");
  EXPECT_EQ(plain.status, 409);
  std::string message = Body(plain)["error"]["message"];
  EXPECT_THAT(message, StartsWith("name: user 'bob' was deleted at "));
  EXPECT_THAT(message, HasSubstr("their uid 20001 and their files on the shares are kept. "
                                 "`dspool user add bob --restore` gives them back"));
  EXPECT_EQ(store_.GetUser(UserName("bob")).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(EventCount(), events) << "a refused add changes nothing";
  // A pool whose admin would be the deleted name is refused the same way.
  std::string spec = Spec("demo", "10.231.0.0/24");
  Response pool = Call("POST", "/v1/pools", spec.replace(spec.find("dsvmuser"), 8, "bob"));
  EXPECT_EQ(pool.status, 409) << pool.body;
  EXPECT_THAT(std::string(Body(pool)["error"]["message"]), StartsWith("adminUser.name: user 'bob' was deleted at "));
  EXPECT_EQ(store_.GetPool(PoolName("demo")).status().code(), StatusCode::kNotFound);

  EXPECT_EQ(Body(Call("POST", "/v1/users", R"({"name": "dave", "restore": true})"))["error"]["message"],
            "name: no deleted user 'dave' to restore (`dspool user add dave` without --restore makes a new one)");
  EXPECT_EQ(Body(Call("POST", "/v1/users", R"({"name": "bob", "restore": true, "newUid": true})"))["error"]["message"],
            "restore, newUid: give one or the other");

  Response back = Call("POST", "/v1/users", R"({"name": "bob", "restore": true, "sshKeys": [")" + std::string(kKey) + R"("]})");
  ASSERT_EQ(back.status, 201) << back.body;
  EXPECT_EQ(Body(back)["uid"], 20001);
  EXPECT_EQ(store_.GetUser(UserName("bob"))->ssh_keys.size(), 1u);
  Event e = store_.TailEvents(1)->at(0);
  EXPECT_EQ(e.action, "user.restore");
  EXPECT_THAT(e.detail, StartsWith("uid 20001 and its files, as before its deletion at "));
  EXPECT_EQ(Call("POST", "/v1/users", R"({"name": "bob", "restore": true})").status, 409) << "exists again";

  // Deleted again, then the name given to someone new: a new uid, and the
  // name is free of its past (deleting the new bob remembers the new uid).
  ASSERT_EQ(Call("DELETE", "/v1/users/bob").status, 200);
  Response fresh = Call("POST", "/v1/users", R"({"name": "bob", "newUid": true})");
  ASSERT_EQ(fresh.status, 201) << fresh.body;
  EXPECT_EQ(Body(fresh)["uid"], 20003);
  EXPECT_EQ(store_.TailEvents(1)->at(0).detail, "uid 20003; the deleted bob's files stay with uid 20001");
  ASSERT_EQ(Call("DELETE", "/v1/users/bob").status, 200);
  Response again = Call("POST", "/v1/users", R"({"name": "bob", "restore": true})");
  ASSERT_EQ(again.status, 201) << again.body;
  EXPECT_EQ(Body(again)["uid"], 20003);
}

// A change of the users returns once the running instances applied it:
// each change is pushed with its version, after it is committed, and the
// instances that did not confirm are named.
TEST_F(ApiTest, UserChangesArePushedToTheInstancesBeforeTheAnswer) {
  ASSERT_EQ(Call("POST", "/v1/users", R"({"name": "alice"})").status, 201);
  ASSERT_EQ(Call("POST", "/v1/users/alice/keys", R"({"key": ")" + std::string(kKey) + R"("})").status, 201);
  ASSERT_EQ(Call("PUT", "/v1/users/alice/password", R"({"password": "a long passphrase"})").status, 200);
  ASSERT_EQ(Call("DELETE", std::string("/v1/users/alice/keys/") + kFingerprint).status, 200);
  ASSERT_EQ(Call("DELETE", "/v1/users/alice").status, 200);
  ASSERT_EQ(hooks_.pushed_versions.size(), 5u);
  for (size_t i = 1; i < hooks_.pushed_versions.size(); ++i) {
    EXPECT_EQ(hooks_.pushed_versions[i], hooks_.pushed_versions[i - 1] + 1);
  }
  EXPECT_EQ(std::to_string(hooks_.pushed_versions.back()), *store_.GetMeta("users_version"))
      << "pushed after the commit, with the committed version";

  hooks_.not_applied = {"demo-0-x: no answer in 10 s"};
  Response r = Call("POST", "/v1/users", R"({"name": "bob"})");
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(Body(r)["notAppliedOn"], Json::array({"demo-0-x: no answer in 10 s"}));
  EXPECT_EQ(Body(r)["name"], "bob");
  // A refused change pushes nothing.
  EXPECT_EQ(Call("POST", "/v1/users", R"({"name": "bob"})").status, 409);
  EXPECT_EQ(hooks_.pushed_versions.size(), 6u);
}

TEST_F(ApiTest, AccessControl) {
  EXPECT_EQ(Call("GET", "/v1/pools", "", "api", 1000).status, 403);
  EXPECT_EQ(Call("GET", "/v1/pools", "", "api-tcp").status, 401);
  Request r;
  r.method = "GET";
  r.path = "/v1/pools";
  r.listener_tag = "api-tcp";
  r.headers["authorization"] = "Bearer s3cret-token-0123456789";
  EXPECT_EQ(api_.Handle(r).status, 200);
  r.headers["authorization"] = "Bearer s3cret-token-0123456788";
  EXPECT_EQ(api_.Handle(r).status, 401);
  // An agent channel reaches only the agent resources.
  EXPECT_EQ(Call("GET", "/v1/pools", "", "agent:demo-0-x").status, 404);
}

TEST_F(ApiTest, AgentChannel) {
  ASSERT_EQ(Call("POST", "/v1/pools", Spec("demo", "10.231.0.0/24")).status, 201);
  Instance inst;
  inst.id = InstanceId("demo-1-abc");
  inst.pool = PoolName("demo");
  inst.index = 1;
  inst.address = "10.231.0.11";
  ASSERT_TRUE(store_.Write(WriteBatch().Add(WriteBatch::PutInstance{inst})).ok());
  // The instance's root, as SO_PEERCRED shows it to the host.
  const uid_t root = Body(Call("GET", "/v1/pools/demo"))["idBase"].get<uid_t>();
  ASSERT_GE(root, 1'000'000u);

  // Only the instance's root speaks on its channel: not the host's root, not
  // a user inside the instance, not another pool's instance.
  for (uid_t stranger : {uid_t{0}, root + 20000, root + 65536}) {
    Response refused = Call("GET", "/v1/agent/config", "", "agent:demo-1-abc", stranger);
    EXPECT_EQ(refused.status, 403) << stranger;
    EXPECT_EQ(Body(refused)["error"]["message"],
              "the channel of instance demo-1-abc serves its root only (host uid " + std::to_string(root) +
                  "), not peer uid " + std::to_string(stranger));
  }
  Response config = Call("GET", "/v1/agent/config", "", "agent:demo-1-abc", root);
  ASSERT_EQ(config.status, 200) << config.body;
  Json c = Body(config);
  EXPECT_EQ(c["hostname"], "demo1");
  EXPECT_EQ(c["address"], "10.231.0.11");
  EXPECT_EQ(c["hostPrivateKey"], "PRIVATE");
  EXPECT_EQ(c["users"][0]["name"], "dsvmuser");
  int64_t version = c["configVersion"];

  Response report = Call("POST", "/v1/agent/report", R"({"sshdListening": true, "cpuPermille": 125, "sshSessions": 2})",
                         "agent:demo-1-abc", root);
  ASSERT_EQ(report.status, 200) << report.body;
  EXPECT_EQ(Body(report)["configVersion"], version);
  EXPECT_DOUBLE_EQ(hooks_.reports[inst.id].cpu_percent.value_or(-1), 12.5);
  EXPECT_EQ(Call("POST", "/v1/agent/report", R"({"sshSessions": -1})", "agent:demo-1-abc", root).status, 400);

  // A user change bumps the version the agent sees.
  ASSERT_EQ(Call("POST", "/v1/users", R"({"name": "alice"})").status, 201);
  EXPECT_GT(Body(Call("POST", "/v1/agent/report", R"({"sshdListening": true, "sshSessions": 2})",
                      "agent:demo-1-abc", root))["configVersion"],
            version);

  Response keys = Call("GET", "/v1/agent/keys/dsvmuser", "", "agent:demo-1-abc", root);
  EXPECT_EQ(Body(keys)["keys"][0], kKey);
  EXPECT_EQ(Call("GET", "/v1/agent/keys/nobody1", "", "agent:demo-1-abc", root).status, 404);
  // A channel of an instance that does not exist is refused.
  EXPECT_EQ(Call("GET", "/v1/agent/config", "", "agent:demo-9-zzz", root).status, 404);

  // Notebook servers that ended unasked: one event each, then the hook.
  const size_t events = EventCount();
  Json exits = {{"sshdListening", true},
                {"sshSessions", 2},
                {"memoryLimitBytes", 512 << 20},
                {"notebookExits",
                 {{{"user", "alice"}, {"pid", 120}, {"port", 9000}, {"reason", "out of memory"}, {"at", 1}},
                  {{"user", "dsvmuser"}, {"pid", 130}, {"port", 9001}, {"reason", "exit 1"}, {"at", 2}}}}};
  Response exited = Call("POST", "/v1/agent/report", exits.dump(), "agent:demo-1-abc", root);
  ASSERT_EQ(exited.status, 200) << exited.body;
  auto listed = *store_.ListEvents(0, 10000);
  ASSERT_EQ(listed.size(), events + 2);
  const Event& oom = listed[events];
  EXPECT_EQ(oom.action, "notebook.oom");
  EXPECT_EQ(oom.actor, "agent:demo-1-abc");
  EXPECT_EQ(oom.subject, "user/alice");
  EXPECT_EQ(oom.detail,
            "the notebook server of alice in pool demo on instance demo-1-abc (pid 120, port 9000) ran out of memory "
            "(limit 512 MiB) and was stopped");
  EXPECT_EQ(listed[events + 1].action, "notebook.exit");
  EXPECT_EQ(listed[events + 1].detail,
            "the notebook server of dsvmuser in pool demo on instance demo-1-abc (pid 130, port 9001) exited (exit 1)");
  EXPECT_EQ(hooks_.exited, (std::vector<std::string>{
                               "demo demo-1-abc alice: ran out of memory (limit 512 MiB) and was stopped",
                               "demo demo-1-abc dsvmuser: exited (exit 1)"}));
  // An unknown user: refused, named, nothing written (the agent sends it again).
  exits["notebookExits"][1]["user"] = "mallory";
  Response refused_exit = Call("POST", "/v1/agent/report", exits.dump(), "agent:demo-1-abc", root);
  EXPECT_EQ(refused_exit.status, 400);
  EXPECT_EQ(Body(refused_exit)["error"]["message"], "report.notebookExits[1].user: 'mallory' is not a pool user");
  EXPECT_EQ(EventCount(), events + 2);
  EXPECT_EQ(hooks_.exited.size(), 2u);

  std::string instances = Call("GET", "/v1/instances?pool=demo").body;
  EXPECT_NE(instances.find("\"sshSessions\":2"), std::string::npos);
  std::string metrics = Call("GET", "/metrics").body;
  EXPECT_NE(metrics.find("dspool_instance_ssh_sessions{pool=\"demo\",instance=\"demo-1-abc\"} 2"), std::string::npos);
  EXPECT_NE(metrics.find("dspool_extra 1"), std::string::npos);
}


TEST_F(ApiTest, DrainAndUndrainSetTheFlagOnceWithAnEvent) {
  ASSERT_EQ(Call("POST", "/v1/pools", Spec("demo", "10.231.0.0/24")).status, 201);
  Instance inst = AddInstance("demo", 0);
  size_t events = EventCount();
  int pokes = hooks_.pokes;

  Response r = Call("POST", "/v1/instances/demo-0-abc/drain");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Body(r)["id"], "demo-0-abc");
  EXPECT_EQ(Body(r)["draining"], true);
  EXPECT_EQ(Body(r)["phase"], "Ready");
  EXPECT_TRUE(store_.GetInstance(inst.id)->draining);
  EXPECT_EQ(hooks_.pokes, pokes + 1);
  ASSERT_EQ(EventCount(), events + 1);
  Event e = store_.TailEvents(1)->at(0);
  EXPECT_EQ(e.action, "instance.drain");
  EXPECT_EQ(e.actor, "root");
  EXPECT_EQ(e.subject, "instance/demo-0-abc");
  EXPECT_EQ(Body(Call("GET", "/v1/instances"))["instances"][0]["draining"], true);

  // Again: the same answer, no second event, nothing to reconcile.
  Response again = Call("POST", "/v1/instances/demo-0-abc/drain", "{}");
  ASSERT_EQ(again.status, 200) << again.body;
  EXPECT_EQ(Body(again)["draining"], true);
  EXPECT_EQ(EventCount(), events + 1);
  EXPECT_EQ(hooks_.pokes, pokes + 1);

  Response back = Call("POST", "/v1/instances/demo-0-abc/undrain");
  ASSERT_EQ(back.status, 200) << back.body;
  EXPECT_EQ(Body(back)["draining"], false);
  EXPECT_EQ(*store_.GetInstance(inst.id), inst);
  EXPECT_EQ(store_.TailEvents(1)->at(0).action, "instance.undrain");
  EXPECT_EQ(hooks_.pokes, pokes + 2);
  EXPECT_EQ(Call("POST", "/v1/instances/demo-0-abc/undrain").status, 200);
  EXPECT_EQ(EventCount(), events + 2);

  // Over TCP, the token is the actor.
  Request tcp = MakeRequest("POST", "/v1/instances/demo-0-abc/drain", "", "api-tcp");
  tcp.peer.address = "127.0.0.1";
  tcp.headers["authorization"] = "Bearer s3cret-token-0123456789";
  ASSERT_EQ(api_.Handle(tcp).status, 200);
  EXPECT_EQ(store_.TailEvents(1)->at(0).actor, "token@127.0.0.1");
}

TEST_F(ApiTest, DrainRefusesBadRequestsAndChangesNothing) {
  ASSERT_EQ(Call("POST", "/v1/pools", Spec("demo", "10.231.0.0/24")).status, 201);
  AddInstance("demo", 0);
  AddInstance("demo", 1, InstancePhase::kDeleting);
  auto instances = *store_.ListInstances({});
  size_t events = EventCount();
  int pokes = hooks_.pokes;
  struct Case {
    std::string method, path, body, tag;
    int status;
    std::string message;
  } cases[] = {
      {"POST", "/v1/instances/demo-7-zzz/drain", "", "api", 404, "instance 'demo-7-zzz' does not exist"},
      {"POST", "/v1/instances/demo-7-zzz/undrain", "", "api", 404, "instance 'demo-7-zzz' does not exist"},
      {"POST", "/v1/instances/demo-1-abc/drain", "", "api", 409,
       "instance 'demo-1-abc' of pool 'demo' is being deleted (scale-in); it cannot be drained"},
      {"POST", "/v1/instances/demo-1-abc/undrain", "", "api", 409,
       "instance 'demo-1-abc' of pool 'demo' is being deleted (scale-in); it cannot be put back in rotation"},
      {"GET", "/v1/instances/demo-0-abc/drain", "", "api", 400,
       "method GET is not allowed on /v1/instances/demo-0-abc/drain"},
      {"DELETE", "/v1/instances/demo-0-abc/undrain", "", "api", 400,
       "method DELETE is not allowed on /v1/instances/demo-0-abc/undrain"},
      {"POST", "/v1/instances/demo-0-abc/drain", "{", "api", 400, "request body: invalid JSON"},
      {"POST", "/v1/instances/demo-0-abc/drain", "[]", "api", 400, "request body: expected a JSON object"},
      {"POST", "/v1/instances/demo-0-abc/drain", R"({"force": true})", "api", 400, "force: unknown field"},
      {"POST", "/v1/instances/demo-0-abc/frobnicate", "", "api", 404,
       "no resource at /v1/instances/demo-0-abc/frobnicate"},
      {"POST", "/v1/instances/demo-0-abc", "", "api", 404, "no resource at /v1/instances/demo-0-abc"},
      {"POST", "/v1/instances/demo-0-abc/drain", "", "api-tcp", 401, "missing or wrong bearer token"},
      {"POST", "/v1/instances/demo-0-abc/drain", "", "agent:demo-0-abc", 404, "no agent resource at "},
  };
  for (const Case& c : cases) {
    Response r = api_.Handle(MakeRequest(c.method, c.path, c.body, c.tag));
    EXPECT_EQ(r.status, c.status) << c.method << " " << c.path << " " << c.body;
    std::string message = Body(r)["error"]["message"];
    EXPECT_EQ(message.rfind(c.message, 0), 0u) << message;
  }
  EXPECT_EQ(Call("POST", "/v1/instances/demo-0-abc/drain", "", "api", 1000).status, 403);
  EXPECT_EQ(*store_.ListInstances({}), instances);
  EXPECT_EQ(EventCount(), events);
  EXPECT_EQ(hooks_.pokes, pokes);
}

TEST_F(ApiTest, DrainKeepsWhatTheLoopWroteMeanwhile) {
  ASSERT_EQ(Call("POST", "/v1/pools", Spec("demo", "10.231.0.0/24")).status, 201);
  Instance inst = AddInstance("demo", 0, InstancePhase::kBooting);
  ApiOptions options{{20000, 20010}, "s3cret-token-0123456789", "/d", "fake"};
  {
    RacingStore racing(store_, 2);
    Api api(racing, clock_, hooks_, options);
    Response r = api.Handle(MakeRequest("POST", "/v1/instances/demo-0-abc/drain"));
    ASSERT_EQ(r.status, 200) << r.body;
    Instance now = *store_.GetInstance(inst.id);
    EXPECT_TRUE(now.draining);
    EXPECT_EQ(now.reason, "++");  // both of the loop's writes kept
    EXPECT_EQ(store_.TailEvents(1)->at(0).action, "instance.drain");
  }
  size_t events = EventCount();
  // A loop that never lets go: the API gives up with Aborted, having changed nothing.
  RacingStore racing(store_, 1000);
  Api api(racing, clock_, hooks_, options);
  Response r = api.Handle(MakeRequest("POST", "/v1/instances/demo-0-abc/undrain"));
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(Body(r)["error"]["message"], "instance 'demo-0-abc' was changed concurrently; retry");
  EXPECT_TRUE(store_.GetInstance(inst.id)->draining);
  EXPECT_EQ(EventCount(), events);
}

TEST_F(ApiTest, PoolShowsFrontendsAndInstancesTheirNatPortsAndHealth) {
  ASSERT_EQ(Call("POST", "/v1/pools", Spec("team", "10.231.0.0/24")).status, 201);
  AddLoadBalancer("team");
  AddInstance("team", 0);
  AddInstance("team", 2, InstancePhase::kBooting);
  AddInstance("team", 5);  // past the 3 ports of sshnat
  hooks_.health[InstanceId("team-0-abc")] = {"healthy", true, 2};
  hooks_.health[InstanceId("team-2-abc")] = {"probing", false, 0};

  Response r = Call("GET", "/v1/pools/team");
  ASSERT_EQ(r.status, 200) << r.body;
  Json pool = Body(r);
  EXPECT_EQ(pool["frontends"], Json::parse(R"([
    {"rule": "SSH", "address": "127.0.0.2", "port": 2222, "backendPort": 22},
    {"rule": "Jupyter", "address": "127.0.0.2", "port": 8000, "backendPort": 8000}])"));
  const Json& instances = pool["instances"];
  ASSERT_EQ(instances.size(), 3u);
  EXPECT_EQ(instances[0]["health"], Json::parse(R"({"state": "healthy", "inRotation": true, "connections": 2})"));
  EXPECT_EQ(instances[0]["natPorts"],
            Json::parse(R"([{"natPool": "sshnat", "port": 50000}, {"natPool": "jupnat", "port": 51000}])"));
  EXPECT_EQ(instances[1]["health"]["state"], "probing");
  EXPECT_EQ(instances[1]["natPorts"],
            Json::parse(R"([{"natPool": "sshnat", "port": 50002}, {"natPool": "jupnat", "port": 51002}])"));
  EXPECT_FALSE(instances[2].contains("health"));
  EXPECT_EQ(instances[2]["natPorts"], Json::parse(R"([{"natPool": "jupnat", "port": 51005}])"));

  // The instance list says the same.
  Json listed = Body(Call("GET", "/v1/instances"))["instances"];
  ASSERT_EQ(listed.size(), 3u);
  for (size_t k = 0; k < 3; ++k) EXPECT_EQ(listed[k], instances[k]) << k;
}

TEST_F(ApiTest, PoolWithJupyterShowsItsHttpsFrontend) {
  ASSERT_EQ(Call("POST", "/v1/pools", Spec("lab", "10.231.0.0/24")).status, 201);
  Pool pool = *store_.GetPool(PoolName("lab"));
  pool.spec.jupyter = JupyterSpec{.frontend_port = 8443};
  ASSERT_TRUE(store_.Write(WriteBatch().Add(WriteBatch::UpdatePool{pool, pool.generation})).ok());
  // No load balancer: all addresses.
  EXPECT_EQ(Body(Call("GET", "/v1/pools/lab"))["frontends"],
            Json::parse(R"([{"rule": "Jupyter", "address": "0.0.0.0", "port": 8443, "https": true}])"));
  AddLoadBalancer("lab");
  EXPECT_EQ(Body(Call("GET", "/v1/pools/lab"))["frontends"].back(),
            Json::parse(R"({"rule": "Jupyter", "address": "127.0.0.2", "port": 8443, "https": true})"));
}

TEST_F(ApiTest, PoolWithoutLoadBalancerHasNoFrontendsNatPortsOrHealth) {
  ASSERT_EQ(Call("POST", "/v1/pools", Spec("demo", "10.231.0.0/24")).status, 201);
  AddInstance("demo", 0);
  Json pool = Body(Call("GET", "/v1/pools/demo"));
  EXPECT_FALSE(pool.contains("frontends"));
  ASSERT_EQ(pool["instances"].size(), 1u);
  EXPECT_FALSE(pool["instances"][0].contains("natPorts"));
  EXPECT_FALSE(pool["instances"][0].contains("health"));
  EXPECT_EQ(pool["instances"][0]["draining"], false);
  // An instance whose pool record is gone is still listed.
  AddInstance("ghost", 0);
  Json listed = Body(Call("GET", "/v1/instances"))["instances"];
  ASSERT_EQ(listed.size(), 2u);
  EXPECT_EQ(listed[1]["pool"], "ghost");
  EXPECT_FALSE(listed[1].contains("natPorts"));
}

TEST_F(ApiTest, SessionsListAndStop) {
  EXPECT_EQ(Body(Call("GET", "/v1/sessions")), Json::parse(R"({"sessions": []})"));
  hooks_.sessions = {
      {"team", "alice", "team-0-ab", "ready", "", FromUnixMillis(1'700'000'000'000), FromUnixMillis(1'700'000'060'000),
       1, 0, 2},
      {"lab", "alice", "", "failed", "no instance", FromUnixMillis(1'700'000'000'000),
       FromUnixMillis(1'700'000'000'000), 0, 0, 0},
      {"team", "bob", "", "starting", "", FromUnixMillis(1'700'000'000'000), FromUnixMillis(1'700'000'000'000), 0, 0,
       0}};
  hooks_.sessions[0].client = "192.0.2.7";
  hooks_.relayed = {{"team", "team-0-ab", "ssh", "127.0.0.1:40022", 2222, "10.232.5.2:22", "10.232.5.1:51234", false,
                     FromUnixMillis(1'700'000'030'000)}};
  Response list = Call("GET", "/v1/sessions");
  ASSERT_EQ(list.status, 200) << list.body;
  ASSERT_EQ(Body(list)["sessions"].size(), 4u);
  EXPECT_EQ(Body(list)["sessions"][0], NotebookSessionInfoToJson(hooks_.sessions[0]));
  EXPECT_EQ(Body(list)["sessions"][0]["kind"], "notebook");
  EXPECT_EQ(Body(list)["sessions"][0]["client"], "192.0.2.7");
  // The SSH sessions follow the notebook servers, each with the address
  // the instance sees (its sshd's log line).
  EXPECT_EQ(Body(list)["sessions"][3], Json::parse(R"({"kind": "ssh", "pool": "team", "instance": "team-0-ab",
      "client": "127.0.0.1:40022", "frontendPort": 2222, "instanceAddress": "10.232.5.2:22",
      "instanceSees": "10.232.5.1:51234", "transparent": false, "startedAt": ")" +
                                                            FormatTime(FromUnixMillis(1'700'000'030'000)) + "\"}"));
  EXPECT_EQ(Call("POST", "/v1/sessions").status, 400);
  size_t events = EventCount();

  // Unknown user, or not in that pool: 404 naming them; nothing stopped.
  Response unknown = Call("DELETE", "/v1/sessions/carol");
  EXPECT_EQ(unknown.status, 404);
  EXPECT_EQ(Body(unknown)["error"]["message"], "user 'carol' has no notebook server");
  EXPECT_EQ(Body(Call("DELETE", "/v1/sessions/bob?pool=lab"))["error"]["message"],
            "user 'bob' has no notebook server in pool 'lab'");
  // Several pools and no ?pool=: 400 naming them.
  Response ambiguous = Call("DELETE", "/v1/sessions/alice");
  EXPECT_EQ(ambiguous.status, 400);
  EXPECT_EQ(Body(ambiguous)["error"]["message"],
            "user 'alice' has notebook servers in pools team, lab: name one with ?pool=NAME");
  EXPECT_TRUE(hooks_.stopped.empty());
  EXPECT_EQ(EventCount(), events);

  Response stopped = Call("DELETE", "/v1/sessions/alice?pool=team");
  EXPECT_EQ(stopped.status, 204);
  EXPECT_EQ(stopped.body, "");
  EXPECT_EQ(hooks_.stopped, std::vector<std::string>{"team/alice"});
  ASSERT_EQ(EventCount(), events + 1);
  Event e = store_.TailEvents(1)->at(0);
  EXPECT_EQ(e.action, "session.stop");
  EXPECT_EQ(e.actor, "root");
  EXPECT_EQ(e.subject, "session/team/alice");
  EXPECT_EQ(e.detail, "ready on instance team-0-ab");
  // One session left: no ?pool= needed.
  EXPECT_EQ(Call("DELETE", "/v1/sessions/alice").status, 204);
  EXPECT_EQ(hooks_.stopped.back(), "lab/alice");

  // A failed stop records no event.
  hooks_.stop_status = Unavailable("instance team-0-ab: agent does not answer");
  Response failed = Call("DELETE", "/v1/sessions/bob");
  EXPECT_EQ(failed.status, 503);
  EXPECT_EQ(EventCount(), events + 2);
}

// ---------------------------------------------------------------- groups and deployments

class DeploymentApiTest : public ApiTest {
 protected:
  DeploymentApiTest()
      : ApiTest(DeploymentOptions{.host = {.front_address = "127.0.0.9", },
                                  .ready_poll = std::chrono::milliseconds(1)}) {}

  // The reference's sample, as the CLI sends it: the text, and parameters.
  static std::string SampleBody(int64_t count, const std::string& mode = "Incremental") {
    std::ifstream in(std::string(DSPOOL_SAMPLES) + "/dsvm-vmss-cluster.json");
    std::stringstream text;
    text << in.rdbuf();
    Json body = {{"template", text.str()},
                 {"mode", mode},
                 {"source", "dsvm-vmss-cluster.json"},
                 {"parameters",
                  {{"adminUsername", {{"value", "dsvmuser"}}},
                   {"adminPassword", {{"value", "Pa55-word-xyz"}}},
                   {"vmssName", {{"value", "pool1"}}},
                   {"storageAccountKey", {{"value", "KEY-abc"}}},
                   {"storageAccountName", {{"value", "acct"}}},
                   {"instanceCount", {{"value", count}}}}}};
    return body.dump();
  }

  // Waits (up to a minute) until `done` holds; the deployment runs on its
  // own thread.
  template <typename F>
  bool WaitFor(F done) {
    for (int i = 0; i < 60000; ++i) {
      if (done()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return done();
  }

  std::string DeploymentState(const std::string& name) {
    Response r = Call("GET", "/v1/groups/rg1/deployments/" + name);
    return r.status == 200 ? Body(r)["properties"]["provisioningState"].get<std::string>() : "";
  }
};

TEST_F(DeploymentApiTest, GroupsAsAzHasThem) {
  Response r = Call("PUT", "/v1/groups/RG1", R"({"location": "local", "tags": {"team": "ds"}})");
  ASSERT_EQ(r.status, 201) << r.body;
  Json g = Body(r);
  EXPECT_EQ(g["name"], "RG1");
  EXPECT_THAT(g["id"].get<std::string>(), ::testing::MatchesRegex("/subscriptions/[0-9a-f-]{36}/resourceGroups/RG1"));
  EXPECT_EQ(g["properties"]["provisioningState"], "Succeeded");
  EXPECT_EQ(g["tags"]["team"], "ds");

  // The same group, in any case: updated, keeping its name and its tags.
  r = Call("PUT", "/v1/groups/rg1", R"({"location": "local"})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Body(r)["name"], "RG1");
  EXPECT_EQ(Body(r)["tags"]["team"], "ds");
  EXPECT_EQ(Body(r)["id"], g["id"]);  // one subscription for the installation

  r = Call("PUT", "/v1/groups/rg1", R"({"location": "elsewhere"})");
  EXPECT_EQ(r.status, 409);
  EXPECT_THAT(r.body, HasSubstr("InvalidResourceGroupLocation"));
  r = Call("PUT", "/v1/groups/bad%2Fname", R"({"location": "local"})");
  EXPECT_EQ(r.status, 400) << r.body;
  r = Call("PUT", "/v1/groups/rg2", R"({"tags": {}})");
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(r.body, HasSubstr("location"));

  r = Call("GET", "/v1/groups/nope");
  EXPECT_EQ(r.status, 404);
  EXPECT_THAT(r.body, HasSubstr("Resource group 'nope' could not be found."));
  r = Call("GET", "/v1/groups");
  ASSERT_EQ(r.status, 200);
  ASSERT_EQ(Body(r)["value"].size(), 1u);
  r = Call("DELETE", "/v1/groups/rg1");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Call("GET", "/v1/groups/rg1").status, 404);
}

TEST_F(DeploymentApiTest, TheSampleDeploysAPoolAndRedeployingScalesIt) {
  ASSERT_EQ(Call("PUT", "/v1/groups/rg1", R"({"location": "local"})").status, 201);
  Response r = Call("POST", "/v1/groups/rg1/deployments/dsvm/validate", SampleBody(2));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Body(r)["properties"]["validatedResources"].size(), 4u);
  EXPECT_FALSE(store_.GetPool(PoolName("pool1")).ok());  // validating makes nothing
  EXPECT_EQ(Call("GET", "/v1/groups/rg1/deployments/dsvm").status, 404);
  r = Call("PUT", "/v1/groups/rg1/deployments/dsvm", SampleBody(2));
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(Body(r)["properties"]["provisioningState"], "Running");
  EXPECT_FALSE(Body(r)["warnings"].empty());  // sku.tier, osDisk, plan...
  EXPECT_EQ(r.body.find("Pa55-word-xyz"), std::string::npos);

  // The pool is made as POST /v1/pools makes one; the deployment waits for
  // its instances.
  ASSERT_TRUE(WaitFor([&] { return store_.GetPool(PoolName("pool1")).ok(); }));
  auto pool = store_.GetPool(PoolName("pool1"));
  EXPECT_EQ(pool->spec.instance_count, 2);
  EXPECT_EQ(pool->spec.share.type, ShareType::kNone);  // Azure's layout
  EXPECT_FALSE(pool->spec.admin.password_hash.empty());
  EXPECT_EQ(DeploymentState("dsvm"), "Running");
  AddInstance("pool1", 0);
  AddInstance("pool1", 1);
  ASSERT_TRUE(WaitFor([&] { return DeploymentState("dsvm") == "Succeeded"; })) << DeploymentState("dsvm");

  r = Call("GET", "/v1/groups/rg1/deployments/dsvm/operations");
  ASSERT_EQ(r.status, 200);
  ASSERT_EQ(Body(r)["value"].size(), 4u);
  for (const Json& op : Body(r)["value"]) EXPECT_EQ(op["properties"]["provisioningState"], "Succeeded");
  r = Call("GET", "/v1/groups/rg1/deployments/dsvm");
  EXPECT_EQ(r.body.find("Pa55-word-xyz"), std::string::npos);
  EXPECT_EQ(Body(r)["properties"]["parameters"]["adminPassword"], Json::parse(R"({"type": "SecureString"})"));

  // What-if, then the deployment again with 3 instances: the pool scales.
  r = Call("POST", "/v1/groups/rg1/deployments/dsvm/whatIf", SampleBody(3));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_THAT(Body(r)["text"].get<std::string>(), HasSubstr("1 to modify"));
  r = Call("PUT", "/v1/groups/rg1/deployments/dsvm", SampleBody(3));
  ASSERT_EQ(r.status, 201) << r.body;
  ASSERT_TRUE(WaitFor([&] { return store_.GetPool(PoolName("pool1"))->spec.instance_count == 3; }));
  AddInstance("pool1", 2);
  ASSERT_TRUE(WaitFor([&] { return DeploymentState("dsvm") == "Succeeded"; })) << DeploymentState("dsvm");
  EXPECT_EQ(store_.ListPools()->size(), 1u);  // no second pool

  // Deleting the group deletes its pool.
  r = Call("DELETE", "/v1/groups/rg1");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(store_.GetPool(PoolName("pool1"))->state, PoolState::kDeleting);
  EXPECT_TRUE(store_.ListResources(std::nullopt)->empty());
}

TEST_F(DeploymentApiTest, ABadDeploymentIsAzsErrorAndLeavesNothing) {
  ASSERT_EQ(Call("PUT", "/v1/groups/rg1", R"({"location": "local"})").status, 201);
  Json body = Json::parse(SampleBody(2));
  body["parameters"]["instanceCount"]["value"] = 101;
  const size_t events = EventCount();
  Response r = Call("PUT", "/v1/groups/rg1/deployments/dsvm", body.dump());
  ASSERT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(Body(r)["error"]["code"], "InvalidTemplate");
  EXPECT_THAT(Body(r)["error"]["message"].get<std::string>(), HasSubstr("instanceCount"));
  EXPECT_EQ(Call("GET", "/v1/groups/rg1/deployments/dsvm").status, 404);
  EXPECT_FALSE(store_.GetPool(PoolName("pool1")).ok());
  EXPECT_EQ(EventCount(), events);

  r = Call("PUT", "/v1/groups/nope/deployments/dsvm", SampleBody(2));
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(Body(r)["error"]["code"], "ResourceGroupNotFound");

  // A pool of that name that the group did not make is not taken over.
  ASSERT_EQ(Call("POST", "/v1/pools", Spec("pool1", "10.231.0.0/24")).status, 201);
  r = Call("POST", "/v1/groups/rg1/deployments/dsvm/validate", SampleBody(2));
  EXPECT_EQ(r.status, 400) << r.body;  // a failed preflight, as on Azure
  EXPECT_EQ(Body(r)["error"]["code"], "InvalidTemplateDeployment");
  EXPECT_THAT(r.body, HasSubstr("pool 'pool1' already exists and was not made by this scale set"));
}

TEST_F(DeploymentApiTest, AnExtensionFileThatCannotBeFetchedFailsTheDeploymentBeforeAnythingIsMade) {
  ASSERT_EQ(Call("PUT", "/v1/groups/rg1", R"({"location": "local"})").status, 201);
  Json body = Json::parse(SampleBody(2));
  std::string text = body["template"];
  const std::string script = "mountazurefiles.sh\"";
  text.replace(text.find(script), script.size() - 1, "missing.sh");
  body["template"] = text;
  Response r = Call("PUT", "/v1/groups/rg1/deployments/dsvm", body.dump());
  ASSERT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(Body(r)["error"]["code"], "InvalidTemplateDeployment");
  EXPECT_THAT(r.body, HasSubstr("GET missing.sh answered HTTP 404"));
  EXPECT_EQ(Call("GET", "/v1/groups/rg1/deployments/dsvm").status, 404);
  EXPECT_TRUE(store_.ListResources(std::nullopt)->empty());
  EXPECT_TRUE(hooks_.prepared.empty());
}

TEST_F(DeploymentApiTest, ALocalTemplatesRelativeFileUrisAreTheFilesSentWithIt) {
  ASSERT_EQ(Call("PUT", "/v1/groups/rg1", R"({"location": "local"})").status, 201);
  Json body = Json::parse(SampleBody(2));
  std::string text = body["template"];
  const std::string url = "https://raw.githubusercontent.com/Azure/DataScienceVM/master/Extensions/General/";
  text.replace(text.find(url), url.size(), "scripts/");
  body["template"] = text;
  Response r = Call("PUT", "/v1/groups/rg1/deployments/dsvm", body.dump());
  ASSERT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(Body(r)["error"]["code"], "MissingTemplateArtifacts");
  EXPECT_EQ(Body(r)["error"]["details"][0]["target"], "scripts/mountazurefiles.sh");
  EXPECT_EQ(Call("GET", "/v1/groups/rg1/deployments/dsvm").status, 404);

  // Bad files: named, and nothing made.
  for (const auto& [artifacts, why] : std::vector<std::pair<Json, std::string>>{
           {{{"../mount.sh", Base64Encode("x")}}, "artifacts: '../mount.sh': is not a path relative to the template"},
           {{{"scripts/mountazurefiles.sh", "not base64!"}}, "artifacts: 'scripts/mountazurefiles.sh': must be the file's contents in base64"},
           {{{"a.sh", Base64Encode(std::string(kMaxArtifactBytes + 1, 'x'))}}, "artifacts: 'a.sh': the files sent pass 8 MiB in all"},
           {Json::array(), "artifacts: must be an object"}}) {
    body["artifacts"] = artifacts;
    Response bad = Call("PUT", "/v1/groups/rg1/deployments/dsvm", body.dump());
    EXPECT_EQ(bad.status, 400);
    EXPECT_THAT(Body(bad)["error"]["message"].get<std::string>(), HasSubstr(why));
  }
  body["artifacts"] = {{"scripts/mountazurefiles.sh", Base64Encode("echo mounted")}};
  body["templateLink"] = "https://templates.example/t.json";
  EXPECT_THAT(Call("PUT", "/v1/groups/rg1/deployments/dsvm", body.dump()).body,
              HasSubstr("a template from an http(s) URL has its relative fileUris next to it; send no files"));
  EXPECT_TRUE(store_.ListResources(std::nullopt)->empty());
  EXPECT_TRUE(hooks_.prepared.empty());

  body.erase("templateLink");
  r = Call("PUT", "/v1/groups/rg1/deployments/dsvm", body.dump());
  ASSERT_EQ(r.status, 201) << r.body;
  ASSERT_TRUE(WaitFor([&] { return store_.GetPool(PoolName("pool1")).ok(); }));
  AddInstance("pool1", 0);
  AddInstance("pool1", 1);
  ASSERT_TRUE(WaitFor([&] { return DeploymentState("dsvm") == "Succeeded"; })) << DeploymentState("dsvm");
  EXPECT_EQ(hooks_.kept_files["pool1"]["filesextension"],
            std::vector<ExtensionFile>({{"mountazurefiles.sh", "echo mounted"}}));

  // The pool has its files: redeploying needs none sent.
  body.erase("artifacts");
  r = Call("PUT", "/v1/groups/rg1/deployments/dsvm", body.dump());
  ASSERT_EQ(r.status, 201) << r.body;
  ASSERT_TRUE(WaitFor([&] { return DeploymentState("dsvm") == "Succeeded"; })) << DeploymentState("dsvm");
}

TEST_F(DeploymentApiTest, ARunningDeploymentIsCancelled) {
  ASSERT_EQ(Call("PUT", "/v1/groups/rg1", R"({"location": "local"})").status, 201);
  ASSERT_EQ(Call("PUT", "/v1/groups/rg1/deployments/dsvm", SampleBody(2)).status, 201);
  Response again = Call("PUT", "/v1/groups/rg1/deployments/dsvm", SampleBody(2));
  EXPECT_EQ(again.status, 409);
  EXPECT_THAT(again.body, HasSubstr("DeploymentActive"));
  EXPECT_EQ(Call("DELETE", "/v1/groups/rg1").status, 409);
  ASSERT_EQ(Call("POST", "/v1/groups/rg1/deployments/dsvm/cancel").status, 200);
  ASSERT_TRUE(WaitFor([&] { return DeploymentState("dsvm") == "Canceled"; })) << DeploymentState("dsvm");
  Response r = Call("POST", "/v1/groups/rg1/deployments/dsvm/cancel");
  EXPECT_EQ(r.status, 409);
  EXPECT_THAT(r.body, HasSubstr("DeploymentCannotBeCancelled"));
}

// --rollback-on-error: a failed deployment deploys the group's last
// successful one again, from the template and parameters it kept.
TEST_F(DeploymentApiTest, AFailedDeploymentRollsBackToTheLastSuccessfulOne) {
  ASSERT_EQ(Call("PUT", "/v1/groups/rg1", R"({"location": "local"})").status, 201);
  Json wrong = Json::parse(SampleBody(3));
  wrong["onErrorDeployment"] = {{"type", "LastSuccessful"}};
  Response r = Call("PUT", "/v1/groups/rg1/deployments/bigger", wrong.dump());
  ASSERT_EQ(r.status, 409) << r.body;  // nothing to roll back to yet: refused before anything is made
  EXPECT_THAT(r.body, HasSubstr("InvalidOnErrorDeployment: resource group 'rg1' has no successful deployment"));
  EXPECT_FALSE(store_.GetPool(PoolName("pool1")).ok());

  ASSERT_EQ(Call("PUT", "/v1/groups/rg1/deployments/good", SampleBody(2)).status, 201);
  ASSERT_TRUE(WaitFor([&] { return store_.GetPool(PoolName("pool1")).ok(); }));
  AddInstance("pool1", 0);
  AddInstance("pool1", 1);
  ASSERT_TRUE(WaitFor([&] { return DeploymentState("good") == "Succeeded"; })) << DeploymentState("good");
  const std::string good_run = Body(Call("GET", "/v1/groups/rg1/deployments/good"))["properties"]["correlationId"];

  Json missing = wrong;
  missing["onErrorDeployment"] = {{"type", "SpecificDeployment"}, {"deploymentName", "nope"}};
  r = Call("PUT", "/v1/groups/rg1/deployments/bigger", missing.dump());
  EXPECT_EQ(r.status, 404) << r.body;
  EXPECT_THAT(r.body, HasSubstr("DeploymentNotFound: the deployment 'nope' to roll back to"));
  missing["onErrorDeployment"] = {{"type", "Sometimes"}};
  r = Call("PUT", "/v1/groups/rg1/deployments/bigger", missing.dump());
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_THAT(r.body, HasSubstr("onErrorDeployment.type: 'Sometimes' is not LastSuccessful or SpecificDeployment"));
  EXPECT_EQ(Call("GET", "/v1/groups/rg1/deployments/bigger").status, 404);

  // Three instances, the third fails: the deployment fails, and "good"
  // runs again, bringing the pool back to two.
  r = Call("PUT", "/v1/groups/rg1/deployments/bigger", wrong.dump());
  ASSERT_EQ(r.status, 201) << r.body;
  ASSERT_TRUE(WaitFor([&] { return store_.GetPool(PoolName("pool1"))->spec.instance_count == 3; }));
  AddInstance("pool1", 2, InstancePhase::kFailed);
  ASSERT_TRUE(WaitFor([&] { return DeploymentState("bigger") == "Failed"; })) << DeploymentState("bigger");
  Json failed = Body(Call("GET", "/v1/groups/rg1/deployments/bigger"));
  EXPECT_EQ(failed["properties"]["onErrorDeployment"], Json::parse(R"({"type": "LastSuccessful"})"));
  ASSERT_TRUE(WaitFor([&] {
    Json good = Body(Call("GET", "/v1/groups/rg1/deployments/good"));
    return good["properties"]["provisioningState"] == "Succeeded" && good["properties"]["correlationId"] != good_run;
  }));
  EXPECT_EQ(store_.GetPool(PoolName("pool1"))->spec.instance_count, 2);
  // What it kept to deploy again is never shown, and its secure values are
  // not stored at all.
  r = Call("GET", "/v1/groups/rg1/deployments/good");
  EXPECT_EQ(r.body.find("Pa55-word-xyz"), std::string::npos);
  EXPECT_EQ(r.body.find("\"source\""), std::string::npos);
  auto stored = store_.GetDeployment("rg1", "good");
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->source["parameters"]["vmssName"]["value"], "pool1");
  EXPECT_EQ(stored->source.dump().find("Pa55-word-xyz"), std::string::npos);
  EXPECT_EQ(stored->source.dump().find("KEY-abc"), std::string::npos);
  EXPECT_EQ(stored->source["secureParameters"], Json::parse(R"(["adminPassword", "storageAccountKey"])"));

  // After a restart (another Api on the same store) the secure values are
  // gone: a rollback to "good" is refused by name before anything is made.
  Api restarted(store_, clock_, hooks_,
                ApiOptions{{20000, 20010}, "s3cret-token-0123456789", "/d", "fake", kVersion,
                           DeploymentOptions{.host = {.front_address = "127.0.0.9"}}});
  r = restarted.Handle(MakeRequest("PUT", "/v1/groups/rg1/deployments/bigger", wrong.dump()));
  EXPECT_EQ(r.status, 409) << r.body;
  EXPECT_THAT(r.body, HasSubstr("InvalidOnErrorDeployment: the deployment 'good' has secure parameters "
                                "(adminPassword, storageAccountKey), which are never stored"));
  EXPECT_EQ(store_.GetPool(PoolName("pool1"))->spec.instance_count, 2);
}

class StorageApiTest : public ApiTest {
 protected:
  void SetUp() override {
    ASSERT_EQ(Call("PUT", "/v1/groups/rg1", R"({"location": "local"})").status, 201);
    ASSERT_EQ(Call("PUT", "/v1/groups/rg2", R"({"location": "local"})").status, 201);
  }
  std::vector<std::string> Keys(const std::string& group, const std::string& account) {
    Response r = Call("POST", "/v1/groups/" + group + "/storageAccounts/" + account + "/listKeys");
    EXPECT_EQ(r.status, 200) << r.body;
    const Json body = Body(r);
    std::vector<std::string> out;
    for (const Json& k : body["keys"]) out.push_back(k["value"]);
    return out;
  }
};

TEST_F(StorageApiTest, AnAccountHasTwoKeysThatOnlyListKeysShows) {
  const size_t events = EventCount();
  Response r = Call("PUT", "/v1/groups/rg1/storageAccounts/dspoolfiles", R"({"sku": {"name": "Standard_LRS"}})");
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(Body(r)["location"], "local");  // the group's
  EXPECT_EQ(Body(r)["primaryEndpoints"]["file"], "https://dspoolfiles.file.core.windows.net/");
  std::vector<std::string> keys = Keys("rg1", "dspoolfiles");
  ASSERT_EQ(keys.size(), 2u);
  EXPECT_NE(keys[0], keys[1]);
  for (const std::string& k : keys) {
    EXPECT_EQ(k.size(), 88u);
    EXPECT_THAT(r.body, Not(HasSubstr(k)));
    EXPECT_THAT(Call("GET", "/v1/groups/rg1/storageAccounts/dspoolfiles").body, Not(HasSubstr(k)));
    EXPECT_THAT(Call("GET", "/v1/storageAccounts").body, Not(HasSubstr(k)));
    for (const Event& e : *store_.ListEvents(0, 1000)) EXPECT_THAT(e.detail, Not(HasSubstr(k)));
  }
  // Reading the keys is an event of its own (who read them).
  EXPECT_EQ(EventCount(), events + 2);
  EXPECT_EQ(store_.TailEvents(1)->front().action, "storage.keys.list");

  // Putting it again keeps the keys; another group cannot take the name.
  r = Call("PUT", "/v1/groups/rg1/storageAccounts/dspoolfiles", R"({"tags": {"team": "ds"}})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Body(r)["tags"]["team"], "ds");
  EXPECT_EQ(Keys("rg1", "dspoolfiles"), keys);
  r = Call("PUT", "/v1/groups/rg2/storageAccounts/dspoolfiles", "{}");
  EXPECT_EQ(r.status, 409);
  EXPECT_THAT(r.body, HasSubstr("StorageAccountAlreadyTaken: The storage account named dspoolfiles is already taken."));
  r = Call("GET", "/v1/groups/rg2/storageAccounts/dspoolfiles");
  EXPECT_EQ(r.status, 404);
  EXPECT_THAT(r.body, HasSubstr("ResourceNotFound: The Resource 'Microsoft.Storage/storageAccounts/dspoolfiles' "
                                "under resource group 'rg2' was not found."));

  // Renewing key1 changes key1 only; the old value checks no more.
  const std::string check = R"({"key": ")" + keys[0] + R"("})";
  EXPECT_EQ(Call("POST", "/v1/groups/rg1/storageAccounts/dspoolfiles/checkKey", check).status, 204);
  r = Call("POST", "/v1/groups/rg1/storageAccounts/dspoolfiles/regenerateKey", R"({"keyName": "key1"})");
  ASSERT_EQ(r.status, 200) << r.body;
  std::vector<std::string> renewed = Keys("rg1", "dspoolfiles");
  EXPECT_NE(renewed[0], keys[0]);
  EXPECT_EQ(renewed[1], keys[1]);
  r = Call("POST", "/v1/groups/rg1/storageAccounts/dspoolfiles/checkKey", check);
  EXPECT_EQ(r.status, 403);
  EXPECT_THAT(r.body, HasSubstr("AuthenticationFailed: the key given is not a key of storage account 'dspoolfiles'"));
  EXPECT_EQ(Call("POST", "/v1/groups/rg1/storageAccounts/dspoolfiles/regenerateKey", R"({"keyName": "key3"})").status,
            400);
}

TEST_F(StorageApiTest, BadAccountsAreRefusedByNameAndChangeNothing) {
  const size_t events = EventCount();
  struct Case {
    std::string path, body, message;
  };
  for (const Case& c : std::vector<Case>{
           {"/v1/groups/rg1/storageAccounts/Bad_Name", "{}", "3 to 24 characters"},
           {"/v1/groups/rg1/storageAccounts/goodname", R"({"sku": {"name": "Cheap"}})", "sku.name: storage sku 'Cheap'"},
           {"/v1/groups/rg1/storageAccounts/goodname", R"({"kind": "Disk"})", "kind: storage kind 'Disk'"},
           {"/v1/groups/rg1/storageAccounts/goodname",
            R"({"properties": {"shareDeleteRetentionPolicy": {"enabled": false}}})", "enabled: false is refused"},
           {"/v1/groups/rg1/storageAccounts/goodname",
            R"({"properties": {"shareDeleteRetentionPolicy": {"days": 400}}})", "1 to 365 days"},
           {"/v1/groups/rg1/storageAccounts/goodname", R"({"tags": {"a": 1}})", "tags.a: must be a string"},
           {"/v1/groups/rg1/storageAccounts/goodname", R"({"colour": "blue"})", "colour"},
           {"/v1/groups/nope/storageAccounts/goodname", "{}", "Resource group 'nope' could not be found"},
       }) {
    Response r = Call("PUT", c.path, c.body);
    EXPECT_GE(r.status, 400) << c.body;
    EXPECT_THAT(r.body, HasSubstr(c.message)) << c.body;
  }
  EXPECT_EQ(EventCount(), events);
  EXPECT_TRUE(store_.ListStorageAccounts(std::nullopt)->empty());
}

TEST_F(StorageApiTest, ADeletedShareIsKeptAndRestored) {
  ASSERT_EQ(Call("PUT", "/v1/groups/rg1/storageAccounts/dspoolfiles", "{}").status, 201);
  Response r = Call("PUT", "/v1/groups/rg1/storageAccounts/dspoolfiles/shares/dsvmshare",
                    R"({"properties": {"shareQuota": 100}})");
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(Body(r)["shareQuota"], 100);
  EXPECT_EQ(hooks_.share_data.count("dspoolfiles/dsvmshare"), 1u);
  hooks_.share_data["dspoolfiles/dsvmshare"] = "alice's notebook";
  EXPECT_EQ(Call("PUT", "/v1/groups/rg1/storageAccounts/dspoolfiles/shares/Bad", "{}").status, 400);
  r = Call("PUT", "/v1/groups/rg1/storageAccounts/dspoolfiles/shares/other", R"({"properties": {"shareQuota": 0}})");
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(r.body, HasSubstr("properties.shareQuota: share quota 0 GiB"));

  ASSERT_EQ(Call("DELETE", "/v1/groups/rg1/storageAccounts/dspoolfiles/shares/dsvmshare").status, 200);
  EXPECT_EQ(Call("GET", "/v1/groups/rg1/storageAccounts/dspoolfiles/shares/dsvmshare").status, 404);
  EXPECT_EQ(Body(Call("GET", "/v1/groups/rg1/storageAccounts/dspoolfiles/shares"))["value"].size(), 0u);
  r = Call("GET", "/v1/groups/rg1/storageAccounts/dspoolfiles/shares?includeDeleted=true");
  ASSERT_EQ(Body(r)["value"].size(), 1u) << r.body;
  const Json deleted = Body(r)["value"][0];
  EXPECT_EQ(deleted["deleted"], true);
  EXPECT_EQ(deleted["remainingRetentionDays"], 7);
  const std::string version = deleted["version"];
  EXPECT_EQ(version.size(), 16u);
  EXPECT_EQ(hooks_.share_data.at("dspoolfiles/dsvmshare/" + version), "alice's notebook");

  // A live share of the name blocks the restore; then it is back, data and all.
  ASSERT_EQ(Call("PUT", "/v1/groups/rg1/storageAccounts/dspoolfiles/shares/dsvmshare", "{}").status, 201);
  const std::string restore = R"({"deletedVersion": ")" + version + R"("})";
  r = Call("POST", "/v1/groups/rg1/storageAccounts/dspoolfiles/shares/dsvmshare/restore", restore);
  EXPECT_EQ(r.status, 409);
  EXPECT_THAT(r.body, HasSubstr("ShareAlreadyExists: a share 'dsvmshare' exists in storage account 'dspoolfiles'"));
  ASSERT_EQ(Call("DELETE", "/v1/groups/rg1/storageAccounts/dspoolfiles/shares/dsvmshare").status, 200);
  r = Call("POST", "/v1/groups/rg1/storageAccounts/dspoolfiles/shares/dsvmshare/restore", restore);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Body(r)["shareQuota"], 100);
  EXPECT_EQ(hooks_.share_data.at("dspoolfiles/dsvmshare"), "alice's notebook");
  r = Call("POST", "/v1/groups/rg1/storageAccounts/dspoolfiles/shares/dsvmshare/restore", restore);
  EXPECT_EQ(r.status, 404);
  EXPECT_THAT(r.body, HasSubstr("DeletedShareNotFound: no deleted share 'dsvmshare' of version"));
}

TEST_F(StorageApiTest, DeletingTheGroupKeepsTheSharesUntilTheirRetentionEnds) {
  ASSERT_EQ(Call("PUT", "/v1/groups/rg1/storageAccounts/dspoolfiles",
                 R"({"properties": {"shareDeleteRetentionPolicy": {"days": 2}}})")
                .status,
            201);
  ASSERT_EQ(Call("PUT", "/v1/groups/rg1/storageAccounts/dspoolfiles/shares/dsvmshare", "{}").status, 201);
  hooks_.share_data["dspoolfiles/dsvmshare"] = "work";
  ASSERT_EQ(Call("DELETE", "/v1/groups/rg1").status, 200);
  EXPECT_EQ(Call("GET", "/v1/groups/rg1").status, 404);
  EXPECT_FALSE(store_.GetStorageAccount("dspoolfiles").ok());
  ASSERT_EQ(store_.ListShares("dspoolfiles")->size(), 1u);
  const FileShare kept = store_.ListShares("dspoolfiles")->front();
  EXPECT_TRUE(kept.deleted());
  EXPECT_EQ(hooks_.share_data.at("dspoolfiles/" + ShareKey(kept)), "work");

  // The account made again (in another group) finds it, and restores it.
  ASSERT_EQ(Call("PUT", "/v1/groups/rg2/storageAccounts/dspoolfiles", "{}").status, 201);
  Response r = Call("GET", "/v1/groups/rg2/storageAccounts/dspoolfiles/shares?includeDeleted=true");
  ASSERT_EQ(Body(r)["value"].size(), 1u) << r.body;

  // A day on, nothing is purged; after two, data and record go.
  clock_.Advance(std::chrono::hours(24));
  EXPECT_TRUE(api_.PurgeExpiredShares().empty());
  EXPECT_EQ(store_.ListShares("dspoolfiles")->size(), 1u);
  clock_.Advance(std::chrono::hours(24));
  EXPECT_TRUE(api_.PurgeExpiredShares().empty());
  EXPECT_TRUE(store_.ListShares("dspoolfiles")->empty());
  EXPECT_EQ(hooks_.share_data.count("dspoolfiles/" + ShareKey(kept)), 0u);
  EXPECT_EQ(store_.TailEvents(1)->front().action, "storage.share.purge");
}

TEST_F(StorageApiTest, AnInstanceMountsAShareWithTheAccountsKeyOnly) {
  ASSERT_EQ(Call("POST", "/v1/pools", Spec("demo", "10.231.0.0/24")).status, 201);
  const Instance inst = AddInstance("demo", 0);
  const uid_t root = Body(Call("GET", "/v1/pools/demo"))["idBase"].get<uid_t>();
  ASSERT_EQ(Call("PUT", "/v1/groups/rg1/storageAccounts/dspoolfiles", "{}").status, 201);
  ASSERT_EQ(Call("PUT", "/v1/groups/rg1/storageAccounts/dspoolfiles/shares/dsvmshare", "{}").status, 201);
  const std::string key = Keys("rg1", "dspoolfiles")[1];  // either key mounts
  auto mount = [&](const std::string& account, const std::string& share, const std::string& k) {
    Json body = ShareMountRequestToJson({account, share, k, "/mnt/dsvmshare", false});
    return Call("POST", "/v1/agent/mounts", body.dump(), "agent:" + inst.id.value(), root);
  };
  const size_t events = EventCount();
  Response r = mount("dspoolfiles", "dsvmshare", "bm90IHRoZSBrZXk=");
  EXPECT_EQ(r.status, 403);
  EXPECT_THAT(r.body, HasSubstr("Permission denied: the password is not a key of storage account 'dspoolfiles'"));
  EXPECT_THAT(r.body, Not(HasSubstr("bm90IHRoZSBrZXk=")));
  r = mount("nosuchacct", "dsvmshare", key);
  EXPECT_EQ(r.status, 404);
  EXPECT_THAT(r.body, HasSubstr("No such file or directory: there is no storage account 'nosuchacct'"));
  r = mount("dspoolfiles", "other", key);
  EXPECT_EQ(r.status, 404);
  EXPECT_THAT(r.body, HasSubstr("storage account 'dspoolfiles' has no share 'other'"));
  r = mount("dspoolfiles", "Bad_Share", key);
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(r.body, HasSubstr("share: share name 'Bad_Share'"));
  EXPECT_TRUE(hooks_.attached.empty());
  EXPECT_EQ(EventCount(), events);
  // Only the instance's root speaks on its channel.
  r = Call("POST", "/v1/agent/mounts", ShareMountRequestToJson({"dspoolfiles", "dsvmshare", key, "/mnt/x", false}).dump(),
           "agent:" + inst.id.value(), root + 20000);
  EXPECT_EQ(r.status, 403);

  r = mount("dspoolfiles", "dsvmshare", key);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(hooks_.attached, std::vector<std::string>{inst.id.value() + " dspoolfiles/dsvmshare at /mnt/dsvmshare"});
  const Event e = store_.TailEvents(1)->front();
  EXPECT_EQ(e.action, "storage.share.mount");
  EXPECT_EQ(e.actor, inst.id.value());
  EXPECT_EQ(e.detail, "at /mnt/dsvmshare");
  // A renewed key is the old one no more.
  ASSERT_EQ(Call("POST", "/v1/groups/rg1/storageAccounts/dspoolfiles/regenerateKey", R"({"keyName": "key2"})").status,
            200);
  EXPECT_EQ(mount("dspoolfiles", "dsvmshare", key).status, 403);
  // NFS: no key, an NFS share, and only from a pool the account's group deployed.
  ASSERT_EQ(Call("PUT", "/v1/groups/rg1/storageAccounts/dspoolfiles/shares/nfsshare",
                 R"({"properties": {"enabledProtocols": "NFS"}})")
                .status,
            201);
  auto nfs = [&](const std::string& share) {
    ShareMountRequest m{"dspoolfiles", share, "", "/mnt/nfs", false};
    m.protocol = "NFS";
    return Call("POST", "/v1/agent/mounts", ShareMountRequestToJson(m).dump(), "agent:" + inst.id.value(), root);
  };
  r = nfs("nfsshare");
  EXPECT_EQ(r.status, 403);
  EXPECT_THAT(r.body, HasSubstr("an NFS share is reached only from the pools deployed in its account's resource group"));
  r = nfs("dsvmshare");
  EXPECT_EQ(r.status, 403);
  EXPECT_THAT(r.body, HasSubstr("share 'dsvmshare' serves SMB: mount it with -t cifs"));
  ArmResource vmss{.id = "/subscriptions/s/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachineScaleSets/demo",
                   .group = "rg1", .type = "Microsoft.Compute/virtualMachineScaleSets", .name = "demo"};
  ASSERT_TRUE(store_.Write(WriteBatch().Add(WriteBatch::PutResource{vmss})).ok());
  r = nfs("nfsshare");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(hooks_.attached.back(), inst.id.value() + " dspoolfiles/nfsshare at /mnt/nfs");
}

TEST_F(DeploymentApiTest, ATemplatesStorageAccountIsARealOne) {
  ASSERT_EQ(Call("PUT", "/v1/groups/rg1", R"({"location": "local"})").status, 201);
  const std::string tmpl = R"({
    "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
    "contentVersion": "1.0.0.0",
    "resources": [
      {"type": "Microsoft.Storage/storageAccounts", "apiVersion": "2022-09-01", "name": "tmplfiles",
       "sku": {"name": "Standard_LRS"}, "kind": "StorageV2"},
      {"type": "Microsoft.Storage/storageAccounts/fileServices/shares", "apiVersion": "2022-09-01",
       "name": "tmplfiles/default/work", "dependsOn": ["tmplfiles"], "properties": {"shareQuota": 10}}],
    "outputs": {"key": {"type": "string",
                        "value": "[listKeys(resourceId('Microsoft.Storage/storageAccounts', 'tmplfiles'), '2022-09-01').keys[1].value]"}}
  })";
  Response r = Call("PUT", "/v1/groups/rg1/deployments/files", Json{{"template", tmpl}}.dump());
  ASSERT_EQ(r.status, 201) << r.body;
  ASSERT_TRUE(WaitFor([&] { return DeploymentState("files") == "Succeeded"; })) << DeploymentState("files");
  const std::vector<std::string> keys = [&] {
    Response k = Call("POST", "/v1/groups/rg1/storageAccounts/tmplfiles/listKeys");
    const Json body = Body(k);
    return std::vector<std::string>{body["keys"][0]["value"], body["keys"][1]["value"]};
  }();
  EXPECT_EQ(keys[0].size(), 88u);
  EXPECT_EQ(hooks_.share_data.count("tmplfiles/work"), 1u);
  r = Call("GET", "/v1/groups/rg1/deployments/files");
  EXPECT_EQ(Body(r)["properties"]["outputs"]["key"]["value"], "[secure]");
  for (const std::string& k : keys) EXPECT_THAT(r.body, Not(HasSubstr(k)));
  // The group's deletion takes the account; the share is kept, deleted.
  ASSERT_EQ(Call("DELETE", "/v1/groups/rg1").status, 200);
  EXPECT_FALSE(store_.GetStorageAccount("tmplfiles").ok());
  ASSERT_EQ(store_.ListShares("tmplfiles")->size(), 1u);
  EXPECT_TRUE(store_.ListShares("tmplfiles")->front().deleted());
}

}  // namespace
}  // namespace dspool
