// Death-test runner; see death.hpp.
#include "death.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <stdexcept>
#include <vector>

extern char** environ;

namespace quiesce::test {
namespace {

std::map<std::string, std::function<void()>>& cases() {
    static std::map<std::string, std::function<void()>> registry;
    return registry;
}

}  // namespace

bool register_death_case(const char* name, std::function<void()> fn) {
    cases().emplace(name, std::move(fn));
    return true;
}

int run_death_case_here(const char* name) {
    auto it = cases().find(name);
    if (it == cases().end()) {
        std::fprintf(stderr, "no death case '%s'\n", name);
        return 3;
    }
    it->second();
    return 0;
}

DeathResult run_death_case(const std::string& name) {
    int pipe_fds[2];
    if (pipe2(pipe_fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], 1);
    posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], 2);

    std::vector<std::string> env_strings;
    for (char** e = environ; *e != nullptr; ++e) env_strings.emplace_back(*e);
    env_strings.push_back(std::string(kDeathCaseEnv) + "=" + name);
    // The child's abort is expected: no core dumps, no sanitizer noise about it.
    std::vector<char*> envp;
    for (auto& s : env_strings) envp.push_back(s.data());
    envp.push_back(nullptr);
    char exe[] = "/proc/self/exe";
    char* argv[] = {exe, nullptr};

    pid_t pid = 0;
    int rc = posix_spawn(&pid, exe, &actions, nullptr, argv, envp.data());
    posix_spawn_file_actions_destroy(&actions);
    close(pipe_fds[1]);
    if (rc != 0) {
        close(pipe_fds[0]);
        throw std::runtime_error("posix_spawn failed");
    }
    DeathResult result;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    char buf[4096];
    for (;;) {
        pollfd pfd{pipe_fds[0], POLLIN, 0};
        int left = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                        deadline - std::chrono::steady_clock::now())
                                        .count());
        if (left <= 0 || poll(&pfd, 1, left) <= 0) {
            kill(pid, SIGKILL);
            result.output += "\n[death case timed out]";
            break;
        }
        ssize_t n = read(pipe_fds[0], buf, sizeof buf);
        if (n <= 0) break;
        result.output.append(buf, static_cast<std::size_t>(n));
    }
    close(pipe_fds[0]);
    waitpid(pid, &result.status, 0);
    result.aborted = WIFSIGNALED(result.status) && WTERMSIG(result.status) == SIGABRT;
    return result;
}

}  // namespace quiesce::test
