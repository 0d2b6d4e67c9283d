// RuntimeStats as JSON and Prometheus text (see stats.hpp).
#include <quiesce/framework/stats.hpp>

#include <quiesce/framework/command_line.hpp>

#include <cstdint>
#include <cstdio>
#include <string_view>

#include <nlohmann/json.hpp>

namespace quiesce {

std::string to_json(const RuntimeStats& s) {
    using nlohmann::json;
    json loops = json::array();
    for (std::size_t i = 0; i < s.scheduler.loops.size(); ++i) {
        const sched::LoopStats& l = s.scheduler.loops[i];
        loops.push_back({
            {"index", i},
            {"cpu", l.cpu},
            {"turns", l.turns},
            {"events", l.events},
            {"sleeps", l.sleeps},
            {"wakeups", l.wakeups},
            {"stolen", l.stolen},
            {"given", l.given},
            {"busy_cpu_ns", l.busy_cpu_ns},
            {"slice_mode", std::string(sched::to_string(l.slice_mode))},
        });
        if (i < s.loops_now.size()) {
            const LoopNow& now = s.loops_now[i];
            json& entry = loops.back();
            entry["queued"] = now.queued;
            entry["running"] = now.running;
            entry["group"] = now.group;
            entry["group_id"] = now.group_id;
            entry["running_ms"] = now.running_ms;
        }
    }
    json stalls = json::array();
    for (const StallRecord& record : s.recent_stalls)
        stalls.push_back({{"time", record.unix_time}, {"text", record.text}});
    json buckets = json::array();
    for (std::size_t i = 0; i < rcu::DomainStats::kGraceBuckets; ++i) {
        const bool last = i + 1 == rcu::DomainStats::kGraceBuckets;
        buckets.push_back(
            {{"below_ns", last ? json(nullptr) : json(rcu::DomainStats::kGraceBucketBoundNs << i)},
             {"count", s.rcu.grace_period_buckets[i]}});
    }
    json out = {
        {"name", s.name},
        {"version", std::string(version())},
        {"uptime_seconds", s.uptime_seconds},
        {"loops", loops},
        {"groups", s.scheduler.groups},
        {"fiber_stacks",
         {{"in_use", s.scheduler.fiber_stacks.in_use},
          {"mapped", s.scheduler.fiber_stacks.mapped},
          {"guard_mode", s.scheduler.fiber_stacks.guard_mode}}},
        {"connections",
         {{"open", s.connections_open},
          {"accepted", s.connections_accepted},
          {"refused", s.connections_refused},
          {"accept_pauses", s.accept_pauses}}},
        {"bytes", {{"in", s.bytes_in}, {"out", s.bytes_out}}},
        {"stalls", {{"reported", s.stall_reports}, {"last", s.last_stall}, {"recent", stalls}}},
        {"rcu",
         {{"grace_periods", s.rcu.grace_periods},
          {"expedited", s.rcu.expedited},
          {"callbacks_invoked", s.rcu.callbacks_invoked},
          {"stall_warnings", s.rcu.stall_warnings},
          {"callback_warnings", s.rcu.callback_warnings},
          {"qsbr_readers", s.rcu.qsbr_readers},
          {"preemptible_readers", s.rcu.preemptible_readers},
          {"callbacks_pending", s.rcu.callbacks_pending},
          {"grace_period_ns_total", s.rcu.grace_period_ns_total},
          {"grace_period_ns_max", s.rcu.grace_period_ns_max},
          {"grace_period_histogram", buckets}}},
        {"fd_poller",
         {{"readiness", s.readiness},
          {"watches", s.fds.watches},
          {"readiness_events", s.fds.readiness},
          {"posts", s.fds.posts}}},
        {"signals", {{"received", s.signals.received}, {"runs", s.signals.runs}}},
    };
    return out.dump();
}

namespace {

// A bucket bound as Prometheus clients print it (no trailing zeros).
std::string fmt_double(double value) {
    char text[32];
    std::snprintf(text, sizeof text, "%.9g", value);
    return text;
}

class Exposition {
public:
    /// Starts a metric family.
    void family(std::string_view name, std::string_view type, std::string_view help) {
        text_ += "# HELP quiesce_";
        text_ += name;
        text_ += ' ';
        text_ += help;
        text_ += "\n# TYPE quiesce_";
        text_ += name;
        text_ += ' ';
        text_ += type;
        text_ += '\n';
    }
    template <typename T>
    void sample(std::string_view name, T value, std::string_view labels = {}) {
        text_ += "quiesce_";
        text_ += name;
        if (!labels.empty()) {
            text_ += '{';
            text_ += labels;
            text_ += '}';
        }
        text_ += ' ';
        text_ += std::to_string(value);
        text_ += '\n';
    }
    template <typename T>
    void single(std::string_view name, std::string_view type, std::string_view help, T value) {
        family(name, type, help);
        sample(name, value);
    }
    std::string take() { return std::move(text_); }

private:
    std::string text_;
};

}  // namespace

std::string to_prometheus(const RuntimeStats& s) {
    Exposition e;
    e.single("uptime_seconds", "gauge", "Seconds since the runtime started.", s.uptime_seconds);
    auto per_loop = [&](std::string_view name, std::string_view help, auto field) {
        e.family(name, "counter", help);
        for (std::size_t i = 0; i < s.scheduler.loops.size(); ++i)
            e.sample(name, field(s.scheduler.loops[i]), "loop=\"" + std::to_string(i) + "\"");
    };
    per_loop("loop_turns_total", "Group turns run.",
             [](const sched::LoopStats& l) { return l.turns; });
    per_loop("loop_events_total", "Events run.",
             [](const sched::LoopStats& l) { return l.events; });
    per_loop("loop_sleeps_total", "Times the loop went idle.",
             [](const sched::LoopStats& l) { return l.sleeps; });
    per_loop("loop_wakeups_total", "Wake-ups other threads sent the loop.",
             [](const sched::LoopStats& l) { return l.wakeups; });
    per_loop("loop_stolen_total", "Groups the loop took from other loops.",
             [](const sched::LoopStats& l) { return l.stolen; });
    per_loop("loop_given_total", "Groups the loop handed to other loops.",
             [](const sched::LoopStats& l) { return l.given; });
    per_loop("loop_busy_cpu_seconds_total", "Thread CPU time of group turns.",
             [](const sched::LoopStats& l) { return static_cast<double>(l.busy_cpu_ns) / 1e9; });
    e.family("loop_queued_groups", "gauge", "Groups waiting for the loop.");
    for (const LoopNow& now : s.loops_now)
        e.sample("loop_queued_groups", now.queued, "loop=\"" + std::to_string(now.loop) + "\"");
    e.single("groups", "gauge", "Event groups alive.", s.scheduler.groups);
    e.single("fiber_stacks_in_use", "gauge", "Fiber stacks held by fibers.",
             s.scheduler.fiber_stacks.in_use);
    e.single("connections_open", "gauge", "Open connections.", s.connections_open);
    e.single("connections_accepted_total", "counter", "Connections accepted.",
             s.connections_accepted);
    e.single("connections_refused_total", "counter",
             "Connections closed at once over max_connections.", s.connections_refused);
    e.single("accept_pauses_total", "counter", "Accept back-offs after EMFILE/ENFILE.",
             s.accept_pauses);
    e.single("loop_stalls_total", "counter", "Loop stalls reported.", s.stall_reports);
    e.single("received_bytes_total", "counter", "Bytes read from connections.", s.bytes_in);
    e.single("sent_bytes_total", "counter", "Bytes written to connections.", s.bytes_out);
    e.single("rcu_grace_periods_total", "counter", "RCU grace periods completed.",
             s.rcu.grace_periods);
    e.single("rcu_expedited_total", "counter", "Expedited grace periods.", s.rcu.expedited);
    e.single("rcu_callbacks_invoked_total", "counter", "RCU callbacks run by the callback thread.",
             s.rcu.callbacks_invoked);
    e.single("rcu_stall_warnings_total", "counter", "RCU stall warnings logged.",
             s.rcu.stall_warnings);
    e.single("rcu_qsbr_readers", "gauge", "Registered QSBR readers.", s.rcu.qsbr_readers);
    e.single("rcu_callbacks_pending", "gauge",
             "RCU callbacks waiting for a grace period or to run.", s.rcu.callbacks_pending);
    {
        e.family("rcu_grace_period_seconds", "histogram",
                 "Grace-period latency, from its start to its completion.");
        std::uint64_t cumulative = 0;
        for (std::size_t i = 0; i + 1 < rcu::DomainStats::kGraceBuckets; ++i) {
            cumulative += s.rcu.grace_period_buckets[i];
            const double bound =
                static_cast<double>(rcu::DomainStats::kGraceBucketBoundNs << i) / 1e9;
            e.sample("rcu_grace_period_seconds_bucket", cumulative,
                     "le=\"" + fmt_double(bound) + "\"");
        }
        cumulative += s.rcu.grace_period_buckets.back();
        e.sample("rcu_grace_period_seconds_bucket", cumulative, "le=\"+Inf\"");
        e.sample("rcu_grace_period_seconds_sum",
                 static_cast<double>(s.rcu.grace_period_ns_total) / 1e9);
        e.sample("rcu_grace_period_seconds_count", cumulative);
    }
    e.single("fd_watches", "gauge", "Descriptors watched.", s.fds.watches);
    e.single("fd_readiness_total", "counter", "Readiness callbacks (before coalescing).",
             s.fds.readiness);
    e.single("fd_posts_total", "counter", "Readiness handler runs queued to groups.", s.fds.posts);
    e.single("signals_received_total", "counter", "Signals read from the signalfd.",
             s.signals.received);
    return e.take();
}

}  // namespace quiesce
