// membarrier(2) for the update side of preemptible readers (private).
#pragma once

namespace quiesce::rcu::detail {

/// Registers the process for MEMBARRIER_CMD_PRIVATE_EXPEDITED once; false if
/// the kernel lacks it or refuses (seccomp, old kernel). Thread-safe.
bool membarrier_available() noexcept;

/// Makes every running thread of this process execute a full memory barrier
/// before returning. Precondition: membarrier_available(). Aborts on failure
/// (it cannot fail once registered).
void membarrier_all() noexcept;

}  // namespace quiesce::rcu::detail
