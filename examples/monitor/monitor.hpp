// What the GUI monitors (gtk_monitor, qt_monitor) show and do, apart from
// the toolkit: the figures a window displays, computed from two samples of
// the runtime's statistics, and the CPU burn a button starts on the loops.
//
//     monitor::Sampler sampler;
//     monitor::Figures f = sampler.next(runtime.stats());   // once a second
//     label->setText(f.events_per_second);
//
//     monitor::burn(runtime.scheduler(), 300, post_to_gui,
//                   [](int done) { /* GUI thread: progress */ },
//                   [] { /* GUI thread: finished */ });
//
// Threading: Sampler on one thread (the GUI's); burn() from any thread, its
// callbacks run wherever `post_to_gui` sends them.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <quiesce/framework/runtime.hpp>
#include <quiesce/framework/tcp.hpp>
#include <quiesce/scheduler/fiber.hpp>
#include <quiesce/scheduler/need_resched.hpp>
#include <quiesce/scheduler/scheduler.hpp>

namespace quiesce::monitor {

inline std::string format(const char* fmt, double value) {
    char text[64];
    std::snprintf(text, sizeof text, fmt, value);
    return text;
}

/// One loop's row, as displayed.
struct LoopFigures {
    double cpu_percent = 0;  ///< for a bar
    std::string cpu, events_per_second, queued, migrations, running;
};

/// Everything a window displays, as text.
struct Figures {
    std::string uptime, connections, events_per_second, groups, grace_periods_per_second,
        grace_period_latency, callbacks_pending, stalls;
    std::vector<LoopFigures> loops;
};

/// Turns successive samples of RuntimeStats into rates and text.
class Sampler {
public:
    Figures next(const RuntimeStats& now) {
        const auto at = std::chrono::steady_clock::now();
        const double seconds =
            have_last_ ? std::chrono::duration<double>(at - last_at_).count() : 0;
        const auto rate = [&](std::uint64_t now_value, std::uint64_t then) {
            return seconds > 0 && now_value >= then
                       ? static_cast<double>(now_value - then) / seconds
                       : 0.0;
        };
        Figures f;
        std::uint64_t events = 0, last_events = 0;
        for (std::size_t i = 0; i < now.scheduler.loops.size(); ++i) {
            const sched::LoopStats& loop = now.scheduler.loops[i];
            const sched::LoopStats* before = have_last_ && i < last_.scheduler.loops.size()
                                                 ? &last_.scheduler.loops[i]
                                                 : nullptr;
            events += loop.events;
            if (before != nullptr) last_events += before->events;
            LoopFigures row;
            row.cpu_percent =
                before != nullptr && seconds > 0
                    ? std::clamp(100.0 *
                                     static_cast<double>(loop.busy_cpu_ns - before->busy_cpu_ns) /
                                     1e9 / seconds,
                                 0.0, 100.0)
                    : 0.0;
            row.cpu = format("%.0f %%", row.cpu_percent);
            row.events_per_second =
                format("%.0f", before != nullptr ? rate(loop.events, before->events) : 0.0);
            row.migrations = std::to_string(loop.stolen + loop.given);
            if (i < now.loops_now.size()) {
                const LoopNow& what = now.loops_now[i];
                row.queued = std::to_string(what.queued);
                row.running = what.running ? what.group + format(" (%.0f ms)", what.running_ms)
                                           : std::string("idle");
            }
            f.loops.push_back(std::move(row));
        }
        f.uptime = format("up %.0f s", now.uptime_seconds);
        f.connections = std::to_string(now.connections_open) + " open, " +
                        std::to_string(now.connections_accepted) + " accepted";
        f.events_per_second = format("%.0f", have_last_ ? rate(events, last_events) : 0.0);
        f.groups = std::to_string(now.scheduler.groups);
        f.grace_periods_per_second =
            format("%.1f", have_last_ ? rate(now.rcu.grace_periods, last_.rcu.grace_periods) : 0);
        const std::uint64_t periods = now.rcu.grace_periods - last_.rcu.grace_periods;
        const std::uint64_t ns = now.rcu.grace_period_ns_total - last_.rcu.grace_period_ns_total;
        f.grace_period_latency =
            have_last_ && periods > 0
                ? format("%.1f µs mean",
                         static_cast<double>(ns) / 1e3 / static_cast<double>(periods)) +
                      format(", %.1f µs max ever",
                             static_cast<double>(now.rcu.grace_period_ns_max) / 1e3)
                : std::string("none this second");
        f.callbacks_pending = std::to_string(now.rcu.callbacks_pending);
        f.stalls = now.stall_reports == 0
                       ? std::string("none")
                       : std::to_string(now.stall_reports) + ", last: " + now.last_stall;
        last_ = now;
        last_at_ = at;
        have_last_ = true;
        return f;
    }

private:
    RuntimeStats last_;
    std::chrono::steady_clock::time_point last_at_{};
    bool have_last_ = false;
};

/// A window's labels, whatever the toolkit's label type: shown from
/// Figures, and read back (what the window displays) for --report.
template <typename Label>
struct Labels {
    struct Loop {
        Label* cpu = nullptr;
        Label* events_per_second = nullptr;
        Label* queued = nullptr;
        Label* migrations = nullptr;
        Label* running = nullptr;
    };
    Label* summary = nullptr;
    Label* connections = nullptr;
    Label* events_per_second = nullptr;
    Label* groups = nullptr;
    Label* grace_periods_per_second = nullptr;
    Label* grace_period_latency = nullptr;
    Label* callbacks_pending = nullptr;
    Label* stalls = nullptr;
    Label* burn_status = nullptr;
    std::vector<Loop> loops;

