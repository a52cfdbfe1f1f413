#include "model/jupyter.h"

#include <gtest/gtest.h>

namespace dspool {
namespace {

const std::string kToken(64, 'a');

Json Body(const std::string& text) { return Json::parse(text); }

TEST(JupyterModelTest, StartRequestRoundTrips) {
  auto req = ParseJupyterStartRequest(JupyterStartRequestToJson({"alice", kToken}));
  ASSERT_TRUE(req.ok()) << req.status();
  EXPECT_EQ(req->user, "alice");
  EXPECT_EQ(req->token, kToken);
  EXPECT_TRUE(ParseJupyterStartRequest({{"user", "bob"}, {"token", std::string(32, 'F')}}).ok());
}

TEST(JupyterModelTest, StartRequestErrorsNameTheFieldAndNeverTheToken) {
  struct Case {
    Json body;
    std::string where;
  };
  const std::string secret = "0123456789abcdef0123456789abcdeZ";  // one non-hex digit
  for (const Case& c : std::vector<Case>{
           {Body(R"({"token":"00000000000000000000000000000000"})"), "body.user: is required"},
           {Body(R"({"user":"alice"})"), "body.token: is required"},
           {Body(R"({"user":"Alice","token":"00000000000000000000000000000000"})"), "body.user: 'Alice'"},
           {Body(R"({"user":"root","token":"00000000000000000000000000000000"})"), "body.user: 'root'"},
           {Json{{"user", "alice"}, {"token", secret}}, "body.token: must be 32 to 256 hexadecimal digits"},
           {Json{{"user", "alice"}, {"token", "abcd"}}, "body.token: must be"},
           {Json{{"user", "alice"}, {"token", std::string(257, 'a')}}, "body.token: must be"},
           {Json{{"user", "alice"}, {"token", kToken}, {"port", 1}}, "body.port"},
           {Json{{"user", "alice"}, {"token", 42}}, "body.token: expected a string"},
           {Json::array(), "body: expected a JSON object"},
       }) {
    auto req = ParseJupyterStartRequest(c.body);
    ASSERT_FALSE(req.ok()) << c.body.dump();
    EXPECT_EQ(req.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(req.status().message().find(c.where), std::string::npos) << req.status();
    EXPECT_EQ(req.status().message().find(secret), std::string::npos) << req.status();
  }
}

TEST(JupyterModelTest, ServerJsonHasTheContractsFields) {
  JupyterServer s{"alice", "10.80.0.11", 9000, 321, FromUnixMillis(1'700'000'000'000), JupyterState::kReady};
  Json start = JupyterServerToJson(s);
  EXPECT_EQ(start, Body(R"({"user":"alice","address":"10.80.0.11","port":9000,"pid":321,
                            "startedAt":1700000000000,"state":"ready"})"));
  s.last_activity = FromUnixMillis(1'700'000'000'500);
  s.kernels = 2;
  s.busy_kernels = 1;
  s.terminals = 3;
  s.busy_terminals = 1;
  Json list = JupyterServerListToJson({s});
  EXPECT_EQ(list["servers"][0]["lastActivity"], 1'700'000'000'500);
  EXPECT_EQ(list["servers"][0]["busyKernels"], 1);
  EXPECT_EQ(list["servers"][0]["busyTerminals"], 1);
  auto back = ParseJupyterServerList(list);
  ASSERT_TRUE(back.ok()) << back.status();
  ASSERT_EQ(back->size(), 1u);
  EXPECT_EQ((*back)[0], s);

  // Unknown activity is null, and reads back as unknown.
  s.last_activity.reset();
  s.state = JupyterState::kStarting;
  Json entry = JupyterServerActivityToJson(s);
  EXPECT_TRUE(entry["lastActivity"].is_null());
  EXPECT_EQ(entry["state"], "starting");
  auto again = ParseJupyterServer(entry);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*again, s);
  // The start answer reads as a server without activity.
  auto started = ParseJupyterServer(start);
  ASSERT_TRUE(started.ok()) << started.status();
  EXPECT_EQ(started->port, 9000);
  EXPECT_FALSE(started->last_activity.has_value());
}

TEST(JupyterModelTest, ServerListErrorsNameTheirPath) {
  auto r = ParseJupyterServerList(Body(R"({"servers":[{"user":"a","address":"x","port":1,"pid":2,
                                           "startedAt":0,"state":"sleeping"}]})"));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("servers[0].state: unknown Jupyter server state 'sleeping'"),
            std::string::npos)
      << r.status();
  r = ParseJupyterServerList(Body(R"({"servers":[{"user":"a","address":"x","port":0,"pid":2,
                                      "startedAt":0,"state":"ready"}]})"));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("servers[0].port"), std::string::npos) << r.status();
  r = ParseJupyterServerList(Body(R"({"servers":[{"user":"a","address":"x","port":1,"pid":2,
                                      "startedAt":0,"state":"ready","busyTerminals":-1}]})"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "servers[0].busyTerminals: must not be negative");
  r = ParseJupyterServerList(Body(R"({"servers":{}})"));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("servers: expected an array"), std::string::npos) << r.status();
}

