// std::shared_mutex, what a user without RCU would reach for.
#include <mutex>
#include <shared_mutex>

#include "read_bench.hpp"

namespace quiesce::bench {
namespace {

std::atomic<Node*> shared_node{nullptr};
std::shared_mutex mutex;

struct SharedMutex {
    static int register_reader() { return 0; }
    static void unregister_reader(int) {}
    template <typename F>
    static void read(F&& body) {
        std::shared_lock lock(mutex);
        body();
    }
    static void quiescent(int) {}
    // The updater's exchange happened outside the lock; taking the lock
    // exclusively waits out every reader that may still hold the old node.
    static void synchronize() { std::unique_lock lock(mutex); }
};

}  // namespace

ReadResult shared_mutex_reads(std::chrono::milliseconds run) {
    return read_throughput<SharedMutex>(shared_node, run, 1);
}

}  // namespace quiesce::bench
