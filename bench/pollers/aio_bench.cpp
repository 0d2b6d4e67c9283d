// 4 KiB random reads from a file in the page cache: quiesce's AioPoller
// (io_uring, and the pread fallback) with fibers on `threads` loops, against
// `threads` plain threads calling pread().
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <quiesce/pollers/aio_poller.hpp>
#include <quiesce/scheduler/fiber.hpp>
#include <quiesce/scheduler/scheduler.hpp>

#include "pollers_bench.hpp"

namespace quiesce::bench {
namespace {

constexpr std::size_t kFileBytes = 64 << 20;
constexpr std::size_t kRead = 4096;

// A 64 MiB file read once, so that its pages are cached; unlinked at once.
int cached_file() {
    char name[] = "/tmp/quiesce-aio-bench-XXXXXX";
    const int fd = mkstemp(name);
    if (fd < 0) throw std::runtime_error("mkstemp");
    unlink(name);
    std::vector<char> chunk(1 << 20, 'q');
    for (std::size_t done = 0; done < kFileBytes; done += chunk.size()) {
        if (write(fd, chunk.data(), chunk.size()) != static_cast<ssize_t>(chunk.size()))
            throw std::runtime_error("write");
    }
    for (std::size_t off = 0; off < kFileBytes; off += chunk.size()) {
        if (pread(fd, chunk.data(), chunk.size(), static_cast<off_t>(off)) <= 0)
            throw std::runtime_error("pread");
    }
    return fd;
}

off_t random_offset(std::mt19937_64& rng) {
    return static_cast<off_t>((rng() % (kFileBytes / kRead)) * kRead);
}

}  // namespace

double ours_aio_reads(AioShape shape, bool cached_reads, unsigned threads,
                      std::chrono::milliseconds run) {
    const int fd = cached_file();
    sched::Scheduler scheduler({.threads = threads, .slice = slice_from_env()});
    const pollers::AioPollerOptions options{.queue_depth = 256,
                                            .use_io_uring = shape != AioShape::kPool,
                                            .fallback_threads = threads,
                                            .placement = shape == AioShape::kLoops
                                                             ? pollers::AioPlacement::kLoops
                                                             : pollers::AioPlacement::kThread,
                                            .cached_reads = cached_reads};
    pollers::AioPoller aio(scheduler, options);
    aio.start();
    std::atomic<bool> stop{false};
    std::atomic<std::uint64_t> reads{0};
    std::atomic<unsigned> done{0};
    constexpr unsigned kFibers = 32;
    const auto t0 = Clock::now();
    for (unsigned f = 0; f < kFibers; ++f) {
        scheduler.spawn([&, f] {
            std::mt19937_64 rng(f);
            alignas(64) char buf[kRead];
            std::uint64_t mine = 0;
            while (!stop.load(std::memory_order_relaxed)) {
                if (aio.read_at(fd, buf, kRead, random_offset(rng)).bytes == kRead) ++mine;
            }
            reads += mine;
            ++done;
        });
    }
    std::this_thread::sleep_for(run);
    stop = true;
    while (done.load() < kFibers) std::this_thread::yield();
    const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    aio.stop();
    close(fd);
    return static_cast<double>(reads.load()) / secs;
}

double pread_reads(unsigned threads, std::chrono::milliseconds run) {
    const int fd = cached_file();
    std::atomic<bool> stop{false};
    std::atomic<std::uint64_t> reads{0};
    std::vector<std::thread> workers;
    const auto t0 = Clock::now();
    for (unsigned t = 0; t < threads; ++t) {
        workers.emplace_back([&, t] {
            pin_this_thread(static_cast<int>(t % std::thread::hardware_concurrency()));
            std::mt19937_64 rng(t);
            alignas(64) char buf[kRead];
            std::uint64_t mine = 0;
            while (!stop.load(std::memory_order_relaxed)) {
                if (pread(fd, buf, kRead, random_offset(rng)) == static_cast<ssize_t>(kRead))
                    ++mine;
            }
            reads += mine;
        });
    }
    std::this_thread::sleep_for(run);
    stop = true;
    for (auto& w : workers) w.join();
    const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    close(fd);
    return static_cast<double>(reads.load()) / secs;
}

}  // namespace quiesce::bench
