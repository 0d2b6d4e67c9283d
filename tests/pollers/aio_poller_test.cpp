// AioPoller, with io_uring and with the thread-pool fallback (forced by the
// option): reads return the right bytes at random offsets, writes and fsync
// land, end of file and bad descriptors come back as results, fibers and
// stackless groups both, a full queue refuses or waits and loses nothing,
// stop() finishes what is in flight.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <unistd.h>
#include <memory>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <quiesce/pollers/aio_poller.hpp>
#include <quiesce/scheduler/fiber.hpp>
#include <quiesce/scheduler/scheduler.hpp>

#include "wait.hpp"

using namespace quiesce;
using namespace std::chrono_literals;
using quiesce::test::wait_until;

namespace {

// A temporary file of `size` bytes where byte i is (i * 7 + i / 251) % 256.
struct TempFile {
    int fd = -1;
    std::string path;
    explicit TempFile(std::size_t size) {
        char name[] = "/tmp/quiesce-aio-XXXXXX";
        fd = mkstemp(name);
        REQUIRE(fd >= 0);
        path = name;
        std::vector<unsigned char> data(size);
        for (std::size_t i = 0; i < size; ++i) data[i] = expected(i);
        REQUIRE(write(fd, data.data(), size) == static_cast<ssize_t>(size));
    }
    ~TempFile() {
        close(fd);
        unlink(path.c_str());
    }
    static unsigned char expected(std::size_t i) {
        return static_cast<unsigned char>((i * 7 + i / 251) % 256);
    }
};

bool matches(const unsigned char* buf, std::size_t len, std::size_t offset) {
    for (std::size_t i = 0; i < len; ++i) {
        if (buf[i] != TempFile::expected(offset + i)) return false;
    }
    return true;
}

// Every case runs on io_uring with a reaper thread, on the pread fallback,
// and on a ring per loop.
enum class Variant { kUring, kThreads, kLoops };

Variant variant_under_test() {
    const Variant variant = GENERATE(Variant::kUring, Variant::kThreads, Variant::kLoops);
    return variant;
}

const char* name_of(Variant v) {
    return v == Variant::kUring ? "uring" : v == Variant::kThreads ? "threads" : "loops";
}

std::unique_ptr<pollers::AioPoller> make_aio(sched::Scheduler& scheduler, Variant variant,
                                             pollers::AioPollerOptions options = {}) {
    options.use_io_uring = variant != Variant::kThreads;
    if (variant == Variant::kLoops) {
        options.placement = pollers::AioPlacement::kLoops;
        return std::make_unique<pollers::AioPoller>(scheduler, options);
    }
    return std::make_unique<pollers::AioPoller>(options);
}

}  // namespace

TEST_CASE("fiber reads at random offsets return the file's bytes", "[pollers][unit]") {
    const Variant variant = variant_under_test();
    CAPTURE(name_of(variant));
    TempFile file(1 << 20);
    sched::Scheduler scheduler({.threads = 2});
    auto owned = make_aio(scheduler, variant);
    pollers::AioPoller& aio = *owned;
    aio.start();
    if (variant != Variant::kThreads && aio.backend() != pollers::AioBackend::kIoUring) {
        WARN("io_uring refused here: the io_uring case ran on the fallback");
    }
    if (variant == Variant::kThreads) CHECK(aio.backend() == pollers::AioBackend::kThreads);
    std::atomic<int> good{0}, bad{0}, done{0};
    for (int f = 0; f < 8; ++f) {
        scheduler.spawn([&, f] {
            std::mt19937 rng(static_cast<unsigned>(f));
            unsigned char buf[4096];
            for (int i = 0; i < 100; ++i) {
                const std::size_t offset = rng() % ((1 << 20) - sizeof buf);
                pollers::AioResult r =
                    aio.read_at(file.fd, buf, sizeof buf, static_cast<off_t>(offset));
                (r.bytes == sizeof buf && !r.error && matches(buf, sizeof buf, offset) ? good
                                                                                       : bad)++;
            }
            done++;
        });
    }
    REQUIRE(wait_until([&] { return done.load() == 8; }, 60s));
    CHECK(good.load() == 800);
    CHECK(bad.load() == 0);
    CHECK(aio.stats().completed == 800);
}

TEST_CASE("stackless completions run on the group; EOF, short reads and bad fds are results",
          "[pollers][unit]") {
    const Variant variant = variant_under_test();
    CAPTURE(name_of(variant));
    TempFile file(10000);
    sched::Scheduler scheduler({.threads = 1});
    auto owned = make_aio(scheduler, variant);
    pollers::AioPoller& aio = *owned;
    aio.start();
    sched::Group group = scheduler.make_group();
    static unsigned char buf[3][4096];
    std::atomic<int> finished{0};
    std::atomic<long> full{-1}, shortened{-1}, eof{-1};
    std::atomic<int> badfd_error{0};
    std::atomic<bool> on_group{true};
    auto check_group = [&] {
        if (!(sched::Group::current() == group)) on_group = false;
    };
    aio.read_at(group, file.fd, buf[0], 4096, 0, [&](pollers::AioResult r) {
        check_group();
        full = r.error ? -2 : static_cast<long>(r.bytes) * (matches(buf[0], 4096, 0) ? 1 : -1);
        finished++;
    });
    aio.read_at(group, file.fd, buf[1], 4096, 8000, [&](pollers::AioResult r) {
        check_group();
        shortened =
            r.error ? -2 : static_cast<long>(r.bytes) * (matches(buf[1], r.bytes, 8000) ? 1 : -1);
        finished++;
    });
    aio.read_at(group, file.fd, buf[2], 4096, 20000, [&](pollers::AioResult r) {
        check_group();
        eof = r.error ? -2 : static_cast<long>(r.bytes);
        finished++;
    });
    aio.read_at(group, 987654, buf[2], 16, 0, [&](pollers::AioResult r) {
        check_group();
        badfd_error = r.error.value();
        finished++;
    });
    REQUIRE(wait_until([&] { return finished.load() == 4; }));
    CHECK(full.load() == 4096);
    CHECK(shortened.load() == 2000);  // a short read at the end
    CHECK(eof.load() == 0);           // at end of file
    CHECK(badfd_error.load() == EBADF);
    CHECK(on_group.load());
}

