// Status: the outcome of an operation that can fail.
//
// dspool code does not throw. Every fallible call returns a Status (or a
// Result<T>, see result.h) carrying one canonical code and a message meant for
// a person: it names what failed and where ("spec.network.subnet: ...").
// Library exceptions are caught at the call and converted.
//
// Thread safety: a Status is a value; copies are independent.
#pragma once

#include <ostream>
#include <string>
#include <string_view>

namespace dspool {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,
  kNotFound,
  kAlreadyExists,
  kFailedPrecondition,
  kAborted,
  kUnavailable,
  kDeadlineExceeded,
  kResourceExhausted,
  kPermissionDenied,
  kUnauthenticated,
  kInternal,
};

// "InvalidArgument", "NotFound", ...; stable, used in API error bodies.
std::string_view StatusCodeName(StatusCode code);
// Inverse of StatusCodeName; kInternal for an unknown name.
StatusCode StatusCodeFromName(std::string_view name);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return {}; }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // Returns a copy whose message is "<prefix>: <message>"; OK stays OK.
  Status WithPrefix(std::string_view prefix) const;
  // "NotFound: pool 'x' does not exist", or "OK".
  std::string ToString() const;

  // Marks a Status as deliberately ignored.
  void IgnoreError() const {}

  friend bool operator==(const Status& a, const Status& b) {
    return a.code_ == b.code_ && a.message_ == b.message_;
  }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

std::ostream& operator<<(std::ostream& os, const Status& status);

inline Status InvalidArgument(std::string m) { return {StatusCode::kInvalidArgument, std::move(m)}; }
inline Status NotFound(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
inline Status AlreadyExists(std::string m) { return {StatusCode::kAlreadyExists, std::move(m)}; }
inline Status FailedPrecondition(std::string m) { return {StatusCode::kFailedPrecondition, std::move(m)}; }
inline Status Aborted(std::string m) { return {StatusCode::kAborted, std::move(m)}; }
inline Status Unavailable(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }
inline Status DeadlineExceeded(std::string m) { return {StatusCode::kDeadlineExceeded, std::move(m)}; }
inline Status ResourceExhausted(std::string m) { return {StatusCode::kResourceExhausted, std::move(m)}; }
inline Status PermissionDenied(std::string m) { return {StatusCode::kPermissionDenied, std::move(m)}; }
inline Status Unauthenticated(std::string m) { return {StatusCode::kUnauthenticated, std::move(m)}; }
inline Status Internal(std::string m) { return {StatusCode::kInternal, std::move(m)}; }

// Builds a Status from errno: "<what>: <strerror>", code mapped from errno.
Status ErrnoStatus(std::string_view what, int err);

}  // namespace dspool

#define DSP_CONCAT_INNER(a, b) a##b
#define DSP_CONCAT(a, b) DSP_CONCAT_INNER(a, b)

// Returns from the enclosing function if `expr` (a Status) is not OK.
#define DSP_RETURN_IF_ERROR(expr)                  \
  do {                                             \
    ::dspool::Status dsp_status_ = (expr);         \
    if (!dsp_status_.ok()) return dsp_status_;     \
  } while (0)
