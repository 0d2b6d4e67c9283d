// FiberContext: resume/suspend order, migration between threads, cancellation
// by unwinding, never-started fibers, captured exceptions, reuse, per-fiber
// exception state and floating-point state.
#include <catch2/catch.hpp>

#include <pthread.h>
#include <xmmintrin.h>

#include <atomic>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "death.hpp"
#include "fiber_context.hpp"

using Catch::Matchers::Contains;
using quiesce::sched::detail::FiberContext;
using quiesce::sched::detail::StackPool;
using quiesce::test::run_death_case;

namespace {

// pthread_self() is declared const: g++ may reuse its value across a switch.
[[gnu::noipa]] pthread_t this_thread() noexcept {
    return pthread_self();
}

template <typename F>
void call(void* arg) {
    (*static_cast<F*>(arg))();
}

struct Tracker {
    std::vector<std::string>* log;
    std::string what;
    ~Tracker() {
        log->push_back(what + (FiberContext::current() != nullptr ? " on fiber" : " off fiber"));
    }
};

}  // namespace

TEST_CASE("resume runs the entry until it suspends, suspend returns to the resumer",
          "[scheduler][unit]") {
    StackPool pool;
    std::vector<std::string> log;
    FiberContext* self = nullptr;
    auto body = [&] {
        self = FiberContext::current();
        log.push_back("a");
        FiberContext::suspend();
        log.push_back("b");
        FiberContext::suspend();
        log.push_back("c");
    };
    FiberContext fiber(pool, "steps", &call<decltype(body)>, &body);
    CHECK(log.empty());
    CHECK_FALSE(fiber.started());
    CHECK_FALSE(fiber.finished());
    CHECK(FiberContext::current() == nullptr);
    fiber.resume();
    CHECK(log == std::vector<std::string>{"a"});
    CHECK(self == &fiber);
    CHECK(fiber.started());
    CHECK(FiberContext::current() == nullptr);
    fiber.resume();
    CHECK(log == std::vector<std::string>{"a", "b"});
    fiber.resume();
    CHECK(log == std::vector<std::string>{"a", "b", "c"});
    CHECK(fiber.finished());
    CHECK(fiber.name() == "steps");
    CHECK(fiber.take_exception() == nullptr);
}

TEST_CASE("fibers interleave in the order they are resumed, and may nest", "[scheduler][unit]") {
    StackPool pool;
    std::string trace;
    auto inner = [&] {
        trace += "i1";
        FiberContext::suspend();
        trace += "i2";
    };
    FiberContext inner_fiber(pool, "inner", &call<decltype(inner)>, &inner);
    auto outer = [&] {
        trace += "o1";
        inner_fiber.resume();  // a fiber resuming another one
        CHECK(FiberContext::current() != &inner_fiber);
        trace += "o2";
        FiberContext::suspend();
        trace += "o3";
    };
    FiberContext outer_fiber(pool, "outer", &call<decltype(outer)>, &outer);
    auto other = [&] {
        trace += "x1";
        FiberContext::suspend();
        trace += "x2";
    };
    FiberContext other_fiber(pool, "other", &call<decltype(other)>, &other);

    outer_fiber.resume();
    other_fiber.resume();
    inner_fiber.resume();
    outer_fiber.resume();
    other_fiber.resume();
    CHECK(trace == "o1i1o2x1i2o3x2");
    CHECK(outer_fiber.finished());
    CHECK(inner_fiber.finished());
    CHECK(other_fiber.finished());
}

