/*
 * test_pool.c: the worker pool on its own, with an event base of its own
 * standing in for chand's loop thread. Every item's done callback must run
 * exactly once, on the loop thread, after its work ran on a worker (or
 * with ran = false, its work never run, when pool_free finds it queued);
 * no wake-up may be lost, whether the workers are busy, spinning or asleep,
 * nor when chand's loop driver (loop.c) takes the results while it polls
 * and hands the wake-ups back to the eventfd each time it stops.
 *
 * pthread_join is wrapped (-Wl,--wrap=pthread_join): pool_free calls it
 * only after it has told the workers to stop, which is the moment the
 * pending-items test opens the gate its first item waits at.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <pthread.h>
#include <semaphore.h>
#include <stdlib.h>

#include <event2/event.h>

#include "log.h"
#include "testutil.h"
#include "server/loop.h"
#include "server/pool.h"

#define NITEMS	2000
#define WATCHDOG_S 10			/* a lost wake-up fails instead of hanging */

struct titem {
	struct pool_item pi;		/* first: the pool hands this back */
	struct harness *h;
	unsigned works, dones;
	bool ran, work_on_loop, done_off_loop;
};

struct harness {
	struct event_base *base;
	struct event *watchdog;
	struct pool *pool;
	pthread_t loop;
	struct titem *items;
	size_t nitems, submitted, finished;
	size_t burst;			/* resubmit this many at a time from done; 0: none */
	bool timed_out;
};

static void
watchdog_cb(evutil_socket_t fd, short what, void *arg)
{
	struct harness *h = arg;

	h->timed_out = true;
	event_base_loopbreak(h->base);
}

static void
harness_init(struct harness *h, unsigned nthreads, size_t nitems)
{
	struct timeval tv = { WATCHDOG_S, 0 };

	*h = (struct harness){ .loop = pthread_self(), .nitems = nitems };
	h->base = event_base_new();
	CU_ASSERT_FATAL(h->base != NULL);
	h->watchdog = evtimer_new(h->base, watchdog_cb, h);
	CU_ASSERT_FATAL(h->watchdog != NULL && evtimer_add(h->watchdog, &tv) == 0);
	CU_ASSERT_FATAL(pool_new(&h->pool, h->base, nthreads) == 0);
	h->items = calloc(nitems + 1, sizeof *h->items);
	CU_ASSERT_FATAL(h->items != NULL);
}

static void
harness_free(struct harness *h)
{
	pool_free(h->pool);
	event_free(h->watchdog);
	event_base_free(h->base);
	free(h->items);
}

/* Every item: one work on a worker, then one done on the loop thread. */
static void
check_all_ran(struct harness *h)
{
	size_t bad = 0;

	CU_ASSERT_FALSE(h->timed_out);
	CU_ASSERT_EQUAL(h->finished, h->nitems);
	for (size_t i = 0; i < h->nitems; i++) {
		struct titem *t = &h->items[i];

		if (t->works != 1 || t->dones != 1 || !t->ran || t->work_on_loop || t->done_off_loop)
			bad++;
	}
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT_EQUAL(pool_queued(h->pool), 0);
}

static void
count_work(struct pool_item *pi)
{
	struct titem *t = (struct titem *)pi;

	t->work_on_loop |= pthread_equal(pthread_self(), t->h->loop) != 0;
	t->works++;
}

static void submit_next(struct harness *h, pool_work_fn *work);

static void
count_done(struct pool_item *pi, bool ran)
{
	struct titem *t = (struct titem *)pi;
	struct harness *h = t->h;

	t->done_off_loop |= pthread_equal(pthread_self(), h->loop) == 0;
	t->dones++;
	t->ran = ran;
	h->finished++;
	/* like a fan-out job: the next burst goes in only when this one is back */
	if (h->burst > 0 && h->finished % h->burst == 0)
		submit_next(h, count_work);
	if (h->finished == h->nitems)
		event_base_loopbreak(h->base);
}

/* Submit the next burst of items (all that are left if burst is 0). */
static void
submit_next(struct harness *h, pool_work_fn *work)
{
	size_t n = h->burst > 0 ? h->burst : h->nitems;

	while (n-- > 0 && h->submitted < h->nitems) {
		struct titem *t = &h->items[h->submitted++];

		*t = (struct titem){ .pi = { .work = work, .done = count_done }, .h = h };
		CU_ASSERT_FATAL(pool_submit(h->pool, &t->pi) == 0);
	}
}

static void
run(unsigned nthreads, size_t burst)
{
	struct harness h;

	harness_init(&h, nthreads, NITEMS);
	h.burst = burst;
	submit_next(&h, count_work);
	event_base_dispatch(h.base);
	check_all_ran(&h);
	harness_free(&h);
}

