// An rcutorture-style stress test of rcu/. Readers of both kinds keep reading
// a published Item and record its "pipe" count: the number of grace periods
// that have completed since it was removed. A reader can only ever see 0 (its
// section began before the removal, so the first grace period waits for it);
// the histogram's entries at 1 and beyond are failures, and so is reading an
// item that is being freed (ASan also reports the use-after-free).
//
// Writers replace the item and age the old one through three grace periods by
// synchronize(), synchronize_expedited(), call() chains from a plain thread
// and call() chains on QSBR readers' own lists, then free it; or retire it
// (freed after one grace period). Meanwhile
// callbacks flood in from both kinds of threads, QSBR readers go offline and
// online, and reader threads of both kinds exit and are replaced.
//
// Duration: QUIESCE_STRESS_SECONDS (default 5).
#include <catch2/catch.hpp>

#include <array>
#include <atomic>
#include <random>
#include <thread>
#include <vector>

#include <quiesce/rcu/rcu.hpp>

#include "stress.hpp"

using namespace quiesce;
using Clock = std::chrono::steady_clock;

namespace {

constexpr std::uint64_t kLive = 0x11fe'c0de'0000'0001ull;
constexpr std::uint64_t kDead = 0xdead'dead'dead'deadull;
constexpr int kPipeLen = 3;  // grace periods an item ages through before it is freed

struct Torture;

struct Item : rcu::Head {
    std::atomic<std::uint64_t> magic{kLive};
    std::atomic<int> pipe{0};
    std::uint64_t seq = 0;
    std::uint64_t check = 0;  // ~seq, written before publication
    Torture* torture = nullptr;
};

struct Flood : rcu::Head {
    std::atomic<std::uint64_t>* ran = nullptr;
};

struct Torture {
    rcu::Domain domain{{.name = "torture"}};
    rcu::Ptr<Item> current;
    std::atomic<bool> stop{false};
    std::atomic<std::uint64_t> next_seq{1};
    std::atomic<std::uint64_t> allocated{0}, freed{0};
    std::array<std::atomic<std::uint64_t>, kPipeLen + 2> pipe_histogram{};
    std::atomic<std::uint64_t> bad_magic{0}, bad_check{0}, reads{0};
    std::atomic<std::uint64_t> flood_queued{0}, flood_ran{0};
    std::atomic<std::uint64_t> qsbr_threads{0}, preemptible_threads{0};

    Item* make_item() {
        auto* item = new Item;
        item->seq = next_seq.fetch_add(1, std::memory_order_relaxed);
        item->check = ~item->seq;
        item->torture = this;
        allocated.fetch_add(1, std::memory_order_relaxed);
        return item;
    }

    void free_item(Item* item) noexcept {
        item->magic.store(kDead, std::memory_order_relaxed);
        delete item;
        freed.fetch_add(1, std::memory_order_relaxed);
    }

    // One read: what a reader of either kind does inside its section.
    void read_once() noexcept {
        Item* item = current.load();
        if (item == nullptr) return;
        if (item->magic.load(std::memory_order_relaxed) != kLive)
            bad_magic.fetch_add(1, std::memory_order_relaxed);
        if (item->check != ~item->seq) bad_check.fetch_add(1, std::memory_order_relaxed);
        int pipe = std::min(item->pipe.load(std::memory_order_relaxed), kPipeLen + 1);
        pipe_histogram[static_cast<std::size_t>(pipe)].fetch_add(1, std::memory_order_relaxed);
        reads.fetch_add(1, std::memory_order_relaxed);
    }

    // Ages a removed item by one grace period per invocation, re-queuing
    // itself through Domain::call() (on whatever thread runs it).
    static void age_step(rcu::Head* head) noexcept {
        auto* item = static_cast<Item*>(head);
        int pipe = item->pipe.load(std::memory_order_relaxed) + 1;
        item->pipe.store(pipe, std::memory_order_relaxed);
        if (pipe >= kPipeLen)
            item->torture->free_item(item);
        else
            item->torture->domain.call(item, &age_step);
    }

