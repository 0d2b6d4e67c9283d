// The kPerfEvent tick source: a software perf event counting this thread's
// CPU time (PERF_COUNT_SW_TASK_CLOCK) that writes a sample record into an
// mmapped ring every period of that CPU time, plus a record at every context
// switch of the thread. The ring's data_head is need_resched()'s counter; the
// records' timestamps and task-clock values let cpu_now_ns() extrapolate this
// thread's CPU time from CLOCK_MONOTONIC with no system call.
//
// Record layout, fixed by the attributes perf_ring.cpp asks for
// (sample_type = TIME | READ, read_format = 0, sample_id_all = 1 with
// use_clockid = CLOCK_MONOTONIC):
//
//     PERF_RECORD_SAMPLE  header, u64 time, u64 task-clock value  (24 bytes)
//     PERF_RECORD_SWITCH  header, u64 time (sample_id)            (16 bytes)
//     PERF_RECORD_LOST    header, u64 id, u64 lost, u64 time      (32 bytes)
//     anything else (THROTTLE, UNTHROTTLE): skipped by its size
//
// Threading: one thread owns a ring and is the only one that reads it or
// writes data_tail; the kernel writes the records and data_head. Ordering
// with the kernel follows the contract in <linux/perf_event.h>, labels
// [PR1] and [PR2] below.
#pragma once

#include <linux/perf_event.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

#include <quiesce/scheduler/need_resched.hpp>

namespace quiesce::sched::detail {

/// This thread's task-clock reading at a known CLOCK_MONOTONIC instant. While
/// the thread runs its task clock advances with wall time, so
/// at(now) = cpu + (now - wall); while it is switched out, not at all.
struct TaskClockAnchor {
    std::uint64_t cpu = 0;   ///< task-clock ns at `wall`
    std::uint64_t wall = 0;  ///< CLOCK_MONOTONIC ns
    bool running = true;     ///< false after a switch-out record

    [[nodiscard]] std::uint64_t at(std::uint64_t wall_now) const noexcept {
        return running && wall_now > wall ? cpu + (wall_now - wall) : cpu;
    }
    /// A sample: the kernel's own task-clock value at `time`.
    void on_sample(std::uint64_t time, std::uint64_t value) noexcept;
    /// A context switch of this thread at `time`.
    void on_switch(std::uint64_t time, bool out) noexcept;
};

/// What one drain saw since the previous one.
struct RingDrain {
    std::uint64_t samples = 0;   ///< PERF_RECORD_SAMPLE records
    std::uint64_t switches = 0;  ///< PERF_RECORD_SWITCH records
    std::uint64_t lost = 0;      ///< records the kernel dropped (ring full)
    /// The ring was (nearly) full: the kernel may have dropped records whose
    /// PERF_RECORD_LOST it writes only once there is room again.
    bool full = false;
};

/// Reader of a perf ring: a perf_event_mmap_page followed by a power-of-two
/// data area. Does not own the memory (tests hand it an ordinary buffer).
class RingReader {
public:
    RingReader(perf_event_mmap_page* meta, const unsigned char* data,
               std::uint64_t data_size) noexcept;

    /// need_resched()'s counter: bytes the kernel has ever written.
    [[nodiscard]] const TickWord* head_address() const noexcept;
    /// data_head; acquire ([PR1]).
    [[nodiscard]] std::uint64_t head() const noexcept;
    /// Everything before this position has been applied and freed.
    [[nodiscard]] std::uint64_t tail() const noexcept { return tail_; }

    /// Applies every record in [tail(), head()) to `anchor` in order, then
    /// frees them (data_tail = head). Cost: a few loads per record.
    RingDrain drain(TaskClockAnchor& anchor) noexcept;

private:
    [[nodiscard]] std::uint64_t word_at(std::uint64_t pos) const noexcept;

    perf_event_mmap_page* meta_;
    const unsigned char* data_;
    std::uint64_t mask_;      ///< data_size - 1
    std::uint64_t tail_ = 0;  ///< owner-only copy of data_tail
};

/// The perf event and its mapping, opened on (and for) the calling thread.
/// Whether the task-clock event may leave out kernel time (exclude_kernel).
/// Where perf_event_paranoid >= 2 and the process lacks CAP_PERFMON, the
/// kernel allows only that, and then the ticks that land in a system call are
/// dropped: a syscall-heavy group overruns its slice (see slice_clock.hpp).
enum class KernelTicks {
    kRequired,   ///< count kernel time or fail with EACCES (kAuto)
    kPreferred,  ///< count kernel time where allowed, else user time only
    kExcluded,   ///< user time only, as paranoid 2 forces (tests, measurements)
};

class PerfTaskClock {
public:
    /// Opens the event with a sample every `period_ns` of this thread's CPU
    /// time and maps 1 + 2 pages (1 + 1 if the mlock allowance is short).
    /// Throws std::system_error when perf_event_open() or mmap() refuses.
    explicit PerfTaskClock(std::uint64_t period_ns, KernelTicks kernel = KernelTicks::kPreferred);
    ~PerfTaskClock();
    PerfTaskClock(const PerfTaskClock&) = delete;
    PerfTaskClock(PerfTaskClock&&) = delete;
    PerfTaskClock& operator=(const PerfTaskClock&) = delete;

    [[nodiscard]] RingReader& ring() noexcept { return ring_; }
    /// The task-clock count now, by read(2): ~1.5 µs. For resynchronising
    /// after lost records and for calibration, never per event.
    [[nodiscard]] std::uint64_t read_count() const noexcept;
    /// Changes the sampling period (PERF_EVENT_IOC_PERIOD, one system call):
    /// the next sample comes a whole new period of CPU time from now. False
    /// if the kernel refused (the old period then stays).
    [[nodiscard]] bool set_period(std::uint64_t period_ns) noexcept;
    /// False when perf_event_paranoid made us exclude the kernel: ticks that
    /// land in a system call are then dropped (see perf_ring.cpp).
    [[nodiscard]] bool counts_kernel() const noexcept { return counts_kernel_; }
    [[nodiscard]] std::size_t mapped_bytes() const noexcept { return length_; }

private:
    struct Mapping {
        int fd;
        void* base;
        std::size_t length;
        bool counts_kernel;
    };
    static Mapping open_and_map(std::uint64_t period_ns, KernelTicks kernel);
    explicit PerfTaskClock(const Mapping& mapping) noexcept;

    int fd_;
    void* base_;
    std::size_t length_;
    bool counts_kernel_;
    RingReader ring_;
};

}  // namespace quiesce::sched::detail
