// What the az-style verbs (arm_commands.cc, storage_commands.cc) share: az's
// output choice (JSON unless -o says otherwise), rows as a table or TSV,
// confirmation prompts, and `--tags k=v` lists.
#pragma once

#include <string>
#include <vector>

#include "cli/commands.h"

namespace dspool::az {

// az's commands print JSON unless -o says otherwise.
bool AsJson(const CommandContext& ctx);

// Rows as a table (-o table) or tab-separated values without a header
// (-o tsv).
void PrintRows(const CommandContext& ctx, std::vector<std::string> header,
               const std::vector<std::vector<std::string>>& rows);

// Asks "Are you sure ... (y/n): "; without a terminal, tells to give `flag`.
Status Confirm(const CommandContext& ctx, const std::string& question, const std::string& flag);

// "k=v" or "k" (an empty value) tokens as a JSON object of strings.
Json TagsJson(const std::vector<std::string>& tags);

}  // namespace dspool::az
