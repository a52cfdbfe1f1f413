// RunCli end to end against a real http server on a temporary Unix socket,
// whose handler answers with canned API JSON and records what it was asked.
#include "cli/cli.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>

#include "base/strings.h"
#include "base/testing/temp_dir.h"
#include "http/server.h"
#include "model/json_reader.h"

namespace dspool {
namespace {

using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

// SimulatedClock's start: 2023-11-14T22:13:20Z.
constexpr const char* kPoolJson = R"({
  "name": "demo", "state": "active", "instanceCount": 2, "generation": 1,
  "createdAt": "2023-11-14T22:08:20.000Z", "updatedAt": "2023-11-14T22:12:20.000Z",
  "spec": {"name": "demo", "instanceCount": 2,
           "size": {"vcpus": 1, "memoryMiB": 1024, "maxProcesses": 2048},
           "image": {"type": "host"}, "network": {"subnet": "10.231.0.0/24"},
           "share": {"type": "bind", "source": "/srv/share", "mountPath": "/datamnt/dsvmshare"},
           "adminUser": {"name": "dsvmuser", "sshPublicKey": "ssh-ed25519 AAAAC3 admin@x"}},
  "bridge": "dsp-demo", "gateway": "10.231.0.1",
  "instances": [
    {"id": "demo-0-3fa9c1", "pool": "demo", "index": 0, "hostname": "demo0", "phase": "Ready",
     "reason": "", "address": "10.231.0.2", "createdAt": "2023-11-14T20:13:20.000Z",
     "phaseSince": "2023-11-14T20:14:20.000Z",
     "report": {"receivedAt": "2023-11-14T22:13:18.000Z", "sshdListening": true, "cpuPercent": 1.5,
                "memoryUsedBytes": 125829120, "memoryLimitBytes": 1073741824, "sshSessions": 1}},
    {"id": "demo-1-77ab02", "pool": "demo", "index": 1, "hostname": "demo1", "phase": "Booting",
     "reason": "waiting for the agent", "address": "10.231.0.3", "createdAt": "2023-11-14T22:13:10.000Z",
     "phaseSince": "2023-11-14T22:13:10.000Z", "report": null}]})";

// kPoolJson's pool behind a loadBalancer, as the gateway sees it: instance 0
// healthy, instance 1 draining and never probed yet, instance 4 past the
// 3 ports of sshnat.
constexpr const char* kLbPoolJson = R"({
  "name": "team", "state": "active", "instanceCount": 3, "generation": 2,
  "createdAt": "2023-11-14T22:08:20.000Z", "updatedAt": "2023-11-14T22:12:20.000Z",
  "spec": {"name": "team", "network": {"subnet": "10.232.0.0/24"}},
  "bridge": "dsp-team", "gateway": "10.232.0.1",
  "frontends": [{"rule": "SSH", "address": "0.0.0.0", "port": 2222, "backendPort": 22},
                {"rule": "jupyter-nat", "address": "0.0.0.0", "port": 8001, "backendPort": 8000},
                {"rule": "Jupyter", "address": "0.0.0.0", "port": 8000, "https": true}],
  "instances": [
    {"id": "team-0-aa", "pool": "team", "index": 0, "hostname": "team0", "phase": "Ready", "draining": false,
     "reason": "", "address": "10.232.0.2", "createdAt": "2023-11-14T22:13:10.000Z", "report": null,
     "health": {"state": "healthy", "inRotation": true, "connections": 3},
     "natPorts": [{"natPool": "sshnat", "port": 50000}, {"natPool": "jupnat", "port": 51000}]},
    {"id": "team-1-bb", "pool": "team", "index": 1, "hostname": "team1", "phase": "Booting", "draining": true,
     "reason": "", "address": "10.232.0.3", "createdAt": "2023-11-14T22:13:10.000Z", "report": null,
     "health": {"state": "probing", "inRotation": false, "connections": 0},
     "natPorts": [{"natPool": "sshnat", "port": 50001}, {"natPool": "jupnat", "port": 51001}]},
    {"id": "team-4-cc", "pool": "team", "index": 4, "hostname": "team4", "phase": "Ready", "draining": false,
     "reason": "", "address": "10.232.0.6", "createdAt": "2023-11-14T22:13:10.000Z", "report": null,
     "natPorts": [{"natPool": "jupnat", "port": 51004}]}]})";

constexpr const char* kUserJson = R"({"name": "alice", "uid": 20000, "gid": 20000, "admin": false,
  "hasPassword": true, "createdAt": "2023-11-10T22:13:20.000Z",
  "sshKeys": [{"key": "ssh-ed25519 AAAAC3alice alice@laptop", "fingerprint": "SHA256:ab+c/d"}]})";

struct Seen {
  std::string method;
  std::string target;
  std::string body;
  std::map<std::string, std::string> headers;
};

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(tmp_.path().empty());
    server_ = std::make_unique<HttpServer>([this](const Request& r) { return Handle(r); }, HttpServerOptions{});
    Status status = server_->ListenUnix(tmp_ / "api.sock", 0600, "api");
    ASSERT_TRUE(status.ok()) << status;
    server_->Start(1);
  }

  void TearDown() override { server_->Stop(); }

  // The answer to "METHOD target".
  void Answer(const std::string& request, int status, std::string body) {
    std::lock_guard lock(mu_);
    answers_[request] = JsonResponse(status, std::move(body));
  }

  Response Handle(const Request& r) {
    std::lock_guard lock(mu_);
    seen_.push_back({r.method, r.target, r.body, r.headers});
    if (respond_) {
      if (std::optional<Response> answer = respond_(r)) return *answer;
    }
    auto it = answers_.find(r.method + " " + r.target);
    if (it == answers_.end()) {
      return JsonResponse(404, JsonErrorBody("NotFound", "no canned answer for " + r.method + " " + r.target));
    }
    return it->second;
  }

  std::vector<Seen> seen() {
    std::lock_guard lock(mu_);
    return seen_;
  }

  // Runs `dspool --data-dir <dir> args...`; fills out_, err_.
  int Run(std::vector<std::string> args, const std::string& stdin_text = "") {
    args.insert(args.begin(), {"--data-dir", tmp_.path()});
    return RunRaw(std::move(args), stdin_text);
  }

  int RunRaw(std::vector<std::string> args, const std::string& stdin_text = "") {
    std::istringstream in(stdin_text);
    std::ostringstream out, err;
    CliEnvironment env{in,
                       out,
                       err,
                       [this](const std::string& name) -> std::optional<std::string> {
                         auto it = environment_.find(name);
                         if (it == environment_.end()) return std::nullopt;
                         return it->second;
                       },
                       clock_,
                       [this](std::chrono::milliseconds) {
                         if (on_wait_) on_wait_();
                         return --polls_left_ > 0;
                       },
                       terminal_ ? PromptFunction([this](const std::string& question, bool secret)
                                                      -> std::optional<std::string> {
                         asked_.push_back(question + (secret ? " [secret]" : ""));
                         if (typed_.empty()) return std::nullopt;
                         std::string line = typed_.front();
                         typed_.erase(typed_.begin());
                         return line;
                       })
                                 : PromptFunction()};
    int code = RunCli(args, env);
    out_ = out.str();
    err_ = err.str();
    return code;
  }

  std::string WriteFile(const std::string& name, const std::string& content) {
    std::string path = tmp_ / name;
    std::ofstream(path) << content;
    return path;
  }

  TempDir tmp_{"dspool-cli"};
  std::unique_ptr<HttpServer> server_;
  std::mutex mu_;
  std::map<std::string, Response> answers_;
  // Asked before answers_, for an answer that depends on the body.
  std::function<std::optional<Response>(const Request&)> respond_;
  std::vector<Seen> seen_;
  SimulatedClock clock_;
  std::map<std::string, std::string> environment_;
  int polls_left_ = 1;
  std::function<void()> on_wait_;  // called at each wait, before it answers
  bool terminal_ = false;           // a terminal answers prompts with typed_
  std::vector<std::string> typed_;
  std::vector<std::string> asked_;
  std::string out_, err_;
};

