/*
 * test_loop.c: the event loop's driver (server/loop.c) on an event base of
 * its own: the polling window's policy, and loop_run against a helper
 * thread that bounces bytes off the loop through a socketpair. The loop
 * must run every callback as event_base_dispatch would, end when asked,
 * poll only with a limit, and stop polling once work stops coming.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "clock.h"
#include "log.h"
#include "testutil.h"
#include "server/loop.h"

#define ROUNDS	2000
#define IDLE_MS	100			/* the loop left with nothing to do this long */
#define LIMIT_NS 1000000		/* the most busy_poll_us allows: 1 ms */

static void
test_window(void)
{
	const int64_t L = 100000;	/* 100 us: start 25 us */
	int64_t w = 0;

	CU_ASSERT_EQUAL(loop_window_next(0, 0, 10), 0);	/* no limit: never polls */
	CU_ASSERT_EQUAL(loop_window_next(5000, 0, 10), 0);
	/* woken within the limit: grow from a quarter of it, doubling, up to it */
	CU_ASSERT_EQUAL(w = loop_window_next(w, L, 30000), 25000);
	CU_ASSERT_EQUAL(w = loop_window_next(w, L, 30000), 50000);
	CU_ASSERT_EQUAL(w = loop_window_next(w, L, 60000), 100000);
	CU_ASSERT_EQUAL(w = loop_window_next(w, L, 90000), 100000);
	/* woken within the window: it was long enough, as it is */
	CU_ASSERT_EQUAL(loop_window_next(50000, L, 20000), 50000);
	/* slept past the limit: halve, and under a quarter of it stop */
	CU_ASSERT_EQUAL(w = loop_window_next(w, L, 200000), 50000);
	CU_ASSERT_EQUAL(w = loop_window_next(w, L, 200000), 25000);
	CU_ASSERT_EQUAL(w = loop_window_next(w, L, 200000), 0);
	CU_ASSERT_EQUAL(w = loop_window_next(w, L, 200000), 0);
	/* and from 0 again once wake-ups come close */
	CU_ASSERT_EQUAL(loop_window_next(0, L, L), 25000);
	CU_ASSERT_EQUAL(loop_window_next(0, 3, 2), 3);	/* a limit too small to quarter */
	/* preempted while polling: halve as after a long sleep */
	CU_ASSERT_EQUAL(loop_window_shrink(L, L), 50000);
	CU_ASSERT_EQUAL(loop_window_shrink(50000, L), 25000);
	CU_ASSERT_EQUAL(loop_window_shrink(25000, L), 0);
	CU_ASSERT_EQUAL(loop_window_shrink(0, L), 0);
}

struct bounce {
	struct event_base *base;
	struct loop *loop;
	struct event *rd, *idle;
	int fd[2];			/* [0] the loop's end, [1] the thread's */
	size_t echoed;
	bool eof, idle_done;
	struct loop_stats at_eof;	/* when the thread hung up */
};

/* The loop's end: echo each byte; at EOF, leave the loop idle IDLE_MS, then end it. */
static void
bounce_read(evutil_socket_t fd, short what, void *arg)
{
	struct bounce *b = arg;
	struct timeval tv = { 0, IDLE_MS * 1000 };
	char buf[64];
	ssize_t n = read(fd, buf, sizeof buf);

	if (n > 0) {
		b->echoed += (size_t)n;
		CU_ASSERT_EQUAL(write(fd, buf, (size_t)n), n);
		return;
	}
	b->eof = true;
	event_del(b->rd);
	loop_stats(b->loop, &b->at_eof);
	evtimer_add(b->idle, &tv);
}

static void
bounce_idle(evutil_socket_t fd, short what, void *arg)
{
	struct bounce *b = arg;

	b->idle_done = true;
	event_base_loopexit(b->base, NULL);
}

/* The helper's end: a byte out, its echo back, ROUNDS times, then hang up. */
static void *
bounce_thread(void *arg)
{
	struct bounce *b = arg;
	char c = 'x';

	for (int i = 0; i < ROUNDS; i++) {
		if (write(b->fd[1], &c, 1) != 1 || read(b->fd[1], &c, 1) != 1)
			break;
	}
	shutdown(b->fd[1], SHUT_WR);
	return NULL;
}

