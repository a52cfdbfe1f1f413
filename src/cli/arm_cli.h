// The az verbs' command line: `group ...`, `deployment group ...`,
// `deployment operation group ...` and the deprecated `group deployment
// ...`, with az's flags (arm_commands.cc runs them).
#pragma once

#include <CLI/CLI.hpp>

#include "cli/commands.h"

namespace dspool {

// Adds the commands to `app`; the one parsed sets `action`.
void AddArmCommands(CLI::App& app, ClientAction& action);

}  // namespace dspool
