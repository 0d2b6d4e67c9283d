// The pooled node that carries a posted callable (internal to Group::post).
// Nodes come from a per-thread cache: taking one is a pointer pop, and the
// loop that ran it hands it back to its owner's cache (a plain push on the
// owning thread, one compare-and-swap from any other), so posting allocates
// only while a thread's cache grows to its working set.
//
// Threading: acquire_node() on the posting thread; the node's operation runs
// on a loop thread and releases it there.
#pragma once

#include <quiesce/base/config.hpp>

#include <cstddef>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>

#include <quiesce/scheduler/event.hpp>

namespace quiesce::sched::detail {

struct NodeCache;

/// One cache line: the link, the operation, the owner and 40 bytes inline.
struct alignas(64) CallableNode : EventNode {
    static constexpr std::size_t kInlineBytes = 40;
    NodeCache* owner = nullptr;
    alignas(8) unsigned char storage[kInlineBytes];
};
static_assert(sizeof(CallableNode) == 64, "a callable node is one cache line");

/// A node from the calling thread's cache (allocates when the cache is empty).
/// Thread: any. Throws std::bad_alloc only when the cache must grow.
CallableNode* acquire_node();
/// Returns `node` to its owner's cache. Thread: any (normally the loop).
void release_node(CallableNode* node) noexcept;

template <typename Fn>
constexpr bool kFitsInline = sizeof(Fn) <= CallableNode::kInlineBytes &&
                             alignof(Fn) <= 8 && std::is_nothrow_move_constructible_v<Fn>;

/// Operation of a node holding `Fn` inline, or a pointer to a boxed `Fn`.
template <typename Fn>
Status callable_op(EventNode* base, Action action) {
    auto* node = static_cast<CallableNode*>(base);
    Fn* fn;
    if constexpr (kFitsInline<Fn>) {
        fn = std::launder(reinterpret_cast<Fn*>(node->storage));
    } else {
        fn = *std::launder(reinterpret_cast<Fn**>(node->storage));
    }
    if (action == Action::kRun) return invoke_event(*fn);
    if constexpr (kFitsInline<Fn>) {
        fn->~Fn();
    } else {
        delete fn;
    }
    release_node(node);
    return Status::kDone;
}

/// Builds a node holding `fn`. A callable larger than 40 bytes is boxed on the
/// heap (one allocation per post: keep captures small on hot paths).
template <typename F>
CallableNode* make_callable_node(F&& fn) {
    using Fn = std::decay_t<F>;
    static_assert(std::is_nothrow_destructible_v<Fn>,
                  "an event callable must not throw on destruction");
    CallableNode* node = acquire_node();
    if constexpr (kFitsInline<Fn>) {
        ::new (static_cast<void*>(node->storage)) Fn(std::forward<F>(fn));
    } else {
        std::unique_ptr<Fn> boxed;
        try {
            boxed = std::make_unique<Fn>(std::forward<F>(fn));
        } catch (...) {
            release_node(node);
            throw;
        }
        ::new (static_cast<void*>(node->storage)) Fn*(boxed.release());
    }
    node->op = &callable_op<Fn>;
    return node;
}

}  // namespace quiesce::sched::detail
