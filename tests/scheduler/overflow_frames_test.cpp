// Fiber stack overflows by code built without -fstack-clash-protection (as
// users' code is by default): frames of 7-16 KiB move the stack pointer past a
// one-page guard before touching memory. The guard region (64 KiB) must catch
// every one of them and name the right fiber, and a bounded overflow must not
// reach the neighbouring stack, also where a stack has only a canary.
#include <catch2/catch.hpp>

#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <quiesce/scheduler/fiber.hpp>
#include <quiesce/scheduler/scheduler.hpp>

#include "death.hpp"
#include "fiber_context.hpp"
#include "no_clash_frames.hpp"
#include "overflow_guard.hpp"
#include "stack_pool.hpp"

using namespace quiesce;
using namespace std::chrono_literals;
using Catch::Matchers::Contains;
using quiesce::sched::detail::FiberContext;
using quiesce::sched::detail::GuardMode;
using quiesce::sched::detail::StackPool;

namespace {

constexpr std::size_t kFrames[] = {7, 10, 13, 16};
constexpr int kNeighbours[] = {0, 3, 8};

std::string victim_name(std::size_t frame_kib, int neighbours) {
    return "victim " + std::to_string(frame_kib) + "k/" + std::to_string(neighbours);
}

// A scheduler with `neighbours` parked fibers that took their stacks first,
// then a victim that recurses with unprobed frames.
void run_victim(std::size_t frame_kib, int neighbours) {
    sched::Scheduler scheduler({.threads = 1});
    for (int i = 0; i < neighbours; ++i) {
        scheduler.spawn([] { sched::this_fiber::park(); },
                        {.name = "neighbour " + std::to_string(i)});
    }
    scheduler.spawn([frame_kib] { test::recurse_big_frames(frame_kib); },
                    {.name = victim_name(frame_kib, neighbours)});
    std::this_thread::sleep_for(20s);
}

const bool registered = [] {
    for (std::size_t frame : kFrames) {
        for (int neighbours : kNeighbours) {
            test::register_death_case(
                ("big_frames_" + std::to_string(frame) + "_" + std::to_string(neighbours)).c_str(),
                [frame, neighbours] { run_victim(frame, neighbours); });
        }
    }
    return true;
}();

// Two fibers on neighbouring slots of one pool: the lower one keeps a pattern
// at the top of its stack; the upper one overflows by at most 16 KiB, then
// looks at the pattern and says what it saw before it suspends.
struct Neighbours {
    const unsigned char* pattern = nullptr;
};
constexpr std::size_t kPatternBytes = 4096;

// Not instrumented by ASan, so that the pattern lies on the fiber's own stack
// (not on an ASan fake stack).
[[gnu::no_sanitize_address]] void neighbour_entry(void* arg) {
    unsigned char pattern[kPatternBytes];
    std::memset(pattern, 0x3c, sizeof pattern);
    static_cast<Neighbours*>(arg)->pattern = pattern;
    FiberContext::suspend();
    asm volatile("" : : "r"(pattern) : "memory");
}

void overflower_entry(void* arg) {
    const auto* shared = static_cast<Neighbours*>(arg);
    test::overflow_once_below(FiberContext::current()->stack().bottom, 2048);
    bool intact = true;
    for (std::size_t i = 0; i < kPatternBytes; ++i) intact = intact && shared->pattern[i] == 0x3c;
    std::fprintf(stderr, "neighbour %s\n", intact ? "intact" : "CORRUPTED");
    FiberContext::suspend();  // a canary stack is checked here
}

void bounded_overflow(GuardMode mode) {
    sched::detail::install_overflow_guard_on_this_thread();
    StackPool pool(64 * 1024, 4, StackPool::kDefaultGuardSize, mode);
    Neighbours shared;
    FiberContext lower(pool, "neighbour", &neighbour_entry, &shared);
    FiberContext upper(pool, "overflower", &overflower_entry, &shared);
    if (static_cast<char*>(upper.stack().bottom) !=
        static_cast<char*>(lower.stack().top()) + pool.guard_size()) {
        std::fprintf(stderr, "the two stacks are not neighbours\n");
        return;
    }
    lower.resume();
    upper.resume();
    std::fprintf(stderr, "the overflow went unnoticed\n");
}

}  // namespace

QUIESCE_DEATH_CASE(bounded_overflow_canary) {
    bounded_overflow(GuardMode::kCanary);
}
QUIESCE_DEATH_CASE(bounded_overflow_mprotect) {
    bounded_overflow(GuardMode::kMprotect);
}
QUIESCE_DEATH_CASE(bounded_overflow_auto) {
    bounded_overflow(GuardMode::kAuto);
}

TEST_CASE("unprobed 7-16 KiB frames overflowing a fiber are caught and name it, every time",
          "[scheduler][unit]") {
    (void)registered;
    int named = 0;
    for (std::size_t frame : kFrames) {
        for (int neighbours : kNeighbours) {
            const std::string name = victim_name(frame, neighbours);
            CAPTURE(name);
            auto result = test::run_death_case("big_frames_" + std::to_string(frame) + "_" +
                                               std::to_string(neighbours));
            CHECK(result.aborted);
            CHECK_THAT(result.output, Contains("quiesce: stack overflow in fiber \"" + name +
                                               "\" (stack 65536 "
                                               "bytes, caught by its 64 KiB guard region)"));
            CHECK_THAT(result.output, !Contains("\"neighbour"));
            named += result.aborted && result.output.find(name) != std::string::npos;
        }
    }
    CHECK(named == 12);
}

TEST_CASE("a bounded overflow never reaches the neighbouring stack", "[scheduler][unit]") {
    // Guarded stacks fault at the first byte below the stack; a canary stack
    // lets the overflow into its unused guard region, which is larger than the
    // frame, and reports it when the fiber suspends.
    auto [name, how] = GENERATE(table<const char*, const char*>({
        {"bounded_overflow_auto", "caught by its 64 KiB guard region"},
        {"bounded_overflow_mprotect", "caught by its 64 KiB guard region"},
        {"bounded_overflow_canary", "found by the canary below it"},
    }));
    CAPTURE(name);
    auto result = test::run_death_case(name);
    CHECK(result.aborted);
    CHECK_THAT(result.output, Contains("quiesce: stack overflow in fiber \"overflower\""));
    CHECK_THAT(result.output, Contains(how));
    CHECK_THAT(result.output, !Contains("CORRUPTED"));
    CHECK_THAT(result.output, !Contains("went unnoticed"));
    CHECK_THAT(result.output, !Contains("not neighbours"));
    if (std::string(name) == "bounded_overflow_canary") {
        CHECK_THAT(result.output, Contains("neighbour intact"));
    }
}
