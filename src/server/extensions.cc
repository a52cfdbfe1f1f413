#include "server/extensions.h"

#include "http/client.h"
#include "os/fs.h"

namespace dspool {
namespace {

bool IsHttpUrl(const std::string& s) { return s.rfind("http://", 0) == 0 || s.rfind("https://", 0) == 0; }

// A file under a directory mirror: the rest of the URI, without a query,
// as clean relative path segments.
Result<std::string> UnderDirectory(const std::string& dir, const std::string& rest) {
  const std::string path = rest.substr(0, rest.find_first_of("?#"));
  size_t start = 0;
  for (size_t end; start <= path.size(); start = end + 1) {
    end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    const std::string segment = path.substr(start, end - start);
    if (segment.empty() || segment == "." || segment == "..") {
      return InvalidArgument("'" + rest + "' is not a clean relative path under the mirror " + dir);
    }
  }
  return dir + path;
}

const Mirror* BestMirror(const std::vector<Mirror>& mirrors, const std::string& uri) {
  const Mirror* best = nullptr;
  for (const Mirror& m : mirrors) {
    if (uri.rfind(m.prefix, 0) == 0 && (!best || m.prefix.size() > best->prefix.size())) best = &m;
  }
  return best;
}

Result<std::string> Fetch(const std::vector<Mirror>& mirrors, const ExtensionArtifacts& artifacts,
                          const std::string& uri, std::chrono::milliseconds timeout) {
  if (IsRelativeFileUri(uri)) {
    auto sent = artifacts.find(uri);
    if (sent == artifacts.end()) {
      return InvalidArgument("a path relative to a template, which only a deployment of the template resolves (its "
                             "file sent along, as the CLI does)");
    }
    return sent->second;
  }
  const Mirror* m = BestMirror(mirrors, uri);
  if (!m) return FetchUrl(uri, timeout);
  const std::string rest = uri.substr(m->prefix.size());
  if (IsHttpUrl(m->target)) {
    auto body = FetchUrl(m->target + rest, timeout);
    if (!body.ok()) return body.status().WithPrefix("mirrored to " + m->target + rest);
    return body;
  }
  DSP_ASSIGN_OR_RETURN(std::string path, UnderDirectory(m->target, rest));
  auto text = ReadFile(path);
  if (!text.ok()) return text.status().WithPrefix("mirrored to " + path);
  return text;
}

}  // namespace

Result<Mirror> ParseMirror(const std::string& text) {
  const size_t eq = text.find('=');
  if (eq == std::string::npos) return InvalidArgument("--mirror '" + text + "': expected PREFIX=TARGET");
  Mirror m{text.substr(0, eq), text.substr(eq + 1)};
  if (!IsHttpUrl(m.prefix)) return InvalidArgument("--mirror '" + text + "': PREFIX must be an http or https URL");
  const bool dir = !m.target.empty() && m.target[0] == '/';
  if (!IsHttpUrl(m.target) && !dir) {
    return InvalidArgument("--mirror '" + text + "': TARGET must be an http or https URL or an absolute directory");
  }
  if (dir && m.target.back() != '/') m.target += '/';
  if (dir && m.prefix.back() != '/') {
    return InvalidArgument("--mirror '" + text + "': a directory mirrors a PREFIX that ends in '/'");
  }
  return m;
}

Result<std::vector<std::vector<ExtensionFile>>> FetchExtensionFiles(const std::vector<Mirror>& mirrors,
                                                                    const std::vector<ExtensionSpec>& extensions,
                                                                    const ExtensionArtifacts& artifacts,
                                                                    std::chrono::milliseconds timeout) {
  std::vector<std::vector<ExtensionFile>> out;
  size_t total = 0;
  for (const ExtensionSpec& e : extensions) {
    std::vector<ExtensionFile>& files = out.emplace_back();
    const std::vector<std::string> names = e.FileNames();
    std::vector<std::string> uris = e.settings.file_uris;
    uris.insert(uris.end(), e.protected_settings.file_uris.begin(), e.protected_settings.file_uris.end());
    for (size_t i = 0; i < uris.size(); ++i) {
      // A protected URI may carry a token: only its file name is told.
      const bool secret = i >= e.settings.file_uris.size();
      const std::string shown = secret ? "protected fileUri for '" + names[i] + "'" : uris[i];
      auto data = Fetch(mirrors, artifacts, uris[i], timeout);
      if (!data.ok()) {
        return Status(data.status().code(), "extension '" + e.name + "': " + shown + ": " +
                                                (secret ? "could not be fetched" : data.status().message()));
      }
      total += data->size();
      if (total > kMaxExtensionBytes) {
        return InvalidArgument("extension '" + e.name + "': " + shown + ": the pool's files pass " +
                               std::to_string(kMaxExtensionBytes >> 20) + " MiB");
      }
      files.push_back({names[i], std::move(*data)});
    }
  }
  return out;
}

Status WriteExtensionFiles(const std::string& dir, const std::vector<ExtensionSpec>& extensions,
                           const std::vector<std::vector<ExtensionFile>>& files) {
  DSP_RETURN_IF_ERROR(RemoveTree(dir));
  if (extensions.empty()) return Status::Ok();
  DSP_RETURN_IF_ERROR(MakeDirs(dir, 0700));
  for (size_t i = 0; i < extensions.size() && i < files.size(); ++i) {
    const std::string sub = dir + "/" + extensions[i].name;
    DSP_RETURN_IF_ERROR(MakeDirs(sub, 0700));
    for (const ExtensionFile& f : files[i]) DSP_RETURN_IF_ERROR(WriteFileAtomic(sub + "/" + f.name, f.data, 0600));
  }
  return Status::Ok();
}

Result<std::vector<ExtensionFile>> ReadExtensionFiles(const std::string& dir, const ExtensionSpec& extension) {
  std::vector<ExtensionFile> out;
  for (const std::string& name : extension.FileNames()) {
    DSP_ASSIGN_OR_RETURN(std::string data, ReadPrivateFile(dir + "/" + extension.name + "/" + name));
    out.push_back({name, std::move(data)});
  }
  return out;
}

}  // namespace dspool
