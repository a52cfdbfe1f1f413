// Result<T>: a value or the Status explaining why there is none.
//
// The C++20 stand-in for std::expected<T, Status>. A Result is never OK
// without a value, and never holds a value with a non-OK Status.
//
//   Result<Pool> pool = store.GetPool(name);
//   if (!pool.ok()) return pool.status();
//   Use(*pool);
//
// Or, inside a function returning Status or Result:
//   DSP_ASSIGN_OR_RETURN(Pool pool, store.GetPool(name));
#pragma once

#include <cassert>
#include <utility>
#include <variant>

#include "base/status.h"

namespace dspool {

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : data_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : data_(std::in_place_index<1>, std::move(status)) {  // NOLINT
    assert(!std::get<1>(data_).ok() && "Result built from an OK Status without a value");
    if (std::get<1>(data_).ok()) data_ = Status(StatusCode::kInternal, "Result from OK status");
  }

  bool ok() const { return data_.index() == 0; }
  Status status() const { return ok() ? Status::Ok() : std::get<1>(data_); }

  // REQUIRES: ok().
  T& value() & { return std::get<0>(data_); }
  const T& value() const& { return std::get<0>(data_); }
  // By value, so `for (auto& x : *Function())` owns what it iterates.
  T value() && { return std::get<0>(std::move(data_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  T value_or(T fallback) const& { return ok() ? value() : std::move(fallback); }

 private:
  std::variant<T, Status> data_;
};

}  // namespace dspool

#define DSP_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                              \
  if (!tmp.ok()) return tmp.status();             \
  lhs = std::move(tmp).value()

// Evaluates `expr` (a Result); returns its Status if not OK, else assigns the
// value to `lhs` (which may be a declaration).
#define DSP_ASSIGN_OR_RETURN(lhs, expr) \
  DSP_ASSIGN_OR_RETURN_IMPL(DSP_CONCAT(dsp_result_, __LINE__), lhs, expr)
