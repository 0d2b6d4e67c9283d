// A program written against the installed quiesce-rcu only, built out of tree
// with `pkg-config --cflags --libs quiesce-rcu` (tests/consumer/run.sh): RCU
// alone, the way a liburcu user would use it.
//
//     rcu_consumer            exercises readers and updaters, prints "rcu ok"
//     rcu_consumer misuse     an unmatched read_unlock(): must abort with a
//                             message in every build type, NDEBUG or not
#include <quiesce/rcu/rcu.hpp>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <thread>
#include <vector>

using namespace quiesce;

namespace {

struct Config : rcu::Head {
    explicit Config(int v) : value(v) {}
    int value;
};

rcu::Ptr<Config> config{new Config(0)};
std::atomic<int> freed{0};

struct Counted : rcu::Head {
    ~Counted() { freed.fetch_add(1); }
};

}  // namespace

int main(int argc, char** argv) {
    if (argc > 1 && std::strcmp(argv[1], "misuse") == 0) {
        rcu::read_unlock();  // never locked: aborts
        std::puts("misuse not caught");
        return 0;
    }
    rcu::Domain& domain = rcu::Domain::default_domain();
    std::atomic<bool> stop{false};
    std::atomic<long> reads{0};
    std::vector<std::thread> readers;
    for (int t = 0; t < 2; ++t) {
        readers.emplace_back([&, t] {
            if (t == 0) {
                rcu::QsbrReader reader(domain, "qsbr");
                while (!stop.load()) {
                    if (config.load()->value < 0) std::abort();
                    reads.fetch_add(1, std::memory_order_relaxed);
                    reader.quiescent_state();
                    reader.process_callbacks(16);
                }
            } else {
                rcu::register_reader_thread();
                while (!stop.load()) {
                    rcu::read_lock();
                    if (config.load()->value < 0) std::abort();
                    rcu::read_unlock();
                    rcu::ReadLock lock;
                    reads.fetch_add(1, std::memory_order_relaxed);
                }
                rcu::unregister_reader_thread();
            }
        });
    }
    for (int i = 1; i <= 200; ++i) {
        Config* old = config.exchange(new Config(i));
        if (i % 2 == 0) {
            domain.retire(old);
        } else {
            domain.synchronize();
            delete old;
        }
        domain.retire(new Counted);
    }
    // Both readers must have read (a loaded machine may start them late).
    while (reads.load() < 1000) std::this_thread::yield();
    stop = true;
    for (auto& t : readers) t.join();
    domain.barrier();
    delete config.exchange(nullptr);
    if (freed.load() != 200 || reads.load() == 0) {
        std::printf("rcu consumer failed: freed %d reads %ld\n", freed.load(), reads.load());
        return 1;
    }
    std::printf("rcu ok (%ld reads, %llu grace periods)\n", reads.load(),
                static_cast<unsigned long long>(domain.stats().grace_periods));
    return 0;
}
