// Thread names, for the people who look at a running server: `top -H`,
// `ps -L`, `perf top` and /proc/PID/task/TID/comm show which of its threads
// (API, gateway relay, web proxy, reconciler) does the work.
#pragma once

#include <string_view>

namespace dspool {

// Names the calling thread. The kernel keeps the first 15 bytes.
void SetThreadName(std::string_view name);

}  // namespace dspool
