// `sched_bench perfwake`: what a perf task-clock event on a thread adds to
// waking that thread from a futex, taken apart. A loop in kPerfEvent mode has
// one (a sample every 250 µs of CPU time at 500 µs slices, plus a record at
// every context switch); this opens the same event, and each part of it
// alone, on a sleeper thread on loop_cpu() that a poster on other_cpu() wakes
// after a 200 µs pause, and prints the wake-to-run latency of each.
//
// Threading: the poster writes stamps[i] and then `word` (release); the
// sleeper reads the stamp after it has seen `word` set (acquire). `armed`
// tells the poster that the sleeper is about to wait for wake-up i.
#include <linux/perf_event.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <system_error>
#include <vector>

#include <quiesce/base/futex.hpp>

#include "sched_bench.hpp"

namespace quiesce::bench {
namespace {

using namespace std::chrono_literals;

struct Variant {
    const char* name;
    bool open;
    std::uint64_t sample_period_ns;  // 0: counting only
    bool switch_records;
    bool disable_while_asleep = false;  // PERF_EVENT_IOC_DISABLE / ENABLE around the wait
};

constexpr Variant kVariants[] = {
    {"no perf event", false, 0, false},
    {"task clock, counting only", true, 0, false},
    {"sample every 250 us", true, 250'000, false},
    {"context-switch records only", true, 0, true},
    {"sample every 250 us + switch records (a loop's)", true, 250'000, true},
    {"the same, disabled while asleep (2 ioctls)", true, 250'000, true, true},
};

// The event perf_ring.cpp opens, or the named part of it; -1 for none.
int open_event(const Variant& variant) {
    if (!variant.open) return -1;
    perf_event_attr attr{};
    attr.size = sizeof attr;
    attr.type = PERF_TYPE_SOFTWARE;
    attr.config = PERF_COUNT_SW_TASK_CLOCK;
    attr.exclude_hv = 1;
    if (variant.sample_period_ns != 0) {
        attr.sample_period = variant.sample_period_ns;
        attr.sample_type = PERF_SAMPLE_TIME | PERF_SAMPLE_READ;
    }
    attr.sample_id_all = 1;
    attr.use_clockid = 1;
    attr.clockid = CLOCK_MONOTONIC;
    attr.context_switch = variant.switch_records ? 1 : 0;
    const int fd = static_cast<int>(syscall(SYS_perf_event_open, &attr, 0, -1, -1, 0));
    if (fd < 0) throw std::system_error(errno, std::generic_category(), "perf_event_open");
    // A ring for the records (1 + 2 pages, as the loop maps); left to close().
    if (mmap(nullptr, 3 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) == MAP_FAILED) {
        close(fd);
        throw std::system_error(errno, std::generic_category(), "mmap of the perf ring");
    }
    return fd;
}

struct Handshake {
    explicit Handshake(std::size_t n) : stamps(n), samples(n) {}
    std::vector<Clock::time_point> stamps;  // poster, published by `word`
    std::vector<double> samples;            // sleeper
    std::atomic<std::uint32_t> word{0};
    std::atomic<std::size_t> armed{0};
};

Latency wake_latency(const Variant& variant, std::size_t wakes) {
    Handshake hand(wakes);
    std::thread sleeper([&] {
        pin_this_thread(loop_cpu());
        const int fd = open_event(variant);
        for (std::size_t i = 0; i < wakes; ++i) {
            hand.word.store(0, std::memory_order_relaxed);       // relaxed: [PW2] publishes it
            hand.armed.store(i + 1, std::memory_order_release);  // [PW2] pairs with [PW3]
            // [PW1] acquire, pairs with the poster's release store of `word`.
            if (variant.disable_while_asleep) ioctl(fd, PERF_EVENT_IOC_DISABLE, 0);
            while (hand.word.load(std::memory_order_acquire) == 0) base::futex_wait(hand.word, 0);
            if (variant.disable_while_asleep) ioctl(fd, PERF_EVENT_IOC_ENABLE, 0);
            hand.samples[i] =
                std::chrono::duration<double, std::micro>(Clock::now() - hand.stamps[i]).count();
        }
        if (fd >= 0) close(fd);
    });
    run_pinned(other_cpu(), [&] {
        for (std::size_t i = 0; i < wakes; ++i) {
            while (hand.armed.load(std::memory_order_acquire) != i + 1) {  // [PW3]
            }
            std::this_thread::sleep_for(200us);  // the sleeper is in futex_wait by now
            hand.stamps[i] = Clock::now();
            hand.word.store(1, std::memory_order_release);  // pairs with [PW1]
            base::futex_wake(&hand.word, 1);
        }
        return 0;
    });
    sleeper.join();
    Latency out;
    out.samples = wakes;
    out.p50_us = quantile(hand.samples, 0.5);
    out.p99_us = quantile(hand.samples, 0.99);
    out.max_us = hand.samples.back();
    return out;
}

}  // namespace

int perf_wake_main(Seconds run, int rounds) {
    // About 250 µs per wake-up: pause, wake, hand-shake.
    const auto wakes = static_cast<std::size_t>(run / 250us) + 1;
    constexpr std::size_t kCount = std::size(kVariants);
    std::vector<double> p50[kCount], p99[kCount];
    for (int r = 0; r < rounds; ++r) {
        for (std::size_t v = 0; v < kCount; ++v) {
            Latency latency = wake_latency(kVariants[v], wakes);
            p50[v].push_back(latency.p50_us);
            p99[v].push_back(latency.p99_us);
        }
    }
    std::printf(
        "futex wake-up to run (us), sleeper on CPU %d with a perf task-clock event on itself, "
        "waker on CPU %d;\n%zu wake-ups per run, medians of %d alternating rounds\n",
        loop_cpu(), other_cpu(), wakes, rounds);
    for (std::size_t v = 0; v < kCount; ++v) {
        std::printf("  %-50s p50 %7.1f   p99 %8.1f\n", kVariants[v].name, quantile(p50[v], .5),
                    quantile(p99[v], .5));
    }
    return 0;
}

}  // namespace quiesce::bench
