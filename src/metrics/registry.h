// Registry: the pools' metrics as per-minute time series, kept for a
// retention period and in files beside the state store, so a restarted
// server keeps its history (docs/autoscale.md, "Metrics").
//
//   metrics::Registry metrics(data_dir + "/metrics", std::chrono::hours(24 * 7));
//   DSP_RETURN_IF_ERROR(metrics.Load());
//   metrics.Add(pool, "Percentage CPU", instance_id, now, 37.5);   // each report
//   metrics.Flush(now);                                            // every minute
//   auto grains = metrics.Grains(pool, "Percentage CPU", "Average", 60, from, to);
//
// A value comes from a source: an instance (its ID) or the pool itself
// (kPoolSource: the gateway's held connections). Within a minute, a
// source's reports of a gauge (CPU, memory, sessions) are averaged and
// those of a delta (bytes in the last report's interval) are summed. A
// query combines, per grain, each source's minutes (gauges averaged,
// deltas summed) and then the sources by `statistic`, as Azure combines a
// scale set's instances. Only minutes that have ended are read.
//
// Files: DIR/<pool>.tsv, one line per source, metric and minute
// ("<minute>\t<source>\t<metric>\t<sum>\t<count>"), appended as minutes end
// and rewritten without the expired ones now and then; root's, 0600.
//
// Thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/ids.h"
#include "base/result.h"

namespace dspool::metrics {

inline constexpr const char* kPoolSource = "pool";

// Gauges are averaged over a minute; deltas summed.
enum class Kind { kGauge, kDelta };
// Of the names model/autoscale.h's AutoscaleMetricNames() lists: the
// byte counts are deltas, the rest gauges.
Kind KindOf(const std::string& metric);

class Registry {
 public:
  // `dir` empty: memory only (tests, the simulator).
  Registry(std::string dir, std::chrono::seconds retention);

  // Reads every pool's file (a line that cannot be read is skipped, with
  // a warning in the log). Call once, before anything else.
  Status Load();

  void Add(const PoolName& pool, const std::string& metric, const std::string& source, TimePoint at, double value);

  // The pool's values of `metric` for each `grain_seconds` grain (aligned
  // to the epoch) with data in the minutes that start in [from, to) and
  // ended by `to`, oldest first: in each grain, each source's minutes
  // (averaged for a gauge, summed for a delta), then the sources combined
  // by `statistic` (Average, Min, Max, Sum, Count: how many sources).
  std::vector<double> Grains(const PoolName& pool, const std::string& metric, const std::string& statistic,
                             int64_t grain_seconds, TimePoint from, TimePoint to) const;

  // Appends every minute that ended by `now` and is not written yet to
  // the pools' files; drops what is older than the retention period (and
  // rewrites a file once a day's worth of lines has expired from it).
  Status Flush(TimePoint now);

  // The pool is gone: its series and file too.
  Status Forget(const PoolName& pool);

  std::chrono::seconds retention() const { return retention_; }

 private:
  struct Minute {
    int64_t minute = 0;  // since the epoch
    double sum = 0;
    int64_t count = 0;
  };
  // One source's minutes of one metric, oldest first.
  using Minutes = std::vector<Minute>;
  struct Pool {
    std::map<std::string, std::map<std::string, Minutes>> series;  // metric → source → minutes
    int64_t written_through = -1;                                  // the last minute in the file
    int64_t expired_lines = 0;                                     // lines in the file that expired since it was written
  };

  std::string FileOf(const PoolName& pool) const;
  static void Put(Minutes& minutes, int64_t minute, double sum, int64_t count);
  Status Rewrite(const std::string& pool, const Pool& p) const;

  const std::string dir_;
  const std::chrono::seconds retention_;
  mutable std::mutex mu_;
  std::map<std::string, Pool> pools_;
};

}  // namespace dspool::metrics
