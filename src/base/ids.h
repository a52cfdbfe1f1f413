// Strong identifier types. A PoolName cannot be passed where an InstanceId is
// expected, although both are strings underneath.
#pragma once

#include <compare>
#include <functional>
#include <ostream>
#include <string>

namespace dspool {

template <typename Tag>
class StrongId {
 public:
  StrongId() = default;
  explicit StrongId(std::string value) : value_(std::move(value)) {}

  const std::string& value() const { return value_; }
  bool empty() const { return value_.empty(); }

  friend auto operator<=>(const StrongId&, const StrongId&) = default;
  friend bool operator==(const StrongId&, const StrongId&) = default;
  friend std::ostream& operator<<(std::ostream& os, const StrongId& id) { return os << id.value_; }

 private:
  std::string value_;
};

using PoolName = StrongId<struct PoolNameTag>;
// "<pool>-<index>-<random suffix>": unique for the life of the server, so a
// replaced instance never reuses the id of the one it replaced.
using InstanceId = StrongId<struct InstanceIdTag>;
using UserName = StrongId<struct UserNameTag>;

}  // namespace dspool

template <typename Tag>
struct std::hash<dspool::StrongId<Tag>> {
  size_t operator()(const dspool::StrongId<Tag>& id) const { return std::hash<std::string>()(id.value()); }
};
