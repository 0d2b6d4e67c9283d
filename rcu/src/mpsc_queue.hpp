// An intrusive multi-producer single-consumer queue of Heads (private), after
// Dmitry Vyukov's: a push is one exchange and one store, wait-free; the
// consumer needs no atomic read-modify-write except when it meets the sentinel.
//
// Threading: push()/push_chain() from any thread; pop() and empty() only from
// the one consumer (the domain callback thread).
#pragma once

#include <atomic>

#include <quiesce/rcu/head.hpp>

namespace quiesce::rcu::detail {

class MpscQueue {
public:
    MpscQueue() noexcept : tail_(&sentinel_), head_(&sentinel_) {}
    MpscQueue(const MpscQueue&) = delete;
    MpscQueue& operator=(const MpscQueue&) = delete;

    /// Appends `head`. Thread: any. Memory ordering: release (see push_chain).
    void push(Head* head) noexcept { push_chain(head, head); }

    /// Appends the chain first..last (linked by `next`; last->next is reset).
    void push_chain(Head* first, Head* last) noexcept {
        link(last).store(nullptr, std::memory_order_relaxed);  // published by [MQ1]
        // [MQ1] acq_rel exchange, pairs with [MQ3]: the consumer that sees the
        // new tail sees the chain's contents. seq_cst: with the load of
        // `sleeping` in the caller it forms a Dekker pair (see worker.cpp).
        Head* previous = tail_.exchange(last, std::memory_order_seq_cst);
        // [MQ2] release, pairs with [MQ3]: links the chain in; until this
        // store the consumer sees a gap and waits for it (pop() returns null).
        link(previous).store(first, std::memory_order_release);
    }

    /// Removes the oldest Head, or returns null when the queue is empty or a
    /// producer is between [MQ1] and [MQ2] (then busy() is true).
    Head* pop() noexcept {
        Head* head = head_;
        Head* next = link(head).load(std::memory_order_acquire);  // [MQ3]
        if (head == &sentinel_) {
            if (next == nullptr) return nullptr;
            head_ = next;
            head = next;
            next = link(head).load(std::memory_order_acquire);  // [MQ3]
        }
        if (next != nullptr) {
            head_ = next;
            return head;
        }
        // `head` is the last linked Head. Re-insert the sentinel behind it so
        // that `head` can be handed out with its `next` no longer in use.
        if (head != tail_.load(std::memory_order_acquire)) return nullptr;  // a push in progress
        push(&sentinel_);
        next = link(head).load(std::memory_order_acquire);  // [MQ3]
        if (next == nullptr) return nullptr;  // another push won the race; next pop gets it
        head_ = next;
        return head;
    }

    /// True when nothing is queued and no push is in progress. Consumer only.
    /// Memory ordering: seq_cst load of the tail (the consumer's half of the
    /// Dekker pair with [MQ1]).
    [[nodiscard]] bool empty() const noexcept {
        return head_ == &sentinel_ && tail_.load(std::memory_order_seq_cst) == &sentinel_;
    }

private:
    static std::atomic_ref<Head*> link(Head* head) noexcept {
        return std::atomic_ref<Head*>(head->next);
    }

    alignas(64) std::atomic<Head*> tail_;  // producers
    alignas(64) Head* head_;               // consumer only
    Head sentinel_;
};

}  // namespace quiesce::rcu::detail
