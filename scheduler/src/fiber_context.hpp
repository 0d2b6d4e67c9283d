// The one place that switches fibers (private): a Boost.Context fiber on a
// pooled stack, with the sanitizer annotations, cancellation by unwinding,
// per-fiber C++ exception state and floating-point environment.
//
//     void body(void* arg) { ...; FiberContext::suspend(); ... }
//     FiberContext fiber(pool, "conn 42", &body, arg);  // does not run body yet
//     fiber.resume();              // runs body until it suspends or returns
//     fiber.resume();              // maybe on another thread (migration)
//     if (fiber.finished()) {
//         if (auto e = fiber.take_exception()) log(e);
//         fiber.reset(&other, arg2, "conn 43");         // reuse stack and context
//     }
//
// A context is reusable: after its entry returns, the Boost fiber parks in a
// loop at the base of its stack, and reset() hands it a new entry. Stack,
// Boost fiber and TSan fiber (whose creation costs ~0.28 ms) live as long as
// the FiberContext, so the scheduler should keep finished contexts for reuse
// rather than destroy them.
//
// Cancellation: cancel() (and the destructor) resume a suspended fiber with a
// flag set; its suspend() then throws a private exception that unwinds the
// fiber's stack, running destructors, and is caught at the base of the fiber.
// Code on a fiber must let it propagate: a `catch (...)` that swallows it
// resumes the unwound code, and the next suspend() throws again. A suspend()
// from a destructor during that unwinding returns at once without switching.
// Any other exception escaping the entry is caught there too and kept for
// take_exception(); no exception crosses a switch.
//
// Per fiber, not per thread: the C++ runtime's caught-exception stack and
// uncaught count (so a fiber may suspend inside a catch handler and resume on
// another thread), and MXCSR and the x87 control word (Boost switches them).
// A fiber starts each entry with the floating-point state of the thread that
// constructed or last reset() it, as a thread inherits its creator's. FACTS.md
// measured ~144 ns per round trip when MXCSR's sticky flags differ from the
// resuming thread's (0x1f80 vs 0x1fa0), so construct and reset on the loop
// threads (or on threads that have done floating-point work).
//
// Sanitizers (see FACTS.md): ASan's start/finish_switch_fiber on both sides of
// every switch, the resumer's stack recorded anew at each resume; TSan fiber
// per context, switched to before each resume and back after it returns.
//
// Threading: a FiberContext is used by one thread at a time. resume(),
// cancel(), reset() and the destructor run on the resuming thread, outside
// this fiber; suspend() on the fiber itself. Moving a suspended fiber to
// another thread needs a happens-before edge (a mutex, a release/acquire
// queue) from the last resume() returning to the next resume() call.
// Cost of a resume + suspend round trip, measured here (AMD EPYC VM, g++ 12):
// 28.5 ns release, 31 ns debugoptimized; a bare Boost fiber switching inside
// called functions takes 24.4 ns (11 ns in a loop with no calls, which no
// scheduler has); ~100 ns under ASan, ~460 ns under TSan.
#pragma once

#include <cstddef>
#include <cstdint>
#include <exception>
#include <string>

#include <boost/context/fiber.hpp>

#include "stack_pool.hpp"

namespace quiesce::sched::detail {

/// The C++ runtime's per-thread exception state (Itanium ABI __cxa_eh_globals).
struct EhGlobals {
    void* caught_exceptions = nullptr;
    unsigned int uncaught_exceptions = 0;
};

class FiberContext {
public:
    using Entry = void (*)(void* arg);

    /// A fiber that will run `entry(arg)` on a stack from `pool`, with the
    /// calling thread's floating-point state. Does not run `entry`. `pool`
    /// must outlive the context. `reserved`: the stack was reserved with
    /// StackPool::reserve() and cannot fail; otherwise throws
    /// std::system_error if no stack can be mapped. Thread: any, outside
    /// this fiber.
    FiberContext(StackPool& pool, std::string name, Entry entry, void* arg, bool reserved = false);