TEST_CASE("a fiber resumed alternately from two threads keeps its stack (migration)",
          "[scheduler][unit]") {
    constexpr int kHops = 2000;
    StackPool pool;
    std::atomic<int> turn{0};  // 0: thread A resumes next, 1: thread B; 2: done
    std::vector<pthread_t> seen;
    int wrong_thread = 0;
    int lost_locals = 0;
    FiberContext* fiber_ptr = nullptr;
    auto body = [&] {
        volatile std::uint64_t locals[32];
        for (int i = 0; i < 32; ++i) locals[i] = 0x5eed0000u + static_cast<unsigned>(i);
        for (int hop = 0; hop < kHops; ++hop) {
            seen.push_back(this_thread());
            if (FiberContext::current() != fiber_ptr) ++wrong_thread;
            FiberContext::suspend();
            for (int i = 0; i < 32; ++i) {
                if (locals[i] != 0x5eed0000u + static_cast<unsigned>(i)) ++lost_locals;
            }
        }
    };
    FiberContext fiber(pool, "migrant", &call<decltype(body)>, &body);
    fiber_ptr = &fiber;
    std::vector<pthread_t> resumers;
    auto resumer = [&](int me) {
        for (;;) {
            int t = turn.load(std::memory_order_acquire);
            while (t != me && t != 2) {
                turn.wait(t, std::memory_order_acquire);
                t = turn.load(std::memory_order_acquire);
            }
            if (t == 2) return;
            resumers.push_back(this_thread());
            fiber.resume();
            turn.store(fiber.finished() ? 2 : 1 - me, std::memory_order_release);
            turn.notify_all();
        }
    };
    std::thread a(resumer, 0);
    std::thread b(resumer, 1);
    a.join();
    b.join();
    CHECK(fiber.finished());
    REQUIRE(seen.size() == static_cast<std::size_t>(kHops));
    REQUIRE(resumers.size() == static_cast<std::size_t>(kHops + 1));
    int mismatched = 0;
    for (int hop = 0; hop < kHops; ++hop) mismatched += !pthread_equal(seen[hop], resumers[hop]);
    CHECK(mismatched == 0);
    CHECK(!pthread_equal(resumers[0], resumers[1]));
    CHECK(wrong_thread == 0);
    CHECK(lost_locals == 0);
}

TEST_CASE("a fiber outlives the thread that created and first resumed it", "[scheduler][unit]") {
    StackPool pool;
    std::vector<std::string> log;
    auto body = [&] {
        Tracker t{&log, "end"};
        std::string on_stack = "kept";
        FiberContext::suspend();
        log.push_back(on_stack);
        FiberContext::suspend();
    };
    std::unique_ptr<FiberContext> first, second;
    std::thread creator([&] {
        first = std::make_unique<FiberContext>(pool, "orphan", &call<decltype(body)>, &body);
        second = std::make_unique<FiberContext>(pool, "orphan 2", &call<decltype(body)>, &body);
        first->resume();
    });
    creator.join();  // its stack and (under ASan) its fake stack are gone
    first->resume();
    CHECK(log == std::vector<std::string>{"kept"});
    first.reset();   // cancelled here
    second.reset();  // never started
    CHECK(log == std::vector<std::string>{"kept", "end on fiber"});
}

TEST_CASE("cancelling a suspended fiber unwinds its stack and runs destructors on it",
          "[scheduler][unit]") {
    StackPool pool;
    std::vector<std::string> log;
    bool after_suspend = false;
    bool cancelling_seen = false;
    auto nested = [&] {
        Tracker t{&log, "inner"};
        FiberContext::suspend();
        after_suspend = true;
    };
    auto body = [&] {
        Tracker t{&log, "outer"};
        struct SuspendsInDestructor {
            bool* seen;
            ~SuspendsInDestructor() {
                *seen = FiberContext::current()->cancelling();
                FiberContext::suspend();  // returns at once while cancelling
            }
        } d{&cancelling_seen};
        nested();
    };
    FiberContext fiber(pool, "cancel-me", &call<decltype(body)>, &body);
    fiber.resume();
    CHECK(log.empty());
    fiber.cancel();
    CHECK(fiber.finished());
    CHECK_FALSE(after_suspend);
    CHECK(cancelling_seen);
    CHECK(log == std::vector<std::string>{"inner on fiber", "outer on fiber"});
    CHECK(fiber.take_exception() == nullptr);
    fiber.cancel();  // no-op once finished
}

