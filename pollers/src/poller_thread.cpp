// PollerThread; see poller_thread.hpp.
//
// Threading: start() hands the body over through a promise (its set_value
// orders the registration before start() returns); everything else on the
// thread belongs to it.
#include "poller_thread.hpp"

#include <pthread.h>

#include <future>
#include <system_error>

#include <quiesce/base/signals.hpp>

#include "log.hpp"

namespace quiesce::pollers::detail {

PollerThread::PollerThread(Poller& owner, std::string thread_name)
    : owner_(owner), name_(std::move(thread_name)) {}

PollerThread::~PollerThread() {
    join();
}

void PollerThread::start(Body body) {
    std::promise<void> registered;
    std::future<void> ready = registered.get_future();
    {
        base::SignalBlock block;  // the thread starts with async signals blocked
        thread_ = std::thread([this, &registered, body = std::move(body)]() mutable {
            std::string short_name = name_.substr(0, 15);  // the kernel's limit
            pthread_setname_np(pthread_self(), short_name.c_str());
            rcu::QsbrReader reader(rcu::Domain::default_domain(), name_);
            reader_ = &reader;
            registered.set_value();  // `registered` dies with start()'s frame
            main(body);
            reader_ = nullptr;
        });
    }
    ready.get();
}

void PollerThread::main(Body& body) noexcept {
    try {
        body(*this);
    } catch (const std::exception& error) {
        owner_.fail("thread '" + name_ + "' ended by an exception: " + error.what());
    } catch (...) {
        owner_.fail("thread '" + name_ + "' ended by an exception");
    }
}

void PollerThread::join() noexcept {
    if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

}  // namespace quiesce::pollers::detail
