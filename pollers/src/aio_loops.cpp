// AioPlacement::kLoops: an io_uring ring per loop. A request made on a loop
// (a fiber, or an event) is prepared in that loop's ring and submitted with
// the others of its batch when the loop next polls its reactor (once it has
// no group left to run, or once per poll interval while busy): one
// io_uring_enter() for the batch. What the kernel finishes inside that call
// (a cached page) is reaped right after it on the same loop; what it finishes
// later is reaped at the loop's next poll, or, while the loop sleeps, when the
// ring's eventfd wakes the loop's reactor. No thread hop. (The eventfd stays
// on while the loop is busy: switching it off then, with
// io_uring_cq_eventfd_toggle(), races the kernel, which reads the flag after
// publishing a completion with no full barrier between: a completion could be
// published unsignalled just as the loop re-enables it and goes to sleep.)
// Requests made off the loops go to a shared ring with a reaper thread
// (kThread).
//
// Threading: a ring, both sides, is used under its mutex: by its loop (which
// alone prepares requests in it) and by stop() once the loops may be gone.
// [AIO1] as in aio_uring.cpp.
#include <event2/event.h>
#include <liburing.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

#include <quiesce/scheduler/scheduler.hpp>

#include "aio_backend.hpp"
#include "aio_ring.hpp"
#include "log.hpp"
#include "reactor.hpp"

namespace quiesce::pollers::detail {
namespace {

class LoopsBackend;

struct LoopRing final : ReactorSource {
    LoopsBackend* owner = nullptr;
    io_uring ring{};
    bool ring_ready = false;
    int event_fd = -1;
    event* ready_event = nullptr;  // in the loop's reactor base
    std::shared_ptr<Reactor> reactor;
    bool in_reactor = false;
    std::mutex mutex;  // the ring, both sides

    bool flush() noexcept override;
};

class LoopsBackend final : public AioBackendImpl {
public:
    LoopsBackend(Poller& owner, sched::Scheduler& scheduler, const AioPollerOptions& options)
        : AioBackendImpl(options.queue_depth), scheduler_(scheduler) {
        try {
            for (unsigned i = 0; i < scheduler.loop_count(); ++i) add_ring(i, options);
            fallback_ = make_uring_backend(owner, options);  // for requests made off the loops
        } catch (...) {
            release();  // the reactors must not keep our events
            throw;
        }
    }

    ~LoopsBackend() override {
        stop();
        release();
    }

    AioBackend kind() const noexcept override { return AioBackend::kIoUring; }

    void start() override {
        admission.open();
        fallback_->start();
    }

    void stop() noexcept override {
        admission.close();
        fallback_->stop();
        // The loops submit and reap what is in flight; if they do not run
        // any more, do it here (a ring is ours under its mutex).
        while (admission.in_flight() != 0) {
            for (auto& ring : rings_) {
                std::lock_guard lock(ring->mutex);
                submit_and_reap(*ring);
            }
            if (admission.in_flight() != 0) std::this_thread::yield();
        }
    }

    bool submit(std::unique_ptr<AioRequest>& request, bool wait) override {
        const int loop = sched::Scheduler::current_loop();
        if (loop < 0 || sched::Scheduler::current() != &scheduler_) {
            return fallback_->submit(request, wait);
        }
        if (!admission.acquire(wait)) {
            refused.add();
            return false;
        }
        submitted.add();
        // After acquire() (which may have parked and moved the fiber), the
        // loop we run on now.
        LoopRing& ring = *rings_[static_cast<unsigned>(sched::Scheduler::current_loop())];
        AioRequest* raw = request.release();
        std::lock_guard lock(ring.mutex);
        io_uring_sqe* sqe = io_uring_get_sqe(&ring.ring);
        if (sqe == nullptr) {  // a full batch: send it, and reap to make room
            submit_and_reap(ring);
            sqe = io_uring_get_sqe(&ring.ring);
        }
        if (sqe == nullptr) {
            finish(raw, EAGAIN);
            return true;
        }
        prepare_sqe(sqe, raw);
        // [AIO1] release, pairs with the acquire load where it is reaped:
        // every read of the request above happens-before its completion (and
        // a loop freeing it). Nothing may touch `raw` after this.
        raw->published.store(true, std::memory_order_release);
        return true;  // submitted at the loop's next poll of its reactor
    }

    AioPollerStats stats() const override {
        AioPollerStats mine = AioBackendImpl::stats();
        const AioPollerStats other = fallback_->stats();
        mine.submitted += other.submitted;
        mine.completed += other.completed;
        mine.refused += other.refused;
        mine.in_flight += other.in_flight;
        return mine;  // `cached` is counted here only
    }

    static void on_ready(evutil_socket_t fd, short, void* arg) {
        std::uint64_t count = 0;
        (void)!read(fd, &count, sizeof count);
        auto* ring = static_cast<LoopRing*>(arg);
        std::lock_guard lock(ring->mutex);
        ring->owner->reap(*ring);
    }

