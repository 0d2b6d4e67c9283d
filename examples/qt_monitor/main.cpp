// qt_monitor: a Qt 6 Widgets window that shows the live runtime of the
// process it runs in, while the same process serves the echo protocol on its
// loops (gtk_monitor, on Qt).
//
//     build/examples/qt_monitor/qt_monitor --listen 127.0.0.1:7001
//     printf 'hello\n' | nc -q1 127.0.0.1 7001
//
// Qt runs on the main thread (pollers::QtPoller::run_here()); the loops run
// on their own threads. Once a second a QTimer reads the runtime's
// statistics into the widgets; "Burn" spawns a fiber on the loops that burns
// the chosen CPU time in slices, reporting its progress with qt.invoke().
// Closing the window (or SIGINT) stops the server gracefully.
//
// For tests: --report FILE writes what the window shows (every label, as
// JSON) after each refresh, and --screenshot FILE.png grabs the window.
#include <QApplication>
#include <QCloseEvent>
#include <QFormLayout>
#include <QGridLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QProgressBar>
#include <QPushButton>
#include <QSpinBox>
#include <QTimer>
#include <QVBoxLayout>
#include <QWidget>

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
#include <quiesce/pollers/qt_poller.hpp>

#include "../monitor/monitor.hpp"

namespace {

using namespace quiesce;

// The window; closing it stops the server (the widgets stay until the event
// loop has ended: closures from the loops may still draw in them).
class Window final : public QWidget {
public:
    std::function<void()> on_close;

protected:
    void closeEvent(QCloseEvent* event) override {
        if (on_close) on_close();
        QWidget::closeEvent(event);
    }
};

struct Monitor {
    Runtime* runtime = nullptr;
    pollers::QtPoller* qt = nullptr;
    std::string report_path, screenshot_path, serving;
    monitor::Sampler sampler;
    std::uint64_t burns_done = 0;  // Qt thread only

    Window window;
    monitor::Labels<QLabel> labels;
    std::vector<QProgressBar*> bars;  // a CPU bar per loop
    QSpinBox* burn_ms = nullptr;
    QPushButton* burn = nullptr;
    QProgressBar* progress = nullptr;
};

void set(QLabel* label, const std::string& text) {
    label->setText(QString::fromStdString(text));
}

void write_report(Monitor& m) {
    nlohmann::json out = m.labels.read([](QLabel* label) { return label->text().toStdString(); });
    out["burn"] = {{"status", m.labels.burn_status->text().toStdString()},
                   {"fraction", m.progress->value() / 1000.0},
                   {"done", m.burns_done}};
    const QPoint at = m.burn->mapTo(&m.window, QPoint(0, 0));
    out["burn_button"] = {
        {"x", at.x()}, {"y", at.y()}, {"width", m.burn->width()}, {"height", m.burn->height()}};
    monitor::write_report(m.report_path, out);
}

void refresh(Monitor& m) {
    const monitor::Figures f = m.sampler.next(m.runtime->stats());
    m.labels.show(m.serving + ", " + f.uptime, f, set);
    for (std::size_t i = 0; i < f.loops.size() && i < m.bars.size(); ++i) {
        m.bars[i]->setValue(static_cast<int>(f.loops[i].cpu_percent));
    }
    if (!m.report_path.empty()) write_report(m);
    if (!m.screenshot_path.empty()) {
        const std::string partial = m.screenshot_path + ".part.png";
        if (m.window.grab().save(QString::fromStdString(partial), "PNG")) {
            std::rename(partial.c_str(), m.screenshot_path.c_str());
        } else {
            std::fprintf(stderr, "qt_monitor: cannot write %s\n", partial.c_str());
        }
    }
}

void start_burn(Monitor& m) {
    const int ms = m.burn_ms->value();
    m.progress->setValue(0);
    set(m.labels.burn_status, monitor::burning(0, ms));
    Monitor* w = &m;
    monitor::burn(
        m.runtime->scheduler(), ms,
        [qt = m.qt](std::function<void()> fn) { return qt->invoke(std::move(fn)); },
        [w, ms](int done) {
            w->progress->setValue(done * 1000 / ms);
            set(w->labels.burn_status, monitor::burning(done, ms));
        },
        [w, ms] {
            ++w->burns_done;
            w->progress->setValue(1000);
            set(w->labels.burn_status, monitor::burned(ms, w->burns_done));
        });
}

void build_window(Monitor& m, unsigned loops) {
    m.window.setWindowTitle("quiesce monitor (Qt)");
    m.window.resize(640, 420);
    auto* box = new QVBoxLayout(&m.window);
    m.labels.summary = new QLabel(QString::fromStdString(m.serving));
    box->addWidget(m.labels.summary);

    auto* burn_row = new QHBoxLayout;
    m.burn = new QPushButton("Burn on the loops");
    m.burn_ms = new QSpinBox;
    m.burn_ms->setRange(1, 10000);
    m.burn_ms->setSingleStep(50);
    m.burn_ms->setValue(300);
    m.burn_ms->setSuffix(" ms");
    m.progress = new QProgressBar;
    m.progress->setRange(0, 1000);
    m.progress->setValue(0);
    burn_row->addWidget(m.burn);
    burn_row->addWidget(m.burn_ms);
    burn_row->addWidget(m.progress, 1);
    box->addLayout(burn_row);
    m.labels.burn_status = new QLabel("idle");
    box->addWidget(m.labels.burn_status);
    QObject::connect(m.burn, &QPushButton::clicked, &m.window, [&m] { start_burn(m); });

    auto* form = new QFormLayout;
    const auto value = [&](const char* caption) {
        auto* label = new QLabel("…");
        label->setAlignment(Qt::AlignRight);
        form->addRow(caption, label);
        return label;
    };
    m.labels.connections = value("connections");
    m.labels.events_per_second = value("events/s (all loops)");
    m.labels.groups = value("groups alive");
    m.labels.grace_periods_per_second = value("grace periods/s");
    m.labels.grace_period_latency = value("grace-period latency");
    m.labels.callbacks_pending = value("RCU callbacks pending");
    m.labels.stalls = value("stall reports");
    box->addLayout(form);

    auto* table = new QGridLayout;
    const char* headers[] = {"loop", "CPU", "", "events/s", "queued", "migrations", "running"};
    for (int c = 0; c < 7; ++c) {
        table->addWidget(new QLabel(QString("<b>%1</b>").arg(headers[c])), 0, c);
    }
    for (unsigned i = 0; i < loops; ++i) {
        const int r = static_cast<int>(i) + 1;
        monitor::Labels<QLabel>::Loop row;
        table->addWidget(new QLabel(QString::number(i)), r, 0);
        const auto cell = [&](int column) {
            auto* label = new QLabel("…");
            table->addWidget(label, r, column);
            return label;
        };
        row.cpu = cell(1);
        auto* bar = new QProgressBar;
        bar->setRange(0, 100);
        bar->setTextVisible(false);
        bar->setFixedWidth(120);
        table->addWidget(bar, r, 2);
        m.bars.push_back(bar);
        row.events_per_second = cell(3);
        row.queued = cell(4);
        row.migrations = cell(5);
        row.running = cell(6);
        m.labels.loops.push_back(row);
    }
    box->addLayout(table);
    box->addStretch(1);
    m.window.on_close = [&m] { m.runtime->stop(); };
    m.burn->setDefault(true);
    m.window.show();
}

}  // namespace

