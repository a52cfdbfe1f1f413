#include "model/event.h"

namespace dspool {

Json EventToJson(const Event& e) {
  return {{"seq", e.seq},         {"time", FormatTime(e.time)}, {"actor", e.actor},
          {"action", e.action},   {"subject", e.subject},       {"detail", e.detail}};
}

}  // namespace dspool
