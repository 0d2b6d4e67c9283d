// gtk_monitor: a GTK 4 window that shows the live runtime of the process it
// runs in, while the same process serves the echo protocol on its loops.
//
//     build/examples/gtk_monitor/gtk_monitor --listen 127.0.0.1:7000
//     printf 'hello\n' | nc -q1 127.0.0.1 7000
//
// GTK runs on the main thread (pollers::GlibPoller::run_here() on the
// default context); the loops run on their own threads. Once a second the
// window reads the runtime's statistics and redraws; "Burn" spawns a fiber
// on the loops that burns the chosen CPU time in slices, giving way to the
// echo clients whenever need_resched() says so, and reports its progress to
// the window with glib.invoke(): the window never waits for the loops and
// the loops never wait for the window. Closing the window (or SIGINT)
// stops the server gracefully.
//
// For tests: --report FILE writes what the window shows (every label, as
// JSON) after each refresh, and --screenshot FILE.png renders the window.
#include <gtk/gtk.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>
#include <quiesce/framework/command_line.hpp>
#include <quiesce/framework/runtime.hpp>
#include <quiesce/pollers/glib_poller.hpp>
#include <quiesce/scheduler/fiber.hpp>
#include <quiesce/scheduler/need_resched.hpp>

namespace {

using namespace quiesce;

struct Echo final : tcp::Handler {
    void on_data(tcp::Connection& conn, Buffer& in) override { conn.write(in); }
};

// One loop's row.
struct LoopRow {
    GtkLabel* cpu = nullptr;
    GtkLabel* events = nullptr;
    GtkLabel* queued = nullptr;
    GtkLabel* migrations = nullptr;
    GtkLabel* running = nullptr;
    GtkLevelBar* bar = nullptr;
};

struct Monitor {
    Runtime* runtime = nullptr;
    pollers::GlibPoller* glib = nullptr;
    std::string report_path;
    std::string screenshot_path;
    std::string serving;

    GtkWindow* window = nullptr;
    GtkLabel* summary = nullptr;
    GtkLabel* connections = nullptr;
    GtkLabel* events_rate = nullptr;
    GtkLabel* groups = nullptr;
    GtkLabel* grace_rate = nullptr;
    GtkLabel* grace_latency = nullptr;
    GtkLabel* callbacks = nullptr;
    GtkLabel* stalls = nullptr;
    std::vector<LoopRow> rows;
    GtkSpinButton* burn_ms = nullptr;
    GtkButton* burn = nullptr;
    GtkProgressBar* progress = nullptr;
    GtkLabel* burn_status = nullptr;
    GdkPaintable* paintable = nullptr;  // for --screenshot

