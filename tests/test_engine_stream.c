/*
 * test_engine_stream.c: the engine's streams (engine.h, engine_stream.c)
 * with no sockets: credit, FIFO among other receivers, buffered values,
 * close reported once, delete, ending with values already taken, random
 * choice, and the no-wait form; its helpers (streamtest.h) serve
 * test_engine_park.c too, whose suite it registers.
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

static void
note(struct srec *r, const char *s)
{
	if (r->n < MAXLOG)
		snprintf(r->log[r->n], sizeof r->log[0], "%s", s);
	r->n++;
}

void
s_value(void *arg, struct engine_result *res)
{
	struct srec *r = arg;
	char buf[32];

	CU_ASSERT_FALSE(r->ended);
	CU_ASSERT_EQUAL(res->status, STATUS_OK);
	if (!res->ok) {
		snprintf(buf, sizeof buf, "closed:%d", res->index);
		note(r, buf);
		return;
	}
	snprintf(buf, sizeof buf, "%.*s", (int)value_len(res->value), (const char *)value_data(res->value));
	note(r, buf);
	r->nvals++;
	if (res->index >= 0 && res->index < 4)
		r->hits[res->index]++;
	value_free(res->value);
	res->value = NULL;
	if (r->nvals == 1 && r->end_with != 0) {
		if (r->send_first) {
			struct engine_case c = { r->send_ch, CASE_SEND, value_new(r->send_first, strlen(r->send_first)) };
			struct engine_result now;
			struct engine_op *op;

			CU_ASSERT_EQUAL(engine_submit(r->e, &c, 1, 0, NULL, NULL, &op, &now), 0);
			CU_ASSERT_EQUAL(now.status, STATUS_OK);
		}
		engine_stream_end(r->e, r->s, r->end_with);
	}
}

void
s_end(void *arg, int status, int index)
{
	struct srec *r = arg;
	char buf[32];

	CU_ASSERT_FALSE(r->ended);
	r->ended = true;
	r->end_status = status;
	r->end_index = index;
	snprintf(buf, sizeof buf, "end:%d:%d", status, index);
	note(r, buf);
}

struct engine *
new_engine(void)
{
	struct engine_limits lim = { 0, 0 };
	struct engine *e;

	CU_ASSERT_FATAL(engine_new(&e, &lim) == STATUS_OK);
	engine_seed(e, 777);
	return e;
}

struct chan *
mk(struct engine *e, const char *name, uint32_t cap)
{
	struct chan *ch;
	bool created;

	CU_ASSERT_FATAL(engine_make(e, name, strlen(name), cap, &ch, &created) == STATUS_OK);
	return ch;
}

/* A send with no wait; returns its status (DEADLINE_EXCEEDED: nobody took it). */
int
send_now(struct engine *e, struct chan *ch, const char *s)
{
	struct engine_case c = { ch, CASE_SEND, value_new(s, strlen(s)) };
	struct engine_result now;
	struct engine_op *op;

	CU_ASSERT_FATAL(engine_submit(e, &c, 1, 0, NULL, NULL, &op, &now) == 0);
	return now.status;
}

void
r_done(void *arg, struct engine_result *res)
{
	struct rrec *r = arg;

	r->calls++;
	r->res = *res;
}

struct engine_op *
recv_wait(struct engine *e, struct chan *ch, struct rrec *r)
{
	struct engine_case c = { ch, CASE_RECV, NULL };
	struct engine_result now;
	struct engine_op *op;

	CU_ASSERT_FATAL(engine_submit(e, &c, 1, ENGINE_WAIT, r_done, r, &op, &now) == 1);
	return op;
}

void
open_stream(struct engine *e, struct srec *r, struct chan **chans, size_t n, uint32_t credit,
    unsigned flags)
{
	memset(r, 0, sizeof *r);
	r->e = e;
	CU_ASSERT_FATAL(engine_stream_new(e, chans, n, credit, s_value, s_end, r, &r->s) == STATUS_OK);
	CU_ASSERT_EQUAL_FATAL(engine_stream_start(e, r->s, credit, flags), STATUS_OK);
}


/* ---- tests ----------------------------------------------------------------------- */

