// httpd's routes (see httpd.hpp and README.md).
#include "httpd.hpp"

#include <fcntl.h>
#include <linux/openat2.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>

#include <spdlog/spdlog.h>

#include <quiesce/framework/admin.hpp>
#include <quiesce/rcu/domain.hpp>
#include <quiesce/scheduler/need_resched.hpp>

#include "file_send.hpp"

namespace httpd {

namespace http = quiesce::http;

const std::string_view kIndexPage =
    "<!doctype html>\n<html><head><title>quiesce httpd</title></head>\n"
    "<body><h1>quiesce httpd</h1><p>Served by a cooperative event loop.</p></body></html>\n";

namespace {

std::int64_t thread_cpu_ns() noexcept {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

/// Opens `relative` under `root_fd` for reading, never outside it: no "..",
/// no symlink that leaves the root, no magic links (openat2 with
/// RESOLVE_BENEATH, Linux 5.6+). Returns the descriptor or -errno.
int open_beneath(int root_fd, const std::string& relative) noexcept {
    open_how how{};
    how.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;  // a FIFO must not block us
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
    const long fd = ::syscall(SYS_openat2, root_fd, relative.c_str(), &how, sizeof how);
    return fd >= 0 ? static_cast<int>(fd) : -errno;
}

/// /burn's state: CPU time still to burn and the slices used so far.
struct Burn {
    std::int64_t left_ns = 0;
    std::int64_t total_ns = 0;
    unsigned slices = 0;
    std::uint64_t sink = 0x9e3779b97f4a7c15ull;
};

void burn_step(const std::shared_ptr<Burn>& burn, http::Responder& responder) {
    ++burn->slices;
    const std::int64_t start = thread_cpu_ns();
    for (;;) {
        for (int i = 0; i < 2000; ++i) {  // a few microseconds of work
            burn->sink ^= burn->sink << 13;
            burn->sink ^= burn->sink >> 7;
            burn->sink ^= burn->sink << 17;
        }
        const std::int64_t used = thread_cpu_ns() - start;
        if (used >= burn->left_ns) {
            burn->left_ns = 0;
            break;
        }
        if (quiesce::sched::need_resched()) {
            burn->left_ns -= used;
            break;
        }
    }
    if (burn->left_ns == 0) {
        responder.send(
            http::Response::text(200, "burned " + std::to_string(burn->total_ns / 1'000'000) +
                                          " ms of CPU in " + std::to_string(burn->slices) +
                                          " slices (" + std::to_string(burn->sink & 1) + ")\n"));
        return;
    }
    // Give way: the rest runs as a later event, behind the other groups.
    std::move(responder).defer([burn](http::Responder& next) { burn_step(burn, next); });
}

/// A boundary for multipart/byteranges: random, so no file holds it by
/// design (RFC 2046 asks only that it not occur in the parts).
std::string multipart_boundary() {
    thread_local std::mt19937_64 rng{std::random_device{}()};
    char text[40];
    std::snprintf(text, sizeof text, "quiesce-%016llx", static_cast<unsigned long long>(rng()));
    return text;
}

/// A file's strong entity tag, as nginx makes it: "MTIME-SIZE" in hex.
std::string entity_tag(const struct stat& st) {
    char tag[64];
    std::snprintf(tag, sizeof tag, "\"%llx-%llx\"",
                  static_cast<unsigned long long>(st.st_mtim.tv_sec),
                  static_cast<unsigned long long>(st.st_size));
    return tag;
}

}  // namespace

std::string_view content_type(std::string_view name) noexcept {
    const std::size_t dot = name.rfind('.');
    const std::size_t slash = name.rfind('/');
    if (dot == std::string_view::npos || (slash != std::string_view::npos && dot < slash))
        return "application/octet-stream";
    std::string ext(name.substr(dot + 1));
    for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    static const std::pair<std::string_view, std::string_view> kTypes[] = {
        {"html", "text/html; charset=utf-8"},
        {"htm", "text/html; charset=utf-8"},
        {"css", "text/css; charset=utf-8"},
        {"js", "text/javascript; charset=utf-8"},
        {"mjs", "text/javascript; charset=utf-8"},
        {"json", "application/json"},
        {"txt", "text/plain; charset=utf-8"},
        {"md", "text/markdown; charset=utf-8"},
        {"csv", "text/csv; charset=utf-8"},
        {"xml", "application/xml"},
        {"svg", "image/svg+xml"},
        {"png", "image/png"},
        {"jpg", "image/jpeg"},
        {"jpeg", "image/jpeg"},
        {"gif", "image/gif"},
        {"webp", "image/webp"},
        {"ico", "image/x-icon"},
        {"wasm", "application/wasm"},
        {"pdf", "application/pdf"},
        {"zip", "application/zip"},
        {"gz", "application/gzip"},
        {"tar", "application/x-tar"},
        {"mp4", "video/mp4"},
        {"webm", "video/webm"},
        {"mp3", "audio/mpeg"},
        {"ogg", "audio/ogg"},
        {"woff", "font/woff"},
        {"woff2", "font/woff2"},
    };
    for (const auto& [extension, type] : kTypes)
        if (ext == extension) return type;
    return "application/octet-stream";
}

std::unique_ptr<Config> load_config(const std::filesystem::path& path) {
    auto config = std::make_unique<Config>();
    if (path.empty()) return config;
    std::ifstream in(path);
    if (!in) throw std::runtime_error("cannot read " + path.string() + ": " + std::strerror(errno));
    std::stringstream text;
    text << in.rdbuf();
    try {
        config->document = nlohmann::json::parse(text.str());
    } catch (const nlohmann::json::parse_error& e) {
        throw std::runtime_error(path.string() + " is not JSON: " + e.what());
    }
    if (!config->document.is_object())
        throw std::runtime_error(path.string() + ": the configuration must be a JSON object");
    if (config->document.contains("headers")) {
        const nlohmann::json& headers = config->document["headers"];
        if (!headers.is_object())
            throw std::runtime_error(path.string() + ": \"headers\" must be an object of strings");
        for (const auto& [name, value] : headers.items()) {
            const bool token = !name.empty() && name.find_first_of(" \t\r\n:") == std::string::npos;
            if (!token || !value.is_string() ||
                value.get<std::string>().find_first_of("\r\n") != std::string::npos)
                throw std::runtime_error(path.string() + ": header \"" + name +
                                         "\" must be a token with a one-line string value");
            config->headers.emplace_back(name, value.get<std::string>());
        }
    }
    config->text = config->document.dump(2) + "\n";
    return config;
}

Httpd::Httpd(quiesce::Runtime& runtime, Options options)
    : runtime_(runtime), options_(std::move(options)), router_(std::make_shared<http::Router>()) {
    config_.store(load_config(options_.config).release());
    if (!options_.root.empty()) {
        root_fd_ = ::open(options_.root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (root_fd_ < 0)
            throw std::runtime_error("--root " + options_.root.string() + ": " +
                                     std::strerror(errno));
    }
    quiesce::pollers::AioPollerOptions aio;
    aio.name = "httpd-aio";
    aio.placement = runtime.options().fd_pollers == 0 ? quiesce::pollers::AioPlacement::kLoops
                                                      : quiesce::pollers::AioPlacement::kThread;
    aio_ = std::make_unique<quiesce::pollers::AioPoller>(runtime.scheduler(), aio);
    aio_->start();
    control_ = runtime.scheduler().make_group({.name = "httpd config"});
    add_routes();
}

Httpd::~Httpd() {
    on_sighup_ = {};
    aio_->stop();
    if (root_fd_ >= 0) ::close(root_fd_);
    const Config* last = config_.exchange(nullptr);
    quiesce::rcu::Domain::default_domain().retire(last);
}

bool Httpd::reload_config() {
    std::lock_guard lock(reload_mutex_);
    std::unique_ptr<Config> fresh;
    try {
        fresh = load_config(options_.config);
    } catch (const std::exception& e) {
        spdlog::error("httpd: configuration not reloaded, the old one stays: {}", e.what());
        return false;
    }
    const Config* old = config_.exchange(fresh.release());
    quiesce::rcu::Domain::default_domain().retire(old);  // readers may still hold it
    spdlog::info("httpd: configuration reloaded from {}", options_.config.string());
    return true;
}

void Httpd::reload_on_sighup() {
    on_sighup_ = runtime_.signals().subscribe(
        SIGHUP, control_, [this](const quiesce::pollers::SignalInfo&) { reload_config(); });
}

http::Response Httpd::with_config(http::Response response) const {
    // Loop threads are QSBR readers: the configuration stays valid for this
    // event without a lock.
    const Config* config = config_.load();
    if (config != nullptr)
        response.headers.insert(response.headers.end(), config->headers.begin(),
                                config->headers.end());
    return response;
}

void Httpd::add_routes() {
    router_->get("/", [this](http::Responder r) {
        r.send(with_config(
            http::Response::text(200, std::string(kIndexPage), "text/html; charset=utf-8")));
    });
    router_->get("/burn", [this](http::Responder r) { burn(std::move(r)); });
    router_->get("/config", [this](http::Responder r) {
        const Config* config = config_.load();
        r.send(with_config(http::Response::text(200, config->text, "application/json")));
    });
    router_->prefix("/files/", [this](http::Responder r) { serve_file(std::move(r)); });
    quiesce::add_admin_routes(*router_, runtime_, false);
}

void Httpd::burn(http::Responder responder) {
    const std::optional<std::string> text = responder.request().query_param("ms");
    unsigned ms = 0;
    if (!text || std::from_chars(text->data(), text->data() + text->size(), ms).ec != std::errc() ||
        ms > 10'000) {
        responder.send(http::Response::text(400, "burn: ms=N with N from 0 to 10000\n"));
        return;
    }
    auto state = std::make_shared<Burn>();
    state->left_ns = state->total_ns = static_cast<std::int64_t>(ms) * 1'000'000;
    if (state->left_ns == 0) state->left_ns = 1;
    burn_step(state, responder);
}

void Httpd::serve_file(http::Responder responder) {
    const http::Request& request = responder.request();
    if (root_fd_ < 0) {
        responder.send(http::Response::error(404));
        return;
    }
    // The path under /files/, made relative; ".." anywhere is refused
    // outright (and openat2 refuses any other way out of the root).
    std::string relative;
    std::string_view rest = request.path().substr(std::string_view("/files/").size());
    while (!rest.empty()) {
        const std::size_t slash = rest.find('/');
        const std::string_view segment = rest.substr(0, slash);
        rest = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
        if (segment.empty() || segment == ".") continue;
        if (segment == "..") {
            responder.send(http::Response::error(403));
            return;
        }
        if (!relative.empty()) relative += '/';
        relative += segment;
    }
    if (relative.empty()) relative = ".";
    int fd = open_beneath(root_fd_, relative);
    if (fd == -ENOSYS) {
        responder.send(http::Response::text(500, "openat2 is not available on this kernel\n"));
        return;
    }
    if (fd < 0) {
        const int error = -fd;
        responder.send(http::Response::error(
            error == ENOENT || error == ENOTDIR || error == ENAMETOOLONG ? 404 : 403));
        return;
    }
    struct stat st {};
    if (::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        const int index =
            ::openat(fd, "index.html", O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
        ::close(fd);
        if (index < 0) {
            responder.send(http::Response::error(403));  // no listings
            return;
        }
        fd = index;
        relative += "/index.html";
        if (::fstat(fd, &st) != 0) st = {};
    }
    if (!S_ISREG(st.st_mode)) {
        ::close(fd);
        responder.send(http::Response::error(403));
        return;
    }
    const auto size = static_cast<std::uint64_t>(st.st_size);
    http::Response response;
    response.content_type = std::string(content_type(relative));
    const std::string etag = entity_tag(st);
    response.headers.emplace_back("Last-Modified", http::http_date(st.st_mtim.tv_sec));
    response.headers.emplace_back("ETag", etag);
    response.headers.emplace_back("Accept-Ranges", "bytes");
    // RFC 9110 section 13.2.2's order: If-Match, then If-None-Match (which
    // makes If-Modified-Since ignored), then If-Range.
    if (auto match = request.header("If-Match"); match && !http::etag_listed(*match, etag, false)) {
        ::close(fd);
        responder.send(http::Response::error(412));
        return;
    }
    bool not_modified = false;
    if (auto none_match = request.header("If-None-Match")) {
        not_modified = http::etag_listed(*none_match, etag, true);
    } else if (auto since = request.header("If-Modified-Since")) {
        auto when = http::parse_http_date(*since);
        not_modified = when && st.st_mtim.tv_sec <= *when;
    }
    if (not_modified) {
        ::close(fd);
        response.status = 304;
        responder.send(with_config(std::move(response)));
        return;
    }
    auto range_header = request.header("Range");
    if (auto if_range = request.header("If-Range"); range_header && if_range) {
        // The range only if the representation is the one the client has:
        // the same strong tag, or exactly its Last-Modified date (header
        // values come trimmed from the parser).
        const auto date = http::parse_http_date(*if_range);
        if (date ? *date != st.st_mtim.tv_sec : *if_range != etag) range_header.reset();
    }
    std::vector<FilePart> parts{FilePart{{}, 0, size}};
    std::string tail;
    if (range_header) {
        bool unsatisfiable = false;
        const std::vector<http::ByteRange> ranges =
            http::parse_byte_ranges(*range_header, size, unsatisfiable);
        auto content_range = [size](const http::ByteRange& r) {
            return "bytes " + std::to_string(r.first) + "-" + std::to_string(r.last) + "/" +
                   std::to_string(size);
        };
        if (ranges.size() == 1) {
            response.status = 206;
            response.headers.emplace_back("Content-Range", content_range(ranges[0]));
            parts = {FilePart{{}, ranges[0].first, ranges[0].last - ranges[0].first + 1}};
        } else if (ranges.size() > 1) {
            // multipart/byteranges (RFC 9110 section 14.6): each range with
            // its own Content-Type and Content-Range, between boundaries.
            const std::string boundary = multipart_boundary();
            parts.clear();
            for (const http::ByteRange& r : ranges) {
                parts.push_back(FilePart{"\r\n--" + boundary +
                                             "\r\nContent-Type: " + response.content_type +
                                             "\r\nContent-Range: " + content_range(r) + "\r\n\r\n",
                                         r.first, r.last - r.first + 1});
            }
            tail = "\r\n--" + boundary + "--\r\n";
            response.status = 206;
            response.content_type = "multipart/byteranges; boundary=" + boundary;
        } else if (unsatisfiable) {
            ::close(fd);
            http::Response refused = http::Response::error(416);
            refused.headers.emplace_back("Content-Range", "bytes */" + std::to_string(size));
            responder.send(std::move(refused));
            return;
        }
    }
    std::uint64_t length = tail.size();
    for (const FilePart& part : parts) length += part.head.size() + part.length;
    responder.start(with_config(std::move(response)), length);
    if (request.is_head() || length == 0) {
        ::close(fd);
        responder.finish();
        return;
    }
    auto send =
        std::make_shared<FileSend>(std::move(responder), fd, std::move(parts), std::move(tail),
                                   options_.file_chunk, options_.sendfile, *aio_);
    send->step();
}

}  // namespace httpd
