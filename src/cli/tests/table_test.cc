#include "cli/table.h"

#include <gtest/gtest.h>

namespace dspool {
namespace {

TEST(TableTest, AlignsColumnsUnderTheHeader) {
  Table t({"NAME", "STATE", "READY"});
  t.AddRow({"demo", "active", "2/2"});
  t.AddRow({"a-much-longer-name", "deleting", "0/3"});
  EXPECT_EQ(t.Render(),
            "NAME                 STATE      READY\n"
            "demo                 active     2/2\n"
            "a-much-longer-name   deleting   0/3\n");
}

TEST(TableTest, HeaderOnlyWhenEmpty) {
  Table t({"A", "B"});
  EXPECT_EQ(t.rows(), 0u);
  EXPECT_EQ(t.Render(), "A   B\n");
}

TEST(TableTest, TrimsTrailingSpaceAndPadsShortRows) {
  Table t({"A", "REASON"});
  t.AddRow({"x"});
  t.AddRow({"y", "", "dropped"});
  EXPECT_EQ(t.Render(), "A   REASON\nx\ny\n");
}

TEST(TableTest, CountsUtf8CharactersNotBytes) {
  Table t({"N", "X"});
  t.AddRow({"é", "1"});
  t.AddRow({"ab", "2"});
  EXPECT_EQ(t.Render(), "N    X\né    1\nab   2\n");
}

TEST(TableTest, ControlCharactersCannotBreakTheLayout) {
  Table t({"A", "B"});
  t.AddRow({"line1\nline2", "esc\x1b[31m"});
  EXPECT_EQ(t.Render(), "A             B\nline1 line2   esc?[31m\n");
}

TEST(TableTest, LaterRowsLineUpUnderAnEarlierTable) {
  Table first({"SEQ", "ACTION"});
  first.AddRow({"7", "pool.create"});
  EXPECT_EQ(first.ColumnWidths(), (std::vector<size_t>{3, 11}));
  Table next({"SEQ", "ACTION"});
  next.AddRow({"10", "x"});
  next.WidenTo(first.ColumnWidths());
  next.AddRow({"1000", "y"});  // wider than before: this column grows
  EXPECT_EQ(next.Render(/*with_header=*/false),
            "10     x\n"
            "1000   y\n");
  EXPECT_EQ(next.ColumnWidths(), (std::vector<size_t>{4, 11}));
}

TEST(RenderFieldsTest, AlignsValues) {
  EXPECT_EQ(RenderFields({{"Name", "demo"}, {"Admin user", "bob"}, {"Empty", ""}}),
            "Name:         demo\n"
            "Admin user:   bob\n"
            "Empty:\n");
}

TEST(ParseRfc3339Test, AcceptsUtcOffsetsAndFractions) {
  Result<TimePoint> t = ParseRfc3339("1970-01-01T00:00:01Z");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(ToUnixMillis(*t), 1000);

  t = ParseRfc3339("2023-11-14T22:13:20.042Z");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(ToUnixMillis(*t), 1'700'000'000'042);

  t = ParseRfc3339("2023-11-14T23:13:20+01:00");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(ToUnixMillis(*t), 1'700'000'000'000);

  t = ParseRfc3339("2023-11-14t21:43:20.5-00:30");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(ToUnixMillis(*t), 1'700'000'000'500);
}

TEST(ParseRfc3339Test, RoundTripsFormatTime) {
  TimePoint t = FromUnixMillis(1'764'201'321'042);
  Result<TimePoint> parsed = ParseRfc3339(FormatTime(t));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(*parsed, t);
}

TEST(ParseRfc3339Test, RefusesWhatIsNotRfc3339) {
  for (const char* bad :
       {"", "2023-11-14", "2023-11-14T22:13:20", "2023-11-14 22:13:20Z", "2023-02-30T00:00:00Z", "2023-11-14T24:00:00Z",
        "2023-11-14T22:13:20.Z", "2023-11-14T22:13:20Zjunk", "2023-11-14T22:13:20+0100", "yesterday"}) {
    Result<TimePoint> t = ParseRfc3339(bad);
    EXPECT_FALSE(t.ok()) << bad;
    if (!t.ok()) {
      EXPECT_NE(t.status().message().find("is not an RFC 3339 time"), std::string::npos);
    }
  }
}

TEST(FormatAgeTest, LargestWholeUnit) {
  TimePoint now = FromUnixMillis(1'700'000'000'000);
  auto ago = [&](int64_t seconds) { return FormatAge(now - std::chrono::seconds(seconds), now); };
  EXPECT_EQ(ago(0), "0s");
  EXPECT_EQ(ago(5), "5s");
  EXPECT_EQ(ago(59), "59s");
  EXPECT_EQ(ago(60), "1m");
  EXPECT_EQ(ago(3 * 60 + 59), "3m");
  EXPECT_EQ(ago(3599), "59m");
  EXPECT_EQ(ago(3600), "1h");
  EXPECT_EQ(ago(2 * 3600 + 100), "2h");
  EXPECT_EQ(ago(86399), "23h");
  EXPECT_EQ(ago(86400), "1d");
  EXPECT_EQ(ago(4 * 86400 + 7), "4d");
  EXPECT_EQ(ago(400 * 86400), "400d");
  EXPECT_EQ(ago(-30), "0s");  // the server's clock is ahead of ours
}

TEST(FormatAgeTest, AgeOfAString) {
  TimePoint now = FromUnixMillis(1'700'000'000'000);
  EXPECT_EQ(AgeOf("2023-11-14T22:08:20Z", now), "5m");
  EXPECT_EQ(AgeOf("", now), "-");
  EXPECT_EQ(AgeOf("not a time", now), "-");
}

TEST(FormatBytesTest, BinaryUnits) {
  EXPECT_EQ(FormatBytes(0), "0B");
  EXPECT_EQ(FormatBytes(512), "512B");
  EXPECT_EQ(FormatBytes(1024), "1Ki");
  EXPECT_EQ(FormatBytes(1536), "1.5Ki");
  EXPECT_EQ(FormatBytes(120LL << 20), "120Mi");
  EXPECT_EQ(FormatBytes((12LL << 30) + 1), "12Gi");
  EXPECT_EQ(FormatBytes(1LL << 30), "1Gi");
  EXPECT_EQ(FormatBytes(-1), "-");
}

}  // namespace
}  // namespace dspool
