// The template module's test data: the case files under tests/ and the
// reference's sample templates in examples/azure-dsvm/.
#pragma once

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "base/result.h"
#include "template/json_text.h"

namespace dspool::arm {

inline std::filesystem::path TestData() { return DSPOOL_TEMPLATE_TESTS; }
inline std::filesystem::path SampleTemplates() { return TestData() / "../../../examples/azure-dsvm"; }

inline std::string ReadTestFile(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// One case of a case file: {"cases": [...]} in tests/<folder>/*.json.
struct TestCase {
  std::string where;  // "strings.json case 3"
  Value value;
};

// Every case of every file in tests/<folder>, the files in name order (so
// a seeded test sees them in the same order on every machine). An error
// names a file that does not parse.
inline Result<std::vector<TestCase>> LoadCases(const std::string& folder) {
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(TestData() / folder)) {
    if (entry.path().extension() == ".json") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  std::vector<TestCase> cases;
  for (const auto& file : files) {
    auto doc = ParseJsonDocument(ReadTestFile(file));
    if (!doc.ok()) return doc.status().WithPrefix(file.string());
    const Value& list = doc->value.at("cases");
    for (size_t i = 0; i < list.size(); ++i) {
      cases.push_back({file.filename().string() + " case " + std::to_string(i), list[i]});
    }
  }
  return cases;
}

}  // namespace dspool::arm
