#include "server/port_reservation.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include "os/fs.h"

namespace dspool {
namespace {

TEST(NextReservationTest, AddsWhatIsMissingAndReleasesOnlyOurs) {
  // The admin reserved 9000 and 2200 themselves; we hold 50000.
  Reservation now{{2200, 9000, 50000}, {50000}};
  Reservation next = NextReservation(now, {2200, 50001});
  EXPECT_EQ(next.kernel, (std::set<uint16_t>{2200, 9000, 50001}));
  EXPECT_EQ(next.ours, (std::set<uint16_t>{50001})) << "2200 was the admin's before us: never ours to release";
  EXPECT_EQ(NextReservation(next, {}), (Reservation{{2200, 9000}, {}}));
  EXPECT_EQ(NextReservation(next, {2200, 50001}), next) << "steady: no change";
}

TEST(PortReserverTest, RecordsWhatItAddedAndGivesItBack) {
  char dir[] = "/tmp/dspool-reserve.XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  const std::string kernel = std::string(dir) + "/ip_local_reserved_ports";
  const std::string record = std::string(dir) + "/reserved-ports";
  ASSERT_TRUE(WriteFileAtomic(kernel, "9000\n", 0644).ok());

  const std::string lock = std::string(dir) + "/lock";
  PortReserver reserver(record, kernel, lock);
  auto said = reserver.Apply({2200, 50000, 50001, 50002});
  ASSERT_TRUE(said.ok()) << said.status();
  EXPECT_EQ(*said, "reserved 2200,50000-50002");
  EXPECT_EQ(*ReadFile(kernel), "2200,9000,50000-50002\n");
  EXPECT_EQ(*ReadFile(record), "2200,50000-50002\n");
  EXPECT_EQ(*reserver.Apply({2200, 50000, 50001, 50002}), "");

  // A new server on the same data directory takes back what a deleted pool
  // no longer needs, and leaves the admin's 9000.
  PortReserver restarted(record, kernel, lock);
  EXPECT_EQ(*restarted.Apply({2200}), "released 50000-50002");
  EXPECT_EQ(*ReadFile(kernel), "2200,9000\n");
  EXPECT_EQ(*restarted.Apply({}), "released 2200");
  EXPECT_EQ(*ReadFile(kernel), "9000\n");

  ASSERT_TRUE(WriteFileAtomic(record, "junk\n", 0600).ok());
  EXPECT_EQ(restarted.Apply({1}).status().message(),
            record + ": 'junk' is not a port or a range of ports (\"8000\", \"50000-50099\")");
  EXPECT_EQ(*ReadFile(kernel), "9000\n") << "a bad record changes nothing";
  ASSERT_TRUE(RemoveTree(dir).ok());
}

}  // namespace
}  // namespace dspool
