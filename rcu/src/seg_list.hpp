// A segmented callback list (private), after the kernel's rcu_segcblist: one
// singly-linked FIFO of Heads cut into four segments by tail pointers,
//
//     DONE | WAIT (cookie) | READY (cookie) | NEXT
//
// DONE: grace period over, ready to invoke. WAIT and READY: waiting for the
// grace period their cookie names (WAIT's is the older). NEXT: queued since
// the last accelerate(), no cookie yet. Order of invocation is order of
// enqueue. Not thread-safe: each list has one owner thread.
#pragma once

#include <cstddef>
#include <cstdint>

#include <quiesce/rcu/head.hpp>

namespace quiesce::rcu::detail {

class SegList {
public:
    SegList() noexcept { reset(); }
    SegList(const SegList&) = delete;
    SegList& operator=(const SegList&) = delete;

    /// Appends to NEXT. Cost: three stores.
    void enqueue(Head* head) noexcept {
        head->next = nullptr;
        *tails_[kNext] = head;
        tails_[kNext] = &head->next;
        ++size_;
    }

    /// Moves every WAIT/READY segment whose cookie is <= `completed` to DONE.
    void advance(std::uint64_t completed) noexcept;

    /// Gives NEXT the cookie `cookie` (merging with a segment of the same or
    /// an older cookie when all three are in use). Returns the newest cookie
    /// any callback waits for, 0 if none.
    std::uint64_t accelerate(std::uint64_t cookie) noexcept;

    /// Removes and returns the first DONE callback, or null.
    Head* pop_done() noexcept;

    /// Takes every callback (all segments, in order); leaves the list empty.
    /// Returns the first Head (null if none) and sets `*last` to the last one.
    Head* take_all(Head** last) noexcept;

    [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
    [[nodiscard]] bool next_empty() const noexcept { return tails_[kNext] == tails_[kReady]; }
    [[nodiscard]] bool done_empty() const noexcept { return tails_[kDone] == &head_; }
    [[nodiscard]] std::size_t size() const noexcept { return size_; }

private:
    enum Segment { kDone, kWait, kReady, kNext, kSegments };

    void reset() noexcept;
    [[nodiscard]] bool segment_empty(int seg) const noexcept {
        return tails_[seg] == (seg == kDone ? &head_ : tails_[seg - 1]);
    }

    Head* head_ = nullptr;
    Head** tails_[kSegments];                // next-field of each segment's last Head
    std::uint64_t cookies_[kSegments] = {};  // for kWait and kReady
    std::size_t size_ = 0;
};

}  // namespace quiesce::rcu::detail
