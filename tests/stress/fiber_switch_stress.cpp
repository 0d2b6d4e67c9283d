// Fiber switch stress: loop threads pass fibers to each other through one
// mutex-protected handoff queue, so every fiber keeps migrating. Each fiber
// checks its stack-resident data and its per-fiber state after every resume,
// suspends inside catch handlers, sometimes ends by throwing; finished
// contexts are mostly reset() and reused, sometimes destroyed and replaced;
// at the end the main thread destroys the suspended ones (cancellation on yet
// another thread). Under TSan the handoff must be the only synchronisation
// needed; under ASan no switch may confuse the stack bookkeeping.
//
// Duration: QUIESCE_STRESS_SECONDS (default 5). Fiber creations are capped in
// the low thousands: a TSan fiber costs ~0.28 ms to create.
#include <catch2/catch.hpp>

#include <pthread.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <random>
#include <stdexcept>
#include <thread>
#include <vector>

#include "fiber_context.hpp"
#include "overflow_guard.hpp"
#include "stress.hpp"

using namespace quiesce;
using sched::detail::FiberContext;
using sched::detail::StackPool;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int kThreads = 4;
constexpr int kLiveFibers = 128;
constexpr std::uint64_t kMaxCreated = 3000;

struct Marker {
    std::uint64_t id;
};

// pthread_self() is declared const: g++ may reuse its value across a switch.
[[gnu::noipa]] pthread_t this_thread() noexcept {
    return pthread_self();
}

struct Job {
    std::unique_ptr<FiberContext> context;
    std::uint64_t id = 0;
    int hops = 0;       // suspends this entry makes before returning
    int hops_done = 0;  // written by the fiber, on whatever thread runs it
    bool ends_by_throwing = false;
    pthread_t last_thread{};
    std::uint64_t migrations = 0;
    std::uint64_t errors = 0;  // integrity failures seen by the fiber
};

void fiber_body(void* arg) {
    auto* job = static_cast<Job*>(arg);
    std::uint64_t pattern[24];
    for (std::size_t i = 0; i < std::size(pattern); ++i) pattern[i] = job->id * 31 + i;
    for (int hop = 0; hop < job->hops; ++hop) {
        ++job->hops_done;
        if (hop % 5 == 2) {
            try {
                throw Marker{job->id};
            } catch (const Marker& m) {
                FiberContext::suspend();  // suspended, and maybe moved, inside a handler
                if (m.id != job->id) ++job->errors;
            }
        } else {
            FiberContext::suspend();
        }
        const pthread_t now = this_thread();
        if (!pthread_equal(now, job->last_thread)) ++job->migrations;
        job->last_thread = now;
        if (FiberContext::current() != job->context.get()) ++job->errors;
        for (std::size_t i = 0; i < std::size(pattern); ++i) {
            if (pattern[i] != job->id * 31 + i) ++job->errors;
        }
    }
    if (job->ends_by_throwing) throw std::runtime_error("job ends by throwing");
}

struct Stress {
    StackPool pool{StackPool::kDefaultStackSize, 32};
    std::mutex mutex;
    std::condition_variable ready;
    std::deque<Job*> queue;  // guarded by mutex
    bool stop = false;       // guarded by mutex
    std::atomic<std::uint64_t> next_id{1};
    std::atomic<std::uint64_t> created{0}, resumes{0}, entries_done{0}, exceptions{0};
    std::atomic<std::uint64_t> lost_exceptions{0}, bad_counts{0};

    void prepare(Job& job, std::mt19937& rng) {
        job.id = next_id.fetch_add(1, std::memory_order_relaxed);
        job.hops = static_cast<int>(rng() % 40) + 1;
        job.hops_done = 0;
        job.ends_by_throwing = job.id % 7 == 0;
        job.last_thread = this_thread();
    }

    void new_context(Job& job) {
        job.context = std::make_unique<FiberContext>(pool, "job " + std::to_string(job.id),
                                                     &fiber_body, &job);
        created.fetch_add(1, std::memory_order_relaxed);
    }

    // A finished entry: check it, then give the job a new one.
    void recycle(Job& job, std::mt19937& rng) {
        std::exception_ptr e = job.context->take_exception();
        if ((e != nullptr) != job.ends_by_throwing) lost_exceptions.fetch_add(1);
        if (e != nullptr) exceptions.fetch_add(1, std::memory_order_relaxed);
        if (job.hops_done != job.hops) bad_counts.fetch_add(1);
        entries_done.fetch_add(1, std::memory_order_relaxed);
        prepare(job, rng);
        if (rng() % 8 == 0 && created.load(std::memory_order_relaxed) < kMaxCreated) {
            job.context.reset();  // ends the old context on this thread
            new_context(job);
        } else {
            job.context->reset(&fiber_body, &job, "job " + std::to_string(job.id));
        }
    }

    void loop(unsigned seed) {
        sched::detail::install_overflow_guard_on_this_thread();
        std::mt19937 rng(seed);
        for (;;) {
            Job* job = nullptr;
            {
                std::unique_lock lock(mutex);
                ready.wait(lock, [&] { return stop || !queue.empty(); });
                if (stop) break;
                job = queue.front();
                queue.pop_front();
            }
            job->context->resume();
            resumes.fetch_add(1, std::memory_order_relaxed);
            if (job->context->finished()) recycle(*job, rng);
            {
                std::lock_guard lock(mutex);
                queue.push_back(job);
            }
            ready.notify_one();
        }
        sched::detail::remove_overflow_guard_from_this_thread();
    }
};

}  // namespace

TEST_CASE("fibers migrating between threads through a handoff queue stay intact",
          "[scheduler][stress]") {
    Stress s;
    std::mt19937 rng(12345);
    std::vector<std::unique_ptr<Job>> jobs;
    for (int i = 0; i < kLiveFibers; ++i) {
        auto job = std::make_unique<Job>();
        s.prepare(*job, rng);
        s.new_context(*job);
        s.queue.push_back(job.get());
        jobs.push_back(std::move(job));
    }
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) threads.emplace_back([&s, t] { s.loop(1000u + t); });
    const auto end = Clock::now() + test::stress_duration();
    while (Clock::now() < end) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    {
        std::lock_guard lock(s.mutex);
        s.stop = true;
    }
    s.ready.notify_all();
    for (auto& t : threads) t.join();

    std::uint64_t errors = 0, migrations = 0, suspended = 0;
    for (auto& job : jobs) {
        errors += job->errors;
        migrations += job->migrations;
        if (job->context->started()) ++suspended;
        job->context.reset();  // cancels a suspended fiber here, on the main thread
    }
    WARN("resumes " << s.resumes.load() << ", entries finished " << s.entries_done.load()
                    << ", contexts created " << s.created.load() << ", migrations " << migrations
                    << ", cancelled at the end " << suspended);
    CHECK(errors == 0);
    CHECK(s.lost_exceptions.load() == 0);
    CHECK(s.bad_counts.load() == 0);
    CHECK(s.exceptions.load() > 0);
    CHECK(s.entries_done.load() > 0);
    CHECK(migrations > 0);
    CHECK(s.pool.in_use() == 0);
}
