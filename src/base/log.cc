#include "base/log.h"

#include <atomic>
#include <chrono>
#include <iostream>
#include <mutex>

#include "base/clock.h"

namespace dspool {
namespace {

std::atomic<LogLevel> g_level{LogLevel::kInfo};
std::mutex g_mu;

const char* LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug: return "DEBUG";
    case LogLevel::kInfo: return "INFO";
    case LogLevel::kWarning: return "WARN";
    case LogLevel::kError: return "ERROR";
  }
  return "?";
}

}  // namespace

void SetLogLevel(LogLevel level) { g_level = level; }
LogLevel GetLogLevel() { return g_level; }

bool ParseLogLevel(std::string_view text, LogLevel* level) {
  if (text == "debug") *level = LogLevel::kDebug;
  else if (text == "info") *level = LogLevel::kInfo;
  else if (text == "warning") *level = LogLevel::kWarning;
  else if (text == "error") *level = LogLevel::kError;
  else return false;
  return true;
}

std::string_view LogLevelText(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug: return "debug";
    case LogLevel::kInfo: return "info";
    case LogLevel::kWarning: return "warning";
    case LogLevel::kError: return "error";
  }
  return "info";
}

LogLine::LogLine(LogLevel level, std::string_view component) : level_(level) {
  out_ << FormatTime(std::chrono::system_clock::now()) << ' ' << LevelName(level_) << ' ' << component
       << ": ";
}

LogLine::~LogLine() {
  out_ << '\n';
  std::lock_guard<std::mutex> lock(g_mu);
  std::cerr << out_.str() << std::flush;
}

}  // namespace dspool
