// Thousands of mutated expressions and JSON texts, from the case files and
// a seeded generator: every one must give a value or an error, never a
// crash or a hang (the test would time out).
#include <gtest/gtest.h>

#include <random>

#include "template/evaluate.h"
#include "template/json_text.h"
#include "template/tests/case_files.h"

namespace dspool::arm {
namespace {

std::vector<std::string> Seeds() {
  std::vector<std::string> seeds;
  auto cases = LoadCases("expressions");
  if (cases.ok()) {
    for (const TestCase& tc : *cases) seeds.push_back(tc.value["expr"].get<std::string>());
  }
  return seeds;
}

std::string Mutate(std::string s, std::mt19937& rng, const std::vector<std::string>& seeds) {
  static const std::string kAlphabet = "()[],.'\"{}:- 0123456789azAZ_$\\\n";
  std::uniform_int_distribution<int> op(0, 5);
  int steps = 1 + static_cast<int>(rng() % 4);
  for (int i = 0; i < steps; ++i) {
    size_t at = s.empty() ? 0 : rng() % (s.size() + 1);
    switch (op(rng)) {
      case 0: s.insert(at, 1, kAlphabet[rng() % kAlphabet.size()]); break;
      case 1:
        if (!s.empty() && at < s.size()) s.erase(at, 1 + rng() % 3);
        break;
      case 2:
        if (at < s.size()) s[at] = kAlphabet[rng() % kAlphabet.size()];
        break;
      case 3: {  // splice in part of another seed
        const std::string& other = seeds[rng() % seeds.size()];
        size_t from = other.empty() ? 0 : rng() % other.size();
        s.insert(at, other.substr(from, rng() % 20));
        break;
      }
      case 4: s.insert(at, std::string(1 + rng() % 3, s.empty() ? '(' : s[rng() % s.size()])); break;
      default:
        if (at < s.size()) s.resize(at);
        break;
    }
  }
  return s;
}

TEST(FuzzTest, MutatedExpressionsGiveAValueOrAnError) {
  std::vector<std::string> seeds = Seeds();
  ASSERT_FALSE(seeds.empty());
  std::mt19937 rng(20261207);
  int values = 0, errors = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string s = Mutate(seeds[rng() % seeds.size()], rng, seeds);
    PureScope scope;
    Result<Value> r = EvaluateString(s, scope);
    (r.ok() ? values : errors)++;
    if (!r.ok()) {
      EXPECT_FALSE(r.status().message().empty()) << s;
    }
  }
  // Both outcomes are exercised: the mutations are neither all fatal nor all harmless.
  EXPECT_GT(values, 1000);
  EXPECT_GT(errors, 1000);
}

TEST(FuzzTest, MutatedJsonTextsParseOrFail) {
  const std::string base = R"({"a": [1, -2.5e3, "x\u00e9\n", true, null, {"b": {}}], /* c */ "d": "[concat('a')]" // e
})";
  std::vector<std::string> seeds{base};
  std::mt19937 rng(7);
  int ok = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string s = Mutate(base, rng, seeds);
    auto doc = ParseJsonDocument(s);
    if (doc.ok()) ++ok;
  }
  EXPECT_GT(ok, 100);
}

}  // namespace
}  // namespace dspool::arm
