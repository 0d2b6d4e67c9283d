// The callback thread's intrusive MPSC queue (rcu/src/mpsc_queue.hpp).
#include <catch2/catch.hpp>

#include <thread>
#include <vector>

#include "mpsc_queue.hpp"

using quiesce::rcu::Head;
using quiesce::rcu::detail::MpscQueue;

namespace {

struct Item : Head {
    int producer = 0;
    int seq = 0;
};

}  // namespace

TEST_CASE("the MPSC queue pops in push order, chains included", "[rcu][unit]") {
    MpscQueue queue;
    CHECK(queue.empty());
    CHECK(queue.pop() == nullptr);
    Item items[5];
    for (int i = 0; i < 5; ++i) items[i].seq = i;
    queue.push(&items[0]);
    items[1].next = &items[2];
    items[2].next = &items[3];
    queue.push_chain(&items[1], &items[3]);
    queue.push(&items[4]);
    CHECK_FALSE(queue.empty());
    for (int i = 0; i < 5; ++i) {
        Head* h = queue.pop();
        REQUIRE(h != nullptr);
        CHECK(static_cast<Item*>(h)->seq == i);
    }
    CHECK(queue.pop() == nullptr);
    CHECK(queue.empty());
    queue.push(&items[0]);  // reusable after draining through the sentinel
    CHECK(queue.pop() == &items[0]);
    CHECK(queue.empty());
}

TEST_CASE("concurrent producers: every item arrives once, each producer's in order",
          "[rcu][unit]") {
    constexpr int kProducers = 3;
    constexpr int kPerProducer = 20000;
    MpscQueue queue;
    std::vector<std::vector<Item>> items(kProducers, std::vector<Item>(kPerProducer));
    std::vector<std::thread> producers;
    for (int p = 0; p < kProducers; ++p) {
        producers.emplace_back([&, p] {
            for (int i = 0; i < kPerProducer; ++i) {
                items[p][i].producer = p;
                items[p][i].seq = i;
                queue.push(&items[p][i]);
            }
        });
    }
    std::vector<int> next_seq(kProducers, 0);
    int received = 0;
    bool in_order = true;
    while (received < kProducers * kPerProducer) {
        Head* h = queue.pop();
        if (h == nullptr) {
            std::this_thread::yield();
            continue;
        }
        auto* item = static_cast<Item*>(h);
        in_order = in_order && item->seq == next_seq[item->producer];
        next_seq[item->producer] = item->seq + 1;
        ++received;
    }
    for (auto& t : producers) t.join();
    CHECK(in_order);
    CHECK(queue.pop() == nullptr);
    CHECK(queue.empty());
}
