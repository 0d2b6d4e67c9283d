// RingReader and TaskClockAnchor on a ring in ordinary memory: the record
// decoding, the wrap, lost and unknown records, and the extrapolation.
#include <catch2/catch.hpp>

#include <cstring>
#include <vector>

#include "perf_ring.hpp"

using quiesce::sched::detail::RingDrain;
using quiesce::sched::detail::RingReader;
using quiesce::sched::detail::TaskClockAnchor;

namespace {

constexpr std::uint64_t kDataSize = 4096;

// A fake kernel: appends records the way perf_output_*() lays them out.
struct FakeRing {
    alignas(4096) perf_event_mmap_page meta{};
    alignas(8) unsigned char data[kDataSize]{};

    void put_word(std::uint64_t pos, std::uint64_t word) {
        std::memcpy(data + (pos % kDataSize), &word, sizeof word);
    }
    void put(std::uint32_t type, std::uint16_t misc, std::vector<std::uint64_t> words) {
        perf_event_header header{type, misc,
                                 static_cast<std::uint16_t>(sizeof header + 8 * words.size())};
        std::uint64_t pos = meta.data_head;
        std::memcpy(data + (pos % kDataSize), &header, sizeof header);
        for (std::size_t i = 0; i < words.size(); ++i) put_word(pos + 8 + 8 * i, words[i]);
        meta.data_head = pos + header.size;
    }
    void sample(std::uint64_t time, std::uint64_t value) {
        put(PERF_RECORD_SAMPLE, 0, {time, value});
    }
    void switch_out(std::uint64_t time) {
        put(PERF_RECORD_SWITCH, PERF_RECORD_MISC_SWITCH_OUT, {time});
    }
    void switch_in(std::uint64_t time) { put(PERF_RECORD_SWITCH, 0, {time}); }
};

}  // namespace

TEST_CASE("a drain applies samples and switches in order and frees the ring", "[scheduler][unit]") {
    FakeRing ring;
    RingReader reader(&ring.meta, ring.data, kDataSize);
    TaskClockAnchor anchor{0, 0, true};

    ring.sample(1'000, 500);
    ring.switch_out(1'200);  // ran 200 ns more: 700
    ring.switch_in(5'000);   // 3.8 µs elsewhere, not charged
    RingDrain seen = reader.drain(anchor);
    CHECK(seen.samples == 1);
    CHECK(seen.switches == 2);
    CHECK(seen.lost == 0);
    CHECK(reader.tail() == ring.meta.data_head);
    CHECK(ring.meta.data_tail == ring.meta.data_head);  // the kernel may reuse the space
    CHECK(anchor.at(5'300) == 700 + 300);

    ring.switch_out(6'000);
    (void)reader.drain(anchor);
    CHECK(anchor.at(9'000) == 1'700);  // switched out: the clock stands still
    ring.sample(10'000, 1'750);        // the kernel's own value wins
    (void)reader.drain(anchor);
    CHECK(anchor.at(10'100) == 1'850);
}

TEST_CASE("records that wrap around the end of the data area are read whole", "[scheduler][unit]") {
    FakeRing ring;
    // Start 8 bytes before the end: the sample's two words land after the wrap.
    ring.meta.data_head = ring.meta.data_tail = 10 * kDataSize - 8;
    RingReader reader(&ring.meta, ring.data, kDataSize);
    TaskClockAnchor anchor{0, 0, true};
    ring.sample(42'000, 7'000);
    RingDrain seen = reader.drain(anchor);
    CHECK(seen.samples == 1);
    CHECK(anchor.cpu == 7'000);
    CHECK(anchor.wall == 42'000);
}

TEST_CASE("lost and unknown records are counted or skipped by their size", "[scheduler][unit]") {
    FakeRing ring;
    RingReader reader(&ring.meta, ring.data, kDataSize);
    TaskClockAnchor anchor{0, 0, true};
    ring.put(PERF_RECORD_THROTTLE, 0, {1, 2, 3, 4});  // time, id, stream_id, sample_id
    ring.put(PERF_RECORD_LOST, 0, {99, 5, 3});        // id, lost, sample_id
    ring.sample(2'000, 1'000);
    RingDrain seen = reader.drain(anchor);
    CHECK(seen.lost == 5);
    CHECK(seen.samples == 1);
    CHECK(anchor.cpu == 1'000);
}

TEST_CASE("a drain reports a ring too full for another record", "[scheduler][unit]") {
    FakeRing ring;
    RingReader reader(&ring.meta, ring.data, kDataSize);
    TaskClockAnchor anchor{0, 0, true};
    ring.sample(1, 1);
    CHECK_FALSE(reader.drain(anchor).full);
    while (ring.meta.data_head - reader.tail() + 24 <= kDataSize) ring.sample(2, 2);
    CHECK(reader.drain(anchor).full);
    CHECK_FALSE(reader.drain(anchor).full);  // freed
}

TEST_CASE("a malformed record ends the drain as lost instead of looping", "[scheduler][unit]") {
    FakeRing ring;
    RingReader reader(&ring.meta, ring.data, kDataSize);
    TaskClockAnchor anchor{0, 0, true};
    ring.put(PERF_RECORD_SAMPLE, 0, {1, 2});
    std::uint16_t zero = 0;
    std::memcpy(ring.data + offsetof(perf_event_header, size), &zero, sizeof zero);
    RingDrain seen = reader.drain(anchor);
    CHECK(seen.lost == 1);
    CHECK(reader.tail() == ring.meta.data_head);
}

TEST_CASE("records older than the anchor do not move it", "[scheduler][unit]") {
    TaskClockAnchor anchor{5'000, 100'000, true};
    anchor.on_switch(90'000, true);
    anchor.on_sample(95'000, 4'000);
    CHECK(anchor.running);
    CHECK(anchor.at(100'500) == 5'500);
}