TEST_F(CliTest, PoolListIsATable) {
  Answer("GET /v1/pools", 200, std::string(R"({"pools": [)") + kPoolJson + "]}");
  EXPECT_EQ(Run({"pool", "list"}), 0) << err_;
  EXPECT_EQ(out_,
            "NAME   STATE    READY   SUBNET          AGE\n"
            "demo   active   1/2     10.231.0.0/24   5m\n");
  EXPECT_EQ(err_, "");
}

TEST_F(CliTest, PoolListWithoutPools) {
  Answer("GET /v1/pools", 200, R"({"pools": []})");
  EXPECT_EQ(Run({"pool", "list"}), 0) << err_;
  EXPECT_EQ(out_, "No pools. Create one with: dspool pool create -f SPEC.json\n");
}

TEST_F(CliTest, PoolShowPrintsDetailsAndInstances) {
  Answer("GET /v1/pools/demo", 200, kPoolJson);
  EXPECT_EQ(Run({"pool", "show", "demo"}), 0) << err_;
  EXPECT_EQ(out_,
            "Name:         demo\n"
            "State:        active\n"
            "Instances:    2 desired, 2 present, 1 ready\n"
            "Generation:   1\n"
            "Size:         1 vCPU, 1Gi memory, 2048 processes\n"
            "Subnet:       10.231.0.0/24\n"
            "Bridge:       dsp-demo\n"
            "Gateway:      10.231.0.1\n"
            "Share:        /srv/share (bind) at /datamnt/dsvmshare\n"
            "Admin user:   dsvmuser\n"
            "Created:      5m ago (2023-11-14T22:08:20.000Z)\n"
            "Updated:      1m ago (2023-11-14T22:12:20.000Z)\n"
            "\n"
            "INDEX   HOSTNAME   ID              PHASE     ADDRESS      SSH   CPU    MEMORY      AGE   REASON\n"
            "0       demo0      demo-0-3fa9c1   Ready     10.231.0.2   1     1.5%   120Mi/1Gi   2h\n"
            "1       demo1      demo-1-77ab02   Booting   10.231.0.3   -     -      -           10s   waiting for the "
            "agent\n");
}

TEST_F(CliTest, PoolShowShowsStandbys) {
  Json pool = Json::parse(kPoolJson);
  pool["spec"]["standbyCount"] = 1;
  pool["instances"][1]["standby"] = true;
  pool["instances"][1]["phase"] = "Ready";
  pool["instances"][1]["reason"] = "";
  Answer("GET /v1/pools/demo", 200, pool.dump());
  EXPECT_EQ(Run({"pool", "show", "demo"}), 0) << err_;
  EXPECT_THAT(out_, HasSubstr("Instances:    2 desired, 1 present, 1 ready\n"
                              "Standbys:     1 desired, 1 ready (frozen)\n"));
  EXPECT_THAT(out_, HasSubstr("1       demo1      demo-1-77ab02   Ready   standby   -       10.231.0.3   -     -      "
                              "-           10s   standby: frozen; the next scale-out takes it\n"));
}

// An agent's first report cannot tell CPU use (that needs two samples), and
// one without a readable cgroup cannot tell memory: "-", not 0.0% and 0B.
TEST_F(CliTest, PoolShowPrintsADashForMetricsNotReportedYet) {
  std::string json = kPoolJson;
  const std::string full = R"("cpuPercent": 1.5,
                "memoryUsedBytes": 125829120, )";
  ASSERT_NE(json.find(full), std::string::npos);
  json.replace(json.find(full), full.size(), "");
  Answer("GET /v1/pools/demo", 200, json);
  EXPECT_EQ(Run({"pool", "show", "demo"}), 0) << err_;
  EXPECT_NE(out_.find("0       demo0      demo-0-3fa9c1   Ready     10.231.0.2   1     -     -        2h\n"),
            std::string::npos)
      << out_;
}

TEST_F(CliTest, JsonOutputIsTheApiAnswerPrettyPrinted) {
  std::string body = std::string(R"({"pools": [)") + kPoolJson + "]}";
  Answer("GET /v1/pools", 200, body);
  EXPECT_EQ(Run({"pool", "list", "-o", "json"}), 0) << err_;
  EXPECT_EQ(out_, Json::parse(body).dump(2) + "\n");
  EXPECT_THAT(out_, HasSubstr("\n      \"name\": \"demo\",\n"));  // 2-space indents, "key": value

  // The flag may also come before the command.
  EXPECT_EQ(Run({"-o", "json", "pool", "show", "demo"}), 1);  // no canned answer: the 404 path
  Answer("GET /v1/pools/demo", 200, kPoolJson);
  EXPECT_EQ(Run({"-o", "json", "pool", "show", "demo"}), 0) << err_;
  EXPECT_EQ(out_, Json::parse(kPoolJson).dump(2) + "\n");
}

TEST_F(CliTest, ApiErrorIsOneLineAsIs) {
  Answer("GET /v1/pools/nosuch", 404, R"({"error": {"code": "NotFound", "message": "pool 'nosuch' does not exist"}})");
  EXPECT_EQ(Run({"pool", "show", "nosuch"}), 1);
  EXPECT_EQ(out_, "");
  EXPECT_EQ(err_, "dspool: pool 'nosuch' does not exist\n");
}

TEST_F(CliTest, ErrorWithoutApiBodyNamesTheStatus) {
  Answer("GET /v1/status", 502, "<html>bad gateway</html>");
  EXPECT_EQ(Run({"status"}), 1);
  EXPECT_EQ(err_, "dspool: unix:" + tmp_.path() + "/api.sock answered HTTP 502: <html>bad gateway</html>\n");
}

TEST_F(CliTest, NoServerIsOneLine) {
  EXPECT_EQ(RunRaw({"--server", "unix:" + tmp_ / "nothing.sock", "status"}), 1);
  EXPECT_THAT(err_, StartsWith("dspool: cannot connect to unix:" + tmp_ / "nothing.sock"));
  EXPECT_EQ(std::count(err_.begin(), err_.end(), '\n'), 1);
}