    /// Cancels the fiber if it is suspended inside `entry` (see cancel()),
    /// ends it and returns its stack. Thread: any but the fiber itself.
    ~FiberContext();

    FiberContext(const FiberContext&) = delete;
    FiberContext& operator=(const FiberContext&) = delete;

    /// Runs the fiber until it calls suspend() or `entry` returns.
    /// Precondition: !finished(); not called on this fiber.
    /// Thread: any (fibers migrate); see the file comment for the handoff.
    /// Yields: switches to the fiber and back.
    void resume() noexcept;

    /// Switches from the running fiber back to the thread that resumed it;
    /// returns when it is resumed (possibly on another thread). Throws the
    /// private cancellation exception if the fiber is being cancelled; never
    /// throws anything else. Precondition: called on a fiber.
    /// Yields: yes. Nothing thread-local may be held across the call.
    static void suspend();

    /// True once `entry` has returned (or thrown, or was cancelled). Until
    /// reset(), the context only waits to be reused or destroyed.
    [[nodiscard]] bool finished() const noexcept { return status_ == Status::kFinished; }

    /// True while the fiber has started running `entry` and not finished.
    [[nodiscard]] bool started() const noexcept { return status_ == Status::kRunning; }

    /// Ends the fiber's current entry: if it is suspended inside it, resumes
    /// it once to unwind its stack (destructors run on the fiber); if it never
    /// started, marks it finished without running it. No-op when finished.
    /// Thread: as resume(). Yields: switches to the fiber and back if started.
    void cancel() noexcept;

    /// True on the fiber while cancel() unwinds it (for code that must not
    /// start new work then).
    [[nodiscard]] bool cancelling() const noexcept { return cancel_requested_; }

    /// Gives a finished context a new entry, argument and name, and the
    /// calling thread's floating-point state; keeps stack and sanitizer state.
    /// Clears a stored exception. Precondition: finished().
    /// Thread: as resume(). Cost: a string assignment; no syscall.
    void reset(Entry entry, void* arg, std::string name);

    /// The exception that escaped `entry` (other than cancellation), once;
    /// null if none.
    [[nodiscard]] std::exception_ptr take_exception() noexcept { return std::move(exception_); }

    /// The fiber running on the calling thread, or null on a thread's own
    /// stack. Not inlined on purpose: a thread-local address must not be
    /// cached across a switch (the fiber may now run on another thread).
    [[nodiscard]] static FiberContext* current() noexcept;

    [[nodiscard]] const std::string& name() const noexcept { return name_; }
    /// Usable bytes of this fiber's stack.
    [[nodiscard]] std::size_t stack_size() const noexcept { return stack_.size; }
    /// The stack itself (its bottom, size and kind of guard).
    [[nodiscard]] const FiberStack& stack() const noexcept { return stack_; }

private:
    enum class Status : std::uint8_t { kReady, kRunning, kFinished };

    struct Trampoline;
    friend struct Trampoline;

    void switch_in() noexcept;
    void switch_out() noexcept;
    boost::context::fiber run(boost::context::fiber&& resumer) noexcept;
    void serve() noexcept;
    void run_entry() noexcept;
    void capture_fp_state() noexcept;
    void load_fp_state() const noexcept;

    StackPool* pool_;
    FiberStack stack_;
    std::string name_;
    Entry entry_;
    void* arg_;
    boost::context::fiber fiber_;   // the suspended fiber; touched by the resumer
    boost::context::fiber caller_;  // the suspended resumer; touched by the fiber
    Status status_ = Status::kReady;
    bool cancel_requested_ = false;
    bool exiting_ = false;  // the base loop returns: the Boost fiber ends
    std::exception_ptr exception_;
    EhGlobals eh_;  // the fiber's exception state while switched out
    std::uint32_t mxcsr_ = 0;
    std::uint16_t x87_control_ = 0;
    const void* resumer_stack_bottom_ = nullptr;  // ASan: where suspend() returns to
    std::size_t resumer_stack_size_ = 0;
    void* tsan_fiber_ = nullptr;
};

}  // namespace quiesce::sched::detail
