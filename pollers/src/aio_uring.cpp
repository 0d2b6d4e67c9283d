// The io_uring backend: requests are prepared and submitted on the caller's
// thread (one io_uring_enter() each; a read of a cached page completes in
// it), and one poller thread reaps completions and hands them to their
// groups or fibers.
//
// Threading: sq_mutex_ guards the submission ring (liburing's SQ side is not
// thread-safe); only the reaper thread touches the completion ring.
// Requests travel through the kernel, which ThreadSanitizer does not see:
// [AIO1] gives it the edge from the submitter to the reaper.
#include <liburing.h>

#include <cerrno>
#include <mutex>
#include <system_error>

#include "aio_backend.hpp"
#include "aio_ring.hpp"
#include "poller_thread.hpp"

namespace quiesce::pollers::detail {
namespace {

class UringBackend final : public AioBackendImpl {
public:
    UringBackend(Poller& owner, const AioPollerOptions& options)
        : AioBackendImpl(options.queue_depth), owner_(owner), options_(options) {
        const int rc = io_uring_queue_init(options.queue_depth, &ring_, 0);
        if (rc < 0) throw std::system_error(-rc, std::generic_category(), "io_uring_queue_init");
    }

    ~UringBackend() override {
        stop();
        io_uring_queue_exit(&ring_);
    }

    AioBackend kind() const noexcept override { return AioBackend::kIoUring; }

    void start() override {
        if (thread_) return;
        stopping_.store(false, std::memory_order_relaxed);  // relaxed: no reaper runs yet
        admission.open();
        thread_ = std::make_unique<PollerThread>(owner_, options_.name + "/ring");
        thread_->start([this](PollerThread& self) { reap(self); });
    }

    void stop() noexcept override {
        if (!thread_) return;
        admission.close();
        // [AIO3] release, pairs with the acquire load in reap(): the reaper
        // woken by the no-op below sees the stop.
        stopping_.store(true, std::memory_order_release);
        {
            std::lock_guard lock(sq_mutex_);
            io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
            if (sqe != nullptr) {
                io_uring_prep_nop(sqe);
                io_uring_sqe_set_data(sqe, nullptr);  // a wake-up, not a request
                io_uring_submit(&ring_);
            }
        }
        thread_->join();
        thread_.reset();
    }

    bool submit(std::unique_ptr<AioRequest>& request, bool wait) override {
        if (!admission.acquire(wait)) {
            refused.add();
            return false;
        }
        submitted.add();
        AioRequest* raw = request.release();
        if (const int rc = enqueue(raw); rc < 0) {
            // The ring refused it: complete it here with the kernel's reason.
            finish(raw, -rc);
        }
        return true;
    }

private:
    // Prepares and submits `raw`; a negative errno if the ring refused.
    int enqueue(AioRequest* raw) {
        std::lock_guard lock(sq_mutex_);
        io_uring_sqe* sqe = free_sqe(&ring_);
        if (sqe == nullptr) return -EAGAIN;
        prepare_sqe(sqe, raw);
        // [AIO1] release, pairs with the acquire load in handle(): every read
        // of the request above happens-before the reaper completes (and a
        // loop frees) it. Nothing may touch `raw` after the submit.
        raw->published.store(true, std::memory_order_release);
        return submit_retrying(&ring_);
    }

    void reap(PollerThread& self) {
        for (;;) {
            // [AIO3]
            if (stopping_.load(std::memory_order_acquire) && admission.in_flight() == 0) return;
            io_uring_cqe* cqe = nullptr;
            const int rc = self.blocking([&] { return io_uring_wait_cqe(&ring_, &cqe); });
            if (rc < 0 && rc != -EINTR && rc != -EAGAIN) {
                throw std::system_error(-rc, std::generic_category(), "io_uring_wait_cqe");
            }
            unsigned head = 0;
            unsigned seen = 0;
            io_uring_for_each_cqe(&ring_, head, cqe) {
                handle(*cqe);
                ++seen;
            }
            io_uring_cq_advance(&ring_, seen);
            self.batch_done();
        }
    }

    void handle(const io_uring_cqe& cqe) {
        auto* raw = static_cast<AioRequest*>(io_uring_cqe_get_data(&cqe));
        if (raw == nullptr) return;                            // stop()'s wake-up
        (void)raw->published.load(std::memory_order_acquire);  // [AIO1]
        if (cqe.res == -EINTR) {
            if (const int rc = enqueue(raw); rc < 0) finish(raw, -rc);
            return;
        }
        if (cqe.res < 0) {
            finish(raw, -cqe.res);
        } else {
            completed.add();
            admission.release();  // before the completion: whoever sees it sees the room
            AioRequest::complete(std::unique_ptr<AioRequest>(raw),
                                 AioResult{static_cast<std::size_t>(cqe.res), {}});
        }
    }

    void finish(AioRequest* raw, int error) {
        completed.add();
        admission.release();
        AioRequest::complete(std::unique_ptr<AioRequest>(raw),
                             AioResult{0, std::error_code(error, std::generic_category())});
    }

    Poller& owner_;
    const AioPollerOptions& options_;
    io_uring ring_{};
    std::mutex sq_mutex_;
    std::unique_ptr<PollerThread> thread_;
    std::atomic<bool> stopping_{false};
};

}  // namespace

std::unique_ptr<AioBackendImpl> make_uring_backend(Poller& owner, const AioPollerOptions& options) {
    return std::make_unique<UringBackend>(owner, options);
}

}  // namespace quiesce::pollers::detail
