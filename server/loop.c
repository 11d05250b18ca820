/*
 * loop.c: the event loop's driver, with adaptive busy polling (loop.h).
 *
 * A loop iteration is event_base_loop(EVLOOP_ONCE): it may sleep, then runs
 * what is ready. Polling is event_base_loop(EVLOOP_NONBLOCK), which runs
 * whatever is ready until a poll finds nothing. Whether a poll found work
 * is the base's own count: the most callbacks active at once since it was
 * last cleared (event_base_get_max_events), so every kind of event counts
 * (a request, a link's reply, a pool's completion, a timer) and the driver
 * needs to know nothing of what the callbacks are.
 *
 * Preemption is getrusage's involuntary context switches, read once at
 * each end of polling. Without that check, three nodes of a cluster and
 * their clients on two vCPUs polled CPU away from each other: workload 11's
 * select across 3 nodes went from 157 us (p50, no polling) to 214; with it,
 * 169-202. sched_yield on an empty poll did better there (97) but halved the
 * fan-out's jobs/s with 2 workers: a yielding loop waits out a CPU-bound
 * worker's whole time slice before it can feed the pool again.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <stdbool.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include "clock.h"
#include "loop.h"

struct loop {
	struct event_base *base;
	int64_t limit_ns;
	int64_t window_ns;
	int64_t idle_since;		/* when the loop last found no work */
	loop_poll_fn *poller;
	void *poller_arg;
	bool poller_on;			/* poller called with true since its last false */
	struct loop_stats st;
};

/* On one CPU, polling only keeps whoever would send the work from running: no polling there. */
static int64_t
loop_limit(int64_t limit_ns)
{
	return limit_ns > 0 && sysconf(_SC_NPROCESSORS_ONLN) > 1 ? limit_ns : 0;
}

int
loop_new(struct loop **out, struct event_base *base, int64_t limit_ns)
{
	struct loop *l = calloc(1, sizeof *l);

	*out = NULL;
	if (l == NULL)
		return -1;
	l->base = base;
	l->limit_ns = loop_limit(limit_ns);
	*out = l;
	return 0;
}

void
loop_free(struct loop *l)
{
	free(l);
}

void
loop_set_limit(struct loop *l, int64_t limit_ns)
{
	l->limit_ns = loop_limit(limit_ns);
	l->window_ns = 0;
	l->idle_since = clock_now_ns();	/* not kept while the limit was 0 */
}

void
loop_set_poller(struct loop *l, loop_poll_fn *poll, void *arg)
{
	l->poller = poll;
	l->poller_arg = arg;
	l->poller_on = false;
}

/* One pass of the poller while polling; true when it found work. */
static bool
poller_pass(struct loop *l)
{
	if (l->poller == NULL)
		return false;
	l->poller_on = true;
	return l->poller(l->poller_arg, true);
}

/* Polling ends: the poller's producer wakes the loop again. */
static void
poller_end(struct loop *l)
{
	if (l->poller_on) {
		l->poller_on = false;
		(void)l->poller(l->poller_arg, false);
	}
}

void
loop_stats(const struct loop *l, struct loop_stats *st)
{
	*st = l->st;
	st->window_ns = l->window_ns;
}

/* Where a growing window starts, and below which a shrinking one is 0. */
static int64_t
window_start(int64_t limit_ns)
{
	return limit_ns / 4 > 0 ? limit_ns / 4 : limit_ns;
}

int64_t
loop_window_next(int64_t window_ns, int64_t limit_ns, int64_t idle_ns)
{
	int64_t start = window_start(limit_ns);

	if (limit_ns <= 0)
		return 0;
	if (idle_ns <= window_ns)
		return window_ns;	/* the window was long enough */
	if (idle_ns <= limit_ns) {	/* a longer window would have caught this wake-up */
		window_ns = window_ns < start ? start : window_ns * 2;
		return window_ns < limit_ns ? window_ns : limit_ns;
	}
	return loop_window_shrink(window_ns, limit_ns);	/* slept past the limit: polling was waste */
}

int64_t
loop_window_shrink(int64_t window_ns, int64_t limit_ns)
{
	window_ns /= 2;
	return window_ns < window_start(limit_ns) ? 0 : window_ns;
}

/* Times the scheduler took the CPU from this thread (not counting its own sleeps). */
static long
loop_preempted(void)
{
	struct rusage ru;

	return getrusage(RUSAGE_THREAD, &ru) == 0 ? ru.ru_nivcsw : 0;
}

static bool
loop_ended(struct event_base *base)
{
	return event_base_got_exit(base) || event_base_got_break(base);
}

/* Did a callback become active since the last call? Clears the count. */
static bool
loop_worked(struct event_base *base)
{
	return event_base_get_max_events(base, EVENT_BASE_COUNT_ACTIVE, 1) > 0;
}

/*
 * Poll for l->window_ns after the last work found, at now. Returns 0 when
 * the window passed with nothing to do, 1 when the loop was ended, -1 when
 * the base failed.
 */
static int
loop_poll(struct loop *l, int64_t now)
{
	int64_t last = now;
	bool worked;
	long preempted = l->window_ns > 0 ? loop_preempted() : 0;

	while (now - last < l->window_ns) {
		if (event_base_loop(l->base, EVLOOP_NONBLOCK) < 0)
			return -1;
		/* both, always; the poller first, so what its callbacks make active counts in this pass */
		worked = poller_pass(l);
		worked = loop_worked(l->base) || worked;
		/* after the poller: its callbacks' loopbreak is lost to the next event_base_loop */
		if (loop_ended(l->base))
			return 1;
		if (worked) {
			l->st.poll_hits++;
			l->st.poll_ns += now - last;	/* polled in vain until this poll */
			last = now = clock_now_ns();
		} else {
			now = clock_now_ns();
		}
	}
	l->st.poll_ns += now - last;
	l->idle_since = last;
	if (l->window_ns > 0 && loop_preempted() != preempted) {
		l->st.poll_preempted++;
		l->window_ns = loop_window_shrink(l->window_ns, l->limit_ns);
	}
	return 0;
}

int
loop_run(struct loop *l)
{
	int64_t now;
	int rc;

	l->idle_since = clock_now_ns();
	(void)loop_worked(l->base);
	for (;;) {
		if ((rc = event_base_loop(l->base, EVLOOP_ONCE)) < 0)
			return -1;
		if (rc == 1)
			return 0;	/* no event left */
		l->st.waits++;
		if (loop_ended(l->base))
			return 0;
		if (l->limit_ns == 0)
			continue;	/* no polling: nothing to time or count */
		now = clock_now_ns();
		l->window_ns = loop_window_next(l->window_ns, l->limit_ns, now - l->idle_since);
		(void)loop_worked(l->base);	/* what this iteration ran is not a poll's */
		rc = loop_poll(l, now);
		poller_end(l);	/* before the loop sleeps or returns */
		if (rc != 0)
			return rc < 0 ? -1 : 0;
		if (loop_ended(l->base))
			return 0;	/* poller_end's callbacks ended it */
	}
}