static void
test_credit_then_wait(void)
{
	struct engine *e = new_engine();
	struct chan *ch = mk(e, "c", 8);
	struct srec r;

	CU_ASSERT_EQUAL(send_now(e, ch, "a"), STATUS_OK);
	CU_ASSERT_EQUAL(send_now(e, ch, "b"), STATUS_OK);
	CU_ASSERT_EQUAL(send_now(e, ch, "c"), STATUS_OK);
	/* buffered values go at once, up to the credit */
	open_stream(e, &r, &ch, 1, 2, ENGINE_WAIT);
	CU_ASSERT_EQUAL(r.n, 2);
	LOG_IS(r, 0, "a");
	LOG_IS(r, 1, "b");
	CU_ASSERT_EQUAL(chan_len(ch), 1);
	CU_ASSERT_EQUAL(engine_stream_outstanding(r.s), 0);
	CU_ASSERT_EQUAL(engine_nwaiters(e), 0);
	/* credit 3 more: "c" now, two waiters queued */
	CU_ASSERT_EQUAL(engine_stream_credit(e, r.s, 3), STATUS_OK);
	CU_ASSERT_EQUAL(r.n, 3);
	LOG_IS(r, 2, "c");
	CU_ASSERT_EQUAL(chan_nreceivers(ch), 2);
	CU_ASSERT_EQUAL(engine_stream_outstanding(r.s), 2);
	CU_ASSERT_EQUAL(send_now(e, ch, "d"), STATUS_OK);
	CU_ASSERT_EQUAL(send_now(e, ch, "e"), STATUS_OK);
	CU_ASSERT_EQUAL(send_now(e, ch, "f"), STATUS_OK);	/* buffered: no credit left */
	CU_ASSERT_EQUAL(r.n, 5);
	LOG_IS(r, 4, "e");
	CU_ASSERT_EQUAL(chan_len(ch), 1);
	CU_ASSERT_EQUAL(engine_nwaiters(e), 0);
	engine_stream_end(e, r.s, STATUS_CANCELED);
	CU_ASSERT(r.ended);
	CU_ASSERT_EQUAL(r.end_status, STATUS_CANCELED);
	CU_ASSERT_EQUAL(chan_len(ch), 1);	/* nothing taken by the end */
	engine_free(e);
}

static void
test_fifo_with_receivers(void)
{
	struct engine *e = new_engine();
	struct chan *ch = mk(e, "c", 0);
	struct rrec r1 = { 0 }, r2 = { 0 };
	struct srec r;

	/* queue: stream x3, RECV r1, then 1 more stream credit, RECV r2 */
	open_stream(e, &r, &ch, 1, 3, ENGINE_WAIT);
	recv_wait(e, ch, &r1);
	CU_ASSERT_EQUAL(engine_stream_credit(e, r.s, 1), STATUS_OK);
	recv_wait(e, ch, &r2);
	CU_ASSERT_EQUAL(chan_nreceivers(ch), 6);
	CU_ASSERT_EQUAL(send_now(e, ch, "1"), STATUS_OK);
	CU_ASSERT_EQUAL(send_now(e, ch, "2"), STATUS_OK);
	CU_ASSERT_EQUAL(send_now(e, ch, "3"), STATUS_OK);
	CU_ASSERT_EQUAL(r.n, 3);
	CU_ASSERT_EQUAL(r1.calls, 0);
	CU_ASSERT_EQUAL(send_now(e, ch, "4"), STATUS_OK);
	CU_ASSERT_EQUAL(r1.calls, 1);
	CU_ASSERT_EQUAL(value_len(r1.res.value), 1);
	CU_ASSERT_EQUAL(((const char *)value_data(r1.res.value))[0], '4');
	value_free(r1.res.value);
	CU_ASSERT_EQUAL(send_now(e, ch, "5"), STATUS_OK);
	CU_ASSERT_EQUAL(r.n, 4);
	LOG_IS(r, 3, "5");
	CU_ASSERT_EQUAL(send_now(e, ch, "6"), STATUS_OK);
	CU_ASSERT_EQUAL(r2.calls, 1);
	value_free(r2.res.value);
	CU_ASSERT_EQUAL(send_now(e, ch, "7"), STATUS_DEADLINE_EXCEEDED);
	engine_stream_end(e, r.s, STATUS_CANCELED);
	CU_ASSERT_EQUAL(engine_nwaiters(e), 0);
	engine_free(e);
}

