/*
 * test_engine_park.c: a stream's units that keep their waiters between
 * receives, parked (engine_stream.c): parked waiters are no receivers, FIFO
 * and claims around them, close and delete met at the next credit,
 * uniform choice, no parking with a channel named twice, and random runs
 * that check every count and every value.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "streamtest.h"
#include "server/chan.h"
#include "server/engine.h"
#include "server/value.h"

/* No waiter left on ch's recvq, parked or not. */
#define NONE_LEFT(ch) CU_ASSERT(TAILQ_EMPTY(&(ch)->recvq) && (ch)->nrecv == 0)
/* One waiter on ch's recvq, parked (no receiver) or not. */
#define ONE_LEFT(ch, p) \
	CU_ASSERT(TAILQ_FIRST(&(ch)->recvq) != NULL && TAILQ_FIRST(&(ch)->recvq) == TAILQ_LAST(&(ch)->recvq, waitq) && \
	    TAILQ_FIRST(&(ch)->recvq)->parked == (p) && (ch)->nrecv == !(p))

/*
 * Parked waiters are no receivers: a send finds nobody (and drops them), a
 * buffered send buffers, the waiters count leaves them out; the next
 * credit takes what came meanwhile; an end leaves nothing linked.
 */
static void
test_parked_not_receivers(void)
{
	struct engine *e = new_engine();
	struct chan *ch[3] = { mk(e, "a", 0), mk(e, "b", 0), mk(e, "c", 1) };
	struct srec r;

	open_stream(e, &r, ch, 3, 1, ENGINE_WAIT);
	CU_ASSERT_EQUAL(send_now(e, ch[0], "1"), STATUS_OK);
	CU_ASSERT_EQUAL(r.n, 1);
	/* kept on b and c, but as nobody's receive */
	ONE_LEFT(ch[1], true);
	NONE_LEFT(ch[0]);
	CU_ASSERT_EQUAL(chan_nreceivers(ch[1]), 0);
	CU_ASSERT_EQUAL(engine_nwaiters(e), 0);
	CU_ASSERT_EQUAL(send_now(e, ch[1], "2"), STATUS_DEADLINE_EXCEEDED);
	NONE_LEFT(ch[1]);
	CU_ASSERT_EQUAL(send_now(e, ch[2], "3"), STATUS_OK);
	CU_ASSERT_EQUAL(chan_len(ch[2]), 1);
	CU_ASSERT_EQUAL(r.n, 1);
	/* the credit takes what c buffered meanwhile */
	CU_ASSERT_EQUAL(engine_stream_credit(e, r.s, 1), STATUS_OK);
	CU_ASSERT_EQUAL(r.n, 2);
	LOG_IS(r, 1, "3");
	/* then waits on all three again */
	CU_ASSERT_EQUAL(engine_stream_credit(e, r.s, 1), STATUS_OK);
	CU_ASSERT_EQUAL(engine_nwaiters(e), 3);
	CU_ASSERT_EQUAL(send_now(e, ch[1], "4"), STATUS_OK);
	LOG_IS(r, 2, "4");
	CU_ASSERT_EQUAL(engine_nwaiters(e), 0);
	engine_stream_end(e, r.s, STATUS_CANCELED);
	CU_ASSERT(r.ended);
	for (int i = 0; i < 3; i++)
		NONE_LEFT(ch[i]);
	engine_free(e);
}

/*
 * A receiver that queued behind a parked waiter is served first: armed
 * again, the unit queues behind it. A parked waiter still the newest on
 * its channel is kept, and receives.
 */
