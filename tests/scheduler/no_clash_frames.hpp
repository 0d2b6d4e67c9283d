// Stack frames built the way users' code often is: without
// -fstack-clash-protection (g++'s default on Debian), so a large frame moves
// the stack pointer by its whole size before touching it. no_clash_frames.cpp
// is compiled with -fno-stack-clash-protection on purpose.
#pragma once

#include <cstddef>

namespace quiesce::test {

/// Recurses without end with frames of `frame_kib` KiB (7, 10, 13 or 16),
/// touching only the lowest byte of each frame first: an overflow that jumps
/// a small guard.
void recurse_big_frames(std::size_t frame_kib);

/// Descends with small frames until the stack pointer is within `margin`
/// bytes of `bottom`, then calls one unprobed frame of 16 KiB that fills
/// itself: an overflow of at most 16 KiB below `bottom`. Returns normally if
/// nothing stops it.
void overflow_once_below(const void* bottom, std::size_t margin);

}  // namespace quiesce::test