static void
test_close_reported_once(void)
{
	struct engine *e = new_engine();
	struct chan *ch[2] = { mk(e, "a", 0), mk(e, "b", 0) };
	struct srec r;

	open_stream(e, &r, ch, 2, 3, ENGINE_WAIT);
	CU_ASSERT_EQUAL(engine_nwaiters(e), 6);
	CU_ASSERT_EQUAL(engine_close(e, ch[0]), STATUS_OK);
	CU_ASSERT_EQUAL(r.n, 1);
	LOG_IS(r, 0, "closed:0");
	/* the two other units stay, on b only */
	CU_ASSERT_EQUAL(chan_nreceivers(ch[0]), 0);
	CU_ASSERT_EQUAL(chan_nreceivers(ch[1]), 2);
	CU_ASSERT_EQUAL(engine_nwaiters(e), 2);
	CU_ASSERT_PTR_NULL(engine_stream_chan(r.s, 0));
	CU_ASSERT_PTR_EQUAL(engine_stream_chan(r.s, 1), ch[1]);
	CU_ASSERT_EQUAL(send_now(e, ch[1], "x"), STATUS_OK);
	LOG_IS(r, 1, "x");
	/* new credit never waits on the closed channel */
	CU_ASSERT_EQUAL(engine_stream_credit(e, r.s, 2), STATUS_OK);
	CU_ASSERT_EQUAL(chan_nreceivers(ch[1]), 3);
	CU_ASSERT_EQUAL(engine_nwaiters(e), 3);
	/* the last close: reported, then the end (OK), nothing left */
	CU_ASSERT_EQUAL(engine_close(e, ch[1]), STATUS_OK);
	CU_ASSERT_EQUAL(r.n, 4);
	LOG_IS(r, 2, "closed:1");
	CU_ASSERT(r.ended);
	CU_ASSERT_EQUAL(r.end_status, STATUS_OK);
	CU_ASSERT_EQUAL(engine_nwaiters(e), 0);
	engine_free(e);
}

static void
test_closed_before_credit(void)
{
	struct engine *e = new_engine();
	struct chan *ch = mk(e, "c", 4);
	struct srec r;

	CU_ASSERT_EQUAL(send_now(e, ch, "v"), STATUS_OK);
	CU_ASSERT_EQUAL(engine_close(e, ch), STATUS_OK);
	/* the buffered value first, then the close, then the end; credit left over is moot */
	open_stream(e, &r, &ch, 1, 5, ENGINE_WAIT);
	CU_ASSERT_EQUAL(r.n, 3);
	LOG_IS(r, 0, "v");
	LOG_IS(r, 1, "closed:0");
	LOG_IS(r, 2, "end:0:-1");
	CU_ASSERT_EQUAL(engine_nwaiters(e), 0);
	engine_free(e);
}

static void
test_delete_ends(void)
{
	struct engine *e = new_engine();
	struct chan *ch[2] = { mk(e, "a", 0), mk(e, "b", 0) };
	struct srec r;

	open_stream(e, &r, ch, 2, 4, ENGINE_WAIT);
	CU_ASSERT_EQUAL(engine_delete(e, ch[1], NULL), STATUS_OK);
	ENDED_WITH(r, STATUS_NOT_FOUND, 1);
	CU_ASSERT_EQUAL(r.n, 1);
	CU_ASSERT_EQUAL(engine_nwaiters(e), 0);
	CU_ASSERT_EQUAL(chan_nreceivers(ch[0]), 0);
	engine_release(e, ch[1]);	/* mk's hold */
	/* a channel deleted while the credit was 0 ends the stream at the next grant */
	open_stream(e, &r, ch, 1, 1, ENGINE_WAIT);
	CU_ASSERT_EQUAL(send_now(e, ch[0], "x"), STATUS_OK);
	CU_ASSERT_EQUAL(engine_delete(e, ch[0], NULL), STATUS_OK);
	CU_ASSERT_FALSE(r.ended);
	CU_ASSERT_EQUAL(engine_stream_credit(e, r.s, 1), STATUS_OK);
	ENDED_WITH(r, STATUS_NOT_FOUND, 0);
	engine_release(e, ch[0]);
	engine_free(e);
}

