#include "agent/control.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "agent/testing/fake_notebook.h"

namespace dspool {
namespace {

const std::string kToken(64, 'c');

// Applies whatever version it is asked for, or (stuck) none: records what
// it was asked.
class FakeRefresher : public ConfigRefresher {
 public:
  Result<int64_t> RefreshConfig(int64_t at_least, std::chrono::milliseconds timeout) override {
    asked.push_back(at_least);
    if (stuck) return DeadlineExceeded("configuration version " + std::to_string(at_least) + " not applied in time");
    EXPECT_EQ(timeout, kConfigRefreshTimeout);
    applied = std::max(applied, at_least);
    return applied;
  }
  int64_t applied = 3;
  bool stuck = false;
  std::vector<int64_t> asked;
};

// Mounts what it is asked, unless told what to fail with.
class FakeMounter : public ShareMounter {
 public:
  Status MountShare(const ShareMountRequest& request) override {
    asked.push_back(request);
    return answer;
  }
  Status answer;
  std::vector<ShareMountRequest> asked;
};

class ControlTest : public ::testing::Test {
 protected:
  ControlTest() {
    procs_.on_exit = [this](pid_t pid, int status) { sup_.OnExit(pid, status); };
    sup_.SetUsers("10.80.0.11", {{"alice", 20000, 20000, {20000}, "/srv/share/home/alice", "/bin/bash"}});
  }

  Response Call(const std::string& method, const std::string& path, const std::string& body = "") {
    Request r;
    r.method = method;
    r.target = r.path = path;
    r.body = body;
    r.listener_tag = "control";
    return HandleControlRequest(sup_, config_, mounts_, r);
  }

  static Json Body(const Response& r) { return Json::parse(r.body); }
  static std::string StartBody(const std::string& user, const std::string& token) {
    return Json{{"user", user}, {"token", token}}.dump();
  }

