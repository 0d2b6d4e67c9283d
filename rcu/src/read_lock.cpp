// Preemptible readers: registration on first read section (or explicitly),
// unregistration at thread exit (or explicitly), the unlock-side wake of a
// sleeping driver, and the misuse reports of the inline read side.
//
// Threading: a thread's records are created and destroyed by that thread,
// under registry_mutex() (global) so that a domain being destroyed can orphan
// them concurrently.
#include <quiesce/rcu/read_lock.hpp>

#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <vector>

#include <quiesce/base/futex.hpp>
#include <quiesce/base/misuse.hpp>
#include "domain_impl.hpp"

namespace quiesce::rcu::detail {

constinit thread_local PreemptibleReader tls_default_reader{};

using base::futex_wait;
using base::futex_wake_all;
namespace {

// Every preemptible registration of this thread, unregistered at thread exit
// by a pthread key destructor: glibc runs those after every C++ thread_local
// destructor, so a ReadLock taken in such a destructor is still covered, and
// if a later key destructor registers again, glibc calls ours once more.
struct ThreadRecords {
    std::vector<PreemptibleRecord*> records;
};
[[gnu::tls_model("initial-exec")]] constinit thread_local ThreadRecords* tls_records = nullptr;

// Last non-default domain looked up by this thread. Keyed by the domain's id,
// which is never reused, so a new domain at a dead one's address cannot match.
struct LookupCache {
    std::uint64_t domain_id;
    PreemptibleReader* reader;
};
[[gnu::tls_model("initial-exec")]] constinit thread_local LookupCache tls_cache{0, nullptr};

void unregister_thread(void* arg) noexcept {
    auto* records = static_cast<ThreadRecords*>(arg);
    {
        std::lock_guard lock(registry_mutex());
        for (PreemptibleRecord* record : records->records) {
            if (record->reader->in_section()) {
                base::misuse(
                    "thread exited inside an rcu read section (a read_lock() without "
                    "its read_unlock()) on " +
                    base::this_thread_description());
            }
            if (record->domain != nullptr) record->domain->remove_preemptible(*record);
            delete record;
        }
    }
    delete records;
    tls_records = nullptr;
    tls_default_reader.hot = nullptr;  // a later ReadLock registers afresh
    tls_cache = {0, nullptr};
}

pthread_key_t exit_key() {
    static const pthread_key_t key = [] {
        pthread_key_t k;
        QUIESCE_CHECK(pthread_key_create(&k, &unregister_thread) == 0, "pthread_key_create failed");
        return k;
    }();
    return key;
}

ThreadRecords& thread_records() {
    if (tls_records == nullptr) {
        tls_records = new ThreadRecords;
        QUIESCE_CHECK(pthread_setspecific(exit_key(), tls_records) == 0,
                      "pthread_setspecific failed");
    }
    return *tls_records;
}

PreemptibleRecord* find_record(const DomainImpl& impl) noexcept {
    if (tls_records == nullptr) return nullptr;
    for (PreemptibleRecord* record : tls_records->records) {
        if (record->domain_id == impl.id_) return record;
    }
    return nullptr;
}

PreemptibleRecord* add_record(Domain& domain, PreemptibleReader* reader,
                              std::unique_ptr<PreemptibleReader> owned) {
    DomainImpl& impl = domain.impl();
    auto* record = new PreemptibleRecord;
    record->reader = reader;
    record->owned = std::move(owned);
    record->domain = &impl;
    record->domain_id = impl.id_;
    record->tid = static_cast<int>(syscall(SYS_gettid));
    std::lock_guard lock(registry_mutex());
    // Published to the driver under registry_mutex_ (in add_preemptible).
    reader->hot = &domain.hot();
    impl.add_preemptible(*record);
    thread_records().records.push_back(record);
    return record;
}

}  // namespace

std::mutex& registry_mutex() {
    static std::mutex mutex;
    return mutex;
}

void register_default_reader() {
    add_record(Domain::default_domain(), &tls_default_reader, nullptr);
}

PreemptibleReader* reader_for(Domain& domain) {
    if (&domain.hot() == &default_hot) {
        if (tls_default_reader.hot == nullptr) register_default_reader();
        return &tls_default_reader;
    }
    DomainImpl& impl = domain.impl();
    if (tls_cache.domain_id == impl.id_) return tls_cache.reader;
    PreemptibleRecord* record = find_record(impl);
    if (record == nullptr) {
        auto owned = std::make_unique<PreemptibleReader>();
        PreemptibleReader* reader = owned.get();
        record = add_record(domain, reader, std::move(owned));
    }
    tls_cache = {impl.id_, record->reader};
    return record->reader;
}

// A registration of this thread, without registering: for unlocks and
// queries. Null when the thread has none with `domain`.
PreemptibleReader* registered_reader(Domain& domain) noexcept {
    if (&domain.hot() == &default_hot)
        return tls_default_reader.hot != nullptr ? &tls_default_reader : nullptr;
    DomainImpl& impl = domain.impl();
    if (tls_cache.domain_id == impl.id_) return tls_cache.reader;
    PreemptibleRecord* record = find_record(impl);
    return record != nullptr ? record->reader : nullptr;
}

void PreemptibleReader::nesting_overflow() noexcept {
    base::misuse("rcu read sections nested 2^32 - 1 deep on " + base::this_thread_description() +
                 ": a read_lock() without its read_unlock() in a loop?");
}

void PreemptibleReader::unmatched_unlock() noexcept {
    base::misuse("unmatched rcu::read_unlock() (or a ReadLock ended twice) on " +
                 base::this_thread_description() +
                 ": this thread is not inside a read section. A section must end on the thread "
                 "that began it: never hold one across a fiber's suspension point");
}

void PreemptibleReader::wake_driver(DomainHot& domain) noexcept {
    // Only the driver sets -1, and only while it sleeps for old-phase readers;
    // several readers may get here, the extra wakes are harmless.
    domain.reader_futex.store(0, std::memory_order_relaxed);  // relaxed: the futex call orders it
    futex_wake_all(&domain.reader_futex);
}

void DomainImpl::add_preemptible(PreemptibleRecord& record) {
    check_not_forked();
    std::lock_guard lock(registry_mutex_);
    preemptible_.push_back(&record);
}

void DomainImpl::remove_preemptible(PreemptibleRecord& record) noexcept {
    std::lock_guard lock(registry_mutex_);
    std::erase(preemptible_, &record);
}

}  // namespace quiesce::rcu::detail

