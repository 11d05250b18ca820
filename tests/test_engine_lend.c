/*
 * test_engine_lend.c: the engine's lending primitives for ack channels
 * (engine_lend, engine_requeue, engine_settle; delivery.c builds on them),
 * part of test_engine: a value given back goes straight to a waiting
 * receiver or ahead of the buffer, outside cap, with its metadata; a closed
 * channel reports ok=false only once nothing lent is outstanding; plain
 * channels are untouched.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <string.h>

#include "enginetest.h"
#include "testutil.h"

/* Receive now, which must be want from ch; the value is returned (the caller's). */
static struct value *
take(struct engine *e, struct chan *ch, const char *want)
{
	struct engine_case c = { .ch = ch, .dir = CASE_RECV };
	struct engine_result res;
	struct engine_op *op;

	CU_ASSERT_FATAL(engine_submit(e, &c, 1, 0, rec_done, NULL, &op, &res) == 0);
	CU_ASSERT_EQUAL(res.status, STATUS_OK);
	CU_ASSERT(res.ok && value_is(res.value, want));
	CU_ASSERT_PTR_EQUAL(res.ch, ch);	/* the result names the channel it came from */
	return res.value;
}

static void
test_requeue_ahead_of_buffer(void)
{
	struct engine *e = new_engine(0, 0);
	struct chan *ch = mk(e, "q", 2);
	struct value *a;

	send_now(e, ch, "a");
	send_now(e, ch, "b");
	a = take(e, ch, "a");
	engine_lend(ch);
	send_now(e, ch, "c");		/* the buffer is full again */
	value_set_deliveries(a, 1);
	CU_ASSERT_EQUAL(engine_requeue(e, ch, a), STATUS_OK);	/* outside cap */
	CU_ASSERT_EQUAL(chan_len(ch), 2);
	CU_ASSERT_EQUAL(chan_nback(ch), 1);
	CU_ASSERT_EQUAL(chan_lent(ch), 0);
	a = take(e, ch, "a");		/* first out, metadata kept */
	CU_ASSERT_EQUAL(value_deliveries(a), 1);
	value_free(a);
	recv_now(e, ch, "b");
	recv_now(e, ch, "c");
	CU_ASSERT_EQUAL(engine_buffered_values(e), 0);
	CU_ASSERT_EQUAL(engine_buffered_bytes(e), 0);
	engine_free(e);
}

/* Values given back come out oldest first, also when given back while others wait. */
static void
collect(void *arg, const struct value *v)
{
	char *out = arg;

	strncat(out, (const char *)value_data(v), value_len(v));
}

static void
test_requeue_order(void)
{
	struct engine *e = new_engine(0, 0);
	struct chan *ch = mk(e, "q", 4);
	struct value *v[4];
	char seen[16] = "";
	const char *names[] = { "a", "b", "c", "d" };

	for (int i = 0; i < 4; i++)
		send_now(e, ch, names[i]);
	for (int i = 0; i < 4; i++) {
		v[i] = take(e, ch, names[i]);
		engine_lend(ch);
	}
	send_now(e, ch, "e");
	for (int i = 0; i < 3; i++)
		CU_ASSERT_EQUAL(engine_requeue(e, ch, v[i]), STATUS_OK);
	chan_foreach_value(ch, collect, seen);
	CU_ASSERT_STRING_EQUAL(seen, "abce");
	value_free(take(e, ch, "a"));
	CU_ASSERT_EQUAL(engine_requeue(e, ch, v[3]), STATUS_OK);	/* behind b and c */
	CU_ASSERT_EQUAL(chan_nback(ch), 3);
	recv_now(e, ch, "b");
	recv_now(e, ch, "c");
	recv_now(e, ch, "d");
	CU_ASSERT_EQUAL(chan_nback(ch), 0);
	v[0] = take(e, ch, "e");
	engine_lend(ch);
	CU_ASSERT_EQUAL(engine_requeue(e, ch, v[0]), STATUS_OK);	/* one alone */
	CU_ASSERT_EQUAL(chan_lent(ch), 0);
	recv_now(e, ch, "e");
	CU_ASSERT_EQUAL(engine_buffered_values(e), 0);
	CU_ASSERT_EQUAL(engine_buffered_bytes(e), 0);
	engine_free(e);
}

static void
test_requeue_to_waiting_receiver(void)
{
	struct engine *e = new_engine(0, 0);
	struct chan *ch = mk(e, "q", 0);
	struct rec r, s;
	struct value *v;

	send_wait(e, ch, "x", &s);
	v = take(e, ch, "x");		/* rendezvous */
	CU_ASSERT_EQUAL(s.calls, 1);
	engine_lend(ch);
	recv_wait(e, ch, &r);
	CU_ASSERT_EQUAL(engine_requeue(e, ch, v), STATUS_OK);
	CU_ASSERT_EQUAL(r.calls, 1);
	CU_ASSERT(r.res.ok && value_is(r.res.value, "x"));
	CU_ASSERT_PTR_EQUAL(r.res.ch, ch);
	CU_ASSERT_EQUAL(chan_nback(ch), 0);
	value_free(r.res.value);
	engine_free(e);
}