TEST_F(CliTest, UsageErrorsExit2) {
  EXPECT_EQ(Run({"pool", "scale", "demo"}), 2);
  EXPECT_THAT(err_, HasSubstr("--count or --standby is required"));
  EXPECT_EQ(Run({"pool", "frobnicate"}), 2);
  EXPECT_EQ(Run({"-o", "yaml", "pool", "list"}), 2);
  EXPECT_EQ(RunRaw({}), 2);
  EXPECT_EQ(RunRaw({"--server", "unix:/a", "--data-dir", "/b", "status"}), 2);
  EXPECT_EQ(RunRaw({"server", "--uid-range", "5-10"}), 2);
  EXPECT_THAT(err_, HasSubstr("--uid-range: '5-10' starts below 1000"));
  EXPECT_EQ(RunRaw({"server", "--gateway-congestion-control", "no-such-cc"}), 2);
  EXPECT_THAT(err_, HasSubstr("--gateway-congestion-control: TCP congestion control 'no-such-cc' is not available "
                              "here (this host offers: "));
  EXPECT_EQ(RunRaw({"server", "--listen", "7070"}), 2);
  EXPECT_THAT(err_, HasSubstr("--listen: '7070' is not ADDRESS:PORT"));
  EXPECT_EQ(RunRaw({"server", "--jupyter-program", "jupyter-notebook"}), 2);
  EXPECT_THAT(err_, HasSubstr("--jupyter-program: 'jupyter-notebook' is not an absolute path (it must start with /)"));
  EXPECT_EQ(RunRaw({"server", "--jupyter-program", ""}), 2);
  EXPECT_THAT(err_, HasSubstr("--jupyter-program: '' is not an absolute path"));
  EXPECT_EQ(RunRaw({"--data-dir", "/x", "server"}), 2);
  EXPECT_THAT(err_, HasSubstr("--data-dir is an option of the client commands"));
  EXPECT_TRUE(seen().empty());

  EXPECT_EQ(RunRaw({"--help"}), 0);
  EXPECT_THAT(out_, HasSubstr("pool"));
  EXPECT_EQ(RunRaw({"server", "--help"}), 0);
  EXPECT_THAT(out_, HasSubstr("--jupyter-program PATH"));
}

TEST_F(CliTest, EnvironmentPicksServerAndToken) {
  environment_["DSPOOL_SERVER"] = "unix:" + tmp_ / "api.sock";
  environment_["DSPOOL_TOKEN_FILE"] = WriteFile("token", "t0ken\n");
  Answer("GET /v1/status", 200,
         R"({"version": "0.1.0", "dataDir": "/var/lib/dspool", "provider": "lxc", "pools": 1,
             "instances": {"total": 2, "ready": 1}, "users": 3, "startedAt": "2023-11-14T19:13:20.000Z"})");
  EXPECT_EQ(RunRaw({"status"}), 0) << err_;
  EXPECT_EQ(out_, "Server:      unix:" + tmp_.path() +
                      "/api.sock\n"
                      "Version:     0.1.0\n"
                      "Data dir:    /var/lib/dspool\n"
                      "Provider:    lxc\n"
                      "Pools:       1\n"
                      "Instances:   2 (1 ready)\n"
                      "Users:       3\n"
                      "Up:          3h (since 2023-11-14T19:13:20.000Z)\n");
  ASSERT_EQ(seen().size(), 1u);
  EXPECT_EQ(seen()[0].headers["authorization"], "Bearer t0ken");

  environment_["DSPOOL_TOKEN_FILE"] = tmp_ / "missing";
  EXPECT_EQ(RunRaw({"status"}), 1);
  EXPECT_EQ(err_, "dspool: DSPOOL_TOKEN_FILE: open " + tmp_.path() + "/missing: No such file or directory\n");
}

TEST_F(CliTest, PoolCreateSendsTheSpecWithThePassword) {
  std::string spec = WriteFile("spec.json", R"({"name": "demo", "adminUser": {"name": "dsvmuser"}})");
  Answer("POST /v1/pools", 201, kPoolJson);
  EXPECT_EQ(Run({"pool", "create", "-f", spec, "--admin-password-stdin"}, "hunter2 x\n"), 0) << err_;
  EXPECT_EQ(out_, "pool demo created with 2 instances; follow them with: dspool pool show demo\n");
  ASSERT_EQ(seen().size(), 1u);
  EXPECT_EQ(Json::parse(seen()[0].body),
            Json::parse(R"({"name": "demo", "adminUser": {"name": "dsvmuser", "password": "hunter2 x"}})"));
}

TEST_F(CliTest, PoolCreateNamesTheFileLineAndColumnOfBadJson) {
  std::string spec = WriteFile("bad.json", "{\"name\": \"x\",\n  oops}");
  EXPECT_EQ(Run({"pool", "create", "-f", spec}), 1);
  EXPECT_THAT(err_, StartsWith("dspool: " + spec + ": invalid JSON at line 2, column 3"));
  EXPECT_EQ(std::count(err_.begin(), err_.end(), '\n'), 1);

  EXPECT_EQ(Run({"pool", "create", "-f", tmp_ / "none.json"}), 1);
  EXPECT_EQ(err_, "dspool: -f: open " + tmp_.path() + "/none.json: No such file or directory\n");
  EXPECT_TRUE(seen().empty());
}

TEST_F(CliTest, PoolScaleAndDelete) {
  Answer("POST /v1/pools/demo/scale", 200, kPoolJson);
  EXPECT_EQ(Run({"pool", "scale", "demo", "--count", "2"}), 0) << err_;
  EXPECT_EQ(out_, "pool demo scaled to 2 instances\n");
  EXPECT_EQ(Json::parse(seen().back().body), Json::parse(R"({"instanceCount": 2})"));

  // Down, with more live instances than wanted: what happens to them.
  Json fewer = Json::parse(kPoolJson);
  fewer["instanceCount"] = 1;
  Answer("POST /v1/pools/demo/scale", 200, fewer.dump());
  EXPECT_EQ(Run({"pool", "scale", "demo", "--count", "1"}), 0) << err_;
  EXPECT_EQ(out_, "pool demo scaled to 1 instances\n"
                  "the instances it removes get no new sessions and are deleted when their last SSH session and "
                  "notebook server end (see `dspool pool show demo`; --force deletes them now)\n");
  EXPECT_EQ(Run({"pool", "scale", "demo", "--count", "1", "--force"}), 0) << err_;
  EXPECT_EQ(out_, "pool demo scaled to 1 instances\n"
                  "instances beyond 1 are deleted now, with any sessions on them\n");
  EXPECT_EQ(Json::parse(seen().back().body), Json::parse(R"({"instanceCount": 1, "force": true})"));

  // Standbys alone: the count stays as it is.
  Json standbys = Json::parse(kPoolJson);
  standbys["spec"]["standbyCount"] = 1;
  Answer("POST /v1/pools/demo/scale", 200, standbys.dump());
  EXPECT_EQ(Run({"pool", "scale", "demo", "--standby", "1"}), 0) << err_;
  EXPECT_EQ(out_, "pool demo scaled to 2 instances\n"
                  "it keeps 1 standbys: booted, then frozen; a scale-out takes them first\n");
  EXPECT_EQ(Json::parse(seen().back().body), Json::parse(R"({"standbyCount": 1})"));

  Answer("DELETE /v1/pools/demo", 202, kPoolJson);
  EXPECT_EQ(Run({"pool", "delete", "demo"}), 0) << err_;
  EXPECT_THAT(out_, StartsWith("pool demo is being deleted: its instances and network go away in the background"));
}

TEST_F(CliTest, InstanceListFiltersByPool) {
  Json pool = Json::parse(kPoolJson);
  Answer("GET /v1/instances?pool=demo", 200, Json{{"instances", pool["instances"]}}.dump());
  EXPECT_EQ(Run({"instance", "list", "--pool", "demo"}), 0) << err_;
  EXPECT_THAT(out_, StartsWith("INDEX   HOSTNAME   ID              PHASE"));
  Answer("GET /v1/instances", 200, Json{{"instances", pool["instances"]}}.dump());
  EXPECT_EQ(Run({"instance", "list"}), 0) << err_;
  EXPECT_THAT(out_, StartsWith("POOL   INDEX   HOSTNAME"));
  EXPECT_THAT(out_, HasSubstr("\ndemo   0       demo0"));
}

