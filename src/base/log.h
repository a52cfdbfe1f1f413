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

class LogLine {
 public:
  LogLine(LogLevel level, std::string_view component);
  ~LogLine();
  std::ostream& stream() { return out_; }

 private:
  LogLevel level_;
  std::ostringstream out_;
};

}  // namespace dspool

#define DSP_LOG(level, component)                                          \
  if (::dspool::LogLevel::level < ::dspool::GetLogLevel()) {               \
  } else                                                                   \
    ::dspool::LogLine(::dspool::LogLevel::level, component).stream()
