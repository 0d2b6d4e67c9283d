// The loop thread: set-up, the main loop, group turns, going idle and sleeping.
// Work stealing and balancing are in balance.cpp.
//
// Threading: see loop.hpp. Labels [S1]-[S3], [C1]-[C3], [W1]-[W4] and [L1]
// are in scheduler/README.md.
#include "loop.hpp"

#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <exception>
#include <future>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>

#include <quiesce/base/assert.hpp>
#include <quiesce/base/futex.hpp>
#include <quiesce/base/misuse.hpp>
#include <quiesce/base/signals.hpp>
#include <quiesce/rcu/qsbr.hpp>
#include <quiesce/rcu/read_lock.hpp>

#include "fiber_state.hpp"
#include "log.hpp"
#include "overflow_guard.hpp"
#include "registry.hpp"
#include "scheduler_impl.hpp"
#include "slice_clock.hpp"

namespace quiesce::sched::detail {
namespace {

// initial-exec: read on every schedule(); the library is linked, not
// dlopen()ed late (as the other hot thread-locals here).
[[gnu::tls_model("initial-exec")]] constinit thread_local Loop* tls_loop = nullptr;

void pin_to(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (int rc = pthread_setaffinity_np(pthread_self(), sizeof(set), &set); rc != 0) {
        throw std::system_error(rc, std::generic_category(), "pin loop thread to its CPU");
    }
}

}  // namespace

Loop::Loop(SchedulerImpl& scheduler, unsigned index, int cpu)
    : scheduler_(scheduler), index_(index), cpu_(cpu), timers_(*this) {}

Loop::~Loop() {
    QUIESCE_ASSERT(!thread_.joinable(), "a loop is destroyed only after stop_and_join()");
}

Loop* Loop::current() noexcept {
    return tls_loop;
}

GroupCore* Loop::current_group() noexcept {
    Loop* loop = tls_loop;
    // relaxed: the loop's own field, read on its own thread
    return loop != nullptr ? loop->current_.load(std::memory_order_relaxed) : nullptr;
}

void Loop::start() {
    std::promise<void> ready;
    std::future<void> started = ready.get_future();
    {
        base::SignalBlock block;  // loops take no async signal but their tick signal
        thread_ = std::thread([this, &ready] { thread_main(ready); });
    }
    try {
        started.get();
    } catch (...) {
        thread_.join();
        throw;
    }
}

void Loop::thread_main(std::promise<void>& ready) noexcept {
    const SchedulerOptions& options = scheduler_.options();
    std::optional<SliceClock> clock;
    std::optional<rcu::QsbrReader> reader;
    try {
        tls_loop = this;
        // release, pairs with the acquire in tid() (stall hook, stats).
        tid_.store(static_cast<int>(gettid()), std::memory_order_release);
        std::string name = options.name;
        name += '/';
        name += std::to_string(index_);
        name.resize(std::min<std::size_t>(name.size(), 15));  // the kernel's limit
        pthread_setname_np(pthread_self(), name.c_str());
        if (cpu_ >= 0) pin_to(cpu_);
        clock.emplace(options.slice, options.slice_mode);
        std::string reader_name = options.name;
        reader_name += " loop ";
        reader_name += std::to_string(index_);
        reader.emplace(rcu::Domain::default_domain(), std::move(reader_name));
        install_overflow_guard_on_this_thread();  // fibers' stack overflows name the fiber
    } catch (...) {
        tls_loop = nullptr;
        ready.set_exception(std::current_exception());
        return;
    }
    clock_ = &*clock;
    slice_mode_ = clock->mode();
    slice_ticks_in_kernel_ = clock->ticks_in_kernel();
    slice_ = options.slice;
    poll_interval_ns_ = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(options.poll_interval).count());
    idle_spin_ns_ = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(options.idle_spin).count());
    reader_ = &*reader;
    next_balance_ns_ = TimerHeap::now_ns() + scheduler_.balance_interval_ns();
    sampler_.publish(TimerHeap::now_ns());
    ready.set_value();  // `ready` dies with start()'s frame: not touched again
    run();
    remove_overflow_guard_from_this_thread();
    reader_ = nullptr;
    clock_ = nullptr;
    tls_loop = nullptr;
}

