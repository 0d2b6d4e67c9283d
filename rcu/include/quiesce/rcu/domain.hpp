// An RCU domain: the set of readers a grace period waits for, and the update
// side (synchronize, polled grace periods, callbacks, barrier).
//
// Readers come in two kinds that share one domain. QSBR readers (event loops,
// poller threads: see qsbr.hpp) read for free and report quiescent states
// between events. Preemptible readers (any other thread: see read_lock.hpp)
// bracket reads with a ReadLock. A grace period ends once every QSBR reader
// that was online when it began has reported or gone offline, and every
// preemptible read section that began before it has ended.
//
//     struct Config : rcu::Head { int port; };
//     rcu::Ptr<Config> config;                      // published pointer
//
//     { rcu::ReadLock lock; use(config.load()->port); }   // any thread
//
//     auto* old = config.exchange(new Config{...});        // updater
//     rcu::Domain::default_domain().retire(old);           // freed after a GP
//
// Limits: QSBR readers must not call synchronize() while online (it would wait
// for themselves); see rcu/README.md for the algorithm and its orderings.
//
// Threading: every member function may be called from any thread, with the
// preconditions stated on each.
#pragma once

#include <quiesce/base/config.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <type_traits>

#include <quiesce/base/cacheline.hpp>
#include <quiesce/rcu/cookie.hpp>
#include <quiesce/rcu/head.hpp>

