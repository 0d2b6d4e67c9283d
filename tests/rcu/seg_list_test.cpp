// Unit tests of the segmented callback list (rcu/src/seg_list.*).
#include <catch2/catch.hpp>

#include <vector>

#include "seg_list.hpp"

using quiesce::rcu::Head;
using quiesce::rcu::detail::SegList;

namespace {

struct Node : Head {
    int id = 0;
};

std::vector<int> drain_done(SegList& list) {
    std::vector<int> ids;
    while (Head* h = list.pop_done()) ids.push_back(static_cast<Node*>(h)->id);
    return ids;
}

}  // namespace

TEST_CASE("callbacks become done only when their grace period has completed", "[rcu][unit]") {
    SegList list;
    Node a, b, c;
    a.id = 1;
    b.id = 2;
    c.id = 3;
    list.enqueue(&a);
    list.enqueue(&b);
    CHECK(list.accelerate(4) == 4);
    list.enqueue(&c);
    CHECK(list.accelerate(6) == 6);  // c waits for a later grace period

    list.advance(2);
    CHECK(list.done_empty());
    list.advance(4);
    CHECK(drain_done(list) == std::vector<int>{1, 2});
    CHECK(list.size() == 1);
    list.advance(6);
    CHECK(drain_done(list) == std::vector<int>{3});
    CHECK(list.empty());
}

TEST_CASE("a third cookie merges into the newest waiting segment, keeping order", "[rcu][unit]") {
    SegList list;
    Node n[4];
    for (int i = 0; i < 4; ++i) n[i].id = i;
    list.enqueue(&n[0]);
    (void)list.accelerate(2);
    list.enqueue(&n[1]);
    (void)list.accelerate(4);
    list.enqueue(&n[2]);
    CHECK(list.accelerate(6) == 6);  // joins READY, which now waits for 6
    list.enqueue(&n[3]);
    CHECK(list.accelerate(6) == 6);

    list.advance(4);  // READY (now cookie 6) is not done at 4
    CHECK(drain_done(list) == std::vector<int>{0});
    list.advance(6);
    CHECK(drain_done(list) == std::vector<int>{1, 2, 3});
}

TEST_CASE("callbacks without a cookie never become done", "[rcu][unit]") {
    SegList list;
    Node a;
    list.enqueue(&a);
    list.advance(1000);
    CHECK(list.done_empty());
    CHECK_FALSE(list.next_empty());
}

TEST_CASE("take_all hands over every callback in order", "[rcu][unit]") {
    SegList from, to;
    Node n[3];
    for (int i = 0; i < 3; ++i) n[i].id = i;
    from.enqueue(&n[0]);
    (void)from.accelerate(2);
    from.advance(2);  // n0 done
    from.enqueue(&n[1]);
    from.enqueue(&n[2]);
    Head* last = nullptr;
    Head* first = from.take_all(&last);
    CHECK(from.empty());
    CHECK(first == &n[0]);
    CHECK(last == &n[2]);
    for (Head* h = first; h != nullptr;) {
        Head* next = h->next;
        to.enqueue(h);
        h = next;
    }
    CHECK(to.size() == 3);
    (void)to.accelerate(8);
    to.advance(8);
    CHECK(drain_done(to) == std::vector<int>{0, 1, 2});
    Head* none = &n[0];
    CHECK(to.take_all(&none) == nullptr);
    CHECK(none == nullptr);
}

TEST_CASE("pop_done on the last element resets every tail", "[rcu][unit]") {
    SegList list;
    Node a, b;
    list.enqueue(&a);
    (void)list.accelerate(2);
    list.advance(2);
    CHECK(list.pop_done() == &a);
    CHECK(list.empty());
    list.enqueue(&b);  // must link from the head again, not from a's next field
    (void)list.accelerate(4);
    list.advance(4);
    CHECK(list.pop_done() == &b);
    CHECK(list.pop_done() == nullptr);
}
