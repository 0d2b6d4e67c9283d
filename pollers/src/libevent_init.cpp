// libevent's process-wide set-up; see libevent_init.hpp.
#include "libevent_init.hpp"

#include <event2/event.h>
#include <event2/thread.h>

#include <cerrno>
#include <mutex>
#include <stdexcept>

#include "log.hpp"

namespace quiesce::pollers::detail {
namespace {

// libevent reports its own failures through this callback; we report errors
// to the caller ourselves, so its lines go to debug (warn for its errors).
void on_libevent_log(int severity, const char* message) {
    const int saved = errno;  // our caller reads errno after libevent logged
    logger().log(severity >= EVENT_LOG_ERR ? spdlog::level::warn : spdlog::level::debug,
                 "libevent: {}", message);
    errno = saved;
}

}  // namespace

void init_libevent() {
    static std::once_flag once;
    std::call_once(once, [] {
        event_set_log_callback(&on_libevent_log);
        if (evthread_use_pthreads() != 0) {
            throw std::runtime_error("libevent: evthread_use_pthreads() failed");
        }
    });
}

event_base* new_base() {
    init_libevent();
    event_config* config = event_config_new();
    if (config == nullptr) {
        errno = ENOMEM;
        return nullptr;
    }
    event_config_set_flag(config, EVENT_BASE_FLAG_NO_CACHE_TIME);
    event_base* base = event_base_new_with_config(config);
    const int saved = errno;
    event_config_free(config);
    errno = saved;
    return base;
}

}  // namespace quiesce::pollers::detail
