#include "gateway/web_entry.h"

#include "base/log.h"
#include "identity/password.h"
#include "model/user.h"

namespace dspool {
namespace {

constexpr const char* kLog = "web";
constexpr const char* kCookie = "dspool_session";

std::string HtmlEscape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

Response Html(int status, const std::string& title, const std::string& body,
              std::vector<std::pair<std::string, std::string>> headers = {}) {
  Response r;
  r.status = status;
  r.content_type = "text/html; charset=utf-8";
  r.body = "<!doctype html><html><head><meta charset=\"utf-8\"><title>" + HtmlEscape(title) +
           "</title><style>body{font-family:sans-serif;max-width:28em;margin:4em auto}"
           "input{display:block;margin:.4em 0 1em;width:100%;padding:.4em}"
           "button{padding:.5em 1.5em}.error{color:#b00}</style></head><body>" +
           body + "</body></html>\n";
  headers.push_back({"Cache-Control", "no-store"});
  headers.push_back({"X-Frame-Options", "DENY"});
  r.headers = std::move(headers);
  return r;
}

Response LoginPage(int status, const std::string& next, const std::string& error) {
  std::string body = "<h1>dspool</h1>";
  if (!error.empty()) body += "<p class=\"error\">" + HtmlEscape(error) + "</p>";
  body += "<form method=\"post\" action=\"/hub/login\"><label>User name<input name=\"username\" "
          "autocomplete=\"username\" autofocus></label><label>Password<input name=\"password\" type=\"password\" "
          "autocomplete=\"current-password\"></label><input type=\"hidden\" name=\"next\" value=\"" +
          HtmlEscape(next) + "\"><button>Log in</button></form>";
  return Html(status, "Log in", body);
}

Response Redirect(int status, const std::string& location,
                  std::vector<std::pair<std::string, std::string>> headers = {}) {
  Response r;
  r.status = status;
  r.content_type = "";
  headers.push_back({"Location", location});
  headers.push_back({"Cache-Control", "no-store"});
  r.headers = std::move(headers);
  return r;
}

Response JsonError(int status, const std::string& message,
                   std::vector<std::pair<std::string, std::string>> headers = {}) {
  Response r = JsonResponse(status, JsonErrorBody(status == 401 ? "Unauthenticated" : "Unavailable", message));
  r.headers = std::move(headers);
  return r;
}

// A browser asking for a page (not an API call, not a WebSocket).
bool WantsPage(const Request& head) {
  auto accept = head.headers.find("accept");
  return head.method == "GET" && !head.headers.count("upgrade") && accept != head.headers.end() &&
         accept->second.find("text/html") != std::string::npos;
}

std::string UserHome(const std::string& user) { return "/user/" + user + "/tree"; }

// The <name> of a "/user/<name>/..." path; "" for any other path.
std::string PathUser(const std::string& path) {
  constexpr std::string_view kPrefix = "/user/";
  if (!path.starts_with(kPrefix)) return "";
  return path.substr(kPrefix.size(), path.find('/', kPrefix.size()) - kPrefix.size());
}

// Where a login sends the browser: `next` (a decoded path, as the login
// form returns it) when it is a path in `user`'s own space, percent-encoded;
// else the user's home. Only a path on this host can come out: it starts
// with "/user/<user>/", so never "//host", a scheme or a backslash trick
// (every byte that is not unreserved or '/' is encoded), and no ".." climbs
// out of the space (ParseTarget refuses it).
std::string AfterLogin(const std::string& next, const std::string& user) {
  Result<Target> target = ParseTarget(PercentEncode(next, "/"));
  if (!target.ok() || !target->path.starts_with("/user/" + user + "/")) return UserHome(user);
  return PercentEncode(target->path, "/");
}

// A user name from a login form, fit for a log line: as given if it is a
// valid name (model/user.h's rules leave no room for line breaks, quotes or
// control characters), else a placeholder, so a crafted name cannot forge
// log lines.
std::string LoggableUserName(const std::string& name) {
  return ValidateUserName(name).ok() ? name : "(invalid name)";
}

}  // namespace

std::string_view NotebookStateName(NotebookSession::State state) {
  switch (state) {
    case NotebookSession::State::kStarting: return "starting";
    case NotebookSession::State::kReady: return "ready";
    case NotebookSession::State::kFailed: return "failed";
  }
  return "?";
}

namespace {

// The "name=value" parts of a Cookie header, trimmed.
std::vector<std::string_view> CookieParts(const std::string& header) {
  std::vector<std::string_view> parts;
  size_t pos = 0;
  while (pos < header.size()) {
    size_t end = header.find(';', pos);
    if (end == std::string::npos) end = header.size();
    std::string_view part(header.data() + pos, end - pos);
    while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
    if (!part.empty()) parts.push_back(part);
    pos = end + 1;
  }
  return parts;
}

}  // namespace

std::optional<std::string> CookieValue(const std::string& header, const std::string& name) {
  for (std::string_view part : CookieParts(header)) {
    size_t eq = part.find('=');
    if (eq != std::string_view::npos && part.substr(0, eq) == name) return std::string(part.substr(eq + 1));
  }
  return std::nullopt;
}

std::string WithoutTokenParam(const std::string& target) {
  size_t q = target.find('?');
  if (q == std::string::npos) return target;
  std::string out = target.substr(0, q);
  std::string query;
  size_t pos = q + 1;
  while (pos <= target.size()) {
    size_t end = target.find('&', pos);
    if (end == std::string::npos) end = target.size();
    std::string_view part(target.data() + pos, end - pos);
    std::string_view name = part.substr(0, part.find('='));
    if (!part.empty() && name != "token") {
      if (!query.empty()) query += '&';
      query += part;
    }
    pos = end + 1;
  }
  return query.empty() ? out : out + "?" + query;
}

WebEntry::WebEntry(const Clock& clock, WebHooks& hooks, std::string session_key, WebEntryOptions options)
    : clock_(clock),
      hooks_(hooks),
      sessions_(std::move(session_key)),
      options_(options),
      throttle_(clock, options.login_limits) {
  DummyPasswordHash();  // made now, not during the first login of an unknown name
}

ProxyRoute WebEntry::Decide(const Request& head) {
  std::optional<std::string> user;
  if (auto cookie = head.headers.find("cookie"); cookie != head.headers.end()) {
    if (auto value = CookieValue(cookie->second, kCookie)) {
      if (auto verified = sessions_.Verify(*value, clock_.Now()); verified.ok()) user = *verified;
    }
  }
  if (head.path == "/hub/login") {
    if (head.method == "POST") return ProxyLocal{};
    if (user) return ProxyReply{Redirect(302, UserHome(*user))};
    auto next = head.query.find("next");
    return ProxyReply{LoginPage(200, next == head.query.end() ? "" : next->second, "")};
  }
  if (head.path == "/hub/logout") {
    return ProxyReply{Redirect(302, "/hub/login",
                               {{"Set-Cookie", std::string(kCookie) +
                                                   "=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Lax"}})};
  }
  if (head.path == "/") return ProxyReply{Redirect(302, user ? UserHome(*user) : "/hub/login")};
  if (const std::string pending = "/hub/spawn-pending/"; head.path.rfind(pending, 0) == 0) {
    const std::string name = head.path.substr(pending.size());
    auto next = head.query.find("next");
    const std::string where = next == head.query.end() ? UserHome(name) : next->second;
    if (!user) return ProxyReply{Redirect(302, "/hub/login?next=" + PercentEncode(where, "/"))};
    if (name != *user) return ProxyReply{JsonError(403, "this is not your server")};
    return SpawnPending(head, *user, where);
  }
  if (!head.path.starts_with("/user/")) return ProxyReply{JsonError(404, "no such page")};
  const std::string name = PathUser(head.path);
  if (!user) {
    if (WantsPage(head)) return ProxyReply{Redirect(302, "/hub/login?next=" + PercentEncode(head.path, "/"))};
    return ProxyReply{JsonError(401, "log in first (POST /hub/login)")};
  }
  if (name != *user) {
    DSP_LOG(kInfo, kLog) << "user " << *user << " asked for " << name << "'s server: refused";
    return ProxyReply{JsonError(403, "this is not your server")};
  }
  return UserRoute(head, *user);
}

void WebEntry::EnsureStarted(const std::string& user) {
  std::unique_lock lock(mu_);
  const TimePoint now = clock_.Now();
  const MonoTime mono = clock_.Monotonic();
  auto it = servers_.find(user);
  bool start = it == servers_.end() ||
               (it->second.session.state == NotebookSession::State::kFailed &&
                (it->second.lost_shown || mono - it->second.session.started_mono >= options_.retry_failed_after));
  if (!start) return;
  Entry& e = servers_[user];
  e.session = NotebookSession{user, NotebookSession::State::kStarting, InstanceId(), 0, 0, "", now, now, mono, mono};
  e.lost = e.lost_shown = false;
  e.token = NewToken();
  if (e.tag == 0) {
    e.tag = next_tag_++;
    by_tag_[e.tag] = user;
  }
  std::string token = e.token;
  lock.unlock();
  hooks_.StartServer(user, token);
}

ProxyRoute WebEntry::UserRoute(const Request& head, const std::string& user) {
  EnsureStarted(user);
  std::unique_lock lock(mu_);
  auto it = servers_.find(user);
  if (it == servers_.end()) return ProxyReply{Starting(head)};  // forgotten since EnsureStarted
  Entry& e = it->second;
  e.session.client = head.peer.address;
  if (e.session.state != NotebookSession::State::kReady) return ProxyReply{NotReadyLocked(head, e)};
  ProxyForward f;
  f.address = e.session.address;
  f.port = e.session.port;
  f.target = WithoutTokenParam(head.target);
  f.set_headers = {{"Authorization", "token " + e.token}};
  f.tag = e.tag;
  // Our cookie stays here; the notebook's own (its _xsrf) go on.
  std::string others;
  if (auto cookie = head.headers.find("cookie"); cookie != head.headers.end()) {
    const std::string ours = std::string(kCookie) + "=";
    for (std::string_view part : CookieParts(cookie->second)) {
      if (part.substr(0, ours.size()) == ours) continue;
      if (!others.empty()) others += "; ";
      others += part;
    }
  }
  if (others.empty()) {
    f.remove_headers = {"cookie"};
  } else {
    f.set_headers.push_back({"Cookie", others});
  }
  return f;
}

ProxyRoute WebEntry::SpawnPending(const Request& head, const std::string& user, const std::string& next) {
  EnsureStarted(user);
  std::lock_guard lock(mu_);
  auto it = servers_.find(user);
  if (it != servers_.end()) it->second.session.client = head.peer.address;
  if (it == servers_.end() || it->second.session.state == NotebookSession::State::kStarting) {
    return ProxyHold{options_.hold_starting_page, StartingPage(user, next)};
  }
  if (it->second.session.state == NotebookSession::State::kReady) {
    return ProxyReply{Redirect(302, AfterLogin(next, user))};
  }
  return ProxyReply{NotReadyLocked(head, it->second)};
}

Response WebEntry::NotReadyLocked(const Request& head, Entry& e) {
  if (e.session.state == NotebookSession::State::kFailed && e.lost) {
    const std::string& error = e.session.error;
    if (WantsPage(head)) {
      e.lost_shown = true;
      return Html(503, "Notebook server stopped",
                  "<h1>Your notebook server stopped</h1><p>Your notebook server " + HtmlEscape(error) +
                      ". Reload to start a new one.</p><p>Your saved files are on the share.</p>");
    }
    return JsonError(503, "your notebook server " + error + "; load a page to start a new one",
                     {{"Retry-After", std::to_string(options_.retry_failed_after.count())}});
  }
  if (e.session.state == NotebookSession::State::kFailed) {
    const std::string& error = e.session.error;
    if (WantsPage(head)) {
      return Html(503, "Could not start",
                  "<h1>Your notebook server could not start</h1><p>" + HtmlEscape(error) +
                      "</p><p>It is tried again shortly.</p>",
                  {{"Retry-After", std::to_string(options_.retry_failed_after.count())}});
    }
    return JsonError(503, "your notebook server could not start: " + error,
                     {{"Retry-After", std::to_string(options_.retry_failed_after.count())}});
  }
  return Starting(head);
}

Response WebEntry::Starting(const Request& head) {
  if (WantsPage(head)) return StartingPage(PathUser(head.path), head.path);
  return JsonError(503, "your notebook server is starting", {{"Retry-After", "1"}});
}

Response WebEntry::StartingPage(const std::string& user, const std::string& next) {
  // The browser shows this page and asks for the pending address at once;
  // that request is held until the server is ready (then a redirect to
  // `next`) or this page comes again.
  const std::string pending = "/hub/spawn-pending/" + user + "?next=" + PercentEncode(next, "/");
  return Html(200, "Starting",
              "<h1>Starting your notebook server…</h1><p>Your files are on the share; this page "
              "goes on to your notebook when its server is ready.</p>",
              {{"Refresh", "0; url=" + pending}});
}

std::optional<Response> WebEntry::Unreachable(const Request& head, const ProxyForward& forward) {
  std::string user;
  {
    std::lock_guard lock(mu_);
    auto name = by_tag_.find(forward.tag);
    if (name != by_tag_.end()) {
      user = name->second;
      auto it = servers_.find(user);
      // Only the server this request went to: a new one may be starting.
      if (it != servers_.end() && it->second.session.state == NotebookSession::State::kReady &&
          it->second.session.address == forward.address && it->second.session.port == forward.port) {
        DSP_LOG(kInfo, kLog) << "the notebook server of " << user << " on " << it->second.session.instance
                             << " does not answer: forgotten, a new one is started";
        EraseLocked(it);
      }
    }
  }
  if (!user.empty()) EnsureStarted(user);
  return Starting(head);
}

std::vector<std::string> WebEntry::KeepServersOn(const std::set<InstanceId>& ready) {
  std::vector<std::string> forgotten;
  std::lock_guard lock(mu_);
  for (auto it = servers_.begin(); it != servers_.end();) {
    const NotebookSession& s = it->second.session;
    auto next = std::next(it);
    if (s.state == NotebookSession::State::kReady && !ready.count(s.instance)) {
      forgotten.push_back(s.user);
      EraseLocked(it);
    }
    it = next;
  }
  return forgotten;
}

void WebEntry::EraseLocked(std::map<std::string, Entry>::iterator it) {
  by_tag_.erase(it->second.tag);
  servers_.erase(it);
}

Response WebEntry::Serve(const Request& request) {
  if (request.path == "/hub/login" && request.method == "POST") return Login(request);
  return JsonError(404, "no such page");
}

Response WebEntry::Login(const Request& request) {
  auto form = ParseTarget("/?" + request.body);
  if (!form.ok()) return LoginPage(400, "", "The form could not be read.");
  auto field = [&](const char* name) {
    auto it = form->query.find(name);
    return it == form->query.end() ? std::string() : it->second;
  };
  std::string user = field("username");
  std::string password = field("password");
  std::string next = field("next");
  const std::string& address = request.peer.address;
  if (auto wait = throttle_.Wait(user, address); wait.count() > 0) {
    Response r = LoginPage(429, next, "Too many failed logins. Try again in " + std::to_string(wait.count()) + " s.");
    r.headers.push_back({"Retry-After", std::to_string(wait.count())});
    return r;
  }
  // A name that is invalid, unknown, or has no usable password (none, or a
  // locked one) is checked against the dummy hash: the answer takes as long
  // as for a wrong password.
  std::optional<std::string> hash = ValidateUserName(user).ok() ? hooks_.PasswordHash(user) : std::nullopt;
  bool usable = hash && !hash->empty() && hash->front() != '!' && hash->front() != '*';
  bool ok = options_.verify_password(password, usable ? *hash : DummyPasswordHash()) && usable;
  password.assign(password.size(), '\0');
  if (!ok) {
    throttle_.RecordFailure(user, address);
    DSP_LOG(kInfo, kLog) << "failed login for '" << LoggableUserName(user) << "' from " << address;
    return LoginPage(401, next, "Invalid user name or password.");
  }
  throttle_.RecordSuccess(user);
  DSP_LOG(kInfo, kLog) << "user " << user << " logged in from " << address;
  // Start the notebook server now: it boots while the browser follows the
  // redirect.
  EnsureStarted(user);
  std::string cookie = SignSession(user, clock_.Now() + options_.session_lifetime, sessions_.key());
  return Redirect(303, AfterLogin(next, user),
                  {{"Set-Cookie", std::string(kCookie) + "=" + cookie + "; Path=/; Max-Age=" +
                                      std::to_string(options_.session_lifetime.count()) +
                                      "; HttpOnly; Secure; SameSite=Lax"}});
}

void WebEntry::Activity(uint64_t tag) {
  std::lock_guard lock(mu_);
  auto user = by_tag_.find(tag);
  if (user == by_tag_.end()) return;
  auto it = servers_.find(user->second);
  if (it == servers_.end()) return;
  it->second.session.last_activity = clock_.Now();
  it->second.session.last_traffic = clock_.Monotonic();
}

void WebEntry::ServerReady(const std::string& user, const InstanceId& instance, uint32_t address, uint16_t port) {
  std::lock_guard lock(mu_);
  auto it = servers_.find(user);
  if (it == servers_.end()) return;
  NotebookSession& s = it->second.session;
  s.state = NotebookSession::State::kReady;
  s.instance = instance;
  s.address = address;
  s.port = port;
  s.error.clear();
  s.last_activity = clock_.Now();
  s.last_traffic = clock_.Monotonic();
}

void WebEntry::ServerFailed(const std::string& user, const std::string& error) {
  std::lock_guard lock(mu_);
  auto it = servers_.find(user);
  if (it == servers_.end()) return;
  it->second.session.state = NotebookSession::State::kFailed;
  it->second.session.error = error;
}

bool WebEntry::ServerLost(const std::string& user, const InstanceId& instance, uint16_t port,
                          const std::string& error) {
  std::lock_guard lock(mu_);
  auto it = servers_.find(user);
  if (it == servers_.end()) return false;
  Entry& e = it->second;
  NotebookSession& s = e.session;
  if (s.state != NotebookSession::State::kReady || s.instance != instance || s.port != port) return false;
  s.state = NotebookSession::State::kFailed;
  s.error = error;
  s.started_mono = clock_.Monotonic();  // retry_failed_after counts from the loss
  e.lost = true;
  e.lost_shown = false;
  DSP_LOG(kInfo, kLog) << "the notebook server of " << user << " on " << instance << " " << error
                       << ": its next page says so";
  return true;
}

void WebEntry::ServerGone(const std::string& user) {
  std::lock_guard lock(mu_);
  auto it = servers_.find(user);
  if (it != servers_.end()) EraseLocked(it);
}

std::vector<NotebookSession> WebEntry::Sessions() const {
  std::lock_guard lock(mu_);
  std::vector<NotebookSession> out;
  for (const auto& [user, e] : servers_) out.push_back(e.session);
  return out;
}

std::vector<WebEntry::HandedSession> WebEntry::HandOver() const {
  std::lock_guard lock(mu_);
  std::vector<HandedSession> out;
  for (const auto& [user, e] : servers_) out.push_back({e.session, e.token});
  return out;
}

void WebEntry::TakeOver(std::vector<HandedSession> sessions) {
  std::lock_guard lock(mu_);
  for (HandedSession& h : sessions) {
    if (auto it = servers_.find(h.session.user); it != servers_.end()) EraseLocked(it);
    const std::string user = h.session.user;
    Entry& e = servers_[user];
    e.session = std::move(h.session);
    e.token = std::move(h.token);
    e.tag = next_tag_++;
    by_tag_[e.tag] = user;
  }
}

}  // namespace dspool
