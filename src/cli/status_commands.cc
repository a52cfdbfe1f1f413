// status, events.
#include "cli/commands.h"
#include "cli/table.h"

namespace dspool {
namespace {

constexpr std::chrono::seconds kFollowInterval{1};

Table EventTable(const Json& events, TimePoint now) {
  Table table({"SEQ", "AGE", "ACTOR", "ACTION", "SUBJECT", "DETAIL"});
  for (const Json& e : events) {
    table.AddRow({JsonString(e, "seq"), AgeOf(JsonString(e, "time"), now), JsonString(e, "actor"),
                  JsonString(e, "action"), JsonString(e, "subject"), JsonString(e, "detail")});
  }
  return table;
}

std::string EventsTarget(std::optional<int64_t> after, std::optional<int64_t> limit) {
  std::string target = "/v1/events";
  char sep = '?';
  if (after) {
    target += sep + std::string("after=") + std::to_string(*after);
    sep = '&';
  }
  if (limit) target += sep + std::string("limit=") + std::to_string(*limit);
  return target;
}

}  // namespace

Status ShowStatus(const CommandContext& ctx) {
  DSP_ASSIGN_OR_RETURN(Json status, ctx.api.Get("/v1/status"));
  if (ctx.output == OutputFormat::kJson) {
    PrintJson(ctx.out, status);
    return Status::Ok();
  }
  const Json& instances = JsonField(status, "instances");
  std::string started = JsonString(status, "startedAt");
  std::string up = AgeOf(started, ctx.clock.Now());
  ctx.out << RenderFields({
      {"Server", ctx.api.endpoint().ToString()},
      {"Version", JsonString(status, "version")},
      {"Data dir", JsonString(status, "dataDir")},
      {"Provider", JsonString(status, "provider")},
      {"Pools", JsonString(status, "pools")},
      {"Instances", JsonString(instances, "total") + " (" + JsonString(instances, "ready") + " ready)"},
      {"Users", JsonString(status, "users")},
      {"Up", up == "-" ? "-" : up + " (since " + started + ")"},
  });
  return Status::Ok();
}

Status ServerStop(const CommandContext& ctx, bool gateway) {
  const Json body{{"gateway", true}};
  DSP_ASSIGN_OR_RETURN(Json answer, ctx.api.Call("POST", "/v1/server/stop", gateway ? &body : nullptr));
  const std::string pid = JsonString(answer, "pid");
  constexpr auto kPoll = std::chrono::milliseconds(100);
  constexpr int kPolls = 600;  // a minute
  for (int i = 0; i < kPolls && ctx.wait(kPoll); ++i) {
    auto status = ctx.api.Get("/v1/status");
    if (status.ok()) continue;
    if (status.status().code() != StatusCode::kUnavailable) return status.status();
    ctx.out << "dspool server (pid " << pid << ") stopped" << (gateway ? ", and its gateway" : "")
            << "; the instances and the users' notebook servers keep running"
            << (gateway ? "" : ", the gateway keeps relaying their sessions")
            << ", and the next `dspool server` on this data directory takes them up again\n";
    return Status::Ok();
  }
  return DeadlineExceeded("the server (pid " + pid + ") was asked to stop but still answers after a minute");
}

Status GatewayShow(const CommandContext& ctx) {
  DSP_ASSIGN_OR_RETURN(Json info, ctx.api.Get("/v1/gateway"));
  if (ctx.output == OutputFormat::kJson) {
    PrintJson(ctx.out, info);
    return Status::Ok();
  }
  const std::string started = JsonString(info, "started");
  ctx.out << RenderFields({
      {"Pid", JsonString(info, "pid")},
      {"Version", JsonString(info, "version")},
      {"Binary", JsonString(info, "binary")},
      {"Up", AgeOf(started, ctx.clock.Now()) + " (since " + started + ")"},
      {"Upgrades", JsonString(info, "upgrades")},
  });
  return Status::Ok();
}

Status GatewayUpgrade(const CommandContext& ctx, const std::string& binary) {
  const Json body{{"binary", binary}};
  DSP_ASSIGN_OR_RETURN(Json answer, ctx.api.Call("POST", "/v1/gateway/upgrade", binary.empty() ? nullptr : &body));
  if (ctx.output == OutputFormat::kJson) {
    PrintJson(ctx.out, answer);
    return Status::Ok();
  }
  ctx.out << "gateway upgraded: pid " << JsonString(answer, "pid") << " (" << JsonString(answer, "binary")
          << ") serves now, with the listeners and the idle relayed connections; pid "
          << JsonString(answer, "previousPid")
          << " exits once the connections it kept (bytes on their way, Jupyter's TLS connections) have ended\n";
  return Status::Ok();
}

Status ListEvents(const CommandContext& ctx, const EventsOptions& options) {
  std::optional<int64_t> after = options.after;
  bool first = true;
  std::vector<size_t> widths;  // of the rows printed so far
  for (;;) {
    DSP_ASSIGN_OR_RETURN(Json answer, ctx.api.Get(EventsTarget(after, options.limit)));
    const Json& events = JsonArray(answer, "events");
    if (!options.follow) {
      if (ctx.output == OutputFormat::kJson) {
        PrintJson(ctx.out, answer);
      } else if (events.empty()) {
        ctx.out << "No events.\n";
      } else {
        ctx.out << EventTable(events, ctx.clock.Now()).Render();
      }
      return Status::Ok();
    }
    if (ctx.output == OutputFormat::kJson) {
      for (const Json& e : events) ctx.out << e.dump(-1, ' ', false, Json::error_handler_t::replace) << "\n";
    } else if (!events.empty() || first) {
      // The header once, at the top; later rows line up under it unless
      // they are wider.
      Table table = EventTable(events, ctx.clock.Now());
      table.WidenTo(widths);
      ctx.out << table.Render(/*with_header=*/first);
      widths = table.ColumnWidths();
    }
    ctx.out.flush();
    first = false;
    int64_t last = after.value_or(0);
    int64_t next = events.empty() ? last : JsonInt(events.back(), "seq", last);
    after = next;
    // A full page means more are waiting: fetch them at once.
    bool full_page = next > last && static_cast<int64_t>(events.size()) >= options.limit.value_or(100);
    if (!full_page && !ctx.wait(kFollowInterval)) return Status::Ok();
  }
}

}  // namespace dspool
