// Extension: a script a pool runs as root in each new instance, in Azure's
// form (a scale set's virtualMachineProfile.extensionProfile.extensions[]):
// the Linux CustomScript extensions, the only kind this host runs.
//
//   {"name": "filesextension",
//    "properties": {"publisher": "Microsoft.Azure.Extensions", "type": "CustomScript",
//                   "typeHandlerVersion": "2.0",
//                   "settings": {"fileUris": ["https://..."], "commandToExecute": "bash x.sh"},
//                   "protectedSettings": {"commandToExecute": "..."}}}
//
// The server fetches fileUris once, when the pool is made; an instance's
// agent writes them into Azure's download directory and runs the command
// there before the instance is Ready (docs/extensions.md). Protected
// settings are secrets: kept in the server's root-only state, sent only
// over the instance's own channel, and never in an answer, a log or argv.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "base/result.h"
#include "model/json_reader.h"

namespace dspool {

// A pool's customData (a scale set's osProfile.customData): base64 of a
// shell script ("#!..."), run once as root in each new instance before its
// extensions, as cloud-init runs that form of it. Like protected settings,
// a secret. Other forms of cloud-init data are refused.
inline constexpr const char* kCustomDataName = "customData";
inline constexpr size_t kMaxCustomDataBase64 = 87380;  // Azure's: 64 KiB of data
// The script's text; errors (InvalidArgument) name `path`.
Result<std::string> DecodeCustomData(const std::string& base64, const std::string& path);

// The two kinds, as Azure names them: CustomScript 2.x and its predecessor
// CustomScriptForLinux 1.x.
inline constexpr const char* kCustomScriptPublisher = "Microsoft.Azure.Extensions";
inline constexpr const char* kCustomScriptType = "CustomScript";
inline constexpr const char* kCustomScriptForLinuxPublisher = "Microsoft.OSTCExtensions";
inline constexpr const char* kCustomScriptForLinuxType = "CustomScriptForLinux";

inline constexpr size_t kMaxExtensions = 10;
inline constexpr size_t kMaxExtensionFiles = 50;
// All of a pool's fetched files together; more is refused at creation.
// (In base64 they must fit in one answer to the agent: http/client.h's
// 64 MiB.)
inline constexpr size_t kMaxExtensionBytes = 32u << 20;
// As Azure's CustomScript: a script running longer fails.
inline constexpr int64_t kExtensionTimeoutMinutes = 90;
// A status's message (the script's output tails): the agent keeps it under this.
inline constexpr size_t kMaxExtensionMessage = 8192;

// A fileUri may also be a path relative to the template that deploys the
// pool ("scripts/setup.sh"): segments of letters, digits, '-', '_' and '.',
// none of them "." or "..", at most 1024 characters. A deployment resolves
// it next to its template (docs/extensions.md): joined with the template's
// URL, or read from the files the request sent with a local template.
inline constexpr size_t kMaxRelativeFileUri = 1024;
bool IsRelativeFileUri(const std::string& uri);
// `relative` next to the template at `template_url` (an http or https URL):
// the URL's directory, `relative`, then the URL's query, so a SAS token
// reaches the file too, as ARM does for a linked template's relativePath.
std::string ResolveNextTo(const std::string& template_url, const std::string& relative);

// The files a deployment of a local template sent for its relative
// fileUris, by relative path; at most kMaxArtifactBytes in all.
using ExtensionArtifacts = std::map<std::string, std::string>;
inline constexpr size_t kMaxArtifactBytes = 8u << 20;

// The settings a CustomScript takes, public or protected. Exactly one of
// `command` and `script` is given, in either.
struct ScriptSettings {
  std::vector<std::string> file_uris;
  std::string command;  // commandToExecute: run by /bin/sh in the download directory
  std::string script;   // base64 of a script, run by /bin/sh (CustomScript 2 only)
  bool empty() const { return file_uris.empty() && command.empty() && script.empty(); }
  friend bool operator==(const ScriptSettings&, const ScriptSettings&) = default;
};

struct ExtensionSpec {
  std::string name;
  std::string publisher;
  std::string type;
  std::string type_handler_version;
  bool auto_upgrade_minor_version = false;  // accepted; the script runs as given
  ScriptSettings settings;
  ScriptSettings protected_settings;  // secret
  bool skip_dos2unix = false;         // settings.skipDos2Unix
  int64_t timestamp = 0;              // settings.timestamp: a new value runs the script again on new instances
  // The file's name in the download directory for each of file_uris then
  // protected_settings.file_uris: the URI path's last segment, as Azure names it.
  std::vector<std::string> FileNames() const;
  // What /bin/sh runs: commandToExecute, or the script decoded.
  std::string CommandText() const;
  friend bool operator==(const ExtensionSpec&, const ExtensionSpec&) = default;
};

// `json` is the extensions array at `path` ("extensions" in a pool spec).
// Errors are InvalidArgument naming the path ("extensions[0].properties.
// settings.fileUris[1]: ..."). Unknown fields are errors.
Result<std::vector<ExtensionSpec>> ParseExtensions(const Json& json, const std::string& path);

// The relative fileUris of `extensions` (public and protected) that
// `artifacts` does not have, each once, in order.
std::vector<std::string> MissingArtifacts(const std::vector<ExtensionSpec>& extensions,
                                          const ExtensionArtifacts& artifacts);

// Protected settings are written as they are (the server's state) or as
// "[secure]" (answers).
enum class Secrets { kInclude, kRedact };
Json ExtensionsToJson(const std::vector<ExtensionSpec>& extensions, Secrets secrets);

// A fetched file, for an instance's download directory.
struct ExtensionFile {
  std::string name;
  std::string data;
  friend bool operator==(const ExtensionFile&, const ExtensionFile&) = default;
};

// What an agent runs (GET /v1/agent/extensions): the pool's customData
// script, and its extensions each with its files. Secret: only ever on the
// instance's channel.
struct AgentExtension {
  ExtensionSpec spec;
  std::vector<ExtensionFile> files;
};
struct AgentProvisioning {
  std::string custom_data;  // base64, as the pool spec has it; empty: none
  std::vector<AgentExtension> extensions;
};
Json AgentProvisioningToJson(const AgentProvisioning& provisioning);
Result<AgentProvisioning> ParseAgentProvisioning(const Json& json);

// An extension's state on one instance, as the agent reports it and
// `instance show` shows it (Azure's instance view: provisioning state and
// the script's message).
enum class ExtensionState { kTransitioning, kSucceeded, kFailed };
std::string_view ExtensionStateName(ExtensionState state);  // "Transitioning", "Succeeded", "Failed"

struct ExtensionStatus {
  std::string name;
  ExtensionState state = ExtensionState::kTransitioning;
  std::string message;  // Azure's: "Enable succeeded: ..." with the script's output tails
  friend bool operator==(const ExtensionStatus&, const ExtensionStatus&) = default;
};
Json ExtensionStatusToJson(const ExtensionStatus& status);
Result<ExtensionStatus> ParseExtensionStatus(const Json& json, const std::string& path);

}  // namespace dspool
