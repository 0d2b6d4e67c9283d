// The loops every flavour runs, as templates over the flavour's operations so
// each translation unit inlines its own fast path.
//
// Ops must provide: static Reader register_reader(), unregister_reader(Reader&)
// where Reader is what a loop would keep at hand (ours: its QsbrReader);
// template <class F> static void read(F&& body) (one read section);
// static void quiescent(Reader&) (QSBR: report; others: nothing);
// static void synchronize(); static constexpr bool kQsbr.
#pragma once

#include <atomic>
#include <thread>
#include <vector>

#include "../harness.hpp"
#include "flavours.hpp"

namespace quiesce::bench {

/// The updater's pace in the read-throughput runs: 20,000 updates/s.
inline constexpr std::chrono::microseconds kUpdatePeriod{50};

struct Node {
    std::uint64_t value = 1;
};

template <typename Ops>
ReadResult read_throughput(std::atomic<Node*>& shared, std::chrono::milliseconds run,
                           int qs_interval) {
    std::atomic<bool> go{false}, stop{false};
    std::atomic<std::uint64_t> reads{0}, updates{0};
    shared.store(new Node);
    std::thread reader([&] {
        auto context = Ops::register_reader();
        while (!go.load(std::memory_order_acquire)) {
        }
        std::uint64_t n = 0, sum = 0;
        while (!stop.load(std::memory_order_relaxed)) {
            for (int i = 0; i < qs_interval; ++i) {
                Ops::read([&] { sum += shared.load(std::memory_order_acquire)->value; });
            }
            Ops::quiescent(context);
            n += static_cast<std::uint64_t>(qs_interval);
        }
        reads.store(n + (sum == 0 ? 1 : 0));  // keeps `sum` alive
        Ops::unregister_reader(context);
    });
    std::thread updater([&] {
        while (!go.load(std::memory_order_acquire)) {
        }
        // Paced at one update per kUpdatePeriod (busy-waiting on its own CPU),
        // so every flavour's readers face the same update load.
        std::uint64_t n = 0;
        auto next = Clock::now();
        while (!stop.load(std::memory_order_relaxed)) {
            Node* old = shared.exchange(new Node, std::memory_order_acq_rel);
            Ops::synchronize();
            delete old;
            ++n;
            next += kUpdatePeriod;
            while (Clock::now() < next && !stop.load(std::memory_order_relaxed)) {
            }
        }
        updates.store(n);
    });
    auto start = Clock::now();
    go.store(true, std::memory_order_release);
    std::this_thread::sleep_for(run);
    stop.store(true);
    reader.join();
    updater.join();
    double secs = std::chrono::duration<double>(Clock::now() - start).count();
    delete shared.exchange(nullptr);
    return {static_cast<double>(reads.load()) / secs, static_cast<double>(updates.load()) / secs};
}

template <typename Ops>
Latency sync_latency(std::atomic<Node*>& shared, std::size_t samples) {
    std::atomic<bool> ready{false}, stop{false};
    shared.store(new Node);
    std::thread reader([&] {
        auto context = Ops::register_reader();
        ready.store(true);
        std::uint64_t sum = 0;
        while (!stop.load(std::memory_order_relaxed)) {
            Ops::read([&] { sum += shared.load(std::memory_order_acquire)->value; });
            Ops::quiescent(context);
        }
        Ops::unregister_reader(context);
        if (sum == 0) std::abort();
    });
    while (!ready.load()) {
    }
    std::vector<double> us;
    us.reserve(samples);
    for (std::size_t i = 0; i < samples; ++i) {
        Node* old = shared.exchange(new Node, std::memory_order_acq_rel);
        auto t0 = Clock::now();
        Ops::synchronize();
        us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
        delete old;
    }
    stop.store(true);
    reader.join();
    delete shared.exchange(nullptr);
    return summarize(us);
}

}  // namespace quiesce::bench