    // The previous sample, for rates.
    RuntimeStats last;
    std::chrono::steady_clock::time_point last_at{};
    bool have_last = false;
    int burns_running = 0;  // GLib thread only
    std::uint64_t burns_done = 0;
};

GtkLabel* value_label(GtkGrid* grid, int row, const char* caption) {
    GtkWidget* name = gtk_label_new(caption);
    gtk_label_set_xalign(GTK_LABEL(name), 0);
    GtkWidget* value = gtk_label_new("…");
    gtk_label_set_xalign(GTK_LABEL(value), 1);
    gtk_widget_set_hexpand(value, TRUE);
    gtk_grid_attach(grid, name, 0, row, 1, 1);
    gtk_grid_attach(grid, value, 1, row, 1, 1);
    return GTK_LABEL(value);
}

std::string format(const char* fmt, double value) {
    char text[64];
    std::snprintf(text, sizeof text, fmt, value);
    return text;
}

void set(GtkLabel* label, const std::string& text) {
    gtk_label_set_text(label, text.c_str());
}

void save_screenshot(Monitor& m) {
    GtkWidget* widget = GTK_WIDGET(m.window);
    const int width = gtk_widget_get_width(widget);
    const int height = gtk_widget_get_height(widget);
    GskRenderer* renderer = gtk_native_get_renderer(GTK_NATIVE(m.window));
    if (width <= 0 || height <= 0 || renderer == nullptr) {
        std::fprintf(stderr, "gtk_monitor: no screenshot yet (window %dx%d, renderer %s)\n", width,
                     height, renderer != nullptr ? "ready" : "not realized");
        return;
    }
    // A native widget does not draw into a paintable: its content does, on
    // the theme's window background.
    // Kept from one refresh to the next: a new paintable has drawn nothing.
    if (m.paintable == nullptr) {
        m.paintable = gtk_widget_paintable_new(gtk_window_get_child(m.window));
    }
    GdkPaintable* paintable = m.paintable;
    GtkSnapshot* snapshot = gtk_snapshot_new();
    const graphene_rect_t area =
        GRAPHENE_RECT_INIT(0, 0, static_cast<float>(width), static_cast<float>(height));
    const GdkRGBA background = {0.98F, 0.98F, 0.98F, 1.0F};
    gtk_snapshot_append_color(snapshot, &background, &area);
    gdk_paintable_snapshot(paintable, snapshot, width, height);
    GskRenderNode* node = gtk_snapshot_free_to_node(snapshot);
    if (node == nullptr) std::fprintf(stderr, "gtk_monitor: the window drew nothing yet\n");
    if (node != nullptr) {
        GdkTexture* texture = gsk_renderer_render_texture(renderer, node, &area);
        const std::string partial = m.screenshot_path + ".part";
        if (gdk_texture_save_to_png(texture, partial.c_str())) {
            std::rename(partial.c_str(), m.screenshot_path.c_str());
        } else {
            std::fprintf(stderr, "gtk_monitor: cannot write %s\n", partial.c_str());
        }
        g_object_unref(texture);
        gsk_render_node_unref(node);
    }
}

void write_report(Monitor& m) {
    nlohmann::json out;
    const auto text = [](GtkLabel* label) { return std::string(gtk_label_get_text(label)); };
    out["summary"] = text(m.summary);
    out["connections"] = text(m.connections);
    out["events_per_second"] = text(m.events_rate);
    out["groups"] = text(m.groups);
    out["grace_periods_per_second"] = text(m.grace_rate);
    out["grace_period_latency"] = text(m.grace_latency);
    out["callbacks_pending"] = text(m.callbacks);
    out["stalls"] = text(m.stalls);
    out["burn"] = {{"status", text(m.burn_status)},
                   {"fraction", gtk_progress_bar_get_fraction(m.progress)},
                   {"done", m.burns_done}};
    nlohmann::json loops = nlohmann::json::array();
    for (const LoopRow& row : m.rows) {
        loops.push_back({{"cpu", text(row.cpu)},
                         {"events_per_second", text(row.events)},
                         {"queued", text(row.queued)},
                         {"migrations", text(row.migrations)},
                         {"running", text(row.running)}});
    }
    out["loops"] = loops;
    // Where the burn button is, in window coordinates (for a test's click).
    graphene_rect_t bounds;
    if (gtk_widget_compute_bounds(GTK_WIDGET(m.burn), GTK_WIDGET(m.window), &bounds)) {
        out["burn_button"] = {{"x", bounds.origin.x},
                              {"y", bounds.origin.y},
                              {"width", bounds.size.width},
                              {"height", bounds.size.height}};
    }
    const std::string partial = m.report_path + ".part";
    {
        std::ofstream file(partial);
        file << out.dump(2) << '\n';
    }
    std::rename(partial.c_str(), m.report_path.c_str());
}

// Once a second, on the GLib thread: the runtime's figures into the labels.
gboolean refresh(gpointer data) {
    Monitor& m = *static_cast<Monitor*>(data);
    const RuntimeStats now = m.runtime->stats();
    const auto at = std::chrono::steady_clock::now();
    const double seconds =
        m.have_last ? std::chrono::duration<double>(at - m.last_at).count() : 0.0;
    const auto rate = [&](std::uint64_t now_value, std::uint64_t then) {
        return seconds > 0 && now_value >= then ? static_cast<double>(now_value - then) / seconds
                                                : 0.0;
    };
    std::uint64_t events = 0, last_events = 0;
    for (std::size_t i = 0; i < now.scheduler.loops.size(); ++i) {
        const sched::LoopStats& loop = now.scheduler.loops[i];
        events += loop.events;
        if (i >= m.rows.size()) continue;
        const LoopRow& row = m.rows[i];
        const sched::LoopStats* before =
            m.have_last && i < m.last.scheduler.loops.size() ? &m.last.scheduler.loops[i] : nullptr;
        if (before != nullptr) last_events += before->events;
        const double cpu =
            before != nullptr && seconds > 0
                ? 100.0 * static_cast<double>(loop.busy_cpu_ns - before->busy_cpu_ns) / 1e9 /
                      seconds
                : 0.0;
        set(row.cpu, format("%.0f %%", cpu));
        gtk_level_bar_set_value(row.bar, std::min(100.0, std::max(0.0, cpu)));
        set(row.events, format("%.0f", before != nullptr ? rate(loop.events, before->events) : 0));
        set(row.migrations, std::to_string(loop.stolen + loop.given));
        if (i < now.loops_now.size()) {
            const LoopNow& what = now.loops_now[i];
            set(row.queued, std::to_string(what.queued));
            set(row.running, what.running ? what.group + format(" (%.0f ms)", what.running_ms)
                                          : std::string("idle"));
        }
    }
    set(m.summary, m.serving + format(", up %.0f s", now.uptime_seconds));
    set(m.connections, std::to_string(now.connections_open) + " open, " +
                           std::to_string(now.connections_accepted) + " accepted");
    set(m.events_rate, format("%.0f", m.have_last ? rate(events, last_events) : 0.0));
    set(m.groups, std::to_string(now.scheduler.groups));
    const double periods = m.have_last ? rate(now.rcu.grace_periods, m.last.rcu.grace_periods) : 0;
    set(m.grace_rate, format("%.1f", periods));
    const std::uint64_t new_periods = now.rcu.grace_periods - m.last.rcu.grace_periods;
    const std::uint64_t new_ns = now.rcu.grace_period_ns_total - m.last.rcu.grace_period_ns_total;
    set(m.grace_latency,
        m.have_last && new_periods > 0
            ? format("%.1f µs mean", static_cast<double>(new_ns) / 1e3 /
                                         static_cast<double>(new_periods)) +
                  format(", %.1f µs max ever", static_cast<double>(now.rcu.grace_period_ns_max) /
                                                   1e3)
            : std::string("none this second"));
    set(m.callbacks, std::to_string(now.rcu.callbacks_pending));
    set(m.stalls, now.stall_reports == 0 ? std::string("none")
                                         : std::to_string(now.stall_reports) + ", last: " +
                                               now.last_stall);
    m.last = now;
    m.last_at = at;
    m.have_last = true;
    if (!m.report_path.empty()) write_report(m);
    if (!m.screenshot_path.empty()) save_screenshot(m);
    return G_SOURCE_CONTINUE;
}

// The burn: a fiber on the loops that spends `ms` of CPU in 1 ms steps and
// gives way whenever its slice is spent, telling the window as it goes.
void start_burn(Monitor& m) {
    const int ms = gtk_spin_button_get_value_as_int(m.burn_ms);
    ++m.burns_running;
    gtk_progress_bar_set_fraction(m.progress, 0);
    set(m.burn_status, "burning 0 / " + std::to_string(ms) + " ms on the loops");
    Monitor* monitor = &m;
    pollers::GlibPoller* glib = m.glib;
    m.runtime->scheduler().spawn(
        [monitor, glib, ms] {
            const auto progress = [monitor, ms](int done) {
                const double fraction = ms > 0 ? static_cast<double>(done) / ms : 1.0;
                gtk_progress_bar_set_fraction(monitor->progress, fraction);
                set(monitor->burn_status, "burning " + std::to_string(done) + " / " +
                                              std::to_string(ms) + " ms on the loops");
            };
            const auto step = std::chrono::milliseconds(1);
            auto shown = std::chrono::steady_clock::now();
            for (int done = 0; done < ms; ++done) {
                const auto until = std::chrono::steady_clock::now() + step;
                while (std::chrono::steady_clock::now() < until) {
                    if (sched::need_resched()) sched::this_fiber::yield();
                }
                if (std::chrono::steady_clock::now() - shown > std::chrono::milliseconds(50)) {
                    shown = std::chrono::steady_clock::now();
                    (void)glib->invoke([progress, done] { progress(done); });
                }
            }
            (void)glib->invoke([monitor, ms] {
                --monitor->burns_running;
                ++monitor->burns_done;
                gtk_progress_bar_set_fraction(monitor->progress, 1.0);
                set(monitor->burn_status, "burned " + std::to_string(ms) + " ms (" +
                                              std::to_string(monitor->burns_done) + " done)");
            });
        },
        {.name = "burn"});
}

void build_window(Monitor& m, unsigned loops) {
    m.window = GTK_WINDOW(gtk_window_new());
    gtk_window_set_title(m.window, "quiesce monitor");
    gtk_window_set_default_size(m.window, 640, 420);
    GtkWidget* box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 8);
    gtk_widget_set_margin_start(box, 12);
    gtk_widget_set_margin_end(box, 12);
    gtk_widget_set_margin_top(box, 12);
    gtk_widget_set_margin_bottom(box, 12);
    gtk_window_set_child(m.window, box);

