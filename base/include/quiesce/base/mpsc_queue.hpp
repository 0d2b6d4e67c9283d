// An intrusive multi-producer single-consumer FIFO, after Dmitry Vyukov's: a
// push is one exchange and one store (wait-free, no allocation); the consumer
// needs no atomic read-modify-write except when it meets the sentinel. The
// rcu callback thread, the scheduler's event groups and its loop inboxes use
// it with their own node types.
//
// Threading: push()/push_chain() from any thread; pop(), empty() and
// poppable() only from the one consumer at a time (a consumer may change
// threads when a happens-before edge orders the old one before the new one).
#pragma once

#include <quiesce/base/config.hpp>

#include <atomic>

namespace quiesce::base {

/// `Node` has a plain pointer member `Next` (e.g. `&Head::next`) that the
/// queue owns from push() until pop() returns the node.
template <typename Node, Node* Node::*Next>
class MpscQueue {
public:
    MpscQueue() noexcept : tail_(&sentinel_), head_(&sentinel_) {}
    MpscQueue(const MpscQueue&) = delete;
    MpscQueue& operator=(const MpscQueue&) = delete;

    /// Appends `node`. Thread: any. Memory ordering: see push_chain().
    void push(Node* node) noexcept { push_chain(node, node); }

    /// Appends the chain first..last (linked by Next; last's link is reset).
    void push_chain(Node* first, Node* last) noexcept {
        link(last).store(nullptr, std::memory_order_relaxed);  // published by [MQ1]
        // [MQ1] exchange, pairs with [MQ3]: the consumer that sees the new
        // tail sees the chain's contents. seq_cst: with a caller's later
        // seq_cst load of a "sleeping" flag it forms a Dekker pair against the
        // consumer's store of that flag and its seq_cst empty() check.
        Node* previous = tail_.exchange(last, std::memory_order_seq_cst);
        // [MQ2] release, pairs with [MQ3]: links the chain in; until this
        // store the consumer sees a gap and waits for it (pop() returns null).
        link(previous).store(first, std::memory_order_release);
    }

    /// Removes the oldest node, or returns null when the queue is empty or a
    /// producer is between [MQ1] and [MQ2] (then empty() is false).
    Node* pop() noexcept {
        Node* head = head_;
        Node* next = link(head).load(std::memory_order_acquire);  // [MQ3]
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
        // `head` is the last linked node. Re-insert the sentinel behind it so
        // that `head` can be handed out with its link no longer in use.
        // acquire, pairs with a producer's [MQ1] exchange: a tail other than
        // `head` means a push is in progress; it links itself in at [MQ2].
        if (head != tail_.load(std::memory_order_acquire)) return nullptr;
        push(&sentinel_);
        next = link(head).load(std::memory_order_acquire);  // [MQ3]
        if (next == nullptr) return nullptr;  // another push won the race; next pop gets it
        head_ = next;
        return head;
    }

    /// The node pop() would return next, without removing it, or null (as
    /// pop()). Consumer only.
    Node* peek() noexcept {
        Node* head = head_;
        if (head == &sentinel_) {
            Node* next = link(head).load(std::memory_order_acquire);  // [MQ3]
            if (next == nullptr) return nullptr;
            head_ = next;
            head = next;
        }
        return head;
    }

    /// True when nothing is queued and no push is in progress. Consumer only.
    /// Memory ordering: seq_cst load of the tail (the consumer's half of the
    /// Dekker pair with [MQ1]).
    [[nodiscard]] bool empty() const noexcept {
        return head_ == &sentinel_ && tail_.load(std::memory_order_seq_cst) == &sentinel_;
    }

    /// True while nothing has been pushed since the consumer last saw empty()
    /// true. Unlike empty() it reads no consumer field, so the consumer may
    /// ask it after handing the queue on (then any thread may pop). Memory
    /// ordering: seq_cst load of the tail, as empty().
    [[nodiscard]] bool nothing_pushed_since_empty() const noexcept {
        return tail_.load(std::memory_order_seq_cst) == &sentinel_;
    }

private:
    static std::atomic_ref<Node*> link(Node* node) noexcept {
        return std::atomic_ref<Node*>(node->*Next);
    }

    alignas(64) std::atomic<Node*> tail_;  // producers
    alignas(64) Node* head_;               // consumer only
    Node sentinel_{};
};

}  // namespace quiesce::base
