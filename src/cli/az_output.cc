#include "cli/az_output.h"

#include <optional>

#include "cli/table.h"

namespace dspool::az {

bool AsJson(const CommandContext& ctx) { return ctx.output == OutputFormat::kJson || !ctx.output_given; }

void PrintRows(const CommandContext& ctx, std::vector<std::string> header,
               const std::vector<std::vector<std::string>>& rows) {
  if (ctx.output == OutputFormat::kTsv) {
    for (const auto& row : rows) {
      for (size_t i = 0; i < row.size(); ++i) ctx.out << (i ? "\t" : "") << row[i];
      ctx.out << "\n";
    }
    return;
  }
  Table t(std::move(header));
  for (const auto& row : rows) t.AddRow(row);
  ctx.out << t.Render();
}

Status Confirm(const CommandContext& ctx, const std::string& question, const std::string& flag) {
  if (!ctx.prompt) return FailedPrecondition(question + ": give " + flag + " to confirm (no terminal to ask on)");
  std::optional<std::string> answer = ctx.prompt(question + " (y/n): ", false);
  if (!answer || (*answer != "y" && *answer != "Y" && *answer != "yes")) return Aborted("Operation cancelled.");
  return Status::Ok();
}

Json TagsJson(const std::vector<std::string>& tags) {
  Json t = Json::object();
  for (const std::string& tag : tags) {
    size_t eq = tag.find('=');
    t[tag.substr(0, eq)] = eq == std::string::npos ? "" : tag.substr(eq + 1);
  }
  return t;
}

}  // namespace dspool::az