TEST_F(CliTest, PoolShowWithLoadBalancerShowsFrontendsHealthAndNatPorts) {
  Answer("GET /v1/pools/team", 200, kLbPoolJson);
  EXPECT_EQ(Run({"pool", "show", "team"}), 0) << err_;
  EXPECT_THAT(out_, HasSubstr("\nGateway:      10.232.0.1\n"
                              "Frontends:    SSH 0.0.0.0:2222 → 22, jupyter-nat 0.0.0.0:8001 → 8000, Jupyter https://0.0.0.0:8000\n"
                              "Share:        -\n"));
  EXPECT_THAT(out_, EndsWith("\n\n"
                             "INDEX   HOSTNAME   ID          PHASE     HEALTH               CONNS   ADDRESS      NAT  "
                             "         SSH   CPU   MEMORY   AGE   REASON\n"
                             "0       team0      team-0-aa   Ready     healthy              3       10.232.0.2   50000"
                             ",51000   -     -     -        10s\n"
                             "1       team1      team-1-bb   Booting   probing (draining)   0       10.232.0.3   50001"
                             ",51001   -     -     -        10s\n"
                             "4       team4      team-4-cc   Ready     -                    -       10.232.0.6   51004"
                             "         -     -     -        10s\n"));

  EXPECT_EQ(Run({"pool", "show", "team", "-o", "json"}), 0) << err_;
  EXPECT_EQ(out_, Json::parse(kLbPoolJson).dump(2) + "\n");
}

TEST_F(CliTest, InstanceListShowsARunningExtensionAndTheFirstLineOfAFailure) {
  Json instances = Json::parse(kPoolJson)["instances"];
  instances[1]["report"] = {{"sshSessions", 0},
                            {"extensions", {{{"name", "customData"}, {"state", "Succeeded"}, {"message", ""}},
                                            {{"name", "files"}, {"state", "Transitioning"}, {"message", ""}}}}};
  instances[0]["phase"] = "Failed";
  instances[0]["reason"] = "extension 'files' failed: Enable failed: exit status=32\n[stdout]\n\n[stderr]\nmount error";
  Answer("GET /v1/instances?pool=demo", 200, Json{{"instances", instances}}.dump());
  EXPECT_EQ(Run({"instance", "list", "--pool", "demo"}), 0) << err_;
  EXPECT_THAT(out_, HasSubstr("   running extension files\n"));
  EXPECT_THAT(out_, HasSubstr("   extension 'files' failed: Enable failed: exit status=32\n"));
  EXPECT_THAT(out_, Not(HasSubstr("mount error")));
}

TEST_F(CliTest, InstanceListShowsWhatScaleInWaitsFor) {
  Json instances = Json::parse(kPoolJson)["instances"];
  instances[0]["scaleIn"] = "drain";
  instances[0]["openSessions"] = 2;
  instances[1]["scaleIn"] = "now";
  Answer("GET /v1/instances?pool=demo", 200, Json{{"instances", instances}}.dump());
  EXPECT_EQ(Run({"instance", "list", "--pool", "demo"}), 0) << err_;
  EXPECT_THAT(out_, HasSubstr("   scale-in   "));
  EXPECT_THAT(out_, HasSubstr("scale-in: deleted when its 2 open sessions end\n"));
  EXPECT_THAT(out_, HasSubstr("   removing   "));
  instances[0].erase("openSessions");
  Answer("GET /v1/instances?pool=demo", 200, Json{{"instances", instances}}.dump());
  EXPECT_EQ(Run({"instance", "list", "--pool", "demo"}), 0) << err_;
  EXPECT_THAT(out_, HasSubstr("scale-in: waiting for its session count\n"));
}

TEST_F(CliTest, InstanceListShowsDrainingWithoutAGateway) {
  Json instances = Json::parse(kPoolJson)["instances"];
  instances[1]["draining"] = true;
  Answer("GET /v1/instances?pool=demo", 200, Json{{"instances", instances}}.dump());
  EXPECT_EQ(Run({"instance", "list", "--pool", "demo"}), 0) << err_;
  EXPECT_EQ(out_,
            "INDEX   HOSTNAME   ID              PHASE     HEALTH     CONNS   ADDRESS      SSH   CPU    MEMORY      AGE"
            "   REASON\n"
            "0       demo0      demo-0-3fa9c1   Ready     -          -       10.231.0.2   1     1.5%   120Mi/1Gi   2h\n"
            "1       demo1      demo-1-77ab02   Booting   draining   -       10.231.0.3   -     -      -           10s"
            "   waiting for the agent\n");
}

TEST_F(CliTest, InstanceDrainAndUndrain) {
  Json instance = Json::parse(kLbPoolJson)["instances"][1];
  Answer("POST /v1/instances/team-1-bb/drain", 200, instance.dump());
  EXPECT_EQ(Run({"instance", "drain", "team-1-bb"}), 0) << err_;
  EXPECT_EQ(out_, "instance team-1-bb draining: it gets no new connections; open ones go on\n");
  EXPECT_EQ(seen().back().method, "POST");
  EXPECT_EQ(seen().back().body, "");

  instance["draining"] = false;
  Answer("POST /v1/instances/team-1-bb/undrain", 200, instance.dump());
  EXPECT_EQ(Run({"instance", "undrain", "team-1-bb"}), 0) << err_;
  EXPECT_EQ(out_, "instance team-1-bb back in rotation\n");
  EXPECT_EQ(Run({"instance", "undrain", "team-1-bb", "-o", "json"}), 0) << err_;
  EXPECT_EQ(out_, instance.dump(2) + "\n");

  // The id is one path segment, whatever it holds.
  Answer("POST /v1/instances/a%2Fb/drain", 404,
         R"({"error": {"code": "NotFound", "message": "instance 'a/b' does not exist"}})");
  EXPECT_EQ(Run({"instance", "drain", "a/b"}), 1);
  EXPECT_EQ(out_, "");
  EXPECT_EQ(err_, "dspool: instance 'a/b' does not exist\n");
  Answer("POST /v1/instances/team-2-dd/drain", 409,
         R"({"error": {"code": "FailedPrecondition",
                       "message": "instance 'team-2-dd' of pool 'team' is being deleted (scale-in); it cannot be drained"}})");
  EXPECT_EQ(Run({"instance", "drain", "team-2-dd"}), 1);
  EXPECT_EQ(err_, "dspool: instance 'team-2-dd' of pool 'team' is being deleted (scale-in); it cannot be drained\n");

  size_t requests = seen().size();
  EXPECT_EQ(Run({"instance", "drain"}), 2);
  EXPECT_THAT(err_, HasSubstr("ID is required"));
  EXPECT_EQ(Run({"instance", "undrain", "a", "b"}), 2);
  EXPECT_EQ(seen().size(), requests);
}