void Loop::stop_and_join() {
    // [W3] seq_cst, pairs with the load in idle() after [W1]: either the loop
    // sees the flag before it sleeps or wake() sees it sleeping.
    exit_.store(true, std::memory_order_seq_cst);
    wake();
    if (thread_.joinable()) thread_.join();
}

void Loop::schedule(GroupCore* group) noexcept {
    if (tls_loop == this) {
        // Our own thread: it looks at its local queue before it sleeps (also
        // when this runs inside its waiter's wait()), so no wake-up either.
        // The token and the reference came with the group ([S1]).
        requeue(group, /*spent=*/false);
        return;
    }
    ready_remote_.fetch_add(1, std::memory_order_relaxed);  // relaxed: a load estimate
    // [S3] [MQ1]/[MQ2] release: everything the scheduler of this group did
    // (the last owner's turn, via [S1]) happens-before the turn that pops it.
    inbox_.push(group);
    wake();
}

void Loop::wake() noexcept {
    // [W2] seq_cst load, pairs with [W1] in idle(): a push ([MQ1], seq_cst)
    // before this load is seen by the loop's re-check after [W1], or this load
    // sees the loop asleep. No system call while the loop is awake.
    if (sleeping_.load(std::memory_order_seq_cst) == 0) return;
    // The loop itself, posting from its waiter's callbacks inside wait():
    // it looks at its inbox once wait() returns.
    if (tls_loop == this) return;
    if (sleeping_.exchange(0, std::memory_order_seq_cst) == 1) {
        wakeups_.fetch_add(1, std::memory_order_relaxed);  // relaxed: a counter
        // [LW1] acquire, pairs with the release store in adopt_waiter(): a
        // loop that sleeps with a waiter adopted it before it set `sleeping`
        // ([W1]), so the exchange above makes the pointer visible.
        if (LoopWaiter* waiter = waiter_ptr_.load(std::memory_order_acquire)) {
            waiter->wake();
        } else {
            base::futex_wake(&sleeping_, 1);
        }
    }
}

void Loop::set_waiter(std::shared_ptr<LoopWaiter> waiter) {
    std::lock_guard lock(waiter_mutex_);
    if (installed_) throw std::logic_error("Scheduler::set_loop_waiter: the loop has a waiter");
    installed_ = waiter;
    pending_waiter_ = std::move(waiter);
    // [LW2] seq_cst store, pairs with the seq_cst load in idle(): either the
    // loop sees it before it sleeps, or wake() below sees the loop asleep.
    waiter_pending_.store(true, std::memory_order_seq_cst);
    wake();  // a sleeping loop adopts it now
}

std::shared_ptr<LoopWaiter> Loop::waiter() const {
    std::lock_guard lock(waiter_mutex_);
    return installed_;
}

void Loop::adopt_waiter() noexcept {
    std::lock_guard lock(waiter_mutex_);
    waiter_pending_.store(false, std::memory_order_relaxed);  // relaxed: under the mutex
    if (!pending_waiter_) return;
    waiter_ = std::move(pending_waiter_);
    // [LW1] release, pairs with the acquire load in wake().
    waiter_ptr_.store(waiter_.get(), std::memory_order_release);
    last_poll_cpu_ = turn_end_cpu_;
}

