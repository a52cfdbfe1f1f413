// pool create|list|show|scale|delete, instance list|drain|undrain.
#include <algorithm>
#include <cstdio>

#include "cli/commands.h"
#include "cli/options.h"
#include "cli/table.h"
#include "http/message.h"
#include "os/fs.h"

namespace dspool {
namespace {

std::string PoolPath(const std::string& name) { return "/v1/pools/" + PercentEncode(name); }

std::string Percent(double value) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f%%", value);
  return buf;
}

// Ready instances; with `standby`, Ready standbys instead.
int64_t CountReady(const Json& instances, bool standby = false) {
  int64_t ready = 0;
  for (const Json& i : instances) ready += JsonString(i, "phase") == "Ready" && JsonBool(i, "standby") == standby;
  return ready;
}

// "5m ago (2026-11-26T23:55:21.042Z)", or "-".
std::string Since(const std::string& rfc3339, TimePoint now) {
  if (rfc3339.empty()) return "-";
  std::string age = AgeOf(rfc3339, now);
  return age == "-" ? rfc3339 : age + " ago (" + rfc3339 + ")";
}

// Why the instance gets no new connections: "standby", "draining" (an
// admin), "scale-in" (waits for its sessions), "removing" (forced), or "".
std::string ClosedText(const Json& instance) {
  if (JsonBool(instance, "standby")) return "standby";
  std::string scale_in = JsonString(instance, "scaleIn");
  if (scale_in == "drain") return "scale-in";
  if (scale_in == "now") return "removing";
  return JsonBool(instance, "draining") ? "draining" : "";
}

// "healthy", "unhealthy (draining)", "scale-in" (no gateway view), or "-".
std::string HealthText(const Json& instance) {
  std::string state = JsonString(JsonField(instance, "health"), "state");
  std::string closed = ClosedText(instance);
  if (closed.empty()) return OrDash(state);
  return state.empty() ? closed : state + " (" + closed + ")";
}

// The record's reason, or for an instance scale-in is draining what it
// waits for.
std::string ReasonText(const Json& instance) {
  if (JsonBool(instance, "standby") && JsonString(instance, "phase") == "Ready") {
    return "standby: frozen; the next scale-out takes it";
  }
  if (JsonString(instance, "phase") == "Booting") {
    for (const Json& e : JsonArray(JsonField(instance, "report"), "extensions")) {
      if (JsonString(e, "state") != "Transitioning") continue;
      const std::string name = JsonString(e, "name");
      return "running " + (name == "customData" ? name : "extension " + name);
    }
  }
  if (JsonString(instance, "scaleIn") != "drain") {
    // The first line: a failed script's output follows in -o json.
    const std::string reason = JsonString(instance, "reason");
    return reason.substr(0, reason.find('\n'));
  }
  if (!instance.contains("openSessions")) return "scale-in: waiting for its session count";
  return "scale-in: deleted when its " + JsonString(instance, "openSessions") + " open sessions end";
}

// "50000,51000": the instance's NAT-pool ports, or "-".
std::string NatText(const Json& instance) {
  std::string out;
  for (const Json& nat : JsonArray(instance, "natPorts")) {
    if (!out.empty()) out += ",";
    out += JsonString(nat, "port");
  }
  return OrDash(out);
}

// The instance columns shared by `pool show` and `instance list`. HEALTH and
// CONNS appear when some instance has the gateway's view or is draining, NAT
// when some has NAT-pool ports.
Table InstanceTable(const Json& instances, bool with_pool, TimePoint now) {
  bool with_health = false, with_nat = false;
  for (const Json& i : instances) {
    with_health |= JsonField(i, "health").is_object() || !ClosedText(i).empty();
    with_nat |= !JsonArray(i, "natPorts").empty();
  }
  auto add = [](std::vector<std::string>* to, std::initializer_list<std::string> cells) {
    to->insert(to->end(), cells);
  };
  std::vector<std::string> header;
  if (with_pool) add(&header, {"POOL"});
  add(&header, {"INDEX", "HOSTNAME", "ID", "PHASE"});
  if (with_health) add(&header, {"HEALTH", "CONNS"});
  add(&header, {"ADDRESS"});
  if (with_nat) add(&header, {"NAT"});
  add(&header, {"SSH", "CPU", "MEMORY", "AGE", "REASON"});
  Table table(header);
  for (const Json& i : instances) {
    const Json& report = JsonField(i, "report");
    std::string ssh = "-", cpu = "-", memory = "-";
    if (report.is_object()) {
      ssh = JsonString(report, "sshSessions");
      // An agent leaves out what it cannot tell yet: "-", not 0.0% and 0B.
      if (report.contains("cpuPercent")) cpu = Percent(JsonNumber(report, "cpuPercent"));
      if (report.contains("memoryUsedBytes")) {
        int64_t limit = JsonInt(report, "memoryLimitBytes");
        memory = FormatBytes(JsonInt(report, "memoryUsedBytes"));
        if (limit > 0) memory += "/" + FormatBytes(limit);
      }
    }
    std::vector<std::string> row;
    if (with_pool) add(&row, {OrDash(JsonString(i, "pool"))});
    add(&row, {JsonString(i, "index"), OrDash(JsonString(i, "hostname")), OrDash(JsonString(i, "id")),
               OrDash(JsonString(i, "phase"))});
    if (with_health) add(&row, {HealthText(i), OrDash(JsonString(JsonField(i, "health"), "connections"))});
    add(&row, {OrDash(JsonString(i, "address"))});
    if (with_nat) add(&row, {NatText(i)});
    add(&row, {OrDash(ssh), cpu, memory, AgeOf(JsonString(i, "createdAt"), now), ReasonText(i)});
    table.AddRow(std::move(row));
  }
  return table;
}

// "ssh 0.0.0.0:2200 → 22, Jupyter https://0.0.0.0:8000", or "" without
// rules or Jupyter.
std::string FrontendsText(const Json& pool) {
  std::string out;
  for (const Json& f : JsonArray(pool, "frontends")) {
    if (!out.empty()) out += ", ";
    const std::string where = JsonString(f, "address") + ":" + JsonString(f, "port");
    if (f.value("https", false)) {
      out += JsonString(f, "rule") + " https://" + where;
    } else {
      out += JsonString(f, "rule") + " " + where + " → " + JsonString(f, "backendPort");
    }
  }
  return out;
}

std::string SizeText(const Json& size) {
  if (!size.is_object()) return "-";
  std::string out = JsonString(size, "vcpus") + " vCPU";
  if (int64_t mib = JsonInt(size, "memoryMiB"); mib > 0) out += ", " + FormatBytes(mib * 1024 * 1024) + " memory";
  if (int64_t procs = JsonInt(size, "maxProcesses"); procs > 0) out += ", " + std::to_string(procs) + " processes";
  return out;
}

std::string ShareText(const Json& share) {
  if (!share.is_object()) return "-";
  std::string out = JsonString(share, "source");
  if (std::string type = JsonString(share, "type"); !type.empty()) out += " (" + type + ")";
  if (std::string mount = JsonString(share, "mountPath"); !mount.empty()) out += " at " + mount;
  return out;
}

}  // namespace