static void
test_end_after_taken_values(void)
{
	struct engine *e = new_engine();
	struct chan *ch = mk(e, "c", 0);
	struct srec r;

	memset(&r, 0, sizeof r);
	r.e = e;
	r.send_ch = ch;
	r.send_first = "B";
	r.end_with = STATUS_CANCELED;
	CU_ASSERT_FATAL(engine_stream_new(e, &ch, 1, 3, s_value, s_end, &r, &r.s) == STATUS_OK);
	CU_ASSERT_EQUAL(engine_stream_start(e, r.s, 3, ENGINE_WAIT), STATUS_OK);
	/* "A" arrives; its callback sends "B" (taken by the second unit), then ends */
	CU_ASSERT_EQUAL(send_now(e, ch, "A"), STATUS_OK);
	CU_ASSERT_EQUAL(r.n, 3);
	LOG_IS(r, 0, "A");
	LOG_IS(r, 1, "B");
	LOG_IS(r, 2, "end:3:-1");
	CU_ASSERT_EQUAL(engine_nwaiters(e), 0);
	CU_ASSERT_EQUAL(send_now(e, ch, "C"), STATUS_DEADLINE_EXCEEDED);
	engine_free(e);
}

static void
test_no_wait(void)
{
	struct engine *e = new_engine();
	struct chan *ch = mk(e, "c", 4);
	struct srec r;

	CU_ASSERT_EQUAL(send_now(e, ch, "a"), STATUS_OK);
	CU_ASSERT_EQUAL(send_now(e, ch, "b"), STATUS_OK);
	open_stream(e, &r, &ch, 1, 5, 0);
	CU_ASSERT_EQUAL(r.n, 3);
	LOG_IS(r, 1, "b");
	CU_ASSERT_EQUAL(r.end_status, STATUS_DEADLINE_EXCEEDED);
	CU_ASSERT_EQUAL(engine_nwaiters(e), 0);
	engine_free(e);
}

static void
test_uniform(void)
{
	enum { N = 10000 };
	struct engine *e = new_engine();
	struct chan *ch[2] = { mk(e, "x", N), mk(e, "y", N) };
	struct srec r;

	for (int i = 0; i < N; i++) {
		CU_ASSERT_EQUAL_FATAL(send_now(e, ch[0], "x"), STATUS_OK);
		CU_ASSERT_EQUAL_FATAL(send_now(e, ch[1], "y"), STATUS_OK);
	}
	open_stream(e, &r, ch, 2, 1, ENGINE_WAIT);
	for (int i = 1; i < N; i++)
		CU_ASSERT_EQUAL_FATAL(engine_stream_credit(e, r.s, 1), STATUS_OK);
	CU_ASSERT_EQUAL(r.nvals, N);
	CU_ASSERT(r.hits[0] > N * 45 / 100 && r.hits[0] < N * 55 / 100);
	engine_stream_end(e, r.s, STATUS_CANCELED);
	engine_free(e);
}

/* A 1,000-channel stream keeps its waiters exact over many deliveries. */
static void
test_many_channels(void)
{
	enum { NCH = 1000, CREDIT = 4, VALUES = 20000 };
	struct engine *e = new_engine();
	struct chan **ch = calloc(NCH, sizeof *ch);
	struct srec r;
	char name[16];

	CU_ASSERT_FATAL(ch != NULL);
	for (int i = 0; i < NCH; i++) {
		snprintf(name, sizeof name, "c%d", i);
		ch[i] = mk(e, name, 0);
	}
	open_stream(e, &r, ch, NCH, CREDIT, ENGINE_WAIT);
	CU_ASSERT_EQUAL(engine_nwaiters(e), (uint64_t)NCH * CREDIT);
	for (int i = 0; i < VALUES; i++) {
		CU_ASSERT_EQUAL_FATAL(send_now(e, ch[(i * 7919) % NCH], "v"), STATUS_OK);
		CU_ASSERT_EQUAL_FATAL(engine_stream_credit(e, r.s, 1), STATUS_OK);
	}
	CU_ASSERT_EQUAL(r.nvals, VALUES);
	CU_ASSERT_EQUAL(engine_stream_outstanding(r.s), CREDIT);
	CU_ASSERT_EQUAL(engine_nwaiters(e), (uint64_t)NCH * CREDIT);
	CU_ASSERT_EQUAL(chan_nreceivers(ch[5]), CREDIT);
	engine_stream_end(e, r.s, STATUS_CANCELED);
	CU_ASSERT_EQUAL(engine_nwaiters(e), 0);
	free(ch);
	engine_free(e);
}