static void
test_parked_fifo(void)
{
	struct engine *e = new_engine();
	struct chan *ch[2] = { mk(e, "a", 0), mk(e, "b", 0) };
	struct rrec r1 = { 0 };
	struct srec r;

	open_stream(e, &r, ch, 2, 1, ENGINE_WAIT);
	CU_ASSERT_EQUAL(send_now(e, ch[0], "1"), STATUS_OK);
	recv_wait(e, ch[1], &r1);
	CU_ASSERT_EQUAL(engine_stream_credit(e, r.s, 1), STATUS_OK);
	CU_ASSERT_EQUAL(chan_nreceivers(ch[1]), 2);
	CU_ASSERT_EQUAL(send_now(e, ch[1], "2"), STATUS_OK);
	CU_ASSERT(r1.calls == 1 && value_len(r1.res.value) == 1);
	value_free(r1.res.value);
	CU_ASSERT_EQUAL(r.n, 1);
	CU_ASSERT_EQUAL(send_now(e, ch[1], "3"), STATUS_OK);
	CU_ASSERT_EQUAL(r.n, 2);
	LOG_IS(r, 1, "3");
	/* parked on a, alone there: kept, and it receives */
	ONE_LEFT(ch[0], true);
	CU_ASSERT_EQUAL(engine_stream_credit(e, r.s, 1), STATUS_OK);
	ONE_LEFT(ch[0], false);
	CU_ASSERT_EQUAL(send_now(e, ch[0], "4"), STATUS_OK);
	LOG_IS(r, 2, "4");
	engine_stream_end(e, r.s, STATUS_CANCELED);
	NONE_LEFT(ch[0]);
	NONE_LEFT(ch[1]);
	engine_free(e);
}

/* A close or a delete while parked is met at the next credit, as without parking. */
static void
test_parked_close_delete(void)
{
	struct engine *e = new_engine();
	struct chan *ch[3] = { mk(e, "a", 0), mk(e, "b", 0), mk(e, "c", 0) };
	struct srec r;

	open_stream(e, &r, ch, 3, 1, ENGINE_WAIT);
	CU_ASSERT_EQUAL(send_now(e, ch[0], "1"), STATUS_OK);
	CU_ASSERT_EQUAL(engine_close(e, ch[1]), STATUS_OK);
	NONE_LEFT(ch[1]);
	CU_ASSERT_EQUAL(r.n, 1);
	CU_ASSERT_EQUAL(engine_stream_credit(e, r.s, 1), STATUS_OK);
	CU_ASSERT_EQUAL(r.n, 2);
	LOG_IS(r, 1, "closed:1");
	CU_ASSERT_EQUAL(engine_stream_credit(e, r.s, 1), STATUS_OK);
	CU_ASSERT_EQUAL(engine_nwaiters(e), 2);
	CU_ASSERT_EQUAL(send_now(e, ch[2], "2"), STATUS_OK);
	LOG_IS(r, 2, "2");
	CU_ASSERT_EQUAL(engine_delete(e, ch[0], NULL), STATUS_OK);
	CU_ASSERT_FALSE(r.ended);
	CU_ASSERT_EQUAL(engine_stream_credit(e, r.s, 1), STATUS_OK);
	ENDED_WITH(r, STATUS_NOT_FOUND, 0);
	NONE_LEFT(ch[2]);
	engine_release(e, ch[0]);	/* mk's hold */
	engine_free(e);
}

/* A claiming sender is not granted a parked waiter; armed again, the waiter grants it. */
static void
test_parked_claim(void)
{
	struct engine *e = new_engine();
	struct chan *ch[2] = { mk(e, "a", 0), mk(e, "b", 0) };
	struct engine_case c = { ch[1], CASE_SEND, value_new("x", 1) };
	struct engine_result now;
	struct engine_op *op;
	struct rrec rc = { 0 };
	struct srec r;

	open_stream(e, &r, ch, 2, 1, ENGINE_WAIT);
	CU_ASSERT_EQUAL(send_now(e, ch[0], "1"), STATUS_OK);
	CU_ASSERT_FATAL(engine_submit(e, &c, 1, ENGINE_WAIT | ENGINE_CLAIM, r_done, &rc, &op,
	    &now) == 1);
	CU_ASSERT_EQUAL(rc.calls, 0);
	CU_ASSERT_EQUAL(engine_stream_credit(e, r.s, 1), STATUS_OK);
	CU_ASSERT(rc.calls == 1 && rc.res.claimed);
	CU_ASSERT_EQUAL(engine_send_claimed(e, ch[1], rc.res.value), STATUS_OK);
	CU_ASSERT_EQUAL(r.n, 2);
	LOG_IS(r, 1, "x");
	engine_stream_end(e, r.s, STATUS_CANCELED);
	NONE_LEFT(ch[1]);
	engine_free(e);
}

