// The version of dspool, reported by `dspool --version`, /v1/status and the
// server's start line.
#pragma once

namespace dspool {

inline constexpr const char* kVersion = "0.1.0";

}  // namespace dspool
