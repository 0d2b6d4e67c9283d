// Overflow guard: a fiber running into its guard page is reported by name
// (death tests, in each process a fresh handler); other faults go to the
// handler installed before; the thread's alternate signal stack is restored.
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include <cstdint>
#include <thread>

#include "death.hpp"
#include "fiber_context.hpp"
#include "overflow_guard.hpp"

using Catch::Matchers::Contains;
using quiesce::sched::detail::FiberContext;
using quiesce::sched::detail::install_overflow_guard_on_this_thread;
using quiesce::sched::detail::remove_overflow_guard_from_this_thread;
using quiesce::sched::detail::StackPool;
using quiesce::test::run_death_case;

namespace {

volatile int recursion_limit = 1 << 30;
volatile int sink = 0;

// Recurses until the stack runs out; the work after the call keeps it from
// becoming a loop, `pad` gives each frame `kFrame` bytes.
template <std::size_t kFrame>
[[gnu::noinline]] void recurse(int depth) {
    volatile char pad[kFrame];
    pad[0] = static_cast<char>(depth);
    pad[kFrame - 1] = static_cast<char>(depth);
    if (depth < recursion_limit) recurse<kFrame>(depth + 1);
    sink = sink + pad[0] + pad[kFrame - 1];
}

template <std::size_t kFrame>
void overflow(void*) {
    recurse<kFrame>(0);
}

template <std::size_t kFrame>
void overflow_in_fiber(const char* name) {
    install_overflow_guard_on_this_thread();
    StackPool pool(64 * 1024);
    FiberContext fiber(pool, name, &overflow<kFrame>, nullptr);
    fiber.resume();
}

stack_t current_alt_stack() {
    stack_t now{};
    sigaltstack(nullptr, &now);
    return now;
}

}  // namespace

QUIESCE_DEATH_CASE(fiber_overflow_small_frames) {
    overflow_in_fiber<256>("deep recursion");
}

// Frames far larger than the 4 KiB guard page: caught only because the code
// is built with -fstack-clash-protection (each page is probed in order).
QUIESCE_DEATH_CASE(fiber_overflow_large_frames) {
    overflow_in_fiber<20000>("big frames");
}

// A loop thread other than main, whose fiber was created elsewhere.
QUIESCE_DEATH_CASE(fiber_overflow_on_other_thread) {
    StackPool pool(64 * 1024);
    FiberContext fiber(pool, "on a loop thread", &overflow<512>, nullptr);
    std::thread loop([&] {
        install_overflow_guard_on_this_thread();
        fiber.resume();
    });
    loop.join();
}

QUIESCE_DEATH_CASE(fault_outside_guard_pages) {
    install_overflow_guard_on_this_thread();
    void* page = mmap(nullptr, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    *static_cast<volatile int*>(page) = 1;
}

TEST_CASE("a fiber that overflows its stack is reported by name, then aborts",
          "[scheduler][unit]") {
    auto [name, fiber] = GENERATE(table<const char*, const char*>({
        {"fiber_overflow_small_frames", "deep recursion"},
        {"fiber_overflow_large_frames", "big frames"},
        {"fiber_overflow_on_other_thread", "on a loop thread"},
    }));
    CAPTURE(name);
    auto result = run_death_case(name);
    CHECK(result.aborted);
    CHECK_THAT(result.output,
               Contains(std::string("quiesce: stack overflow in fiber \"") + fiber +
                        "\" (stack 65536 bytes, caught by its 64 KiB guard region); raise "
                        "SchedulerOptions::fiber_stack_size"));
}

TEST_CASE("a fault outside any guard page goes to the handler installed before",
          "[scheduler][unit]") {
    auto result = run_death_case("fault_outside_guard_pages");
    CAPTURE(result.output);
    CHECK_FALSE(result.output.find("stack overflow") != std::string::npos);
#if QUIESCE_ASAN
    // Chained to ASan's own handler, which reports the fault.
    CHECK_THAT(result.output, Contains("AddressSanitizer: SEGV"));
    CHECK_FALSE((WIFEXITED(result.status) && WEXITSTATUS(result.status) == 0));
#elif QUIESCE_TSAN
    CHECK_THAT(result.output, Contains("ThreadSanitizer: SEGV"));
    CHECK_FALSE((WIFEXITED(result.status) && WEXITSTATUS(result.status) == 0));
#else
    // No handler before ours: the default action, as if we were not there.
    CHECK(WIFSIGNALED(result.status));
    CHECK(WTERMSIG(result.status) == SIGSEGV);
#endif
}

TEST_CASE("the guard gives a thread without a usable alternate stack one, and takes it back",
          "[scheduler][unit]") {
    // Observed on the thread, checked here: Catch2 assertions are not
    // thread-safe.
    stack_t during{}, again{}, after{};
    static char small[8192];
    std::thread t([&] {
        const stack_t before = current_alt_stack();
        // A small alternate stack of our own first: too small to keep.
        stack_t tiny{};
        tiny.ss_sp = small;
        tiny.ss_size = sizeof small;
        if (sigaltstack(&tiny, nullptr) != 0) return;
        install_overflow_guard_on_this_thread();
        during = current_alt_stack();
        install_overflow_guard_on_this_thread();  // idempotent
        again = current_alt_stack();
        remove_overflow_guard_from_this_thread();
        after = current_alt_stack();
        remove_overflow_guard_from_this_thread();  // no-op
        // Leave the thread as it came (ASan unmaps the one it exits with).
        sigaltstack(&before, nullptr);
    });
    t.join();
    CHECK((during.ss_flags & SS_DISABLE) == 0);
    CHECK(during.ss_size >= 64 * 1024);
    CHECK(during.ss_sp != static_cast<void*>(small));
    CHECK(again.ss_sp == during.ss_sp);
    CHECK(after.ss_sp == static_cast<void*>(small));
    CHECK(after.ss_size == sizeof small);
}

TEST_CASE("the guard keeps a thread's existing alternate stack", "[scheduler][unit]") {
    stack_t during{}, after{};
    static char big[64 * 1024];
    std::thread t([&] {
        const stack_t before = current_alt_stack();
        stack_t own{};
        own.ss_sp = big;
        own.ss_size = sizeof big;
        if (sigaltstack(&own, nullptr) != 0) return;
        install_overflow_guard_on_this_thread();
        during = current_alt_stack();
        remove_overflow_guard_from_this_thread();
        after = current_alt_stack();
        sigaltstack(&before, nullptr);
    });
    t.join();
    CHECK(during.ss_sp == static_cast<void*>(big));
    CHECK(after.ss_sp == static_cast<void*>(big));
}
