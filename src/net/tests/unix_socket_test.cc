#include "net/unix_socket.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <vector>

namespace dspool {
namespace {

// Pipes whose write ends travel; the test reads what is written through
// the received copies.
TEST(UnixSocketTest, DescriptorsTravelWithTheirMessageAndArriveCloseOnExec) {
  auto pair = MakeSeqPacketPair("test");
  ASSERT_TRUE(pair.ok()) << pair.status();
  std::vector<UniqueFd> reads;
  std::vector<int> writes;
  for (int i = 0; i < 3; ++i) {
    int p[2];
    ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
    reads.emplace_back(p[0]);
    writes.push_back(p[1]);
  }
  ASSERT_TRUE(SendWithFds(pair->first.get(), "three", writes).ok());
  for (int fd : writes) ::close(fd);  // the receiver holds its own copies

  char buf[16];
  auto got = ReceiveWithFds(pair->second.get(), buf, sizeof(buf), 8);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(std::string(buf, got->size), "three");
  ASSERT_EQ(got->fds.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_TRUE(::fcntl(got->fds[i].get(), F_GETFD) & FD_CLOEXEC);
    char c = static_cast<char>('a' + i);
    ASSERT_EQ(::write(got->fds[i].get(), &c, 1), 1);
    char back = 0;
    ASSERT_EQ(::read(reads[i].get(), &back, 1), 1);
    EXPECT_EQ(back, c) << "descriptor " << i << " is not the pipe sent in its place";
  }

  // A message without descriptors, then the end.
  ASSERT_TRUE(SendWithFds(pair->first.get(), "plain", {}).ok());
  got = ReceiveWithFds(pair->second.get(), buf, sizeof(buf), 8);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(std::string(buf, got->size), "plain");
  EXPECT_TRUE(got->fds.empty());
  pair->first.reset();
  got = ReceiveWithFds(pair->second.get(), buf, sizeof(buf), 8);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->size, 0u);
}

TEST(UnixSocketTest, WhatDoesNotFitIsRefusedNamed) {
  auto pair = MakeSeqPacketPair("test");
  ASSERT_TRUE(pair.ok()) << pair.status();
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  UniqueFd r(p[0]), w(p[1]);
  std::vector<int> four(4, w.get());
  ASSERT_TRUE(SendWithFds(pair->first.get(), "four", four).ok());
  char buf[16];
  auto got = ReceiveWithFds(pair->second.get(), buf, sizeof(buf), 2);
  EXPECT_EQ(got.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(got.status().message(), "recvmsg: more than 2 descriptors came; the rest were lost");

  ASSERT_TRUE(SendWithFds(pair->first.get(), "a long message", {}).ok());
  got = ReceiveWithFds(pair->second.get(), buf, 4, 2);
  EXPECT_EQ(got.status().message(), "recvmsg: the message was longer than 4 bytes");

  EXPECT_EQ(SendWithFds(pair->first.get(), "", four).message(),
            "sendmsg: a message with descriptors needs at least one byte");
  std::vector<int> too_many(kMaxFdsPerMessage + 1, w.get());
  EXPECT_EQ(SendWithFds(pair->first.get(), "x", too_many).message(),
            "sendmsg: 254 descriptors in one message; at most 253");
}

}  // namespace
}  // namespace dspool
