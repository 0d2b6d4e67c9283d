// AioPlacement::kLoops: an io_uring ring per loop. A request made on a loop
// (a fiber, or an event) goes to that loop's ring; its completion is reaped
// on the same loop, right after the submit when the kernel finished it there
// (a cached page), else when the ring's eventfd wakes the loop's reactor (in
// its epoll_wait, or at its next poll while busy). No thread hop. Requests
// made off the loops go to a shared ring with a reaper thread (kThread).
//
// Threading: a ring's submission side is used only by its loop's thread
// (requests are made there); its completion side by whoever holds its
// reap_mutex (the loop, or stop()). [AIO1] as in aio_uring.cpp.
#include <event2/event.h>
#include <liburing.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

#include <quiesce/scheduler/scheduler.hpp>

#include "aio_backend.hpp"
#include "aio_ring.hpp"
#include "reactor.hpp"

namespace quiesce::pollers::detail {
namespace {

class LoopsBackend;

struct LoopRing {
    LoopsBackend* owner = nullptr;
    io_uring ring{};
    bool ring_ready = false;
    int event_fd = -1;
    event* ready_event = nullptr;  // in the loop's reactor base
    std::shared_ptr<Reactor> reactor;
    std::mutex reap_mutex;
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
        // The loops reap what is in flight; if they do not run any more,
        // reap here (a ring's completion side is ours under its mutex).
        while (admission.in_flight() != 0) {
            for (auto& ring : rings_) reap(*ring, /*block=*/true);
            if (admission.in_flight() != 0) std::this_thread::yield();
        }
    }

    bool submit(std::unique_ptr<AioRequest>& request, bool wait) override {
        const int loop = sched::Scheduler::current_loop();
        if (loop < 0 || sched::Scheduler::current() != &scheduler_) {
            return fallback_->submit(request, wait);
        }
        if (!admission.acquire(wait)) {
            refused.fetch_add(1, std::memory_order_relaxed);  // relaxed: a counter
            return false;
        }
        submitted.fetch_add(1, std::memory_order_relaxed);  // relaxed: a counter
        // After acquire() (which may have parked and moved the fiber), the
        // loop we run on now.
        LoopRing& ring = *rings_[static_cast<unsigned>(sched::Scheduler::current_loop())];
        AioRequest* raw = request.release();
        if (const int rc = enqueue(ring, raw); rc < 0) {
            finish(raw, -rc);
            return true;
        }
        reap(ring, /*block=*/false);  // a cached page is done already
        return true;
    }

    AioPollerStats stats() const override {
        AioPollerStats mine = AioBackendImpl::stats();
        const AioPollerStats other = fallback_->stats();
        mine.submitted += other.submitted;
        mine.completed += other.completed;
        mine.refused += other.refused;
        mine.in_flight += other.in_flight;
        return mine;
    }

    static void on_ready(evutil_socket_t fd, short, void* arg) {
        std::uint64_t count = 0;
        (void)!read(fd, &count, sizeof count);
        auto* ring = static_cast<LoopRing*>(arg);
        ring->owner->reap(*ring, /*block=*/false);
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
        rings_.push_back(std::move(ring));
    }

    void release() noexcept {
        for (auto& ring : rings_) {
            if (ring->ready_event != nullptr) event_free(ring->ready_event);  // event_del first
            if (ring->event_fd >= 0) close(ring->event_fd);
            if (ring->ring_ready) io_uring_queue_exit(&ring->ring);
        }
        rings_.clear();
    }

    // Prepares and submits `raw` on `ring`; a negative errno if refused.
    int enqueue(LoopRing& ring, AioRequest* raw) {
        io_uring_sqe* sqe = free_sqe(&ring.ring);
        if (sqe == nullptr) return -EAGAIN;
        prepare_sqe(sqe, raw);
        // [AIO1] release, pairs with the acquire load where it is reaped:
        // every read of the request above happens-before its completion (and
        // a loop freeing it). Nothing may touch `raw` after the submit.
        raw->published.store(true, std::memory_order_release);
        return submit_retrying(&ring.ring);
    }

    void reap(LoopRing& ring, bool block) {
        std::unique_lock lock(ring.reap_mutex, std::defer_lock);
        if (block) {
            lock.lock();
        } else if (!lock.try_lock()) {
            return;  // someone else reaps it now
        }
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
                completed.fetch_add(1, std::memory_order_relaxed);  // relaxed: a counter
                admission.release();
                AioRequest::complete(std::unique_ptr<AioRequest>(raw),
                                     AioResult{static_cast<std::size_t>(cqe->res), {}});
            }
        }
        io_uring_cq_advance(&ring.ring, seen);
    }

    void finish(AioRequest* raw, int error) {
        completed.fetch_add(1, std::memory_order_relaxed);  // relaxed: a counter
        admission.release();
        AioRequest::complete(std::unique_ptr<AioRequest>(raw),
                             AioResult{0, std::error_code(error, std::generic_category())});
    }

    sched::Scheduler& scheduler_;
    std::vector<std::unique_ptr<LoopRing>> rings_;
    std::unique_ptr<AioBackendImpl> fallback_;
};

}  // namespace

std::unique_ptr<AioBackendImpl> make_loops_backend(Poller& owner, sched::Scheduler& scheduler,
                                                   const AioPollerOptions& options) {
    return std::make_unique<LoopsBackend>(owner, scheduler, options);
}

}  // namespace quiesce::pollers::detail
