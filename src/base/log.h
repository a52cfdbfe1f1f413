// Logging: one line per event, to stderr, with time, level and component.
//
//   DSP_LOG(kInfo, "reconcile") << "pool " << name << " scaled to " << n;
//
// Never log a secret: passwords, tokens and private keys stay out of every
// message (see DESIGN.md, "Rules of the system").
//
// Thread safety: lines from different threads never interleave.
#pragma once

#include <sstream>
#include <string_view>

namespace dspool {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

void SetLogLevel(LogLevel level);
LogLevel GetLogLevel();
// Parses "debug", "info", "warning", "error"; false if unknown.
bool ParseLogLevel(std::string_view text, LogLevel* level);
// Inverse of ParseLogLevel: "debug", "info", "warning", "error".
std::string_view LogLevelText(LogLevel level);

class LogLine {
 public:
  LogLine(LogLevel level, std::string_view component);
  ~LogLine();
  std::ostream& stream() { return out_; }

 private:
  LogLevel level_;
  std::ostringstream out_;
};

// Turns the stream expression into void, so DSP_LOG can be a ?: expression
// (safe inside an unbraced if/else).
struct LogVoidify {
  void operator&(std::ostream&) {}
};

}  // namespace dspool

#define DSP_LOG(level, component)                                     \
  (::dspool::LogLevel::level < ::dspool::GetLogLevel())               \
      ? (void)0                                                       \
      : ::dspool::LogVoidify() & ::dspool::LogLine(::dspool::LogLevel::level, component).stream()
