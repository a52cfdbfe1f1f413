#include <gtest/gtest.h>

#include "model/pool.h"
#include "model/user.h"

namespace dspool {
namespace {

Json ValidSpec() {
  return Json::parse(R"({
    "name": "team",
    "instanceCount": 2,
    "size": {"vcpus": 1, "memoryMiB": 512},
    "network": {"subnet": "10.231.0.0/24"},
    "share": {"type": "bind", "source": "/srv/share"},
    "adminUser": {"name": "dsvmuser", "sshPublicKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG9v x"}
  })");
}

TEST(PoolSpecTest, ParsesValidSpecWithDefaults) {
  auto spec = ParsePoolSpec(ValidSpec());
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->name.value(), "team");
  EXPECT_EQ(spec->instance_count, 2);
  EXPECT_EQ(spec->size.memory_mib, 512);
  EXPECT_EQ(spec->size.max_processes, 4096);
  EXPECT_EQ(spec->share.mount_path, "/datamnt/dsvmshare");
  EXPECT_EQ(BridgeName(spec->name), "dsp-team");
  EXPECT_EQ(FormatIpv4(GatewayAddress(spec->network)), "10.231.0.1");
  EXPECT_EQ(FormatIpv4(InstanceAddress(spec->network, 3)), "10.231.0.5");
  EXPECT_EQ(InstanceHostname(spec->name, 3), "team3");
}

TEST(PoolSpecTest, AShareOfTypeNoneHasNoSourceAndRoundTrips) {
  Json j = ValidSpec();
  j["share"] = {{"type", "none"}};
  auto spec = ParsePoolSpec(j);
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->share.type, ShareType::kNone);
  EXPECT_EQ(spec->share.source, "");
  EXPECT_EQ(PoolSpecToJson(*spec, Secrets::kInclude)["share"], Json::parse(R"({"type": "none"})"));
  EXPECT_EQ(*ParsePoolSpec(PoolSpecToJson(*spec, Secrets::kInclude)), *spec);
  j["share"]["source"] = "/srv/share";
  EXPECT_EQ(ParsePoolSpec(j).status().message(), "share.source: is not used with type 'none'");
}

TEST(PoolSpecTest, RoundTripsWithoutPlainPassword) {
  Json j = ValidSpec();
  j["adminUser"]["password"] = "hunter2";
  auto spec = ParsePoolSpec(j);
  ASSERT_TRUE(spec.ok());
  EXPECT_EQ(spec->admin.password, "hunter2");
  Json out = PoolSpecToJson(*spec, Secrets::kInclude);
  EXPECT_EQ(out.dump().find("hunter2"), std::string::npos);
  auto again = ParsePoolSpec(out);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->network, spec->network);
}

struct BadCase {
  const char* pointer;  // JSON pointer to change
  Json value;           // new value; null removes
  const char* expected_message_start;
};

class PoolSpecErrorTest : public ::testing::TestWithParam<BadCase> {};

