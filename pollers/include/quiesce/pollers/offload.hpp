// OffloadPool: a bounded pool of threads for blocking calls (DNS, a database
// driver, fsync, a compression library) so that no loop ever blocks. The
// result comes back to the group that asked, as an event, or, in a fiber, as
// the return value of a straight-line call that suspends until it is back.
//
//     pollers::OffloadPool pool({.threads = 4, .queue_capacity = 256});
//     pool.start();
//
//     // a stackless group: told when the queue is full
//     bool queued = pool.try_submit(group, [host] { return resolve(host); },
//                                   [](pollers::Outcome<Address> got) { use(got.value()); });
//
//     // a fiber: waits its turn when the queue is full, rethrows fn's exception
//     Address a = pool.call([host] { return resolve(host); });
//
// Bounded: at most `threads` calls run and `queue_capacity` wait; nothing is
// dropped and memory does not grow with the load. Tokio's blocking pool grows
// to 512 threads with an unbounded queue; Seastar has one thread per shard.
//
// Limits: the callable runs on a pool thread, not on the group's loop: it
// must not touch the group's state (hand results back through `done` or the
// return value); it reads RCU data through rcu::ReadLock. stop() waits for
// the calls that run; queued ones are completed with an error Outcome
// (std::errc::operation_canceled), so every `done` runs exactly once while
// its group is open. A fiber whose group closes while its call() runs waits,
// unwinding on its loop, until the call returns: the callable may use the
// fiber's locals. Keep blocking calls bounded (timeouts).
//
// Threading: try_submit() from any thread; call() on a fiber; start()/stop()
// from one thread at a time.
#pragma once

#include <quiesce/base/config.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include <quiesce/pollers/outcome.hpp>
#include <quiesce/pollers/poller.hpp>
#include <quiesce/scheduler/fiber.hpp>
#include <quiesce/scheduler/group.hpp>

namespace quiesce::pollers {

struct OffloadOptions {
    /// Threads that run calls (at least 1).
    unsigned threads = 4;
    /// Calls that may wait for a thread (at least 1); past it try_submit()
    /// returns false and call() waits its turn.
    std::size_t queue_capacity = 1024;
    /// Thread names are "NAME/i"; logs use it too.
    std::string name = "offload";
    /// A worker with nothing to do looks for the next call this long before
    /// it sleeps (yielding its CPU between looks), so that callers that come
    /// back at once wake no one. 0: sleep at once.
    std::chrono::microseconds spin{50};
};

struct OffloadStats {
    std::uint64_t completed = 0;  ///< calls that ran
    std::uint64_t refused = 0;    ///< try_submit() calls told the queue was full
    std::uint64_t waited = 0;     ///< call()s that waited for queue space
    std::uint64_t queued = 0;     ///< waiting now
    std::uint64_t running = 0;    ///< running now
};

namespace detail {

/// One call in flight: run on a pool thread, then delivered. Owned by the
/// pool's queue, then by whoever delivers it.
struct OffloadJob {
    virtual ~OffloadJob() = default;
    /// Runs the callable on a pool thread; keeps its result or exception.
    virtual void run() noexcept = 0;
    /// Hands the result over (posts to the group, or wakes the fiber); may
    /// delete the job. `cancelled`: the pool stopped before it ran.
    virtual void deliver(bool cancelled) noexcept = 0;
};

class OffloadQueue;

}  // namespace detail

class OffloadPool final : public Poller {
public:
    explicit OffloadPool(OffloadOptions options = {});
    /// stop().
    ~OffloadPool() override;

    void start() override;
    void stop() noexcept override;

    /// Runs `fn()` on a pool thread, then `done(Outcome<R>)` as an event of
    /// `group` (R is fn's result). Returns false, running nothing, when the
    /// queue is full or the pool is not running. Thread: any. Cost: one
    /// allocation, a mutex, and a futex wake-up if a thread sleeps.
    template <typename F, typename Done>
    [[nodiscard]] bool try_submit(const sched::Group& group, F&& fn, Done&& done);

    /// In a fiber: runs `fn()` on a pool thread and returns its result (or
    /// rethrows its exception). Waits its turn when the queue is full.
    /// Throws std::system_error(operation_canceled) if the pool stops first.
    /// Yields: yes (a quiescent state).
    template <typename F>
    std::invoke_result_t<F&> call(F&& fn);

