// Coroutine tasks on a Reactor: the one task type of dspool's event loops.
//
//   Task<T>    a coroutine returning T, started by co_await and resumed on
//              the awaiter's return; lazy (nothing runs until awaited), and
//              owned by its awaiter's frame
//   Detached   a coroutine nobody awaits (one per connection, say): starts
//              at once and frees itself at its end
//
// Neither is thread-safe: a coroutine runs on its Reactor's thread, resumed
// by the reactor (an event, a released wait, Schedule) or by the coroutine
// it returns to. Exceptions do not cross: a Task rethrows an exception of
// its body to its awaiter, a Detached logs it and ends (our code does not
// throw; this is for std::bad_alloc and the like).
#pragma once

#include <coroutine>
#include <exception>
#include <optional>
#include <utility>

namespace dspool {

template <class T>
class [[nodiscard]] Task {
 public:
  struct promise_type {
    std::optional<T> value;
    std::exception_ptr error;
    std::coroutine_handle<> continuation;
    Task get_return_object() { return Task(std::coroutine_handle<promise_type>::from_promise(*this)); }
    std::suspend_always initial_suspend() noexcept { return {}; }
    struct Final {
      bool await_ready() noexcept { return false; }
      std::coroutine_handle<> await_suspend(std::coroutine_handle<promise_type> h) noexcept {
        auto c = h.promise().continuation;
        return c ? c : std::noop_coroutine();
      }
      void await_resume() noexcept {}
    };
    Final final_suspend() noexcept { return {}; }
    template <class U>
    void return_value(U&& v) {
      value.emplace(std::forward<U>(v));
    }
    void unhandled_exception() { error = std::current_exception(); }
  };
  explicit Task(std::coroutine_handle<promise_type> h) : h_(h) {}
  Task(Task&& o) noexcept : h_(std::exchange(o.h_, {})) {}
  Task(const Task&) = delete;
  ~Task() {
    if (h_) h_.destroy();
  }
  bool await_ready() const noexcept { return false; }
  std::coroutine_handle<> await_suspend(std::coroutine_handle<> c) noexcept {
    h_.promise().continuation = c;
    return h_;
  }
  T await_resume() {
    if (h_.promise().error) std::rethrow_exception(h_.promise().error);
    return std::move(*h_.promise().value);
  }

 private:
  std::coroutine_handle<promise_type> h_;
};

struct Detached {
  struct promise_type {
    Detached get_return_object() { return {}; }
    std::suspend_never initial_suspend() noexcept { return {}; }
    std::suspend_never final_suspend() noexcept { return {}; }
    void return_void() {}
    void unhandled_exception();  // logs; task.cc
  };
};

}  // namespace dspool
