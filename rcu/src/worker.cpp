// The domain callback thread: runs the callbacks of threads that do not run
// their own, drives grace periods that were asked for without a waiting
// caller (start_grace_period(), QSBR readers' callbacks), and barrier().
//
// Threading: the worker owns its SegList; other threads reach it only through
// the incoming queue under queue_mutex_. It starts on first need and sleeps on
// a condition variable (a futex) when there is nothing to do.
#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <system_error>
#include <thread>

#include <fmt/format.h>

#include <quiesce/base/futex.hpp>
#include <quiesce/base/signals.hpp>
#include "domain_impl.hpp"
#include "log.hpp"

namespace quiesce::rcu::detail {

using base::futex_wait;
using base::futex_wake_all;

void barrier_callback(Head* head) noexcept {
    BarrierContext* context = static_cast<BarrierHead*>(head)->context;
    // acq_rel: the callbacks that ran before this one happen-before barrier()
    // returns (it acquires through the same counter or the futex word).
    if (context->pending.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        context->done.store(1, std::memory_order_release);  // pairs with the acquire in barrier()
        futex_wake_all(&context->done);
    }
}

void DomainImpl::call_on_worker(Head* head, Callback fn) noexcept {
    check_not_forked();
    head->func = fn;
    incoming_.push(head);  // [MQ1] [MQ2]
    wake_worker();
}

void DomainImpl::hand_off(SegList& list) noexcept {
    Head* last = nullptr;
    Head* first = list.take_all(&last);
    if (first == nullptr) return;
    incoming_.push_chain(first, last);  // keeps their order
    wake_worker();
}

void DomainImpl::wake_worker() noexcept {
    // acquire: pairs with the release below; a started worker is joinable.
    if (!worker_started_.load(std::memory_order_acquire)) {
        std::lock_guard lock(queue_mutex_);
        if (!worker_.joinable()) {
            try {
                base::SignalBlock block;  // the callback thread takes no async signal
                worker_ = std::thread([this] { worker_main(); });
            } catch (const std::system_error& error) {
                logger().critical("domain '{}': cannot start its callback thread: {}",
                                  options_.name, error.what());
                std::abort();
            }
            worker_started_.store(true, std::memory_order_release);
        }
    }
    // [K1] seq_cst, pairs with [K2] in worker_main(): the caller's push
    // ([MQ1], seq_cst) or request ([K3]) came first; either the worker's check
    // after [K2] sees it, or this load sees the worker asleep and wakes it.
    if (worker_sleeping_.load(std::memory_order_seq_cst)) {
        std::lock_guard lock(queue_mutex_);  // the worker is in queue_cv_.wait() or about to be
        queue_cv_.notify_one();
    }
}

bool DomainImpl::batch_hurry() noexcept {
    // relaxed: a hint; missing a barrier that just began costs it one delay.
    if (barrier_waiting_.load(std::memory_order_relaxed) > 0) return true;
    std::lock_guard lock(queue_mutex_);
    return stopping_;
}

void DomainImpl::worker_main() {
    std::string thread_name = "rcu-cb:" + options_.name;
    thread_name.resize(std::min<std::size_t>(thread_name.size(), 15));
    pthread_setname_np(pthread_self(), thread_name.c_str());
    // SCHED_BATCH: waking this thread (a grace period to drive, a reader's
    // quiescent state ending one, the end of a callback_batch pause) does not
    // preempt the thread running on its CPU, usually a busy loop; it runs
    // when that thread's time slice ends or it sleeps, and still gets its
    // fair share. As a normal thread it preempted a loop serving kvcache's
    // load about 1,800 times a second, each time two context switches on the
    // loop's CPU (docs/BENCHMARKS.md). Unprivileged; should the kernel refuse,
    // it stays a normal thread.
    sched_param param{};
    if (const int error = pthread_setschedparam(pthread_self(), SCHED_BATCH, &param); error != 0) {
        logger().debug("domain '{}': its callback thread stays SCHED_OTHER ({})", options_.name,
                       std::generic_category().message(error));
    }
    SegList local;
    for (;;) {
        while (Head* head = incoming_.pop()) local.enqueue(head);
        // acquire: pairs with the CAS in request_gp().
        std::uint64_t wanted = gp_requested_.load(std::memory_order_acquire);
        local.advance(completed_seq());
        // Newly arrived callbacks get a cookie; wanted covers every segment.
        wanted = std::max(wanted, local.accelerate(local.next_empty() ? 0 : snapshot().value()));
        if (wanted > completed_seq()) {
            // Let the callbacks queued over the next moment share this grace
            // period (DomainOptions::callback_batch), unless a barrier() or
            // the domain's end waits for it.
            if (options_.callback_batch.count() > 0 && !batch_hurry()) {
                std::this_thread::sleep_for(options_.callback_batch);
                // acquire: pairs with the CAS in request_gp().
                wanted = std::max(wanted, gp_requested_.load(std::memory_order_acquire));
            }
            drive_until(wanted, false);
        }
        local.advance(completed_seq());
        while (Head* head = local.pop_done()) {
            // Counted before the call: a barrier() that returns has seen it.
            if (head->func != &barrier_callback)
                stat_worker_invoked_.fetch_add(1, std::memory_order_relaxed);  // relaxed: counter
            head->func(head);
        }
        stat_worker_pending_.store(local.size(), std::memory_order_relaxed);  // relaxed: statistic
        if (!local.empty() || !incoming_.empty()) continue;

        std::unique_lock lock(queue_mutex_);
        // [K2] seq_cst, pairs with [K1]: announce the sleep, then look again.
        worker_sleeping_.store(true, std::memory_order_seq_cst);
        bool idle =
            incoming_.empty() && gp_requested_.load(std::memory_order_seq_cst) <= completed_seq();
        if (idle && stopping_) break;
        if (idle) queue_cv_.wait(lock);
        // relaxed: a hint; a stale true only costs a producer one notify.
        worker_sleeping_.store(false, std::memory_order_relaxed);
    }
    worker_sleeping_.store(false, std::memory_order_relaxed);
}

void DomainImpl::barrier() {
    check_not_forked();
    check_may_wait("barrier()");
    std::lock_guard serial(barrier_mutex_);
    barrier_waiting_.fetch_add(1, std::memory_order_relaxed);  // relaxed: a hint (batch_hurry)
    struct Done {
        std::atomic<int>& count;
        ~Done() { count.fetch_sub(1, std::memory_order_relaxed); }
    } done{barrier_waiting_};
    BarrierContext context;
    std::vector<BarrierHead> heads;
    {
        std::lock_guard lock(registry_mutex_);
        heads.resize(qsbr_.size() + 1);  // no reallocation below: heads are handed out
        std::size_t used = 0;
        for (QsbrState* state : qsbr_) {
            std::lock_guard cb_lock(state->cb_mutex);
            if (state->cb_offline) continue;  // its callbacks are already on the worker
            BarrierHead& head = heads[used++];
            head.context = &context;
            head.func = &barrier_callback;
            context.pending.fetch_add(1, std::memory_order_relaxed);  // published by the mutexes
            state->barrier_head = &head;
            // release: pairs with the acquire in QsbrReader::process_callbacks().
            state->barrier_requested.store(true, std::memory_order_release);
        }
        // The worker's head goes last, after every callback queued so far on
        // other threads; a reader going offline later hands its callbacks over
        // before its own barrier head, so those are covered by that head.
        BarrierHead& mine = heads.back();
        mine.context = &context;
        context.pending.fetch_add(1, std::memory_order_relaxed);
        call_on_worker(&mine, &barrier_callback);
    }
    // Drop our bias; unless that finished it, sleep until the last head runs.
    if (context.pending.fetch_sub(1, std::memory_order_acq_rel) == 1) return;
    // A QSBR reader that never calls process_callbacks() would make this wait
    // forever in silence: after stall_timeout (then 2x, 4x ...) say whom we
    // wait for.
    const auto started = Clock::now();
    std::chrono::nanoseconds next_warning = options_.stall_timeout;
    while (context.done.load(std::memory_order_acquire) == 0) {
        if (next_warning.count() <= 0) {
            futex_wait(context.done, 0);
            continue;
        }
        const auto waited = Clock::now() - started;
        if (waited >= next_warning) {
            warn_barrier(waited);
            next_warning *= 2;
            continue;
        }
        futex_wait(context.done, 0, next_warning - waited);
    }
}

void DomainImpl::warn_barrier(Clock::duration waited) noexcept {
    try {
        std::string readers;
        {
            std::lock_guard lock(registry_mutex_);
            for (QsbrState* state : qsbr_) {
                std::lock_guard cb_lock(state->cb_mutex);
                if (state->barrier_head == nullptr) continue;  // answered, or offline
                readers += fmt::format(
                    "\n  QSBR reader '{}' (tid {}) has not called "
                    "process_callbacks() since barrier() began",
                    state->name, state->tid);
            }
        }
        if (readers.empty()) readers = " callbacks still running or waiting for a grace period";
        logger().warn("domain '{}': barrier() has waited {:.0f} ms; waiting for:{}", options_.name,
                      std::chrono::duration<double, std::milli>(waited).count(), readers);
    } catch (...) {
        // Out of memory: the warning is lost, not the barrier.
    }
    // relaxed: a counter.
    stat_callback_warnings_.fetch_add(1, std::memory_order_relaxed);
}

void DomainImpl::shutdown() {
    {
        std::lock_guard lock(registry_mutex_);
        QUIESCE_CHECK(qsbr_.empty(), "rcu::Domain destroyed while QSBR readers are registered");
    }
    barrier();  // every callback queued so far runs
    {
        std::lock_guard lock(queue_mutex_);
        stopping_ = true;
        queue_cv_.notify_one();
    }
    if (worker_.joinable()) worker_.join();
    // The worker stops only with nothing left, also what callbacks queued
    // while it drained; joining it makes its view ours.
    QUIESCE_CHECK(incoming_.empty(), "callbacks queued during rcu::Domain destruction");
}

}  // namespace quiesce::rcu::detail