/*
 * The same driven by loop.c with the pool as its poller. A short limit
 * makes the loop start and stop polling thousands of times, each stop a
 * chance for a result filed as it stops to be lost; a long one keeps it
 * polling, so that the results come through pool_poll.
 */
static void
run_polled(unsigned nthreads, size_t burst, int64_t limit_ns)
{
	struct harness h;
	struct loop *l;
	struct loop_stats st;

	harness_init(&h, nthreads, NITEMS);
	CU_ASSERT_FATAL(loop_new(&l, h.base, limit_ns) == 0);
	loop_set_poller(l, pool_poll, h.pool);
	h.burst = burst;
	submit_next(&h, count_work);
	CU_ASSERT_EQUAL(loop_run(l), 0);
	check_all_ran(&h);
	loop_stats(l, &st);
	CU_ASSERT(st.waits > 0);
	loop_free(l);
	harness_free(&h);
}

static void
test_polled(void)
{
	static const int64_t limits_ns[] = { 2000, 50000, 1000000 };

	for (size_t i = 0; i < sizeof limits_ns / sizeof *limits_ns; i++) {
		run_polled(2, 1, limits_ns[i]);
		run_polled(2, 2, limits_ns[i]);
		run_polled(3, 7, limits_ns[i]);
		run_polled(4, 0, limits_ns[i]);
	}
}

/* All at once: workers stay busy and take the queue until it is empty. */
static void test_all_at_once(void) { run(4, 0); }
/* One in flight: the spinning worker takes each item, or a sleeping one is woken. */
static void test_one_at_a_time(void) { run(2, 1); }
/* Two in flight on two workers: one spins, the other must be woken every time. */
static void test_two_at_a_time(void) { run(2, 2); }
/* More in flight than workers, and a single worker. */
static void test_bursts(void) { run(3, 7); run(1, 3); }

/* ---- pool_free ---------------------------------------------------------------- */

static sem_t gate_started, gate_open;
static bool gate_armed;

/* pool_free's join: the workers have been told to stop; let the held item finish. */
int __real_pthread_join(pthread_t t, void **ret);
int __wrap_pthread_join(pthread_t t, void **ret);

int
__wrap_pthread_join(pthread_t t, void **ret)
{
	if (gate_armed) {
		gate_armed = false;
		sem_post(&gate_open);
	}
	return __real_pthread_join(t, ret);
}

static void
gated_work(struct pool_item *pi)
{
	sem_post(&gate_started);
	sem_wait(&gate_open);
	count_work(pi);
}

/* One worker holds the first item; pool_free must hand the rest back unrun. */
static void
test_free_pending(void)
{
	struct harness h;

	sem_init(&gate_started, 0, 0);
	sem_init(&gate_open, 0, 0);
	harness_init(&h, 1, 5);
	h.burst = 1;
	submit_next(&h, gated_work);
	sem_wait(&gate_started);
	h.burst = 0;
	submit_next(&h, count_work);
	CU_ASSERT_EQUAL(pool_queued(h.pool), 4);
	gate_armed = true;
	pool_free(h.pool);
	h.pool = NULL;
	CU_ASSERT_FALSE(gate_armed);
	CU_ASSERT_EQUAL(h.finished, 5);
	CU_ASSERT(h.items[0].works == 1 && h.items[0].dones == 1 && h.items[0].ran);
	for (size_t i = 1; i < 5; i++)
		CU_ASSERT(h.items[i].works == 0 && h.items[i].dones == 1 && !h.items[i].ran);
	harness_free(&h);
	sem_destroy(&gate_started);
	sem_destroy(&gate_open);
}

/* Free right after a result came back (a worker spinning), and with no thread started. */
static void
test_free_idle(void)
{
	struct harness h;

	harness_init(&h, 2, 1);
	submit_next(&h, count_work);
	event_base_dispatch(h.base);
	check_all_ran(&h);
	harness_free(&h);

	harness_init(&h, 2, 0);
	harness_free(&h);
	pool_free(NULL);
}

static void
register_suites(void)
{
	CU_pSuite s = test_suite("pool", NULL, NULL);

	test_add(s, "all at once on 4 workers", test_all_at_once);
	test_add(s, "one item in flight on 2 workers", test_one_at_a_time);
	test_add(s, "two items in flight on 2 workers", test_two_at_a_time);
	test_add(s, "bursts larger than the pool", test_bursts);
	test_add(s, "results taken by a polling loop", test_polled);
	test_add(s, "pool_free hands queued items back unrun", test_free_pending);
	test_add(s, "pool_free of an idle pool", test_free_idle);
}

int
main(int argc, char **argv)
{
	log_set_level(LOG_LEVEL_WARN);	/* no pool-start line per test */
	return test_main(argc, argv, register_suites);
}
