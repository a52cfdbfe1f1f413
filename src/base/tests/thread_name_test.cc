#include "base/thread_name.h"

#include <gtest/gtest.h>
#include <pthread.h>

#include <string>
#include <thread>

namespace dspool {
namespace {

// The calling thread's name, as ps and top show it.
std::string ThreadName() {
  char buf[16] = {};
  if (pthread_getname_np(pthread_self(), buf, sizeof(buf)) != 0) return "?";
  return buf;
}

TEST(ThreadNameTest, NamesTheCallingThreadOnly) {
  std::string before = ThreadName();
  std::string inside;
  std::thread t([&] {
    SetThreadName("gw-relay-3");
    inside = ThreadName();
  });
  t.join();
  EXPECT_EQ(inside, "gw-relay-3");
  EXPECT_EQ(ThreadName(), before);
}

TEST(ThreadNameTest, KeepsTheFirstFifteenBytes) {
  std::string inside;
  std::thread t([&] {
    SetThreadName("a-name-longer-than-the-kernel-keeps");
    inside = ThreadName();
  });
  t.join();
  EXPECT_EQ(inside, "a-name-longer-t");
}

}  // namespace
}  // namespace dspool
