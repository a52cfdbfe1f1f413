#include "model/instance.h"

#include <gtest/gtest.h>

namespace dspool {
namespace {

Instance SomeInstance() {
  Instance i;
  i.id = InstanceId("team-1-3fa9c1");
  i.pool = PoolName("team");
  i.index = 1;
  i.phase = InstancePhase::kReady;
  i.address = "10.231.0.3";
  i.created_at = FromUnixMillis(1'700'000'000'000);
  i.phase_since = FromUnixMillis(1'700'000'001'000);
  return i;
}

TEST(InstanceTest, DrainingRoundTrips) {
  Instance i = SomeInstance();
  EXPECT_EQ(InstanceToJson(i)["draining"], false);
  i.draining = true;
  Json j = InstanceToJson(i);
  EXPECT_EQ(j["draining"], true);
  auto back = InstanceFromJson(j);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, i);
}

TEST(InstanceTest, RecordWrittenBeforeDrainingExistedIsNotDraining) {
  Json old = InstanceToJson(SomeInstance());
  old.erase("draining");
  auto back = InstanceFromJson(old);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_FALSE(back->draining);
  EXPECT_EQ(*back, SomeInstance());
}

TEST(InstanceTest, ScaleInMarkRoundTripsAndIsAbsentWhenUnset) {
  Instance i = SomeInstance();
  EXPECT_FALSE(InstanceToJson(i).contains("scaleIn"));
  EXPECT_FALSE(i.closed_to_new());
  for (ScaleIn mark : {ScaleIn::kDrain, ScaleIn::kNow}) {
    i.scale_in = mark;
    Json j = InstanceToJson(i);
    EXPECT_EQ(j["scaleIn"], ScaleInName(mark));
    auto back = InstanceFromJson(j);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(*back, i);
    EXPECT_TRUE(back->closed_to_new());
  }
  Json bad = InstanceToJson(i);
  bad["scaleIn"] = "later";
  EXPECT_EQ(InstanceFromJson(bad).status().message(), "stored instance has an unknown scaleIn 'later'");
}

TEST(InstanceTest, StandbyRoundTripsIsAbsentWhenUnsetAndClosesToNew) {
  Instance i = SomeInstance();
  EXPECT_FALSE(InstanceToJson(i).contains("standby"));
  i.standby = true;
  Json j = InstanceToJson(i);
  EXPECT_EQ(j["standby"], true);
  auto back = InstanceFromJson(j);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, i);
  EXPECT_TRUE(back->closed_to_new());
}

TEST(InstanceReportTest, ParsesAnAgentsReportAndRefusesBadCounts) {
  auto r = ParseInstanceReport(Json{{"sshdListening", true}, {"sshSessions", 2}, {"notebookServers", 1},
                                    {"cpuPermille", 125}, {"memoryLimitBytes", 1 << 30}});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->sshd_listening);
  EXPECT_EQ(r->ssh_sessions, 2);
  EXPECT_EQ(r->notebook_servers, 1);
  EXPECT_EQ(r->cpu_percent, 12.5);
  EXPECT_EQ(r->memory_used_bytes, std::nullopt) << "not reported: unknown, not 0";
  EXPECT_EQ(InstanceReportToJson(*r)["notebookServers"], 1);

  EXPECT_EQ(ParseInstanceReport(Json{{"notebookServers", -1}}).status().message(),
            "report: counters must not be negative");
  EXPECT_EQ(ParseInstanceReport(Json{{"notebookServers", "1"}}).status().message(),
            "report.notebookServers: expected an integer, got \"1\"");
  EXPECT_EQ(ParseInstanceReport(Json{{"kernels", 1}}).status().message(), "report.kernels: unknown field");
}

