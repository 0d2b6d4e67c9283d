// rcu::Ptr publication operations.
#include <catch2/catch.hpp>

#include <quiesce/rcu/ptr.hpp>

using quiesce::rcu::Ptr;

TEST_CASE("Ptr publishes, exchanges and compares-and-exchanges", "[rcu][unit]") {
    int a = 1, b = 2, c = 3;
    Ptr<int> p;
    CHECK(p.load() == nullptr);
    p.store(&a);
    CHECK(p.load() == &a);
    CHECK(p.load_owned() == &a);
    CHECK(p.exchange(&b) == &a);
    CHECK(*p.load() == 2);

    int* expected = &a;  // stale
    CHECK_FALSE(p.compare_exchange(expected, &c));
    CHECK(expected == &b);  // told the current value
    CHECK(p.compare_exchange(expected, &c));
    CHECK(p.load() == &c);
}

TEST_CASE("Ptr starts with the pointer it is given", "[rcu][unit]") {
    int x = 7;
    Ptr<int> p(&x);
    CHECK(p.load() == &x);
}
