// Outcome<T>: the value a call off the caller's thread returned, or the
// exception it threw instead (OffloadPool, GlibPoller, QtPoller); and the
// fiber side of such a call.
//
//     pollers::Outcome<int> got = ...;
//     if (got.ok()) use(got.value());   // value() rethrows the exception
//
// Threading: a plain value; no synchronization of its own.
#pragma once

#include <quiesce/base/config.hpp>

#include <atomic>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <system_error>
#include <type_traits>
#include <utility>

#include <quiesce/scheduler/fiber.hpp>

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

/// In a fiber: runs `fn()` on another thread through `post` (queues a
/// std::function<void()> there, returns false when it cannot), parks until
/// it has run, and returns its result or rethrows its exception. Throws
/// std::system_error(operation_canceled) with `not_running` when `post`
/// refuses, or when the queued closure is destroyed without running (its
/// thread could not start). If the fiber unwinds meanwhile (its group
/// closed), waits for `fn` on the way out: it may use the fiber's locals.
/// Yields: yes.
template <typename Post, typename F>
std::invoke_result_t<F&> call_elsewhere(Post&& post, F&& fn, const char* not_running) {
    using R = std::invoke_result_t<F&>;
    struct Shared {
        Shared(F&& f, sched::FiberWaker w) : fn(std::forward<F>(f)), waker(std::move(w)) {}
        std::decay_t<F> fn;
        std::optional<Outcome<R>> outcome;
        sched::FiberWaker waker;
        std::atomic<bool> finished{false};
        const char* not_running = nullptr;
        void finish() noexcept {
            const sched::FiberWaker wake = waker;
            // [CE1] release, pairs with the acquire loads below and in
            // wait_until_finished(): the outcome happens-before they read it.
            finished.store(true, std::memory_order_release);
            (void)wake.wake();
        }
    };
    // Held by every copy of the queued closure: the last one to go answers
    // the fiber if no copy ever ran.
    struct Answer {
        std::shared_ptr<Shared> shared;
        bool ran = false;
        ~Answer() {
            if (ran) return;
            shared->outcome.emplace(std::make_exception_ptr(std::system_error(
                std::make_error_code(std::errc::operation_canceled), shared->not_running)));
            shared->finish();
        }
    };
    auto shared = std::make_shared<Shared>(std::forward<F>(fn), sched::this_fiber::waker());
    shared->not_running = not_running;
    auto answer = std::make_shared<Answer>();  // in place: a temporary would answer at once
    answer->shared = shared;
    const bool queued = post(std::function<void()>([answer] {
        answer->ran = true;
        answer->shared->outcome.emplace(capture(answer->shared->fn));
        answer->shared->finish();
    }));
    if (!queued) {
        answer->ran = true;  // nothing to answer: we throw here
        throw std::system_error(std::make_error_code(std::errc::operation_canceled), not_running);
    }
    answer.reset();
    struct Wait {
        const std::atomic<bool>& finished;
        ~Wait() { wait_until_finished(finished); }
    } wait{shared->finished};
    // [CE1] acquire, pairs with the release store in finish().
    while (!shared->finished.load(std::memory_order_acquire)) sched::this_fiber::park();
    return std::move(*shared->outcome).value();
}

}  // namespace detail
}  // namespace quiesce::pollers