namespace quiesce::rcu {

bool in_read_section(Domain& domain) noexcept {
    if (&domain.hot() == &detail::default_hot) return detail::tls_default_reader.in_section();
    detail::PreemptibleRecord* record = detail::find_record(domain.impl());
    return record != nullptr && record->reader->in_section();
}

bool in_any_read_section() noexcept {
    if (detail::tls_default_reader.in_section()) return true;
    if (detail::tls_records == nullptr) return false;
    for (const detail::PreemptibleRecord* record : detail::tls_records->records) {
        if (record->reader->in_section()) return true;
    }
    return false;
}

void read_lock(Domain& domain) {
    detail::reader_for(domain)->lock(domain.hot());
}

void read_unlock(Domain& domain) noexcept {
    detail::PreemptibleReader* reader = detail::registered_reader(domain);
    if (reader == nullptr) detail::PreemptibleReader::unmatched_unlock();
    reader->unlock(domain.hot());
}

void register_reader_thread(Domain& domain) {
    (void)detail::reader_for(domain);
}

void unregister_reader_thread(Domain& domain) {
    detail::PreemptibleRecord* record = detail::find_record(domain.impl());
    if (record == nullptr) return;
    if (record->reader->in_section()) {
        base::misuse("rcu::unregister_reader_thread() inside a read section of domain '" +
                     domain.name() + "' on " + base::this_thread_description() +
                     ": end the section first");
    }
    {
        std::lock_guard lock(detail::registry_mutex());
        if (record->domain != nullptr) record->domain->remove_preemptible(*record);
        std::erase(detail::tls_records->records, record);
    }
    if (record->reader == &detail::tls_default_reader) detail::tls_default_reader.hot = nullptr;
    if (detail::tls_cache.reader == record->reader) detail::tls_cache = {0, nullptr};
    delete record;
}

}  // namespace quiesce::rcu
