// Included first by every public header: what quiesce's headers need of the
// compiler, said once and clearly.
#pragma once

#if !defined(__cplusplus) || __cplusplus < 202002L
#error "quiesce needs C++20: compile with -std=c++20 (or later)"
#endif