/*
 * A limit per channel (engine_stream_limit/allow): the limited channel
 * gives only what is allowed, the other flows; allowed again, the waiting
 * units take what it has, oldest first, then queue on it.
 */
static void
test_channel_limit(void)
{
	struct engine *e = new_engine();
	struct chan *ch[2] = { mk(e, "lim", 8), mk(e, "free", 8) };
	struct srec r;

	CU_ASSERT_EQUAL(send_now(e, ch[0], "a1"), STATUS_OK);
	CU_ASSERT_EQUAL(send_now(e, ch[0], "a2"), STATUS_OK);
	memset(&r, 0, sizeof r);
	r.e = e;
	CU_ASSERT_FATAL(engine_stream_new(e, ch, 2, 4, s_value, s_end, &r, &r.s) == STATUS_OK);
	engine_stream_limit(r.s, 0);
	engine_stream_allow(e, r.s, 0, 1);
	CU_ASSERT_EQUAL_FATAL(engine_stream_start(e, r.s, 4, ENGINE_WAIT), STATUS_OK);
	/* one from the limited channel, then its units wait on the other only */
	CU_ASSERT_EQUAL(r.n, 1);
	LOG_IS(r, 0, "a1");
	CU_ASSERT_EQUAL(chan_nreceivers(ch[0]), 0);
	CU_ASSERT_EQUAL(chan_nreceivers(ch[1]), 3);
	CU_ASSERT_EQUAL(send_now(e, ch[1], "f1"), STATUS_OK);
	LOG_IS(r, 1, "f1");
	CU_ASSERT_EQUAL(chan_len(ch[0]), 1);
	/* allowed two more: the oldest unit takes a2, the other queues on it */
	engine_stream_allow(e, r.s, 0, 2);
	CU_ASSERT_EQUAL(r.n, 3);
	LOG_IS(r, 2, "a2");
	CU_ASSERT_EQUAL(chan_nreceivers(ch[0]), 1);
	CU_ASSERT_EQUAL(chan_nreceivers(ch[1]), 1);
	/* taken back: no unit receives from it */
	engine_stream_allow(e, r.s, 0, -1);
	CU_ASSERT_EQUAL(chan_nreceivers(ch[0]), 0);
	CU_ASSERT_EQUAL(send_now(e, ch[0], "a3"), STATUS_OK);
	CU_ASSERT_EQUAL(r.n, 3);
	CU_ASSERT_EQUAL(engine_nwaiters(e), 1);
	engine_stream_end(e, r.s, STATUS_CANCELED);
	CU_ASSERT(r.ended);
	CU_ASSERT_EQUAL(engine_nwaiters(e), 0);
	engine_free(e);
}

static void
register_suites(void)
{
	CU_pSuite s = test_suite("engine.stream", NULL, NULL);

	test_add(s, "credit k takes k, then waits; credit resumes", test_credit_then_wait);
	test_add(s, "FIFO among plain receivers", test_fifo_with_receivers);
	test_add(s, "a close is reported once, the rest keep waiting", test_close_reported_once);
	test_add(s, "closed and drained before the credit", test_closed_before_credit);
	test_add(s, "delete ends the stream with NOT_FOUND and the index", test_delete_ends);
	test_add(s, "values already taken go before the end", test_end_after_taken_values);
	test_add(s, "no wait: what is ready, then DEADLINE_EXCEEDED", test_no_wait);
	test_add(s, "uniform over ready channels", test_uniform);
	test_add(s, "1,000 channels, 20,000 values, exact waiters", test_many_channels);
	test_add(s, "a limit per channel: the others flow, allowed again it gives", test_channel_limit);
	register_engine_park();
}

int
main(int argc, char **argv)
{
	return test_main(argc, argv, register_suites);
}
