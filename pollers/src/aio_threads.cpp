// The AIO fallback: a few threads making pread/pwrite/fsync calls.
//
// Threading: mutex_ guards the queue and the stop flag; each worker takes a
// request, does the blocking call with no lock held, and completes it.
#include <pthread.h>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include <quiesce/base/signals.hpp>

#include "aio_backend.hpp"

namespace quiesce::pollers::detail {
namespace {

class ThreadBackend final : public AioBackendImpl {
public:
    explicit ThreadBackend(const AioPollerOptions& options)
        : AioBackendImpl(options.queue_depth), options_(options) {}
    ~ThreadBackend() override { stop(); }

    AioBackend kind() const noexcept override { return AioBackend::kThreads; }

    void start() override {
        std::lock_guard lock(mutex_);
        if (!workers_.empty()) return;
        stopping_ = false;
        admission.open();
        base::SignalBlock block;  // workers take no async signal
        for (unsigned i = 0; i < options_.fallback_threads; ++i) {
            workers_.emplace_back([this, i] { work(i); });
        }
    }

    void stop() noexcept override {
        admission.close();
        {
            std::lock_guard lock(mutex_);
            stopping_ = true;  // workers finish the queue first
        }
        cv_.notify_all();
        for (auto& worker : workers_) worker.join();
        workers_.clear();
    }

    bool submit(std::unique_ptr<AioRequest>& request, bool wait) override {
        if (!admission.acquire(wait)) {
            refused.add();
            return false;
        }
        submitted.add();
        {
            std::lock_guard lock(mutex_);
            queue_.push_back(std::move(request));
        }
        cv_.notify_one();
        return true;
    }

private:
    void work(unsigned index) {
        std::string name = options_.name.substr(0, 8) + "-io/" + std::to_string(index);
        pthread_setname_np(pthread_self(), name.c_str());
        for (;;) {
            std::unique_ptr<AioRequest> request;
            {
                std::unique_lock lock(mutex_);
                cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
                if (queue_.empty()) return;  // stopping, and nothing left
                request = std::move(queue_.front());
                queue_.pop_front();
            }
            const AioResult result = request->run_blocking();
            completed.add();
            admission.release();  // before the completion: whoever sees it sees the room
            AioRequest::complete(std::move(request), result);
        }
    }

    const AioPollerOptions& options_;
    std::mutex mutex_;
    std::condition_variable cv_;
    std::deque<std::unique_ptr<AioRequest>> queue_;  // mutex_
    bool stopping_ = false;                          // mutex_
    std::vector<std::thread> workers_;               // start()/stop()
};

}  // namespace

std::unique_ptr<AioBackendImpl> make_thread_backend(const AioPollerOptions& options) {
    return std::make_unique<ThreadBackend>(options);
}

}  // namespace quiesce::pollers::detail
