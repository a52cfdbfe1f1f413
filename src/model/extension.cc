#include "model/extension.h"

#include <algorithm>
#include <cctype>
#include <set>

#include "base/strings.h"

namespace dspool {
namespace {

constexpr const char* kSecure = "[secure]";

// A file's name in the download directory (or a directory's, up to `max`).
bool ValidName(const std::string& name, size_t max = 64) {
  if (name.empty() || name.size() > max) return false;
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') return false;
  }
  return name != "." && name != "..";
}

// The last segment of the URI's path, as Azure's CustomScript saves it.
std::string FileNameOf(const std::string& uri) {
  std::string path = uri.substr(0, uri.find_first_of("?#"));
  if (size_t scheme = path.find("://"); scheme != std::string::npos) {
    size_t slash = path.find('/', scheme + 3);
    path = slash == std::string::npos ? "" : path.substr(slash);
  }
  return path.substr(path.rfind('/') + 1);
}

void ReadSettings(JsonReader& r, ScriptSettings* out, bool v2, bool is_protected) {
  r.Optional("fileUris", &out->file_uris);
  r.Optional("commandToExecute", &out->command);
  if (v2) {
    r.Optional("script", &out->script);
  } else if (r.Has("script")) {
    r.Fail("script", "CustomScriptForLinux takes commandToExecute only; use CustomScript 2.x for a script");
  }
  for (const char* blob : {"storageAccountName", "storageAccountKey"}) {
    if (r.Has(blob)) r.Fail(blob, "fileUris in Azure blob storage cannot be read here; give http(s) URLs");
  }
  if (is_protected && r.Has("managedIdentity")) r.Fail("managedIdentity", "managed identities do not exist on this host");
  for (size_t i = 0; i < out->file_uris.size(); ++i) {
    const std::string& uri = out->file_uris[i];
    const std::string key = "fileUris[" + std::to_string(i) + "]";
    if (IsRelativeFileUri(uri)) continue;
    if (uri.rfind("http://", 0) != 0 && uri.rfind("https://", 0) != 0) {
      r.Fail(key, "'" + uri +
                      "' is not an http or https URL, nor a path relative to the template (segments of letters, "
                      "digits, '-', '_' and '.'; no '..')");
    } else if (!ValidName(FileNameOf(uri))) {
      r.Fail(key, "'" + uri + "' names no file (its path must end in a file name of letters, digits, '-', '_' and '.')");
    }
  }
  if (!out->script.empty()) {
    auto decoded = Base64Decode(out->script);
    if (!decoded) {
      r.Fail("script", "must be base64");
    } else if (decoded->size() >= 2 && static_cast<unsigned char>((*decoded)[0]) == 0x1f &&
               static_cast<unsigned char>((*decoded)[1]) == 0x8b) {
      r.Fail("script", "a gzip-compressed script is not run here; give it uncompressed");
    }
  }
}

Json SettingsToJson(const ScriptSettings& s) {
  Json out = Json::object();
  if (!s.file_uris.empty()) out["fileUris"] = s.file_uris;
  if (!s.command.empty()) out["commandToExecute"] = s.command;
  if (!s.script.empty()) out["script"] = s.script;
  return out;
}

Result<ExtensionSpec> ParseExtension(const Json& json, const std::string& path) {
  JsonReader r(json, path);
  ExtensionSpec e;
  r.Required("name", &e.name);
  JsonReader props = r.Object("properties", true);
  props.Required("publisher", &e.publisher);
  props.Required("type", &e.type);
  props.Required("typeHandlerVersion", &e.type_handler_version);
  props.Optional("autoUpgradeMinorVersion", &e.auto_upgrade_minor_version);
  DSP_RETURN_IF_ERROR(r.Finish());  // the kind decides what the settings may hold
  if (!ValidName(e.name)) {
    r.Fail("name", "'" + e.name + "' must be 1 to 64 letters, digits, '-', '_' and '.'");
  }
  const bool v2 = e.publisher == kCustomScriptPublisher && e.type == kCustomScriptType;
  const bool v1 = e.publisher == kCustomScriptForLinuxPublisher && e.type == kCustomScriptForLinuxType;
  if (!v1 && !v2) {
    props.Fail("type", "'" + e.publisher + "." + e.type + "' is not run on this host; it runs " + kCustomScriptPublisher +
                           "." + kCustomScriptType + " 2.x and " + kCustomScriptForLinuxPublisher + "." +
                           kCustomScriptForLinuxType + " 1.x");
  } else if (e.type_handler_version.rfind(v2 ? "2." : "1.", 0) != 0 ||
             e.type_handler_version.find_first_not_of("0123456789.") != std::string::npos) {
    props.Fail("typeHandlerVersion", "'" + e.type_handler_version + "': " + e.type + " is version " +
                                         (v2 ? "2.x (2.0, 2.1)" : "1.x (1.5)"));
  }
  JsonReader settings = props.Object("settings");
  ReadSettings(settings, &e.settings, v2, false);
  settings.Optional("skipDos2Unix", &e.skip_dos2unix);
  settings.Optional("timestamp", &e.timestamp);
  if (!v2) {
    bool dns_check = false;  // accepted: instances use the host's resolver, there is nothing to check
    settings.Optional("enableInternalDNSCheck", &dns_check);
  }
  JsonReader secret = props.Object("protectedSettings");
  ReadSettings(secret, &e.protected_settings, v2, true);
  settings.Finish().IgnoreError();  // every error lands in r's
  secret.Finish().IgnoreError();
  props.Finish().IgnoreError();
  DSP_RETURN_IF_ERROR(r.Finish());

  const int commands = !e.settings.command.empty() + !e.settings.script.empty() +
                       !e.protected_settings.command.empty() + !e.protected_settings.script.empty();
  if (commands != 1) {
    return InvalidArgument(path + ".properties: give exactly one of commandToExecute" + (v2 ? " and script" : "") +
                           ", in settings or protectedSettings (" + std::to_string(commands) + " given)");
  }
  const std::vector<std::string> names = e.FileNames();
  if (names.size() > kMaxExtensionFiles) {
    return InvalidArgument(path + ".properties: " + std::to_string(names.size()) + " fileUris; at most " +
                           std::to_string(kMaxExtensionFiles));
  }
  std::set<std::string> seen;
  for (const std::string& name : names) {
    if (!seen.insert(name).second) {
      return InvalidArgument(path + ".properties: two fileUris name the file '" + name +
                             "'; each lands in the download directory under its name");
    }
  }
  return e;
}

}  // namespace

