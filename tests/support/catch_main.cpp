// The main() of every Catch2 test executable: adds --log-level, and runs a
// death case instead of the tests when QUIESCE_DEATH_CASE names one (see
// death.hpp).
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cstdlib>
#include <string>

#include <quiesce/base/log.hpp>

#include "death.hpp"

int main(int argc, char* argv[]) {
    if (const char* name = std::getenv(quiesce::test::kDeathCaseEnv)) {
        return quiesce::test::run_death_case_here(name);
    }
    Catch::Session session;
    std::string level;
    using Catch::clara::Opt;
    session.cli(session.cli() |
                Opt(level, "level")["--log-level"]("spdlog level: trace debug info warn err off"));
    if (int rc = session.applyCommandLine(argc, argv); rc != 0) return rc;
    if (!level.empty() && !quiesce::log::set_level(level)) {
        std::fprintf(stderr, "unknown --log-level '%s'\n", level.c_str());
        return 2;
    }
    return session.run();
}
