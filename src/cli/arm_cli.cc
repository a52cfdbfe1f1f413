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
    CLI::Option* rollback =
        dcreate
            ->add_option("--rollback-on-error", f->deployment.rollback_to,
                         "On failure, deploy again the named deployment, or without a name the group's last "
                         "successful one")
            ->expected(0, 1);
    dcreate->callback([&action, f, warn, rollback] {
      f->deployment.rollback_on_error = rollback->count() > 0;
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

void AddStorageCommands(CLI::App& app, ClientAction& action) {
  auto f = std::make_shared<StorageArgs>();
  // Registers `cmd` to run `run` on the flags.
  auto on = [&action, f](CLI::App* cmd, Status (*run)(const CommandContext&, const StorageArgs&)) {
    cmd->callback([&action, f, run] { action = [f, run](const CommandContext& c) { return run(c, *f); }; });
  };
  auto group_option = [f](CLI::App* cmd, bool required) {
    CLI::Option* o = cmd->add_option("-g,--resource-group", f->group,
                                     required ? "Name of the resource group"
                                              : "Name of the resource group (default: the account's)");
    if (required) o->required();
  };

  CLI::App* storage = app.add_subcommand("storage", "Storage accounts and file shares, as `az storage` has them");
  storage->require_subcommand(1);

  // ---- storage account ----
  CLI::App* account = storage->add_subcommand("account", "Storage accounts");
  account->require_subcommand(1);
  CLI::App* create = account->add_subcommand("create", "Create a storage account (two new keys), or update its tags");
  create->add_option("-n,--name", f->account, "The account's name: 3-24 lower-case letters and digits")->required();
  group_option(create, true);
  create->add_option("-l,--location", f->location, "Location (default: the group's)");
  create->add_option("--sku", f->sku, "Standard_LRS, Premium_LRS, ...")->capture_default_str();
  create->add_option("--kind", f->kind, "StorageV2, FileStorage, ...")->capture_default_str();
  create->add_option("--tags", f->tags, "Space-separated tags: key[=value]")->take_all();
  on(create, StorageAccountCreate);
  CLI::App* list = account->add_subcommand("list", "List storage accounts");
  list->add_option("-g,--resource-group", f->group, "Only this group's");
  on(list, StorageAccountList);
  CLI::App* show = account->add_subcommand("show", "Show a storage account (never its keys)");
  show->add_option("-n,--name", f->account, "The account's name")->required();
  group_option(show, false);
  on(show, StorageAccountShow);
  CLI::App* del = account->add_subcommand("delete", "Delete a storage account; its shares are kept, deleted");
  del->add_option("-n,--name", f->account, "The account's name")->required();
  group_option(del, false);
  del->add_flag("-y,--yes", f->yes, "Do not prompt for confirmation");
  on(del, StorageAccountDelete);
  CLI::App* keys = account->add_subcommand("keys", "The account's keys");
  keys->require_subcommand(1);
  CLI::App* klist = keys->add_subcommand("list", "List the account's two keys (an event records who read them)");
  klist->add_option("-n,--account-name", f->account, "The account's name")->required();
  group_option(klist, false);
  on(klist, StorageAccountKeysList);
  CLI::App* renew = keys->add_subcommand("renew", "Give a key a new value: the old one mounts nothing from now on");
  renew->add_option("-n,--account-name", f->account, "The account's name")->required();
  group_option(renew, false);
  renew->add_option("--key", f->key, "primary or secondary")->required();
  on(renew, StorageAccountKeysRenew);

  // ---- storage share (data plane) and storage share-rm (management) ----
  CLI::App* share = storage->add_subcommand("share", "File shares of an account (az's data-plane verbs)");
  share->require_subcommand(1);
  auto share_flags = [f](CLI::App* cmd, bool named) {
    if (named) cmd->add_option("-n,--name", f->share, "The share's name")->required();
    cmd->add_option("--account-name", f->account, "The storage account's name")->required();
    cmd->add_option("--account-key", f->account_key, "One of the account's keys (checked when given)");
  };
  CLI::App* screate = share->add_subcommand("create", "Create a file share");
  share_flags(screate, true);
  screate->add_option("-q,--quota", f->quota, "The share's quota in GiB (1-102400; default 5120)");
  screate->add_option("--metadata", f->metadata, "Space-separated key=value pairs")->take_all();
  screate->add_flag("--fail-on-exist", f->fail_on_exist, "Fail if the share exists");
  screate->callback([&action, f] {
    action = [f](const CommandContext& c) { return StorageShareCreate(c, *f, false); };
  });
  CLI::App* slist = share->add_subcommand("list", "List the account's file shares");
  share_flags(slist, false);
  on(slist, StorageShareList);
  CLI::App* sshow = share->add_subcommand("show", "Show a file share");
  share_flags(sshow, true);
  on(sshow, StorageShareShow);
  CLI::App* sexists = share->add_subcommand("exists", "Check whether a file share exists");
  share_flags(sexists, true);
  on(sexists, StorageShareExists);
  CLI::App* sdelete = share->add_subcommand("delete", "Delete a file share (kept, deleted, for the retention period)");
  share_flags(sdelete, true);
  sdelete->add_flag("--fail-not-exist", f->fail_not_exist, "Fail if the share does not exist");
  sdelete->callback([&action, f] {
    action = [f](const CommandContext& c) { return StorageShareDelete(c, *f, false); };
  });

  CLI::App* rm = storage->add_subcommand("share-rm", "File shares of an account (az's management verbs)");
  rm->require_subcommand(1);
  auto rm_flags = [f, group_option](CLI::App* cmd, bool named) {
    if (named) cmd->add_option("-n,--name", f->share, "The share's name")->required();
    cmd->add_option("--storage-account", f->account, "The storage account's name")->required();
    group_option(cmd, false);
  };
  CLI::App* rcreate = rm->add_subcommand("create", "Create a file share, or change its quota");
  rm_flags(rcreate, true);
  rcreate->add_option("-q,--quota", f->quota, "The share's quota in GiB (1-102400; default 5120)");
  rcreate->add_option("--enabled-protocols", f->protocol, "SMB (default) or NFS")
      ->check(CLI::IsMember({"SMB", "NFS"}));
  rcreate->add_option("--metadata", f->metadata, "Space-separated key=value pairs")->take_all();
  rcreate->callback([&action, f] {
    action = [f](const CommandContext& c) { return StorageShareCreate(c, *f, true); };
  });
  CLI::App* rlist = rm->add_subcommand("list", "List the account's file shares");
  rm_flags(rlist, false);
  rlist->add_flag("--include-deleted", f->include_deleted, "List the deleted shares too, with their versions");
  on(rlist, StorageShareList);
  CLI::App* rshow = rm->add_subcommand("show", "Show a file share");
  rm_flags(rshow, true);
  on(rshow, StorageShareShow);
  CLI::App* rdelete = rm->add_subcommand("delete", "Delete a file share (kept, deleted, for the retention period)");
  rm_flags(rdelete, true);
  rdelete->add_flag("-y,--yes", f->yes, "Do not prompt for confirmation");
  rdelete->callback([&action, f] {
    action = [f](const CommandContext& c) { return StorageShareDelete(c, *f, true); };
  });
  CLI::App* restore = rm->add_subcommand("restore", "Restore a deleted file share, its files and all");
  rm_flags(restore, true);
  restore->add_option("--deleted-version", f->deleted_version,
                      "The deleted share's version (`share-rm list --include-deleted` shows it)")
      ->required();
  on(restore, StorageShareRestore);
}

}  // namespace dspool
