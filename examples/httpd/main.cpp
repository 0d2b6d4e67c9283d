// httpd: an HTTP/1.1 server on quiesce, with the runtime's live dashboard.
//
//     build/examples/httpd/httpd --listen 127.0.0.1:8080 --root ./public
//     curl http://127.0.0.1:8080/                  # a small fixed page
//     curl http://127.0.0.1:8080/burn?ms=200       # 200 ms of CPU, in slices
//     curl http://127.0.0.1:8080/files/index.html  # files under --root (sendfile or AIO)
//     open http://127.0.0.1:8080/dashboard         # loops, grace periods, stalls, live
//
// Each connection is a stackless group; requests are parsed by llhttp
// (framework/http.hpp). See README.md for the routes, the limits and the
// measured figures.
#include <signal.h>

#include <iostream>

#include <quiesce/framework/command_line.hpp>
#include <quiesce/framework/runtime.hpp>

#include "httpd.hpp"

int main(int argc, char** argv) {
    quiesce::CommandLine cli("httpd", "An HTTP/1.1 server with a live dashboard of its runtime.",
                             {.listen = {"127.0.0.1:8080"}, .name = "httpd"});
    std::string root;
    std::string config;
    unsigned header_timeout_ms = 10'000;
    unsigned keep_alive_s = 75;
    std::size_t max_body = 1024 * 1024;
    std::size_t max_header = 16 * 1024;
    std::size_t max_uri = 8 * 1024;
    bool sendfile = true;
    CLI::App& app = cli.app();
    app.add_option("--root", root, "directory served under /files/ (none: /files/ is 404)")
        ->check(CLI::ExistingDirectory);
    app.add_option("--config", config,
                   "JSON document served at /config; SIGHUP reloads it ({\"headers\": {...}} are "
                   "added to every reply)")
        ->check(CLI::ExistingFile);
    app.add_option("--header-timeout-ms", header_timeout_ms,
                   "close a connection whose request head takes longer (408)")
        ->capture_default_str();
    app.add_option("--keep-alive-s", keep_alive_s, "close keep-alive connections idle this long")
        ->capture_default_str();
    app.add_option("--max-body", max_body, "largest request body in bytes (413 past it)")
        ->capture_default_str();
    app.add_option("--max-header", max_header,
                   "largest request line and headers in bytes (431 past it)")
        ->capture_default_str();
    app.add_option("--max-uri", max_uri, "longest request target in bytes (414 past it)")
        ->capture_default_str();
    app.add_option("--sendfile", sendfile,
                   "send /files/ pieces the page cache holds with sendfile(2) (false: every "
                   "piece through an AIO read)")
        ->capture_default_str();
    quiesce::RuntimeOptions options = cli.parse(argc, argv);

    // SIGHUP reloads the configuration: blocked before any thread starts so
    // that only the signal poller sees it.
    sigset_t hup;
    sigemptyset(&hup);
    sigaddset(&hup, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &hup, nullptr);

    httpd::Options httpd_options;
    httpd_options.root = root;
    httpd_options.config = config;
    httpd_options.http.header_timeout = std::chrono::milliseconds(header_timeout_ms);
    httpd_options.http.keep_alive_timeout = std::chrono::seconds(keep_alive_s);
    httpd_options.http.max_body = max_body;
    httpd_options.http.max_header_bytes = max_header;
    httpd_options.http.max_target = max_uri;
    httpd_options.sendfile = sendfile;
    const std::string version = quiesce::version();  // "quiesce 0.1.0"
    httpd_options.http.server = "quiesce-httpd/" + version.substr(version.find(' ') + 1);
    httpd_options.http.name = "httpd";

    try {
        quiesce::Runtime runtime(options);
        httpd::Httpd server(runtime, httpd_options);
        server.reload_on_sighup();
        for (const std::string& address : options.listen) {
            quiesce::tcp::Listener& listener =
                quiesce::http::listen(runtime, address, server.router(), httpd_options.http);
            std::cout << "httpd: listening on http://" << listener.address().to_string() << "/"
                      << std::endl;
        }
        return runtime.run();
    } catch (const std::exception& e) {
        std::cerr << "httpd: " << e.what() << "\n";
        return 1;
    }
}