/*
 * Armed again, a parked unit polls only the channels it left or that gave
 * it up: still uniformly over those ready. Two values arrive while it is
 * parked; each is taken first about half the time.
 */
static void
test_parked_uniform(void)
{
	enum { N = 4000 };
	struct engine *e = new_engine();
	struct chan *ch[3] = { mk(e, "t", 0), mk(e, "x", 1), mk(e, "y", 1) };
	struct srec r;
	int first_x = 0;

	open_stream(e, &r, ch, 3, 1, ENGINE_WAIT);
	for (int i = 0; i < N; i++) {
		int hx = r.hits[1];

		CU_ASSERT_EQUAL_FATAL(send_now(e, ch[0], "t"), STATUS_OK);
		CU_ASSERT_EQUAL_FATAL(send_now(e, ch[1], "x"), STATUS_OK);
		CU_ASSERT_EQUAL_FATAL(send_now(e, ch[2], "y"), STATUS_OK);
		CU_ASSERT_EQUAL_FATAL(engine_stream_credit(e, r.s, 1), STATUS_OK);
		first_x += r.hits[1] > hx;
		CU_ASSERT_EQUAL_FATAL(engine_stream_credit(e, r.s, 1), STATUS_OK);
		CU_ASSERT_EQUAL_FATAL(engine_stream_credit(e, r.s, 1), STATUS_OK);	/* waits on all */
	}
	CU_ASSERT_EQUAL(r.nvals, 3 * N);
	/* ±5% is 6.3 standard deviations */
	CU_ASSERT(first_x > N * 45 / 100 && first_x < N * 55 / 100);
	engine_stream_end(e, r.s, STATUS_CANCELED);
	engine_free(e);
}

/* ch's counts agree with its queue: nrecv counts the waiters not parked. */
static bool
counts_hold(const struct chan *ch)
{
	const struct waiter *w;
	uint32_t live = 0;

	TAILQ_FOREACH(w, &ch->recvq, link)
		live += !w->parked;
	return live == ch->nrecv;
}

/*
 * Random sends, credits and plain receivers over 4 channels, 2,000
 * streams of credit 2 to 4, each ended after 60 steps: at every step each
 * channel's counts agree with its queue, and the waiters count is the
 * receivers'; after each end only plain receivers are left, and nothing
 * at the last. (It found an end that missed a parked unit behind one
 * whose waiters had all been dropped.)
 */