bool IsRelativeFileUri(const std::string& uri) {
  if (uri.empty() || uri.size() > kMaxRelativeFileUri) return false;
  const size_t file = uri.rfind('/') + 1;
  for (size_t start = 0, end; start < file; start = end + 1) {
    end = uri.find('/', start);
    if (!ValidName(uri.substr(start, end - start), kMaxRelativeFileUri)) return false;
  }
  return ValidName(uri.substr(file));
}

std::string ResolveNextTo(const std::string& template_url, const std::string& relative) {
  const std::string url = template_url.substr(0, template_url.find('#'));
  const size_t query = url.find('?');
  const std::string path = url.substr(0, query);
  return path.substr(0, path.rfind('/') + 1) + relative + (query == std::string::npos ? "" : url.substr(query));
}

std::vector<std::string> MissingArtifacts(const std::vector<ExtensionSpec>& extensions,
                                          const ExtensionArtifacts& artifacts) {
  std::vector<std::string> missing;
  for (const ExtensionSpec& e : extensions) {
    for (const ScriptSettings* s : {&e.settings, &e.protected_settings}) {
      for (const std::string& uri : s->file_uris) {
        if (IsRelativeFileUri(uri) && !artifacts.count(uri) &&
            std::find(missing.begin(), missing.end(), uri) == missing.end()) {
          missing.push_back(uri);
        }
      }
    }
  }
  return missing;
}

