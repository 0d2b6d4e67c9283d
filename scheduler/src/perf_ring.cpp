// The kPerfEvent tick source: opening the task-clock event, mapping its ring,
// and turning the ring's records into ticks and CPU-time anchors.
//
// Why these attributes (measured on this 2-vCPU VM, kernel 6.18):
// - exclude_kernel: the kernel drops a sample whose timer fires while the
//   thread is in a system call (perf_swevent_hrtimer() honours exclude_* on
//   the interrupted registers). A thread spinning on clock_gettime(
//   CLOCK_THREAD_CPUTIME_ID) got 23 ticks in 20 ms of CPU time instead of 160.
//   So we ask for kernel time first and exclude it only where
//   perf_event_paranoid demands it (2 and up without CAP_PERFMON); then a
//   syscall-heavy group overruns its slice by the share of ticks it loses.
// - context_switch + sample_id_all + use_clockid(CLOCK_MONOTONIC): every
//   switch of this thread leaves a timestamped record, so the CPU time between
//   records is wall time while running and nothing while switched out. The
//   page's own self-monitoring time fields (cap_user_time, time_mult/shift)
//   are unusable here: x86 offers them only with the native TSC sched_clock,
//   and this guest uses kvm-clock (cap_user_time = 0 was measured).
// - sample_type TIME | READ: each sample carries the kernel's exact task-clock
//   value, which re-anchors the extrapolation every period.
// - PROT_WRITE mapping: the kernel never overwrites unread records, so every
//   switch record reaches us; we advance data_tail at each drain.
//
// What the event costs besides its ticks: the kernel cancels and restarts
// its hrtimer at every switch of the thread, so a block-and-wake (nanosleep
// of 20 µs) took 24.2 µs of CPU instead of 19.2, and 25.3 with the switch
// records (medians of 7 runs). A loop that sleeps 10,000 times a second pays
// ~6% of a CPU for it; one that is busy does not sleep.
//
// Threading: see perf_ring.hpp; only the owning thread touches the ring.
#include "perf_ring.hpp"

#include <linux/perf_event.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>

#include <quiesce/base/assert.hpp>

