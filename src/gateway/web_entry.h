// WebEntry: a pool's Jupyter address. It logs users in with the pool
// identity (the same password hash sshd checks), keeps them logged in with
// a signed cookie, and routes /user/<name>/ to that user's own notebook
// server somewhere in the pool, adding the server's token so the user never
// handles it. It is the ProxyRouter of the pool's web listener (http/proxy.h
// streams the bytes).
//
//   /                      → /user/<you>/tree, or the login page
//   GET  /hub/login        the login form
//   POST /hub/login        checks the password (throttled per user and
//                          address; as long for an unknown name as for a
//                          wrong password); 303 + session cookie, or 401
//                          and none; a good login starts the user's server
//                          at once and goes to `next` if it is a path in
//                          the user's own space (never another host)
//   GET  /hub/logout       drops the cookie
//   /user/<name>/...       only with <name>'s cookie (else 302 to login for
//                          pages, 401 for API calls; another user's: 403).
//                          Server ready → forwarded (token added, the
//                          client's own ?token= and our cookie removed);
//                          none yet → StartServer and a "starting" page
//                          (503 + Retry-After for API and WebSocket calls)
//   GET  /hub/spawn-pending/<name>?next=PATH
//                          where the starting page sends the browser at
//                          once (Refresh: 0): held (http/proxy.h's
//                          ProxyHold) until the server is ready, then 302
//                          to PATH (a path in <name>'s space, as after a
//                          login); still starting after hold_starting_page,
//                          the starting page again; failed, why
//
// So a browser shows the starting page and then its notebook the moment
// the server answers, with no reload every second and no script. The
// gateway calls the proxy's RoutesChanged after every ServerReady,
// ServerFailed, ServerLost and ServerGone, which decides held requests
// again.
//
// A server lives on one instance and goes with it. When the pool's Ready
// instances change (the gateway applies a routing table), a server on an
// instance that is no longer among them (scaled in, failed, deleted) is
// forgotten; and a forwarded request whose server cannot be connected
// (refused, unreachable) forgets it too. Either way the request gets the
// "starting" answer, never a 502, and a new server is asked for:
//
//   ready ──instance leaves / connect fails──► forgotten ──next request──► starting
//
// A server its instance's kernel killed for lack of memory is not just
// forgotten: the server tells the entry (ServerLost), and the session turns
// failed with why, so the user learns it instead of finding a new, empty
// server. The next page load shows "Your notebook server ran out of memory
// (limit 512 MiB) and was stopped. Reload to start a new one."; the request
// after that page (or any, retry_failed_after later) starts a new server.
// API and WebSocket calls meanwhile get 503 with the same words:
//
//   ready ──ServerLost──► failed (lost) ──a page shows why──► next request ──► starting
//
// The path is checked on every request and every upgrade, after the proxy
// normalised it (no "..", no "//", percent-decoding done), so no path trick
// reaches another user's server.
//
// Thread safety: all methods may be called from any thread.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/ids.h"
#include "http/proxy.h"
#include "identity/password.h"
#include "identity/session.h"

namespace dspool {

class WebHooks {
 public:
  virtual ~WebHooks() = default;
  // The user's password hash; nullopt if there is no such user or it has
  // no password.
  virtual std::optional<std::string> PasswordHash(const std::string& user) = 0;
  // `user` has no notebook server: start one with `token` (asynchronously)
  // and report with ServerReady or ServerFailed.
  virtual void StartServer(const std::string& user, const std::string& token) = 0;
};

struct WebEntryOptions {
  std::chrono::seconds session_lifetime{std::chrono::hours(12)};
  LoginThrottle::Limits login_limits;
  // A failed start is tried again after this long.
  std::chrono::seconds retry_failed_after{30};
  // How long /hub/spawn-pending holds a request while the server starts.
  std::chrono::milliseconds hold_starting_page{std::chrono::seconds(10)};
  // Checks a login's password against a crypt(3) hash. Every login calls it
  // once, also for a name that is invalid, unknown or without a password
  // (against identity's DummyPasswordHash), so the answer's time does not
  // tell which names exist. Tests count the calls through their own.
  std::function<bool(std::string_view password, const std::string& hash)> verify_password = VerifyPassword;
};

// One user's notebook server, as the web entry knows it.
struct NotebookSession {
  enum class State { kStarting, kReady, kFailed };
  std::string user;
  State state = State::kStarting;
  InstanceId instance;
  uint32_t address = 0;
  uint16_t port = 0;
  std::string error;          // kFailed
  TimePoint started;          // asked for
  TimePoint last_activity;    // last request or tunnel traffic
  // The same two on the monotonic clock, for decisions (a failed start's
  // retry, culling); the wall times above are for people.
  MonoTime started_mono;
  MonoTime last_traffic;
  // The address of the browser's last request to the server ("" before
  // the first): the web proxy's peer, so a NAT or a proxy in front shows
  // as itself.
  std::string client;
};
std::string_view NotebookStateName(NotebookSession::State state);

class WebEntry final : public ProxyRouter {
 public:
  WebEntry(const Clock& clock, WebHooks& hooks, std::string session_key, WebEntryOptions options);

