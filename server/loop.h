/*
 * loop.h: the event loop's driver: event_base_dispatch, with adaptive
 * busy polling before the loop sleeps.
 *
 * A loop that sleeps in epoll_wait pays a wake-up for the next request:
 * the kernel's, and on a virtual machine whose idle vCPU halts, the
 * host's (30-40 us measured on this project's CI machine, more than
 * chand's whole work for a request). With a poll limit, once the loop has
 * run its callbacks it keeps polling without blocking, for up to a window,
 * before it sleeps; a request that comes within the window is read at
 * once. Each request seen while polling starts the window again.
 *
 * The window adapts as Linux's cpuidle-haltpoll does: it starts at 0;
 * when the loop slept and was woken within the limit, polling longer
 * would have caught the wake-up, so the window doubles (from a quarter of
 * the limit, at most the limit); when the loop slept longer than the
 * limit, it halves, and below a quarter of the limit it is 0. It halves
 * too when the scheduler took the CPU from the loop while it polled: more
 * threads wanted the CPUs than there are (a cluster's nodes beside their
 * clients on two), and polling took CPU from them. A server whose requests
 * come further apart than the limit so stops polling, and an idle one
 * costs nothing: the CPU goes to polling only while it pays.
 *
 * A poller is work with no file descriptor of its own (another thread's
 * queue) that the loop looks at on each pass while it polls, so that its
 * producer need not wake the loop then: a system call saved on each side.
 *
 * Ownership: a loop drives an event base it does not own. Thread-safety:
 * every function belongs to the thread that runs the loop, but
 * loop_window_next and loop_window_shrink, which are pure. Errors: loop_new returns -1 when out
 * of memory; loop_run returns -1 when the event base failed.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef CHAND_LOOP_H
#define CHAND_LOOP_H

#include <stdbool.h>
#include <stdint.h>

#include <event2/event.h>

struct loop;

struct loop_stats {
	uint64_t poll_hits;		/* polls that found work: wake-ups saved */
	uint64_t waits;			/* iterations that waited in the kernel for an event */
	uint64_t poll_preempted;	/* polling phases the scheduler cut into: window halved */
	int64_t poll_ns;		/* time spent polling (CPU, with nothing to do) */
	int64_t window_ns;		/* the current window */
};

/* limit_ns 0: never poll, as event_base_dispatch; nor on a machine with one CPU. */
int loop_new(struct loop **out, struct event_base *base, int64_t limit_ns);
void loop_free(struct loop *l);
/* A new limit (SIGHUP); the window starts again from 0. */
void loop_set_limit(struct loop *l, int64_t limit_ns);
/*
 * Run the base until event_base_loopexit or event_base_loopbreak ends it,
 * or no event is left. Returns 0, or -1 when the event base failed.
 */
int loop_run(struct loop *l);
void loop_stats(const struct loop *l, struct loop_stats *st);

/*
 * The loop's one poller (NULL: none). While the loop polls it calls
 * poll(arg, true) on every pass; before it stops polling, poll(arg, false):
 * from then on the producer must wake the loop itself, as it does when the
 * loop does not poll. poll returns true when it found work (ran callbacks);
 * those may end the loop as any callback does. Set it before loop_run;
 * arg must outlive loop_run.
 */
typedef bool loop_poll_fn(void *arg, bool polling);
void loop_set_poller(struct loop *l, loop_poll_fn *poll, void *arg);

/* The window after a sleep: idle_ns from the last work to the wake-up. */
int64_t loop_window_next(int64_t window_ns, int64_t limit_ns, int64_t idle_ns);
/* The window halved, or 0 below a quarter of the limit. */
int64_t loop_window_shrink(int64_t window_ns, int64_t limit_ns);

#endif
