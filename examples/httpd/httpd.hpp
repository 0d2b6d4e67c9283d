// httpd: an HTTP/1.1 server on quiesce (see README.md). The routes live in
// a library of their own, so that tests and the fuzz target drive them
// without the command line.
//
// Threading: Httpd is built on the main thread before the runtime serves;
// its routes run on connections' groups; reload_config() on any thread
// (the SIGHUP handler's group), one at a time.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>

#include <nlohmann/json.hpp>

#include <quiesce/framework/http.hpp>
#include <quiesce/framework/runtime.hpp>
#include <quiesce/pollers/aio_poller.hpp>
#include <quiesce/pollers/signal_poller.hpp>
#include <quiesce/rcu/ptr.hpp>

namespace httpd {

struct Options {
    /// Directory /files/ serves; empty = no /files/ route (404).
    std::filesystem::path root{};
    /// JSON file /config serves and SIGHUP reloads; empty = "{}".
    std::filesystem::path config{};
    quiesce::http::ServerOptions http{};
    /// Bytes of a file per piece: one AIO read, or one sendfile.
    std::size_t file_chunk = 256 * 1024;
    /// Pieces the page cache holds go out with sendfile(2), with no AIO read
    /// and no copy through httpd (file_send.hpp: where cachestat(2) answers
    /// for the file, until a piece has to be read); the rest through the AIO
    /// poller. False: always the AIO poller.
    bool sendfile = true;
};

/// The configuration every request reads (through an rcu::Ptr, no lock).
struct Config {
    nlohmann::json document = nlohmann::json::object();
    std::string text = "{}\n";  // document.dump(2), what /config sends
    /// "headers": {"Name": "value", ...} added to every reply.
    std::vector<quiesce::http::Header> headers{};
};

/// The page `/` sends (the benchmark target), byte for byte.
extern const std::string_view kIndexPage;

class Httpd {
public:
    /// Loads the configuration (throws std::runtime_error if it is bad: a
    /// server must not start on a broken file), starts the AIO poller.
    Httpd(quiesce::Runtime& runtime, Options options);
    ~Httpd();
    Httpd(const Httpd&) = delete;
    Httpd& operator=(const Httpd&) = delete;

    [[nodiscard]] std::shared_ptr<quiesce::http::Router> router() const { return router_; }
    /// Re-reads the --config file; a bad one is refused (logged, false) and
    /// the old configuration stays.
    bool reload_config();
    /// Reloads on SIGHUP (the signal must be blocked in every thread: block
    /// it before the runtime starts).
    void reload_on_sighup();

private:
    void add_routes();
    void serve_file(quiesce::http::Responder responder);
    void burn(quiesce::http::Responder responder);
    [[nodiscard]] quiesce::http::Response with_config(quiesce::http::Response response) const;

    quiesce::Runtime& runtime_;
    const Options options_;
    int root_fd_ = -1;
    std::unique_ptr<quiesce::pollers::AioPoller> aio_;
    std::shared_ptr<quiesce::http::Router> router_;
    quiesce::rcu::Ptr<const Config> config_;
    std::mutex reload_mutex_;  // one reload at a time
    quiesce::sched::Group control_;
    quiesce::pollers::SignalSubscription on_sighup_;
};

/// Loads and checks a configuration file; throws std::runtime_error saying
/// what is wrong.
std::unique_ptr<Config> load_config(const std::filesystem::path& path);

/// The Content-Type for a file name's extension.
std::string_view content_type(std::string_view name) noexcept;

}  // namespace httpd
