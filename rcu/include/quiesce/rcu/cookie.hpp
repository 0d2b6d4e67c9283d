// A grace-period cookie: a position in the domain's 64-bit grace-period
// sequence, returned by Domain::start_grace_period() and tested with
// Domain::poll(). It never wraps in practice (2^63 grace periods).
#pragma once

#include <quiesce/base/config.hpp>

#include <compare>
#include <cstdint>

namespace quiesce::rcu {

/// Names "the end of the first grace period that began after this cookie was
/// taken". Opaque; compare cookies only with each other.
class [[nodiscard]] GpCookie {
public:
    constexpr GpCookie() = default;
    constexpr explicit GpCookie(std::uint64_t seq) noexcept : seq_(seq) {}
    [[nodiscard]] constexpr std::uint64_t value() const noexcept { return seq_; }
    constexpr auto operator<=>(const GpCookie&) const = default;

private:
    std::uint64_t seq_ = 0;
};

}  // namespace quiesce::rcu
