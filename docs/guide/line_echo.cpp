// The guide's fiber example: a line protocol in straight-line code.
#include <quiesce/framework/command_line.hpp>
#include <quiesce/framework/runtime.hpp>
#include <quiesce/framework/stream.hpp>

void serve(quiesce::tcp::Stream& stream) {
    while (auto line = stream.read_until("\n", 4096)) {  // nullopt at EOF
        if (*line == "quit") break;
        stream.write("you said: " + *line + "\n");  // sent before the next read waits
    }
}

int main(int argc, char** argv) {
    quiesce::CommandLine cli("line_echo", "Answers every line.", {.listen = {"127.0.0.1:7001"}});
    quiesce::RuntimeOptions options = cli.parse(argc, argv);
    quiesce::Runtime runtime(options);
    for (const auto& address : options.listen) runtime.listen_fibers(address, serve);
    return runtime.run();
}
