// Everything rcu/ offers: domains, QSBR and preemptible readers, Ptr, HashMap.
#pragma once

#include <quiesce/base/config.hpp>

#include <quiesce/rcu/cookie.hpp>
#include <quiesce/rcu/domain.hpp>
#include <quiesce/rcu/hash_map.hpp>
#include <quiesce/rcu/hash_table.hpp>
#include <quiesce/rcu/head.hpp>
#include <quiesce/rcu/ptr.hpp>
#include <quiesce/rcu/qsbr.hpp>
#include <quiesce/rcu/read_lock.hpp>
