// The guide's long-work example: a request that takes a lot of CPU gives
// way between slices, in a stackless handler and in a fiber.
#include <cstdint>
#include <memory>
#include <string>

#include <quiesce/framework/command_line.hpp>
#include <quiesce/framework/runtime.hpp>
#include <quiesce/framework/stream.hpp>
#include <quiesce/scheduler/fiber.hpp>
#include <quiesce/scheduler/need_resched.hpp>

// Stackless: "N\n" asks for the sum of 0..N-1, computed in slices.
struct Summer final : quiesce::tcp::Handler {
    void on_data(quiesce::tcp::Connection& conn, quiesce::Buffer& in) override {
        auto end = in.find("\n");
        if (!end) return;  // wait for the whole line
        std::uint64_t n = std::stoull(in.take(*end));
        in.drain(1);
        conn.pause_reading();  // one request at a time
        step(conn.shared_from_this(), 0, n, 0);
    }
    // Runs until need_resched() says the slice is spent, then continues as a
    // new event of the same group, behind the other ready groups.
    static void step(std::shared_ptr<quiesce::tcp::Connection> conn, std::uint64_t i,
                     std::uint64_t n, std::uint64_t sum) {
        for (; i < n; ++i) {
            sum += i;
            if ((i & 1023) == 0 && quiesce::sched::need_resched()) {
                conn->post(
                    [conn, i, n, sum](quiesce::tcp::Connection&) { step(conn, i + 1, n, sum); });
                return;
            }
        }
        conn->write(std::to_string(sum) + "\n");
        conn->resume_reading();
    }
};

// The same in a fiber: yield_if_needed() is the whole story.
void sum_lines(quiesce::tcp::Stream& stream) {
    while (auto line = stream.read_until("\n", 64)) {
        std::uint64_t n = std::stoull(*line), sum = 0;
        for (std::uint64_t i = 0; i < n; ++i) {
            sum += i;
            if ((i & 1023) == 0) quiesce::sched::this_fiber::yield_if_needed();
        }
        stream.write(std::to_string(sum) + "\n");
    }
}

int main(int argc, char** argv) {
    quiesce::CommandLine cli("slices", "Sums in slices.",
                             {.listen = {"127.0.0.1:7003", "127.0.0.1:7004"}});
    quiesce::RuntimeOptions options = cli.parse(argc, argv);
    quiesce::Runtime runtime(options);
    runtime.listen(options.listen.at(0), [] { return std::make_unique<Summer>(); });
    runtime.listen_fibers(options.listen.at(1), sum_lines);
    return runtime.run();
}
