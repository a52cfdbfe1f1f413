#include "server/pool_server.h"

#include <string.h>
#include <sys/stat.h>

#include <climits>
#include <cstring>

#include "base/log.h"
#include "net/stream.h"
#include "os/fs.h"
#include "os/net.h"
#include "server/extensions.h"

namespace dspool {
namespace {

// A fileUri that answers slower than this fails the pool's creation.
constexpr auto kExtensionFetchTimeout = std::chrono::seconds(60);

constexpr const char* kLog = "server";

}  // namespace

Status PoolServer::CheckPoolHost(const PoolSpec& spec, const std::vector<Pool>& existing) {
  DSP_RETURN_IF_ERROR(CheckFrontendPorts(spec, existing));
  DSP_RETURN_IF_ERROR(gateway_->CheckListen(spec));
  if (spec.jupyter.has_value() && !spec.jupyter->certificate_file.empty()) {
    DSP_RETURN_IF_ERROR(CheckJupyterCertificate(*spec.jupyter));
  }
  for (const Pool& p : existing) {
    if (p.spec.network.subnet.Overlaps(spec.network.subnet)) {
      return InvalidArgument("network.subnet: " + spec.network.subnet.ToString() + " overlaps pool '" +
                             p.name().value() + "' (" + p.spec.network.subnet.ToString() + ")");
    }
  }
  DSP_ASSIGN_OR_RETURN(auto routes, ListIpv4Routes());
  for (const RouteEntry& r : routes) {
    if (r.destination.prefix == 0) continue;  // the default route covers everything by design
    if (r.destination.Overlaps(spec.network.subnet)) {
      return InvalidArgument("network.subnet: " + spec.network.subnet.ToString() +
                             " collides with the host route " + r.destination.ToString() +
                             (r.interface.empty() ? "" : " on " + r.interface));
    }
  }
  if (spec.share.type == ShareType::kNone) return Status::Ok();
  struct stat st;
  if (::stat(spec.share.source.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return InvalidArgument("share.source: " + spec.share.source + " is not an existing directory on the host");
  }
  char resolved[PATH_MAX];
  if (::realpath(spec.share.source.c_str(), resolved) == nullptr) {
    return InvalidArgument("share.source: " + spec.share.source + ": " + std::strerror(errno));
  }
  char data_dir[PATH_MAX];
  if (::realpath(options_.data_dir.c_str(), data_dir) == nullptr) return ErrnoStatus(options_.data_dir, errno);
  return CheckShareSource(spec.share.source, resolved, data_dir);
}

// As the gateway will read them (gateway/routes.cc), so a pool is refused
// now rather than created without its Jupyter address.
Status PoolServer::CheckJupyterCertificate(const JupyterSpec& jupyter) {
  Result<TlsCertificate> read = ReadTlsCertificate(jupyter.certificate_file, jupyter.key_file);
  if (!read.ok()) return InvalidArgument("jupyter.certificateFile, jupyter.keyFile: " + read.status().message());
  TlsCertificate& certificate = *read;
  auto loaded = TlsServerContext::Create(certificate);
  explicit_bzero(certificate.key_pem.data(), certificate.key_pem.size());
  if (!loaded.ok()) return InvalidArgument("jupyter.certificateFile, jupyter.keyFile: " + loaded.status().message());
  return Status::Ok();
}

Result<std::vector<std::vector<ExtensionFile>>> PoolServer::FetchExtensionFiles(
    const std::vector<ExtensionSpec>& extensions, const ExtensionArtifacts& artifacts) {
  return dspool::FetchExtensionFiles(options_.mirrors, extensions, artifacts, kExtensionFetchTimeout);
}

Result<std::vector<ExtensionFile>> PoolServer::ReadExtensionFiles(const PoolName& pool,
                                                                  const ExtensionSpec& extension) {
  return dspool::ReadExtensionFiles(PoolDir(pool) + "/extensions", extension);
}

Status PoolServer::PreparePool(const PoolSpec& spec, const std::vector<std::vector<ExtensionFile>>& files) {
  const PoolName& pool = spec.name;
  std::string dir = PoolDir(pool);
  DSP_RETURN_IF_ERROR(MakeDirs(dir, 0700));
  RunOptions opts;
  opts.timeout = std::chrono::seconds(30);
  std::string key = dir + "/ssh_host_ed25519_key";
  DSP_ASSIGN_OR_RETURN(bool exists, PathExists(key));
  if (!exists) {
    // ssh-keygen writes the private key with mode 0600 itself.
    DSP_RETURN_IF_ERROR(RunChecked(
        {kSshKeygen, "-q", "-t", "ed25519", "-N", "", "-C", "dspool pool " + pool.value(), "-f", key}, opts));
  }
  // The Jupyter address's certificate when the spec names none: self-signed.
  DSP_RETURN_IF_ERROR(EnsureSelfSignedPair(dir + "/jupyter.crt", dir + "/jupyter.key", pool.value() + " (dspool)")
                          .WithPrefix("self-signed certificate for pool " + pool.value()));
  // What the generators made (or a restore put there) is checked as it
  // will be read: root's own files, no link, nothing for others.
  DSP_RETURN_IF_ERROR(ReadPrivateFile(key).status());
  DSP_RETURN_IF_ERROR(ReadPrivateFile(dir + "/jupyter.key").status());
  return WriteExtensionFiles(dir + "/extensions", spec.extensions, files);
}

Result<HostKey> PoolServer::ReadHostKey(const PoolName& pool) {
  HostKey key;
  std::string base = PoolDir(pool) + "/ssh_host_ed25519_key";
  DSP_ASSIGN_OR_RETURN(key.private_key, ReadPrivateFile(base));
  DSP_ASSIGN_OR_RETURN(key.public_key, ReadFile(base + ".pub"));
  return key;
}

void PoolServer::WakePool(const PoolName& pool) {
  workers_.Run([this, pool] {
    if (Status s = RaiseFromZero(pool); !s.ok()) DSP_LOG(kWarning, kLog) << "wake pool " << pool << ": " << s;
  });
}

Status PoolServer::RaiseFromZero(const PoolName& name) {
  std::lock_guard lock(wake_mu_);
  DSP_ASSIGN_OR_RETURN(Pool pool, store_->GetPool(name));
  DSP_ASSIGN_OR_RETURN(auto instances, store_->ListInstances(name));
  std::optional<int64_t> count = CountToWake(pool, instances);
  if (!count) return Status::Ok();
  Pool updated = pool;
  updated.spec.instance_count = *count;
  if (auto cap = pool.spec.load_balancer ? NatCapacity(*pool.spec.load_balancer) : std::nullopt;
      cap && updated.spec.instance_count > *cap) {
    return FailedPrecondition("the NAT pools address only " + std::to_string(*cap) + " instances");
  }
  updated.generation++;
  updated.updated_at = clock_.Now();
  WriteBatch batch;
  batch.Add(WriteBatch::UpdatePool{updated, pool.generation});
  batch.Add(WriteBatch::AppendEvent{Event{0, clock_.Now(), "gateway", "pool.wake",
                                          "pool/" + name.value(),
                                          "a connection is waiting: " + std::to_string(pool.spec.instance_count) +
                                              " → " + std::to_string(updated.spec.instance_count) + " instances"}});
  DSP_RETURN_IF_ERROR(store_->Write(batch));
  wakeups_++;
  DSP_LOG(kInfo, kLog) << "pool " << name << " woken by a waiting connection: "
                       << pool.spec.instance_count << " → " << updated.spec.instance_count << " instances";
  reconciler_.Poke();
  return Status::Ok();
}

}  // namespace dspool