TEST_P(PoolSpecErrorTest, NamesThePath) {
  Json j = ValidSpec();
  const BadCase& c = GetParam();
  Json::json_pointer ptr(c.pointer);
  if (c.value.is_null()) {
    j[ptr.parent_pointer()].erase(ptr.back());
  } else {
    j[ptr] = c.value;
  }
  auto spec = ParsePoolSpec(j);
  ASSERT_FALSE(spec.ok());
  EXPECT_EQ(spec.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(spec.status().message().rfind(c.expected_message_start, 0), 0u) << spec.status().message();
}

INSTANTIATE_TEST_SUITE_P(
    Cases, PoolSpecErrorTest,
    ::testing::Values(BadCase{"/name", nullptr, "name: is required"},
                      BadCase{"/name", "Team", "name: 'Team' is not a valid pool name"},
                      BadCase{"/name", "averyveryverylongname", "name: 'averyveryverylongname' is not"},
                      BadCase{"/name", 7, "name: expected a string"},
                      BadCase{"/instanceCount", -1, "instanceCount: must be between 0 and 100"},
                      BadCase{"/instanceCount", 101, "instanceCount: must be between 0 and 100"},
                      BadCase{"/instanceCount", "2", "instanceCount: expected an integer"},
                      BadCase{"/standbyCount", -1, "standbyCount: must be between 0 and 100"},
                      BadCase{"/standbyCount", 101, "standbyCount: must be between 0 and 100"},
                      BadCase{"/standbyCount", "1", "standbyCount: expected an integer"},
                      BadCase{"/drainTimeoutMinutes", -1, "drainTimeoutMinutes: must be between 0"},
                      BadCase{"/drainTimeoutMinutes", 10081, "drainTimeoutMinutes: must be between 0"},
                      BadCase{"/drainTimeoutMinutes", "PT5M", "drainTimeoutMinutes: expected an integer"},
                      BadCase{"/size/vcpus", 0, "size.vcpus: must be between 1 and 256"},
                      BadCase{"/size/memoryMiB", 16, "size.memoryMiB: must be between"},
                      BadCase{"/size/colour", "red", "size.colour: unknown field"},
                      BadCase{"/image", Json{{"type", "ubuntu"}}, "image.type: 'ubuntu' is not supported"},
                      BadCase{"/network", nullptr, "network: is required"},
                      BadCase{"/network/subnet", "10.231.0.1/24", "network.subnet: '10.231.0.1/24' is not"},
                      BadCase{"/network/subnet", "10.0.0.0/8", "network.subnet: prefix length"},
                      BadCase{"/share/type", "nfs", "share.type: 'nfs' is not supported"},
                      BadCase{"/share/source", "relative/dir", "share.source: must be a clean absolute"},
                      BadCase{"/share/source", "/srv/../etc", "share.source: must be a clean absolute"},
                      BadCase{"/share/mountPath", "/", "share.mountPath: must be a clean absolute"},
                      BadCase{"/adminUser/sshPublicKey", nullptr, "adminUser: needs sshPublicKey"},
                      BadCase{"/adminUser/name", nullptr, "adminUser.name: is required"},
                      BadCase{"/extra", true, "extra: unknown field"}));

TEST(PoolSpecTest, DrainTimeoutIsAbsentUnlessGivenAndRoundTrips) {
  auto spec = ParsePoolSpec(ValidSpec());
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->drain_timeout_minutes, std::nullopt) << "absent: scale-in waits as long as sessions last";
  EXPECT_FALSE(PoolSpecToJson(*spec, Secrets::kInclude).contains("drainTimeoutMinutes"));
  Json j = ValidSpec();
  j["drainTimeoutMinutes"] = 0;
  spec = ParsePoolSpec(j);
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->drain_timeout_minutes, 0);
  auto again = ParsePoolSpec(PoolSpecToJson(*spec, Secrets::kInclude));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*again, *spec);
}

TEST(PoolSpecTest, StandbyCountIsZeroUnlessGivenAndRoundTrips) {
  auto spec = ParsePoolSpec(ValidSpec());
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->standby_count, 0);
  EXPECT_FALSE(PoolSpecToJson(*spec, Secrets::kInclude).contains("standbyCount"));
  Json j = ValidSpec();
  j["standbyCount"] = 2;
  spec = ParsePoolSpec(j);
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->standby_count, 2);
  auto again = ParsePoolSpec(PoolSpecToJson(*spec, Secrets::kInclude));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*again, *spec);
}

TEST(PoolSpecTest, CountMustFitTheSubnet) {
  Json j = ValidSpec();
  j["network"]["subnet"] = "10.231.0.0/28";
  j["instanceCount"] = 14;
  auto spec = ParsePoolSpec(j);
  ASSERT_FALSE(spec.ok());
  EXPECT_EQ(spec.status().message(), "instanceCount: exceeds the 13 addresses of network.subnet 10.231.0.0/28");
}

TEST(PoolSpecTest, NotAnObject) {
  auto spec = ParsePoolSpec(Json::array());
  ASSERT_FALSE(spec.ok());
  EXPECT_EQ(spec.status().message(), "(document): expected a JSON object");
}

TEST(JsonTextTest, ReportsLineAndColumn) {
  Json out;
  Status s = ParseJsonText("{\n  \"a\": 1,\n  oops\n}", "spec.json", &out);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.message().rfind("spec.json: invalid JSON at line 3, column 3: syntax error", 0), 0u) << s.message();
}

TEST(UserNameTest, Validation) {
  EXPECT_TRUE(ValidateUserName("alice").ok());
  EXPECT_TRUE(ValidateUserName("_svc-1").ok());
  EXPECT_FALSE(ValidateUserName("Alice").ok());
  EXPECT_FALSE(ValidateUserName("root").ok());
  EXPECT_FALSE(ValidateUserName("").ok());
  EXPECT_FALSE(ValidateUserName("a b").ok());
  EXPECT_FALSE(ValidateUserName(std::string(33, 'a')).ok());
}

}  // namespace
}  // namespace dspool