TEST_F(CliTest, UserAddSendsKeysPasswordAndRole) {
  std::string key = WriteFile("alice.pub", "ssh-ed25519 AAAAC3alice alice@laptop\n");
  Answer("POST /v1/users", 201, kUserJson);
  EXPECT_EQ(Run({"user", "add", "--ssh-key", key, "alice", "--password-stdin", "--admin"}, "pw\n"), 0) << err_;
  EXPECT_EQ(out_, "user alice created (uid 20000)\n");
  EXPECT_EQ(Json::parse(seen().back().body), Json::parse(R"({"name": "alice", "admin": true, "password": "pw",
                                                              "sshKeys": ["ssh-ed25519 AAAAC3alice alice@laptop"]})"));
}

TEST_F(CliTest, UserAddRestoresADeletedUser) {
  Answer("POST /v1/users", 201, kUserJson);
  EXPECT_EQ(Run({"user", "add", "alice", "--restore"}), 0) << err_;
  EXPECT_EQ(out_, "user alice restored (uid 20000): their files on the shares are theirs again\n");
  EXPECT_EQ(Json::parse(seen().back().body), Json::parse(R"({"name": "alice", "restore": true})"));
  EXPECT_EQ(Run({"user", "add", "alice", "--new-uid"}), 0) << err_;
  EXPECT_EQ(Json::parse(seen().back().body), Json::parse(R"({"name": "alice", "newUid": true})"));
  size_t requests = seen().size();
  EXPECT_EQ(Run({"user", "add", "alice", "--restore", "--new-uid"}), 2);
  EXPECT_THAT(err_, HasSubstr("excludes"));
  EXPECT_EQ(seen().size(), requests);
}

TEST_F(CliTest, ServerStopWaitsUntilTheServerNoLongerAnswers) {
  Answer("POST /v1/server/stop", 202, R"({"stopping": true, "pid": 4242})");
  Answer("GET /v1/status", 200, R"({"version": "x"})");
  int waits = 0;
  polls_left_ = 100;
  on_wait_ = [&] {
    if (++waits == 3) server_->Stop();  // it answers twice more, then is gone
  };
  EXPECT_EQ(RunRaw({"server", "stop", "--data-dir", tmp_.path()}), 0) << err_;
  EXPECT_EQ(out_, "dspool server (pid 4242) stopped; the instances and the users' notebook servers keep running, "
                  "the gateway keeps relaying their sessions, and the next `dspool server` on this data directory "
                  "takes them up again\n");
  std::vector<Seen> requests = seen();
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_EQ(requests[0].method + " " + requests[0].target, "POST /v1/server/stop");
  EXPECT_EQ(requests[2].target, "/v1/status");
}

TEST_F(CliTest, ServerStopSaysSoWhenTheServerGoesOnAnswering) {
  Answer("POST /v1/server/stop", 202, R"({"stopping": true, "pid": 4242})");
  Answer("GET /v1/status", 200, R"({"version": "x"})");
  polls_left_ = 5;
  EXPECT_EQ(RunRaw({"server", "stop", "--data-dir", tmp_.path()}), 1);
  EXPECT_EQ(err_, "dspool: the server (pid 4242) was asked to stop but still answers after a minute\n");
  // Client options belong to client commands.
  EXPECT_EQ(Run({"server", "stop"}), 2);
  EXPECT_THAT(err_, HasSubstr("--data-dir is an option of the client commands"));
}

TEST_F(CliTest, UserShowAndDelete) {
  Answer("GET /v1/users/alice", 200, kUserJson);
  EXPECT_EQ(Run({"user", "show", "alice"}), 0) << err_;
  EXPECT_EQ(out_,
            "Name:       alice\n"
            "UID:        20000\n"
            "GID:        20000\n"
            "Admin:      no\n"
            "Password:   set\n"
            "Created:    4d ago (2023-11-10T22:13:20.000Z)\n"
            "\n"
            "TYPE          FINGERPRINT     COMMENT\n"
            "ssh-ed25519   SHA256:ab+c/d   alice@laptop\n");

  Answer("DELETE /v1/users/alice", 200, R"({"deleted": "alice", "uid": 20000, "filesKept": true})");
  EXPECT_EQ(Run({"user", "delete", "alice"}), 0) << err_;
  EXPECT_EQ(out_, "user alice deleted; their uid 20000 and their files on the shares are kept "
                  "(`dspool user add alice --restore` brings them back)\n");
}

TEST_F(CliTest, UserKeyRemoveByFileFindsTheFingerprint) {
  std::string key = WriteFile("alice.pub", "ssh-ed25519 AAAAC3alice other comment\n");
  Answer("GET /v1/users/alice", 200, kUserJson);
  Answer("DELETE /v1/users/alice/keys?fingerprint=SHA256%3Aab%2Bc%2Fd", 200, kUserJson);
  EXPECT_EQ(Run({"user", "key", "remove", "alice", key}), 0) << err_;
  EXPECT_EQ(out_, "key SHA256:ab+c/d removed from user alice\n");

  std::string other = WriteFile("bob.pub", "ssh-ed25519 AAAAC3bob bob\n");
  EXPECT_EQ(Run({"user", "key", "remove", "alice", other}), 1);
  EXPECT_EQ(err_, "dspool: user 'alice' has none of the keys in " + other + "\n");

  EXPECT_EQ(Run({"user", "key", "remove", "alice", "SHA256:ab+c/d"}), 0) << err_;
  EXPECT_EQ(seen().back().target, "/v1/users/alice/keys?fingerprint=SHA256%3Aab%2Bc%2Fd");
}

TEST_F(CliTest, UserPasswdReadsStdin) {
  Answer("PUT /v1/users/alice/password", 200, kUserJson);
  EXPECT_EQ(Run({"user", "passwd", "alice", "--password-stdin"}, "n3w\n"), 0) << err_;
  EXPECT_EQ(out_, "password of user alice changed\n");
  EXPECT_EQ(Json::parse(seen().back().body), Json::parse(R"({"password": "n3w"})"));

  EXPECT_EQ(Run({"user", "passwd", "alice", "--password-stdin"}, ""), 1);
  EXPECT_EQ(err_, "dspool: --password-stdin: no password on standard input\n");
}

TEST_F(CliTest, EventsFollowPollsAfterTheLastSeq) {
  Answer("GET /v1/events?limit=2", 200,
         R"({"events": [{"seq": 7, "time": "2023-11-14T22:13:00.000Z", "actor": "root", "action": "pool.create",
                         "subject": "pool/demo", "detail": ""},
                        {"seq": 8, "time": "2023-11-14T22:13:15.000Z", "actor": "reconcile",
                         "action": "instance.ready", "subject": "instance/demo-0-3fa9c1", "detail": ""}]})");
  Answer("GET /v1/events?after=8&limit=2", 200,
         R"({"events": [{"seq": 9, "time": "2023-11-14T22:13:20.000Z", "actor": "root", "action": "pool.scale",
                         "subject": "pool/demo", "detail": "2 -> 3"}]})");
  Answer("GET /v1/events?after=9&limit=2", 200, R"({"events": []})");
  polls_left_ = 2;  // stop at the second wait
  EXPECT_EQ(Run({"events", "--limit", "2", "--follow"}), 0) << err_;
  EXPECT_EQ(out_,
            "SEQ   AGE   ACTOR       ACTION           SUBJECT                  DETAIL\n"
            "7     20s   root        pool.create      pool/demo\n"
            "8     5s    reconcile   instance.ready   instance/demo-0-3fa9c1\n"
            "9     0s    root        pool.scale       pool/demo                2 -> 3\n");
  std::vector<std::string> targets;
  for (const Seen& s : seen()) targets.push_back(s.target);
  // A full page (2 of limit 2) is followed at once; then one poll a second.
  EXPECT_EQ(targets, (std::vector<std::string>{"/v1/events?limit=2", "/v1/events?after=8&limit=2",
                                               "/v1/events?after=9&limit=2"}));
}

