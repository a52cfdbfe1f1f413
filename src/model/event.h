// Event: one recorded change (who, what, when), the audit log behind
// `dspool events`. Appended in the same store transaction as the change.
//
// `detail` is for people and must never contain a secret.
#pragma once

#include <string>

#include "base/clock.h"
#include "model/json_reader.h"

namespace dspool {

struct Event {
  int64_t seq = 0;  // assigned by the store, increasing
  TimePoint time;
  std::string actor;    // "root" (uid over the socket), "token", "reconcile", "agent:<id>"
  std::string action;   // "pool.create", "instance.ready", "user.key.add", ...
  std::string subject;  // "pool/demo", "instance/demo-0-ab12", "user/alice"
  std::string detail;
  friend bool operator==(const Event&, const Event&) = default;
};

Json EventToJson(const Event& e);

}  // namespace dspool