    [[nodiscard]] OffloadStats stats() const;
    [[nodiscard]] const OffloadOptions& options() const noexcept { return options_; }

private:
    /// Queues `job` (ownership passes on success). `wait`: in a fiber, park
    /// until there is room instead of refusing.
    bool enqueue(std::unique_ptr<detail::OffloadJob>& job, bool wait);

    const OffloadOptions options_;
    std::unique_ptr<detail::OffloadQueue> queue_;
};

namespace detail {

template <typename F>
using OffloadResult = std::invoke_result_t<F&>;

/// Runs `fn` and keeps its result or exception.
template <typename F>
struct OffloadCall {
    F fn;
    std::optional<Outcome<OffloadResult<F>>> outcome;
    void run() noexcept { outcome.emplace(capture(fn)); }
    void cancel() noexcept {
        outcome.emplace(std::make_exception_ptr(
            std::system_error(std::make_error_code(std::errc::operation_canceled),
                              "the offload pool stopped before the call ran")));
    }
};

/// A stackless submission: the outcome goes to `done` on `group`.
template <typename F, typename Done>
struct GroupJob final : OffloadJob {
    GroupJob(sched::Group g, F f, Done d)
        : group(std::move(g)), call{std::move(f), {}}, done(std::move(d)) {}
    void run() noexcept override { call.run(); }
    void deliver(bool cancelled) noexcept override {
        if (cancelled) call.cancel();
        struct Deliver {
            std::unique_ptr<GroupJob> job;
            void operator()() { job->done(std::move(*job->call.outcome)); }
        };
        // A closed group drops the node, and with it the job. The handle is
        // copied first: the job (and its `group`) may be gone before post()
        // returns, once the loop has run the node.
        const sched::Group target = group;
        (void)target.post(Deliver{std::unique_ptr<GroupJob>(this)});
    }
    sched::Group group;
    OffloadCall<F> call;
    Done done;
};

/// A fiber's call: the fiber owns the job and parks until `finished`.
template <typename F>
struct FiberJob final : OffloadJob {
    FiberJob(F f, sched::FiberWaker w) : call{std::move(f), {}}, waker(std::move(w)) {}
    void run() noexcept override { call.run(); }
    void deliver(bool cancelled) noexcept override {
        if (cancelled) call.cancel();
        sched::FiberWaker wake = waker;  // copied out: once `finished` is seen, we may be gone
        // [OF1] release, pairs with the acquire loads in call() and
        // wait_until_finished(): the result happens-before they read it.
        finished.store(true, std::memory_order_release);
        (void)wake.wake();
    }
    OffloadCall<F> call;
    sched::FiberWaker waker;
    std::atomic<bool> finished{false};
};

}  // namespace detail

template <typename F, typename Done>
bool OffloadPool::try_submit(const sched::Group& group, F&& fn, Done&& done) {
    using Job = detail::GroupJob<std::decay_t<F>, std::decay_t<Done>>;
    std::unique_ptr<detail::OffloadJob> job =
        std::make_unique<Job>(group, std::forward<F>(fn), std::forward<Done>(done));
    return enqueue(job, /*wait=*/false);
}

template <typename F>
std::invoke_result_t<F&> OffloadPool::call(F&& fn) {
    using Job = detail::FiberJob<std::decay_t<F>>;
    auto owned = std::make_unique<Job>(std::forward<F>(fn), sched::this_fiber::waker());
    Job* job = owned.get();
    std::unique_ptr<detail::OffloadJob> handed(owned.release());
    if (!enqueue(handed, /*wait=*/true)) {
        throw std::system_error(std::make_error_code(std::errc::operation_canceled),
                                "the offload pool is not running");
    }
    // The job is the pool's until deliver() marks it finished. If the fiber
    // is cancelled meanwhile (its stack unwinds through park()), the callable
    // may still use the fiber's locals: wait for it before they go.
    struct Owner {
        Job* job;
        ~Owner() {
            detail::wait_until_finished(job->finished);
            delete job;
        }
    } owner{job};
    // [OF1] acquire, pairs with the release store in FiberJob::deliver().
    while (!job->finished.load(std::memory_order_acquire)) sched::this_fiber::park();
    return std::move(*job->call.outcome).value();
}

}  // namespace quiesce::pollers