static void
test_parked_random(void)
{
	enum { NCH = 4, STREAMS = 2000, STEPS = 60, NPLAIN = 3 };
	struct engine *e = new_engine();
	struct chan *ch[NCH];
	struct rrec plain[NPLAIN];
	struct engine_op *pop[NPLAIN];
	int pch[NPLAIN];
	uint64_t seed = 12345;
	char name[8];
	struct srec r;

	for (int i = 0; i < NCH; i++) {
		snprintf(name, sizeof name, "c%d", i);
		ch[i] = mk(e, name, i % 2);
	}
	memset(pop, 0, sizeof pop);
	for (int k = 0; k < STREAMS; k++) {
		open_stream(e, &r, ch, NCH, 2 + k % 3, ENGINE_WAIT);
		for (int step = 0; step < STEPS; step++) {
			uint64_t x = (seed = seed * 6364136223846793005ull + 1442695040888963407ull) >> 33;
			int c = (int)(x % NCH), p = (int)(x / NCH % NPLAIN);
			uint64_t receivers = 0;

			if (x % 7 < 3) {
				(void)send_now(e, ch[c], "v");
			} else if (x % 7 < 5 && engine_stream_outstanding(r.s) < 3) {
				CU_ASSERT_EQUAL_FATAL(engine_stream_credit(e, r.s, 1), STATUS_OK);
			} else if (pop[p] == NULL || plain[p].calls > 0) {
				struct engine_case rc = { ch[c], CASE_RECV, NULL };
				struct engine_result now;

				value_free(pop[p] != NULL ? plain[p].res.value : NULL);
				plain[p] = (struct rrec){ 0 };
				pch[p] = c;
				if (engine_submit(e, &rc, 1, ENGINE_WAIT, r_done, &plain[p], &pop[p], &now) == 0)
					value_free(now.value);	/* a buffered value, taken at once */
			}
			for (int i = 0; i < NCH; i++) {
				CU_ASSERT_FATAL(counts_hold(ch[i]));
				receivers += ch[i]->nrecv;
			}
			CU_ASSERT_EQUAL_FATAL(engine_nwaiters(e), receivers);
		}
		engine_stream_end(e, r.s, STATUS_CANCELED);
		CU_ASSERT_FATAL(r.ended);
		/* what is left on each channel is its plain receivers still waiting */
		for (int i = 0; i < NCH; i++) {
			const struct waiter *w;
			uint32_t left = 0, waiting = 0;

			TAILQ_FOREACH(w, &ch[i]->recvq, link)
				left++;
			for (int q = 0; q < NPLAIN; q++)
				waiting += pop[q] != NULL && plain[q].calls == 0 && pch[q] == i;
			CU_ASSERT_EQUAL_FATAL(left, waiting);
			CU_ASSERT_EQUAL_FATAL(ch[i]->nrecv, waiting);
		}
	}
	for (int p = 0; p < NPLAIN; p++) {
		if (pop[p] != NULL && plain[p].calls == 0)
			engine_op_cancel(e, pop[p], STATUS_CANCELED);
		value_free(pop[p] != NULL ? plain[p].res.value : NULL);
	}
	for (int i = 0; i < NCH; i++)
		NONE_LEFT(ch[i]);
	CU_ASSERT_EQUAL(engine_nwaiters(e), 0);
	engine_free(e);
}

/*
 * As above, with closes and deletes: fresh channels each round, a close or
 * a delete now and then. Every value sent is received (by the stream or a
 * plain receiver), still buffered, or counted by a delete: none lost.
 */
