#include "model/agent_config.h"

#include "model/ipv4.h"

namespace dspool {

Json AgentConfigToJson(const AgentConfig& c) {
  Json users = Json::array();
  for (const AgentUser& u : c.users) {
    users.push_back({{"name", u.name},
                     {"uid", u.uid},
                     {"admin", u.admin},
                     {"passwordHash", u.password_hash},
                     {"sshKeys", u.ssh_keys}});
  }
  return {{"instanceId", c.instance_id},
          {"pool", c.pool},
          {"hostname", c.hostname},
          {"address", c.address},
          {"shareMountPath", c.share_mount_path},
          {"users", users},
          {"hostPrivateKey", c.host_private_key},
          {"hostPublicKey", c.host_public_key},
          {"configVersion", c.config_version},
          {"reportIntervalMs", c.report_interval_ms},
          {"jupyter", c.jupyter}};
}

Result<AgentConfig> ParseAgentConfig(const Json& json) {
  AgentConfig c;
  JsonReader r(json, "config");
  r.Required("instanceId", &c.instance_id);
  r.Required("pool", &c.pool);
  r.Required("hostname", &c.hostname);
  r.Optional("address", &c.address);
  r.Required("shareMountPath", &c.share_mount_path);
  r.Required("hostPrivateKey", &c.host_private_key);
  r.Required("hostPublicKey", &c.host_public_key);
  r.Required("configVersion", &c.config_version);
  r.Optional("reportIntervalMs", &c.report_interval_ms);
  r.Optional("jupyter", &c.jupyter);
  const Json* users = r.Raw("users");
  if (users == nullptr || !users->is_array()) {
    r.Fail("users", "expected an array");
  } else {
    for (size_t i = 0; i < users->size(); ++i) {
      JsonReader u((*users)[i], "config.users[" + std::to_string(i) + "]");
      AgentUser user;
      u.Required("name", &user.name);
      u.Required("uid", &user.uid);
      u.Optional("admin", &user.admin);
      u.Optional("passwordHash", &user.password_hash);
      u.Optional("sshKeys", &user.ssh_keys);
      DSP_RETURN_IF_ERROR(u.Finish());
      c.users.push_back(std::move(user));
    }
  }
  DSP_RETURN_IF_ERROR(r.Finish());
  if (!c.address.empty() && !ParseIpv4(c.address)) {
    return InvalidArgument("config.address: '" + c.address + "' is not an IPv4 address");
  }
  if (c.report_interval_ms < 100 || c.report_interval_ms > 600000) {
    return InvalidArgument("config.reportIntervalMs: must be between 100 and 600000");
  }
  return c;
}

}  // namespace dspool
