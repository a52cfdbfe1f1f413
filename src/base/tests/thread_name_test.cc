#include "base/thread_name.h"

#include <gtest/gtest.h>

#include <thread>

namespace dspool {
namespace {

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