namespace quiesce::rcu {

class QsbrReader;

namespace detail {
class DomainImpl;
struct PreemptibleReader;

/// The fields the inline read-side fast paths load. Written only by the
/// grace-period driver (under DomainImpl::gp_mutex_), read by every reader:
/// they share one read-mostly line, away from anything written per event.
struct alignas(base::kNoFalseSharing) DomainHot {
    /// QSBR target: readers copy it at each quiescent state. Never 0 (0 marks
    /// an offline reader). Labels [G1] (store) / [Q1] (load), rcu/README.md.
    std::atomic<std::uint64_t> qs_gp{1};
    /// Preemptible phase: kPhaseBit or 0. Flipped twice per grace period.
    std::atomic<std::uint64_t> phase{0};
    /// -1 while the driver sleeps waiting for preemptible readers: the last
    /// unlock of an old-phase reader then wakes it ([R3] / [M2]).
    std::atomic<std::int32_t> reader_futex{0};
    /// ReadMode::kFences: set once when the domain is made, before any reader.
    bool fences = false;
};

/// The default domain's hot fields, at a fixed address so that the default
/// ReadLock loads them directly (no pointer to follow).
extern DomainHot default_hot;

inline constexpr std::uint64_t kNestMask = (std::uint64_t{1} << 32) - 1;
inline constexpr std::uint64_t kPhaseBit = std::uint64_t{1} << 32;
}  // namespace detail

/// How preemptible readers order their counter store against their reads.
enum class ReadMode {
    kMembarrier,  ///< compiler barrier only; updaters pay membarrier() (default)
    kFences,      ///< full fence on lock and unlock (membarrier unavailable)
};

struct DomainOptions {
    /// Logged in stall warnings and thread names ("rcu-cb:NAME").
    std::string name = "rcu";
    /// A grace period older than this logs a stall warning (then again at 2x,
    /// 4x, ...). Zero disables stall warnings.
    std::chrono::milliseconds stall_timeout{2000};
    /// False forces ReadMode::kFences even where membarrier works (tests).
    bool use_membarrier = true;
    /// The callback thread waits this long before driving a grace period
    /// that only callbacks asked for, so that the callbacks queued meanwhile
    /// share it (as the kernel's RCU waits a jiffy or so). Without it a
    /// steady trickle of call()/retire() drives grace periods back to back:
    /// a context switch on every loop for each. synchronize() and barrier()
    /// callers do not wait for it. Zero: no wait.
    std::chrono::microseconds callback_batch{2000};
};

/// What a stall warning knows about one reader that holds a grace period up.
struct StallInfo {
    std::string name;  ///< as given at registration, or "tid N"
    int tid = 0;
    bool qsbr = false;  ///< QSBR reader (else a preemptible read section)
    /// Time since its last quiescent state (QSBR) or since the grace period
    /// started waiting for it (preemptible).
    std::chrono::nanoseconds since_quiescent{0};
};

/// Called for each holdout of a stalled grace period, on the thread waiting
/// for it; what it returns is appended to the warning (the scheduler names the
/// event group running there). Must not block or touch RCU.
using StallHook = std::function<std::string(const StallInfo&)>;

/// Counters, read with relaxed loads: a snapshot, not a consistent cut.
struct DomainStats {
    std::uint64_t grace_periods = 0;      ///< completed
    std::uint64_t expedited = 0;          ///< synchronize_expedited() calls
    std::uint64_t callbacks_invoked = 0;  ///< by the domain callback thread
    std::uint64_t stall_warnings = 0;     ///< logged (counted after the line is written)
    /// Warnings about callbacks that do not run: a QSBR reader that queues
    /// callbacks without calling process_callbacks(), a barrier() that waits
    /// stall_timeout for such a reader.
    std::uint64_t callback_warnings = 0;
    std::uint64_t qsbr_readers = 0;         ///< registered now
    std::uint64_t preemptible_readers = 0;  ///< registered now
    /// Grace-period latency: from the start of a grace period to its driver
    /// seeing it complete (the wait a synchronize() caller sees, less the
    /// time spent queued behind other grace periods).
    std::uint64_t grace_period_ns_total = 0;
    std::uint64_t grace_period_ns_max = 0;
    /// Histogram of those latencies: bucket i counts grace periods that took
    /// less than kGraceBucketBoundNs << i ns (and at least the bound of
    /// bucket i - 1); the last bucket counts every longer one.
    static constexpr std::size_t kGraceBuckets = 16;
    static constexpr std::uint64_t kGraceBucketBoundNs = 4096;  ///< ~4 us
    std::array<std::uint64_t, kGraceBuckets> grace_period_buckets{};
    /// Callbacks waiting for a grace period or to run, as their owners last
    /// published it: each QSBR reader after its process_callbacks(), the
    /// callback thread after each pass.
    std::uint64_t callbacks_pending = 0;
};

class Domain {
public:
    explicit Domain(DomainOptions options = {});
    /// Runs every callback still queued (a barrier()), then stops the domain
    /// callback thread. Precondition: no QsbrReader of this domain is still
    /// registered, and every ReadLock of it has been destroyed (its destructor
    /// returned: the unlock reads the domain after the section has ended).
    ~Domain();
    Domain(const Domain&) = delete;
    Domain& operator=(const Domain&) = delete;

    /// The process-wide domain that ReadLock, QsbrReader and the scheduler use
    /// by default. Created on first use; never destroyed (threads may still
    /// read at exit). Thread: any.
    static Domain& default_domain();

    /// Blocks until a full grace period has elapsed: every read section that
    /// began before the call has ended. Concurrent callers share grace
    /// periods. Precondition: not inside a read section of this domain and
    /// not an online QSBR reader of it: it would wait for itself, so either
    /// aborts with a message naming the thread (every build).
    /// Thread: any other. Cost: two membarrier() when preemptible readers are
    /// registered, plus the wait for QSBR readers to report.
    void synchronize();

    /// Like synchronize(), with lower latency at a higher update-side cost:
    /// the waits spin (yielding the CPU) instead of sleeping on a futex.
    void synchronize_expedited();

    /// Asks for a grace period to run (the domain callback thread drives it)
    /// and returns the cookie that poll() reports as done once a full grace
    /// period has elapsed since this call. Never blocks. Thread: any.
    GpCookie start_grace_period();

    /// The cookie start_grace_period() would return, without asking for a
    /// grace period (for a caller that will drive one, e.g. synchronize()).
    [[nodiscard]] GpCookie snapshot() const noexcept;

    /// True once the grace period named by `cookie` has completed.
    /// Memory ordering: acquire; a true result happens-after every read
    /// section that the grace period waited for. Cost: one load.
    [[nodiscard]] bool poll(GpCookie cookie) const noexcept;

