// FiberWaitQueue: an intrusive FIFO of stack nodes; see fiber_wait_queue.hpp.
//
// Threading: the caller's mutex guards every node and both ends.
#include "fiber_wait_queue.hpp"

namespace quiesce::pollers::detail {

void FiberWaitQueue::wait(std::unique_lock<std::mutex>& lock) {
    Node node{sched::this_fiber::waker()};
    push_back(node);
    try {
        // Only a notifier sets the state (and takes the node out): any other
        // return from park() is a stale permit, and the node is still queued.
        while (node.state == State::kWaiting) {
            lock.unlock();
            sched::this_fiber::park();
            lock.lock();
        }
    } catch (...) {  // the group closed: the fiber unwinds; rethrown below
        if (!lock.owns_lock()) lock.lock();
        if (node.state == State::kWaiting) {
            erase(node);
        } else if (node.state == State::kNotified) {
            (void)notify_one();  // the room it was woken for goes to the next
        }
        throw;
    }
}

bool FiberWaitQueue::notify_one() noexcept {
    while (head_ != nullptr) {
        Node& node = *head_;
        erase(node);
        // The node may go as soon as the fiber runs, but it needs the
        // caller's mutex first, which we hold.
        if (node.waker.wake()) {
            node.state = State::kNotified;
            return true;
        }
        node.state = State::kDeclined;  // its group closed: it unwinds, try the next
    }
    return false;
}

void FiberWaitQueue::notify_all() noexcept {
    while (notify_one()) {
    }
}

void FiberWaitQueue::push_back(Node& node) noexcept {
    node.prev = tail_;
    node.next = nullptr;
    if (tail_ != nullptr) {
        tail_->next = &node;
    } else {
        head_ = &node;
    }
    tail_ = &node;
}

void FiberWaitQueue::erase(Node& node) noexcept {
    (node.prev != nullptr ? node.prev->next : head_) = node.next;
    (node.next != nullptr ? node.next->prev : tail_) = node.prev;
    node.prev = node.next = nullptr;
}

}  // namespace quiesce::pollers::detail
