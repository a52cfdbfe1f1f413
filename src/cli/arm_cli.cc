#include "cli/arm_cli.h"

#include <memory>

namespace dspool {
namespace {

struct ArmFlags {
  std::string name, location;
  std::vector<std::string> tags;
  bool yes = false, no_wait = false;
  DeploymentArgs deployment;
};

// -g/--resource-group and -n/--name, as every deployment verb takes them.
void AddGroupAndName(CLI::App* cmd, ArmFlags& f, bool name_required) {
  cmd->add_option("-g,--resource-group", f.deployment.group, "Name of the resource group")->required();
  CLI::Option* name = cmd->add_option("-n,--name", f.deployment.name, "The deployment name");
  if (name_required) name->required();
}

// The flags of create, validate and what-if.
void AddTemplateFlags(CLI::App* cmd, ArmFlags& f) {
  AddGroupAndName(cmd, f, false);
  cmd->add_option("-f,--template-file", f.deployment.template_file, "A template file (JSON)")->type_name("FILE");
  cmd->add_option("-u,--template-uri", f.deployment.template_uri, "The template's URI: http, https or file")
      ->type_name("URI");
  cmd->add_option("-p,--parameters", f.deployment.parameters,
                  "Parameters: @FILE, a file's path, inline JSON, KEY=VALUE or KEY=@FILE; repeatable, later ones "
                  "win")
      ->type_name("PARAMS")
      ->take_all()
      ->allow_extra_args(true);
  cmd->add_option("--mode", f.deployment.mode, "Incremental or Complete (deletes the group's other resources)")
      ->check(CLI::IsMember({"Incremental", "Complete"}))
      ->capture_default_str();
}

}  // namespace

void AddArmCommands(CLI::App& app, ClientAction& action) {
  auto f = std::make_shared<ArmFlags>();

  // ---- group ----
  CLI::App* group = app.add_subcommand("group", "Resource groups, as `az group` has them");
  group->require_subcommand(1);
  CLI::App* create = group->add_subcommand("create", "Create a resource group, or update its tags");
  create->add_option("-n,-g,--name,--resource-group", f->name, "Name of the new resource group")->required();
  create->add_option("-l,--location", f->location, "Location, e.g. local")->required();
  create->add_option("--tags", f->tags, "Space-separated tags: key[=value]")->take_all();
  create->callback([&action, f] { action = [f](const CommandContext& c) { return GroupCreate(c, f->name, f->location, f->tags); }; });
  group->add_subcommand("list", "List resource groups")->callback([&action] { action = GroupList; });
  CLI::App* show = group->add_subcommand("show", "Get a resource group");
  show->add_option("-n,-g,--name,--resource-group", f->name, "Name of the resource group")->required();
  show->callback([&action, f] { action = [f](const CommandContext& c) { return GroupShow(c, f->name); }; });
  CLI::App* exists = group->add_subcommand("exists", "Check if a resource group exists (prints true or false)");
  exists->add_option("-n,-g,--name,--resource-group", f->name, "Name of the resource group")->required();
  exists->callback([&action, f] { action = [f](const CommandContext& c) { return GroupExists(c, f->name); }; });
  CLI::App* del = group->add_subcommand("delete", "Delete a resource group and every resource in it");
  del->add_option("-n,-g,--name,--resource-group", f->name, "Name of the resource group")->required();
  del->add_flag("-y,--yes", f->yes, "Do not prompt for confirmation");
  del->add_flag("--no-wait", f->no_wait, "Do not wait (the group is gone when the command returns; its pools go in the background)");
  del->callback([&action, f] { action = [f](const CommandContext& c) { return GroupDelete(c, f->name, f->yes); }; });

  // ---- deployment group, and the deprecated group deployment ----
  auto add_deployment_verbs = [&](CLI::App* parent, bool deprecated) {
    const std::string note = deprecated ? " (deprecated: use `deployment group`)" : "";
    auto warn = [deprecated](const std::string& verb, ClientAction run) -> ClientAction {
      if (!deprecated) return run;
      return [verb, run](const CommandContext& c) {
        c.err << "WARNING: This command is deprecated and will be removed in a future release. Use 'dspool "
                 "deployment group " << verb << "' instead.\n";
        return run(c);
      };
    };
    CLI::App* dcreate = parent->add_subcommand("create", "Start a deployment at resource group" + note);
    AddTemplateFlags(dcreate, *f);
    dcreate->add_flag("--no-wait", f->deployment.no_wait, "Do not wait for the deployment to finish");
    dcreate->add_flag("--what-if,-w", f->deployment.what_if, "Show what the deployment would change, and stop");
    dcreate->add_flag("--confirm-with-what-if,-c", f->deployment.confirm_with_what_if,
                      "Show what the deployment would change, and ask before deploying");
    dcreate->add_flag("--rollback-on-error", f->deployment.rollback_on_error, "Not supported yet");
    dcreate->callback([&action, f, warn] {
      action = warn("create", [f](const CommandContext& c) { return DeploymentCreate(c, f->deployment); });
    });
    CLI::App* validate = parent->add_subcommand("validate", "Validate whether a template is valid" + note);
    AddTemplateFlags(validate, *f);
    validate->callback([&action, f, warn] {
      action = warn("validate", [f](const CommandContext& c) { return DeploymentValidate(c, f->deployment); });
    });
    if (!deprecated) {
      CLI::App* what_if = parent->add_subcommand("what-if", "Show what a deployment would change");
      AddTemplateFlags(what_if, *f);
      what_if->callback([&action, f] {
        action = [f](const CommandContext& c) { return DeploymentWhatIf(c, f->deployment); };
      });
      CLI::App* cancel = parent->add_subcommand("cancel", "Cancel a running deployment");
      AddGroupAndName(cancel, *f, true);
      cancel->callback([&action, f] {
        action = [f](const CommandContext& c) { return DeploymentCancel(c, f->deployment.group, f->deployment.name); };
      });
    }
    CLI::App* dshow = parent->add_subcommand("show", "Show a deployment" + note);
    AddGroupAndName(dshow, *f, true);
    dshow->callback([&action, f, warn] {
      action = warn("show", [f](const CommandContext& c) { return DeploymentShow(c, f->deployment.group, f->deployment.name); });
    });
    CLI::App* dlist = parent->add_subcommand("list", "List the deployments of a resource group" + note);
    dlist->add_option("-g,--resource-group", f->deployment.group, "Name of the resource group")->required();
    dlist->callback([&action, f, warn] {
      action = warn("list", [f](const CommandContext& c) { return DeploymentList(c, f->deployment.group); });
    });
    CLI::App* ddelete = parent->add_subcommand("delete", "Delete a deployment's record (its resources stay)" + note);
    AddGroupAndName(ddelete, *f, true);
    ddelete->callback([&action, f, warn] {
      action = warn("delete", [f](const CommandContext& c) { return DeploymentDelete(c, f->deployment.group, f->deployment.name); });
    });
  };
  CLI::App* deployment = app.add_subcommand("deployment", "Template deployments, as `az deployment` has them");
  deployment->require_subcommand(1);
  CLI::App* at_group = deployment->add_subcommand("group", "Deployments at resource group");
  at_group->require_subcommand(1);
  add_deployment_verbs(at_group, false);
  CLI::App* operation = deployment->add_subcommand("operation", "Deployment operations");
  operation->require_subcommand(1);
  CLI::App* operation_group = operation->add_subcommand("group", "Operations of deployments at resource group");
  operation_group->require_subcommand(1);
  CLI::App* olist = operation_group->add_subcommand("list", "List a deployment's operations, one per resource");
  AddGroupAndName(olist, *f, true);
  olist->callback([&action, f] {
    action = [f](const CommandContext& c) {
      return DeploymentOperationList(c, f->deployment.group, f->deployment.name);
    };
  });
  CLI::App* old = group->add_subcommand("deployment", "Deployments (deprecated: use `deployment group`)");
  old->require_subcommand(1);
  add_deployment_verbs(old, true);
}

}  // namespace dspool
