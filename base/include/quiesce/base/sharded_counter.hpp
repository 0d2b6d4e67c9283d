// ShardedCounter: a statistics counter that many threads bump without
// sharing a cache line (one shared atomic bounces its line between CPUs on
// every bump: ~100 ns here, more than the work it counts).
//
// Threading: add() from any thread (a relaxed increment of the calling
// thread's shard); value() from any thread, a sum that is exact once the
// adders are quiet and never goes backwards.
#pragma once

#include <quiesce/base/cacheline.hpp>

#include <array>
#include <atomic>
#include <cstdint>

namespace quiesce::base {

class ShardedCounter {
public:
    void add(std::uint64_t n = 1) noexcept {
        // relaxed: a statistic; threads that share a shard still count right.
        slots_[shard()].value.fetch_add(n, std::memory_order_relaxed);
    }

    [[nodiscard]] std::uint64_t value() const noexcept {
        std::uint64_t sum = 0;
        // relaxed: a snapshot of statistics
        for (const auto& slot : slots_) sum += slot.value.load(std::memory_order_relaxed);
        return sum;
    }

private:
    static constexpr unsigned kShards = 16;

    // The calling thread's shard: threads take them in turn as they first
    // count, so the first kShards threads (a process's loops) have one each.
    static unsigned shard() noexcept {
        static constinit std::atomic<unsigned> next{0};
        static constinit thread_local unsigned mine = kShards;
        if (mine == kShards) mine = next.fetch_add(1, std::memory_order_relaxed) % kShards;
        return mine;
    }

    std::array<Padded<std::atomic<std::uint64_t>>, kShards> slots_{};
};

}  // namespace quiesce::base