Result<std::string> DecodeCustomData(const std::string& base64, const std::string& path) {
  if (base64.size() > kMaxCustomDataBase64) {
    return InvalidArgument(path + ": " + std::to_string(base64.size()) + " characters; at most " +
                           std::to_string(kMaxCustomDataBase64) + " (64 KiB of data), as on Azure");
  }
  auto script = Base64Decode(base64);
  if (!script) return InvalidArgument(path + ": must be base64");
  if (script->rfind("#!", 0) == 0) return *script;
  std::string why = "must be a shell script starting with #! (cloud-init's script form), the only form run here";
  if (script->rfind("#cloud-config", 0) == 0) why = "#cloud-config is not run here; give a shell script starting with #!";
  if (script->size() >= 2 && static_cast<unsigned char>((*script)[0]) == 0x1f &&
      static_cast<unsigned char>((*script)[1]) == 0x8b) {
    why = "gzip-compressed data is not run here; give the script uncompressed";
  }
  return InvalidArgument(path + ": " + why);
}

std::vector<std::string> ExtensionSpec::FileNames() const {
  std::vector<std::string> out;
  for (const auto* s : {&settings, &protected_settings}) {
    for (const std::string& uri : s->file_uris) out.push_back(FileNameOf(uri));
  }
  return out;
}

std::string ExtensionSpec::CommandText() const {
  for (const auto* s : {&settings, &protected_settings}) {
    if (!s->command.empty()) return s->command;
    if (!s->script.empty()) return Base64Decode(s->script).value_or("");
  }
  return "";
}

Result<std::vector<ExtensionSpec>> ParseExtensions(const Json& json, const std::string& path) {
  if (!json.is_array()) return InvalidArgument(path + ": expected an array of extensions");
  if (json.size() > kMaxExtensions) {
    return InvalidArgument(path + ": " + std::to_string(json.size()) + " extensions; at most " +
                           std::to_string(kMaxExtensions));
  }
  std::vector<ExtensionSpec> out;
  std::set<std::string> names;
  for (size_t i = 0; i < json.size(); ++i) {
    const std::string at = path + "[" + std::to_string(i) + "]";
    DSP_ASSIGN_OR_RETURN(ExtensionSpec e, ParseExtension(json[i], at));
    if (ToLowerAscii(e.name) == ToLowerAscii(kCustomDataName)) {
      return InvalidArgument(at + ".name: '" + e.name + "' is the name of the pool's customData script");
    }
    if (!names.insert(ToLowerAscii(e.name)).second) {
      return InvalidArgument(at + ".name: '" + e.name + "' is the name of an earlier extension");
    }
    for (const ExtensionSpec& before : out) {
      if (before.publisher == e.publisher && before.type == e.type) {
        return InvalidArgument(at + ": a second " + e.type + "; as on Azure, an instance runs one extension of each type");
      }
    }
    out.push_back(std::move(e));
  }
  return out;
}

Json ExtensionsToJson(const std::vector<ExtensionSpec>& extensions, Secrets secrets) {
  Json out = Json::array();
  for (const ExtensionSpec& e : extensions) {
    Json settings = SettingsToJson(e.settings);
    if (e.skip_dos2unix) settings["skipDos2Unix"] = true;
    if (e.timestamp) settings["timestamp"] = e.timestamp;
    Json props = {{"publisher", e.publisher},
                  {"type", e.type},
                  {"typeHandlerVersion", e.type_handler_version},
                  {"autoUpgradeMinorVersion", e.auto_upgrade_minor_version},
                  {"settings", settings}};
    if (!e.protected_settings.empty()) {
      props["protectedSettings"] = secrets == Secrets::kInclude ? SettingsToJson(e.protected_settings) : Json(kSecure);
    }
    out.push_back({{"name", e.name}, {"properties", props}});
  }
  return out;
}