namespace quiesce::sched::detail {
namespace {

constexpr std::uint64_t kHeaderBytes = sizeof(perf_event_header);
constexpr std::uint64_t kLargestRecord = 64;
constexpr std::size_t kDataPages = 2;  // 8 KiB: > 300 samples or 500 switches between drains

int open_task_clock(std::uint64_t period_ns, bool exclude_kernel) noexcept {
    perf_event_attr attr{};
    attr.size = sizeof attr;
    attr.type = PERF_TYPE_SOFTWARE;
    attr.config = PERF_COUNT_SW_TASK_CLOCK;
    attr.sample_period = period_ns;
    attr.sample_type = PERF_SAMPLE_TIME | PERF_SAMPLE_READ;
    attr.read_format = 0;
    attr.sample_id_all = 1;
    attr.context_switch = 1;
    attr.use_clockid = 1;
    attr.clockid = CLOCK_MONOTONIC;
    attr.exclude_kernel = exclude_kernel ? 1 : 0;
    attr.exclude_hv = 1;
    // pid 0, cpu -1: this thread, wherever it runs.
    return static_cast<int>(syscall(SYS_perf_event_open, &attr, 0, -1, -1, PERF_FLAG_FD_CLOEXEC));
}

}  // namespace

// Records older than the anchor (those written between opening the event and
// calibrating, or before a resynchronisation) carry nothing newer: skip them.

void TaskClockAnchor::on_sample(std::uint64_t time, std::uint64_t value) noexcept {
    if (time < wall) return;
    cpu = value;
    wall = time;
    running = true;  // the timer fires only while the thread runs
}

void TaskClockAnchor::on_switch(std::uint64_t time, bool out) noexcept {
    if (time < wall) return;
    if (out) {
        if (running) cpu += time - wall;
        running = false;
    } else {
        running = true;
    }
    wall = time;
}

RingReader::RingReader(perf_event_mmap_page* meta, const unsigned char* data,
                       std::uint64_t data_size) noexcept
    : meta_(meta), data_(data), mask_(data_size - 1) {
    QUIESCE_CHECK(data_size >= 4096 && (data_size & (data_size - 1)) == 0,
                  "perf data area must be a power of two of at least a page");
    // relaxed: nothing written by the kernel is read on the strength of it.
    tail_ = std::atomic_ref<__u64>(meta_->data_tail).load(std::memory_order_relaxed);
}

const TickWord* RingReader::head_address() const noexcept {
    return reinterpret_cast<const TickWord*>(&meta_->data_head);
}

std::uint64_t RingReader::head() const noexcept {
    // [PR1] acquire, pairs with the kernel's smp_wmb() (B) in
    // perf_output_put_handle() before it publishes data_head: the records
    // below head are complete before we read them (the ABI's smp_rmb()).
    return std::atomic_ref<__u64>(meta_->data_head).load(std::memory_order_acquire);
}

std::uint64_t RingReader::word_at(std::uint64_t pos) const noexcept {
    // Records are 8-byte aligned and sized, the area a power of two: a word
    // never straddles the wrap.
    std::uint64_t word;
    std::memcpy(&word, data_ + (pos & mask_), sizeof word);
    return word;
}

RingDrain RingReader::drain(TaskClockAnchor& anchor) noexcept {
    RingDrain seen;
    const std::uint64_t head = this->head();  // [PR1]
    // No room for one more record of the largest kind we may get (THROTTLE,
    // 40 bytes): the kernel may be dropping.
    seen.full = head - tail_ + kLargestRecord > mask_ + 1;
    std::uint64_t pos = tail_;
    while (pos < head) {
        perf_event_header header;
        std::memcpy(&header, data_ + (pos & mask_), sizeof header);
        if (header.size < kHeaderBytes || (header.size & 7) != 0 || head - pos < header.size) {
            // Cannot happen with a sane kernel; resynchronise rather than spin.
            ++seen.lost;
            pos = head;
            break;
        }
        switch (header.type) {
            case PERF_RECORD_SAMPLE:
                if (header.size >= kHeaderBytes + 16) {
                    anchor.on_sample(word_at(pos + 8), word_at(pos + 16));
                    ++seen.samples;
                }
                break;
            case PERF_RECORD_SWITCH:
                if (header.size >= kHeaderBytes + 8) {
                    anchor.on_switch(word_at(pos + 8),
                                     (header.misc & PERF_RECORD_MISC_SWITCH_OUT) != 0);
                    ++seen.switches;
                }
                break;
            case PERF_RECORD_LOST:
                seen.lost += header.size >= kHeaderBytes + 16 ? word_at(pos + 16) : 1;
                break;
            default:  // THROTTLE, UNTHROTTLE: nothing to learn
                break;
        }
        pos += header.size;
    }
    tail_ = pos;
    // [PR2] release, pairs with the kernel's (A) in perf_output_begin() (its
    // read of data_tail, control-dependent before it overwrites space): our
    // reads of these records happen before the kernel reuses their space.
    // The ABI asks for smp_mb(); release is what it needs (tools/ uses
    // smp_store_release() for data_tail too), and is a plain store on x86.
    std::atomic_ref<__u64>(meta_->data_tail).store(pos, std::memory_order_release);
    return seen;
}

PerfTaskClock::Mapping PerfTaskClock::open_and_map(std::uint64_t period_ns, KernelTicks kernel) {
    bool counts_kernel = kernel != KernelTicks::kExcluded;
    int fd = open_task_clock(period_ns, /*exclude_kernel=*/!counts_kernel);
    if (fd < 0 && counts_kernel && (errno == EACCES || errno == EPERM)) {
        if (kernel == KernelTicks::kRequired) {
            throw std::system_error(errno, std::generic_category(),
                                    "perf_event_open counting kernel time");
        }
        counts_kernel = false;
        fd = open_task_clock(period_ns, /*exclude_kernel=*/true);
    }
    if (fd < 0) throw std::system_error(errno, std::generic_category(), "perf_event_open");

    const auto page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
    int error = 0;
    // The ring counts against perf_event_mlock_kb (then RLIMIT_MEMLOCK) per
    // user; with many loops, fall back to one data page.
    for (std::size_t pages = kDataPages; pages >= 1; pages /= 2) {
        const std::size_t length = (1 + pages) * page;
        void* base = mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (base != MAP_FAILED) return Mapping{fd, base, length, counts_kernel};
        error = errno;
        if (error != EPERM && error != ENOMEM) break;
    }
    close(fd);
    throw std::system_error(error, std::generic_category(), "mmap of the perf ring");
}

namespace {

RingReader make_reader(void* base, std::size_t length) noexcept {
    auto* meta = static_cast<perf_event_mmap_page*>(base);
    const auto page = static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE));
    // data_offset/data_size exist since Linux 4.1; before, data follows the page.
    const std::uint64_t offset = meta->data_offset != 0 ? meta->data_offset : page;
    const std::uint64_t size = meta->data_size != 0 ? meta->data_size : length - page;
    return RingReader(meta, static_cast<const unsigned char*>(base) + offset, size);
}

}  // namespace

PerfTaskClock::PerfTaskClock(std::uint64_t period_ns, KernelTicks kernel)
    : PerfTaskClock(open_and_map(period_ns, kernel)) {}

PerfTaskClock::PerfTaskClock(const Mapping& mapping) noexcept
    : fd_(mapping.fd),
      base_(mapping.base),
      length_(mapping.length),
      counts_kernel_(mapping.counts_kernel),
      ring_(make_reader(mapping.base, mapping.length)) {}

PerfTaskClock::~PerfTaskClock() {
    munmap(base_, length_);
    close(fd_);
}

std::uint64_t PerfTaskClock::read_count() const noexcept {
    std::uint64_t count = 0;
    // read_format 0: one u64, the task-clock ns since the event was opened.
    QUIESCE_CHECK(read(fd_, &count, sizeof count) == static_cast<ssize_t>(sizeof count),
                  "read of the perf task clock failed");
    return count;
}

bool PerfTaskClock::set_period(std::uint64_t period_ns) noexcept {
    // The kernel stops the event's hrtimer and restarts it with the new
    // period (__perf_event_period()), on this thread's CPU: no IPI.
    __u64 period = period_ns;
    return ioctl(fd_, PERF_EVENT_IOC_PERIOD, &period) == 0;
}

}  // namespace quiesce::sched::detail
