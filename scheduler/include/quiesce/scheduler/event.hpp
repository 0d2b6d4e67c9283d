// Events: what a loop runs. An event is a callable that runs to completion on
// a loop thread as part of one event group. Posting a callable stores it in a
// pooled 64-byte node (no allocation on the common path); an `Event` object is
// a node the caller owns and may post again and again, like libevent's
// `event_active()` on a registered event.
//
//     sched::Event on_ready{[this] { drain_socket(); }};
//     group.post(on_ready);             // allocates nothing; coalesces while queued
//     group.post([n] { count(n); });    // captures up to 40 bytes stay inline
//
// A callable returns void (done) or a Status: Status::kAgain asks to be run
// again later, behind the other groups (a long job that saw need_resched()).
//
// Threading: an Event may be posted from any thread; it runs on the loop that
// runs its group, never twice at once.
#pragma once

#include <quiesce/base/config.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <new>
#include <type_traits>
#include <utility>

namespace quiesce::sched {

/// What an event reports when it returns.
enum class Status : std::uint8_t {
    kDone,   ///< finished; the node is released
    kAgain,  ///< not finished: run me again after the other ready groups
};

namespace detail {

/// What the loop asks of a node's operation.
enum class Action : std::uint8_t {
    kRun,      ///< invoke the callable; may throw
    kRelease,  ///< after kRun: recycle the node (noexcept)
    kDrop,     ///< never ran (its group closed): recycle without running
};

struct EventNode;
using EventOp = Status (*)(EventNode*, Action);

/// The intrusive link every queued event has. `next` belongs to the group's
/// queue while the node is queued.
struct EventNode {
    EventNode* next = nullptr;
    EventOp op = nullptr;
};

/// Calls `fn`; a void callable counts as Status::kDone.
template <typename F>
Status invoke_event(F& fn) {
    if constexpr (std::is_same_v<std::invoke_result_t<F&>, Status>) {
        return fn();
    } else {
        static_assert(std::is_void_v<std::invoke_result_t<F&>>,
                      "an event returns void or quiesce::sched::Status");
        fn();
        return Status::kDone;
    }
}

}  // namespace detail

/// A reusable event the caller owns. Post it with Group::post(Event&); while it
/// is queued, posting it again is a no-op (the runs coalesce, as with libevent's
/// event_active()). It must outlive every run and every pending post.
class Event : private detail::EventNode {
public:
    static constexpr std::size_t kInlineBytes = 24;

    /// Stores `fn` inline; it must fit in kInlineBytes (e.g. a lambda that
    /// captures `this` and two more pointers) and be nothrow-movable.
    template <typename F, typename = std::enable_if_t<!std::is_same_v<std::decay_t<F>, Event>>>
    explicit Event(F&& fn) {
        using Fn = std::decay_t<F>;
        static_assert(sizeof(Fn) <= kInlineBytes && alignof(Fn) <= alignof(std::max_align_t),
                      "an Event keeps its callable inline: capture less (a pointer to your state)");
        static_assert(std::is_nothrow_destructible_v<Fn>,
                      "an event callable must not throw on destruction");
        ::new (static_cast<void*>(storage_)) Fn(std::forward<F>(fn));
        op = &Event::operation<Fn>;
        destroy_ = [](void* storage) noexcept { static_cast<Fn*>(storage)->~Fn(); };
    }
    ~Event() { destroy_(storage_); }
    Event(const Event&) = delete;
    Event& operator=(const Event&) = delete;

    /// True while posted and not yet started. Thread: any. Memory ordering:
    /// acquire (a snapshot).
    [[nodiscard]] bool pending() const noexcept {
        return pending_.load(std::memory_order_acquire);  // [EV1] see post()
    }

private:
    friend class Group;

    /// Claims the right to queue this event; false if it is already queued.
    bool claim() noexcept {
        // [EV1] acq_rel, pairs with [EV2]: a post after the event was taken
        // off the queue queues it again; one before coalesces with the run.
        return !pending_.exchange(true, std::memory_order_acq_rel);
    }
    detail::EventNode* node() noexcept { return this; }

    template <typename Fn>
    static Status operation(detail::EventNode* node, detail::Action action) {
        auto* self = static_cast<Event*>(node);
        if (action != detail::Action::kRun) {
            // kDrop: clear the claim so that a later post queues it again;
            // kRelease: nothing to do, [EV2] already released it.
            if (action == detail::Action::kDrop)
                self->pending_.store(false, std::memory_order_release);
            return Status::kDone;
        }
        // [EV2] release, pairs with [EV1]: cleared before the run, so a post
        // made while it runs queues one more run (no lost notification).
        self->pending_.store(false, std::memory_order_release);
        return detail::invoke_event(*std::launder(reinterpret_cast<Fn*>(self->storage_)));
    }

    std::atomic<bool> pending_{false};
    void (*destroy_)(void*) noexcept = nullptr;
    alignas(std::max_align_t) unsigned char storage_[kInlineBytes];
};

}  // namespace quiesce::sched
