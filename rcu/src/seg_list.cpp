// Segmented callback list; see seg_list.hpp.
#include "seg_list.hpp"

#include <cstddef>

#include <quiesce/base/assert.hpp>

namespace quiesce::rcu::detail {

void SegList::reset() noexcept {
    head_ = nullptr;
    for (auto& tail : tails_) tail = &head_;
    size_ = 0;
}

void SegList::advance(std::uint64_t completed) noexcept {
    int seg = kWait;
    for (; seg <= kReady; ++seg) {
        if (!segment_empty(seg) && cookies_[seg] > completed) break;
        tails_[kDone] = tails_[seg];  // an empty segment adds nothing
    }
    // Shift the segments still waiting down to WAIT; the freed ones become
    // empty (their tail is the one before).
    int to = kWait;
    for (; seg <= kReady; ++seg, ++to) {
        tails_[to] = tails_[seg];
        cookies_[to] = cookies_[seg];
    }
    for (; to <= kReady; ++to) tails_[to] = tails_[to - 1];
}

std::uint64_t SegList::accelerate(std::uint64_t cookie) noexcept {
    if (!next_empty()) {
        if (segment_empty(kWait) || cookies_[kWait] == cookie) {
            // READY is empty whenever WAIT is, or shares WAIT's cookie: join WAIT.
            if (segment_empty(kWait) || segment_empty(kReady)) {
                tails_[kWait] = tails_[kReady] = tails_[kNext];
                cookies_[kWait] = cookie;
            } else {
                tails_[kReady] = tails_[kNext];
                cookies_[kReady] = cookie;
            }
        } else {
            // WAIT holds an older cookie. READY (empty, or older-or-equal:
            // cookies only grow) takes NEXT and the newer cookie, which is
            // also late enough for READY's own callbacks.
            QUIESCE_ASSERT(segment_empty(kReady) || cookies_[kReady] <= cookie,
                           "cookies must not go backwards");
            tails_[kReady] = tails_[kNext];
            cookies_[kReady] = cookie;
        }
    }
    if (!segment_empty(kReady)) return cookies_[kReady];
    if (!segment_empty(kWait)) return cookies_[kWait];
    return 0;
}

Head* SegList::pop_done() noexcept {
    if (done_empty()) return nullptr;
    Head* first = head_;
    head_ = first->next;
    for (auto& tail : tails_) {
        if (tail == &first->next) tail = &head_;
    }
    --size_;
    return first;
}

Head* SegList::take_all(Head** last) noexcept {
    Head* first = head_;
    // The tail is the address of the last Head's `next`, its first member
    // (Head is standard-layout), so it converts back to the Head.
    static_assert(offsetof(Head, next) == 0);
    *last = first == nullptr ? nullptr : reinterpret_cast<Head*>(tails_[kNext]);
    reset();
    return first;
}

}  // namespace quiesce::rcu::detail