TEST_CASE("a fiber that swallows the cancellation is cancelled again at its next suspend",
          "[scheduler][unit]") {
    StackPool pool;
    int swallowed = 0;
    bool reached_end = false;
    auto body = [&] {
        try {
            FiberContext::suspend();
        } catch (...) {
            ++swallowed;
        }
        FiberContext::suspend();
        reached_end = true;
    };
    FiberContext fiber(pool, "stubborn", &call<decltype(body)>, &body);
    fiber.resume();
    fiber.cancel();
    CHECK(fiber.finished());
    CHECK(swallowed == 1);
    CHECK_FALSE(reached_end);
}

TEST_CASE("destroying a suspended fiber cancels it first", "[scheduler][unit]") {
    StackPool pool;
    std::vector<std::string> log;
    {
        auto body = [&] {
            Tracker t{&log, "held"};
            for (;;) FiberContext::suspend();
        };
        FiberContext fiber(pool, "doomed", &call<decltype(body)>, &body);
        fiber.resume();
        fiber.resume();
    }
    CHECK(log == std::vector<std::string>{"held on fiber"});
    CHECK(pool.in_use() == 0);
}

TEST_CASE("a never-started fiber is destroyed or cancelled without running its entry",
          "[scheduler][unit]") {
    StackPool pool;
    bool ran = false;
    auto body = [&] { ran = true; };
    { FiberContext fiber(pool, "unborn", &call<decltype(body)>, &body); }
    CHECK_FALSE(ran);
    CHECK(pool.in_use() == 0);

    FiberContext fiber(pool, "unborn-2", &call<decltype(body)>, &body);
    fiber.cancel();
    CHECK(fiber.finished());
    CHECK_FALSE(ran);
    // The cancelled context is reusable like any finished one.
    fiber.reset(&call<decltype(body)>, &body, "born");
    fiber.resume();
    CHECK(ran);
    CHECK(fiber.finished());
}

TEST_CASE("an exception escaping the entry is captured, never propagated", "[scheduler][unit]") {
    StackPool pool;
    auto body = [] {
        FiberContext::suspend();
        throw std::runtime_error("boom");
    };
    FiberContext fiber(pool, "thrower", &call<decltype(body)>, &body);
    fiber.resume();
    CHECK_NOTHROW(fiber.resume());
    CHECK(fiber.finished());
    std::exception_ptr e = fiber.take_exception();
    REQUIRE(e != nullptr);
    CHECK_THROWS_WITH(std::rethrow_exception(e), "boom");
    CHECK(fiber.take_exception() == nullptr);
    CHECK(std::uncaught_exceptions() == 0);
}

TEST_CASE("a finished context is reused by reset() on the same stack", "[scheduler][unit]") {
    StackPool pool;
    int runs = 0;
    std::string last_name;
    auto body = [&] {
        ++runs;
        last_name = FiberContext::current()->name();
        FiberContext::suspend();
    };
    FiberContext fiber(pool, "job 0", &call<decltype(body)>, &body);
    for (int i = 1; i <= 100; ++i) {
        fiber.resume();
        fiber.resume();
        REQUIRE(fiber.finished());
        fiber.reset(&call<decltype(body)>, &body, "job " + std::to_string(i));
    }
    CHECK(runs == 100);
    CHECK(last_name == "job 99");
    CHECK(pool.in_use() == 1);

    // A destroyed context's stack goes back to the pool for the next one.
    void* other_stack = nullptr;
    {
        FiberContext other(pool, "other", &call<decltype(body)>, &body);
        other_stack = &other;
    }
    CHECK(pool.warm() == 1);
    FiberContext third(pool, "third", &call<decltype(body)>, &body);
    CHECK(pool.warm() == 0);
    CHECK(pool.in_use() == 2);
    (void)other_stack;
}