Json AgentProvisioningToJson(const AgentProvisioning& provisioning) {
  const std::vector<AgentExtension>& extensions = provisioning.extensions;
  std::vector<ExtensionSpec> specs;
  for (const AgentExtension& e : extensions) specs.push_back(e.spec);
  Json out = ExtensionsToJson(specs, Secrets::kInclude);
  for (size_t i = 0; i < extensions.size(); ++i) {
    Json files = Json::array();
    for (const ExtensionFile& f : extensions[i].files) files.push_back({{"name", f.name}, {"data", Base64Encode(f.data)}});
    out[i]["files"] = files;
  }
  Json answer = {{"extensions", out}};
  if (!provisioning.custom_data.empty()) answer["customData"] = provisioning.custom_data;
  return answer;
}

Result<AgentProvisioning> ParseAgentProvisioning(const Json& json) {
  JsonReader r(json, "");
  AgentProvisioning provisioning;
  r.Optional("customData", &provisioning.custom_data);
  const Json* list = r.Raw("extensions");
  DSP_RETURN_IF_ERROR(r.Finish());
  if (!provisioning.custom_data.empty()) {
    DSP_RETURN_IF_ERROR(DecodeCustomData(provisioning.custom_data, "customData").status());
  }
  if (!list || !list->is_array()) return InvalidArgument("extensions: expected an array");
  std::vector<AgentExtension>& out = provisioning.extensions;
  for (size_t i = 0; i < list->size(); ++i) {
    const std::string at = "extensions[" + std::to_string(i) + "]";
    Json spec = (*list)[i];
    if (!spec.is_object()) return InvalidArgument(at + ": expected an object");
    Json files = spec.contains("files") ? spec["files"] : Json::array();
    spec.erase("files");
    DSP_ASSIGN_OR_RETURN(std::vector<ExtensionSpec> parsed, ParseExtensions(Json::array({spec}), at));
    AgentExtension e{std::move(parsed[0]), {}};
    const std::vector<std::string> names = e.spec.FileNames();
    if (!files.is_array() || files.size() != names.size()) {
      return InvalidArgument(at + ".files: expected one file for each of the " + std::to_string(names.size()) +
                             " fileUris");
    }
    for (size_t k = 0; k < files.size(); ++k) {
      JsonReader f(files[k], at + ".files[" + std::to_string(k) + "]");
      ExtensionFile file;
      std::string data;
      f.Required("name", &file.name);
      f.Required("data", &data);
      DSP_RETURN_IF_ERROR(f.Finish());
      auto decoded = Base64Decode(data);
      if (file.name != names[k] || !decoded) {
        return InvalidArgument(f.PathOf("") + ": expected '" + names[k] + "' with its data in base64");
      }
      file.data = std::move(*decoded);
      e.files.push_back(std::move(file));
    }
    out.push_back(std::move(e));
  }
  return provisioning;
}

std::string_view ExtensionStateName(ExtensionState state) {
  switch (state) {
    case ExtensionState::kTransitioning: return "Transitioning";
    case ExtensionState::kSucceeded: return "Succeeded";
    case ExtensionState::kFailed: return "Failed";
  }
  return "Transitioning";
}

Json ExtensionStatusToJson(const ExtensionStatus& status) {
  return {{"name", status.name}, {"state", ExtensionStateName(status.state)}, {"message", status.message}};
}

Result<ExtensionStatus> ParseExtensionStatus(const Json& json, const std::string& path) {
  JsonReader r(json, path);
  ExtensionStatus s;
  std::string state;
  r.Required("name", &s.name);
  r.Required("state", &state);
  r.Optional("message", &s.message);
  DSP_RETURN_IF_ERROR(r.Finish());
  for (ExtensionState e : {ExtensionState::kTransitioning, ExtensionState::kSucceeded, ExtensionState::kFailed}) {
    if (state == ExtensionStateName(e)) {
      s.state = e;
      return s;
    }
  }
  return InvalidArgument(r.PathOf("state") + ": '" + state + "' is not Transitioning, Succeeded or Failed");
}

}  // namespace dspool
