// QSBR readers: registration, reports, offline/online, own callbacks.
//
// Threading: QsbrReader members run on the reader's thread; register/
// unregister take registry_mutex_; cb_mutex coordinates with barrier().
#include <quiesce/rcu/qsbr.hpp>

#include <sys/syscall.h>
#include <unistd.h>

#include <time.h>

#include <fmt/format.h>

#include <quiesce/base/misuse.hpp>

#include "domain_impl.hpp"
#include "log.hpp"

namespace quiesce::rcu {
namespace {

// The calling thread's QSBR readers (usually one), newest first. Only this
// thread reads or writes it.
struct ThreadQsbr {
    QsbrReader* reader;
    ThreadQsbr* next;
};
[[gnu::tls_model("initial-exec")]] constinit thread_local ThreadQsbr* tls_qsbr = nullptr;

std::int64_t now_ns() noexcept {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               detail::Clock::now().time_since_epoch())
        .count();
}

// 3.5 ns here, 4 ms resolution: enough to age unprocessed callbacks.
std::int64_t coarse_now_ns() noexcept {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

// Unprocessed-callback checks run every this many call()s.
constexpr std::uint64_t kUnprocessedCheckEvery = 64;

}  // namespace

QsbrReader::QsbrReader(Domain& domain, std::string name)
    : qs_gp_(&domain.hot().qs_gp),
      seen_(0),
      domain_(&domain),
      state_(std::make_unique<detail::QsbrState>()) {
    state_->tid = static_cast<int>(syscall(SYS_gettid));
    state_->name = name.empty() ? "tid " + std::to_string(state_->tid) : std::move(name);
    state_->last_qs_ns.store(now_ns(), std::memory_order_relaxed);  // relaxed: stall info only
    domain.impl().register_qsbr(*state_);
    // Ordering with grace periods comes from registry_mutex_ (see register_qsbr).
    seen_ = state_->ctr.load(std::memory_order_relaxed);  // relaxed: we wrote it under the mutex
    tls_qsbr = new ThreadQsbr{this, tls_qsbr};
}

QsbrReader::~QsbrReader() {
    bool found = false;
    for (ThreadQsbr** link = &tls_qsbr; *link != nullptr; link = &(*link)->next) {
        if ((*link)->reader == this) {
            ThreadQsbr* dead = *link;
            *link = dead->next;
            delete dead;
            found = true;
            break;
        }
    }
    if (!found) {
        base::misuse(fmt::format(
            "rcu::QsbrReader '{}' (tid {}) destroyed on {}: a QSBR reader belongs to the thread "
            "that made it and must end there",
            state_->name, state_->tid, base::this_thread_description()));
    }
    if (online_) offline();
    domain_->impl().unregister_qsbr(*state_);
}

void QsbrReader::report(std::uint64_t target) noexcept {
    // Slow path (once per grace period, or a read section): checked in every build.
    if (!online_) {
        base::misuse(
            fmt::format("QsbrReader::quiescent_state() on the offline QSBR reader '{}' "
                        "on {}: call online() first",
                        state_->name, base::this_thread_description()));
    }
    if (rcu::in_read_section(*domain_)) {
        base::misuse(fmt::format(
            "QsbrReader::quiescent_state() inside an rcu::ReadLock (or read_lock()) of domain "
            "'{}' on {} (QSBR reader '{}'): a quiescent state says the thread holds no RCU "
            "reference. End the read section first",
            domain_->name(), base::this_thread_description(), state_->name));
    }
    if (target == seen_) return;  // a section of another domain sent us here: not ours
    seen_ = target;
    state_->last_qs_ns.store(now_ns(), std::memory_order_relaxed);  // relaxed: stall info only
    // [Q2] seq_cst, pairs with [G3]; release for the reads that ended here.
    state_->ctr.store(target, std::memory_order_seq_cst);
    // [Q3] seq_cst RMW, pairs with [G2]: consume the driver's request once.
    if (state_->must_report.exchange(false, std::memory_order_seq_cst))
        domain_->impl().qs_reported();
}

void QsbrReader::offline() noexcept {
    if (!online_) {
        base::misuse(fmt::format("QsbrReader::offline() on the offline QSBR reader '{}' on {}",
                                 state_->name, base::this_thread_description()));
    }
    online_ = false;
    {
        // Own callbacks (and any pending barrier head, after them) go to the
        // callback thread: nobody would run them while we sleep.
        std::lock_guard lock(state_->cb_mutex);
        state_->cb_offline = true;
        if (state_->barrier_head != nullptr) {
            state_->callbacks.enqueue(state_->barrier_head);
            state_->barrier_head = nullptr;
            state_->barrier_requested.store(false, std::memory_order_relaxed);  // under cb_mutex
        }
        domain_->impl().hand_off(state_->callbacks);
    }
    state_->requested = 0;
    // [Q2] as in report(): ctr = 0 means "offline, nothing to wait for".
    state_->ctr.store(0, std::memory_order_seq_cst);
    if (state_->must_report.exchange(false, std::memory_order_seq_cst))
        domain_->impl().qs_reported();  // [Q3]
}

void QsbrReader::online() noexcept {
    if (online_) {
        base::misuse(fmt::format("QsbrReader::online() on the online QSBR reader '{}' on {}",
                                 state_->name, base::this_thread_description()));
    }
    {
        std::lock_guard lock(state_->cb_mutex);
        state_->cb_offline = false;
    }
    std::uint64_t target = qs_gp_->load(std::memory_order_acquire);  // [Q1]
    state_->ctr.store(target, std::memory_order_relaxed);            // ordered by [O1]
    // [O1] pairs with [G0]: either a grace period's driver sees this ctr, or
    // our reads below see every update made before that grace period began.
    std::atomic_thread_fence(std::memory_order_seq_cst);
    seen_ = target;
    online_ = true;
}

void QsbrReader::call(Head* head, Callback fn) noexcept {
    if (!online_) {
        domain_->impl().call_on_worker(head, fn);
        return;
    }
    head->func = fn;
    state_->callbacks.enqueue(head);
    if (__builtin_expect(++state_->calls_since_process % kUnprocessedCheckEvery == 0, 0))
        check_unprocessed();
}

void QsbrReader::check_unprocessed() noexcept {
    detail::QsbrState& state = *state_;
    const std::int64_t now = coarse_now_ns();
    if (state.calls_since_process == kUnprocessedCheckEvery) {
        state.unprocessed_since_ns = now;
        state.unprocessed_warn_ns = 0;
        return;
    }
    const auto timeout = std::chrono::nanoseconds(domain_->impl().options_.stall_timeout).count();
    if (timeout <= 0) return;
    if (state.unprocessed_warn_ns == 0)
        state.unprocessed_warn_ns = state.unprocessed_since_ns + timeout;
    if (now < state.unprocessed_warn_ns) return;
    const auto age = now - state.unprocessed_since_ns;
    state.unprocessed_warn_ns = state.unprocessed_since_ns + 2 * age;  // back off: 1x, 2x, 4x ...
    detail::logger().warn(
        "domain '{}': QSBR reader '{}' (tid {}) has queued {} callbacks over {:.0f} ms without "
        "calling process_callbacks(): they never run, and barrier() would wait for them. Call "
        "process_callbacks(budget) regularly (after each quiescent_state())",
        domain_->name(), state.name, state.tid, state.calls_since_process,
        static_cast<double>(age) / 1e6);
    // relaxed: a counter.
    domain_->impl().stat_callback_warnings_.fetch_add(1, std::memory_order_relaxed);
}

const std::string& QsbrReader::name() const noexcept {
    return state_->name;
}

namespace {

// What stats() reports as this reader's pending callbacks; a store only when
// the count changed.
void publish_pending(detail::QsbrState& state) noexcept {
    const std::uint64_t now = state.callbacks.size();
    if (now == state.pending_published) return;
    state.pending_published = now;
    state.pending.store(now, std::memory_order_relaxed);  // relaxed: a statistic
}

}  // namespace

std::size_t QsbrReader::process_callbacks(std::size_t budget) noexcept {
    detail::QsbrState& state = *state_;
    state.calls_since_process = 0;
    // acquire: pairs with the release in DomainImpl::barrier(); the head it
    // stored under cb_mutex is read under cb_mutex below anyway.
    if (__builtin_expect(state.barrier_requested.load(std::memory_order_acquire), 0)) {
        std::lock_guard lock(state.cb_mutex);
        if (state.barrier_head != nullptr) {
            state.callbacks.enqueue(state.barrier_head);
            state.barrier_head = nullptr;
        }
        state.barrier_requested.store(false, std::memory_order_relaxed);  // under cb_mutex
    }
    detail::SegList& list = state.callbacks;
    if (list.empty()) {
        publish_pending(state);
        return 0;
    }
    detail::DomainImpl& impl = domain_->impl();
    list.advance(impl.completed_seq());
    if (!list.next_empty()) {
        std::uint64_t wanted = list.accelerate(impl.snapshot().value());
        if (wanted > state.requested) {
            state.requested = wanted;
            impl.request_gp(wanted);
        }
    }
    std::size_t ran = 0;
    while (ran < budget) {
        Head* head = list.pop_done();
        if (head == nullptr) break;
        head->func(head);
        ++ran;
    }
    publish_pending(state);
    return ran;
}

std::size_t QsbrReader::pending_callbacks() const noexcept {
    return state_->callbacks.size();
}

QsbrReader* current_qsbr_reader(Domain& domain) noexcept {
    for (ThreadQsbr* entry = tls_qsbr; entry != nullptr; entry = entry->next) {
        if (&entry->reader->domain() == &domain) return entry->reader;
    }
    return nullptr;
}

namespace detail {

void DomainImpl::register_qsbr(QsbrState& state) {
    check_not_forked();
    std::lock_guard lock(registry_mutex_);
    // Under registry_mutex_: a grace period arming readers either ran before
    // (we copy its target and, through the mutex, see every update before it)
    // or runs after and counts us.
    state.ctr.store(hot_.qs_gp.load(std::memory_order_relaxed), std::memory_order_relaxed);
    qsbr_.push_back(&state);
}

void DomainImpl::unregister_qsbr(QsbrState& state) noexcept {
    // The reader is offline: its callbacks went to the callback thread, and
    // barrier() skips it (cb_offline), so dropping it from the list is all.
    std::lock_guard lock(registry_mutex_);
    std::erase(qsbr_, &state);
}

}  // namespace detail
}  // namespace quiesce::rcu
