// Every thread quiesce starts (loops, RCU callback threads, pollers, offload
// workers) blocks asynchronous signals, so that a process-directed signal
// (SIGINT, SIGTERM, SIGHUP, SIGUSR1, ...) reaches the application's own
// threads or the signal poller's signalfd, never a loop in the middle of an
// event. Threads inherit the mask of the thread that creates them, so the
// creator blocks around the creation:
//
//     {
//         base::SignalBlock block;          // this thread: async signals blocked
//         worker_ = std::thread(run);       // starts with them blocked
//     }                                     // this thread: mask restored
//
// Left unblocked: the signals faults raise (SIGSEGV, SIGBUS, SIGFPE, SIGILL,
// SIGTRAP, SIGSYS, SIGABRT), SIGPROF (profilers), the scheduler's wall-clock
// tick signal (kTickSignal), which a POSIX timer sends to a loop thread
// itself, and the backtrace signal (SIGRTMAX-4), which the framework's stall
// detector sends to a loop thread to record where it is stuck.
//
// Threading: acts on the calling thread's mask only.
#pragma once

#include <quiesce/base/config.hpp>

#include <pthread.h>
#include <signal.h>

#include <initializer_list>

namespace quiesce::base {

/// The signal the scheduler's kWallConfirm tick source uses on loop threads.
inline int tick_signal() noexcept {
    return SIGRTMAX - 3;
}

/// The signal the framework's stall detector sends to one loop thread
/// (tgkill) to take its backtrace. Not for applications.
inline int backtrace_signal() noexcept {
    return SIGRTMAX - 4;
}

/// The asynchronous signals quiesce's threads block.
inline sigset_t async_signals() noexcept {
    sigset_t set;
    sigfillset(&set);
    for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS, SIGABRT, SIGPROF})
        sigdelset(&set, sig);
    sigdelset(&set, tick_signal());
    sigdelset(&set, backtrace_signal());
    return set;
}

/// Blocks async_signals() in the calling thread for its scope.
class [[nodiscard]] SignalBlock {
public:
    SignalBlock() noexcept {
        const sigset_t block = async_signals();
        pthread_sigmask(SIG_BLOCK, &block, &saved_);
    }
    ~SignalBlock() { pthread_sigmask(SIG_SETMASK, &saved_, nullptr); }
    SignalBlock(const SignalBlock&) = delete;
    SignalBlock& operator=(const SignalBlock&) = delete;

private:
    sigset_t saved_;
};

}  // namespace quiesce::base