TEST_F(CliTest, EventsJsonFollowIsJsonLines) {
  Answer("GET /v1/events?after=3", 200, R"({"events": [{"seq": 4, "action": "a"}, {"seq": 5, "action": "b"}]})");
  Answer("GET /v1/events?after=5", 200, R"({"events": []})");
  polls_left_ = 2;
  EXPECT_EQ(Run({"events", "--after", "3", "-f", "-o", "json"}), 0) << err_;
  EXPECT_EQ(out_, "{\"action\":\"a\",\"seq\":4}\n{\"action\":\"b\",\"seq\":5}\n");
}

constexpr const char* kSessionsJson = R"({"sessions": [
    {"pool": "team", "user": "alice", "instance": "team-0-aa", "state": "ready", "error": "",
     "startedAt": "2023-11-14T22:03:20.000Z", "lastActivity": "2023-11-14T22:13:00.000Z",
     "busyKernels": 2, "busyTerminals": 1, "kernels": 3},
    {"pool": "lab", "user": "alice", "instance": "", "state": "failed", "error": "no instance",
     "startedAt": "2023-11-14T20:13:20.000Z", "lastActivity": "2023-11-14T20:13:20.000Z",
     "busyKernels": 0, "busyTerminals": 0, "kernels": 0},
    {"pool": "team", "user": "bob", "instance": "team-1-bb", "state": "ready", "error": "",
     "startedAt": "2023-11-14T22:12:20.000Z", "lastActivity": "2023-11-14T22:13:20.000Z",
     "busyKernels": 0, "busyTerminals": 1, "kernels": 1, "kind": "notebook", "client": "192.0.2.7"},
    {"kind": "ssh", "pool": "team", "instance": "team-0-aa", "client": "127.0.0.1:40022", "frontendPort": 2222,
     "instanceAddress": "10.232.5.2:22", "instanceSees": "10.232.5.1:51234", "transparent": false,
     "startedAt": "2023-11-14T22:13:00.000Z"},
    {"kind": "ssh", "pool": "team", "instance": "team-1-bb", "client": "198.51.100.9:6000", "frontendPort": 2222,
     "instanceAddress": "10.232.5.3:22", "instanceSees": "198.51.100.9:41000", "transparent": true,
     "startedAt": "2023-11-14T22:12:20.000Z"}]})";

TEST_F(CliTest, SessionListIsATable) {
  Answer("GET /v1/sessions", 200, kSessionsJson);
  EXPECT_EQ(Run({"session", "list"}), 0) << err_;
  EXPECT_EQ(out_,
            "KIND       POOL   USER    INSTANCE    CLIENT              INSTANCE-SEES        STATE    STARTED   "
            "LAST-ACTIVITY   BUSY\n"
            "notebook   team   alice   team-0-aa   -                   -                    ready    10m       "
            "20s             2 kernels, 1 terminal\n"
            "notebook   lab    alice   -           -                   -                    failed   2h        "
            "2h              -\n"
            "notebook   team   bob     team-1-bb   192.0.2.7           -                    ready    1m        "
            "0s              1 terminal\n"
            "ssh        team   -       team-0-aa   127.0.0.1:40022     10.232.5.1:51234     open     20s       "
            "-               -\n"
            "ssh        team   -       team-1-bb   198.51.100.9:6000   198.51.100.9:41000   open     1m        "
            "-               -\n"
            "failed: alice in pool lab: no instance\n");
  EXPECT_EQ(Run({"session", "list", "-o", "json"}), 0) << err_;
  EXPECT_EQ(out_, Json::parse(kSessionsJson).dump(2) + "\n");
  Answer("GET /v1/sessions", 200, R"({"sessions": []})");
  EXPECT_EQ(Run({"session", "list"}), 0) << err_;
  EXPECT_EQ(out_, "No sessions.\n");
}

TEST_F(CliTest, SessionStopNamesThePool) {
  Answer("GET /v1/sessions", 200, kSessionsJson);
  Answer("DELETE /v1/sessions/bob?pool=team", 204, "");
  EXPECT_EQ(Run({"session", "stop", "bob"}), 0) << err_;
  EXPECT_EQ(out_, "stopped bob's notebook server in pool team; their files stay on the share\n");
  EXPECT_EQ(seen().back().method, "DELETE");

  Answer("DELETE /v1/sessions/alice?pool=lab", 204, "");
  EXPECT_EQ(Run({"session", "stop", "alice", "--pool", "lab"}), 0) << err_;
  EXPECT_EQ(out_, "stopped alice's notebook server in pool lab; their files stay on the share\n");
  EXPECT_EQ(seen().back().target, "/v1/sessions/alice?pool=lab");
  EXPECT_EQ(Run({"session", "stop", "alice", "--pool", "lab", "-o", "json"}), 0) << err_;
  EXPECT_EQ(out_, "");

  // Several pools and no --pool: the server's answer, as is.
  Answer("DELETE /v1/sessions/alice", 400,
         R"({"error": {"code": "InvalidArgument",
                       "message": "user 'alice' has notebook servers in pools team, lab: name one with ?pool=NAME"}})");
  EXPECT_EQ(Run({"session", "stop", "alice"}), 1);
  EXPECT_EQ(out_, "");
  EXPECT_EQ(err_, "dspool: user 'alice' has notebook servers in pools team, lab: name one with ?pool=NAME\n");
  Answer("DELETE /v1/sessions/carol", 404,
         R"({"error": {"code": "NotFound", "message": "user 'carol' has no notebook server"}})");
  EXPECT_EQ(Run({"session", "stop", "carol"}), 1);
  EXPECT_EQ(err_, "dspool: user 'carol' has no notebook server\n");
  EXPECT_EQ(Run({"session", "stop"}), 2);
}

// ---------------------------------------------------------------- az's verbs

constexpr const char* kGroupJson = R"({"id": "/subscriptions/s/resourceGroups/rg1", "location": "local",
  "managedBy": null, "name": "rg1", "properties": {"provisioningState": "Succeeded"}, "tags": {"team": "ds"},
  "type": "Microsoft.Resources/resourceGroups"})";

constexpr const char* kTemplate = R"({
  "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
  "contentVersion": "1.0.0.0",
  "parameters": {"name": {"type": "string"}, "pw": {"type": "securestring"}, "count": {"type": "int", "defaultValue": 1}},
  "resources": []})";

std::string DeploymentJson(const std::string& state, const std::string& error = "null") {
  return R"({"id": "/subscriptions/s/resourceGroups/rg1/providers/Microsoft.Resources/deployments/tmpl",
    "name": "tmpl", "resourceGroup": "rg1", "type": "Microsoft.Resources/deployments",
    "properties": {"provisioningState": ")" + state + R"(", "mode": "Incremental", "timestamp": "2023-11-14T22:13:20.000Z",
                   "error": )" + error + "}}";
}

