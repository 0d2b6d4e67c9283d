// Poller: the failure path shared by every poller.
//
// Threading: mutex_ guards the handler and the failed flag; the handler runs
// outside it.
#include <quiesce/pollers/poller.hpp>

#include "log.hpp"

namespace quiesce::pollers {

void Poller::set_failure_handler(FailureHandler handler) {
    std::lock_guard lock(mutex_);
    on_failure_ = std::move(handler);
}

bool Poller::failed() const noexcept {
    std::lock_guard lock(mutex_);
    return failed_;
}

void Poller::fail(std::string_view why) noexcept {
    FailureHandler handler;
    {
        std::lock_guard lock(mutex_);
        if (failed_) return;
        failed_ = true;
        handler = on_failure_;
    }
    detail::logger().error("poller '{}' failed: {}", name_, why);
    if (!handler) return;
    try {
        handler(*this, why);
    } catch (const std::exception& error) {
        detail::logger().error("poller '{}': the failure handler threw: {}", name_, error.what());
    } catch (...) {
        detail::logger().error("poller '{}': the failure handler threw", name_);
    }
}

}  // namespace quiesce::pollers
