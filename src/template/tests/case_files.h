// The template module's test data: the case files under tests/ and the
// reference's sample templates in examples/azure-dsvm/.
#pragma once

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace dspool::arm {

inline std::filesystem::path TestData() { return DSPOOL_TEMPLATE_TESTS; }
inline std::filesystem::path SampleTemplates() { return TestData() / "../../../examples/azure-dsvm"; }

inline std::string ReadTestFile(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace dspool::arm
