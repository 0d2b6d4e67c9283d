// Compiled with -fno-stack-clash-protection (tests/scheduler/meson.build):
// frames as users' code builds them by default. See no_clash_frames.hpp.
#include "no_clash_frames.hpp"

#include <cstdint>
#include <cstring>

namespace quiesce::test {
namespace {

template <std::size_t kBytes>
[[gnu::noinline]] void big_frame(std::size_t frame_kib) {
    volatile char frame[kBytes];
    frame[0] = static_cast<char>(frame_kib);  // the lowest byte: far below the caller
    recurse_big_frames(frame_kib);
    frame[kBytes - 1] = frame[0];
}

[[gnu::noinline]] void fill_16k() {
    char frame[16 * 1024];
    std::memset(frame, 0x77, sizeof frame);
    asm volatile("" : : "r"(frame) : "memory");  // keep the stores
}

[[gnu::noinline]] void descend(const void* bottom, std::size_t margin) {
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

void recurse_big_frames(std::size_t frame_kib) {
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

void overflow_once_below(const void* bottom, std::size_t margin) {
    descend(bottom, margin);
}

}  // namespace quiesce::test
