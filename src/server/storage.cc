// Storage accounts' share data on the host (api/storage.h keeps the
// records): <storage_root>/<account>/shares/<share> for a live share,
// <storage_root>/<account>/deleted/<share>/<version> for a deleted one.
// Every directory above the shares' own is root's (0755): an instance
// writes only inside a share it mounted, never where these names are made,
// renamed or removed.
#include "server/pool_server.h"

#include "os/fs.h"

namespace dspool {

std::string PoolServer::ShareDataPath(const std::string& account, const std::string& key) const {
  const std::string base = options_.storage_root + "/" + account;
  const size_t slash = key.find('/');
  if (slash == std::string::npos) return base + "/shares/" + key;
  return base + "/deleted/" + key.substr(0, slash) + "/" + key.substr(slash + 1);
}

namespace {

// Names come from the API, checked (ValidateStorageAccountName,
// ValidateShareName, versions of hex digits); this refuses anything else
// that could leave the storage root.
Status CheckDataName(const std::string& name) {
  if (name.empty() || name == "." || name == ".." || name.find_first_of("/\0", 0, 2) != std::string::npos) {
    return InvalidArgument("share data name '" + name + "' is not a plain name");
  }
  return Status::Ok();
}

Status CheckKey(const std::string& account, const std::string& key) {
  DSP_RETURN_IF_ERROR(CheckDataName(account));
  const size_t slash = key.find('/');
  if (slash == std::string::npos) return CheckDataName(key);
  DSP_RETURN_IF_ERROR(CheckDataName(key.substr(0, slash)));
  return CheckDataName(key.substr(slash + 1));
}

std::string Parent(const std::string& path) { return path.substr(0, path.rfind('/')); }

}  // namespace

Status PoolServer::MakeShareData(const std::string& account, const std::string& key) {
  DSP_RETURN_IF_ERROR(CheckKey(account, key));
  const std::string path = ShareDataPath(account, key);
  DSP_ASSIGN_OR_RETURN(bool exists, PathExists(path));
  if (exists) return AlreadyExists("share data " + path + " exists already");
  DSP_RETURN_IF_ERROR(MakeDirs(Parent(path), 0755));
  return EnsureDir(path, 0755, FileOwner{0, 0});
}

Status PoolServer::MoveShareData(const std::string& account, const std::string& from, const std::string& to) {
  DSP_RETURN_IF_ERROR(CheckKey(account, from));
  DSP_RETURN_IF_ERROR(CheckKey(account, to));
  const std::string target = ShareDataPath(account, to);
  DSP_RETURN_IF_ERROR(MakeDirs(Parent(target), 0755));
  return RenameNoReplace(ShareDataPath(account, from), target);
}

Status PoolServer::RemoveShareData(const std::string& account, const std::string& key) {
  DSP_RETURN_IF_ERROR(CheckKey(account, key));
  return RemoveTree(ShareDataPath(account, key));
}

Status PoolServer::AttachShare(const InstanceId& id, const std::string& account, const std::string& share,
                               const std::string& target, bool read_only) {
  DSP_RETURN_IF_ERROR(CheckKey(account, share));
  DSP_ASSIGN_OR_RETURN(Instance instance, store_->GetInstance(id));
  DSP_ASSIGN_OR_RETURN(Pool pool, store_->GetPool(instance.pool));
  if (pool.id_base < kFirstIdBase) return FailedPrecondition("pool '" + pool.name().value() + "' has no id block");
  const std::string data = ShareDataPath(account, share);
  // The reference's convention, with the folders it leaves to chance made:
  // notebooks/<user> for every user, theirs.
  DSP_ASSIGN_OR_RETURN(std::vector<User> users, store_->ListUsers());
  DSP_RETURN_IF_ERROR(EnsureUserFolders(data + "/notebooks", users));
  DSP_ASSIGN_OR_RETURN(UniqueFd tree,
                       provider_->OpenMount(BindMount{data, target, read_only, MountIds::kUsers},
                                            InstanceIds{pool.id_base, options_.uid_first, options_.uid_last}));
  return channels_.PassMount(id, static_cast<uid_t>(pool.id_base), tree.get(), target, read_only,
                             std::chrono::seconds(10));
}

}  // namespace dspool
