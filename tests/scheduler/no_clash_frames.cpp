// Compiled with -fno-stack-clash-protection (tests/scheduler/meson.build):
// frames as users' code builds them by default. See no_clash_frames.hpp.
#include "no_clash_frames.hpp"

#include <cstdint>

// Not instrumented by ASan: its fake stacks (detect_stack_use_after_return)
// would move these frames off the fiber's stack, and there would be no
// overflow to catch.
#define QUIESCE_REAL_FRAMES [[gnu::noinline, gnu::no_sanitize_address]]

namespace quiesce::test {
namespace {

template <std::size_t kBytes>
QUIESCE_REAL_FRAMES void big_frame(std::size_t frame_kib) {
    volatile char frame[kBytes];
    frame[0] = static_cast<char>(frame_kib);  // the lowest byte: far below the caller
    recurse_big_frames(frame_kib);
    frame[kBytes - 1] = frame[0];
}

QUIESCE_REAL_FRAMES void fill_16k() {
    char frame[16 * 1024];
    for (char& c : frame) *static_cast<volatile char*>(&c) = 0x77;  // not memset: not intercepted
    asm volatile("" : : "r"(frame) : "memory");                     // keep the stores
}

QUIESCE_REAL_FRAMES void descend(const void* bottom, std::size_t margin) {
    volatile char pad[512];
    pad[0] = 1;
    const auto here = reinterpret_cast<std::uintptr_t>(&pad[0]);
    if (here - reinterpret_cast<std::uintptr_t>(bottom) > margin) {
        descend(bottom, margin);
    } else {
        fill_16k();
    }
    pad[511] = pad[0];
}

}  // namespace

QUIESCE_REAL_FRAMES void recurse_big_frames(std::size_t frame_kib) {
    switch (frame_kib) {
        case 7:
            big_frame<7 * 1024>(frame_kib);
            break;
        case 10:
            big_frame<10 * 1024>(frame_kib);
            break;
        case 13:
            big_frame<13 * 1024>(frame_kib);
            break;
        default:
            big_frame<16 * 1024>(frame_kib);
            break;
    }
}

QUIESCE_REAL_FRAMES void overflow_once_below(const void* bottom, std::size_t margin) {
    descend(bottom, margin);
}

}  // namespace quiesce::test