Status PoolCreate(const CommandContext& ctx, const std::string& spec_path, bool admin_password_from_stdin) {
  Result<std::string> text = ReadFile(spec_path);
  if (!text.ok()) return text.status().WithPrefix("-f");
  Json spec;
  DSP_RETURN_IF_ERROR(ParseJsonText(*text, spec_path, &spec));
  if (!spec.is_object()) return InvalidArgument(spec_path + ": a pool spec is a JSON object");
  if (admin_password_from_stdin) {
    DSP_ASSIGN_OR_RETURN(std::string password, ReadPasswordLine(ctx.in, "--admin-password-stdin"));
    Json& admin = spec["adminUser"];
    if (admin.is_null()) admin = Json::object();
    if (!admin.is_object()) return InvalidArgument(spec_path + ": adminUser: expected a JSON object");
    admin["password"] = password;
  }
  DSP_ASSIGN_OR_RETURN(Json pool, ctx.api.Call("POST", "/v1/pools", &spec));
  if (ctx.output == OutputFormat::kJson) {
    PrintJson(ctx.out, pool);
  } else {
    ctx.out << "pool " << JsonString(pool, "name") << " created with " << JsonInt(pool, "instanceCount")
            << " instances; follow them with: dspool pool show " << JsonString(pool, "name") << "\n";
  }
  return Status::Ok();
}

