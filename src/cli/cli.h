// `dspool`, the command line: parses argv (CLI11) and runs one command.
//
//   dspool server ...          the control plane, in this process (server/server.h)
//   dspool agent ...           the in-instance agent (agent/agent.h)
//   dspool pool|instance|status|events|user ...
//                              requests to the server's API (docs/api.md;
//                              commands.h), printed as tables or -o json
//
// Exit codes: 0 success; 1 the command failed, after one line
// "dspool: <message>" on stderr (an API error's message as is); 2 a usage
// error, with CLI11's message. `server` and `agent` return their own codes.
//
// A composition root: this is where flags, environment and files become a
// server, an agent, or an ApiClient.
#pragma once

#include <chrono>
#include <functional>
#include <istream>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "base/clock.h"

namespace dspool {

// What RunCli takes from the process, so tests can run it in one.
using PromptFunction = std::function<std::optional<std::string>(const std::string& question, bool secret)>;

struct CliEnvironment {
  std::istream& in;
  std::ostream& out;
  std::ostream& err;
  // The value of an environment variable (DSPOOL_SERVER, DSPOOL_TOKEN_FILE),
  // nullopt if unset.
  std::function<std::optional<std::string>(const std::string& name)> getenv;
  const Clock& clock;
  // Sleeps between polls of `events --follow`; false stops following.
  std::function<bool(std::chrono::milliseconds delay)> wait;
  // Asks on the terminal (CommandContext::prompt); empty without one.
  PromptFunction prompt;
};

// Runs the command in `args` (argv without the program name).
int RunCli(const std::vector<std::string>& args, const CliEnvironment& env);

// Runs argv with the process's standard streams, environment and clock.
int RunCli(int argc, char** argv);

}  // namespace dspool
