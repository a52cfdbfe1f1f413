// The pure parts of the http module: request targets, endpoints, error bodies.
#include "http/message.h"

#include <gtest/gtest.h>

#include "http/endpoint.h"

namespace dspool {
namespace {

std::string PathOf(std::string_view target) {
  Result<Target> t = ParseTarget(target);
  return t.ok() ? t->path : "error: " + t.status().message();
}

TEST(ParseTargetTest, NormalisesPaths) {
  EXPECT_EQ(PathOf("/"), "/");
  EXPECT_EQ(PathOf("/v1/pools"), "/v1/pools");
  EXPECT_EQ(PathOf("/v1/pools/"), "/v1/pools/");
  EXPECT_EQ(PathOf("//v1///pools"), "/v1/pools");
  EXPECT_EQ(PathOf("/v1/./pools/."), "/v1/pools");
  EXPECT_EQ(PathOf("/a%20b/c%2Fd"), "/a b/c/d");
  EXPECT_EQ(PathOf("/a+b"), "/a+b");  // '+' is only a space in queries
  EXPECT_EQ(PathOf("/..."), "/...");  // not a ".." segment
}

TEST(ParseTargetTest, RefusesClimbingAndMalformedTargets) {
  for (std::string_view bad : {"/..", "/a/../b", "/a/%2e%2e/b", "/a%2F..%2Fb", "/%2E%2E", "/a/..?x=1"}) {
    Result<Target> t = ParseTarget(bad);
    ASSERT_FALSE(t.ok()) << bad;
    EXPECT_EQ(t.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(t.status().message().find(".."), std::string::npos) << bad;
  }
  for (std::string_view bad : {"", "v1/pools", "*", "http://h/x", "/a#frag", "/a%", "/a%2", "/a%zz",
                               "/a%00b", "/x?a=%G1"}) {
    EXPECT_FALSE(ParseTarget(bad).ok()) << bad;
  }
}

TEST(ParseTargetTest, DecodesQuery) {
  Result<Target> t = ParseTarget("/q?a=1&b=hello%20world&c=x+y&d&&e=&a=2&%41=%3D");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->path, "/q");
  std::map<std::string, std::string> want{
      {"a", "2"}, {"b", "hello world"}, {"c", "x y"}, {"d", ""}, {"e", ""}, {"A", "="}};
  EXPECT_EQ(t->query, want);
  EXPECT_TRUE(ParseTarget("/q?")->query.empty());
}

TEST(PercentEncodeTest, EncodesAllButUnreservedAndWhatIsKept) {
  EXPECT_EQ(PercentEncode("demo-1_a.b~"), "demo-1_a.b~");
  EXPECT_EQ(PercentEncode("SHA256:ab+c/d="), "SHA256%3Aab%2Bc%2Fd%3D");
  EXPECT_EQ(PercentEncode("a b?&#%"), "a%20b%3F%26%23%25");
  EXPECT_EQ(PercentEncode("/user/a b/\\x\r\n\xC3\xA9", "/"), "/user/a%20b/%5Cx%0D%0A%C3%A9");
  // What ParseTarget decodes back.
  std::string text = "/a b/%c?d&e=f#g+h";
  Result<Target> t = ParseTarget("/x?v=" + PercentEncode(text));
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->query["v"], text);
}

TEST(JsonErrorBodyTest, Escapes) {
  EXPECT_EQ(JsonErrorBody("InvalidArgument", "bad \"x\"\n\\"),
            R"({"error":{"code":"InvalidArgument","message":"bad \"x\"\n\\"}})");
  EXPECT_EQ(JsonErrorBody("Internal", std::string("\x01", 1)),
            R"({"error":{"code":"Internal","message":"\u0001"}})");
}

TEST(EndpointTest, ParsesAndPrints) {
  Result<Endpoint> e = ParseEndpoint("unix:/var/lib/dspool/api.sock");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(*e, Endpoint::Unix("/var/lib/dspool/api.sock"));
  EXPECT_EQ(e->ToString(), "unix:/var/lib/dspool/api.sock");

  e = ParseEndpoint("tcp:127.0.0.1:7070");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(*e, Endpoint::Tcp("127.0.0.1", 7070));
  EXPECT_EQ(e->ToString(), "tcp:127.0.0.1:7070");

  e = ParseEndpoint("tcp:[::1]:80");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(*e, Endpoint::Tcp("::1", 80));
  EXPECT_EQ(e->ToString(), "tcp:[::1]:80");

  EXPECT_EQ(ParseEndpoint("tcp:pool-host:7070")->host, "pool-host");

  e = ParseEndpoint("tls:pool-host:7443");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(*e, Endpoint::Tls("pool-host", 7443));
  EXPECT_EQ(e->kind, Endpoint::Kind::kTls);
  EXPECT_EQ(e->ToString(), "tls:pool-host:7443");
  EXPECT_EQ(ParseEndpoint("tls:[::1]:7443")->ToString(), "tls:[::1]:7443");
}

TEST(EndpointTest, LoopbackAddresses) {
  for (std::string host : {"127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1"}) {
    EXPECT_TRUE(IsLoopbackAddress(host)) << host;
  }
  for (std::string host : {"0.0.0.0", "::", "10.0.0.1", "128.0.0.1", "::ffff:10.0.0.1", "localhost", "", "127.0.0"}) {
    EXPECT_FALSE(IsLoopbackAddress(host)) << host;
  }
}

TEST(EndpointTest, RejectsWithTheText) {
  for (std::string_view bad :
       {"", "/var/lib/x.sock", "http://x", "unix:", "tcp:", "tcp:host", "tcp::80", "tcp:h:0", "tcp:h:65536",
        "tcp:h:80x", "tcp:::1:80", "tcp:[::1]80", "tcp:[::1]", "tls:", "tls:host", "https:h:80"}) {
    Result<Endpoint> e = ParseEndpoint(bad);
    ASSERT_FALSE(e.ok()) << bad;
    EXPECT_EQ(e.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(e.status().message().find("'" + std::string(bad) + "'"), std::string::npos)
        << e.status();
  }
  EXPECT_FALSE(ParseEndpoint("unix:/" + std::string(200, 'x')).ok());
}

}  // namespace
}  // namespace dspool
