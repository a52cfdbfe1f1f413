#include "deploy/catalog.h"

#include <algorithm>

#include "model/deployment.h"

namespace dspool::deploy {
namespace {

// vCPUs and memory of Azure's sizes, from Azure's size tables.
struct KnownSize {
  const char* name;
  int64_t vcpus;
  int64_t memory_mib;
};
constexpr KnownSize kSizes[] = {
    {"Standard_B1s", 1, 1024},       {"Standard_B1ms", 1, 2048},      {"Standard_B2s", 2, 4096},
    {"Standard_B2ms", 2, 8192},      {"Standard_B4ms", 4, 16384},     {"Standard_B8ms", 8, 32768},
    {"Standard_A1_v2", 1, 2048},     {"Standard_A2_v2", 2, 4096},     {"Standard_A4_v2", 4, 8192},
    {"Standard_D1_v2", 1, 3584},     {"Standard_D2_v2", 2, 7168},     {"Standard_D3_v2", 4, 14336},
    {"Standard_D4_v2", 8, 28672},    {"Standard_DS1_v2", 1, 3584},    {"Standard_DS2_v2", 2, 7168},
    {"Standard_DS3_v2", 4, 14336},   {"Standard_DS4_v2", 8, 28672},   {"Standard_D2_v3", 2, 8192},
    {"Standard_D4_v3", 4, 16384},    {"Standard_D8_v3", 8, 32768},    {"Standard_D2s_v3", 2, 8192},
    {"Standard_D4s_v3", 4, 16384},   {"Standard_D8s_v3", 8, 32768},   {"Standard_D16s_v3", 16, 65536},
    {"Standard_D2s_v4", 2, 8192},    {"Standard_D4s_v4", 4, 16384},   {"Standard_D2s_v5", 2, 8192},
    {"Standard_D4s_v5", 4, 16384},   {"Standard_D8s_v5", 8, 32768},   {"Standard_D2as_v5", 2, 8192},
    {"Standard_D4as_v5", 4, 16384},  {"Standard_E2s_v3", 2, 16384},   {"Standard_E4s_v3", 4, 32768},
    {"Standard_E8s_v3", 8, 65536},   {"Standard_E2s_v5", 2, 16384},   {"Standard_E4s_v5", 4, 32768},
    {"Standard_F2s_v2", 2, 4096},    {"Standard_F4s_v2", 4, 8192},    {"Standard_F8s_v2", 8, 16384},
    {"Standard_NC6", 6, 57344},      {"Standard_NC6s_v3", 6, 114688}, {"Standard_NC4as_T4_v3", 4, 28672},
};

// The reference's images and Ubuntu's; everything maps to the host image
// until the data-science image is built (DESIGN.md, images).
const ImageEntry kImages[] = {
    {"microsoft-ads", "linux-data-science-vm-ubuntu", "*", ImageType::kHost},
    {"microsoft-ads", "linux-data-science-vm", "*", ImageType::kHost},
    {"microsoft-dsvm", "linux-data-science-vm-ubuntu", "*", ImageType::kHost},  // the low-priority sample's
    {"microsoft-dsvm", "ubuntu-1804", "*", ImageType::kHost},
    {"microsoft-dsvm", "ubuntu-2004", "*", ImageType::kHost},
    {"microsoft-dsvm", "ubuntu-hpc", "*", ImageType::kHost},
    {"canonical", "ubuntuserver", "*", ImageType::kHost},
    {"canonical", "0001-com-ubuntu-server-focal", "*", ImageType::kHost},
    {"canonical", "0001-com-ubuntu-server-jammy", "*", ImageType::kHost},
    {"debian", "debian-12", "*", ImageType::kHost},
};

}  // namespace

Catalog::Catalog() {
  for (const KnownSize& s : kSizes) sizes_[StoreKey(s.name)] = InstanceSize{.vcpus = s.vcpus, .memory_mib = s.memory_mib};
  images_.assign(std::begin(kImages), std::end(kImages));
}

Status Catalog::AddFromJson(const Json& json) {
  if (!json.is_object()) return InvalidArgument("the catalog must be a JSON object");
  JsonReader r(json, "");
  std::map<std::string, InstanceSize> sizes = sizes_;
  std::vector<ImageEntry> images = images_;
  if (const Json* list = r.Raw("sizes")) {
    if (!list->is_object()) return InvalidArgument("sizes: must be an object of size names");
    for (const auto& [name, value] : list->items()) {
      JsonReader s(value, "sizes." + name);
      InstanceSize size;
      s.Required("vcpus", &size.vcpus);
      s.Required("memoryMiB", &size.memory_mib);
      s.Optional("maxProcesses", &size.max_processes);
      DSP_RETURN_IF_ERROR(s.Finish());
      if (size.vcpus < 1 || size.vcpus > 256 || size.memory_mib < 128 || size.max_processes < 1) {
        return InvalidArgument("sizes." + name + ": vcpus 1 to 256, memoryMiB at least 128, maxProcesses at least 1");
      }
      sizes[StoreKey(name)] = size;
    }
  }
  if (const Json* list = r.Raw("images")) {
    if (!list->is_array()) return InvalidArgument("images: must be an array");
    for (size_t i = 0; i < list->size(); ++i) {
      const std::string at = "images[" + std::to_string(i) + "]";
      JsonReader e((*list)[i], at);
      ImageEntry entry;
      std::string image;
      e.Required("publisher", &entry.publisher);
      e.Required("offer", &entry.offer);
      e.Required("sku", &entry.sku);
      e.Required("image", &image);
      DSP_RETURN_IF_ERROR(e.Finish());
      if (image != "host") return InvalidArgument(at + ".image: 'host' is the only image this host has");
      entry.publisher = StoreKey(entry.publisher);
      entry.offer = StoreKey(entry.offer);
      entry.sku = StoreKey(entry.sku);
      images.push_back(std::move(entry));
    }
  }
  DSP_RETURN_IF_ERROR(r.Finish());
  sizes_ = std::move(sizes);
  images_ = std::move(images);
  return Status::Ok();
}

std::optional<InstanceSize> Catalog::Size(const std::string& sku_name) const {
  auto it = sizes_.find(StoreKey(sku_name));
  if (it == sizes_.end()) return std::nullopt;
  return it->second;
}

std::optional<ImageType> Catalog::Image(const std::string& publisher, const std::string& offer,
                                        const std::string& sku) const {
  const std::string p = StoreKey(publisher), o = StoreKey(offer), s = StoreKey(sku);
  for (auto it = images_.rbegin(); it != images_.rend(); ++it) {
    if (it->publisher == p && it->offer == o && (it->sku == "*" || it->sku == s)) return it->image;
  }
  return std::nullopt;
}

std::string Catalog::SomeSizes() const {
  return "Standard_B2s, Standard_D2s_v3, Standard_D4s_v3, Standard_E2s_v3 (docs/templates.md lists all " +
         std::to_string(sizes_.size()) + ")";
}

}  // namespace dspool::deploy