void Loop::run() {
    for (;;) {
        // relaxed: a hint; adopt_waiter() takes the handover under its mutex
        if (__builtin_expect(waiter_pending_.load(std::memory_order_relaxed), 0)) adopt_waiter();
        // relaxed: a hint; serve_steal() claims it with an exchange
        if (steal_to_.load(std::memory_order_relaxed) >= 0) {
            serve_steal();
            turn_end_fresh_ = false;  // it may have woken the thief: no group's time
        }
        take_inbox();
        const bool hog_turn = !spent_.empty() && (local_.empty() || light_phase_over());
        if (RunLink* link = hog_turn ? spent_.pop() : local_.pop(); link != nullptr) {
            add_ready_local(-1);
            if (fresh_owed_ > 0) --fresh_owed_;
            run_turn(group_of(link));
            if (hog_turn) {
                // What was queued meanwhile (and before) runs before the next hog.
                take_inbox();
                start_light_phase();
            }
            between_turns();
            continue;
        }
        between_turns();
        if (!nothing_queued()) continue;  // a push between [MQ1] and [MQ2], or between_turns()
        if (exit_.load(std::memory_order_acquire)) return;
        idle();
    }
}

void Loop::run_turn(GroupCore* group) {
    if (group->home.load(std::memory_order_relaxed) != index_) {
        // relaxed: a placement hint (see group_core.hpp); counters have one writer
        group->home.store(index_, std::memory_order_relaxed);
        group->migrations.store(group->migrations.load(std::memory_order_relaxed) + 1,
                                std::memory_order_relaxed);
        stolen_.store(stolen_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    }
    // [C2] acquire, pairs with [C1] in GroupCore::close().
    if (group->closed.load(std::memory_order_acquire)) {
        finish_close(group);
        return;
    }
    current_.store(group, std::memory_order_release);  // [L1] for the stall hook
    std::uint64_t start = turn_end_cpu_;
    if (turn_end_fresh_) {
        clock_->start_slice_at(slice_ * group->weight, start);
    } else {
        start = clock_->start_slice(slice_ * group->weight);
    }
    bool preempted = run_events(group);
    // Spent: it gave way because its slice was over (not for max_events_per_turn
    // or a fiber's early yield()) with work left; its next turn waits in the
    // spent queue.
    const bool spent =
        preempted && need_resched() && (group->again != nullptr || !group->queue.empty());
    // An event that returned inside a read section (read_lock() without its
    // read_unlock()) would hold up every grace period from here on.
    if (__builtin_expect(rcu::in_any_read_section(), 0)) report_open_read_section(group);
    turn_end_cpu_ = clock_->cpu_now_ns();
    turn_end_fresh_ = true;
    clock_->end_slice();  // nothing between turns reads the clock (start_slice_at())
    std::uint64_t used = turn_end_cpu_ - start;
    current_.store(nullptr, std::memory_order_relaxed);  // relaxed: see running()
    group->cpu_ns.store(group->cpu_ns.load(std::memory_order_relaxed) + used,
                        std::memory_order_relaxed);
    busy_cpu_ns_.store(busy_cpu_ns_.load(std::memory_order_relaxed) + used,
                       std::memory_order_relaxed);
    turns_.store(turns_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    if (group->closed.load(std::memory_order_acquire)) {  // [C2]
        finish_close(group);
        return;
    }
    if (preempted) {
        group->preempted.store(group->preempted.load(std::memory_order_relaxed) + 1,
                               std::memory_order_relaxed);
    }
    if (spent) {
        requeue(group, /*spent=*/true);
        return;
    }
    finish_turn(group, preempted, /*open=*/true);
}

// Runs the group's events until it is empty, its slice is spent, an event asks
// to continue later, or the group closes. Returns true if it still has work.
bool Loop::run_events(GroupCore* group) {
    const unsigned max_events = scheduler_.options().max_events_per_turn;
    unsigned ran = 0;
    bool more = false;
    for (;;) {
        EventNode* event = group->next_event();
        if (event == nullptr) break;
        Status status;
        // relaxed: a sequence number for watchers (Scheduler::activity()).
        event_seq_.store(event_seq_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
        try {
            status = event->op(event, Action::kRun);
        } catch (const std::exception& error) {
            event->op(event, Action::kRelease);
            fail_group(group, error.what());
            break;
        } catch (...) {
            event->op(event, Action::kRelease);
            fail_group(group, "an exception not derived from std::exception");
            break;
        }
        if (status == Status::kAgain) {
            group->again = event;
            more = true;
            break;
        }
        event->op(event, Action::kRelease);
        ++ran;
        if (group->closed.load(std::memory_order_relaxed)) break;  // run_turn() re-reads with [C2]
        if (ran >= max_events || need_resched()) {
            more = true;
            break;
        }
    }
    group->events.store(group->events.load(std::memory_order_relaxed) + ran,
                        std::memory_order_relaxed);
    events_.store(events_.load(std::memory_order_relaxed) + ran, std::memory_order_relaxed);
    return more;
}

void Loop::report_open_read_section(const GroupCore* group) noexcept {
    base::misuse("an event of group \"" + group->name + "\" (#" + std::to_string(group->id) +
                 ") returned inside an rcu read section (a read_lock() without its "
                 "read_unlock()) on loop " +
                 std::to_string(index_) +
                 ": the loop would hold up every grace period. End read sections before "
                 "returning; loop code reads RCU data with no lock at all");
}

void Loop::fail_group(GroupCore* group, const char* what) noexcept {
    logger().error("group \"{}\" (#{}) closed: an event threw: {}", group->name, group->id, what);
    // release: this loop holds the token, and run_turn() re-reads `closed`
    // on this thread right after; posters' acquire loads ([C2]) see it.
    group->closed.store(true, std::memory_order_release);
}

void Loop::requeue(GroupCore* group, bool spent) noexcept {
    add_ready_local(1);  // the loop's own thread
    take_inbox();        // what others scheduled meanwhile goes first
    // Either keeps the scheduling token and the reference.
    if (spent) {
        // The first hog waits for a light phase that starts now; later ones
        // queue behind it and leave the phase in progress as it is.
        if (spent_.empty()) start_light_phase();
        spent_.push(group);
    } else {
        local_.push(group);
    }
}

// Ends a turn: requeues a group with work left, else hands the token back.
// `open`: the turn saw the group open at [C2], so a close() may have landed
// since and must not be lost; false after finish_close().
void Loop::finish_turn(GroupCore* group, bool more, bool open) noexcept {
    if (more || !group->queue.empty()) {
        requeue(group, /*spent=*/false);
        return;
    }
    // The queue was empty (seen by its consumer). [S2] seq_cst store, the
    // consumer's half of the Dekker pairs with [S1] in GroupCore::notify()
    // and with [C1]; its release pairs with [S1]'s acquire, handing this turn
    // to the next owner.
    group->scheduled.store(false, std::memory_order_seq_cst);
    // From here another loop may own the group: read no consumer field.
    // [C3] seq_cst load of `closed`: a close() whose [S1] load saw `true`
    // left the close to us, and its [C1] precedes that load, so we see it.
    const bool closed_since = open && group->closed.load(std::memory_order_seq_cst);
    if (!closed_since && group->queue.nothing_pushed_since_empty()) {
        group->unref();  // the run queue's reference
        return;
    }
    // A producer pushed (or closed) after our check. Either its [S1] saw
    // `true` and left the scheduling to us, or it saw `false` and scheduled
    // the group itself.
    if (group->scheduled.exchange(true, std::memory_order_seq_cst)) {  // [S1]
        group->unref();
        return;
    }
    requeue(group, /*spent=*/false);
}

void Loop::finish_close(GroupCore* group) noexcept {
    if (!group->close_done) {
        group->close_done = true;
        turn_end_fresh_ = false;  // the close is charged to no group
        if (group->fiber != nullptr) {
            current_.store(group, std::memory_order_release);  // [L1]
            group->fiber->finish();  // unwinds the fiber before on_close runs
            current_.store(nullptr, std::memory_order_relaxed);
        }
        std::function<void()> on_close = std::move(group->on_close);
        group->on_close = nullptr;
        if (on_close) {
            current_.store(group, std::memory_order_release);  // [L1]
            try {
                on_close();
            } catch (const std::exception& error) {
                logger().error("group \"{}\": close handler threw: {}", group->name, error.what());
            } catch (...) {
                logger().error("group \"{}\": close handler threw", group->name);
            }
            current_.store(nullptr, std::memory_order_relaxed);
        }
        on_close = nullptr;  // its captures die on the loop
        std::lock_guard lock(group->registry->mutex);
        group->registry->finished();
    }
    group->drop_pending();
    finish_turn(group, false, /*open=*/false);
}

void Loop::between_turns() {
    // A busy loop polls its waiter's sources once per poll interval of CPU
    // time (the turn just charged advanced turn_end_cpu_: no clock read).
    if (waiter_ != nullptr && turn_end_cpu_ - last_poll_cpu_ >= poll_interval_ns_) {
        last_poll_cpu_ = turn_end_cpu_;
        waiter_->poll();
        turn_end_fresh_ = false;  // the poll is no group's time
    }
    reader_->quiescent_state();
    if (reader_->process_callbacks(scheduler_.options().callback_budget) != 0) {
        turn_end_fresh_ = false;  // not the next group's CPU time
    }
    // Work piles up here while a loop sleeps: wake it, and its idle() asks
    // for a share (see balance.cpp).
    if (ready() >= 2 && scheduler_.sleepers() > 0 && scheduler_.options().work_stealing) {
        wake_a_sleeper();
        turn_end_fresh_ = false;
    }
    std::int64_t next_timer = timers_.next_deadline();
    if (next_timer == std::numeric_limits<std::int64_t>::max() &&
        ++turns_since_clock_ < kTurnsPerClockRead) {
        return;
    }
    turns_since_clock_ = 0;
    std::int64_t now = TimerHeap::now_ns();
    if (sampler_.due(now)) {
        sampler_.publish(now);
        turn_end_fresh_ = false;
    }
    if (now >= next_timer && timers_.fire_due(now) != 0) turn_end_fresh_ = false;
    if (now >= next_balance_ns_) {
        balance(now);
        turn_end_fresh_ = false;
    }
}

// An idle loop looks for work for a short while before it sleeps: an event
// that comes within microseconds of the last (a client's next request, the
// next socket of a batch, the result of a call it handed to another thread)
// is then taken without the cost of sleeping and being woken (several µs
// here, more with the perf tick source), and the poster makes no wake-up
// call. A loop with a waiter polls its sources; one without gives its CPU to
// any other runnable thread between looks (on a machine with fewer CPUs than
// threads, that thread may be the one that posts to it). Returns true if
// there is work.
bool Loop::spin_before_idle() noexcept {
    if (idle_spin_ns_ == 0) return false;
    // Not past the next timer: it must not fire late for the spin.
    const std::int64_t until = std::min(
        TimerHeap::now_ns() + static_cast<std::int64_t>(idle_spin_ns_), timers_.next_deadline());
    do {
        if (waiter_ != nullptr) {
            waiter_->poll();
        } else {
            sched_yield();
        }
        // relaxed: re-read in idle() / run()
        if (!nothing_queued() || exit_.load(std::memory_order_relaxed) ||
            waiter_pending_.load(std::memory_order_relaxed)) {
            return true;
        }
    } while (TimerHeap::now_ns() < until);
    return false;
}

void Loop::idle() {
    turn_end_fresh_ = false;
    if (spin_before_idle()) return;
    if (scheduler_.options().work_stealing) steal_from_busiest();
    clock_->idle();
    rcu::OfflineScope offline(*reader_);  // no grace period waits for a sleeping loop
    sleeps_.store(sleeps_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    // [W1] seq_cst store, pairs with [W2] in wake(): after it, either the
    // re-checks below see a push/exit/timer, or the poster sees us asleep.
    sleeping_.store(1, std::memory_order_seq_cst);
    // [W3]; [LW2] seq_cst load of waiter_pending_: a waiter installed while
    // the loop went idle is adopted before it sleeps (run() adopts it).
    bool sleep = nothing_queued() && !exit_.load(std::memory_order_seq_cst) &&
                 !waiter_pending_.load(std::memory_order_seq_cst);
    std::chrono::nanoseconds timeout(-1);
    // [W4] seq_cst, pairs with the store in TimerHeap::publish_next(): an
    // earlier deadline armed after this load finds us asleep and wakes us.
    std::int64_t next_timer = timers_.next_deadline_seq_cst();
    if (sleep && next_timer != std::numeric_limits<std::int64_t>::max()) {
        std::int64_t left = next_timer - TimerHeap::now_ns();
        if (left <= 0) sleep = false;
        timeout = std::chrono::nanoseconds(left);
    }
    if (sleep) {
        scheduler_.add_sleeper(1);
        if (waiter_ != nullptr) {
            waiter_->wait(timeout);  // delivers what its sources have ready
        } else {
            base::futex_wait(sleeping_, 1, timeout);
        }
        scheduler_.add_sleeper(-1);
        // A stall that starts now is measured from here, not from before the sleep.
        sampler_.publish(TimerHeap::now_ns());
    }
    sleeping_.store(0, std::memory_order_relaxed);  // relaxed: only this thread sleeps on it
}

void RunFifo::push(RunLink* link) noexcept {
    // relaxed atomic_ref: the link word is the inbox's too (an MpscQueue
    // gives it up when pop() returns the node); one thread here.
    std::atomic_ref<RunLink*>(link->next).store(nullptr, std::memory_order_relaxed);
    if (tail == nullptr) {
        head = link;
    } else {
        std::atomic_ref<RunLink*>(tail->next).store(link, std::memory_order_relaxed);
    }
    tail = link;
    ++count;
}

RunLink* RunFifo::pop() noexcept {
    RunLink* link = head;
    if (link == nullptr) return nullptr;
    head = std::atomic_ref<RunLink*>(link->next).load(std::memory_order_relaxed);
    if (head == nullptr) tail = nullptr;
    --count;
    return link;
}

RunLink* Loop::pop_any() noexcept {
    if (RunLink* link = spent_.pop()) return link;
    return local_.pop();
}

void Loop::take_inbox() noexcept {
    // What other threads scheduled goes behind what is queued here.
    while (RunLink* link = inbox_.pop()) local_.push(link);
}

void Loop::drain_after_exit() noexcept {
    while (RunLink* link = pop_any()) {
        GroupCore* group = group_of(link);
        group->drop_pending();  // the group is closed (stop() closed every group)
        group->unref();         // it keeps `scheduled`: nothing runs it again
    }
    for (;;) {
        RunLink* link = inbox_.pop();
        if (link == nullptr) {
            if (inbox_.empty()) return;
            continue;
        }
        GroupCore* group = group_of(link);
        group->drop_pending();  // the group is closed (stop() closed every group)
        group->unref();         // it keeps `scheduled`: nothing runs it again
    }
}

LoopStats Loop::stats() const noexcept {
    LoopStats out;
    // relaxed: counters, a snapshot
    out.cpu = cpu_;
    out.turns = turns_.load(std::memory_order_relaxed);
    out.events = events_.load(std::memory_order_relaxed);
    out.sleeps = sleeps_.load(std::memory_order_relaxed);
    out.wakeups = wakeups_.load(std::memory_order_relaxed);
    out.stolen = stolen_.load(std::memory_order_relaxed);
    out.given = given_.load(std::memory_order_relaxed);
    out.busy_cpu_ns = busy_cpu_ns_.load(std::memory_order_relaxed);
    out.slice_mode = slice_mode_;
    out.slice_ticks_in_kernel = slice_ticks_in_kernel_;
    return out;
}

}  // namespace quiesce::sched::detail
