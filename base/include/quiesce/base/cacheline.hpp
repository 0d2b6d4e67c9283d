// Cache-line size and a padded wrapper, so that fields written by different
// threads never share a line.
#pragma once

#include <quiesce/base/config.hpp>

#include <cstddef>

namespace quiesce::base {

/// x86-64 and most arm64 parts use 64-byte lines; adjacent-line prefetch
/// makes 128 the distance that avoids false sharing on x86.
inline constexpr std::size_t kCacheLine = 64;
inline constexpr std::size_t kNoFalseSharing = 128;

/// A T alone on its own (pair of) cache line(s).
template <typename T>
struct alignas(kNoFalseSharing) Padded {
    T value{};
};

}  // namespace quiesce::base