TEST(JupyterModelTest, SessionInfoJsonHasCamelCaseKeysAndRfc3339Times) {
  NotebookSessionInfo info{"team", "alice", "team-0-ab", "ready", "", FromUnixMillis(1'700'000'000'000),
                           FromUnixMillis(1'700'000'060'000), 2, 1, 3, "192.0.2.7"};
  EXPECT_EQ(NotebookSessionInfoToJson(info), Body(R"({"kind":"notebook","pool":"team","user":"alice",
      "instance":"team-0-ab","state":"ready","error":"","client":"192.0.2.7","startedAt":"2023-11-14T22:13:20.000Z",
      "lastActivity":"2023-11-14T22:14:20.000Z","busyKernels":2,"busyTerminals":1,"kernels":3})"));
}

TEST(JupyterModelTest, NotebookProgramIsAnAbsolutePathWithoutControlCharacters) {
  EXPECT_TRUE(ValidateNotebookProgram("/usr/bin/jupyter-notebook").ok());
  EXPECT_TRUE(ValidateNotebookProgram("/srv/my tools/notebook").ok());
  EXPECT_EQ(ValidateNotebookProgram("").message(), "'' is not an absolute path (it must start with /)");
  EXPECT_EQ(ValidateNotebookProgram("jupyter-notebook").message(),
            "'jupyter-notebook' is not an absolute path (it must start with /)");
  EXPECT_EQ(ValidateNotebookProgram("/usr/bin/x\nrm -rf").message(), "the path holds a control character");
  EXPECT_EQ(ValidateNotebookProgram("/usr/bin/x\t").message(), "the path holds a control character");
  EXPECT_EQ(ValidateNotebookProgram("/" + std::string(4096, 'a')).message(), "longer than 4096 bytes");
}

TEST(JupyterModelTest, DescribesAnExitForPeople) {
  NotebookExit oom{"alice", 1, 9000, kOutOfMemory, {}};
  EXPECT_EQ(DescribeNotebookExit(oom, 512 << 20), "ran out of memory (limit 512 MiB) and was stopped");
  EXPECT_EQ(DescribeNotebookExit(oom, 0), "ran out of memory and was stopped") << "limit unknown";
  EXPECT_EQ(DescribeNotebookExit({"alice", 1, 9000, "killed by signal 9", {}}, 512 << 20),
            "exited (killed by signal 9)");
  EXPECT_EQ(FormatMemorySize(1536LL << 20), "1.5 GiB");
  EXPECT_EQ(FormatMemorySize(2LL << 30), "2 GiB");
  EXPECT_EQ(FormatMemorySize(800 << 10), "800 KiB");
  EXPECT_EQ(FormatMemorySize(12), "12 B");
}

}  // namespace
}  // namespace dspool