namespace dspool {
namespace {

TEST(PoolSpecTest, JupyterDefaultsRoundTripAndErrorsNameTheField) {
  Json j = ValidSpec();
  j["jupyter"] = Json::object();
  auto spec = ParsePoolSpec(j);
  ASSERT_TRUE(spec.ok()) << spec.status();
  ASSERT_TRUE(spec->jupyter);
  EXPECT_EQ(spec->jupyter->frontend_port, 8000);
  EXPECT_EQ(spec->jupyter->cull_idle_minutes, 60);
  EXPECT_TRUE(spec->jupyter->certificate_file.empty());
  auto again = ParsePoolSpec(PoolSpecToJson(*spec, Secrets::kInclude));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again->jupyter, *spec->jupyter);

  struct Case {
    Json jupyter;
    std::string message;
  };
  std::vector<Case> cases = {
      {{{"frontendPort", 0}}, "jupyter.frontendPort: must be between 1 and 65535"},
      {{{"certificateFile", "/etc/c.pem"}}, "jupyter.keyFile: give certificateFile and keyFile together"},
      {{{"certificateFile", "c.pem"}, {"keyFile", "/k.pem"}}, "jupyter.certificateFile: must be a clean absolute"},
      {{{"cullIdleMinutes", -1}}, "jupyter.cullIdleMinutes: must be between 0"},
      {{{"port", 1}}, "jupyter.port: unknown field"},
  };
  for (const Case& c : cases) {
    Json bad = ValidSpec();
    bad["jupyter"] = c.jupyter;
    auto s = ParsePoolSpec(bad);
    ASSERT_FALSE(s.ok()) << c.jupyter.dump();
    EXPECT_EQ(s.status().message().rfind(c.message, 0), 0u) << s.status().message();
  }
  Json clash = ValidSpec();
  clash["loadBalancer"] = Json::parse(R"({"rules": [{"name": "SSH", "frontendPort": 8000, "backendPort": 22,
      "probe": "p"}], "probes": [{"name": "p", "protocol": "Tcp", "port": 22}]})");
  clash["jupyter"] = Json::object();
  EXPECT_EQ(ParsePoolSpec(clash).status().message(),
            "jupyter.frontendPort: 8000 is also loadBalancer.rules[0].frontendPort");
}

}  // namespace
}  // namespace dspool

namespace dspool {
namespace {

TEST(CheckShareSourceTest, RefusesTheHostsOwnDirectoriesAndTheDataDir) {
  const std::string data = "/var/lib/dspool";
  EXPECT_TRUE(CheckShareSource("/srv/share", "/srv/share", data).ok());
  EXPECT_TRUE(CheckShareSource("/var/share", "/var/share", data).ok()) << "below /var is fine";
  EXPECT_TRUE(CheckShareSource("/var/lib/dspool-share", "/var/lib/dspool-share", data).ok()) << "a prefix is not a parent";
  EXPECT_EQ(CheckShareSource("/etc", "/etc", data).message(),
            "share.source: /etc is a system directory; give a directory of its own, such as /srv/dspool-share");
  for (const char* system : {"/", "/usr", "/var", "/root", "/boot", "/home", "/tmp"}) {
    EXPECT_EQ(CheckShareSource(system, system, data).code(), StatusCode::kInvalidArgument) << system;
  }
  EXPECT_EQ(CheckShareSource("/srv/link", "/etc", data).message(),
            "share.source: /srv/link (/etc) is a system directory; give a directory of its own, such as "
            "/srv/dspool-share")
      << "a symlink is judged by what it reaches";
  EXPECT_EQ(CheckShareSource("/proc/1/root", "/proc/1/root", data).message(),
            "share.source: /proc/1/root lies under /proc");
  EXPECT_EQ(CheckShareSource("/dev/shm", "/dev/shm", data).message(), "share.source: /dev/shm lies under /dev");
  EXPECT_EQ(CheckShareSource("/var/lib/dspool/pools", "/var/lib/dspool/pools", data).message(),
            "share.source: /var/lib/dspool/pools lies in the server's data directory /var/lib/dspool");
  EXPECT_EQ(CheckShareSource("/var/lib", "/var/lib", data).message(),
            "share.source: /var/lib holds the server's data directory /var/lib/dspool");
}

}  // namespace
}  // namespace dspool