// A TSan fiber keeps one shadow call stack for all its entries; one frame
// leaked per entry (or per cancellation) would overflow it after ~65k.
TEST_CASE("a context survives 70,000 reuses, half of them cancelled", "[scheduler][unit]") {
    StackPool pool;
    int runs = 0;
    auto body = [&] {
        ++runs;
        FiberContext::suspend();
    };
    FiberContext fiber(pool, "reused", &call<decltype(body)>, &body);
    for (int i = 0; i < 70'000; ++i) {
        fiber.resume();
        if (i % 2 == 0) {
            fiber.cancel();
        } else {
            fiber.resume();
        }
        fiber.reset(&call<decltype(body)>, &body, "reused");
    }
    CHECK(runs == 70'000);
}

TEST_CASE("a fiber suspended inside a catch handler keeps its exception", "[scheduler][unit]") {
    StackPool pool;
    std::string rethrown;
    int uncaught_in_fiber = -1;
    auto body = [&] {
        try {
            try {
                throw std::runtime_error("fiber's");
            } catch (const std::exception&) {
                FiberContext::suspend();  // inside the handler
                uncaught_in_fiber = std::uncaught_exceptions();
                throw;  // must rethrow this fiber's exception
            }
        } catch (const std::exception& e) {
            rethrown = e.what();
        }
    };
    FiberContext fiber(pool, "catcher", &call<decltype(body)>, &body);
    auto other = [] {
        try {
            throw std::logic_error("other fiber's");
        } catch (const std::exception&) {
            FiberContext::suspend();
        }
    };
    FiberContext other_fiber(pool, "other", &call<decltype(other)>, &other);

    fiber.resume();
    CHECK(std::current_exception() == nullptr);  // the thread holds none
    try {
        throw std::invalid_argument("thread's");
    } catch (const std::exception&) {
        other_fiber.resume();  // suspends inside its own handler
        std::thread migrate([&] { fiber.resume(); });
        migrate.join();
        CHECK_THROWS_WITH(std::rethrow_exception(std::current_exception()), "thread's");
    }
    CHECK(rethrown == "fiber's");
    CHECK(uncaught_in_fiber == 0);
    other_fiber.resume();
    CHECK(other_fiber.finished());
    CHECK(std::current_exception() == nullptr);
}

TEST_CASE("a fiber starts with its creator's floating-point state and keeps its own",
          "[scheduler][unit]") {
    constexpr unsigned kRoundingMask = 0x6000;
    constexpr unsigned kTowardZero = 0x6000;
    constexpr unsigned kDown = 0x2000;
    constexpr unsigned kUp = 0x4000;
    const unsigned saved = _mm_getcsr();
    StackPool pool;
    unsigned at_start = 0, after_resume = 0;
    auto body = [&] {
        at_start = _mm_getcsr();
        _mm_setcsr((_mm_getcsr() & ~kRoundingMask) | kDown);
        FiberContext::suspend();
        after_resume = _mm_getcsr();
    };
    _mm_setcsr((saved & ~kRoundingMask) | kTowardZero);
    const unsigned creator = _mm_getcsr();
    FiberContext fiber(pool, "fp", &call<decltype(body)>, &body);
    _mm_setcsr((saved & ~kRoundingMask) | kUp);  // the creator's state was captured already
    fiber.resume();
    CHECK(at_start == creator);
    CHECK((_mm_getcsr() & kRoundingMask) == kUp);  // the fiber's change stayed with it
    fiber.resume();
    CHECK((after_resume & kRoundingMask) == kDown);
    CHECK((_mm_getcsr() & kRoundingMask) == kUp);

    // reset() takes the resetting thread's state.
    REQUIRE(fiber.finished());
    const unsigned resetter = _mm_getcsr();
    fiber.reset(&call<decltype(body)>, &body, "fp-2");
    _mm_setcsr(saved);
    fiber.resume();
    CHECK(at_start == resetter);
    fiber.resume();
    CHECK(_mm_getcsr() == saved);
    _mm_setcsr(saved);
}

QUIESCE_DEATH_CASE(suspend_outside_fiber) {
    FiberContext::suspend();
}

TEST_CASE("suspend() outside a fiber aborts", "[scheduler][unit]") {
    auto result = run_death_case("suspend_outside_fiber");
    CHECK(result.aborted);
    CHECK_THAT(result.output, Contains("called outside a fiber"));
}
