// group create|list|show|exists|delete, deployment group
// create|validate|what-if|show|list|delete|cancel, deployment operation group
// list: az's verbs on /v1/groups (docs/api.md), with az's output (JSON by
// default, keys sorted as az prints them; -o table or tsv).
#include <sstream>

#include "cli/az_output.h"
#include "cli/commands.h"
#include "cli/options.h"
#include "http/client.h"
#include "http/message.h"
#include "model/extension.h"
#include "os/fs.h"
#include "template/json_text.h"
#include "template/parameters.h"

namespace dspool {
namespace {

using az::AsJson;
using az::Confirm;
using az::PrintRows;
using az::TagsJson;

std::string GroupPath(const std::string& group) { return "/v1/groups/" + PercentEncode(group); }
std::string DeploymentPath(const std::string& group, const std::string& name) {
  return GroupPath(group) + "/deployments/" + PercentEncode(name);
}

std::vector<std::string> GroupRow(const Json& g) {
  return {JsonString(g, "name"), JsonString(g, "location"),
          JsonString(JsonField(g, "properties"), "provisioningState")};
}

std::vector<std::string> DeploymentRow(const Json& d) {
  const Json& p = JsonField(d, "properties");
  return {JsonString(d, "name"), JsonString(p, "provisioningState"), JsonString(p, "timestamp"), JsonString(p, "mode"),
          JsonString(d, "resourceGroup")};
}

void PrintGroups(const CommandContext& ctx, const Json& groups) {
  if (AsJson(ctx)) return PrintJson(ctx.out, groups);
  std::vector<std::vector<std::string>> rows;
  for (const Json& g : groups) rows.push_back(GroupRow(g));
  PrintRows(ctx, {"Name", "Location", "Status"}, rows);
}

void PrintDeployments(const CommandContext& ctx, const Json& deployments) {
  if (AsJson(ctx)) return PrintJson(ctx.out, deployments);
  std::vector<std::vector<std::string>> rows;
  for (const Json& d : deployments) rows.push_back(DeploymentRow(d));
  PrintRows(ctx, {"Name", "State", "Timestamp", "Mode", "ResourceGroup"}, rows);
}

// One group or deployment: az's JSON object, or a table of one row.
void PrintGroup(const CommandContext& ctx, const Json& g) {
  AsJson(ctx) ? PrintJson(ctx.out, g) : PrintGroups(ctx, Json::array({g}));
}
void PrintDeployment(const CommandContext& ctx, const Json& d) {
  AsJson(ctx) ? PrintJson(ctx.out, d) : PrintDeployments(ctx, Json::array({d}));
}

// A JSON file of the user's, or an http(s) or file: URL: its text.
Result<std::string> ReadTemplateSource(const std::string& source, bool is_uri) {
  if (!is_uri) return ReadFile(source);
  if (source.rfind("file://", 0) == 0) return ReadFile(source.substr(7));
  if (source.rfind("file:", 0) == 0) return ReadFile(source.substr(5));
  if (source.rfind("http://", 0) != 0 && source.rfind("https://", 0) != 0) {
    return InvalidArgument("--template-uri: '" + source + "' is not an http, https or file URL");
  }
  auto text = FetchUrl(source, std::chrono::seconds(30));
  if (!text.ok()) return text.status().WithPrefix("--template-uri");
  return text;
}

// `-p` tokens as az reads them: "@FILE" and a token that names a file are
// the file's text; "K=@FILE" is K with the file's text as its value.
Result<std::vector<arm::ParameterToken>> ReadParameterTokens(const std::vector<std::string>& raw) {
  std::vector<arm::ParameterToken> tokens;
  for (const std::string& token : raw) {
    arm::ParameterToken t;
    if (token.rfind("@", 0) == 0) {
      DSP_ASSIGN_OR_RETURN(std::string text, ReadFile(token.substr(1)));
      t.text = text;
      t.file_text = text;
    } else if (size_t eq = token.find('='); eq != std::string::npos && token.compare(eq + 1, 1, "@") == 0) {
      DSP_ASSIGN_OR_RETURN(std::string text, ReadFile(token.substr(eq + 2)));
      if (!text.empty() && text.back() == '\n') text.pop_back();
      t.text = token.substr(0, eq + 1) + text;
    } else {
      t.text = token;
      if (token.find('=') == std::string::npos && token.find('{') == std::string::npos) {
        if (auto text = ReadFile(token); text.ok()) t.file_text = *text;
      }
    }
    tokens.push_back(std::move(t));
  }
  return tokens;
}

// The request body of a deployment: the template's text, the parameters
// (missing ones asked for on a terminal, all named at once without one).
Result<Json> DeploymentBody(const CommandContext& ctx, const DeploymentArgs& args) {
  if (args.template_file.empty() == args.template_uri.empty()) {
    return InvalidArgument("give one of --template-file/-f and --template-uri/-u");
  }
  const bool is_uri = !args.template_uri.empty();
  const std::string source = is_uri ? args.template_uri : args.template_file;
  DSP_ASSIGN_OR_RETURN(std::string text, ReadTemplateSource(source, is_uri));
  auto doc = arm::ParseJsonDocument(text);
  if (!doc.ok()) return InvalidArgument("Failed to parse '" + source + "', please check whether it is a valid JSON format: " + doc.status().message());
  const arm::Value* declared = doc->value.is_object() ? arm::FindMember(doc->value, "parameters") : nullptr;
  const arm::Value no_parameters = arm::Value::object();
  if (!declared || !declared->is_object()) declared = &no_parameters;

  DSP_ASSIGN_OR_RETURN(std::vector<arm::ParameterToken> tokens, ReadParameterTokens(args.parameters));
  DSP_ASSIGN_OR_RETURN(arm::AssembledParameters assembled, arm::AssembleParameters(tokens, *declared));
  for (const std::string& w : assembled.warnings) ctx.err << "WARNING: " << w << "\n";
  std::vector<std::string> missing = arm::MissingParameters(assembled.values, *declared);
  if (!missing.empty() && ctx.prompt) {
    for (const std::string& name : missing) {
      const arm::Value* p = arm::FindMember(*declared, name);
      const arm::Value* type = p ? arm::FindMember(*p, "type") : nullptr;
      const std::string type_name = type && type->is_string() ? ToLowerAscii(type->get<std::string>()) : "string";
      const bool secret = type_name.rfind("secure", 0) == 0;
      std::optional<std::string> answer =
          ctx.prompt("Please provide " + type_name + " value for '" + name + "' (? for help): ", secret);
      if (!answer) break;
      DSP_ASSIGN_OR_RETURN(arm::Value value, arm::ConvertParameterText(name, *answer, *declared));
      assembled.values[name] = arm::Value{{"value", value}};
    }
    missing = arm::MissingParameters(assembled.values, *declared);
  }
  if (!missing.empty()) {
    std::string list;
    for (const std::string& m : missing) list += (list.empty() ? "" : ", ") + m;
    return InvalidArgument("Missing input parameters: " + list);
  }
  Json body = {{"template", text},
               {"parameters", Json::parse(assembled.values.dump())},
               {"mode", args.mode},
               {"source", source}};
  if (is_uri) body["templateLink"] = args.template_uri;
  return body;
}

// The directory of a local template (--template-file, or a file: URL),
// where its relative fileUris are; nullopt for one from an http(s) URL,
// whose relative fileUris the server finds next to it.
std::optional<std::string> LocalTemplateDir(const DeploymentArgs& args) {
  std::string path = args.template_file;
  if (path.empty()) {
    const std::string& uri = args.template_uri;
    if (uri.rfind("file://", 0) == 0) {
      path = uri.substr(7);
    } else if (uri.rfind("file:", 0) == 0) {
      path = uri.substr(5);
    } else {
      return std::nullopt;
    }
  }
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return std::string(".");
  return slash == 0 ? std::string("/") : path.substr(0, slash);
}

// Sends a deployment request. When the server asks for the files a local
// template's relative fileUris name (MissingTemplateArtifacts: a new pool
// needs them), they are read next to the template and the request is sent
// once more with them in `artifacts`, which `body` keeps for later calls.
Result<Json> CallDeployment(const CommandContext& ctx, const DeploymentArgs& args, const std::string& method,
                            const std::string& target, Json& body) {
  Json error;
  auto answer = ctx.api.Call(method, target, &body, &error);
  const std::optional<std::string> dir = LocalTemplateDir(args);
  if (answer.ok() || !dir || !error.is_object() || error.value("code", "") != "MissingTemplateArtifacts") return answer;
  Json& artifacts = body["artifacts"];
  std::string sent;
  for (const Json& detail : JsonArray(error, "details")) {
    const std::string path = JsonString(detail, "target");
    if (!IsRelativeFileUri(path)) return answer;  // not a file next to the template: the server's error stands
    const std::string file = (*dir == "/" ? "" : *dir) + "/" + path;
    auto data = ReadFile(file);
    if (!data.ok()) {
      return InvalidArgument("the template's fileUri '" + path + "' is relative, so it is read next to the template: " +
                             data.status().message());
    }
    artifacts[path] = Base64Encode(*data);
    sent += (sent.empty() ? "" : ", ") + path;
  }
  ctx.err << "Sending the files next to the template that its fileUris name: " << sent << "\n";
  return ctx.api.Call(method, target, &body);
}

// The deployment's name: given, else the template file's name without its
// extension, as az names it.
std::string DeploymentName(const DeploymentArgs& args) {
  if (!args.name.empty()) return args.name;
  std::string base = args.template_file.empty() ? args.template_uri : args.template_file;
  base = base.substr(base.find_last_of('/') + 1);
  base = base.substr(0, base.find('?'));
  return base.substr(0, base.rfind('.'));
}

void PrintWarnings(const CommandContext& ctx, const Json& answer) {
  for (const Json& w : JsonArray(answer, "warnings")) {
    if (w.is_string()) ctx.err << "WARNING: " << w.get<std::string>() << "\n";
  }
}

Status WhatIfAndPrint(const CommandContext& ctx, const std::string& name, const DeploymentArgs& args, Json& body) {
  DSP_ASSIGN_OR_RETURN(Json changes, CallDeployment(ctx, args, "POST", DeploymentPath(args.group, name) + "/whatIf", body));
  if (AsJson(ctx) && !args.confirm_with_what_if) {
    changes.erase("text");
    PrintJson(ctx.out, changes);
  } else {
    ctx.out << JsonString(changes, "text");
  }
  return Status::Ok();
}

// Follows a running deployment: a line on ctx.err per operation whose state
// changes, until the deployment ends; its final record.
Result<Json> FollowDeployment(const CommandContext& ctx, const std::string& group, const std::string& name) {
  std::map<std::string, std::string> shown;
  while (true) {
    DSP_ASSIGN_OR_RETURN(Json d, ctx.api.Get(DeploymentPath(group, name)));
    DSP_ASSIGN_OR_RETURN(Json ops, ctx.api.Get(DeploymentPath(group, name) + "/operations"));
    for (const Json& op : JsonArray(ops, "value")) {
      const Json& p = JsonField(op, "properties");
      const std::string state = JsonString(p, "provisioningState");
      std::string& last = shown[JsonString(op, "operationId")];
      if (state == last) continue;
      last = state;
      const Json& target = JsonField(p, "targetResource");
      ctx.err << " - " << JsonString(target, "resourceType") << " '" << JsonString(target, "resourceName")
              << "': " << state;
      if (state != "Running" && state != "Accepted") ctx.err << " (" << JsonString(p, "duration") << ")";
      ctx.err << "\n";
    }
    const std::string state = JsonString(JsonField(d, "properties"), "provisioningState");
    if (state == "Succeeded" || state == "Failed" || state == "Canceled") return d;
    if (!ctx.wait(std::chrono::milliseconds(250))) return d;
  }
}

// A failed deployment's error as az prints it: the code and message, then
// each detail's.
Status DeploymentError(const Json& d) {
  const Json& error = JsonField(JsonField(d, "properties"), "error");
  std::string message = JsonString(error, "code") + ": " + JsonString(error, "message");
  for (const Json& detail : JsonArray(error, "details")) {
    message += " " + JsonString(detail, "code") + ": " + JsonString(detail, "message");
  }
  const std::string state = JsonString(JsonField(d, "properties"), "provisioningState");
  return Status(state == "Canceled" ? StatusCode::kAborted : StatusCode::kFailedPrecondition,
                state == "Canceled" ? "the deployment was canceled" : message);
}

}  // namespace

// ---------------------------------------------------------------- groups

Status GroupCreate(const CommandContext& ctx, const std::string& name, const std::string& location,
                   const std::vector<std::string>& tags) {
  Json body = {{"location", location}};
  if (!tags.empty()) body["tags"] = TagsJson(tags);
  DSP_ASSIGN_OR_RETURN(Json g, ctx.api.Call("PUT", GroupPath(name), &body));
  PrintGroup(ctx, g);
  return Status::Ok();
}

Status GroupList(const CommandContext& ctx) {
  DSP_ASSIGN_OR_RETURN(Json list, ctx.api.Get("/v1/groups"));
  PrintGroups(ctx, JsonArray(list, "value"));
  return Status::Ok();
}

Status GroupShow(const CommandContext& ctx, const std::string& name) {
  DSP_ASSIGN_OR_RETURN(Json g, ctx.api.Get(GroupPath(name)));
  PrintGroup(ctx, g);
  return Status::Ok();
}

Status GroupExists(const CommandContext& ctx, const std::string& name) {
  auto g = ctx.api.Get(GroupPath(name));
  if (!g.ok() && g.status().code() != StatusCode::kNotFound) return g.status();
  ctx.out << (g.ok() ? "true" : "false") << "\n";
  return Status::Ok();
}

Status GroupDelete(const CommandContext& ctx, const std::string& name, bool yes) {
  if (!yes) DSP_RETURN_IF_ERROR(Confirm(ctx, "Are you sure you want to perform this operation?", "--yes"));
  return ctx.api.Call("DELETE", GroupPath(name)).status();
}

// ---------------------------------------------------------------- deployments

Status DeploymentCreate(const CommandContext& ctx, const DeploymentArgs& args) {
  DSP_ASSIGN_OR_RETURN(Json body, DeploymentBody(ctx, args));
  if (args.rollback_on_error) {
    body["onErrorDeployment"] = args.rollback_to.empty()
                                    ? Json{{"type", "LastSuccessful"}}
                                    : Json{{"type", "SpecificDeployment"}, {"deploymentName", args.rollback_to}};
  }
  const std::string name = DeploymentName(args);
  if (args.what_if || args.confirm_with_what_if) {
    DSP_RETURN_IF_ERROR(WhatIfAndPrint(ctx, name, args, body));
    if (args.what_if) return Status::Ok();
    DSP_RETURN_IF_ERROR(Confirm(ctx, "Are you sure you want to execute the deployment?", "--yes (or drop --confirm-with-what-if)"));
  }
  DSP_ASSIGN_OR_RETURN(Json started, CallDeployment(ctx, args, "PUT", DeploymentPath(args.group, name), body));
  PrintWarnings(ctx, started);
  started.erase("warnings");
  if (args.no_wait) return Status::Ok();
  DSP_ASSIGN_OR_RETURN(Json d, FollowDeployment(ctx, args.group, name));
  if (JsonString(JsonField(d, "properties"), "provisioningState") != "Succeeded") return DeploymentError(d);
  PrintDeployment(ctx, d);
  return Status::Ok();
}

Status DeploymentValidate(const CommandContext& ctx, const DeploymentArgs& args) {
  DSP_ASSIGN_OR_RETURN(Json body, DeploymentBody(ctx, args));
  DSP_ASSIGN_OR_RETURN(Json d, CallDeployment(ctx, args, "POST",
                                              DeploymentPath(args.group, DeploymentName(args)) + "/validate", body));
  PrintWarnings(ctx, d);
  d.erase("warnings");
  PrintDeployment(ctx, d);
  return Status::Ok();
}

Status DeploymentWhatIf(const CommandContext& ctx, const DeploymentArgs& args) {
  DSP_ASSIGN_OR_RETURN(Json body, DeploymentBody(ctx, args));
  return WhatIfAndPrint(ctx, DeploymentName(args), args, body);
}

Status DeploymentShow(const CommandContext& ctx, const std::string& group, const std::string& name) {
  DSP_ASSIGN_OR_RETURN(Json d, ctx.api.Get(DeploymentPath(group, name)));
  PrintDeployment(ctx, d);
  return Status::Ok();
}

Status DeploymentList(const CommandContext& ctx, const std::string& group) {
  DSP_ASSIGN_OR_RETURN(Json list, ctx.api.Get(GroupPath(group) + "/deployments"));
  PrintDeployments(ctx, JsonArray(list, "value"));
  return Status::Ok();
}

Status DeploymentDelete(const CommandContext& ctx, const std::string& group, const std::string& name) {
  return ctx.api.Call("DELETE", DeploymentPath(group, name)).status();
}

Status DeploymentCancel(const CommandContext& ctx, const std::string& group, const std::string& name) {
  return ctx.api.Call("POST", DeploymentPath(group, name) + "/cancel").status();
}

Status DeploymentOperationList(const CommandContext& ctx, const std::string& group, const std::string& name) {
  DSP_ASSIGN_OR_RETURN(Json list, ctx.api.Get(DeploymentPath(group, name) + "/operations"));
  const Json& ops = JsonArray(list, "value");
  if (AsJson(ctx)) {
    PrintJson(ctx.out, ops);
    return Status::Ok();
  }
  std::vector<std::vector<std::string>> rows;
  for (const Json& op : ops) {
    const Json& p = JsonField(op, "properties");
    const Json& target = JsonField(p, "targetResource");
    rows.push_back({JsonString(p, "provisioningOperation"), JsonString(target, "resourceType"),
                    JsonString(target, "resourceName"), JsonString(p, "provisioningState"),
                    JsonString(p, "statusCode"), JsonString(p, "duration")});
  }
  PrintRows(ctx, {"Operation", "ResourceType", "ResourceName", "State", "StatusCode", "Duration"}, rows);
  return Status::Ok();
}

}  // namespace dspool
