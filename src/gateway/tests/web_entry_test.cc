#include "gateway/web_entry.h"

#include <gtest/gtest.h>

#include "identity/password.h"

namespace dspool {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

class FakeWebHooks : public WebHooks {
 public:
  FakeWebHooks() {
    hashes["alice"] = *HashPassword("alice's password");
    hashes["bob"] = *HashPassword("bob's password");
  }
  std::optional<std::string> PasswordHash(const std::string& user) override {
    auto it = hashes.find(user);
    if (it == hashes.end()) return std::nullopt;
    return it->second;
  }
  void StartServer(const std::string& user, const std::string& token) override { starts.push_back({user, token}); }
  std::map<std::string, std::string> hashes;
  std::vector<std::pair<std::string, std::string>> starts;
};

std::string Header(const Response& r, const std::string& name) {
  for (const auto& [n, v] : r.headers) {
    if (n == name) return v;
  }
  return "";
}

class WebEntryTest : public ::testing::Test {
 protected:
  WebEntryTest() : web_(clock_, hooks_, NewSessionKey(), Options()) {}

  // Every password check goes through here, so tests see which hash each
  // login was checked against.
  WebEntryOptions Options() {
    WebEntryOptions options;
    options.verify_password = [this](std::string_view password, const std::string& hash) {
      checked_hashes_.push_back(hash);
      return VerifyPassword(password, hash);
    };
    return options;
  }

  Request Get(const std::string& target, const std::string& cookie = "", bool page = true) {
    Request r;
    r.method = "GET";
    r.target = target;
    auto parsed = ParseTarget(target);
    r.path = parsed->path;
    r.query = parsed->query;
    if (!cookie.empty()) r.headers["cookie"] = cookie;
    if (page) r.headers["accept"] = "text/html,application/xhtml+xml";
    r.peer.address = "192.0.2.7";
    return r;
  }
  Response Login(const std::string& user, const std::string& password, const std::string& next = "") {
    Request r;
    r.method = "POST";
    r.target = r.path = "/hub/login";
    r.body = "username=" + user + "&password=" + password + "&next=" + next;
    r.peer.address = "192.0.2.7";
    EXPECT_TRUE(std::holds_alternative<ProxyLocal>(web_.Decide(r)));
    return web_.Serve(r);
  }
  // The session cookie ("dspool_session=...") a successful login sets.
  std::string LoginCookie(const std::string& user, const std::string& password) {
    Response r = Login(user, password);
    EXPECT_EQ(r.status, 303);
    std::string set = Header(r, "Set-Cookie");
    return set.substr(0, set.find(';'));
  }
  Response Reply(const Request& r) {
    ProxyRoute route = web_.Decide(r);
    EXPECT_TRUE(std::holds_alternative<ProxyReply>(route));
    return std::holds_alternative<ProxyReply>(route) ? std::get<ProxyReply>(route).response : Response{};
  }

