// Assertions for our own bugs. QUIESCE_ASSERT checks invariants in debug
// builds and compiles to nothing under NDEBUG; QUIESCE_CHECK guards what memory
// safety depends on and is always on. Both print the failed condition, a
// message and the source location to stderr, then abort.
#pragma once

#include <quiesce/base/config.hpp>

#include <cstdio>
#include <cstdlib>

namespace quiesce::base {

/// Prints the failed check and aborts. Cold, never returns, never allocates
/// (it may run on a broken heap or a fiber with little stack left).
[[noreturn, gnu::cold, gnu::noinline]] inline void assertion_failed(
    const char* kind, const char* expr, const char* msg, const char* file, int line) noexcept {
    std::fprintf(stderr, "quiesce: %s failed: %s: %s (%s:%d)\n", kind, expr, msg, file, line);
    std::fflush(stderr);
    std::abort();
}

}  // namespace quiesce::base

/// Always-on check for conditions that memory safety depends on.
#define QUIESCE_CHECK(cond, msg)                                                                \
    do {                                                                                        \
        if (__builtin_expect(!(cond), 0))                                                       \
            ::quiesce::base::assertion_failed("QUIESCE_CHECK", #cond, msg, __FILE__, __LINE__); \
    } while (0)

#ifdef NDEBUG
#define QUIESCE_DEBUG 0
/// Debug-only invariant check: compiled out (the condition is not evaluated).
#define QUIESCE_ASSERT(cond, msg) \
    do {                          \
        (void)sizeof(!(cond));    \
    } while (0)
#else
#define QUIESCE_DEBUG 1
/// Debug-only invariant check: logs the condition and aborts.
#define QUIESCE_ASSERT(cond, msg)                                                                \
    do {                                                                                         \
        if (__builtin_expect(!(cond), 0))                                                        \
            ::quiesce::base::assertion_failed("QUIESCE_ASSERT", #cond, msg, __FILE__, __LINE__); \
    } while (0)
#endif