TEST_F(CliTest, GroupCommandsPrintAzsJsonByDefault) {
  Answer("PUT /v1/groups/rg1", 201, kGroupJson);
  ASSERT_EQ(Run({"group", "create", "-n", "rg1", "-l", "local", "--tags", "team=ds"}), 0) << err_;
  EXPECT_EQ(Json::parse(out_), Json::parse(kGroupJson));
  EXPECT_EQ(Json::parse(seen().back().body), Json::parse(R"({"location": "local", "tags": {"team": "ds"}})"));

  Answer("GET /v1/groups", 200, std::string(R"({"value": [)") + kGroupJson + "]}");
  ASSERT_EQ(Run({"group", "list", "-o", "tsv"}), 0) << err_;
  EXPECT_EQ(out_, "rg1\tlocal\tSucceeded\n");
  ASSERT_EQ(Run({"group", "exists", "-n", "rg1"}), 0) << err_;  // no canned answer: 404
  EXPECT_EQ(out_, "false\n");

  // Deleting asks first; without a terminal, --yes is needed.
  ASSERT_EQ(Run({"group", "delete", "-n", "rg1"}), 1);
  EXPECT_THAT(err_, HasSubstr("give --yes to confirm"));
  EXPECT_NE(seen().back().method, "DELETE");
}

TEST_F(CliTest, DeploymentCreateAsksForMissingParametersOnATerminal) {
  const std::string tmpl = WriteFile("tmpl.json", kTemplate);
  Answer("PUT /v1/groups/rg1/deployments/tmpl", 201, DeploymentJson("Running"));
  Answer("GET /v1/groups/rg1/deployments/tmpl", 200, DeploymentJson("Succeeded"));
  Answer("GET /v1/groups/rg1/deployments/tmpl/operations", 200, R"({"value": []})");
  terminal_ = true;
  typed_ = {"Pa55-word"};
  ASSERT_EQ(Run({"deployment", "group", "create", "-g", "rg1", "-f", tmpl, "-p", "name=pool1"}), 0) << err_;
  EXPECT_EQ(asked_, std::vector<std::string>{"Please provide securestring value for 'pw' (? for help):  [secret]"});
  Json body = Json::parse(seen()[0].body);
  EXPECT_EQ(body["parameters"], Json::parse(R"({"name": {"value": "pool1"}, "pw": {"value": "Pa55-word"}})"));
  EXPECT_EQ(body["template"], kTemplate);  // the text, so errors can name lines
  EXPECT_EQ(Json::parse(out_)["properties"]["provisioningState"], "Succeeded");
}

TEST_F(CliTest, DeploymentCreateNamesEveryMissingParameterWithoutATerminal) {
  const std::string tmpl = WriteFile("tmpl.json", kTemplate);
  ASSERT_EQ(Run({"deployment", "group", "create", "-g", "rg1", "-f", tmpl}), 1);
  EXPECT_THAT(err_, HasSubstr("Missing input parameters: name, pw"));
  EXPECT_TRUE(seen().empty());
  // A secure one on the command line works, with a warning.
  Answer("PUT /v1/groups/rg1/deployments/tmpl", 201, DeploymentJson("Running"));
  Answer("GET /v1/groups/rg1/deployments/tmpl", 200, DeploymentJson("Succeeded"));
  Answer("GET /v1/groups/rg1/deployments/tmpl/operations", 200, R"({"value": []})");
  ASSERT_EQ(Run({"deployment", "group", "create", "-g", "rg1", "-f", tmpl, "-p", "name=a", "pw=b", "--no-wait"}), 0)
      << err_;
  EXPECT_THAT(err_, HasSubstr("WARNING: the value of 'pw' was given on the command line"));
  EXPECT_EQ(out_, "");  // --no-wait
}

TEST_F(CliTest, RollbackOnErrorNamesADeploymentOrTheLastSuccessfulOne) {
  const std::string tmpl = WriteFile("tmpl.json", kTemplate);
  Answer("PUT /v1/groups/rg1/deployments/tmpl", 201, DeploymentJson("Running"));
  ASSERT_EQ(Run({"deployment", "group", "create", "-g", "rg1", "-f", tmpl, "-p", "name=a", "pw=b", "--no-wait",
                 "--rollback-on-error"}),
            0)
      << err_;
  EXPECT_EQ(Json::parse(seen().back().body)["onErrorDeployment"], Json::parse(R"({"type": "LastSuccessful"})"));
  ASSERT_EQ(Run({"deployment", "group", "create", "-g", "rg1", "-f", tmpl, "-p", "name=a", "pw=b", "--no-wait",
                 "--rollback-on-error", "good"}),
            0)
      << err_;
  EXPECT_EQ(Json::parse(seen().back().body)["onErrorDeployment"],
            Json::parse(R"({"type": "SpecificDeployment", "deploymentName": "good"})"));
  ASSERT_EQ(Run({"deployment", "group", "create", "-g", "rg1", "-f", tmpl, "-p", "name=a", "pw=b", "--no-wait"}), 0);
  EXPECT_FALSE(Json::parse(seen().back().body).contains("onErrorDeployment"));
}

TEST_F(CliTest, ALocalTemplatesRelativeFilesAreSentWhenTheServerAsksForThem) {
  std::filesystem::create_directories(tmp_ / "t/scripts");
  const std::string tmpl = WriteFile("t/tmpl.json", kTemplate);
  WriteFile("t/scripts/mount.sh", "#!/bin/sh\nmount\n");
  // The server asks for the files until they come.
  respond_ = [](const Request& r) -> std::optional<Response> {
    if (r.method != "PUT" || Json::parse(r.body).contains("artifacts")) return std::nullopt;
    return JsonResponse(404, R"({"error": {"code": "MissingTemplateArtifacts", "message": "send them",
        "details": [{"code": "MissingTemplateArtifact", "target": "scripts/mount.sh", "message": "not sent"}]}})");
  };
  Answer("PUT /v1/groups/rg1/deployments/tmpl", 201, DeploymentJson("Running"));
  ASSERT_EQ(Run({"deployment", "group", "create", "-g", "rg1", "-f", tmpl, "-p", "name=a", "pw=b", "--no-wait"}), 0)
      << err_;
  ASSERT_EQ(seen().size(), 2u);
  EXPECT_FALSE(Json::parse(seen()[0].body).contains("artifacts"));
  EXPECT_EQ(Json::parse(seen()[1].body)["artifacts"],
            Json::parse(R"({"scripts/mount.sh": ")" + Base64Encode("#!/bin/sh\nmount\n") + R"("})"));
  EXPECT_THAT(err_, HasSubstr("Sending the files next to the template that its fileUris name: scripts/mount.sh"));

  // A file that is not there: named, and nothing sent again.
  std::filesystem::remove(tmp_ / "t/scripts/mount.sh");
  ASSERT_EQ(Run({"deployment", "group", "create", "-g", "rg1", "-f", tmpl, "-p", "name=a", "pw=b", "--no-wait"}), 1);
  EXPECT_THAT(err_, HasSubstr("the template's fileUri 'scripts/mount.sh' is relative, so it is read next to the "
                              "template: "));
  EXPECT_THAT(err_, HasSubstr("t/scripts/mount.sh"));
  EXPECT_EQ(seen().size(), 3u);

  // A detail that names no relative path is never read: the server's error stands.
  respond_ = [](const Request& r) -> std::optional<Response> {
    if (r.method != "PUT") return std::nullopt;
    return JsonResponse(404, R"({"error": {"code": "MissingTemplateArtifacts", "message": "send them",
        "details": [{"code": "MissingTemplateArtifact", "target": "/etc/shadow", "message": "not sent"}]}})");
  };
  ASSERT_EQ(Run({"deployment", "group", "create", "-g", "rg1", "-f", tmpl, "-p", "name=a", "pw=b", "--no-wait"}), 1);
  EXPECT_THAT(err_, HasSubstr("MissingTemplateArtifacts: send them"));
  EXPECT_EQ(seen().size(), 4u);
}

