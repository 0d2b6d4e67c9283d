// Outcome<T>: the value a call off the caller's thread returned, or the
// exception it threw instead (OffloadPool, GlibPoller).
//
//     pollers::Outcome<int> got = ...;
//     if (got.ok()) use(got.value());   // value() rethrows the exception
//
// Threading: a plain value; no synchronization of its own.
#pragma once

#include <quiesce/base/config.hpp>

#include <atomic>
#include <exception>
#include <optional>
#include <type_traits>
#include <utility>

namespace quiesce::pollers {

/// A value or the exception that replaced it.
template <typename T>
class Outcome {
public:
    explicit Outcome(T value) : value_(std::move(value)) {}
    explicit Outcome(std::exception_ptr error) noexcept : error_(std::move(error)) {}
    [[nodiscard]] bool ok() const noexcept { return !error_; }
    /// The value; rethrows the exception if there is one.
    T& value() & {
        if (error_) std::rethrow_exception(error_);
        return *value_;
    }
    T&& value() && {
        if (error_) std::rethrow_exception(error_);
        return std::move(*value_);
    }
    [[nodiscard]] const std::exception_ptr& error() const noexcept { return error_; }

private:
    std::optional<T> value_;
    std::exception_ptr error_;
};

template <>
class Outcome<void> {
public:
    Outcome() noexcept = default;
    explicit Outcome(std::exception_ptr error) noexcept : error_(std::move(error)) {}
    [[nodiscard]] bool ok() const noexcept { return !error_; }
    void value() const {
        if (error_) std::rethrow_exception(error_);
    }
    [[nodiscard]] const std::exception_ptr& error() const noexcept { return error_; }

private:
    std::exception_ptr error_;
};

namespace detail {

/// A fiber unwinding (its group closed) while a call it made runs elsewhere
/// must not let the call write into the stack it leaves: waits until the
/// call is done, on the loop thread (yielding the CPU, then sleeping 100 µs
/// at a time). Thread: a loop's.
void wait_until_finished(const std::atomic<bool>& finished) noexcept;

/// Runs `fn` and keeps its result or exception.
template <typename F>
[[nodiscard]] auto capture(F& fn) noexcept -> Outcome<decltype(fn())> {
    using R = decltype(fn());
    try {
        if constexpr (std::is_void_v<R>) {
            fn();
            return Outcome<void>();
        } else {
            return Outcome<R>(fn());
        }
    } catch (...) {
        return Outcome<R>(std::current_exception());
    }
}

}  // namespace detail
}  // namespace quiesce::pollers
