// How long the template module takes to load and evaluate a template with
// an N-resource copy loop and variable copies of V elements in all (ARM
// caps one copy loop at 800, so V comes in loops of 800), for N = 100, 200,
// 400, 800: Load (preflight: parameters, variables, expansion, IDs,
// dependencies), every resource's body in deploy order, and the outputs.
// Prints a Markdown table of the median and minimum of ROUNDS runs, and
// the time per resource, which stays flat when the work is linear.
//
// Usage: template_eval [ROUNDS]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "template/template.h"

namespace {

using dspool::arm::ArmError;
using dspool::arm::Value;

class NoResources final : public dspool::arm::ResourceReader {
 public:
  dspool::Result<Value> Reference(const std::string& id, bool) override {
    return dspool::NotFound("no resource " + id);
  }
  dspool::Result<Value> List(const std::string&, const std::string& id, const Value&) override {
    return dspool::NotFound("no resource " + id);
  }
};

// The resources (their count is a parameter): network interfaces, each naming its index, a subnet ID built with
// resourceId(), tags from a variable, and one element of the big variable;
// V variable elements in loops of at most 800; an output over the copies.
std::string MakeTemplate(int elements) {
  std::string vars = R"("prefix": "nic", "tags": {"team": "ds", "pool": "[parameters('pool')]"}, "copy": [)";
  for (int done = 0, k = 0; done < elements; ++k) {
    const int n = std::min(800, elements - done);
    if (k) vars += ",";
    vars += R"({"name": "big)" + std::to_string(k) + R"(", "count": )" + std::to_string(n) +
            R"(, "input": {"index": "[add(copyIndex('big)" + std::to_string(k) + R"('), )" + std::to_string(done) +
            R"()]", "name": "[format('{0}-{1}', parameters('pool'), copyIndex('big)" + std::to_string(k) +
            R"('))]"}})";
    done += n;
  }
  vars += "]";
  return R"({
  "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
  "contentVersion": "1.0.0.0",
  "parameters": {"pool": {"type": "string", "defaultValue": "bench"}, "count": {"type": "int"}},
  "variables": {)" + vars + R"(},
  "resources": [{
    "type": "Microsoft.Network/networkInterfaces", "apiVersion": "2022-09-01",
    "name": "[concat(variables('prefix'), '-', parameters('pool'), '-', copyIndex())]",
    "location": "[resourceGroup().location]",
    "tags": "[variables('tags')]",
    "copy": {"name": "nics", "count": "[parameters('count')]"},
    "properties": {
      "ipConfigurations": [{"name": "ip", "properties": {
        "subnet": {"id": "[resourceId('Microsoft.Network/virtualNetworks/subnets', 'vnet', 'default')]"},
        "privateIPAddress": "[concat('10.1.', div(copyIndex(), 250), '.', add(mod(copyIndex(), 250), 4))]",
        "label": "[variables('big0')[mod(copyIndex(), length(variables('big0')))].name]"}}]}
  }],
  "outputs": {"names": {"type": "array", "copy": {"count": "[parameters('count')]",
                                                  "input": "[concat('nic-', copyIndex())]"}},
              "first": {"type": "object", "value": "[variables('big0')[0]]"}}
})";
}

// One load and full evaluation, in microseconds.
double RunOnce(const std::string& text, int resources) {
  dspool::arm::TemplateLoad load;
  load.text = text;
  load.parameters = Value{{"count", {{"value", resources}}}};
  load.context.subscription_id = "00000000-0000-0000-0000-000000000001";
  load.context.tenant_id = "00000000-0000-0000-0000-000000000002";
  load.context.resource_group = "rg";
  load.context.location = "local";
  load.context.deployment_name = "bench";
  const auto start = std::chrono::steady_clock::now();
  ArmError error;
  auto t = dspool::arm::Template::Load(load, &error);
  if (!t.ok()) {
    std::fprintf(stderr, "load: %s\n", t.status().message().c_str());
    std::exit(1);
  }
  NoResources reader;
  size_t evaluated = 0;
  for (size_t i : (*t)->DeployOrder()) {
    auto body = (*t)->ResourceBody(i, reader, &error);
    if (!body.ok()) {
      std::fprintf(stderr, "resource %zu: %s\n", i, body.status().message().c_str());
      std::exit(1);
    }
    ++evaluated;
  }
  auto outputs = (*t)->Outputs(reader, &error);
  if (!outputs.ok() || evaluated != static_cast<size_t>(resources)) {
    std::fprintf(stderr, "outputs: %s\n", outputs.status().message().c_str());
    std::exit(1);
  }
  return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  const int rounds = argc > 1 ? std::atoi(argv[1]) : 9;
  std::printf("| resources (copy loop) | variable elements | median ms | min ms | µs per resource (median) |\n");
  std::printf("|---:|---:|---:|---:|---:|\n");
  for (int n : {100, 200, 400, 800}) {
    const int elements = n * 25 / 2;  // 10,000 at 800 resources
    const std::string text = MakeTemplate(elements);
    RunOnce(text, n);  // warm-up
    std::vector<double> us;
    for (int r = 0; r < rounds; ++r) us.push_back(RunOnce(text, n));
    std::sort(us.begin(), us.end());
    const double median = us[us.size() / 2];
    std::printf("| %d | %d | %.1f | %.1f | %.1f |\n", n, elements, median / 1000, us.front() / 1000, median / n);
  }
  return 0;
}