    m.summary = GTK_LABEL(gtk_label_new(m.serving.c_str()));
    gtk_label_set_xalign(m.summary, 0);
    gtk_box_append(GTK_BOX(box), GTK_WIDGET(m.summary));

    // The burn controls first: the demo's one action.
    GtkWidget* burn_row = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 8);
    m.burn = GTK_BUTTON(gtk_button_new_with_label("Burn on the loops"));
    m.burn_ms = GTK_SPIN_BUTTON(gtk_spin_button_new_with_range(1, 10000, 50));
    gtk_spin_button_set_value(m.burn_ms, 300);
    m.progress = GTK_PROGRESS_BAR(gtk_progress_bar_new());
    gtk_widget_set_hexpand(GTK_WIDGET(m.progress), TRUE);
    gtk_widget_set_valign(GTK_WIDGET(m.progress), GTK_ALIGN_CENTER);
    gtk_box_append(GTK_BOX(burn_row), GTK_WIDGET(m.burn));
    gtk_box_append(GTK_BOX(burn_row), GTK_WIDGET(m.burn_ms));
    gtk_box_append(GTK_BOX(burn_row), gtk_label_new("ms"));
    gtk_box_append(GTK_BOX(burn_row), GTK_WIDGET(m.progress));
    gtk_box_append(GTK_BOX(box), burn_row);
    m.burn_status = GTK_LABEL(gtk_label_new("idle"));
    gtk_label_set_xalign(m.burn_status, 0);
    gtk_box_append(GTK_BOX(box), GTK_WIDGET(m.burn_status));
    g_signal_connect(m.burn, "clicked",
                     G_CALLBACK(+[](GtkButton*, gpointer data) {
                         start_burn(*static_cast<Monitor*>(data));
                     }),
                     &m);

    GtkGrid* grid = GTK_GRID(gtk_grid_new());
    gtk_grid_set_column_spacing(grid, 24);
    gtk_grid_set_row_spacing(grid, 4);
    m.connections = value_label(grid, 0, "connections");
    m.events_rate = value_label(grid, 1, "events/s (all loops)");
    m.groups = value_label(grid, 2, "groups alive");
    m.grace_rate = value_label(grid, 3, "grace periods/s");
    m.grace_latency = value_label(grid, 4, "grace-period latency");
    m.callbacks = value_label(grid, 5, "RCU callbacks pending");
    m.stalls = value_label(grid, 6, "stall reports");
    gtk_box_append(GTK_BOX(box), GTK_WIDGET(grid));

    GtkGrid* table = GTK_GRID(gtk_grid_new());
    gtk_grid_set_column_spacing(table, 16);
    gtk_grid_set_row_spacing(table, 4);
    const char* headers[] = {"loop", "CPU", "", "events/s", "queued", "migrations", "running"};
    for (int c = 0; c < 7; ++c) {
        GtkWidget* header = gtk_label_new(nullptr);
        gtk_label_set_markup(GTK_LABEL(header), (std::string("<b>") + headers[c] + "</b>").c_str());
        gtk_grid_attach(table, header, c, 0, 1, 1);
    }
    for (unsigned i = 0; i < loops; ++i) {
        LoopRow row;
        const int r = static_cast<int>(i) + 1;
        gtk_grid_attach(table, gtk_label_new(std::to_string(i).c_str()), 0, r, 1, 1);
        const auto cell = [&](int column) {
            GtkWidget* label = gtk_label_new("…");
            gtk_grid_attach(table, label, column, r, 1, 1);
            return GTK_LABEL(label);
        };
        row.cpu = cell(1);
        row.bar = GTK_LEVEL_BAR(gtk_level_bar_new_for_interval(0, 100));
        gtk_widget_set_size_request(GTK_WIDGET(row.bar), 120, -1);
        gtk_widget_set_valign(GTK_WIDGET(row.bar), GTK_ALIGN_CENTER);
        gtk_grid_attach(table, GTK_WIDGET(row.bar), 2, r, 1, 1);
        row.events = cell(3);
        row.queued = cell(4);
        row.migrations = cell(5);
        row.running = cell(6);
        m.rows.push_back(row);
    }
    gtk_box_append(GTK_BOX(box), GTK_WIDGET(table));

    // Closing the window stops the server; the window itself goes once the
    // GLib loop has ended (closures from the loops may still draw in it).
    g_signal_connect(m.window, "close-request",
                     G_CALLBACK(+[](GtkWindow*, gpointer data) -> gboolean {
                         static_cast<Monitor*>(data)->runtime->stop();
                         return TRUE;
                     }),
                     &m);
    gtk_window_set_default_widget(m.window, GTK_WIDGET(m.burn));
    gtk_window_present(m.window);
}

}  // namespace

