#include "model/instance.h"

#include <algorithm>

namespace dspool {
namespace {

constexpr std::string_view kPhaseNames[] = {"Pending", "Booting", "Ready", "Failed", "Deleting"};
constexpr std::string_view kScaleInNames[] = {"", "drain", "now"};

}  // namespace

std::string_view InstancePhaseName(InstancePhase phase) { return kPhaseNames[static_cast<int>(phase)]; }

Result<InstancePhase> ParseInstancePhase(std::string_view name) {
  for (size_t i = 0; i < std::size(kPhaseNames); ++i) {
    if (kPhaseNames[i] == name) return static_cast<InstancePhase>(i);
  }
  return InvalidArgument("unknown instance phase '" + std::string(name) + "'");
}

std::string_view ScaleInName(ScaleIn s) { return kScaleInNames[static_cast<int>(s)]; }

Json InstanceToJson(const Instance& i) {
  Json j = {
      {"id", i.id.value()},
      {"pool", i.pool.value()},
      {"index", i.index},
      {"phase", InstancePhaseName(i.phase)},
      {"reason", i.reason},
      {"address", i.address},
      {"createdAt", ToUnixMillis(i.created_at)},
      {"phaseSince", ToUnixMillis(i.phase_since)},
      {"draining", i.draining},
  };
  if (i.scale_in != ScaleIn::kNo) j["scaleIn"] = ScaleInName(i.scale_in);
  if (i.standby) j["standby"] = true;
  return j;
}

Result<Instance> InstanceFromJson(const Json& json) {
  Instance i;
  try {
    i.id = InstanceId(json.at("id").get<std::string>());
    i.pool = PoolName(json.at("pool").get<std::string>());
    i.index = json.at("index").get<int64_t>();
    DSP_ASSIGN_OR_RETURN(i.phase, ParseInstancePhase(json.at("phase").get<std::string>()));
    i.reason = json.at("reason").get<std::string>();
    i.address = json.at("address").get<std::string>();
    i.created_at = FromUnixMillis(json.at("createdAt").get<int64_t>());
    i.phase_since = FromUnixMillis(json.at("phaseSince").get<int64_t>());
    if (json.contains("draining")) i.draining = json.at("draining").get<bool>();
    if (json.contains("standby")) i.standby = json.at("standby").get<bool>();
    if (json.contains("scaleIn")) {
      std::string name = json.at("scaleIn").get<std::string>();
      auto it = std::find(std::begin(kScaleInNames) + 1, std::end(kScaleInNames), name);
      if (it == std::end(kScaleInNames)) return Internal("stored instance has an unknown scaleIn '" + name + "'");
      i.scale_in = static_cast<ScaleIn>(it - std::begin(kScaleInNames));
    }
  } catch (const Json::exception& e) {
    return Internal(std::string("stored instance is malformed: ") + e.what());
  }
  return i;
}

Json InstanceReportToJson(const InstanceReport& r) {
  Json j = {
      {"receivedAt", ToUnixMillis(r.received_at)},
      {"sshdListening", r.sshd_listening},
      {"memoryLimitBytes", r.memory_limit_bytes},
      {"sshSessions", r.ssh_sessions},
      {"notebookServers", r.notebook_servers},
      {"usersRendered", r.users_rendered},
  };
  // Absent when not known yet, rather than a misleading 0.
  if (r.cpu_percent) j["cpuPercent"] = *r.cpu_percent;
  if (r.memory_used_bytes) j["memoryUsedBytes"] = *r.memory_used_bytes;
  if (!r.notebook_exits.empty()) {
    Json exits = Json::array();
    for (const NotebookExit& e : r.notebook_exits) exits.push_back(NotebookExitToJson(e));
    j["notebookExits"] = exits;
  }
  if (!r.extensions.empty()) {
    Json list = Json::array();
    for (const ExtensionStatus& e : r.extensions) list.push_back(ExtensionStatusToJson(e));
    j["extensions"] = list;
  }
  return j;
}

Json InstanceHealthToJson(const InstanceHealth& h) {
  return {{"state", h.state}, {"inRotation", h.in_rotation}, {"connections", h.connections}};
}

Result<InstanceReport> ParseInstanceReport(const Json& json) {
  InstanceReport r;
  JsonReader reader(json, "report");
  reader.Optional("sshdListening", &r.sshd_listening);
  int64_t cpu_permille = -1, memory_used = -1;
  reader.Optional("cpuPermille", &cpu_permille);
  reader.Optional("memoryUsedBytes", &memory_used);
  reader.Optional("memoryLimitBytes", &r.memory_limit_bytes);
  reader.Optional("sshSessions", &r.ssh_sessions);
  reader.Optional("notebookServers", &r.notebook_servers);
  reader.Optional("usersRendered", &r.users_rendered);
  const Json* exits = reader.Raw("notebookExits");
  if (exits != nullptr && !exits->is_array()) reader.Fail("notebookExits", "expected an array");
  const Json* extensions = reader.Raw("extensions");
  if (extensions != nullptr && (!extensions->is_array() || extensions->size() > kMaxExtensions)) {
    reader.Fail("extensions", "expected an array of at most " + std::to_string(kMaxExtensions) + " statuses");
  }
  DSP_RETURN_IF_ERROR(reader.Finish());
  for (size_t i = 0; extensions != nullptr && i < extensions->size(); ++i) {
    const std::string path = "report.extensions[" + std::to_string(i) + "]";
    DSP_ASSIGN_OR_RETURN(ExtensionStatus e, ParseExtensionStatus((*extensions)[i], path));
    if (e.message.size() > kMaxExtensionMessage) {
      return InvalidArgument(path + ".message: longer than " + std::to_string(kMaxExtensionMessage) + " bytes");
    }
    r.extensions.push_back(std::move(e));
  }
  if (exits != nullptr) {
    // The agent keeps at most kMaxNotebookExits; more is not an agent of ours.
    if (exits->size() > kMaxNotebookExits) {
      return InvalidArgument("report.notebookExits: more than " + std::to_string(kMaxNotebookExits) + " entries");
    }
    for (size_t i = 0; i < exits->size(); ++i) {
      DSP_ASSIGN_OR_RETURN(NotebookExit e,
                           ParseNotebookExit((*exits)[i], "report.notebookExits[" + std::to_string(i) + "]"));
      r.notebook_exits.push_back(std::move(e));
    }
  }
  if ((json.contains("cpuPermille") && cpu_permille < 0) || (json.contains("memoryUsedBytes") && memory_used < 0) ||
      r.memory_limit_bytes < 0 || r.ssh_sessions < 0 || r.notebook_servers < 0) {
    return InvalidArgument("report: counters must not be negative");
  }
  if (cpu_permille >= 0) r.cpu_percent = static_cast<double>(cpu_permille) / 10.0;
  if (memory_used >= 0) r.memory_used_bytes = memory_used;
  return r;
}

Provisioning InstanceProvisioned(const std::vector<std::string>& steps, const InstanceReport& report) {
  Provisioning out;
  size_t succeeded = 0;
  for (const std::string& name : steps) {
    auto it = std::find_if(report.extensions.begin(), report.extensions.end(),
                           [&](const ExtensionStatus& s) { return s.name == name; });
    if (it == report.extensions.end()) continue;
    if (it->state == ExtensionState::kFailed) {
      out.failure = (name == kCustomDataName ? "customData" : "extension '" + name + "'") + " failed: " + it->message;
      return out;
    }
    succeeded += it->state == ExtensionState::kSucceeded;
  }
  out.done = succeeded == steps.size();
  return out;
}

}  // namespace dspool
