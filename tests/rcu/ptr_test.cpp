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

namespace {
// A C-style struct with a plain pointer field.
struct CServer {
    int id;
    int* config;
};
}  // namespace

TEST_CASE("PtrView publishes through an existing pointer slot", "[rcu][unit]") {
    int a = 1, b = 2, c = 3;
    CServer server{7, &a};
    quiesce::rcu::PtrView<int> view(server.config);
    CHECK(view.load() == &a);
    view.store(&b);
    CHECK(server.config == &b);  // the slot itself changed
    CHECK(view.exchange(&c) == &b);
    CHECK(view.load_owned() == &c);
    int* expected = &a;
    CHECK_FALSE(view.compare_exchange(expected, &b));
    CHECK(expected == &c);
    CHECK(view.compare_exchange(expected, &b));
    CHECK(server.config == &b);
    CHECK(server.id == 7);  // neighbours untouched
}
