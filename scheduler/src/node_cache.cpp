// The per-thread caches of callable nodes (see callable_node.hpp).
//
// Threading: a cache's `local` list belongs to its owner thread; `returned` is
// a stack that any thread pushes to (compare-and-swap) and only the owner
// empties (one exchange that takes everything, so there is no ABA). A cache
// outlives its thread: nodes still in flight return to it, and the next thread
// that needs a cache adopts it, so memory stays bounded by the peak number of
// concurrent posting threads and their working sets.
#include <atomic>
#include <cstddef>
#include <mutex>
#include <vector>

#include <quiesce/scheduler/callable_node.hpp>

namespace quiesce::sched::detail {

struct NodeCache {
    CallableNode* local = nullptr;  // owner only
    std::size_t local_count = 0;    // owner only
    std::atomic<CallableNode*> returned{nullptr};
    bool owned = false;  // caches_mutex
};

namespace {

// Nodes a cache keeps when it takes back what loops returned; the rest are
// freed, so a burst does not pin its peak memory forever.
constexpr std::size_t kMaxCached = 4096;

std::mutex caches_mutex;
std::vector<NodeCache*>* all_caches = nullptr;  // caches_mutex; never freed (reachable for LSan)

NodeCache* adopt_cache() {
    std::lock_guard lock(caches_mutex);
    if (all_caches == nullptr) all_caches = new std::vector<NodeCache*>();
    for (NodeCache* cache : *all_caches) {
        if (!cache->owned) {
            cache->owned = true;
            return cache;
        }
    }
    auto* cache = new NodeCache();
    cache->owned = true;
    all_caches->push_back(cache);
    return cache;
}

constinit thread_local NodeCache* tls_cache = nullptr;

/// Gives this thread's cache (with its nodes) back at thread exit.
struct CacheRelease {
    bool armed = false;
    ~CacheRelease() {
        if (!armed || tls_cache == nullptr) return;
        std::lock_guard lock(caches_mutex);  // orders our `local` accesses before the adopter's
        tls_cache->owned = false;
        tls_cache = nullptr;
    }
};
thread_local CacheRelease tls_release;

NodeCache* my_cache() {
    if (tls_cache == nullptr) {
        tls_cache = adopt_cache();
        tls_release.armed = true;  // registers the destructor on this thread
    }
    return tls_cache;
}

void reclaim_returned(NodeCache* cache) {
    // [NC1] acquire, pairs with [NC2]: the nodes' last uses on the loops
    // happen-before we reuse them.
    CallableNode* node = cache->returned.exchange(nullptr, std::memory_order_acquire);
    while (node != nullptr) {
        auto* next = static_cast<CallableNode*>(node->next);
        if (cache->local_count < kMaxCached) {
            node->next = cache->local;
            cache->local = node;
            ++cache->local_count;
        } else {
            delete node;
        }
        node = next;
    }
}

}  // namespace

CallableNode* acquire_node() {
    NodeCache* cache = my_cache();
    if (cache->local == nullptr) reclaim_returned(cache);
    CallableNode* node = cache->local;
    if (node == nullptr) {
        node = new CallableNode();
        node->owner = cache;
        return node;
    }
    cache->local = static_cast<CallableNode*>(node->next);
    --cache->local_count;
    node->next = nullptr;
    return node;
}

void release_node(CallableNode* node) noexcept {
    NodeCache* owner = node->owner;
    if (tls_cache == owner && owner->local_count < kMaxCached) {
        node->next = owner->local;
        owner->local = node;
        ++owner->local_count;
        return;
    }
    CallableNode* head = owner->returned.load(std::memory_order_relaxed);
    do {
        node->next = head;
        // [NC2] release, pairs with [NC1]: this thread's uses of the node
        // happen-before its owner reuses it.
    } while (!owner->returned.compare_exchange_weak(head, node, std::memory_order_release,
                                                    std::memory_order_relaxed));
}

}  // namespace quiesce::sched::detail
