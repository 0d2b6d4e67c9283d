// Fiber stack overflow reports (private). A fiber that runs off the bottom of
// its stack touches the guard region below it (stack_pool.hpp); the
// SIGSEGV/SIGBUS handler installed here runs on the thread's alternate signal
// stack (the fiber's own stack is exhausted), recognises a pooled stack's
// guard region, writes
//
//     quiesce: stack overflow in fiber "NAME" (stack 65536 bytes, caught by
//     its 64 KiB guard region); raise SchedulerOptions::fiber_stack_size
//
// to stderr and aborts. A stack that has only a canary (the mapping budget
// was used up) is checked at every switch, and report_canary_overflow() says
// the same of it. Any other fault goes to the handler installed before
// (for example a sanitizer's), or, if that was the default, re-raises with the
// default action.
//
//     // at the start of each loop thread, on its own stack:
//     install_overflow_guard_on_this_thread();
//     ... run fibers ...
//     remove_overflow_guard_from_this_thread();   // before the thread exits
//
// Sanitizers: ASan and UBSan keep their handlers (handle_segv=1, the default,
// lets us install ours in front and chain to theirs); ASAN_OPTIONS=
// handle_segv=2 would make ASan's exclusive and the overflow would be
// reported as ASan's stack-overflow/SEGV instead. ASan gives every thread an
// alternate stack (use_sigaltstack=1) and unmaps whatever alternate stack a
// thread exits with, so we reuse an existing one and restore the previous one
// in remove_overflow_guard_from_this_thread(). Under TSan the chained report
// of a fault that is not an overflow prints its first lines ("SEGV on unknown
// address ...") and then "nested bug in the same thread" instead of a stack
// trace: TSan's handler does not expect to be called from a user handler
// (re-raising through a restored action goes through TSan's wrapper too).
//
// Threading: the process-wide handler is installed once, on the first call
// from any thread; the alternate stack is per thread and only that thread's
// install/remove touch it. Frames larger than the guard region must probe it:
// the project builds with -fstack-clash-protection and passes it to users
// (quiesce-scheduler.pc, scheduler_dep).
#pragma once

#include <cstddef>

namespace quiesce::sched::detail {

/// Writes the overflow report of a fiber whose canary was found overwritten
/// and aborts. Async-signal-safe, no allocation.
[[noreturn]] void report_canary_overflow(const char* label, std::size_t stack_size) noexcept;

/// Installs the process-wide SIGSEGV/SIGBUS handler (first call only) and
/// gives the calling thread an alternate signal stack unless it already has
/// one of at least 16 KiB. Idempotent per thread. Thread: a thread that will
/// resume fibers, on its own stack. Throws std::system_error if sigaction,
/// sigaltstack or the stack's mmap fail.
void install_overflow_guard_on_this_thread();

/// Restores the calling thread's previous alternate signal stack and unmaps
/// the one install_...() mapped, if any. The process-wide handler stays (other
/// threads may still run fibers). No-op if not installed on this thread.
/// Thread: the thread that installed it, before it exits.
void remove_overflow_guard_from_this_thread() noexcept;

}  // namespace quiesce::sched::detail
