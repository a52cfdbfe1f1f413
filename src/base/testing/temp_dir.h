// TempDir: a fresh directory /tmp/<prefix>-XXXXXX for one test, removed with
// everything in it when the object goes. Removal does not follow symlinks
// (std::filesystem::remove_all): a link in the tree goes, its target stays.
// Fixtures declare it before members that use it and assert !path().empty().
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <string>
#include <system_error>

namespace dspool {

class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "dspool-test") {
    std::string tmpl = "/tmp/" + prefix + "-XXXXXX";
    if (mkdtemp(tmpl.data()) != nullptr) path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ignored;
    if (!path_.empty()) std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  // Empty if the directory could not be made.
  const std::string& path() const { return path_; }
  // path() + "/" + name. REQUIRES: path() is not empty.
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

}  // namespace dspool
