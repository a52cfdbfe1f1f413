// What Azure names map to on this host: VM sizes (sku.name of a scale
// set) to an instance size, and marketplace images (imageReference) to a
// local image. docs/templates.md lists both tables; an operator adds sizes
// and images with a JSON file (server option --catalog):
//
//   {"sizes":  {"Custom_8": {"vcpus": 8, "memoryMiB": 32768}},
//    "images": [{"publisher": "myco", "offer": "ds", "sku": "*", "image": "host"}]}
//
// Names compare without case, as Azure's do. Pure.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "model/json_reader.h"
#include "model/pool.h"

namespace dspool::deploy {

struct ImageEntry {
  std::string publisher;
  std::string offer;
  std::string sku;  // "*": any
  ImageType image = ImageType::kHost;
};

class Catalog {
 public:
  // The built-in tables: the common general-purpose, memory- and
  // compute-optimised sizes, and the data-science images of the
  // reference (the DSVM offers, mapped to the host image until the
  // data-science image exists) and Ubuntu's.
  Catalog();

  // Adds (or replaces) the entries of an operator's file, parsed strictly;
  // errors name the JSON path.
  Status AddFromJson(const Json& json);

  // nullopt if the size is not known.
  std::optional<InstanceSize> Size(const std::string& sku_name) const;
  // nullopt if no entry matches publisher, offer and sku (version is
  // not looked at: "latest" and any fixed version map alike).
  std::optional<ImageType> Image(const std::string& publisher, const std::string& offer, const std::string& sku) const;

  // For error messages: a few known names.
  std::string SomeSizes() const;

 private:
  std::map<std::string, InstanceSize> sizes_;  // by lower-case name
  std::vector<ImageEntry> images_;              // lower case; later entries win
};

}  // namespace dspool::deploy
