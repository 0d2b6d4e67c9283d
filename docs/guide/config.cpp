// The guide's RCU example: a configuration every request reads with no
// lock, replaced on SIGHUP.
#include <signal.h>

#include <memory>
#include <string>

#include <quiesce/framework/command_line.hpp>
#include <quiesce/framework/runtime.hpp>
#include <quiesce/rcu/rcu.hpp>

struct Config : quiesce::rcu::Head {
    std::string greeting;
};

quiesce::rcu::Ptr<Config> config{new Config{{}, "hello"}};

struct Greeter final : quiesce::tcp::Handler {
    void on_data(quiesce::tcp::Connection& conn, quiesce::Buffer& in) override {
        in.clear();
        // On a loop no lock is needed: the loop reports a quiescent state
        // only between events, so the snapshot stays valid until we return.
        const Config* now = config.load();
        conn.write(now->greeting + "\n");
    }
};

int main(int argc, char** argv) {
    quiesce::CommandLine cli("greeter", "Greets; SIGHUP changes the greeting.",
                             {.listen = {"127.0.0.1:7005"}});
    quiesce::RuntimeOptions options = cli.parse(argc, argv);
    quiesce::Runtime runtime(options);
    quiesce::sched::Group admin = runtime.scheduler().make_group({.name = "admin"});
    auto reload =
        runtime.signals().subscribe(SIGHUP, admin, [](const quiesce::pollers::SignalInfo&) {
            // One updater (this group): build, publish, retire the old one. It is
            // freed after a grace period, when no loop can still be reading it.
            Config* old = config.exchange(new Config{{}, "hello again"});
            quiesce::rcu::Domain::default_domain().retire(old);
        });
    for (const auto& address : options.listen)
        runtime.listen(address, [] { return std::make_unique<Greeter>(); });
    int code = runtime.run();
    delete config.load_owned();  // every loop has stopped
    return code;
}
