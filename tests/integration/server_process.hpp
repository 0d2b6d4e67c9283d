// An example server run as a child process, as a user runs it: started with
// flags, its port read from its log ("listening on 127.0.0.1:PORT"), stopped
// with signals.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace quiesce::test {

/// The built example `name` (meson passes QUIESCE_EXAMPLES).
inline std::string example_path(const std::string& name) {
    const char* root = std::getenv("QUIESCE_EXAMPLES");
    if (root == nullptr)
        throw std::runtime_error("QUIESCE_EXAMPLES is not set (run through meson test)");
    return std::string(root) + "/" + name + "/" + name;
}

class ServerProcess {
public:
    /// Starts `binary args...`; `nofile` > 0 sets RLIMIT_NOFILE (soft and
    /// hard) in the child first.
    ServerProcess(const std::string& binary, std::vector<std::string> args, rlim_t nofile = 0) {
        int pipe_fds[2];
        if (::pipe2(pipe_fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe2");
        pid_ = ::fork();
        if (pid_ < 0) throw std::runtime_error("fork");
        if (pid_ == 0) {
            ::dup2(pipe_fds[1], 2);
            if (nofile > 0) {
                rlimit limit{nofile, nofile};
                ::setrlimit(RLIMIT_NOFILE, &limit);
            }
            std::vector<char*> argv;
            argv.push_back(const_cast<char*>(binary.c_str()));
            for (auto& arg : args) argv.push_back(arg.data());
            argv.push_back(nullptr);
            ::execv(binary.c_str(), argv.data());
            ::_exit(127);
        }
        ::close(pipe_fds[1]);
        log_fd_ = pipe_fds[0];
    }
    ~ServerProcess() {
        if (pid_ > 0 && !exited_) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
        }
        if (log_fd_ >= 0) ::close(log_fd_);
    }
    ServerProcess(const ServerProcess&) = delete;
    ServerProcess& operator=(const ServerProcess&) = delete;

    /// Reads the log until a line contains `needle` (returns the line), or
    /// `limit` passes.
    std::optional<std::string> wait_for_log(
        const std::string& needle, std::chrono::milliseconds limit = std::chrono::seconds(20)) {
        auto deadline = std::chrono::steady_clock::now() + limit;
        for (;;) {
            // Lines already read first.
            while (scanned_ < log_.size()) {
                auto end = log_.find('\n', scanned_);
                if (end == std::string::npos) break;
                std::string line = log_.substr(scanned_, end - scanned_);
                scanned_ = end + 1;
                if (line.find(needle) != std::string::npos) return line;
            }
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0 || !read_some(static_cast<int>(left.count())))
                return std::nullopt;
        }
    }
    /// The port of the first "listening on HOST:PORT" line.
    int port() {
        auto line = wait_for_log("listening on ");
        if (!line) throw std::runtime_error("the server did not report its port; log:\n" + log_);
        return std::stoi(line->substr(line->rfind(':') + 1));
    }
    void signal(int number) { ::kill(pid_, number); }
    /// Waits for the exit (bounded); returns the exit status, or -1 on a
    /// timeout, or 128+N when killed by signal N.
    int wait_exit(std::chrono::milliseconds limit = std::chrono::seconds(30)) {
        auto deadline = std::chrono::steady_clock::now() + limit;
        while (std::chrono::steady_clock::now() < deadline) {
            int status = 0;
            pid_t done = ::waitpid(pid_, &status, WNOHANG);
            if (done == pid_) {
                exited_ = true;
                while (read_some(0)) {
                }
                if (WIFEXITED(status)) return WEXITSTATUS(status);
                if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
                return -1;
            }
            read_some(20);
        }
        return -1;
    }
    /// Everything the server logged so far.
    const std::string& log() {
        while (read_some(0)) {
        }
        return log_;
    }

private:
    bool read_some(int timeout_ms) {
        pollfd p{log_fd_, POLLIN, 0};
        if (::poll(&p, 1, timeout_ms) <= 0) return false;
        char chunk[4096];
        ssize_t n = ::read(log_fd_, chunk, sizeof chunk);
        if (n <= 0) return false;
        log_.append(chunk, static_cast<std::size_t>(n));
        return true;
    }

    pid_t pid_ = -1;
    int log_fd_ = -1;
    bool exited_ = false;
    std::string log_;
    std::size_t scanned_ = 0;
};

}  // namespace quiesce::test