  SimulatedClock clock_;
  FakeRefresher config_;
  FakeMounter mounts_;
  FakeNotebookProcesses procs_{clock_};
  FakeNotebookApi api_{procs_, clock_};
  JupyterSupervisor sup_{procs_, api_, clock_, [this](Duration d) { procs_.Sleep(d); }};
};

TEST_F(ControlTest, ConfigRefreshAnswersOnceTheVersionIsApplied) {
  Response r = Call("POST", "/v1/config/refresh", R"({"version": 7})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Body(r), (Json{{"configVersion", 7}}));
  EXPECT_EQ(config_.asked, std::vector<int64_t>{7});

  config_.stuck = true;
  r = Call("POST", "/v1/config/refresh", R"({"version": 8})");
  EXPECT_EQ(r.status, 502) << r.body;
  EXPECT_NE(Body(r)["error"]["message"].get<std::string>().find("version 8 not applied"), std::string::npos) << r.body;

  for (const char* bad : {R"({})", R"({"version": -1})", R"({"version": "7"})", R"({"version": 7, "x": 1})", "[1"}) {
    r = Call("POST", "/v1/config/refresh", bad);
    EXPECT_EQ(r.status, 400) << bad << ": " << r.body;
  }
  EXPECT_EQ(Call("GET", "/v1/config/refresh").status, 400);
  EXPECT_EQ(config_.asked.size(), 2u) << "bad requests change nothing";
}

TEST_F(ControlTest, StartListStop) {
  Response r = Call("POST", "/v1/jupyter/servers", StartBody("alice", kToken));
  ASSERT_EQ(r.status, 201) << r.body;
  Json started = Body(r);
  EXPECT_EQ(started["user"], "alice");
  EXPECT_EQ(started["address"], "10.80.0.11");
  EXPECT_EQ(started["port"], 9000);
  EXPECT_EQ(started["state"], "ready");
  EXPECT_TRUE(started["pid"].is_number_integer());
  EXPECT_EQ(started["startedAt"], ToUnixMillis(clock_.Now()) - 500);
  EXPECT_EQ(started.size(), 6u);
  EXPECT_EQ(r.body.find(kToken), std::string::npos);

  r = Call("POST", "/v1/jupyter/servers", StartBody("alice", kToken));
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Body(r), started);

  r = Call("GET", "/v1/jupyter/servers");
  ASSERT_EQ(r.status, 200) << r.body;
  Json list = Body(r);
  ASSERT_EQ(list["servers"].size(), 1u);
  Json s = list["servers"][0];
  for (const char* key : {"user", "address", "port", "pid", "startedAt", "state", "lastActivity", "kernels",
                          "busyKernels", "terminals", "busyTerminals"}) {
    EXPECT_TRUE(s.contains(key)) << key;
  }
  EXPECT_EQ(s["lastActivity"], 1'700'000'000'042);
  EXPECT_TRUE(ParseJupyterServerList(list).ok());

  r = Call("DELETE", "/v1/jupyter/servers/alice");
  EXPECT_EQ(r.status, 204) << r.body;
  EXPECT_EQ(r.body, "");
  EXPECT_EQ(Body(Call("GET", "/v1/jupyter/servers"))["servers"].size(), 0u);
}

TEST_F(ControlTest, ErrorsAreJsonWithCodeAndMessage) {
  struct Case {
    std::string method, path, body;
    int status;
    std::string code, message_part;
  };
  for (const Case& c : std::vector<Case>{
           {"POST", "/v1/jupyter/servers", StartBody("carol", kToken), 404, "NotFound", "user 'carol'"},
           {"POST", "/v1/jupyter/servers", StartBody("alice", "nothex"), 400, "InvalidArgument", "body.token"},
           {"POST", "/v1/jupyter/servers", "{", 400, "InvalidArgument", "request body: invalid JSON"},
           {"POST", "/v1/jupyter/servers", "", 400, "InvalidArgument", "body.user: is required"},
           {"DELETE", "/v1/jupyter/servers/alice", "", 404, "NotFound", "no Jupyter server for user 'alice'"},
           {"DELETE", "/v1/jupyter/servers/Bad!", "", 400, "InvalidArgument", "/v1/jupyter/servers/Bad!"},
           {"PUT", "/v1/jupyter/servers", "", 400, "InvalidArgument", "method PUT is not allowed"},
           {"GET", "/v1/jupyter/servers/alice", "", 400, "InvalidArgument", "method GET is not allowed"},
           {"GET", "/v1/status", "", 404, "NotFound", "no resource at /v1/status"},
       }) {
    Response r = Call(c.method, c.path, c.body);
    EXPECT_EQ(r.status, c.status) << c.method << " " << c.path << ": " << r.body;
    Json body = Body(r);
    EXPECT_EQ(body["error"]["code"], c.code) << r.body;
    EXPECT_NE(body["error"]["message"].get<std::string>().find(c.message_part), std::string::npos) << r.body;
  }
}

TEST_F(ControlTest, AStartMayNameTheProgram) {
  Json body = {{"user", "alice"}, {"token", kToken}, {"program", "/datamnt/dsvmshare/bench/http_echo"}};
  Response r = Call("POST", "/v1/jupyter/servers", body.dump());
  ASSERT_EQ(r.status, 201) << r.body;
  pid_t pid = Body(r)["pid"].get<pid_t>();
  EXPECT_EQ(procs_.processes.at(pid).launch.argv.at(0), "/datamnt/dsvmshare/bench/http_echo");
  EXPECT_EQ(Body(r).size(), 6u);  // the answer is as without a program
  // Without one: the default, so the server is replaced.
  r = Call("POST", "/v1/jupyter/servers", StartBody("alice", kToken));
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(procs_.processes.at(Body(r)["pid"].get<pid_t>()).launch.argv.at(0), "/usr/bin/jupyter-notebook");

  for (const auto& [program, message] : std::vector<std::pair<Json, std::string>>{
           {"bench/http_echo", "body.program: 'bench/http_echo' is not an absolute path (it must start with /)"},
           {"", "body.program: '' is not an absolute path (it must start with /)"},
           {"/bin/x\n", "body.program: the path holds a control character"},
           {42, "body.program: expected a string, got number"},
           {nullptr, "body.program: '' is not an absolute path (it must start with /)"},
       }) {
    Json bad = {{"user", "alice"}, {"token", kToken}, {"program", program}};
    r = Call("POST", "/v1/jupyter/servers", bad.dump());
    EXPECT_EQ(r.status, 400) << r.body;
    EXPECT_EQ(Body(r)["error"]["code"], "InvalidArgument");
    EXPECT_EQ(Body(r)["error"]["message"], message) << r.body;
  }
  // Other unknown fields are still refused.
  r = Call("POST", "/v1/jupyter/servers", Json{{"user", "alice"}, {"token", kToken}, {"args", "x"}}.dump());
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(procs_.processes.size(), 2u);
}

TEST_F(ControlTest, AFailedStartIsA502) {
  procs_.exit_after_spawn = {{std::chrono::milliseconds(100), 1 << 8}};
  Response r = Call("POST", "/v1/jupyter/servers", StartBody("alice", kToken));
  EXPECT_EQ(r.status, 502) << r.body;
  EXPECT_EQ(Body(r)["error"]["code"], "Unavailable");
  procs_.exit_after_spawn.reset();
  api_.startup = std::chrono::hours(1);
  r = Call("POST", "/v1/jupyter/servers", StartBody("alice", kToken));
  EXPECT_EQ(r.status, 502) << r.body;
  EXPECT_EQ(Body(r)["error"]["code"], "DeadlineExceeded");
}

TEST_F(ControlTest, AMountIsPassedOnAndAWrongKeyIsA403) {
  const ShareMountRequest m{"files", "work", "a-key", "/mnt/work", false};
  Response r = Call("POST", "/v1/mounts", ShareMountRequestToJson(m).dump());
  EXPECT_EQ(r.status, 200) << r.body;
  ASSERT_EQ(mounts_.asked.size(), 1u);
  EXPECT_EQ(mounts_.asked[0], m);
  mounts_.answer = PermissionDenied("Permission denied: the password is not a key of storage account 'files'");
  r = Call("POST", "/v1/mounts", ShareMountRequestToJson(m).dump());
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(Body(r)["error"]["message"], "Permission denied: the password is not a key of storage account 'files'");
  r = Call("POST", "/v1/mounts", R"({"account": "files", "share": "work", "key": "k", "target": "relative"})");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(Body(r)["error"]["message"], "target: 'relative' is not an absolute path");
  EXPECT_EQ(mounts_.asked.size(), 2u);
}

}  // namespace
}  // namespace dspool
