// Aborting on a broken usage rule with a message that says what was done, on
// which thread, and what to do instead. Unlike QUIESCE_ASSERT (our own bugs,
// debug builds only) these checks are on in every build: each sits on a slow
// path where it costs a load and a branch.
#pragma once

#include <quiesce/base/config.hpp>

#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace quiesce::base {

/// "thread 'NAME' (tid N)" for the calling thread, with its pthread name.
inline std::string this_thread_description() {
    char name[32] = {};
    if (pthread_getname_np(pthread_self(), name, sizeof name) != 0) name[0] = '\0';
    return "thread '" + std::string(name) + "' (tid " +
           std::to_string(static_cast<long>(syscall(SYS_gettid))) + ")";
}

/// Prints "quiesce: misuse: TEXT" to stderr and aborts. Thread: any.
[[noreturn, gnu::cold, gnu::noinline]] inline void misuse(const std::string& text) noexcept {
    std::fprintf(stderr, "quiesce: misuse: %s\n", text.c_str());
    std::fflush(stderr);
    std::abort();
}

}  // namespace quiesce::base
