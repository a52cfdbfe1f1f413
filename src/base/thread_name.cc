#include "base/thread_name.h"

#include <pthread.h>

namespace dspool {

void SetThreadName(std::string_view name) {
  char buf[16] = {};
  name.copy(buf, sizeof(buf) - 1);
  (void)pthread_setname_np(pthread_self(), buf);
}

}  // namespace dspool
