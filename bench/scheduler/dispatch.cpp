// Ours in the dispatch-rate comparison: a Scheduler with one loop (pinned,
// default options) and the shapes main.cpp describes. Every shape counts only
// the trivial events; the driver that posts them is part of the cost.
//
// Threading: each shape's state is touched by the loop thread only until it
// sets `done`; the main thread reads it after Scheduler::stop().
#include <cstdint>
#include <memory>
#include <vector>

#include <quiesce/scheduler/scheduler.hpp>

#include "sched_bench.hpp"

namespace quiesce::bench {
namespace {

/// The chain and its driver read the clock once per this many events.
constexpr std::uint64_t kLapEvery = 1024;

sched::SchedulerOptions one_loop() {
    sched::SchedulerOptions options;
    options.threads = 1;
    options.name = "bench";
    return options;
}

struct Chain {
    explicit Chain(Seconds run) : window(run) {}
    sched::Group group;
    Window window;
    std::uint64_t count = 0;
    Done done;
};

// Each event posts the next one to its own group.
void chain_step(Chain* chain) {
    if (chain->count++ % kLapEvery == 0 && chain->window.lap()) {
        chain->done.set();
        return;
    }
    chain->group.post([chain] { chain_step(chain); });
}

struct LambdaBatch {
    LambdaBatch(Seconds run, int n) : window(run), size(n) {}
    sched::Group group;
    Window window;
    int size;
    std::uint64_t count = 0;
    Done done;
};

// Posts `size` events and then itself to its group: it runs again after them.
void lambda_driver(LambdaBatch* batch) {
    if (batch->window.lap()) {
        batch->done.set();
        return;
    }
    for (int i = 0; i < batch->size; ++i) batch->group.post([batch] { ++batch->count; });
    batch->group.post([batch] { lambda_driver(batch); });
}

struct EventBatch {
    EventBatch(Seconds run, int n) : window(run), size(n) {}
    Window window;
    int size;
    std::uint64_t count = 0;
    std::uint64_t ran_in_batch = 0;
    sched::Group driver_group;
    std::vector<sched::Group> groups;  // one per event, or empty: all in driver_group
    std::vector<std::unique_ptr<sched::Event>> events;
    std::unique_ptr<sched::Event> driver;
    Done done;
};

// Posts the pre-created events (to the driver's own group, which runs them
// next in FIFO order, or each to its own group) and then itself.
void event_driver(EventBatch* batch) {
    if (batch->window.lap()) {
        batch->done.set();
        return;
    }
    if (batch->groups.empty()) {
        for (auto& event : batch->events) batch->driver_group.post(*event);
        batch->driver_group.post(*batch->driver);
        return;
    }
    // Distinct groups run in inbox order, after the driver's group has been
    // requeued or not: the last event of the batch posts the driver instead.
    for (std::size_t i = 0; i < batch->events.size(); ++i) batch->groups[i].post(*batch->events[i]);
}

void event_ran(EventBatch* batch) {
    ++batch->count;
    if (!batch->groups.empty() && ++batch->ran_in_batch == batch->events.size()) {
        batch->ran_in_batch = 0;
        batch->driver_group.post(*batch->driver);
    }
}

double run_event_batch(Seconds run, int n, bool distinct_groups) {
    sched::Scheduler scheduler(one_loop());
    EventBatch batch(run, n);
    batch.driver_group = scheduler.make_group({.name = "driver"});
    for (int i = 0; i < n; ++i) {
        batch.events.push_back(std::make_unique<sched::Event>([b = &batch] { event_ran(b); }));
        if (distinct_groups) batch.groups.push_back(scheduler.make_group({}));
    }
    batch.driver = std::make_unique<sched::Event>([b = &batch] { event_driver(b); });
    batch.driver_group.post(*batch.driver);
    batch.done.wait();
    scheduler.stop();
    return batch.window.per_second(batch.count);
}

}  // namespace

double ours_chain(Seconds run) {
    sched::Scheduler scheduler(one_loop());
    Chain chain(run);
    chain.group = scheduler.make_group({.name = "chain"});
    chain.group.post([c = &chain] { chain_step(c); });
    chain.done.wait();
    scheduler.stop();
    return chain.window.per_second(chain.count);
}

double ours_batch_lambdas(Seconds run, int n) {
    sched::Scheduler scheduler(one_loop());
    LambdaBatch batch(run, n);
    batch.group = scheduler.make_group({.name = "batch"});
    batch.group.post([b = &batch] { lambda_driver(b); });
    batch.done.wait();
    scheduler.stop();
    return batch.window.per_second(batch.count);
}

double ours_batch_events(Seconds run, int n) {
    return run_event_batch(run, n, false);
}

double ours_events_to_groups(Seconds run, int n) {
    return run_event_batch(run, n, true);
}

}  // namespace quiesce::bench
