// The intrusive callback record of Domain::call(), like the kernel's
// rcu_head: embed one in the object to free, so queuing a callback allocates
// nothing.
#pragma once

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

}  // namespace quiesce::rcu
