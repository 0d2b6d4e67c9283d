// Fiber switching with Boost.Context; see fiber_context.hpp.
//
// Threading: the resume side (resume, cancel, reset, destructor) runs on the
// thread that resumes the fiber, the fiber side (run, serve, suspend) on the
// fiber; they never run at once, and each switch orders them. The thread-local
// ThreadState is read only through this_thread_state(), which the compiler may
// neither inline nor analyse, so no thread-local address survives a switch.
#include "fiber_context.hpp"

#include <cxxabi.h>

#include <utility>

#include <quiesce/base/assert.hpp>

#include "overflow_guard.hpp"

#if defined(__x86_64__)
#include <xmmintrin.h>
#endif

#if QUIESCE_ASAN
#include <sanitizer/common_interface_defs.h>
#endif
#if QUIESCE_TSAN
#include <sanitizer/tsan_interface.h>
#endif

namespace quiesce::sched::detail {
namespace {

/// Thrown by suspend() into a fiber being cancelled; caught by run_entry().
/// Not derived from std::exception, so `catch (const std::exception&)` in
/// user code lets it pass.
struct FiberCancelled {};

/// What each thread knows about fibers. Only its own thread reads or writes it.
struct ThreadState {
    FiberContext* current = nullptr;  // the fiber running on this thread
    EhGlobals* eh = nullptr;          // this thread's __cxa_eh_globals, once looked up
};

[[gnu::tls_model("initial-exec")]] constinit thread_local ThreadState tls_state;

// noipa: neither inlined nor analysed, so every call computes the address of
// the calling thread's state (FACTS.md: g++ hoisted thread-local addresses
// across switches).
[[gnu::noipa]] ThreadState& this_thread_state() noexcept {
    return tls_state;
}

// __cxa_get_globals() is declared const, so its result may be reused across a
// switch as well; it is only called here, for the thread's own state.
EhGlobals& thread_eh(ThreadState& thread) noexcept {
    if (__builtin_expect(thread.eh == nullptr, 0)) {
        thread.eh = reinterpret_cast<EhGlobals*>(abi::__cxa_get_globals());
    }
    return *thread.eh;
}

// Field by field: a 16-byte copy of the struct would load what two narrower
// stores just wrote, which store forwarding cannot serve (a stall per switch).
void swap_eh(EhGlobals& a, EhGlobals& b) noexcept {
    std::swap(a.caught_exceptions, b.caught_exceptions);
    std::swap(a.uncaught_exceptions, b.uncaught_exceptions);
}

/// Stacks come from StackPool and go back to it in ~FiberContext; Boost only
/// calls deallocate() when the fiber ends, and must not free anything then.
struct NoDeallocate {
    void deallocate(boost::context::stack_context&) noexcept {}
};

}  // namespace

/// The function Boost runs on the new stack.
struct FiberContext::Trampoline {
    FiberContext* self;
    boost::context::fiber operator()(boost::context::fiber&& resumer) noexcept {
        return self->run(std::move(resumer));
    }
};

FiberContext::FiberContext(StackPool& pool, std::string name, Entry entry, void* arg, bool reserved)
    : pool_(&pool),
      stack_(pool.acquire(reserved)),
      name_(std::move(name)),
      entry_(entry),
      arg_(arg) {
    capture_fp_state();
    StackPool::set_label(stack_, name_.c_str());
    boost::context::stack_context sctx;
    sctx.size = stack_.size;
    sctx.sp = stack_.top();
    const boost::context::preallocated where(sctx.sp, sctx.size, sctx);
#if QUIESCE_TSAN
    // The Boost constructor jumps into the new stack and back once: run that
    // on the fiber's own TSan state, or the creator's shadow stack keeps a
    // frame per fiber created (and overflows after ~65k).
    tsan_fiber_ = __tsan_create_fiber(0);
    __tsan_set_fiber_name(tsan_fiber_, name_.c_str());
    void* const creator = __tsan_get_current_fiber();
    __tsan_switch_to_fiber(tsan_fiber_, 0);
#endif
#if QUIESCE_ASAN
    // ASan: the frames Boost sets up on the new stack during that jump
    // (fiber_entry and what it inlines) live as long as the fiber. Outside a
    // switch they would come from this thread's fake stack, which dies with
    // the thread while the fiber may live on elsewhere; inside one, ASan hands
    // out no fake frames. So bracket the jump as a switch to the new stack,
    // then switch ASan's idea of the current stack back to ours.
    void* fake_stack = nullptr;
    const void* own_bottom = nullptr;
    std::size_t own_size = 0;
    __sanitizer_start_switch_fiber(&fake_stack, stack_.bottom, stack_.size);
#endif
    fiber_ = boost::context::fiber(std::allocator_arg, where, NoDeallocate{}, Trampoline{this});
#if QUIESCE_ASAN
    __sanitizer_finish_switch_fiber(fake_stack, &own_bottom, &own_size);
    __sanitizer_start_switch_fiber(&fake_stack, own_bottom, own_size);
    __sanitizer_finish_switch_fiber(fake_stack, nullptr, nullptr);
#endif
#if QUIESCE_TSAN
    __tsan_switch_to_fiber(creator, 0);
#endif
}

FiberContext::~FiberContext() {
    QUIESCE_CHECK(current() != this, "a fiber destroyed its own FiberContext");
    cancel();
    // Let the base loop return so Boost ends the fiber normally (a suspended
    // Boost fiber would be ended by a forced unwind, which ASan mistakes for
    // a stack-buffer-overflow on the stack's next use). A never-started
    // fiber is resumed the same way: it returns without running any entry.
    exiting_ = true;
    ThreadState& thread = this_thread_state();
    FiberContext* const outer = thread.current;
    thread.current = this;
    switch_in();
    thread.current = outer;
    QUIESCE_CHECK(!fiber_, "the fiber did not end");
#if QUIESCE_TSAN
    __tsan_destroy_fiber(tsan_fiber_);
#endif
    pool_->release(stack_);
}

void FiberContext::resume() noexcept {
    QUIESCE_ASSERT(!finished(), "resume() of a finished fiber");
    // The resumer's own stack does not migrate while it waits in switch_in()
    // (only a suspended fiber can move, and the resumer is not suspended), so
    // `thread` is still this thread's state when switch_in() returns.
    ThreadState& thread = this_thread_state();
    FiberContext* const outer = thread.current;
    QUIESCE_ASSERT(outer != this, "a fiber resumed itself");
    thread.current = this;
    // The fiber runs with its own caught-exception stack; the thread's waits
    // in eh_ meanwhile.
    EhGlobals& eh = thread_eh(thread);
    swap_eh(eh, eh_);
    switch_in();
    swap_eh(eh, eh_);
    thread.current = outer;
}

void FiberContext::suspend() {
    FiberContext* const self = current();
    QUIESCE_CHECK(self != nullptr, "FiberContext::suspend() called outside a fiber");
    if (!self->cancel_requested_) self->switch_out();
    // From here on `self` is the only way to this fiber's state: the thread
    // may have changed.
    if (self->cancel_requested_ && std::uncaught_exceptions() == 0) throw FiberCancelled{};
}

void FiberContext::cancel() noexcept {
    switch (status_) {
        case Status::kFinished:
            return;
        case Status::kReady:
            status_ = Status::kFinished;
            return;
        case Status::kRunning:
            cancel_requested_ = true;
            resume();
            QUIESCE_CHECK(finished(), "a cancelled fiber suspended again");
            return;
    }
}

void FiberContext::reset(Entry entry, void* arg, std::string name) {
    QUIESCE_CHECK(finished(), "reset() of a fiber that has not finished");
    name_ = std::move(name);
    StackPool::set_label(stack_, name_.c_str());
#if QUIESCE_TSAN
    __tsan_set_fiber_name(tsan_fiber_, name_.c_str());
#endif
    entry_ = entry;
    arg_ = arg;
    exception_ = nullptr;
    cancel_requested_ = false;
    capture_fp_state();
    status_ = Status::kReady;
}

FiberContext* FiberContext::current() noexcept {
    return this_thread_state().current;
}

// Resume side: into the fiber, back when it suspends or ends. Inlined: each
// extra call level costs a mispredicted return per switch (jump_fcontext is
// entered by call and left by jmp, so the return stack buffer is off by one).
[[gnu::always_inline]] inline void FiberContext::switch_in() noexcept {
#if QUIESCE_ASAN
    void* fake_stack = nullptr;
    __sanitizer_start_switch_fiber(&fake_stack, stack_.bottom, stack_.size);
#endif
#if QUIESCE_TSAN
    void* const resumer = __tsan_get_current_fiber();
    __tsan_switch_to_fiber(tsan_fiber_, 0);
#endif
    boost::context::fiber next = std::move(fiber_).resume();
#if QUIESCE_TSAN
    __tsan_switch_to_fiber(resumer, 0);
#endif
#if QUIESCE_ASAN
    __sanitizer_finish_switch_fiber(fake_stack, nullptr, nullptr);
#endif
    fiber_ = std::move(next);
}

// Fiber side: back to whoever resumed this fiber last, which may be another
// thread than the time before; ASan learns that thread's stack each time.
// Inlined for the same reason as switch_in().
[[gnu::always_inline]] inline void FiberContext::switch_out() noexcept {
    // A stack without a guard region (the mapping budget was used up) is
    // checked here, at every switch away: a load and a compare otherwise.
    if (__builtin_expect(stack_.guard == GuardMode::kCanary, 0) &&
        !StackPool::canary_intact(stack_)) {
        report_canary_overflow(name_.c_str(), stack_.size);
    }
#if QUIESCE_ASAN
    void* fake_stack = nullptr;
    __sanitizer_start_switch_fiber(&fake_stack, resumer_stack_bottom_, resumer_stack_size_);
#endif
    boost::context::fiber resumer = std::move(caller_).resume();
#if QUIESCE_ASAN
    __sanitizer_finish_switch_fiber(fake_stack, &resumer_stack_bottom_, &resumer_stack_size_);
#endif
    caller_ = std::move(resumer);
}

// The base of the fiber. Frames set up before finish_switch_fiber (this one,
// the Trampoline's and Boost's) live on the real stack, because ASan hands out
// no fake frames during a switch; every frame set up after it belongs to
// serve(), which has returned before the final switch frees the fake stack.
boost::context::fiber FiberContext::run(boost::context::fiber&& resumer) noexcept {
    caller_ = std::move(resumer);
#if QUIESCE_ASAN
    __sanitizer_finish_switch_fiber(nullptr, &resumer_stack_bottom_, &resumer_stack_size_);
#endif
    serve();
#if QUIESCE_ASAN
    // The last switch: nullptr frees this fiber's fake stack.
    __sanitizer_start_switch_fiber(nullptr, resumer_stack_bottom_, resumer_stack_size_);
#endif
    // TSan: no switch here; switch_in() switches back after this returns.
    return std::move(caller_);
}

// One entry per pass; parks between entries until reset() or the destructor.
[[gnu::noinline]] void FiberContext::serve() noexcept {
    while (!exiting_) {
        if (status_ == Status::kReady) {
            status_ = Status::kRunning;
            load_fp_state();
            run_entry();
        }
        status_ = Status::kFinished;
        switch_out();
    }
}

void FiberContext::run_entry() noexcept {
    try {
        entry_(arg_);
    } catch (const FiberCancelled&) {
        // Unwound by cancel(): a normal end.
    } catch (...) {
        exception_ = std::current_exception();
    }
}

void FiberContext::capture_fp_state() noexcept {
#if defined(__x86_64__)
    mxcsr_ = _mm_getcsr();
    asm volatile("fnstcw %0" : "=m"(x87_control_));
#endif
}

void FiberContext::load_fp_state() const noexcept {
#if defined(__x86_64__)
    _mm_setcsr(mxcsr_);
    asm volatile("fldcw %0" : : "m"(x87_control_));
#endif
}

}  // namespace quiesce::sched::detail