int main(int argc, char** argv) {
    CommandLine cli("qt_monitor",
                    "A Qt 6 window showing this process's runtime while it serves echo.",
                    {.listen = {"127.0.0.1:7001"}});
    std::string report_path, screenshot_path;
    cli.app()
        .add_option("--report", report_path,
                    "write what the window shows, as JSON, to this file after each refresh")
        ->capture_default_str();
    cli.app()
        .add_option("--screenshot", screenshot_path,
                    "grab the window to this PNG file after each refresh")
        ->capture_default_str();
    RuntimeOptions options = cli.parse(argc, argv);
    // The runtime first: it blocks the signals it handles in this thread
    // before any thread starts, and Qt's threads inherit that mask (made
    // first, an xcb reader thread would take SIGTERM and die of it).
    Runtime runtime(options);
    int qt_argc = 1;
    char* qt_argv[] = {argv[0], nullptr};
    QApplication app(qt_argc, qt_argv);
    std::string addresses;
    for (const auto& address : options.listen) {
        tcp::Listener& listener = runtime.listen(
            address, [] { return std::make_unique<monitor::Echo>(); }, {.name = "echo"});
        addresses += (addresses.empty() ? "" : ", ") + listener.address().to_string();
    }
    pollers::QtPoller qt({.name = "qt"});
    auto monitor = std::make_unique<Monitor>();
    monitor->runtime = &runtime;
    monitor->qt = &qt;
    monitor->report_path = report_path;
    monitor->screenshot_path = screenshot_path;
    monitor->serving = "serving echo on " + addresses;
    build_window(*monitor, static_cast<unsigned>(runtime.stats().scheduler.loops.size()));
    QTimer timer;
    QObject::connect(&timer, &QTimer::timeout, &monitor->window, [&] { refresh(*monitor); });
    timer.start(1000);

    // The loops and the server's shutdown on a thread of their own, started
    // from inside Qt's loop so that its qt.stop() always finds it running.
    std::thread server;
    int code = 0;
    QTimer::singleShot(0, &monitor->window, [&] {
        server = std::thread([&] {
            code = runtime.run();
            qt.stop();
        });
    });
    (void)qt.run_here();
    runtime.stop();  // if Qt's loop ended first
    if (server.joinable()) server.join();
    return code;
}
