// Death tests: code that must abort runs in a fresh process of the same test
// executable (posix_spawn of /proc/self/exe with QUIESCE_DEATH_CASE=name), so
// no test forks a multi-threaded process and sanitizers stay happy.
//
//     QUIESCE_DEATH_CASE(sync_in_read_section) { rcu::ReadLock l; d.synchronize(); }
//     auto r = quiesce::test::run_death_case("sync_in_read_section");
//     CHECK(r.aborted);  CHECK_THAT(r.output, Contains("wait for itself"));
#pragma once

#include <functional>
#include <string>

namespace quiesce::test {

inline constexpr const char* kDeathCaseEnv = "QUIESCE_DEATH_CASE";

struct DeathResult {
    bool aborted = false;  ///< ended by SIGABRT
    int status = 0;        ///< raw wait status
    std::string output;    ///< what it wrote to stderr and stdout
};

/// Registers `fn` under `name` (static initialisation).
bool register_death_case(const char* name, std::function<void()> fn);

/// Runs the named case in a child process and waits for it (bounded: 60 s).
DeathResult run_death_case(const std::string& name);

/// In the child: runs the case; returns 0 if it did not abort, 3 if unknown.
int run_death_case_here(const char* name);

}  // namespace quiesce::test

#define QUIESCE_DEATH_CASE(name)                                            \
    static void quiesce_death_##name();                                     \
    static const bool quiesce_death_reg_##name =                            \
        ::quiesce::test::register_death_case(#name, &quiesce_death_##name); \
    static void quiesce_death_##name()