TEST_F(CliTest, DeploymentErrorsAreAzs) {
  const std::string tmpl = WriteFile("tmpl.json", kTemplate);
  Answer("PUT /v1/groups/rg1/deployments/dep", 400,
         R"({"error": {"code": "InvalidTemplate", "message": "bad value", "details": [{"code": "X", "message": "why"}]}})");
  ASSERT_EQ(Run({"group", "deployment", "create", "-g", "rg1", "-n", "dep", "-f", tmpl, "-p", "name=a", "pw=@" + tmpl}), 1);
  EXPECT_THAT(err_, HasSubstr("This command is deprecated"));
  EXPECT_THAT(err_, HasSubstr("dspool: InvalidTemplate: bad value X: why"));

  // A deployment that fails: its error, and exit 1.
  Answer("PUT /v1/groups/rg1/deployments/dep", 201, DeploymentJson("Running"));
  Answer("GET /v1/groups/rg1/deployments/dep", 200,
         DeploymentJson("Failed", R"({"code": "DeploymentFailed", "message": "At least one failed.",
                                      "details": [{"code": "ResourceDeploymentFailure", "message": "instance x failed"}]})"));
  Answer("GET /v1/groups/rg1/deployments/dep/operations", 200,
         R"({"value": [{"operationId": "A1", "properties": {"provisioningState": "Failed", "duration": "PT1S",
             "targetResource": {"resourceType": "Microsoft.Compute/virtualMachineScaleSets", "resourceName": "p"}}}]})");
  ASSERT_EQ(Run({"deployment", "group", "create", "-g", "rg1", "-n", "dep", "-f", tmpl, "-p", "name=a", "pw=b"}), 1);
  EXPECT_THAT(err_, HasSubstr(" - Microsoft.Compute/virtualMachineScaleSets 'p': Failed (PT1S)"));
  EXPECT_THAT(err_, HasSubstr("DeploymentFailed: At least one failed. ResourceDeploymentFailure: instance x failed"));
  EXPECT_EQ(out_, "");
}

constexpr const char* kAccountJson = R"({"id": "/subscriptions/s/resourceGroups/rg1/providers/Microsoft.Storage/storageAccounts/files",
  "kind": "StorageV2", "location": "local", "name": "files", "provisioningState": "Succeeded", "resourceGroup": "rg1",
  "sku": {"name": "Standard_LRS", "tier": "Standard"}, "type": "Microsoft.Storage/storageAccounts"})";

TEST_F(CliTest, StorageVerbsAreAzs) {
  Answer("PUT /v1/groups/rg1/storageAccounts/files", 201, kAccountJson);
  ASSERT_EQ(Run({"storage", "account", "create", "-n", "files", "-g", "rg1", "--sku", "Premium_LRS"}), 0) << err_;
  EXPECT_EQ(Json::parse(out_)["name"], "files");
  EXPECT_EQ(Json::parse(seen().back().body), Json::parse(R"({"sku": {"name": "Premium_LRS"}, "kind": "StorageV2"})"));

  // Without -g, the account's group is found by its name.
  Answer("GET /v1/storageAccounts", 200, std::string(R"({"value": [)") + kAccountJson + "]}");
  Answer("POST /v1/groups/rg1/storageAccounts/files/listKeys", 200,
         R"({"keys": [{"keyName": "key1", "permissions": "FULL", "value": "K1==", "creationTime": "t"},
                      {"keyName": "key2", "permissions": "FULL", "value": "K2==", "creationTime": "t"}]})");
  ASSERT_EQ(Run({"storage", "account", "keys", "list", "-n", "files", "-o", "tsv"}), 0) << err_;
  EXPECT_EQ(out_, "key1\tFULL\tK1==\tt\nkey2\tFULL\tK2==\tt\n");
  EXPECT_EQ(Run({"storage", "account", "keys", "renew", "-n", "files", "--key", "tertiary"}), 1);
  EXPECT_THAT(err_, HasSubstr("--key: 'tertiary' is not primary or secondary"));

  // The data plane: a key given is checked first; a wrong one stops there.
  Answer("POST /v1/groups/rg1/storageAccounts/files/checkKey", 403,
         R"({"error": {"code": "PermissionDenied", "message": "AuthenticationFailed: the key given is not a key of storage account 'files'"}})");
  ASSERT_EQ(Run({"storage", "share", "create", "-n", "work", "--account-name", "files", "--account-key", "nope"}), 1);
  EXPECT_THAT(err_, HasSubstr("AuthenticationFailed"));
  EXPECT_EQ(seen().back().target, "/v1/groups/rg1/storageAccounts/files/checkKey");
  EXPECT_EQ(Json::parse(seen().back().body), Json::parse(R"({"key": "nope"})"));
  Answer("POST /v1/groups/rg1/storageAccounts/files/checkKey", 204, "");
  Answer("PUT /v1/groups/rg1/storageAccounts/files/shares/work", 201, R"({"name": "work", "shareQuota": 10})");
  ASSERT_EQ(Run({"storage", "share", "create", "-n", "work", "--account-name", "files", "--account-key", "K1==",
                 "--quota", "10"}),
            0)
      << err_;
  EXPECT_EQ(Json::parse(out_), Json::parse(R"({"created": true})"));
  EXPECT_EQ(Json::parse(seen().back().body), Json::parse(R"({"properties": {"shareQuota": 10}})"));

  // share-rm: deleted shares are listed with their versions, and restored.
  Answer("GET /v1/groups/rg1/storageAccounts/files/shares?includeDeleted=true", 200,
         R"({"value": [{"name": "work", "shareQuota": 10, "enabledProtocols": "SMB", "deleted": true,
                        "version": "01DB2C3D4E5F6071", "remainingRetentionDays": 7}]})");
  ASSERT_EQ(Run({"storage", "share-rm", "list", "--storage-account", "files", "-g", "rg1", "--include-deleted", "-o",
                 "tsv"}),
            0)
      << err_;
  EXPECT_EQ(seen().back().target, "/v1/groups/rg1/storageAccounts/files/shares?includeDeleted=true");
  EXPECT_EQ(out_, "work\t10\tSMB\tyes\t01DB2C3D4E5F6071\t7\n");
  Answer("POST /v1/groups/rg1/storageAccounts/files/shares/work/restore", 200, R"({"name": "work"})");
  ASSERT_EQ(Run({"storage", "share-rm", "restore", "-n", "work", "--storage-account", "files", "-g", "rg1",
                 "--deleted-version", "01DB2C3D4E5F6071"}),
            0)
      << err_;
  EXPECT_EQ(Json::parse(seen().back().body), Json::parse(R"({"deletedVersion": "01DB2C3D4E5F6071"})"));
  ASSERT_EQ(Run({"storage", "share-rm", "delete", "-n", "work", "--storage-account", "files", "-g", "rg1"}), 1);
  EXPECT_THAT(err_, HasSubstr("give --yes to confirm"));
}

}  // namespace
}  // namespace dspool
