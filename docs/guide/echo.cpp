// The guide's worked example: an echo server with stackless connections.
#include <memory>

#include <quiesce/framework/command_line.hpp>
#include <quiesce/framework/runtime.hpp>

struct Echo final : quiesce::tcp::Handler {
    void on_data(quiesce::tcp::Connection& conn, quiesce::Buffer& in) override {
        conn.write(in);  // moves the input's blocks to the output: no copy
    }
};

int main(int argc, char** argv) {
    quiesce::CommandLine cli("echo", "Echoes every byte back.", {.listen = {"127.0.0.1:7000"}});
    quiesce::RuntimeOptions options = cli.parse(argc, argv);
    quiesce::Runtime runtime(options);
    for (const auto& address : options.listen)
        runtime.listen(address, [] { return std::make_unique<Echo>(); });
    return runtime.run();  // until SIGINT or SIGTERM, then a graceful stop
}
