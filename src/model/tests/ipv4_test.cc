#include "model/ipv4.h"

#include <gtest/gtest.h>

namespace dspool {
namespace {

TEST(Ipv4Test, ParsesAndFormats) {
  EXPECT_EQ(ParseIpv4("10.231.0.1"), 0x0AE70001u);
  EXPECT_EQ(FormatIpv4(0x0AE70001u), "10.231.0.1");
  for (const char* bad : {"", "10.0.0", "10.0.0.256", "10.0.0.1.2", "010.0.0.1", "a.b.c.d", "10.0.0.1 "}) {
    EXPECT_FALSE(ParseIpv4(bad).has_value()) << bad;
  }
}

TEST(Ipv4Test, Subnets) {
  auto s = ParseIpv4Subnet("10.231.0.0/24");
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->HostCount(), 254u);
  EXPECT_TRUE(s->Contains(*ParseIpv4("10.231.0.77")));
  EXPECT_FALSE(s->Contains(*ParseIpv4("10.231.1.1")));
  EXPECT_TRUE(s->Overlaps(*ParseIpv4Subnet("10.0.0.0/8")));
  EXPECT_FALSE(s->Overlaps(*ParseIpv4Subnet("10.232.0.0/16")));
  EXPECT_FALSE(ParseIpv4Subnet("10.231.0.5/24").has_value());  // host bits set
  EXPECT_FALSE(ParseIpv4Subnet("10.231.0.0/33").has_value());
  EXPECT_FALSE(ParseIpv4Subnet("10.231.0.0").has_value());
}

}  // namespace
}  // namespace dspool