TEST_CASE("writes and fsync land, from a fiber", "[pollers][unit]") {
    const Variant variant = variant_under_test();
    CAPTURE(name_of(variant));
    TempFile file(0);
    sched::Scheduler scheduler({.threads = 1});
    auto owned = make_aio(scheduler, variant);
    pollers::AioPoller& aio = *owned;
    aio.start();
    std::atomic<bool> ok{false}, finished{false};
    scheduler.spawn([&] {
        std::string text = "hello, quiesce";
        pollers::AioResult w = aio.write_at(file.fd, text.data(), text.size(), 100);
        pollers::AioResult s = aio.fsync(file.fd);
        char back[64] = {};
        pollers::AioResult r = aio.read_at(file.fd, back, sizeof back, 100);
        ok = !w.error && w.bytes == text.size() && !s.error && !r.error && r.bytes == text.size() &&
             std::memcmp(back, text.data(), text.size()) == 0;
        pollers::AioResult bad = aio.write_at(-1, text.data(), 1, 0);
        ok = ok && bad.error == std::errc::bad_file_descriptor;
        finished = true;
    });
    REQUIRE(wait_until([&] { return finished.load(); }));
    CHECK(ok.load());
}

TEST_CASE("a full queue refuses stackless requests and makes fibers wait; nothing is lost",
          "[pollers][unit]") {
    const Variant variant = variant_under_test();
    CAPTURE(name_of(variant));
    TempFile file(1 << 16);
    sched::Scheduler scheduler({.threads = 2});
    auto owned = make_aio(scheduler, variant, {.queue_depth = 2, .fallback_threads = 1});
    pollers::AioPoller& aio = *owned;
    aio.start();
    sched::Group group = scheduler.make_group();
    constexpr int kRequests = 300;
    static unsigned char buf[kRequests][512];
    std::atomic<int> ok{0}, again{0}, other{0};
    for (int i = 0; i < kRequests; ++i) {
        aio.read_at(group, file.fd, buf[i], 512, 512 * (i % 100), [&, i](pollers::AioResult r) {
            if (!r.error && r.bytes == 512 && matches(buf[i], 512, 512 * (i % 100))) {
                ok++;
            } else if (r.error == std::errc::resource_unavailable_try_again) {
                again++;
            } else {
                other++;
            }
        });
    }
    REQUIRE(wait_until([&] { return ok.load() + again.load() + other.load() == kRequests; }));
    CHECK(other.load() == 0);
    CHECK(static_cast<std::uint64_t>(again.load()) == aio.stats().refused);
    // Fibers wait for room instead.
    std::atomic<int> fiber_ok{0}, fibers_done{0};
    for (int f = 0; f < 10; ++f) {
        scheduler.spawn([&] {
            unsigned char local[512];
            for (int i = 0; i < 20; ++i) {
                pollers::AioResult r = aio.read_at(file.fd, local, sizeof local, 512 * i);
                if (!r.error && r.bytes == 512 && matches(local, 512, 512 * i)) fiber_ok++;
            }
            fibers_done++;
        });
    }
    REQUIRE(wait_until([&] { return fibers_done.load() == 10; }, 60s));
    CHECK(fiber_ok.load() == 200);
    CHECK(aio.stats().in_flight == 0);
}

TEST_CASE("stop() finishes what is in flight; later requests are cancelled", "[pollers][unit]") {
    const Variant variant = variant_under_test();
    CAPTURE(name_of(variant));
    TempFile file(1 << 16);
    sched::Scheduler scheduler({.threads = 1});
    auto owned = make_aio(scheduler, variant);
    pollers::AioPoller& aio = *owned;
    aio.start();
    sched::Group group = scheduler.make_group();
    static unsigned char buf[64][1024];
    std::atomic<int> completions{0}, cancelled{0};
    for (int i = 0; i < 64; ++i) {
        aio.read_at(group, file.fd, buf[i], 1024, 1024 * i, [&](pollers::AioResult r) {
            if (r.error == std::errc::operation_canceled) cancelled++;
            completions++;  // last: the test reads `cancelled` once it sees this
        });
    }
    aio.stop();
    CHECK(aio.stats().in_flight == 0);
    aio.read_at(group, file.fd, buf[0], 1024, 0, [&](pollers::AioResult r) {
        if (r.error == std::errc::operation_canceled) cancelled++;
        completions++;
    });
    REQUIRE(wait_until([&] { return completions.load() == 65; }));
    CHECK(cancelled.load() == 1);
}
