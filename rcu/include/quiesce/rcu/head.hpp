// The intrusive callback record of Domain::call(), like the kernel's
// rcu_head: embed one in the object to free, so queuing a callback allocates
// nothing.
//
//     struct Node : rcu::Head { int key; };          // derive, and static_cast back
//     domain.call(node, [](rcu::Head* h) noexcept { delete static_cast<Node*>(h); });
//
//     struct CNode { int key; rcu::Head rcu; };      // or embed it (C-style structs)
//     domain.call(&n->rcu, [](rcu::Head* h) noexcept {
//         std::free(rcu::container_of<CNode>(h, offsetof(CNode, rcu)));
//     });
//
// C code that has only a function and a pointer uses Domain::defer(fn, arg),
// which allocates a record (as liburcu's defer_rcu()).
#pragma once

#include <quiesce/base/config.hpp>

#include <cstddef>

namespace quiesce::rcu {

struct Head;

/// A callback run once a grace period has passed. It receives the Head it was
/// queued with (recover the enclosing object with a static_cast from a base,
/// or offsetof). It must not throw and must not call synchronize().
using Callback = void (*)(Head*) noexcept;

/// Embed in an object (or derive from it) to pass it to Domain::call().
/// Owned by the domain from call() until the callback starts.
struct Head {
    Head* next = nullptr;
    Callback func = nullptr;
};

/// The object of type T that holds `head` at byte offset `offset` (use
/// offsetof(T, member); T standard-layout), as the kernel's container_of().
template <typename T>
[[nodiscard]] T* container_of(Head* head, std::size_t offset) noexcept {
    return reinterpret_cast<T*>(reinterpret_cast<char*>(head) - offset);
}

}  // namespace quiesce::rcu
