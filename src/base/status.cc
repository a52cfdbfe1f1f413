#include "base/status.h"

#include <cerrno>
#include <cstring>

namespace dspool {
namespace {

constexpr std::string_view kNames[] = {
    "OK",          "InvalidArgument",   "NotFound",         "AlreadyExists",
    "FailedPrecondition", "Aborted",    "Unavailable",      "DeadlineExceeded",
    "ResourceExhausted",  "PermissionDenied", "Unauthenticated", "Internal",
};

}  // namespace

std::string_view StatusCodeName(StatusCode code) { return kNames[static_cast<int>(code)]; }

StatusCode StatusCodeFromName(std::string_view name) {
  for (size_t i = 0; i < std::size(kNames); ++i) {
    if (kNames[i] == name) return static_cast<StatusCode>(i);
  }
  return StatusCode::kInternal;
}

Status Status::WithPrefix(std::string_view prefix) const {
  if (ok()) return *this;
  return Status(code_, std::string(prefix) + ": " + message_);
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  return std::string(StatusCodeName(code_)) + ": " + message_;
}

std::ostream& operator<<(std::ostream& os, const Status& status) { return os << status.ToString(); }

Status ErrnoStatus(std::string_view what, int err) {
  StatusCode code = StatusCode::kInternal;
  switch (err) {
    case ENOENT: code = StatusCode::kNotFound; break;
    case EEXIST: code = StatusCode::kAlreadyExists; break;
    case EACCES:
    case EPERM: code = StatusCode::kPermissionDenied; break;
    case EINVAL: code = StatusCode::kInvalidArgument; break;
    case EAGAIN:
    case ECONNREFUSED:
    case ECONNRESET:
    case EADDRINUSE: code = StatusCode::kUnavailable; break;
    case ETIMEDOUT: code = StatusCode::kDeadlineExceeded; break;
    case ENOSPC:
    case ENOMEM:
    case EMFILE: code = StatusCode::kResourceExhausted; break;
    default: break;
  }
  return Status(code, std::string(what) + ": " + std::strerror(err));
}

}  // namespace dspool
