// The anchors of the dispatch-rate comparison, in the same shapes as ours
// (dispatch.cpp): libevent's event_active() on an event_base without locking
// (no evthread_use_pthreads(), EVENT_BASE_FLAG_NOLOCK), dispatched with
// event_base_loop(EVLOOP_NONBLOCK); and CvPool with its one worker.
//
// Threading: libevent runs on one thread pinned to loop_cpu(); the pool's
// state is touched by its worker only until `done` is set.
#include <event2/event.h>

#include <cstdint>
#include <stdexcept>
#include <vector>

#include "cv_pool.hpp"
#include "sched_bench.hpp"

namespace quiesce::bench {
namespace {

constexpr std::uint64_t kLapEvery = 1024;  // as in dispatch.cpp

event_base* new_base() {
    event_config* config = event_config_new();
    event_config_set_flag(config, EVENT_BASE_FLAG_NOLOCK);
    event_base* base = event_base_new_with_config(config);
    event_config_free(config);
    if (base == nullptr) throw std::runtime_error("event_base_new_with_config failed");
    return base;
}

struct LibeventChain {
    event* ev = nullptr;
    std::uint64_t count = 0;
    int left = 0;
};

// Re-activates itself until the pass's share of the chain has run; libevent
// runs an event activated from a callback in the same loop pass.
void chain_callback(evutil_socket_t, short, void* arg) {
    auto* chain = static_cast<LibeventChain*>(arg);
    ++chain->count;
    if (--chain->left > 0) event_active(chain->ev, EV_READ, 0);
}

void count_callback(evutil_socket_t, short, void* arg) {
    ++*static_cast<std::uint64_t*>(arg);
}

struct PoolChain {
    explicit PoolChain(Seconds run) : window(run) {}
    CvPool* pool = nullptr;
    Window window;
    std::uint64_t count = 0;
    Done done;
};

void pool_chain_step(PoolChain* chain) {
    if (chain->count++ % kLapEvery == 0 && chain->window.lap()) {
        chain->done.set();
        return;
    }
    chain->pool->post([chain] { pool_chain_step(chain); });
}

struct PoolBatch {
    PoolBatch(Seconds run, int n) : window(run), size(n) {}
    CvPool* pool = nullptr;
    Window window;
    int size;
    std::uint64_t count = 0;
    Done done;
};

void pool_driver(PoolBatch* batch) {
    if (batch->window.lap()) {
        batch->done.set();
        return;
    }
    for (int i = 0; i < batch->size; ++i) batch->pool->post([batch] { ++batch->count; });
    batch->pool->post([batch] { pool_driver(batch); });
}

}  // namespace

double libevent_chain(Seconds run) {
    return run_pinned(loop_cpu(), [run] {
        event_base* base = new_base();
        LibeventChain chain;
        chain.ev = event_new(base, -1, 0, &chain_callback, &chain);
        Window window(run);
        window.lap();
        do {
            chain.left = kChainPerPass;
            event_active(chain.ev, EV_READ, 0);
            event_base_loop(base, EVLOOP_NONBLOCK);
        } while (!window.lap());
        event_free(chain.ev);
        event_base_free(base);
        return window.per_second(chain.count);
    });
}

double libevent_batch(Seconds run, int n) {
    return run_pinned(loop_cpu(), [run, n] {
        event_base* base = new_base();
        std::uint64_t count = 0;
        std::vector<event*> events(static_cast<std::size_t>(n));
        for (event*& ev : events) ev = event_new(base, -1, 0, &count_callback, &count);
        Window window(run);
        window.lap();
        do {
            for (event* ev : events) event_active(ev, EV_READ, 0);
            event_base_loop(base, EVLOOP_NONBLOCK);
        } while (!window.lap());
        for (event* ev : events) event_free(ev);
        event_base_free(base);
        return window.per_second(count);
    });
}

double pool_chain(Seconds run) {
    PoolChain chain(run);
    {
        CvPool pool(loop_cpu());
        chain.pool = &pool;
        pool.post([c = &chain] { pool_chain_step(c); });
        chain.done.wait();
    }
    return chain.window.per_second(chain.count);
}

double pool_batch(Seconds run, int n) {
    PoolBatch batch(run, n);
    {
        CvPool pool(loop_cpu());
        batch.pool = &pool;
        pool.post([b = &batch] { pool_driver(b); });
        batch.done.wait();
    }
    return batch.window.per_second(batch.count);
}

}  // namespace quiesce::bench
