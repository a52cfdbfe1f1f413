// Prometheus text exposition for one unlabelled metric:
//
//   # HELP <name> <help>
//   # TYPE <name> <type>
//   <name> <value>
#pragma once

#include <cstdint>
#include <ostream>
#include <string_view>

namespace dspool {

// `type` is "counter" or "gauge".
inline void WriteMetric(std::ostream& out, std::string_view name, std::string_view type, std::string_view help,
                        int64_t value) {
  out << "# HELP " << name << " " << help << "\n# TYPE " << name << " " << type << "\n"
      << name << " " << value << "\n";
}

}  // namespace dspool
