// Fiber switch cost: a resume + suspend round trip of the scheduler's private
// FiberContext against a bare boost::context::fiber, switched in a loop with
// the switch inlined into it (what a microbenchmark shows) and inside
// non-inlined functions on both sides (as a scheduler calls it: FiberContext's
// resume() and suspend() are out of line too).
//
// And what a user's fiber pays to give its loop back: this_fiber::yield() on
// a spawned group, alone on a one-loop Scheduler, so every yield is a whole
// group turn (suspend, requeue, quiescent state, resume).
//
// Threading: each measurement runs on one thread pinned to loop_cpu(). Every
// fiber is created on that thread right before it runs, so it carries the
// thread's floating-point state (FACTS.md: a differing MXCSR costs ~144 ns
// per round trip).
#include <cstdint>

#include <boost/context/fiber.hpp>

#include <quiesce/scheduler/fiber.hpp>
#include <quiesce/scheduler/scheduler.hpp>

#include "fiber_context.hpp"
#include "sched_bench.hpp"
#include "stack_pool.hpp"

namespace quiesce::bench {
namespace {

namespace ctx = boost::context;
using quiesce::sched::detail::FiberContext;
using quiesce::sched::detail::StackPool;

constexpr std::uint64_t kBatch = 1 << 16;

// Resumes `resume_once` in batches until `run` has passed; ns per round trip.
template <typename F>
double time_round_trips(Seconds run, F&& resume_once) {
    Window window(run);
    window.lap();
    std::uint64_t trips = 0;
    do {
        for (std::uint64_t i = 0; i < kBatch; ++i) resume_once();
        trips += kBatch;
    } while (!window.lap());
    return 1e9 / window.per_second(trips);
}

void bounce(void* arg) {
    const bool* stop = static_cast<const bool*>(arg);
    while (!*stop) FiberContext::suspend();
}

[[gnu::noinline]] void raw_switch(ctx::fiber& other) {
    other = std::move(other).resume();
}

}  // namespace

double fiber_context_round_trip(Seconds run) {
    return run_pinned(loop_cpu(), [run] {
        StackPool pool;
        bool stop = false;
        FiberContext fiber(pool, "bench", &bounce, &stop);
        double ns = time_round_trips(run, [&] { fiber.resume(); });
        stop = true;
        fiber.resume();  // lets the entry return
        return ns;
    });
}

double boost_fiber_round_trip(Seconds run) {
    return run_pinned(loop_cpu(), [run] {
        bool stop = false;
        ctx::fiber fiber([&stop](ctx::fiber&& caller) {
            while (!stop) caller = std::move(caller).resume();
            return std::move(caller);
        });
        double ns = time_round_trips(run, [&] { fiber = std::move(fiber).resume(); });
        stop = true;
        fiber = std::move(fiber).resume();  // returns: the fiber ends
        return ns;
    });
}

double boost_fiber_noinline_round_trip(Seconds run) {
    return run_pinned(loop_cpu(), [run] {
        bool stop = false;
        ctx::fiber fiber([&stop](ctx::fiber&& caller) {
            while (!stop) raw_switch(caller);
            return std::move(caller);
        });
        double ns = time_round_trips(run, [&] { raw_switch(fiber); });
        stop = true;
        raw_switch(fiber);
        return ns;
    });
}

double fiber_yield_round_trip(Seconds run) {
    sched::SchedulerOptions options;
    options.threads = 1;
    options.name = "bench";
    sched::Scheduler scheduler(options);
    double ns = 0;
    Done done;
    scheduler.spawn(
        [&] {
            ns = time_round_trips(run, [] { sched::this_fiber::yield(); });
            done.set();
        },
        {.name = "yielder"});
    done.wait();
    scheduler.stop();
    return ns;
}

}  // namespace quiesce::bench