  SimulatedClock clock_;
  FakeWebHooks hooks_;
  std::vector<std::string> checked_hashes_;
  WebEntry web_;
};

TEST_F(WebEntryTest, AWrongPasswordGets401AndNoCookie) {
  Response r = Login("alice", "wrong");
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(Header(r, "Set-Cookie"), "");
  EXPECT_NE(r.body.find("Invalid user name or password"), std::string::npos);
  EXPECT_EQ(Login("nobody", "whatever").status, 401);
  EXPECT_EQ(Login("../x", "whatever").status, 401);
}

TEST_F(WebEntryTest, UnknownNamesAreCheckedAgainstTheDummyHashLikeAWrongPassword) {
  // The answer must not come sooner for a name that does not exist: each
  // login checks the password once, against the user's hash or the dummy.
  hooks_.hashes["locked"] = "!" + hooks_.hashes["bob"];
  ASSERT_FALSE(DummyPasswordHash().empty());
  ASSERT_TRUE(DummyPasswordHash().starts_with("$y$")) << "as costly as the hashes HashPassword makes";
  struct Case {
    std::string user;
    std::string want_hash;
  };
  for (const Case& c : {Case{"alice", hooks_.hashes["alice"]}, Case{"carol", DummyPasswordHash()},
                        Case{"..%2Fx", DummyPasswordHash()}, Case{"locked", DummyPasswordHash()}}) {
    checked_hashes_.clear();
    EXPECT_EQ(Login(c.user, "wrong+password").status, 401) << c.user;
    EXPECT_EQ(checked_hashes_, std::vector<std::string>{c.want_hash}) << c.user;
  }
  EXPECT_FALSE(VerifyPassword("wrong password", DummyPasswordHash()));
}

TEST_F(WebEntryTest, AFailedLoginLogsAnInvalidNameAsAPlaceholder) {
  // A name with a line break would forge a log line if logged as given.
  testing::internal::CaptureStderr();
  EXPECT_EQ(Login("x%0Aweb%3A+user+admin+logged+in", "wrong+password").status, 401);
  EXPECT_EQ(Login("carol", "wrong+password").status, 401);  // valid, unknown
  std::string log = testing::internal::GetCapturedStderr();
  EXPECT_NE(log.find("failed login for '(invalid name)' from 192.0.2.7"), std::string::npos) << log;
  EXPECT_NE(log.find("failed login for 'carol' from 192.0.2.7"), std::string::npos) << "valid names as given: " << log;
  EXPECT_EQ(log.find("admin logged in"), std::string::npos) << log;
}

TEST_F(WebEntryTest, NextIsPercentEncodedAndStaysOnThisHost) {
  // The login redirect carries the decoded path, encoded again.
  Response page = Reply(Get("/user/alice/a%20b%3Fc%26next%3D%2F%2Fevil"));
  EXPECT_EQ(Header(page, "Location"), "/hub/login?next=/user/alice/a%20b%3Fc%26next%3D/evil");
  // The form sends it back decoded (form encoding); the answer's Location is
  // encoded, and only ever a path in the user's own space.
  struct Case {
    std::string next;  // as the form's body carries it
    std::string want;
  };
  for (const Case& c : {
           Case{"%2Fuser%2Falice%2Fa+b%3Fc", "/user/alice/a%20b%3Fc"},
           Case{"/user/alice/x%0D%0ASet-Cookie:+a=b", "/user/alice/x%0D%0ASet-Cookie%3A%20a%3Db"},
           Case{"/user/alice/%5C%5Cevil.example", "/user/alice/%5C%5Cevil.example"},
           Case{"/user/alice//evil.example", "/user/alice/evil.example"},
           Case{"//evil.example/user/alice/", "/user/alice/tree"},
           Case{"/%5Cevil.example/user/alice/", "/user/alice/tree"},
           Case{"https://evil.example/user/alice/", "/user/alice/tree"},
           Case{"/user/alice/../../evil", "/user/alice/tree"},
           Case{"/user/alicex/tree", "/user/alice/tree"},
           Case{"/user/alice/%2500", "/user/alice/%2500"},
       }) {
    Response r = Login("alice", "alice%27s+password", c.next);
    ASSERT_EQ(r.status, 303) << c.next;
    EXPECT_EQ(Header(r, "Location"), c.want) << c.next;
  }
}

TEST_F(WebEntryTest, LoginSetsAHttpOnlySecureCookieAndGoesOnlyToTheUsersOwnSpace) {
  Response r = Login("alice", "alice%27s+password", "/user/alice/notebooks/a.ipynb");
  ASSERT_EQ(r.status, 303);
  std::string cookie = Header(r, "Set-Cookie");
  EXPECT_NE(cookie.find("HttpOnly"), std::string::npos);
  EXPECT_NE(cookie.find("Secure"), std::string::npos);
  EXPECT_NE(cookie.find("SameSite=Lax"), std::string::npos);
  EXPECT_EQ(Header(r, "Location"), "/user/alice/notebooks/a.ipynb");
  r = Login("alice", "alice%27s+password", "https://evil.example/");
  EXPECT_EQ(Header(r, "Location"), "/user/alice/tree");
  r = Login("alice", "alice%27s+password", "/user/bob/tree");
  EXPECT_EQ(Header(r, "Location"), "/user/alice/tree");
}

TEST_F(WebEntryTest, WithoutACookiePagesGoToLoginAndApiCallsGet401) {
  Response page = Reply(Get("/user/alice/tree"));
  EXPECT_EQ(page.status, 302);
  EXPECT_EQ(Header(page, "Location"), "/hub/login?next=/user/alice/tree");
  EXPECT_EQ(Reply(Get("/user/alice/api/contents", "", false)).status, 401);
  EXPECT_EQ(Reply(Get("/user/alice/api/contents", "dspool_session=alice.99999999999.forged", false)).status, 401);
  EXPECT_TRUE(hooks_.starts.empty());
}

TEST_F(WebEntryTest, AnotherUsersServerIs403WhateverThePath) {
  std::string bob = LoginCookie("bob", "bob%27s+password");
  for (std::string target : {"/user/alice/tree", "/user/alice/api/kernels", "/user/alice"}) {
    EXPECT_EQ(Reply(Get(target, bob, false)).status, 403) << target;
  }
  ASSERT_EQ(hooks_.starts.size(), 1u) << "bob's own, at his login; never alice's";
  EXPECT_EQ(hooks_.starts[0].first, "bob");
}

TEST_F(WebEntryTest, LoginStartsTheServerAndLaterVisitsAreForwardedWithItsToken) {
  std::string alice = LoginCookie("alice", "alice%27s+password");
  ASSERT_EQ(hooks_.starts.size(), 1u) << "started at login";
  Response starting = Reply(Get("/user/alice/tree", alice));
  EXPECT_EQ(starting.status, 200);
  EXPECT_EQ(Header(starting, "Refresh"), "0; url=/hub/spawn-pending/alice?next=/user/alice/tree");
  EXPECT_EQ(Reply(Get("/user/alice/api/status", alice, false)).status, 503);
  ASSERT_EQ(hooks_.starts.size(), 1u) << "one start, however many requests";
  const std::string token = hooks_.starts[0].second;
  EXPECT_EQ(token.size(), 64u);

  web_.ServerReady("alice", InstanceId("p-1-abc"), 0x0ae70002, 9000);
  ProxyRoute route = web_.Decide(Get("/user/alice/api/contents?token=guess&type=notebook", alice + "; _xsrf=x", false));
  ASSERT_TRUE(std::holds_alternative<ProxyForward>(route));
  const ProxyForward& f = std::get<ProxyForward>(route);
  EXPECT_EQ(f.address, 0x0ae70002u);
  EXPECT_EQ(f.port, 9000);
  EXPECT_EQ(f.target, "/user/alice/api/contents?type=notebook");
  std::map<std::string, std::string> set(f.set_headers.begin(), f.set_headers.end());
  EXPECT_EQ(set["Authorization"], "token " + token);
  EXPECT_EQ(set["Cookie"], "_xsrf=x") << "our session cookie stays in the gateway";

  auto sessions = web_.Sessions();
  ASSERT_EQ(sessions.size(), 1u);
  clock_.Advance(seconds(30));
  web_.Activity(f.tag);
  EXPECT_EQ(web_.Sessions()[0].last_activity, clock_.Now());
  EXPECT_EQ(web_.Sessions()[0].last_traffic, clock_.Monotonic());
}

// A server goes with its instance: when the pool's Ready instances no
// longer include it, the session is forgotten and the next visit gets the
// "starting" page and a new server, never a request to the old address.
TEST_F(WebEntryTest, AServerOnAnInstanceThatLeftIsForgottenAndTheNextVisitStartsANewOne) {
  std::string alice = LoginCookie("alice", "alice%27s+password");
  std::string bob = LoginCookie("bob", "bob%27s+password");
  web_.ServerReady("alice", InstanceId("p-1-abc"), 0x0ae70002, 9000);
  web_.ServerReady("bob", InstanceId("p-2-def"), 0x0ae70003, 9000);
  ASSERT_EQ(hooks_.starts.size(), 2u);

  EXPECT_TRUE(web_.KeepServersOn({InstanceId("p-1-abc"), InstanceId("p-2-def")}).empty());
  EXPECT_EQ(web_.KeepServersOn({InstanceId("p-2-def")}), std::vector<std::string>{"alice"});
  ASSERT_EQ(web_.Sessions().size(), 1u);
  EXPECT_EQ(web_.Sessions()[0].user, "bob") << "bob's instance is still Ready";

  Response starting = Reply(Get("/user/alice/tree", alice));
  EXPECT_EQ(starting.status, 200);
  EXPECT_EQ(Header(starting, "Refresh"), "0; url=/hub/spawn-pending/alice?next=/user/alice/tree");
  ASSERT_EQ(hooks_.starts.size(), 3u);
  EXPECT_EQ(hooks_.starts[2].first, "alice");
  EXPECT_NE(hooks_.starts[2].second, hooks_.starts[0].second) << "a new server gets a new token";
  EXPECT_EQ(Reply(Get("/user/alice/api/status", alice, false)).status, 503) << "API calls: starting, retry";

  EXPECT_EQ(web_.KeepServersOn({}), std::vector<std::string>{"bob"}) << "the pool is at zero";
  EXPECT_EQ(web_.Sessions().size(), 1u) << "alice's starting server is on no instance yet: kept";
  EXPECT_EQ(web_.Sessions()[0].state, NotebookSession::State::kStarting);
  EXPECT_TRUE(std::holds_alternative<ProxyReply>(web_.Decide(Get("/user/bob/tree", bob))));
}

// A server that does not take the connection (its instance went before the
// routing table said so, or the process died) is forgotten and restarted:
// the request gets the "starting" answer, not a 502.
TEST_F(WebEntryTest, AnUnreachableServerGivesTheStartingAnswerAndANewServer) {
  std::string alice = LoginCookie("alice", "alice%27s+password");
  web_.ServerReady("alice", InstanceId("p-1-abc"), 0x0ae70002, 9000);
  Request page = Get("/user/alice/tree", alice);
  ProxyRoute route = web_.Decide(page);
  ASSERT_TRUE(std::holds_alternative<ProxyForward>(route));
  const ProxyForward forward = std::get<ProxyForward>(route);

  std::optional<Response> answer = web_.Unreachable(page, forward);
  ASSERT_TRUE(answer.has_value());
  EXPECT_EQ(answer->status, 200);
  EXPECT_EQ(Header(*answer, "Refresh"), "0; url=/hub/spawn-pending/alice?next=/user/alice/tree");
  ASSERT_EQ(hooks_.starts.size(), 2u) << "a new server is asked for";
  ASSERT_EQ(web_.Sessions().size(), 1u);
  EXPECT_EQ(web_.Sessions()[0].state, NotebookSession::State::kStarting);

  Request api = Get("/user/alice/api/kernels", alice, false);
  answer = web_.Unreachable(api, forward);
  ASSERT_TRUE(answer.has_value());
  EXPECT_EQ(answer->status, 503);
  EXPECT_EQ(Header(*answer, "Retry-After"), "1");
  EXPECT_EQ(hooks_.starts.size(), 2u) << "a late failure of the old server leaves the new one starting";

  web_.ServerReady("alice", InstanceId("p-1-abc"), 0x0ae70002, 9001);
  answer = web_.Unreachable(page, forward);
  EXPECT_EQ(hooks_.starts.size(), 2u) << "the new server is not the one that failed";
  ASSERT_EQ(web_.Sessions().size(), 1u);
  EXPECT_EQ(web_.Sessions()[0].state, NotebookSession::State::kReady);
}

// The starting page sends the browser on to /hub/spawn-pending at once;
// that request is held while the server starts and, once it is ready,
// redirected to where the user was going.
TEST_F(WebEntryTest, SpawnPendingIsHeldWhileTheServerStartsThenGoesOn) {
  std::string alice = LoginCookie("alice", "alice%27s+password");
  Response starting = Reply(Get("/user/alice/notebooks/a%20b.ipynb", alice));
  const std::string pending = "/hub/spawn-pending/alice?next=/user/alice/notebooks/a%20b.ipynb";
  ASSERT_EQ(Header(starting, "Refresh"), "0; url=" + pending);

  ProxyRoute route = web_.Decide(Get(pending, alice));
  ASSERT_TRUE(std::holds_alternative<ProxyHold>(route));
  const ProxyHold& hold = std::get<ProxyHold>(route);
  EXPECT_EQ(hold.at_most, seconds(10));
  EXPECT_EQ(hold.otherwise.status, 200) << "still starting after the hold: the starting page again";
  EXPECT_EQ(Header(hold.otherwise, "Refresh"), "0; url=" + pending);
  EXPECT_EQ(hooks_.starts.size(), 1u);

  web_.ServerReady("alice", InstanceId("p-1-abc"), 0x0ae70002, 9000);
  Response ready = Reply(Get(pending, alice));
  EXPECT_EQ(ready.status, 302);
  EXPECT_EQ(Header(ready, "Location"), "/user/alice/notebooks/a%20b.ipynb");
  EXPECT_EQ(web_.Sessions()[0].client, "192.0.2.7");
}

TEST_F(WebEntryTest, SpawnPendingGoesOnlyToTheUsersOwnSpaceAndOnlyForThem) {
  std::string alice = LoginCookie("alice", "alice%27s+password");
  std::string bob = LoginCookie("bob", "bob%27s+password");
  web_.ServerReady("alice", InstanceId("p-1-abc"), 0x0ae70002, 9000);
  struct Case {
    std::string next;  // as the query carries it
    std::string want;
  };
  for (const Case& c : {Case{"https%3A%2F%2Fevil.example%2Fuser%2Falice%2F", "/user/alice/tree"},
                        Case{"%2F%2Fevil.example%2Fuser%2Falice%2F", "/user/alice/tree"},
                        Case{"/user/bob/tree", "/user/alice/tree"},
                        Case{"/user/alice/../../evil", "/user/alice/tree"},
                        Case{"/user/alice/x%0D%0ASet-Cookie:%20a=b", "/user/alice/x%0D%0ASet-Cookie%3A%20a%3Db"}}) {
    Response r = Reply(Get("/hub/spawn-pending/alice?next=" + c.next, alice));
    EXPECT_EQ(r.status, 302) << c.next;
    EXPECT_EQ(Header(r, "Location"), c.want) << c.next;
  }
  EXPECT_EQ(Header(Reply(Get("/hub/spawn-pending/alice", alice)), "Location"), "/user/alice/tree");

  EXPECT_EQ(Reply(Get("/hub/spawn-pending/alice?next=/user/alice/tree", bob)).status, 403);
  Response anonymous = Reply(Get("/hub/spawn-pending/alice?next=/user/alice/a%20b"));
  EXPECT_EQ(anonymous.status, 302);
  EXPECT_EQ(Header(anonymous, "Location"), "/hub/login?next=/user/alice/a%20b");
  ASSERT_EQ(hooks_.starts.size(), 2u) << "alice's and bob's, at their logins: nothing for the others";
}

TEST_F(WebEntryTest, SpawnPendingSaysWhyAServerFailedOrWasLost) {
  std::string alice = LoginCookie("alice", "alice%27s+password");
  const std::string pending = "/hub/spawn-pending/alice?next=/user/alice/tree";
  web_.ServerFailed("alice", "no instance is healthy");
  Response failed = Reply(Get(pending, alice));
  EXPECT_EQ(failed.status, 503);
  EXPECT_NE(failed.body.find("no instance is healthy"), std::string::npos) << failed.body;

  clock_.Advance(seconds(30));
  ASSERT_TRUE(std::holds_alternative<ProxyHold>(web_.Decide(Get(pending, alice)))) << "tried again, and held";
  ASSERT_EQ(hooks_.starts.size(), 2u);
  web_.ServerReady("alice", InstanceId("p-1-abc"), 0x0ae70002, 9000);
  ASSERT_TRUE(web_.ServerLost("alice", InstanceId("p-1-abc"), 9000, "ran out of memory and was stopped"));
  Response lost = Reply(Get(pending, alice));
  EXPECT_EQ(lost.status, 503);
  EXPECT_NE(lost.body.find("Your notebook server ran out of memory and was stopped."), std::string::npos);
  EXPECT_TRUE(std::holds_alternative<ProxyHold>(web_.Decide(Get(pending, alice)))) << "the reload starts anew";
  EXPECT_EQ(hooks_.starts.size(), 3u);
}

// Steps of the wall clock neither retry a failed start early nor lift the
// login throttle; only monotonic time does.
TEST_F(WebEntryTest, WallClockStepsDecideNothing) {
  std::string alice = LoginCookie("alice", "alice%27s+password");
  Reply(Get("/user/alice/tree", alice));
  web_.ServerFailed("alice", "no instance is healthy");
  clock_.StepWall(std::chrono::hours(1));
  EXPECT_EQ(Reply(Get("/user/alice/tree", alice)).status, 503);
  EXPECT_EQ(hooks_.starts.size(), 1u) << "a wall step is not the 30 s retry delay";

  for (int i = 0; i < 5; ++i) EXPECT_EQ(Login("bob", "wrong").status, 401);
  clock_.StepWall(std::chrono::hours(1));
  EXPECT_EQ(Login("bob", "wrong").status, 429) << "a wall step does not end the throttle window";
  clock_.StepWall(-std::chrono::hours(3));
  EXPECT_EQ(Login("bob", "wrong").status, 429);
}

TEST_F(WebEntryTest, AFailedStartIsShownAndTriedAgainLater) {
  std::string alice = LoginCookie("alice", "alice%27s+password");
  Reply(Get("/user/alice/tree", alice));
  web_.ServerFailed("alice", "no instance is healthy");
  Response failed = Reply(Get("/user/alice/tree", alice));
  EXPECT_EQ(failed.status, 503);
  EXPECT_NE(failed.body.find("no instance is healthy"), std::string::npos);
  EXPECT_EQ(hooks_.starts.size(), 1u);
  clock_.Advance(seconds(30) - milliseconds(1));
  EXPECT_EQ(Reply(Get("/user/alice/tree", alice)).status, 503);
  EXPECT_EQ(hooks_.starts.size(), 1u) << "tried again before the 30 s retry delay";
  clock_.Advance(milliseconds(1));
  Reply(Get("/user/alice/tree", alice));
  EXPECT_EQ(hooks_.starts.size(), 2u);
  EXPECT_NE(hooks_.starts[0].second, hooks_.starts[1].second) << "a new server gets a new token";
}

// A server the kernel killed for lack of memory: the user's next page says
// so (not a new, empty server), and the request after it starts a new one.
TEST_F(WebEntryTest, AServerLostForMemoryIsShownOnceThenTheNextRequestStartsANewOne) {
  std::string alice = LoginCookie("alice", "alice%27s+password");
  web_.ServerReady("alice", InstanceId("p-1-abc"), 0x0ae70002, 9000);
  const std::string why = "ran out of memory (limit 512 MiB) and was stopped";
  EXPECT_FALSE(web_.ServerLost("alice", InstanceId("p-2-def"), 9000, why)) << "another instance's server";
  EXPECT_FALSE(web_.ServerLost("alice", InstanceId("p-1-abc"), 9001, why)) << "another server on that instance";
  EXPECT_FALSE(web_.ServerLost("bob", InstanceId("p-1-abc"), 9000, why)) << "bob has no session";
  ASSERT_EQ(web_.Sessions()[0].state, NotebookSession::State::kReady);

  ASSERT_TRUE(web_.ServerLost("alice", InstanceId("p-1-abc"), 9000, why));
  ASSERT_EQ(web_.Sessions().size(), 1u);
  EXPECT_EQ(web_.Sessions()[0].state, NotebookSession::State::kFailed);
  EXPECT_EQ(web_.Sessions()[0].error, why);

  // The open notebook's API calls and WebSockets: 503 with the words, no new server.
  Response api = Reply(Get("/user/alice/api/kernels", alice, false));
  EXPECT_EQ(api.status, 503);
  EXPECT_NE(api.body.find("\"your notebook server ran out of memory (limit 512 MiB) and was stopped; load a page to "
                          "start a new one\""),
            std::string::npos)
      << api.body;
  EXPECT_EQ(hooks_.starts.size(), 1u) << "an API call does not replace the server the user has not heard about";

  Response page = Reply(Get("/user/alice/notebooks/big.ipynb", alice));
  EXPECT_EQ(page.status, 503);
  EXPECT_NE(page.body.find("Your notebook server ran out of memory (limit 512 MiB) and was stopped. Reload to start "
                           "a new one."),
            std::string::npos)
      << page.body;
  EXPECT_EQ(Header(page, "Refresh"), "") << "the user reloads, having read it";
  EXPECT_EQ(hooks_.starts.size(), 1u);

  Response reload = Reply(Get("/user/alice/notebooks/big.ipynb", alice));
  EXPECT_EQ(reload.status, 200);
  EXPECT_EQ(Header(reload, "Refresh"), "0; url=/hub/spawn-pending/alice?next=/user/alice/notebooks/big.ipynb")
      << "the starting page";
  ASSERT_EQ(hooks_.starts.size(), 2u) << "the request after the page starts a new server";
  EXPECT_NE(hooks_.starts[1].second, hooks_.starts[0].second);
  EXPECT_EQ(web_.Sessions()[0].state, NotebookSession::State::kStarting);
  EXPECT_EQ(web_.Sessions()[0].error, "");

  // A new server that fails to start is a plain failed start again: retried after 30 s.
  web_.ServerFailed("alice", "no instance is healthy");
  Reply(Get("/user/alice/tree", alice));
  Reply(Get("/user/alice/tree", alice));
  EXPECT_EQ(hooks_.starts.size(), 2u);
}

TEST_F(WebEntryTest, AServerLostForMemoryIsRestartedAfterTheRetryDelayWithoutAPage) {
  std::string alice = LoginCookie("alice", "alice%27s+password");
  web_.ServerReady("alice", InstanceId("p-1-abc"), 0x0ae70002, 9000);
  clock_.Advance(seconds(60));
  ASSERT_TRUE(web_.ServerLost("alice", InstanceId("p-1-abc"), 9000, "ran out of memory and was stopped"));
  EXPECT_EQ(Reply(Get("/user/alice/api/kernels", alice, false)).status, 503);
  EXPECT_EQ(hooks_.starts.size(), 1u) << "the delay counts from the loss, not the start";
  clock_.Advance(seconds(30));
  Reply(Get("/user/alice/api/kernels", alice, false));
  EXPECT_EQ(hooks_.starts.size(), 2u);
}

TEST_F(WebEntryTest, RepeatedFailuresAreThrottled) {
  for (int i = 0; i < 5; ++i) EXPECT_EQ(Login("alice", "wrong").status, 401);
  Response r = Login("alice", "alice%27s+password");
  EXPECT_EQ(r.status, 429);
  EXPECT_EQ(Header(r, "Set-Cookie"), "");
  clock_.Advance(std::chrono::minutes(5) - milliseconds(1));
  EXPECT_EQ(Login("alice", "alice%27s+password").status, 429) << "the throttle ended before its window";
  clock_.Advance(milliseconds(1));
  EXPECT_EQ(Login("alice", "alice%27s+password").status, 303);
}

TEST_F(WebEntryTest, LogoutDropsTheCookieAndRootRedirects) {
  Response out = Reply(Get("/hub/logout"));
  EXPECT_NE(Header(out, "Set-Cookie").find("Max-Age=0"), std::string::npos);
  EXPECT_EQ(Header(Reply(Get("/")), "Location"), "/hub/login");
  std::string alice = LoginCookie("alice", "alice%27s+password");
  EXPECT_EQ(Header(Reply(Get("/", alice)), "Location"), "/user/alice/tree");
  EXPECT_EQ(Reply(Get("/etc/passwd", alice)).status, 404);
}

TEST(WebHelpersTest, CookiesAndTokenParameters) {
  EXPECT_EQ(CookieValue("a=1; dspool_session=xyz; b=2", "dspool_session"), "xyz");
  EXPECT_EQ(CookieValue("xdspool_session=1", "dspool_session"), std::nullopt);
  EXPECT_EQ(WithoutTokenParam("/a?token=1"), "/a");
  EXPECT_EQ(WithoutTokenParam("/a?x=1&token=2&y=3&token=4"), "/a?x=1&y=3");
  EXPECT_EQ(WithoutTokenParam("/a?tokens=1"), "/a?tokens=1");
  EXPECT_EQ(WithoutTokenParam("/a"), "/a");
}

}  // namespace
}  // namespace dspool