    // Sends what is prepared and delivers what is done (true if anything).
    // Caller holds the ring's mutex.
    bool submit_and_reap(LoopRing& ring) noexcept {
        if (io_uring_sq_ready(&ring.ring) != 0) {
            if (const int rc = submit_retrying(&ring.ring); rc < 0) {
                // The entries stay queued (the kernel may still read them,
                // so their requests cannot fail here): the next poll tries
                // again.
                if (!submit_failed_.exchange(true, std::memory_order_relaxed)) {  // relaxed: once
                    log_submit_failure(-rc);
                }
            }
        }
        return reap(ring) != 0;
    }

private:
    void add_ring(unsigned index, const AioPollerOptions& options) {
        auto ring = std::make_unique<LoopRing>();
        ring->owner = this;
        if (const int rc = io_uring_queue_init(options.queue_depth, &ring->ring, 0); rc < 0) {
            throw std::system_error(-rc, std::generic_category(), "io_uring_queue_init");
        }
        ring->ring_ready = true;
        ring->event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (ring->event_fd < 0 || io_uring_register_eventfd(&ring->ring, ring->event_fd) != 0) {
            rings_.push_back(std::move(ring));
            throw std::system_error(errno != 0 ? errno : EINVAL, std::generic_category(),
                                    "io_uring_register_eventfd");
        }
        ring->reactor = reactor_for(scheduler_, index);
        ring->ready_event = event_new(ring->reactor->base(), ring->event_fd, EV_READ | EV_PERSIST,
                                      &LoopsBackend::on_ready, ring.get());
        if (ring->ready_event == nullptr || event_add(ring->ready_event, nullptr) != 0) {
            rings_.push_back(std::move(ring));
            throw std::system_error(ENOMEM, std::generic_category(), "pollers: the ring's event");
        }
        ring->reactor->add_source(ring.get());
        ring->in_reactor = true;
        rings_.push_back(std::move(ring));
    }

    void release() noexcept {
        for (auto& ring : rings_) {
            if (ring->in_reactor) ring->reactor->remove_source(ring.get());
            if (ring->ready_event != nullptr) event_free(ring->ready_event);  // event_del first
            if (ring->event_fd >= 0) close(ring->event_fd);
            if (ring->ring_ready) io_uring_queue_exit(&ring->ring);
        }
        rings_.clear();
    }

public:
    // Delivers what is done; how many. Caller holds the ring's mutex.
    unsigned reap(LoopRing& ring) noexcept {
        io_uring_cqe* cqe = nullptr;
        unsigned head = 0;
        unsigned seen = 0;
        io_uring_for_each_cqe(&ring.ring, head, cqe) {
            auto* raw = static_cast<AioRequest*>(io_uring_cqe_get_data(cqe));
            ++seen;
            if (raw == nullptr) continue;
            (void)raw->published.load(std::memory_order_acquire);  // [AIO1]
            if (cqe->res < 0) {
                finish(raw, -cqe->res);  // EINTR too: the ring belongs to its loop
            } else {
                completed.add();
                admission.release();
                AioRequest::complete(std::unique_ptr<AioRequest>(raw),
                                     AioResult{static_cast<std::size_t>(cqe->res), {}});
            }
        }
        io_uring_cq_advance(&ring.ring, seen);
        return seen;
    }

private:
    void finish(AioRequest* raw, int error) {
        completed.add();
        admission.release();
        AioRequest::complete(std::unique_ptr<AioRequest>(raw),
                             AioResult{0, std::error_code(error, std::generic_category())});
    }

    static void log_submit_failure(int error);

    sched::Scheduler& scheduler_;
    std::vector<std::unique_ptr<LoopRing>> rings_;
    std::unique_ptr<AioBackendImpl> fallback_;
    std::atomic<bool> submit_failed_{false};
};

void LoopsBackend::log_submit_failure(int error) {
    logger().error(
        "aio: io_uring_enter on a loop's ring failed ({}); its requests stay queued "
        "and are sent again at the loop's next poll",
        std::error_code(error, std::generic_category()).message());
}

bool LoopRing::flush() noexcept {
    std::lock_guard lock(mutex);
    return owner->submit_and_reap(*this);
}

}  // namespace

void drive_current_loop() noexcept {
    // Through the loop's reactor, which the scheduler keeps alive and whose
    // mutex a backend being destroyed takes to remove its rings: never a
    // backend that may be gone.
    sched::Scheduler* scheduler = sched::Scheduler::current();
    const int loop = sched::Scheduler::current_loop();
    if (scheduler == nullptr || loop < 0) return;
    try {
        std::shared_ptr<sched::LoopWaiter> waiter =
            scheduler->loop_waiter(static_cast<unsigned>(loop));
        if (auto* reactor = dynamic_cast<Reactor*>(waiter.get())) (void)reactor->flush();
    } catch (const std::exception&) {
        // loop_waiter()'s mutex: nothing to drive now; the caller polls again
    }
}

std::unique_ptr<AioBackendImpl> make_loops_backend(Poller& owner, sched::Scheduler& scheduler,
                                                   const AioPollerOptions& options) {
    return std::make_unique<LoopsBackend>(owner, scheduler, options);
}

}  // namespace quiesce::pollers::detail
