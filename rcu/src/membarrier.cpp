// membarrier(2) registration and call; see membarrier.hpp.
#include "membarrier.hpp"

#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include "log.hpp"

namespace quiesce::rcu::detail {
namespace {

bool register_once() noexcept {
    long query = syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
    if (query < 0 || (query & MEMBARRIER_CMD_PRIVATE_EXPEDITED) == 0) {
        logger().warn(
            "membarrier(PRIVATE_EXPEDITED) unavailable (errno {}): rcu::ReadLock readers use full "
            "fences (slower reads); Domain::read_mode() says kFences",
            query < 0 ? errno : 0);
        return false;
    }
    if (syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) != 0) {
        logger().warn(
            "membarrier registration refused (errno {}): rcu::ReadLock readers use full fences "
            "(slower reads); Domain::read_mode() says kFences",
            errno);
        return false;
    }
    return true;
}

}  // namespace

bool membarrier_available() noexcept {
    static const bool available = register_once();
    return available;
}

void membarrier_all() noexcept {
    if (syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) != 0) {
        logger().critical("membarrier(PRIVATE_EXPEDITED) failed: errno {}", errno);
        std::abort();
    }
}

}  // namespace quiesce::rcu::detail
