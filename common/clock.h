/*
 * clock.h: monotonic time in nanoseconds.
 *
 * Deadlines on the wire are relative budgets (PROTOCOL.md §Deadlines); each
 * side turns them into absolute points on its own monotonic clock, which
 * never jumps with wall-clock changes. Thread-safe.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef CHAND_CLOCK_H
#define CHAND_CLOCK_H

#include <stdint.h>

#define NSEC_PER_USEC 1000LL
#define NSEC_PER_MSEC 1000000LL
#define NSEC_PER_SEC 1000000000LL

/* CLOCK_MONOTONIC now, in nanoseconds. */
int64_t clock_now_ns(void);

#endif
