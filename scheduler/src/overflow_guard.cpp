// The SIGSEGV/SIGBUS handler that names an overflowing fiber, and the
// per-thread alternate signal stacks it runs on; see overflow_guard.hpp.
//
// Threading: previous_actions is written once, under handler_once, before
// our handler is installed (sigaction orders it before any delivery); the
// handler only reads it. tls_alt_stack belongs to its thread.
#include "overflow_guard.hpp"

#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <system_error>

#include "guard_table.hpp"
#include "stack_pool.hpp"

namespace quiesce::sched::detail {
namespace {

constexpr std::size_t kMinReusedAltStack = 16 * 1024;
constexpr std::size_t kAltStackSize = 64 * 1024;

std::once_flag handler_once;
struct sigaction previous_segv {};
struct sigaction previous_bus {};

struct ThreadAltStack {
    bool installed = false;
    void* mapping = nullptr;  // our mapping (guard page first), or null if reused
    std::size_t mapping_size = 0;
    stack_t previous{};  // what sigaltstack() held before ours
};
constinit thread_local ThreadAltStack tls_alt_stack;

/// A message built without malloc, for a signal handler.
class Message {
public:
    void add(const char* s) noexcept {
        for (; *s != '\0' && len_ < sizeof buf_; ++s) buf_[len_++] = *s;
    }
    void add(std::size_t n) noexcept {
        char digits[24];
        std::size_t count = 0;
        do {
            digits[count++] = static_cast<char>('0' + n % 10);
            n /= 10;
        } while (n != 0);
        while (count > 0 && len_ < sizeof buf_) buf_[len_++] = digits[--count];
    }
    void write_to_stderr() const noexcept {
        const char* p = buf_;
        std::size_t left = len_;
        while (left > 0) {
            const ssize_t n = ::write(STDERR_FILENO, p, left);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return;
            p += n;
            left -= static_cast<std::size_t>(n);
        }
    }

private:
    char buf_[512];
    std::size_t len_ = 0;
};

[[noreturn]] void report_overflow(const GuardHit& hit) noexcept {
    Message m;
    m.add("quiesce: stack overflow in fiber \"");
    m.add(hit.label != nullptr ? hit.label : "(unnamed)");
    m.add("\" (stack ");
    m.add(hit.stack_size);
    m.add(" bytes, caught by its ");
    m.add(hit.guard_size / 1024);
    m.add(" KiB guard region); raise SchedulerOptions::fiber_stack_size\n");
    m.write_to_stderr();
    std::abort();
}

// Not our fault: hand it to whoever handled it before us.
void chain(int sig, siginfo_t* info, void* context) noexcept {
    const struct sigaction& prev = sig == SIGBUS ? previous_bus : previous_segv;
    if ((prev.sa_flags & SA_SIGINFO) != 0) {
        if (prev.sa_sigaction != nullptr) {
            prev.sa_sigaction(sig, info, context);
            return;
        }
    } else if (prev.sa_handler != SIG_DFL && prev.sa_handler != SIG_IGN) {
        prev.sa_handler(sig);
        return;
    }
    // The default action (SIG_IGN would loop on a fault): reinstall it and
    // return; the faulting access runs again and the kernel ends the process
    // as if we had never been installed.
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    sigaction(sig, &dfl, nullptr);
    if (info->si_code <= 0) raise(sig);  // sent by kill(): nothing would re-fault
}

void on_fault(int sig, siginfo_t* info, void* context) {
    const int saved_errno = errno;
    GuardHit hit;
    if (guard_table_find(info->si_addr, hit)) report_overflow(hit);
    errno = saved_errno;
    chain(sig, info, context);
}

void install_handler() {
    struct sigaction action {};
    action.sa_sigaction = &on_fault;
    action.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&action.sa_mask);
    if (sigaction(SIGSEGV, &action, &previous_segv) != 0) {
        throw std::system_error(errno, std::system_category(), "sigaction(SIGSEGV)");
    }
    if (sigaction(SIGBUS, &action, &previous_bus) != 0) {
        const int err = errno;
        sigaction(SIGSEGV, &previous_segv, nullptr);
        throw std::system_error(err, std::system_category(), "sigaction(SIGBUS)");
    }
}

std::size_t alt_stack_size() noexcept {
    const long dynamic = sysconf(_SC_SIGSTKSZ);  // glibc >= 2.34: sized for this CPU's state
    std::size_t size = kAltStackSize;
    if (dynamic > 0 && static_cast<std::size_t>(dynamic) * 4 > size) {
        size = static_cast<std::size_t>(dynamic) * 4;
    }
    const std::size_t page = StackPool::page_size();
    return (size + page - 1) / page * page;
}

}  // namespace

void report_canary_overflow(const char* label, std::size_t stack_size) noexcept {
    Message m;
    m.add("quiesce: stack overflow in fiber \"");
    m.add(label != nullptr ? label : "(unnamed)");
    m.add("\" (stack ");
    m.add(stack_size);
    m.add(
        " bytes, found by the canary below it: this stack has no guard region because the "
        "vm.max_map_count budget is used up); raise SchedulerOptions::fiber_stack_size\n");
    m.write_to_stderr();
    std::abort();
}

void install_overflow_guard_on_this_thread() {
    std::call_once(handler_once, install_handler);
    ThreadAltStack& mine = tls_alt_stack;
    if (mine.installed) return;
    stack_t current{};
    if (sigaltstack(nullptr, &current) != 0) {
        throw std::system_error(errno, std::system_category(), "sigaltstack");
    }
    if ((current.ss_flags & SS_DISABLE) == 0 && current.ss_size >= kMinReusedAltStack) {
        mine.installed = true;  // e.g. ASan's (use_sigaltstack=1): keep it
        return;
    }
    const std::size_t page = StackPool::page_size();
    const std::size_t size = alt_stack_size();
    void* mapping = mmap(nullptr, size + page, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (mapping == MAP_FAILED) {
        throw std::system_error(errno, std::system_category(), "mmap of a signal stack");
    }
    stack_t ours{};
    ours.ss_sp = static_cast<char*>(mapping) + page;
    ours.ss_size = size;
    if (mprotect(mapping, page, PROT_NONE) != 0 || sigaltstack(&ours, &mine.previous) != 0) {
        const int err = errno;
        munmap(mapping, size + page);
        throw std::system_error(err, std::system_category(), "sigaltstack");
    }
    mine.installed = true;
    mine.mapping = mapping;
    mine.mapping_size = size + page;
}

void remove_overflow_guard_from_this_thread() noexcept {
    ThreadAltStack& mine = tls_alt_stack;
    if (!mine.installed) return;
    if (mine.mapping != nullptr) {
        // Fails only while running on the alternate stack (EPERM); then the
        // mapping must stay.
        if (sigaltstack(&mine.previous, nullptr) == 0) munmap(mine.mapping, mine.mapping_size);
    }
    mine = ThreadAltStack{};
}

}  // namespace quiesce::sched::detail