    /// `set(label, text)` for every label.
    template <typename Set>
    void show(const std::string& summary_text, const Figures& f, Set set) const {
        for (std::size_t i = 0; i < f.loops.size() && i < loops.size(); ++i) {
            set(loops[i].cpu, f.loops[i].cpu);
            set(loops[i].events_per_second, f.loops[i].events_per_second);
            set(loops[i].queued, f.loops[i].queued);
            set(loops[i].migrations, f.loops[i].migrations);
            set(loops[i].running, f.loops[i].running);
        }
        set(summary, summary_text);
        set(connections, f.connections);
        set(events_per_second, f.events_per_second);
        set(groups, f.groups);
        set(grace_periods_per_second, f.grace_periods_per_second);
        set(grace_period_latency, f.grace_period_latency);
        set(callbacks_pending, f.callbacks_pending);
        set(stalls, f.stalls);
    }

    /// What the labels display now, through `get(label)`, as --report
    /// writes it; `burn` and `button` are added by the caller.
    template <typename Get>
    nlohmann::json read(Get get) const {
        nlohmann::json out;
        out["summary"] = get(summary);
        out["connections"] = get(connections);
        out["events_per_second"] = get(events_per_second);
        out["groups"] = get(groups);
        out["grace_periods_per_second"] = get(grace_periods_per_second);
        out["grace_period_latency"] = get(grace_period_latency);
        out["callbacks_pending"] = get(callbacks_pending);
        out["stalls"] = get(stalls);
        nlohmann::json rows = nlohmann::json::array();
        for (const Loop& loop : loops) {
            rows.push_back({{"cpu", get(loop.cpu)},
                            {"events_per_second", get(loop.events_per_second)},
                            {"queued", get(loop.queued)},
                            {"migrations", get(loop.migrations)},
                            {"running", get(loop.running)}});
        }
        out["loops"] = rows;
        return out;
    }
};

/// Writes `report` to `path` whole (a temporary file renamed over it), so a
/// reader never sees half of it.
inline void write_report(const std::string& path, const nlohmann::json& report) {
    const std::string partial = path + ".part";
    {
        std::ofstream file(partial);
        file << report.dump(2) << '\n';
    }
    std::rename(partial.c_str(), path.c_str());
}

/// The burn's status line.
inline std::string burning(int done, int ms) {
    return "burning " + std::to_string(done) + " / " + std::to_string(ms) + " ms on the loops";
}
inline std::string burned(int ms, std::uint64_t count) {
    return "burned " + std::to_string(ms) + " ms (" + std::to_string(count) + " done)";
}

/// The echo protocol both monitors serve.
struct Echo final : tcp::Handler {
    void on_data(tcp::Connection& conn, Buffer& in) override { conn.write(in); }
};

/// Queues a closure on the GUI thread; false when the GUI has stopped.
using PostToGui = std::function<bool(std::function<void()>)>;

/// Spawns a fiber on the loops that spends `ms` of CPU in 1 ms steps, giving
/// way whenever need_resched() says its slice is spent (the echo clients
/// keep their answers), and reports `progress(done_ms)` about every 50 ms
/// and `finished()` at the end, on the GUI thread through `post`.
inline void burn(sched::Scheduler& scheduler, int ms, PostToGui post,
                 std::function<void(int)> progress, std::function<void()> finished) {
    scheduler.spawn(
        [ms, post = std::move(post), progress = std::move(progress),
         finished = std::move(finished)] {
            auto shown = std::chrono::steady_clock::now();
            for (int done = 0; done < ms; ++done) {
                const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(1);
                while (std::chrono::steady_clock::now() < until) {
                    if (sched::need_resched()) sched::this_fiber::yield();
                }
                if (std::chrono::steady_clock::now() - shown > std::chrono::milliseconds(50)) {
                    shown = std::chrono::steady_clock::now();
                    (void)post([progress, done] { progress(done); });
                }
            }
            (void)post(finished);
        },
        {.name = "burn"});
}

}  // namespace quiesce::monitor
