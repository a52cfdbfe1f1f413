#include "net/task.h"

#include "base/log.h"

namespace dspool {

void Detached::promise_type::unhandled_exception() {
  try {
    throw;
  } catch (const std::exception& e) {
    DSP_LOG(kError, "task") << "a detached task ended by an exception: " << e.what();
  } catch (...) {
    DSP_LOG(kError, "task") << "a detached task ended by an exception";
  }
}

}  // namespace dspool
