// echo_server: sends every byte it receives back to its sender.
//
//     build/examples/echo_server/echo_server --listen 127.0.0.1:7000
//     printf 'hello\n' | nc -q1 127.0.0.1 7000
//
// Each connection is a stackless group: the handler below runs as an event of
// it whenever bytes arrive, on whichever loop runs it. Writing moves the
// input's blocks to the output (no copy); above the output's high-water mark
// the connection stops reading until the peer catches up.
#include <memory>

#include <quiesce/framework/command_line.hpp>
#include <quiesce/framework/runtime.hpp>

namespace {

struct Echo final : quiesce::tcp::Handler {
    void on_data(quiesce::tcp::Connection& conn, quiesce::Buffer& in) override { conn.write(in); }
};

}  // namespace

int main(int argc, char** argv) {
    quiesce::CommandLine cli("echo_server", "Echoes every byte back to its sender.",
                             {.listen = {"127.0.0.1:7000"}});
    unsigned idle_seconds = 300;
    cli.app()
        .add_option("--idle-timeout", idle_seconds,
                    "close connections idle this many seconds (0: never)")
        ->capture_default_str();
    quiesce::RuntimeOptions options = cli.parse(argc, argv);

    quiesce::Runtime runtime(options);
    quiesce::tcp::ListenerOptions listener{.name = "echo"};
    listener.connection.idle_timeout = std::chrono::seconds(idle_seconds);
    for (const auto& address : options.listen)
        runtime.listen(
            address, [] { return std::make_unique<Echo>(); }, listener);
    return runtime.run();
}