static void
test_parked_random_close(void)
{
	enum { NCH = 4, ROUNDS = 1000, STEPS = 60, NPLAIN = 3 };
	struct engine *e = new_engine();
	uint64_t seed = 777, sent = 0, got = 0;
	char name[24];

	for (int k = 0; k < ROUNDS; k++) {
		struct chan *ch[NCH];
		struct rrec plain[NPLAIN] = { { 0 } };
		struct engine_op *pop[NPLAIN] = { NULL };
		struct srec r;
		size_t disc;

		for (int i = 0; i < NCH; i++) {
			snprintf(name, sizeof name, "r%d.%d", k, i);
			ch[i] = mk(e, name, i % 2);
		}
		open_stream(e, &r, ch, NCH, 1 + k % 3, ENGINE_WAIT);
		for (int step = 0; step < STEPS && !r.ended; step++) {
			uint64_t x = (seed = seed * 6364136223846793005ull + 1442695040888963407ull) >> 33;
			int c = (int)(x % NCH), p = (int)(x / NCH % NPLAIN), a = (int)(x / 64 % 40);

			if (a < 15) {
				sent += send_now(e, ch[c], "v") == STATUS_OK;
			} else if (a < 28 && engine_stream_outstanding(r.s) < 3) {
				CU_ASSERT_EQUAL_FATAL(engine_stream_credit(e, r.s, 1), STATUS_OK);
			} else if (a < 36 && (pop[p] == NULL || plain[p].calls > 0)) {
				struct engine_case rc = { ch[c], CASE_RECV, NULL };
				struct engine_result now = { 0 };

				got += pop[p] != NULL && plain[p].res.value != NULL;
				value_free(pop[p] != NULL ? plain[p].res.value : NULL);
				plain[p] = (struct rrec){ 0 };
				if (engine_submit(e, &rc, 1, ENGINE_WAIT, r_done, &plain[p], &pop[p], &now) == 0) {
					got += now.value != NULL;
					value_free(now.value);
				}
			} else if (a < 39) {
				(void)engine_close(e, ch[c]);
			} else if (engine_delete(e, ch[c], &disc) == STATUS_OK) {
				got += disc;
			}
			for (int i = 0; i < NCH; i++)
				CU_ASSERT_FATAL(counts_hold(ch[i]));
		}
		if (!r.ended)	/* else a close of all or a delete ended it, and freed it */
			engine_stream_end(e, r.s, STATUS_CANCELED);
		CU_ASSERT_FATAL(r.ended);
		got += (uint64_t)r.nvals;
		for (int q = 0; q < NPLAIN; q++) {
			if (pop[q] != NULL && plain[q].calls == 0)
				engine_op_cancel(e, pop[q], STATUS_CANCELED);
			got += pop[q] != NULL && plain[q].res.value != NULL;
			value_free(pop[q] != NULL ? plain[q].res.value : NULL);
		}
		for (int i = 0; i < NCH; i++) {
			NONE_LEFT(ch[i]);
			if (engine_delete(e, ch[i], &disc) == STATUS_OK)
				got += disc;
			engine_release(e, ch[i]);	/* mk's hold */
		}
		CU_ASSERT_EQUAL_FATAL(engine_nwaiters(e), 0);
		CU_ASSERT_EQUAL_FATAL(got, sent);
	}
	CU_ASSERT(sent > ROUNDS);
	engine_free(e);
}

/* A stream naming a channel twice does not park: both its waiters there queue anew. */
static void
test_twice_no_parking(void)
{
	struct engine *e = new_engine();
	struct chan *a = mk(e, "a", 0), *b = mk(e, "b", 0);
	struct chan *ch[3] = { a, b, b };
	struct srec r;

	open_stream(e, &r, ch, 3, 1, ENGINE_WAIT);
	CU_ASSERT_EQUAL(b->nrecv, 2);
	CU_ASSERT_EQUAL(send_now(e, a, "1"), STATUS_OK);
	NONE_LEFT(b);
	CU_ASSERT_EQUAL(engine_stream_credit(e, r.s, 1), STATUS_OK);
	CU_ASSERT_EQUAL(send_now(e, b, "2"), STATUS_OK);
	CU_ASSERT_EQUAL(r.n, 2);
	CU_ASSERT(r.hits[1] + r.hits[2] == 1);
	engine_stream_end(e, r.s, STATUS_CANCELED);
	NONE_LEFT(a);
	NONE_LEFT(b);
	engine_free(e);
}

void
register_engine_park(void)
{
	CU_pSuite s = test_suite("engine.park", NULL, NULL);

	test_add(s, "parked waiters are no receivers", test_parked_not_receivers);
	test_add(s, "parked: FIFO behind a newer receiver, kept when newest", test_parked_fifo);
	test_add(s, "parked: a close or a delete is met at the next credit", test_parked_close_delete);
	test_add(s, "parked: no claim on a parked waiter", test_parked_claim);
	test_add(s, "parked: uniform over what came meanwhile", test_parked_uniform);
	test_add(s, "parked: random steps keep every count, ends leave nothing", test_parked_random);
	test_add(s, "parked: the same with closes and deletes, no value lost", test_parked_random_close);
	test_add(s, "a channel named twice: no parking", test_twice_no_parking);
}