TEST(InstanceReportTest, CarriesNotebookExitsAndNamesTheBadOne) {
  NotebookExit oom{"alice", 120, 9000, kOutOfMemory, FromUnixMillis(1700000000000)};
  NotebookExit crash{"bob", 130, 9001, "exit 1", FromUnixMillis(1700000001000)};
  InstanceReport report;
  report.notebook_exits = {oom, crash};
  Json sent = InstanceReportToJson(report);
  sent.erase("receivedAt");  // the server's, not the agent's
  auto back = ParseInstanceReport(sent);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->notebook_exits, report.notebook_exits);
  EXPECT_TRUE(back->notebook_exits[0].out_of_memory());
  EXPECT_FALSE(back->notebook_exits[1].out_of_memory());
  EXPECT_FALSE(InstanceReportToJson(InstanceReport{}).contains("notebookExits")) << "none: left out";

  Json bad = sent;
  bad["notebookExits"][1]["port"] = 0;
  EXPECT_EQ(ParseInstanceReport(bad).status().message(), "report.notebookExits[1].port: must be 1..65535");
  bad = sent;
  bad["notebookExits"][0]["user"] = "../root";
  EXPECT_EQ(ParseInstanceReport(bad).status().message().rfind("report.notebookExits[0].user: ", 0), 0u)
      << ParseInstanceReport(bad).status();
  bad["notebookExits"] = "none";
  EXPECT_EQ(ParseInstanceReport(bad).status().message(), "report.notebookExits: expected an array");
  bad = sent;
  bad["notebookExits"][0]["reason"] = "out of\nmemory";
  EXPECT_EQ(ParseInstanceReport(bad).status().message(),
            "report.notebookExits[0].reason: holds a control character");
  bad = sent;
  bad["notebookExits"] = Json::array();
  for (size_t i = 0; i <= kMaxNotebookExits; ++i) bad["notebookExits"].push_back(NotebookExitToJson(crash));
  EXPECT_EQ(ParseInstanceReport(bad).status().message(), "report.notebookExits: more than 64 entries");
}

TEST(InstanceTest, MalformedDrainingIsAnError) {
  Json bad = InstanceToJson(SomeInstance());
  bad["draining"] = "yes";
  auto back = InstanceFromJson(bad);
  ASSERT_FALSE(back.ok());
  EXPECT_EQ(back.status().code(), StatusCode::kInternal);
  EXPECT_EQ(back.status().message().rfind("stored instance is malformed: ", 0), 0u) << back.status();
}

TEST(InstanceTest, HealthJson) {
  EXPECT_EQ(InstanceHealthToJson({"healthy", true, 3}),
            Json::parse(R"({"state": "healthy", "inRotation": true, "connections": 3})"));
  EXPECT_EQ(InstanceHealthToJson({}), Json::parse(R"({"state": "", "inRotation": false, "connections": 0})"));
}

TEST(InstanceTest, ProvisionedOnceEveryExtensionSucceededAndFailedByTheFirstThatFailed) {
  const std::vector<std::string> specs{"first", "second"};
  InstanceReport report;
  EXPECT_TRUE(InstanceProvisioned({}, report).done) << "a pool without extensions";
  EXPECT_FALSE(InstanceProvisioned(specs, report).done) << "the agent has not fetched them yet";
  report.extensions = {{"first", ExtensionState::kSucceeded, ""}, {"second", ExtensionState::kTransitioning, ""}};
  EXPECT_FALSE(InstanceProvisioned(specs, report).done);
  EXPECT_FALSE(InstanceProvisioned(specs, report).failure);
  report.extensions[1].state = ExtensionState::kSucceeded;
  EXPECT_TRUE(InstanceProvisioned(specs, report).done);
  report.extensions[1] = {"second", ExtensionState::kFailed, "Enable failed: exit status 2"};
  EXPECT_EQ(InstanceProvisioned(specs, report).failure, "extension 'second' failed: Enable failed: exit status 2");

  Json sent = InstanceReportToJson(report);
  sent.erase("receivedAt");  // the server's, not the agent's
  auto parsed = ParseInstanceReport(sent);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->extensions, report.extensions);
  Json long_message = sent;
  long_message["extensions"][0]["message"] = std::string(kMaxExtensionMessage + 1, 'x');
  EXPECT_EQ(ParseInstanceReport(long_message).status().message(),
            "report.extensions[0].message: longer than 8192 bytes");
}

}  // namespace
}  // namespace dspool
