// The domain callback thread's incoming queue of Heads (private): the shared
// intrusive MPSC queue of base/ over rcu::Head. Labels [MQ1]-[MQ3] are in
// base/include/quiesce/base/mpsc_queue.hpp.
//
// Threading: push()/push_chain() from any thread; pop() and empty() only on
// the domain callback thread.
#pragma once

#include <quiesce/base/mpsc_queue.hpp>
#include <quiesce/rcu/head.hpp>

namespace quiesce::rcu::detail {

using MpscQueue = base::MpscQueue<Head, &Head::next>;

}  // namespace quiesce::rcu::detail
