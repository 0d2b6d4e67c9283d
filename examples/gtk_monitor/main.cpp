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

#include <cstdio>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>
#include <quiesce/framework/command_line.hpp>
#include <quiesce/framework/runtime.hpp>
#include <quiesce/pollers/glib_poller.hpp>

#include "../monitor/monitor.hpp"

namespace {

using namespace quiesce;

struct Monitor {
    Runtime* runtime = nullptr;
    pollers::GlibPoller* glib = nullptr;
    std::string report_path;
    std::string screenshot_path;
    std::string serving;

    GtkWindow* window = nullptr;
    monitor::Labels<GtkLabel> labels;
    std::vector<GtkLevelBar*> bars;  // a CPU bar per loop
    GtkSpinButton* burn_ms = nullptr;
    GtkButton* burn = nullptr;
    GtkProgressBar* progress = nullptr;
    GdkPaintable* paintable = nullptr;  // for --screenshot

    monitor::Sampler sampler;
    std::uint64_t burns_done = 0;  // GLib thread only
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
    nlohmann::json out =
        m.labels.read([](GtkLabel* label) { return std::string(gtk_label_get_text(label)); });
    out["burn"] = {{"status", gtk_label_get_text(m.labels.burn_status)},
                   {"fraction", gtk_progress_bar_get_fraction(m.progress)},
                   {"done", m.burns_done}};
    // Where the burn button is, in window coordinates (for a test's click).
    graphene_rect_t bounds;
    if (gtk_widget_compute_bounds(GTK_WIDGET(m.burn), GTK_WIDGET(m.window), &bounds)) {
        out["burn_button"] = {{"x", bounds.origin.x},
                              {"y", bounds.origin.y},
                              {"width", bounds.size.width},
                              {"height", bounds.size.height}};
    }
    monitor::write_report(m.report_path, out);
}

// Once a second, on the GLib thread: the runtime's figures into the labels.
gboolean refresh(gpointer data) {
    Monitor& m = *static_cast<Monitor*>(data);
    const monitor::Figures f = m.sampler.next(m.runtime->stats());
    m.labels.show(m.serving + ", " + f.uptime, f, set);
    for (std::size_t i = 0; i < f.loops.size() && i < m.bars.size(); ++i) {
        gtk_level_bar_set_value(m.bars[i], f.loops[i].cpu_percent);
    }
    if (!m.report_path.empty()) write_report(m);
    if (!m.screenshot_path.empty()) save_screenshot(m);
    return G_SOURCE_CONTINUE;
}

// The burn button: a fiber on the loops (monitor::burn) that tells the
// window how far it got through glib.invoke().
void start_burn(Monitor& m) {
    const int ms = gtk_spin_button_get_value_as_int(m.burn_ms);
    gtk_progress_bar_set_fraction(m.progress, 0);
    set(m.labels.burn_status, monitor::burning(0, ms));
    Monitor* w = &m;
    monitor::burn(
        m.runtime->scheduler(), ms,
        [glib = m.glib](std::function<void()> fn) { return glib->invoke(std::move(fn)); },
        [w, ms](int done) {
            gtk_progress_bar_set_fraction(w->progress, static_cast<double>(done) / ms);
            set(w->labels.burn_status, monitor::burning(done, ms));
        },
        [w, ms] {
            ++w->burns_done;
            gtk_progress_bar_set_fraction(w->progress, 1.0);
            set(w->labels.burn_status, monitor::burned(ms, w->burns_done));
        });
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

    m.labels.summary = GTK_LABEL(gtk_label_new(m.serving.c_str()));
    gtk_label_set_xalign(m.labels.summary, 0);
    gtk_box_append(GTK_BOX(box), GTK_WIDGET(m.labels.summary));

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
    m.labels.burn_status = GTK_LABEL(gtk_label_new("idle"));
    gtk_label_set_xalign(m.labels.burn_status, 0);
    gtk_box_append(GTK_BOX(box), GTK_WIDGET(m.labels.burn_status));
    g_signal_connect(m.burn, "clicked", G_CALLBACK(+[](GtkButton*, gpointer data) {
                         start_burn(*static_cast<Monitor*>(data));
                     }),
                     &m);

    GtkGrid* grid = GTK_GRID(gtk_grid_new());
    gtk_grid_set_column_spacing(grid, 24);
    gtk_grid_set_row_spacing(grid, 4);
    m.labels.connections = value_label(grid, 0, "connections");
    m.labels.events_per_second = value_label(grid, 1, "events/s (all loops)");
    m.labels.groups = value_label(grid, 2, "groups alive");
    m.labels.grace_periods_per_second = value_label(grid, 3, "grace periods/s");
    m.labels.grace_period_latency = value_label(grid, 4, "grace-period latency");
    m.labels.callbacks_pending = value_label(grid, 5, "RCU callbacks pending");
    m.labels.stalls = value_label(grid, 6, "stall reports");
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
        monitor::Labels<GtkLabel>::Loop row;
        const int r = static_cast<int>(i) + 1;
        gtk_grid_attach(table, gtk_label_new(std::to_string(i).c_str()), 0, r, 1, 1);
        const auto cell = [&](int column) {
            GtkWidget* label = gtk_label_new("…");
            gtk_grid_attach(table, label, column, r, 1, 1);
            return GTK_LABEL(label);
        };
        row.cpu = cell(1);
        GtkLevelBar* bar = GTK_LEVEL_BAR(gtk_level_bar_new_for_interval(0, 100));
        gtk_widget_set_size_request(GTK_WIDGET(bar), 120, -1);
        gtk_widget_set_valign(GTK_WIDGET(bar), GTK_ALIGN_CENTER);
        gtk_grid_attach(table, GTK_WIDGET(bar), 2, r, 1, 1);
        m.bars.push_back(bar);
        row.events_per_second = cell(3);
        row.queued = cell(4);
        row.migrations = cell(5);
        row.running = cell(6);
        m.labels.loops.push_back(row);
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
    // The runtime first: it blocks the signals it handles in this thread
    // before any thread starts, and GTK's threads inherit that mask.
    Runtime runtime(options);
    if (!gtk_init_check()) {
        std::fprintf(stderr, "gtk_monitor: cannot open a display (is DISPLAY set?)\n");
        return 1;
    }
    std::string addresses;
    for (const auto& address : options.listen) {
        tcp::Listener& listener = runtime.listen(
            address, [] { return std::make_unique<monitor::Echo>(); }, {.name = "echo"});
        addresses += (addresses.empty() ? "" : ", ") + listener.address().to_string();
    }
    pollers::GlibPoller glib({.name = "gtk", .context = g_main_context_default()});
    monitor.runtime = &runtime;
    monitor.glib = &glib;
    monitor.serving = "serving echo on " + addresses;
    build_window(monitor, static_cast<unsigned>(runtime.stats().scheduler.loops.size()));
    g_timeout_add_seconds(1, &refresh, &monitor);

    // The loops and the server's shutdown on a thread of their own, started
    // from inside the GLib loop (so that its glib.stop() always finds the
    // loop running); GTK keeps the main thread. Whichever way the server
    // stops (the window, SIGINT, SIGTERM), the GLib loop ends after it.
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
