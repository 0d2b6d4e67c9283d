// The runtime's statistics as JSON (nlohmann-json) and as Prometheus text
// exposition (format 0.0.4), for an admin endpoint, a log line or a test.
//
//     std::string body = quiesce::to_prometheus(runtime.stats());
//
// Counters are monotonic since start (Prometheus type counter, names ending
// in _total); gauges are values now. Per-loop series carry a `loop` label.
//
// Threading: pure functions of a snapshot.
#pragma once

#include <quiesce/base/config.hpp>

#include <string>

#include <quiesce/framework/runtime.hpp>

namespace quiesce {

/// One JSON object (see framework/README.md, "Statistics", for the fields).
[[nodiscard]] std::string to_json(const RuntimeStats& stats);

/// Prometheus text exposition: # HELP and # TYPE lines, then the samples.
[[nodiscard]] std::string to_prometheus(const RuntimeStats& stats);

}  // namespace quiesce