Status PoolList(const CommandContext& ctx) {
  DSP_ASSIGN_OR_RETURN(Json answer, ctx.api.Get("/v1/pools"));
  if (ctx.output == OutputFormat::kJson) {
    PrintJson(ctx.out, answer);
    return Status::Ok();
  }
  TimePoint now = ctx.clock.Now();
  Table table({"NAME", "STATE", "READY", "SUBNET", "AGE"});
  for (const Json& pool : JsonArray(answer, "pools")) {
    const Json& instances = JsonArray(pool, "instances");
    table.AddRow({JsonString(pool, "name"), JsonString(pool, "state"),
                  std::to_string(CountReady(instances)) + "/" + JsonString(pool, "instanceCount"),
                  OrDash(JsonString(JsonField(JsonField(pool, "spec"), "network"), "subnet")),
                  AgeOf(JsonString(pool, "createdAt"), now)});
  }
  if (table.rows() == 0) {
    ctx.out << "No pools. Create one with: dspool pool create -f SPEC.json\n";
    return Status::Ok();
  }
  ctx.out << table.Render();
  return Status::Ok();
}

Status PoolShow(const CommandContext& ctx, const std::string& name) {
  DSP_ASSIGN_OR_RETURN(Json pool, ctx.api.Get(PoolPath(name)));
  if (ctx.output == OutputFormat::kJson) {
    PrintJson(ctx.out, pool);
    return Status::Ok();
  }
  TimePoint now = ctx.clock.Now();
  const Json& spec = JsonField(pool, "spec");
  const Json& instances = JsonArray(pool, "instances");
  std::vector<std::pair<std::string, std::string>> fields = {
      {"Name", JsonString(pool, "name")},
      {"State", JsonString(pool, "state")},
      {"Instances", JsonString(pool, "instanceCount") + " desired, " +
                        std::to_string(std::count_if(instances.begin(), instances.end(),
                                                     [](const Json& i) { return !JsonBool(i, "standby"); })) +
                        " present, " + std::to_string(CountReady(instances)) + " ready"},
      {"Generation", JsonString(pool, "generation")},
      {"Size", SizeText(JsonField(spec, "size"))},
      {"Subnet", OrDash(JsonString(JsonField(spec, "network"), "subnet"))},
      {"Bridge", OrDash(JsonString(pool, "bridge"))},
      {"Gateway", OrDash(JsonString(pool, "gateway"))},
  };
  if (int64_t standbys = CountReady(instances, /*standby=*/true); standbys > 0 || JsonInt(spec, "standbyCount") > 0) {
    fields.insert(fields.begin() + 3, {"Standbys", std::to_string(JsonInt(spec, "standbyCount")) + " desired, " +
                                                       std::to_string(standbys) + " ready (frozen)"});
  }
  if (std::string frontends = FrontendsText(pool); !frontends.empty()) fields.push_back({"Frontends", frontends});
  fields.insert(fields.end(), {
                                  {"Share", ShareText(JsonField(spec, "share"))},
                                  {"Admin user", OrDash(JsonString(JsonField(spec, "adminUser"), "name"))},
                                  {"Created", Since(JsonString(pool, "createdAt"), now)},
                                  {"Updated", Since(JsonString(pool, "updatedAt"), now)},
                              });
  ctx.out << RenderFields(fields) << "\n";
  if (instances.empty()) {
    ctx.out << "No instances.\n";
  } else {
    ctx.out << InstanceTable(instances, /*with_pool=*/false, now).Render();
  }
  return Status::Ok();
}

