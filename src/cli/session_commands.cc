// session list|stop: the users' notebook servers and the SSH sessions (any
// connection the gateway relays), with each one's client address.
#include "cli/commands.h"
#include "cli/options.h"
#include "cli/table.h"
#include "http/message.h"

namespace dspool {
namespace {

// "1 kernel" / "2 kernels", or "" for none.
std::string Count(int64_t n, const std::string& noun) {
  if (n <= 0) return "";
  return std::to_string(n) + " " + noun + (n == 1 ? "" : "s");
}

// "2 kernels, 1 terminal", or "-" when nothing is busy.
std::string BusyText(const Json& session) {
  std::string kernels = Count(JsonInt(session, "busyKernels"), "kernel");
  std::string terminals = Count(JsonInt(session, "busyTerminals"), "terminal");
  return OrDash(kernels + (!kernels.empty() && !terminals.empty() ? ", " : "") + terminals);
}

}  // namespace

Status SessionList(const CommandContext& ctx) {
  DSP_ASSIGN_OR_RETURN(Json answer, ctx.api.Get("/v1/sessions"));
  if (ctx.output == OutputFormat::kJson) {
    PrintJson(ctx.out, answer);
    return Status::Ok();
  }
  const Json& sessions = JsonArray(answer, "sessions");
  if (sessions.empty()) {
    ctx.out << "No sessions.\n";
    return Status::Ok();
  }
  const TimePoint now = ctx.clock.Now();
  // INSTANCE-SEES: the client's end as the instance (its sshd's log)
  // knows it; the client's own address where the gateway connects from it.
  Table table({"KIND", "POOL", "USER", "INSTANCE", "CLIENT", "INSTANCE-SEES", "STATE", "STARTED", "LAST-ACTIVITY",
               "BUSY"});
  for (const Json& s : sessions) {
    const std::string kind = JsonString(s, "kind");
    if (kind.empty() || kind == "notebook") {
      table.AddRow({"notebook", OrDash(JsonString(s, "pool")), OrDash(JsonString(s, "user")),
                    OrDash(JsonString(s, "instance")), OrDash(JsonString(s, "client")), "-",
                    OrDash(JsonString(s, "state")), AgeOf(JsonString(s, "startedAt"), now),
                    AgeOf(JsonString(s, "lastActivity"), now), BusyText(s)});
    } else {
      table.AddRow({kind, OrDash(JsonString(s, "pool")), "-", OrDash(JsonString(s, "instance")),
                    OrDash(JsonString(s, "client")), OrDash(JsonString(s, "instanceSees")), "open",
                    AgeOf(JsonString(s, "startedAt"), now), "-", "-"});
    }
  }
  ctx.out << table.Render();
  // Why each failed notebook failed ("ran out of memory (limit 512 MiB) and
  // was stopped"), under the table so its columns stay narrow.
  for (const Json& s : sessions) {
    const std::string kind = JsonString(s, "kind");
    if ((kind.empty() || kind == "notebook") && JsonString(s, "state") == "failed" && !JsonString(s, "error").empty()) {
      ctx.out << "failed: " << JsonString(s, "user") << " in pool " << JsonString(s, "pool") << ": "
              << JsonString(s, "error") << "\n";
    }
  }
  return Status::Ok();
}

Status SessionStop(const CommandContext& ctx, const std::string& user, const std::string& pool) {
  std::string in_pool = pool;
  if (in_pool.empty()) {
    // The one pool where the user has a server, to name it; with none or
    // several, the server's answer says so.
    DSP_ASSIGN_OR_RETURN(Json answer, ctx.api.Get("/v1/sessions"));
    int found = 0;
    for (const Json& s : JsonArray(answer, "sessions")) {
      if (JsonString(s, "user") != user) continue;
      ++found;
      in_pool = JsonString(s, "pool");
    }
    if (found != 1) in_pool.clear();
  }
  std::string target = "/v1/sessions/" + PercentEncode(user);
  if (!in_pool.empty()) target += "?pool=" + PercentEncode(in_pool);
  DSP_RETURN_IF_ERROR(ctx.api.Call("DELETE", target).status());
  // -o json: the API's answer is 204, without a body; nothing to print.
  if (ctx.output == OutputFormat::kTable) {
    ctx.out << "stopped " << user << "'s notebook server" << (in_pool.empty() ? "" : " in pool " + in_pool)
            << "; their files stay on the share\n";
  }
  return Status::Ok();
}

}  // namespace dspool
