// Extension files on the server: fetching what a pool's CustomScript
// extensions name in fileUris, through the operator's mirrors, and keeping
// them in the pool's root-only directory for its instances
// (docs/extensions.md).
//
// A mirror maps a URL prefix to another place: `--mirror
// https://raw.githubusercontent.com/Azure/DataScienceVM/master/=http://10.1.2.3/dsvm/`
// fetches the sample's script from a host the machine can reach, and a
// target that is an absolute directory reads the file from it. The longest
// matching prefix wins; a URI no mirror matches is fetched as it is.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "base/result.h"
#include "model/extension.h"

namespace dspool {

struct Mirror {
  std::string prefix;  // an http(s) URL prefix
  std::string target;  // an http(s) URL prefix, or an absolute directory ending in '/'
};

// "PREFIX=TARGET". Errors (InvalidArgument) name the text and say why.
Result<Mirror> ParseMirror(const std::string& text);

// Every file of every extension, in ExtensionSpec::FileNames() order, at
// most kMaxExtensionBytes in all; a relative fileUri is the file
// `artifacts` has for it. Errors name the extension and the URI
// ("extension 'files': https://...: GET http://... answered HTTP 404").
Result<std::vector<std::vector<ExtensionFile>>> FetchExtensionFiles(const std::vector<Mirror>& mirrors,
                                                                    const std::vector<ExtensionSpec>& extensions,
                                                                    const ExtensionArtifacts& artifacts,
                                                                    std::chrono::milliseconds timeout);

// The files kept for a pool under `dir` (root-only): <dir>/<extension>/<file>.
Status WriteExtensionFiles(const std::string& dir, const std::vector<ExtensionSpec>& extensions,
                           const std::vector<std::vector<ExtensionFile>>& files);
Result<std::vector<ExtensionFile>> ReadExtensionFiles(const std::string& dir, const ExtensionSpec& extension);

}  // namespace dspool