static void
bounce_run(int64_t limit_ns, struct loop_stats *end, struct loop_stats *at_eof)
{
	struct bounce b = { 0 };
	pthread_t t;

	CU_ASSERT_FATAL((b.base = event_base_new()) != NULL);
	CU_ASSERT_FATAL(loop_new(&b.loop, b.base, limit_ns) == 0);
	CU_ASSERT_FATAL(socketpair(AF_UNIX, SOCK_STREAM, 0, b.fd) == 0);
	CU_ASSERT_FATAL(evutil_make_socket_nonblocking(b.fd[0]) == 0);
	b.rd = event_new(b.base, b.fd[0], EV_READ | EV_PERSIST, bounce_read, &b);
	b.idle = evtimer_new(b.base, bounce_idle, &b);
	CU_ASSERT_FATAL(b.rd != NULL && b.idle != NULL && event_add(b.rd, NULL) == 0);
	CU_ASSERT_FATAL(pthread_create(&t, NULL, bounce_thread, &b) == 0);
	CU_ASSERT_EQUAL(loop_run(b.loop), 0);
	pthread_join(t, NULL);
	CU_ASSERT_EQUAL(b.echoed, ROUNDS);
	CU_ASSERT(b.eof);
	CU_ASSERT(b.idle_done);
	loop_stats(b.loop, end);
	*at_eof = b.at_eof;
	event_free(b.rd);
	event_free(b.idle);
	close(b.fd[0]);
	close(b.fd[1]);
	loop_free(b.loop);
	event_base_free(b.base);
}

/* No limit: every callback runs, and the loop never polls. */
static void
test_no_poll(void)
{
	struct loop_stats end, eof;

	bounce_run(0, &end, &eof);
	CU_ASSERT(eof.waits >= ROUNDS);	/* each byte comes after the last echo: a wait each */
	CU_ASSERT_EQUAL(end.poll_hits, 0);
	CU_ASSERT_EQUAL(end.poll_ns, 0);
	CU_ASSERT_EQUAL(end.window_ns, 0);
}

/*
 * With a limit, polls find the helper's bytes: of 2,000 bytes between two
 * threads, each sent within microseconds of the last echo, fewer than half
 * need a wait (one only when the helper took longer than the window, at
 * least 250 us). Once the helper hangs up, the loop polls at most one window
 * more and then sleeps through the idle time: polling never takes IDLE_MS.
 */
static void
test_poll(void)
{
	struct loop_stats end, eof;

	bounce_run(LIMIT_NS, &end, &eof);
	if (sysconf(_SC_NPROCESSORS_ONLN) < 2) {	/* no polling on one CPU */
		CU_ASSERT_EQUAL(end.poll_hits, 0);
		return;
	}
	CU_ASSERT(eof.waits < ROUNDS / 2);
	CU_ASSERT(end.poll_hits >= 1);
	CU_ASSERT(end.window_ns >= 0 && end.window_ns <= LIMIT_NS);
	CU_ASSERT(end.waits > eof.waits);	/* it slept in the idle time */
	CU_ASSERT(end.poll_ns - eof.poll_ns < IDLE_MS * 1000000LL / 2);
}

static void
end_now(evutil_socket_t fd, short what, void *arg)
{
	event_base_loopbreak(arg);
}

/* loop_run ends on a break as on an exit, and at once when no event is left; a new limit restarts the window. */
static void
test_end(void)
{
	struct event_base *base = event_base_new();
	struct timeval tv = { 0, 1000 };
	struct loop *l = NULL;
	struct loop_stats st;
	struct event *ev;

	CU_ASSERT_FATAL(base != NULL && loop_new(&l, base, LIMIT_NS) == 0);
	CU_ASSERT_EQUAL(loop_run(l), 0);	/* nothing registered */
	CU_ASSERT_FATAL((ev = evtimer_new(base, end_now, base)) != NULL);
	CU_ASSERT_FATAL(evtimer_add(ev, &tv) == 0);
	CU_ASSERT_EQUAL(loop_run(l), 0);
	loop_set_limit(l, LIMIT_NS / 2);
	loop_stats(l, &st);
	CU_ASSERT_EQUAL(st.window_ns, 0);
	event_free(ev);
	loop_free(l);
	event_base_free(base);
}

static void
register_suites(void)
{
	CU_pSuite s = test_suite("loop", NULL, NULL);

	test_add(s, "the polling window grows, halves and stops; preempted, halves", test_window);
	test_add(s, "no limit: no polling, every callback run", test_no_poll);
	test_add(s, "a limit: polls find work, and stop when it stops", test_poll);
	test_add(s, "loop_run ends on a break, and with no events", test_end);
}

int
main(int argc, char **argv)
{
	log_set_level(LOG_LEVEL_WARN);
	return test_main(argc, argv, register_suites);
}