Status PoolScale(const CommandContext& ctx, const std::string& name, std::optional<int64_t> count,
                 std::optional<int64_t> standby, bool force) {
  Json body = Json::object();
  if (count) body["instanceCount"] = *count;
  if (standby) body["standbyCount"] = *standby;
  if (force) body["force"] = true;
  DSP_ASSIGN_OR_RETURN(Json pool, ctx.api.Call("POST", PoolPath(name) + "/scale", &body));
  if (ctx.output == OutputFormat::kJson) {
    PrintJson(ctx.out, pool);
    return Status::Ok();
  }
  int64_t want = JsonInt(pool, "instanceCount");
  ctx.out << "pool " << name << " scaled to " << want << " instances\n";
  if (standby) {
    ctx.out << "it keeps " << JsonInt(JsonField(pool, "spec"), "standbyCount")
            << " standbys: booted, then frozen; a scale-out takes them first\n";
  }
  int64_t live = 0;
  for (const Json& i : JsonArray(pool, "instances")) {
    std::string phase = JsonString(i, "phase");
    live += (phase == "Pending" || phase == "Booting" || phase == "Ready") && JsonString(i, "scaleIn").empty() &&
            !JsonBool(i, "standby");
  }
  if (force) {
    ctx.out << "instances beyond " << want << " are deleted now, with any sessions on them\n";
  } else if (live > want) {
    ctx.out << "the instances it removes get no new sessions and are deleted when their last SSH session and "
               "notebook server end (see `dspool pool show "
            << name << "`; --force deletes them now)\n";
  }
  return Status::Ok();
}

Status PoolDelete(const CommandContext& ctx, const std::string& name) {
  DSP_ASSIGN_OR_RETURN(Json pool, ctx.api.Call("DELETE", PoolPath(name)));
  if (ctx.output == OutputFormat::kJson) {
    PrintJson(ctx.out, pool);
  } else {
    ctx.out << "pool " << name
            << " is being deleted: its instances and network go away in the background; the share is kept\n";
  }
  return Status::Ok();
}

Status InstanceList(const CommandContext& ctx, const std::string& pool) {
  std::string target = "/v1/instances";
  if (!pool.empty()) target += "?pool=" + PercentEncode(pool);
  DSP_ASSIGN_OR_RETURN(Json answer, ctx.api.Get(target));
  if (ctx.output == OutputFormat::kJson) {
    PrintJson(ctx.out, answer);
    return Status::Ok();
  }
  const Json& instances = JsonArray(answer, "instances");
  if (instances.empty()) {
    ctx.out << (pool.empty() ? "No instances.\n" : "No instances in pool " + pool + ".\n");
    return Status::Ok();
  }
  ctx.out << InstanceTable(instances, /*with_pool=*/pool.empty(), ctx.clock.Now()).Render();
  return Status::Ok();
}

Status InstanceDrain(const CommandContext& ctx, const std::string& id, bool draining) {
  std::string target = "/v1/instances/" + PercentEncode(id) + (draining ? "/drain" : "/undrain");
  DSP_ASSIGN_OR_RETURN(Json instance, ctx.api.Call("POST", target));
  if (ctx.output == OutputFormat::kJson) {
    PrintJson(ctx.out, instance);
  } else if (draining) {
    ctx.out << "instance " << id << " draining: it gets no new connections; open ones go on\n";
  } else {
    ctx.out << "instance " << id << " back in rotation\n";
  }
  return Status::Ok();
}

}  // namespace dspool