static void
test_close_waits_for_lent(void)
{
	struct engine *e = new_engine(0, 0);
	struct chan *ch = mk(e, "q", 1);
	struct rec r, r2;
	struct value *v;

	send_now(e, ch, "x");
	v = take(e, ch, "x");
	engine_lend(ch);
	CU_ASSERT_EQUAL(engine_close(e, ch), STATUS_OK);
	/* closed and drained, but x may come back: a receiver waits */
	recv_wait(e, ch, &r);
	CU_ASSERT_EQUAL(r.calls, 0);
	CU_ASSERT_EQUAL(engine_requeue(e, ch, v), STATUS_OK);
	CU_ASSERT_EQUAL(r.calls, 1);
	CU_ASSERT(r.res.ok && value_is(r.res.value, "x"));
	engine_lend(ch);		/* taken again */
	recv_wait(e, ch, &r2);
	CU_ASSERT_EQUAL(r2.calls, 0);
	engine_settle(e, ch);		/* acked: nothing can come back */
	CU_ASSERT_EQUAL(r2.calls, 1);
	CU_ASSERT_EQUAL(r2.res.status, STATUS_OK);
	CU_ASSERT_FALSE(r2.res.ok);
	value_free(r.res.value);
	engine_free(e);
}

static void
test_requeue_deleted(void)
{
	struct engine *e = new_engine(0, 0);
	struct chan *ch = mk(e, "q", 1);
	struct value *v;

	send_now(e, ch, "x");
	v = take(e, ch, "x");
	engine_lend(ch);
	engine_hold(ch);		/* as delivery holds what it lent */
	CU_ASSERT_EQUAL(engine_delete(e, ch, NULL), STATUS_OK);
	CU_ASSERT_EQUAL(engine_requeue(e, ch, v), STATUS_NOT_FOUND);	/* still the caller's */
	value_free(v);
	engine_settle(e, ch);
	engine_release(e, ch);
	engine_release(e, ch);		/* mk's hold */
	engine_free(e);
}

/* A nil case enabled later (delivery's limits): at once if ready, else queued behind the receivers. */
static void
test_op_enable(void)
{
	struct engine *e = new_engine(0, 0);
	struct chan *a = mk(e, "a", 4), *b = mk(e, "b", 4);
	struct engine_case cs[2] = { { NULL, CASE_RECV, NULL }, { b, CASE_RECV, NULL } };
	struct engine_result now;
	struct rec r = { 0 }, first = { 0 };

	send_now(e, a, "x");
	/* case 0 is nil: nothing is ready for it though a has a value */
	CU_ASSERT_EQUAL_FATAL(engine_submit(e, cs, 2, ENGINE_WAIT, rec_done, &r, &r.op, &now), 1);
	CU_ASSERT_EQUAL(chan_nreceivers(a), 0);
	engine_op_enable(e, r.op, 0, a);
	CU_ASSERT_EQUAL(r.calls, 1);
	CU_ASSERT(r.res.status == STATUS_OK && r.res.index == 0 && r.res.ch == a);
	CU_ASSERT(value_is(r.res.value, "x"));
	value_free(r.res.value);
	/* nothing ready: it queues behind a receiver already there */
	memset(&r, 0, sizeof r);
	recv_wait(e, a, &first);
	CU_ASSERT_EQUAL_FATAL(engine_submit(e, cs, 2, ENGINE_WAIT, rec_done, &r, &r.op, &now), 1);
	engine_op_enable(e, r.op, 0, a);
	CU_ASSERT_EQUAL(r.calls, 0);
	CU_ASSERT_EQUAL(chan_nreceivers(a), 2);
	send_now(e, a, "y");
	CU_ASSERT(first.calls == 1 && value_is(first.res.value, "y"));
	value_free(first.res.value);
	send_now(e, a, "z");
	CU_ASSERT(r.calls == 1 && r.res.index == 0 && value_is(r.res.value, "z"));
	value_free(r.res.value);
	CU_ASSERT_EQUAL(engine_nwaiters(e), 0);
	engine_free(e);
}

void
register_engine_lend(void)
{
	CU_pSuite s = test_suite("engine.lend", NULL, NULL);

	test_add(s, "a value given back goes ahead of the buffer, past cap", test_requeue_ahead_of_buffer);
	test_add(s, "values given back come out oldest first", test_requeue_order);
	test_add(s, "a value given back goes to a waiting receiver", test_requeue_to_waiting_receiver);
	test_add(s, "closed: ok=false only once nothing lent is outstanding", test_close_waits_for_lent);
	test_add(s, "a deleted channel takes nothing back", test_requeue_deleted);
	test_add(s, "a nil case enabled later receives, in turn", test_op_enable);
}
