// base::ShardedCounter: counts from many threads add up, and threads get
// different shards.
#include <catch2/catch.hpp>

#include <thread>
#include <vector>

#include <quiesce/base/sharded_counter.hpp>

using quiesce::base::ShardedCounter;

TEST_CASE("a sharded counter sums what every thread added", "[base][unit]") {
    ShardedCounter counter;
    CHECK(counter.value() == 0);
    counter.add();
    counter.add(4);
    CHECK(counter.value() == 5);
    constexpr int kThreads = 24;  // more than the shards: some share one
    constexpr int kAdds = 20'000;
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&counter] {
            for (int i = 0; i < kAdds; ++i) counter.add();
        });
    }
    for (auto& thread : threads) thread.join();
    CHECK(counter.value() == 5 + std::uint64_t{kThreads} * kAdds);
}

TEST_CASE("a sharded counter never shows a sum below what was added before", "[base][unit]") {
    ShardedCounter counter;
    std::atomic<bool> stop{false};
    std::thread adder([&] {
        while (!stop.load(std::memory_order_relaxed)) counter.add();
    });
    std::uint64_t last = 0;
    for (int i = 0; i < 10'000; ++i) {
        const std::uint64_t now = counter.value();
        REQUIRE(now >= last);
        last = now;
    }
    stop = true;
    adder.join();
}