int main(int argc, char** argv) {
    CommandLine cli("gtk_monitor",
                    "A GTK 4 window showing this process's runtime while it serves echo.",
                    {.listen = {"127.0.0.1:7000"}});
    Monitor monitor;
    cli.app()
        .add_option("--report", monitor.report_path,
                    "write what the window shows, as JSON, to this file after each refresh")
        ->capture_default_str();
    cli.app()
        .add_option("--screenshot", monitor.screenshot_path,
                    "render the window to this PNG file after each refresh")
        ->capture_default_str();
    RuntimeOptions options = cli.parse(argc, argv);
    if (!gtk_init_check()) {
        std::fprintf(stderr, "gtk_monitor: cannot open a display (is DISPLAY set?)\n");
        return 1;
    }

    Runtime runtime(options);
    std::string addresses;
    for (const auto& address : options.listen) {
        tcp::Listener& listener =
            runtime.listen(address, [] { return std::make_unique<Echo>(); }, {.name = "echo"});
        addresses += (addresses.empty() ? "" : ", ") + listener.address().to_string();
    }
    pollers::GlibPoller glib({.name = "gtk", .context = g_main_context_default()});
    monitor.runtime = &runtime;
    monitor.glib = &glib;
    monitor.serving = "serving echo on " + addresses;
    build_window(monitor, static_cast<unsigned>(runtime.stats().scheduler.loops.size()));
    g_timeout_add_seconds(1, &refresh, &monitor);

    // The loops and the server's shutdown on a thread of their own; GTK
    // keeps the main thread. Whichever way the server stops (the window,
    // SIGINT, SIGTERM), the GLib loop ends after it.
    // It starts from inside the GLib loop, so that its glib.stop() always
    // finds the loop running.
    struct Server {
        Runtime& runtime;
        pollers::GlibPoller& glib;
        std::thread thread{};
        int code = 0;
    } server{runtime, glib};
    g_idle_add(
        +[](gpointer data) -> gboolean {
            auto* s = static_cast<Server*>(data);
            s->thread = std::thread([s] {
                s->code = s->runtime.run();
                s->glib.stop();
            });
            return G_SOURCE_REMOVE;
        },
        &server);
    glib.run_here();
    runtime.stop();  // if the GLib loop ended first
    if (server.thread.joinable()) server.thread.join();
    if (monitor.paintable != nullptr) g_object_unref(monitor.paintable);
    gtk_window_destroy(monitor.window);
    return server.code;
}
