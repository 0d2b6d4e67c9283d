// One named spdlog logger per module, created on first use and shared by all
// threads. The framework installs sinks and levels; until then every logger
// writes to stderr at the level SPDLOG_LEVEL names (default info).
//
// Hot paths never log: they count. Trace lines use SPDLOG_LOGGER_TRACE, which
// release builds compile out (SPDLOG_ACTIVE_LEVEL is set by meson).
#pragma once

#include <quiesce/base/config.hpp>

#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include <spdlog/cfg/env.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

namespace quiesce::log {

inline constexpr const char* kRcu = "rcu";
inline constexpr const char* kScheduler = "sched";
inline constexpr const char* kPollers = "poll";
inline constexpr const char* kFramework = "fw";

/// Returns the logger called `name`, creating it (stderr sink, level from
/// SPDLOG_LEVEL) the first time. Thread: any. Cost: a mutex; cache the result.
inline std::shared_ptr<spdlog::logger> get(const char* name) {
    static std::mutex mutex;
    std::lock_guard lock(mutex);  // spdlog's registry throws on a racing create
    if (auto existing = spdlog::get(name)) return existing;
    // Read SPDLOG_LEVEL (e.g. "info,rcu=debug") once, before the first logger
    // exists: the registry then gives every new logger its level.
    static std::once_flag env_once;
    std::call_once(env_once, [] { spdlog::cfg::load_env_levels(); });
    auto logger = spdlog::stderr_color_mt(name);
    return logger;
}

/// Sets the level of every quiesce logger (and the default for new ones) from
/// a spdlog level name: trace, debug, info, warn, err, critical, off.
/// Returns false, changing nothing, when `level` names no level.
inline bool set_level(std::string_view level) {
    auto parsed = spdlog::level::from_str(std::string(level));
    if (parsed == spdlog::level::off && level != "off") return false;
    for (const char* name : {kRcu, kScheduler, kPollers, kFramework}) get(name)->set_level(parsed);
    spdlog::set_level(parsed);
    return true;
}

}  // namespace quiesce::log
