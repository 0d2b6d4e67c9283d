// The admin endpoint: a live dashboard of the runtime in a browser, and the
// same statistics for programs.
//
//     quiesce::RuntimeOptions options;
//     options.admin = "127.0.0.1:9100";   // or --admin 127.0.0.1:9100
//     // http://127.0.0.1:9100/dashboard
//
// Routes (add_admin_routes() puts them on any router, so a server that
// speaks HTTP already can serve them on its own port):
// - /dashboard: a self-contained page (no CDN, no build step) that polls
//   `stats` once a second and draws per-loop CPU use, events/s, queued
//   groups, steals; grace periods/s and their latency; callbacks pending;
//   what each loop runs now and for how long; recent stall reports.
// - /stats: to_json(runtime.stats()); /metrics: Prometheus text; /dump: what
//   every loop runs now, as text.
//
// Threading: the routes run on the admin connections' groups.
#pragma once

#include <quiesce/base/config.hpp>

#include <string_view>

#include <quiesce/framework/http.hpp>
#include <quiesce/framework/runtime.hpp>

namespace quiesce {

/// Adds /dashboard, /stats, /metrics and /dump for `runtime` to `router`
/// (and / as a redirect to /dashboard when `root` is true).
void add_admin_routes(http::Router& router, Runtime& runtime, bool root = true);

/// The dashboard page (HTML with its CSS and script inline).
[[nodiscard]] std::string_view dashboard_page() noexcept;

}  // namespace quiesce