  ProxyRoute Decide(const Request& head) override;
  Response Serve(const Request& request) override;
  void Activity(uint64_t tag) override;
  // The server `forward` went to did not take the connection: it is
  // forgotten (if still the user's), a new one is asked for, and the
  // client gets the "starting" answer.
  std::optional<Response> Unreachable(const Request& head, const ProxyForward& forward) override;

  // The pool's Ready instances are now `ready`: servers on any other
  // instance are gone with it and are forgotten (the next request starts a
  // new one). Returns the users whose servers were forgotten.
  std::vector<std::string> KeepServersOn(const std::set<InstanceId>& ready);

  // From the server, once it knows how a start went.
  void ServerReady(const std::string& user, const InstanceId& instance, uint32_t address, uint16_t port);
  void ServerFailed(const std::string& user, const std::string& error);
  // `user`'s server on `instance`, port `port`, ended (`error` completes
  // "Your notebook server ...": "ran out of memory (limit 512 MiB) and was
  // stopped"). If it is still the session's ready server, the session is
  // failed with `error` (see the top); else (a new one starts already, or
  // none) nothing changes. Returns whether it changed.
  bool ServerLost(const std::string& user, const InstanceId& instance, uint16_t port, const std::string& error);
  // The server is gone (culled, stopped, its instance removed): the next
  // request starts a new one.
  void ServerGone(const std::string& user);

  std::vector<NotebookSession> Sessions() const;

  // For a successor process (the gateway's upgrade): every session with
  // its server's token, and taking them in (replacing what is known of
  // those users).
  struct HandedSession {
    NotebookSession session;
    std::string token;
  };
  std::vector<HandedSession> HandOver() const;
  void TakeOver(std::vector<HandedSession> sessions);

 private:
  struct Entry {
    NotebookSession session;
    std::string token;  // never leaves the gateway except to the server's instance
    uint64_t tag = 0;
    bool lost = false;        // kFailed by ServerLost
    bool lost_shown = false;  // ... and a page has said why: the next request starts anew
  };
  ProxyRoute UserRoute(const Request& head, const std::string& user);
  // /hub/spawn-pending/<user>?next=`next` (a decoded path), user logged in.
  ProxyRoute SpawnPending(const Request& head, const std::string& user, const std::string& next);
  // The answer while `e`'s server is not ready: why it failed, or
  // Starting. A page that says the server was lost marks it shown.
  // REQUIRES: mu_ held.
  Response NotReadyLocked(const Request& head, Entry& e);
  // What a request to /user/<name>/... gets while the server starts: the
  // starting page for a browser, 503 + Retry-After for API calls.
  static Response Starting(const Request& head);
  // The page that leads on to /hub/spawn-pending for `user`, then `next`
  // (a decoded path).
  static Response StartingPage(const std::string& user, const std::string& next);
  // Drops `it`. REQUIRES: mu_ held.
  void EraseLocked(std::map<std::string, Entry>::iterator it);
  // Asks for `user`'s server unless one is starting or running (or failed
  // less than retry_failed_after ago).
  void EnsureStarted(const std::string& user);
  Response Login(const Request& request);

  const Clock& clock_;
  WebHooks& hooks_;
  const SessionVerifier sessions_;  // holds the key
  const WebEntryOptions options_;
  LoginThrottle throttle_;
  mutable std::mutex mu_;
  std::map<std::string, Entry> servers_;      // guarded by mu_, by user
  std::map<uint64_t, std::string> by_tag_;    // guarded by mu_
  uint64_t next_tag_ = 1;                     // guarded by mu_
};

// The value of cookie `name` in a Cookie header ("a=1; b=2"), if present.
std::optional<std::string> CookieValue(const std::string& header, const std::string& name);
// `target` without its `token` query parameter(s).
std::string WithoutTokenParam(const std::string& target);

}  // namespace dspool
