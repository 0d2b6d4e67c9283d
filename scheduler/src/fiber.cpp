// Fiber-backed groups: spawning, the resume event, and this_fiber's
// suspension points (yield, sleep, park, RCU wait).
//
// Threading: see fiber_state.hpp. A fiber runs inside its group's resume
// event, so it is exclusive with the group's other events; a suspension ends
// that event (kAgain after yield(), kDone when it waits for a wake-up).
#include <quiesce/base/assert.hpp>
#include <quiesce/base/misuse.hpp>
#include <quiesce/rcu/domain.hpp>
#include <quiesce/rcu/read_lock.hpp>
#include <quiesce/scheduler/fiber.hpp>
#include <quiesce/scheduler/need_resched.hpp>

#include "fiber_state.hpp"
#include "group_core.hpp"
#include "log.hpp"
#include "loop.hpp"
#include "scheduler_impl.hpp"

namespace quiesce::sched {
namespace detail {
namespace {

void fiber_entry(void* arg) {
    auto* state = static_cast<FiberState*>(arg);
    state->main();
}

/// The spawned fiber running on this thread, or null. Through
/// FiberContext::current() (not inlined): never a cached thread-local.
FiberState* current_fiber() noexcept {
    FiberContext* context = FiberContext::current();
    if (context == nullptr) return nullptr;
    GroupCore* group = Loop::current_group();
    return group != nullptr && group->fiber != nullptr && group->fiber->context.get() == context
               ? group->fiber
               : nullptr;
}

FiberState& require_fiber(const char* what) {
    FiberState* state = current_fiber();
    QUIESCE_CHECK(state != nullptr, what);
    return *state;
}

/// Every suspension point: a quiescent state of the loop, and a possible
/// migration, so no read section may be open. The ReadLock check is on in
/// every build (a thread-local load): a section carried to another thread
/// would unlock that thread's counter and leave this one's held for ever.
void suspend(FiberState& state) {
    QUIESCE_ASSERT(state.read_sections == 0,
                   "a fiber suspended inside a sched::ReadSection (RCU reference held across a "
                   "quiescent state)");
    if (__builtin_expect(rcu::in_any_read_section(), 0)) {
        base::misuse("fiber \"" + state.group.name +
                     "\" reached a suspension point (yield, sleep_for, park, rcu_wait or a wait "
                     "for I/O) inside an rcu::ReadLock (or read_lock()): the fiber may resume on "
                     "another thread, where the section cannot end. End the section before "
                     "suspending; a fiber reads RCU data between suspension points without any "
                     "lock (its loop is a QSBR reader)");
    }
    FiberContext::suspend();
}

}  // namespace

FiberState::FiberState(GroupCore& owner, std::function<void()> body)
    : group(owner), main(std::move(body)) {}

Status FiberState::run() {
    if (ended) return Status::kDone;
    if (!context) {
        context = group.scheduler->acquire_fiber(group.name, &fiber_entry, this);
        stack_reserved = false;  // consumed
    }
    yielded = false;
    context->resume();
    if (!context->finished()) return yielded ? Status::kAgain : Status::kDone;
    ended = true;
    if (std::exception_ptr error = context->take_exception()) {
        try {
            std::rethrow_exception(error);
        } catch (const std::exception& e) {
            logger().error("fiber \"{}\" (#{}) ended by an exception: {}", group.name, group.id,
                           e.what());
        } catch (...) {
            logger().error("fiber \"{}\" (#{}) ended by an exception", group.name, group.id);
        }
    }
    group.close();  // its function returned: the group ends with it
    return Status::kDone;
}

bool FiberState::post_resume() noexcept {
    group.ref();
    return Group::adopt(&group).post(resume);
}

void FiberState::finish() noexcept {
    ended = true;
    if (!context) {
        if (stack_reserved) group.scheduler->unreserve_fiber_stack();  // it never ran
        stack_reserved = false;
        return;
    }
    context->cancel();  // unwinds a suspended fiber's stack, on this loop
    group.scheduler->release_fiber(std::move(context));
}

}  // namespace detail

bool FiberWaker::wake() const noexcept {
    if (state_ == nullptr) return false;
    // [P1] release, pairs with the acquire exchange in park().
    state_->permit.store(true, std::memory_order_release);
    return group_.post(state_->resume);
}

Group Scheduler::spawn(std::function<void()> main, GroupOptions options) {
    // The stack first: a spawn that cannot get one fails here, at the call
    // site, not later on a loop.
    impl_->reserve_fiber_stack();
    Group group;
    try {
        group = make_group(std::move(options));
        detail::GroupCore* core = group.core();
        core->fiber = new detail::FiberState(*core, std::move(main));
    } catch (...) {
        impl_->unreserve_fiber_stack();
        throw;
    }
    group.core()->fiber->stack_reserved = true;
    group.post(group.core()->fiber->resume);  // starts it on its loop
    return group;
}

namespace this_fiber {

bool active() noexcept {
    return detail::current_fiber() != nullptr;
}

void yield() {
    detail::FiberState& state = detail::require_fiber("this_fiber::yield() outside a fiber");
    state.yielded = true;
    detail::suspend(state);
}

bool yield_if_needed() {
    if (!need_resched()) return false;
    yield();
    return true;
}

void sleep_for(std::chrono::nanoseconds duration) {
    detail::FiberState& state = detail::require_fiber("this_fiber::sleep_for() outside a fiber");
    state.sleep_done = false;
    detail::FiberState* target = &state;
    state.group.ref();
    Group group = Group::adopt(&state.group);
    Timer timer = group.after(duration, [target] {
        target->sleep_done = true;  // runs as an event of the group: exclusive with the fiber
        target->post_resume();
    });
    struct Cancel {
        Timer& timer;
        ~Cancel() { timer.cancel(); }  // unwinding: the timer must not touch a dead fiber
    } cancel{timer};
    while (!state.sleep_done) detail::suspend(state);
}

void park() {
    detail::FiberState& state = detail::require_fiber("this_fiber::park() outside a fiber");
    // [P1] acquire, pairs with the release in FiberWaker::wake().
    while (!state.permit.exchange(false, std::memory_order_acquire)) detail::suspend(state);
}

FiberWaker waker() {
    detail::FiberState& state = detail::require_fiber("this_fiber::waker() outside a fiber");
    state.group.ref();
    return FiberWaker(Group::adopt(&state.group), &state);
}

void rcu_wait() {
    rcu::Domain& domain = rcu::Domain::default_domain();
    rcu::GpCookie cookie = domain.start_grace_period();
    if (domain.poll(cookie)) return;
    // A callback queued now runs after a grace period that began after this
    // point, so once it has run, poll(cookie) holds. The waiter is the
    // callback's: it keeps the group (and so this fiber's state) alive.
    struct Waiter : rcu::Head {
        detail::FiberState* state = nullptr;
        Group group;
    };
    detail::FiberState& state = detail::require_fiber("this_fiber::rcu_wait() outside a fiber");
    auto* waiter = new Waiter;
    waiter->state = &state;
    state.group.ref();
    waiter->group = Group::adopt(&state.group);
    domain.call(waiter, [](rcu::Head* head) noexcept {
        auto* self = static_cast<Waiter*>(head);
        self->group.post(self->state->resume);  // fails harmlessly if the group closed
        delete self;
    });
    while (!domain.poll(cookie)) detail::suspend(state);
}

}  // namespace this_fiber

ReadSection::ReadSection() noexcept {
#if QUIESCE_DEBUG
    if (detail::FiberState* state = detail::current_fiber()) ++state->read_sections;
#endif
}

ReadSection::~ReadSection() {
#if QUIESCE_DEBUG
    if (detail::FiberState* state = detail::current_fiber()) --state->read_sections;
#endif
}

}  // namespace quiesce::sched
