// Domain: construction, the default domain, the public entry points, stall
// warnings and fork detection.
#include <quiesce/rcu/domain.hpp>

#include <pthread.h>

#include <algorithm>

#include <fmt/format.h>

#include <quiesce/base/misuse.hpp>
#include <quiesce/rcu/qsbr.hpp>

#include "domain_impl.hpp"
#include "log.hpp"
#include "membarrier.hpp"

namespace quiesce::rcu {
namespace detail {
namespace {

std::atomic<std::uint64_t> next_domain_id{1};

// Bumped in the child of every fork(). A domain remembers the generation it
// was made in; in a child its other threads (readers, the callback thread, a
// driver holding gp_mutex_) are gone, so it refuses to be used.
std::atomic<std::uint64_t> fork_generation{0};

std::uint64_t current_fork_generation() {
    static std::once_flag once;
    std::call_once(once, [] {
        pthread_atfork(nullptr, nullptr, [] {
            // relaxed: the child has one thread.
            fork_generation.fetch_add(1, std::memory_order_relaxed);
        });
    });
    return fork_generation.load(std::memory_order_relaxed);  // relaxed: see above
}

ReadMode choose_mode(const DomainOptions& options) {
    return options.use_membarrier && membarrier_available() ? ReadMode::kMembarrier
                                                            : ReadMode::kFences;
}

}  // namespace

DomainImpl::DomainImpl(Domain& owner, DomainOptions options)
    : owner_(owner),
      hot_(owner.hot()),
      options_(std::move(options)),
      mode_(choose_mode(options_)),
      id_(next_domain_id.fetch_add(1, std::memory_order_relaxed)),  // relaxed: unique ids only
      fork_generation_(current_fork_generation()) {
    hot_.fences = mode_ == ReadMode::kFences;  // before any reader can see the domain
    // Quiet when the preferred path works; membarrier.cpp warns once when the
    // kernel refuses it. A domain told not to use it (tests) says so at debug.
    logger().debug("domain '{}': preemptible readers use {}", options_.name,
                   mode_ == ReadMode::kMembarrier ? "membarrier (compiler barrier on the read side)"
                                                  : "full fences on the read side");
}

DomainImpl::~DomainImpl() = default;

void DomainImpl::check_not_forked() const {
    QUIESCE_CHECK(fork_generation_ == fork_generation.load(std::memory_order_relaxed),
                  "an rcu::Domain created before fork() was used in the child; create domains "
                  "after fork(), or exec()");
}

void DomainImpl::check_may_wait(const char* what) const {
    // Both checks are a thread-local load or a walk of this thread's (one or
    // two) registrations: cheap next to a grace period, so on in every build.
    if (QsbrReader* self = current_qsbr_reader(owner_); self != nullptr && self->is_online()) {
        base::misuse(fmt::format(
            "rcu::Domain::{} called on {}, an online QSBR reader ('{}') of domain '{}': it would "
            "wait for its own quiescent state forever. Take the thread offline around the call "
            "(rcu::OfflineScope), or do not wait: Domain::call()/retire() (a fiber: "
            "sched::this_fiber::rcu_wait())",
            what, base::this_thread_description(), self->name(), options_.name));
    }
    if (in_read_section(owner_)) {
        base::misuse(fmt::format(
            "rcu::Domain::{} called inside a read section (ReadLock or read_lock()) of domain "
            "'{}' on {}: it would wait for that section to end forever. End the section first, "
            "or use Domain::call()/retire()",
            what, options_.name, base::this_thread_description()));
    }
}

}  // namespace detail

namespace detail {
DomainHot default_hot;
}

Domain::Domain(DomainOptions options) : Domain(std::move(options), nullptr) {}

Domain::Domain(DomainOptions options, detail::DomainHot* hot)
    : hot_(hot != nullptr ? hot : &own_hot_),
      impl_(std::make_unique<detail::DomainImpl>(*this, std::move(options))) {}

Domain::~Domain() {
    impl_->shutdown();
    // Threads that still hold a registration keep their record; orphan it so
    // their exit does not touch this domain.
    std::lock_guard global(detail::registry_mutex());
    std::lock_guard lock(impl_->registry_mutex_);
    for (detail::PreemptibleRecord* record : impl_->preemptible_) {
        QUIESCE_CHECK(!record->reader->in_section(), "rcu::Domain destroyed inside a ReadLock");
        record->domain = nullptr;
    }
    impl_->preemptible_.clear();
}

Domain& Domain::default_domain() {
    // Never destroyed: detached threads may still read during exit.
    static Domain* const instance =
        new Domain(DomainOptions{.name = "default"}, &detail::default_hot);
    return *instance;
}

void Domain::synchronize() {
    impl_->synchronize(false);
}
void Domain::synchronize_expedited() {
    impl_->synchronize(true);
}

GpCookie Domain::start_grace_period() {
    GpCookie cookie = impl_->snapshot();
    impl_->request_gp(cookie.value());
    return cookie;
}

GpCookie Domain::snapshot() const noexcept {
    return impl_->snapshot();
}
bool Domain::poll(GpCookie cookie) const noexcept {
    return impl_->poll(cookie);
}

void Domain::call(Head* head, Callback fn) {
    QsbrReader* reader = current_qsbr_reader(*this);
    if (reader != nullptr && reader->is_online()) {
        reader->call(head, fn);
    } else {
        impl_->call_on_worker(head, fn);
    }
}

void Domain::barrier() {
    impl_->barrier();
}

ReadMode Domain::read_mode() const noexcept {
    return impl_->mode_;
}

void Domain::set_stall_hook(StallHook hook) {
    std::lock_guard lock(impl_->stall_mutex_);
    impl_->stall_hook_ = std::move(hook);
}

DomainStats Domain::stats() const {
    DomainStats stats;
    // relaxed: statistics, not synchronisation.
    stats.grace_periods = impl_->stat_gps_.load(std::memory_order_relaxed);
    stats.expedited = impl_->stat_expedited_.load(std::memory_order_relaxed);
    stats.callbacks_invoked = impl_->stat_worker_invoked_.load(std::memory_order_relaxed);
    // [ST2] acquire, pairs with [ST1] in warn_stall(): a counted warning has
    // been logged.
    stats.stall_warnings = impl_->stat_stalls_.load(std::memory_order_acquire);
    stats.callback_warnings = impl_->stat_callback_warnings_.load(std::memory_order_relaxed);
    stats.grace_period_ns_total = impl_->stat_gp_ns_total_.load(std::memory_order_relaxed);
    stats.grace_period_ns_max = impl_->stat_gp_ns_max_.load(std::memory_order_relaxed);
    for (std::size_t i = 0; i < DomainStats::kGraceBuckets; ++i)
        stats.grace_period_buckets[i] = impl_->stat_gp_buckets_[i].load(std::memory_order_relaxed);
    stats.callbacks_pending = impl_->stat_worker_pending_.load(std::memory_order_relaxed);
    std::lock_guard lock(impl_->registry_mutex_);
    for (const detail::QsbrState* state : impl_->qsbr_)
        stats.callbacks_pending += state->pending.load(std::memory_order_relaxed);
    stats.qsbr_readers = impl_->qsbr_.size();
    stats.preemptible_readers = impl_->preemptible_.size();
    return stats;
}

const std::string& Domain::name() const noexcept {
    return impl_->options_.name;
}

}  // namespace quiesce::rcu