    /// Queues `fn(head)` to run once, after a grace period. On an online QSBR
    /// reader of this domain the callback is kept on that thread and run by its
    /// QsbrReader::process_callbacks(); on any other thread it goes to the
    /// domain callback thread. Never blocks for a grace period. Thread: any.
    void call(Head* head, Callback fn);

    /// Calls `fn(arg)` once, after a grace period: for C callbacks that carry
    /// a user pointer and have no Head to embed. Allocates a small record.
    /// Thread: any. Throws std::bad_alloc.
    void defer(void (*fn)(void* arg) noexcept, void* arg);

    /// Deletes `ptr` after a grace period. Allocates a small record unless T
    /// derives from Head (then it reuses that Head).
    template <typename T>
    void retire(T* ptr);

    /// Calls `deleter(ptr)` after a grace period (allocates one record).
    template <typename T, typename Deleter>
    void retire(T* ptr, Deleter deleter);

    /// Returns once every callback queued (on any thread) before the call has
    /// run. Precondition: as for synchronize() (checked the same way); online
    /// QSBR readers of this domain keep calling process_callbacks() (they run
    /// their own callbacks): after stall_timeout a warning names those it
    /// still waits for.
    void barrier();

    [[nodiscard]] ReadMode read_mode() const noexcept;
    void set_stall_hook(StallHook hook);
    [[nodiscard]] DomainStats stats() const;
    [[nodiscard]] const std::string& name() const noexcept;

    /// Internal: the implementation, for QsbrReader and ReadLock.
    detail::DomainImpl& impl() noexcept { return *impl_; }
    detail::DomainHot& hot() noexcept { return *hot_; }

private:
    Domain(DomainOptions options, detail::DomainHot* hot);

    detail::DomainHot own_hot_;
    detail::DomainHot* hot_;  // &own_hot_, or &detail::default_hot
    std::unique_ptr<detail::DomainImpl> impl_;
};

namespace detail {
template <typename T, typename Deleter>
struct RetireRecord : Head {
    T* ptr;
    [[no_unique_address]] Deleter deleter;
    RetireRecord(T* p, Deleter d) : ptr(p), deleter(std::move(d)) {}
    static void run(Head* head) noexcept {
        auto* self = static_cast<RetireRecord*>(head);
        self->deleter(self->ptr);
        delete self;
    }
};
struct DefaultDelete {
    template <typename T>
    void operator()(T* p) const noexcept {
        delete p;
    }
};
}  // namespace detail

namespace detail {
struct DeferRecord : Head {
    void (*fn)(void*) noexcept;
    void* arg;
    DeferRecord(void (*f)(void*) noexcept, void* a) : fn(f), arg(a) {}
    static void run(Head* head) noexcept {
        auto* self = static_cast<DeferRecord*>(head);
        self->fn(self->arg);
        delete self;
    }
};
}  // namespace detail

inline void Domain::defer(void (*fn)(void* arg) noexcept, void* arg) {
    call(new detail::DeferRecord(fn, arg), &detail::DeferRecord::run);
}

template <typename T>
void Domain::retire(T* ptr) {
    static_assert(sizeof(T) > 0, "retire() needs a complete type");
    if (ptr == nullptr) return;
    if constexpr (std::is_base_of_v<Head, T>) {
        call(static_cast<Head*>(ptr), [](Head* head) noexcept { delete static_cast<T*>(head); });
    } else {
        retire(ptr, detail::DefaultDelete{});
    }
}

template <typename T, typename Deleter>
void Domain::retire(T* ptr, Deleter deleter) {
    static_assert(std::is_nothrow_invocable_v<Deleter&, T*>, "a deleter must be noexcept");
    if (ptr == nullptr) return;
    auto* record = new detail::RetireRecord<T, Deleter>(ptr, std::move(deleter));
    call(record, &detail::RetireRecord<T, Deleter>::run);
}

}  // namespace quiesce::rcu
