// The list of live groups of one scheduler (private): stop() walks it to close
// every group, the stall hook looks up the group a stalled loop runs, and
// stats() counts it. Shared by the scheduler and its groups, so a group that
// outlives its scheduler can still unlink itself.
//
// Threading: every field is guarded by `mutex`.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <mutex>

namespace quiesce::sched::detail {

class GroupCore;

struct Registry {
    std::mutex mutex;
    std::condition_variable changed;  // `unfinished` dropped
    GroupCore* head = nullptr;        // doubly linked through reg_prev/reg_next
    std::size_t live = 0;             // groups linked
    std::size_t unfinished = 0;       // groups whose close has not been handled yet
    bool closing = false;             // stop() began: no new groups
    bool attached = true;             // false once the scheduler is destroyed

    void link(GroupCore* group) noexcept;    // under mutex
    void unlink(GroupCore* group) noexcept;  // under mutex
    /// A group's close was handled (or it died open): under mutex.
    void finished() noexcept {
        if (--unfinished == 0) changed.notify_all();
    }
};

}  // namespace quiesce::sched::detail
