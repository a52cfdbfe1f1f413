// The az verbs' command line: `group ...`, `deployment group ...`,
// `deployment operation group ...` and the deprecated `group deployment
// ...` (arm_commands.cc runs them); `storage account ...`, `storage share
// ...` and `storage share-rm ...` (storage_commands.cc); with az's flags.
#pragma once

#include <CLI/CLI.hpp>

#include "cli/commands.h"

namespace dspool {

// Adds the commands to `app`; the one parsed sets `action`.
void AddArmCommands(CLI::App& app, ClientAction& action);
void AddStorageCommands(CLI::App& app, ClientAction& action);

}  // namespace dspool
