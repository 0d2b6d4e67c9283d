// Per-loop timers: the heap, arming from a group, firing, cancelling.
//
// Threading: see timer_heap.hpp.
#include <time.h>

#include <algorithm>
#include <utility>

#include "group_core.hpp"
#include "log.hpp"
#include "loop.hpp"
#include "scheduler_impl.hpp"
#include "timer_heap.hpp"

namespace quiesce::sched {
namespace detail {

std::int64_t TimerHeap::now_ns() noexcept {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);  // vDSO, ~26 ns here; once per loop pass, not per event
    return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

void TimerState::run() {
    if (period_ns == 0) {
        // [T1] acq_rel: pairs with the exchange in Timer::cancel().
        if (!active.exchange(false, std::memory_order_acq_rel)) return;
    } else if (!active.load(std::memory_order_acquire)) {  // [T1]
        return;
    }
    fn();
}

void TimerHeap::arm(std::shared_ptr<TimerState> timer, std::int64_t deadline_ns) {
    bool earliest;
    {
        std::lock_guard lock(mutex_);
        timer->heap = this;
        timer->deadline_ns = deadline_ns;
        push_locked(std::move(timer));
        earliest = heap_.front()->deadline_ns == deadline_ns;
    }
    if (earliest) loop_.wake();  // it may sleep with a later timeout
}

void TimerHeap::remove(TimerState* timer) noexcept {
    std::lock_guard lock(mutex_);
    if (timer->heap != this || timer->index == TimerState::kNotQueued) return;
    remove_locked(timer->index);
}

std::size_t TimerHeap::fire_due(std::int64_t now_ns) {
    std::size_t fired = 0;
    for (;;) {
        std::shared_ptr<TimerState> timer;
        {
            std::lock_guard lock(mutex_);
            if (heap_.empty() || heap_.front()->deadline_ns > now_ns) break;
            timer = pop_locked();
        }
        if (!timer->active.load(std::memory_order_acquire)) continue;  // [T1]
        bool posted = timer->event != nullptr ? timer->group.post(*timer->event)
                                              : timer->group.post([timer] { timer->run(); });
        ++fired;
        if (!posted) {
            // [T1] release, pairs with the acquire loads in active() and
            // run(): its group closed, so the timer is over.
            timer->active.store(false, std::memory_order_release);
            continue;
        }
        if (timer->period_ns != 0) {
            // Next deadline one period on; after a long stall, skip the missed
            // periods instead of firing a burst.
            std::int64_t next = timer->deadline_ns + timer->period_ns;
            if (next <= now_ns) next = now_ns + timer->period_ns;
            std::lock_guard lock(mutex_);
            // [T1] acquire, pairs with cancel()'s exchange (which may have run)
            if (timer->active.load(std::memory_order_acquire)) {
                timer->deadline_ns = next;
                push_locked(std::move(timer));
            }
        }
    }
    return fired;
}

void TimerHeap::clear() noexcept {
    std::vector<std::shared_ptr<TimerState>> dropped;
    {
        std::lock_guard lock(mutex_);
        dropped.swap(heap_);
        for (auto& timer : dropped) {
            timer->index = TimerState::kNotQueued;
            timer->active.store(false, std::memory_order_release);  // [T1], as in fire_due()
        }
        publish_next();
    }
    // The group references die here, outside the lock.
}

std::size_t TimerHeap::size() const {
    std::lock_guard lock(mutex_);
    return heap_.size();
}

void TimerHeap::push_locked(std::shared_ptr<TimerState> timer) {
    heap_.emplace_back();
    place(heap_.size() - 1, std::move(timer));
    sift_up(heap_.size() - 1);
    publish_next();
}

std::shared_ptr<TimerState> TimerHeap::pop_locked() {
    std::shared_ptr<TimerState> top = heap_.front();
    remove_locked(0);
    return top;
}

void TimerHeap::remove_locked(std::size_t index) noexcept {
    heap_[index]->index = TimerState::kNotQueued;
    std::size_t last = heap_.size() - 1;
    if (index != last) {
        place(index, std::move(heap_[last]));
        heap_.pop_back();
        sift_down(index);
        sift_up(index);
    } else {
        heap_.pop_back();
    }
    publish_next();
}

void TimerHeap::place(std::size_t index, std::shared_ptr<TimerState> timer) noexcept {
    timer->index = index;
    heap_[index] = std::move(timer);
}

void TimerHeap::sift_up(std::size_t index) noexcept {
    while (index > 0) {
        std::size_t parent = (index - 1) / 2;
        if (heap_[parent]->deadline_ns <= heap_[index]->deadline_ns) return;
        std::swap(heap_[parent], heap_[index]);
        heap_[parent]->index = parent;
        heap_[index]->index = index;
        index = parent;
    }
}

void TimerHeap::sift_down(std::size_t index) noexcept {
    for (;;) {
        std::size_t smallest = index;
        for (std::size_t child = 2 * index + 1; child <= 2 * index + 2; ++child) {
            if (child < heap_.size() && heap_[child]->deadline_ns < heap_[smallest]->deadline_ns) {
                smallest = child;
            }
        }
        if (smallest == index) return;
        std::swap(heap_[smallest], heap_[index]);
        heap_[smallest]->index = smallest;
        heap_[index]->index = index;
        index = smallest;
    }
}

void TimerHeap::publish_next() noexcept {
    // [W4] seq_cst, pairs with the load in Loop::idle() after [W1]: with the
    // load of `sleeping` in wake() (after arm()) no earlier deadline is missed.
    next_.store(
        heap_.empty() ? std::numeric_limits<std::int64_t>::max() : heap_.front()->deadline_ns,
        std::memory_order_seq_cst);
}

Timer arm_timer(GroupCore* core, std::chrono::nanoseconds delay, std::chrono::nanoseconds period,
                std::function<void()> fn) {
    if (core == nullptr || !group_accepts(core)) return {};
    auto timer = std::make_shared<TimerState>();
    core->ref();
    timer->group = Group::adopt(core);
    timer->fn = std::move(fn);
    timer->period_ns = std::max<std::int64_t>(period.count(), 0);
    if (timer->period_ns != 0 && timer->period_ns < 1000) timer->period_ns = 1000;  // 1 µs floor
    Loop* here = Loop::current();
    Loop& loop = here != nullptr && here->scheduler_of() == core->scheduler
                     ? *here
                     : core->scheduler->loop(core->home.load(std::memory_order_relaxed));
    std::int64_t deadline = TimerHeap::now_ns() + std::max<std::int64_t>(delay.count(), 0);
    loop.timers().arm(timer, deadline);
    return Timer(std::move(timer));
}

}  // namespace detail

bool Timer::cancel() noexcept {
    if (!state_) return false;
    // [T1] acq_rel, pairs with the exchange in TimerState::run().
    if (!state_->active.exchange(false, std::memory_order_acq_rel)) return false;
    if (state_->heap != nullptr) state_->heap->remove(state_.get());
    return true;
}

bool Timer::active() const noexcept {
    return state_ && state_->active.load(std::memory_order_acquire);  // [T1]
}

}  // namespace quiesce::sched