    static void flood_step(rcu::Head* head) noexcept {
        auto* flood = static_cast<Flood*>(head);
        flood->ran->fetch_add(1, std::memory_order_relaxed);
        delete flood;
    }
};

bool deadline_passed(Clock::time_point end) {
    return Clock::now() >= end;
}

void writer(Torture& t, Clock::time_point end) {
    std::mt19937 rng(1);
    for (std::uint64_t i = 0; !deadline_passed(end); ++i) {
        Item* old = t.current.exchange(t.make_item());
        if (old == nullptr) continue;
        switch (i % 4) {
            case 0:
            case 1:
                for (int gp = 1; gp <= kPipeLen; ++gp) {
                    if (i % 3 == 0)
                        t.domain.synchronize();
                    else
                        t.domain.synchronize_expedited();
                    if (gp < kPipeLen) old->pipe.store(gp, std::memory_order_relaxed);
                }
                t.free_item(old);
                break;
            case 2:
                t.domain.call(old, &Torture::age_step);  // to the callback thread
                break;
            default:
                // retire() with a deleter: one grace period, then freed.
                t.domain.retire(old, [&t](Item* item) noexcept { t.free_item(item); });
                break;
        }
        if (rng() % 16 == 0) std::this_thread::yield();
    }
}

void flooder(Torture& t, Clock::time_point end) {
    while (!deadline_passed(end)) {
        for (int i = 0; i < 256; ++i) {
            auto* flood = new Flood;
            flood->ran = &t.flood_ran;
            t.flood_queued.fetch_add(1, std::memory_order_relaxed);
            t.domain.call(flood, &Torture::flood_step);
        }
        std::this_thread::yield();
    }
}

// A preemptible reader thread that lives for a while, then exits.
void preemptible_reader(Torture& t, unsigned seed, Clock::time_point end) {
    std::mt19937 rng(seed);
    auto life_end = Clock::now() + std::chrono::milliseconds(50 + rng() % 200);
    t.preemptible_threads.fetch_add(1, std::memory_order_relaxed);
    while (!deadline_passed(end) && !deadline_passed(life_end)) {
        rcu::ReadLock lock(t.domain);
        t.read_once();
        if (rng() % 64 == 0) {
            rcu::ReadLock nested(t.domain);
            std::this_thread::yield();  // preempted inside a section
            t.read_once();
        }
        t.read_once();
    }
}

// A QSBR reader thread: reads between quiescent states, floods and ages items
// through its own callback lists, goes offline now and then, then exits.
void qsbr_reader(Torture& t, unsigned seed, Clock::time_point end) {
    std::mt19937 rng(seed);
    std::string name = "torture-qsbr-";
    name += std::to_string(seed);
    rcu::QsbrReader reader(t.domain, std::move(name));
    auto life_end = Clock::now() + std::chrono::milliseconds(100 + rng() % 300);
    t.qsbr_threads.fetch_add(1, std::memory_order_relaxed);
    for (std::uint64_t i = 0; !deadline_passed(end) && !deadline_passed(life_end); ++i) {
        t.read_once();
        t.read_once();
        reader.quiescent_state();
        if (i % 256 == 0) {
            Item* old = t.current.exchange(t.make_item());
            if (old != nullptr) reader.call(old, &Torture::age_step);  // own list
            for (int f = 0; f < 32; ++f) {
                auto* flood = new Flood;
                flood->ran = &t.flood_ran;
                t.flood_queued.fetch_add(1, std::memory_order_relaxed);
                reader.call(flood, &Torture::flood_step);
            }
        }
        reader.process_callbacks(16);
        if (rng() % 512 == 0) {
            rcu::OfflineScope off(reader);
            std::this_thread::yield();
        }
    }
}

// Keeps `count` threads of one kind running, replacing each as it exits.
template <typename Body>
void churn(Torture& t, int count, unsigned seed_base, Clock::time_point end, Body body) {
    std::vector<std::thread> threads;
    unsigned seed = seed_base;
    while (!deadline_passed(end)) {
        for (auto& th : threads) th.join();
        threads.clear();
        for (int i = 0; i < count; ++i) threads.emplace_back(body, std::ref(t), seed++, end);
    }
    for (auto& th : threads) th.join();
}

}  // namespace

TEST_CASE("rcutorture: readers never see an item older than its grace periods allow",
          "[rcu][stress]") {
    Torture t;
    t.current.store(t.make_item());
    const auto end = Clock::now() + test::stress_duration();

    std::thread w(writer, std::ref(t), end);
    std::thread f(flooder, std::ref(t), end);
    std::thread p(churn<decltype(&preemptible_reader)>, std::ref(t), 2, 100u, end,
                  &preemptible_reader);
    std::thread q(churn<decltype(&qsbr_reader)>, std::ref(t), 2, 1000u, end, &qsbr_reader);
    w.join();
    f.join();
    p.join();
    q.join();

    // barrier() waits for callbacks queued before it, not for those they
    // queue: a chain needs one barrier per step still ahead of it.
    for (int step = 0; step < kPipeLen; ++step) t.domain.barrier();
    t.free_item(t.current.exchange(nullptr));

    std::string histogram;
    for (std::size_t i = 0; i < t.pipe_histogram.size(); ++i) {
        histogram += ' ';
        histogram += std::to_string(t.pipe_histogram[i].load());
    }
    INFO("pipe histogram:" << histogram);
    INFO("reads " << t.reads.load() << ", items " << t.allocated.load() << ", grace periods "
                  << t.domain.stats().grace_periods << ", qsbr threads " << t.qsbr_threads.load()
                  << ", preemptible threads " << t.preemptible_threads.load());
    CHECK(t.reads.load() > 0);
    for (std::size_t i = 1; i < t.pipe_histogram.size(); ++i)
        CHECK(t.pipe_histogram[i].load() == 0);
    CHECK(t.bad_magic.load() == 0);
    CHECK(t.bad_check.load() == 0);
    CHECK(t.freed.load() == t.allocated.load());
    CHECK(t.flood_ran.load() == t.flood_queued.load());
    CHECK(t.domain.stats().grace_periods > 10);
    CHECK(t.qsbr_threads.load() > 2);  // churn replaced threads
    CHECK(t.preemptible_threads.load() > 2);
    WARN("pipe histogram:" << histogram << "; reads " << t.reads.load() << "; grace periods "
                           << t.domain.stats().grace_periods);
}
