#include "metrics/registry.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "base/log.h"
#include "os/fs.h"

namespace dspool::metrics {
namespace {

constexpr std::string_view kLog = "metrics";
constexpr const char* kSuffix = ".tsv";
constexpr int64_t kMinutesPerDay = 1440;

int64_t MinuteOf(TimePoint t) {
  const int64_t ms = ToUnixMillis(t);
  return (ms >= 0 ? ms : ms - 59'999) / 60'000;
}

// The value of one source's minute: a gauge's mean, a delta's sum.
double ValueOf(Kind kind, double sum, int64_t count) {
  return kind == Kind::kGauge ? sum / static_cast<double>(count) : sum;
}

std::string FormatLine(int64_t minute, const std::string& source, const std::string& metric, double sum,
                       int64_t count) {
  char number[40];
  std::snprintf(number, sizeof number, "%.17g", sum);
  return std::to_string(minute) + "\t" + source + "\t" + metric + "\t" + number + "\t" + std::to_string(count) + "\n";
}

bool ParseInt(std::string_view text, int64_t* out) {
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return ec == std::errc() && end == text.data() + text.size();
}

}  // namespace

Kind KindOf(const std::string& metric) {
  for (const char* delta : {"Network In Total", "Network Out Total", "Disk Read Bytes", "Disk Write Bytes"}) {
    if (metric == delta) return Kind::kDelta;
  }
  return Kind::kGauge;
}

Registry::Registry(std::string dir, std::chrono::seconds retention) : dir_(std::move(dir)), retention_(retention) {}

std::string Registry::FileOf(const PoolName& pool) const { return dir_ + "/" + pool.value() + kSuffix; }

void Registry::Put(Minutes& minutes, int64_t minute, double sum, int64_t count) {
  if (minutes.empty() || minutes.back().minute < minute) {
    minutes.push_back({minute, sum, count});
    return;
  }
  auto it = std::lower_bound(minutes.begin(), minutes.end(), minute,
                             [](const Minute& m, int64_t value) { return m.minute < value; });
  if (it != minutes.end() && it->minute == minute) {
    it->sum += sum;
    it->count += count;
  } else {
    minutes.insert(it, {minute, sum, count});
  }
}

Status Registry::Load() {
  if (dir_.empty()) return Status::Ok();
  DSP_RETURN_IF_ERROR(MakeDirs(dir_, 0700));
  DSP_ASSIGN_OR_RETURN(std::vector<std::string> names, ListDir(dir_));
  std::lock_guard lock(mu_);
  for (const std::string& name : names) {
    if (name.size() <= std::strlen(kSuffix) || name.compare(name.size() - std::strlen(kSuffix), std::string::npos, kSuffix) != 0) {
      continue;
    }
    const std::string pool = name.substr(0, name.size() - std::strlen(kSuffix));
    DSP_ASSIGN_OR_RETURN(std::string text, ReadPrivateFile(dir_ + "/" + name));
    Pool& p = pools_[pool];
    int64_t skipped = 0;
    size_t start = 0;
    while (start < text.size()) {
      size_t end = text.find('\n', start);
      if (end == std::string::npos) end = text.size();  // a last line cut short by a crash
      const std::string_view line(text.data() + start, end - start);
      start = end + 1;
      std::vector<std::string_view> f;
      for (size_t a = 0, b; a <= line.size(); a = b + 1) {
        b = line.find('\t', a);
        if (b == std::string_view::npos) b = line.size();
        f.push_back(line.substr(a, b - a));
      }
      int64_t minute = 0, count = 0;
      double sum = 0;
      const std::string number(f.size() == 5 ? f[3] : "");
      char* parsed_end = nullptr;
      if (f.size() == 5) sum = std::strtod(number.c_str(), &parsed_end);
      if (f.size() != 5 || !ParseInt(f[0], &minute) || !ParseInt(f[4], &count) || count <= 0 || f[1].empty() ||
          f[2].empty() || number.empty() || parsed_end != number.c_str() + number.size() || !std::isfinite(sum)) {
        ++skipped;
        continue;
      }
      Put(p.series[std::string(f[2])][std::string(f[1])], minute, sum, count);
      p.written_through = std::max(p.written_through, minute);
    }
    if (skipped > 0) {
      DSP_LOG(kWarning, kLog) << dir_ << "/" << name << ": " << skipped << " lines could not be read and were dropped";
    }
    // A line a crash cut short (or any that could not be read) would glue
    // itself to the next one appended: the file is written again clean.
    if (skipped > 0 || (!text.empty() && text.back() != '\n')) DSP_RETURN_IF_ERROR(Rewrite(pool, p));
  }
  return Status::Ok();
}

void Registry::Add(const PoolName& pool, const std::string& metric, const std::string& source, TimePoint at,
                   double value) {
  if (!std::isfinite(value)) return;
  std::lock_guard lock(mu_);
  Put(pools_[pool.value()].series[metric][source], MinuteOf(at), value, 1);
}

std::vector<double> Registry::Grains(const PoolName& pool, const std::string& metric, const std::string& statistic,
                                     int64_t grain_seconds, TimePoint from, TimePoint to) const {
  const Kind kind = KindOf(metric);
  const int64_t grain = std::max<int64_t>(1, grain_seconds / 60);  // in minutes
  const int64_t first = MinuteOf(from) + (ToUnixMillis(from) % 60'000 != 0);
  const int64_t last = MinuteOf(to) - 1;  // the last minute that ended by `to`
  // grain → the sources' values in it
  std::map<int64_t, std::vector<double>> grains;
  {
    std::lock_guard lock(mu_);
    auto p = pools_.find(pool.value());
    if (p == pools_.end()) return {};
    auto series = p->second.series.find(metric);
    if (series == p->second.series.end()) return {};
    for (const auto& [source, minutes] : series->second) {
      std::map<int64_t, std::pair<double, int64_t>> per_grain;  // grain → (sum of minute values, minutes)
      auto it = std::lower_bound(minutes.begin(), minutes.end(), first,
                                 [](const Minute& m, int64_t value) { return m.minute < value; });
      for (; it != minutes.end() && it->minute <= last; ++it) {
        const int64_t g = (it->minute >= 0 ? it->minute : it->minute - grain + 1) / grain;
        auto& [sum, n] = per_grain[g];
        sum += ValueOf(kind, it->sum, it->count);
        ++n;
      }
      for (const auto& [g, acc] : per_grain) {
        grains[g].push_back(kind == Kind::kGauge ? acc.first / static_cast<double>(acc.second) : acc.first);
      }
    }
  }
  std::vector<double> out;
  for (const auto& [g, values] : grains) {
    if (statistic == "Min") {
      out.push_back(*std::min_element(values.begin(), values.end()));
    } else if (statistic == "Max") {
      out.push_back(*std::max_element(values.begin(), values.end()));
    } else if (statistic == "Count") {
      out.push_back(static_cast<double>(values.size()));
    } else {
      double sum = 0;
      for (double v : values) sum += v;
      out.push_back(statistic == "Sum" ? sum : sum / static_cast<double>(values.size()));
    }
  }
  return out;
}

Status Registry::Rewrite(const std::string& pool, const Pool& p) const {
  std::string text;
  for (const auto& [metric, sources] : p.series) {
    for (const auto& [source, minutes] : sources) {
      for (const Minute& m : minutes) {
        if (m.minute <= p.written_through) text += FormatLine(m.minute, source, metric, m.sum, m.count);
      }
    }
  }
  return WriteFileAtomic(dir_ + "/" + pool + kSuffix, text, 0600);
}

Status Registry::Flush(TimePoint now) {
  const int64_t ended = MinuteOf(now) - 1;
  const int64_t expired = MinuteOf(now - retention_);  // minutes before this one go
  std::lock_guard lock(mu_);
  Status result = Status::Ok();
  for (auto& [pool, p] : pools_) {
    std::string text;
    int64_t live = 0;
    for (auto metric = p.series.begin(); metric != p.series.end();) {
      for (auto source = metric->second.begin(); source != metric->second.end();) {
        Minutes& minutes = source->second;
        auto keep = std::lower_bound(minutes.begin(), minutes.end(), expired,
                                     [](const Minute& m, int64_t value) { return m.minute < value; });
        for (auto m = minutes.begin(); m != keep; ++m) p.expired_lines += m->minute <= p.written_through;
        minutes.erase(minutes.begin(), keep);
        for (const Minute& m : minutes) {
          if (m.minute > p.written_through && m.minute <= ended) {
            text += FormatLine(m.minute, source->first, metric->first, m.sum, m.count);
          }
        }
        live += static_cast<int64_t>(minutes.size());
        source = minutes.empty() ? metric->second.erase(source) : std::next(source);
      }
      metric = metric->second.empty() ? p.series.erase(metric) : std::next(metric);
    }
    p.written_through = std::max(p.written_through, ended);
    if (dir_.empty()) continue;
    Status s;
    if (p.expired_lines >= std::max(kMinutesPerDay, live)) {
      s = Rewrite(pool, p);
      if (s.ok()) p.expired_lines = 0;
    } else if (!text.empty()) {
      s = AppendFile(dir_ + "/" + pool + kSuffix, text, 0600);
    }
    if (!s.ok() && result.ok()) result = s;
  }
  return result;
}

Status Registry::Forget(const PoolName& pool) {
  std::lock_guard lock(mu_);
  pools_.erase(pool.value());
  if (dir_.empty()) return Status::Ok();
  return RemoveTree(FileOf(pool));
}

}  // namespace dspool::metrics
