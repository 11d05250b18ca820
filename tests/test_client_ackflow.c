/*
 * test_client_ackflow.c: what libchanclient puts on the wire for an ack
 * channel's consumer (PROTOCOL.md §14, §16), counted by a real chand:
 * the tags acked between two writes leave in one ACK frame (not a frame
 * and a reply per value), ahead of the request that follows them. Frames
 * are counted with STATS' requests_total. Then the server's ack_wait
 * timers, one per channel over its values in deadline order: values come
 * back in that order whatever was acked or touched meanwhile, and a
 * channel deleted with values in flight gives them up without its timer
 * outliving it. Every wait is a blocking receive or a
 * polled condition with a generous bound; times are checked only as lower
 * bounds (a value must not come back before its ack_wait).
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clienttest.h"

#define LONG_NS (10 * CHAN_SEC)		/* budget of a receive that must succeed */

static chan_t *
mk_wait(chan_conn_t *c, const char *name, size_t cap, uint32_t max_unacked, int64_t ack_wait_ns)
{
	chan_delivery_opts_t o = CHAN_DELIVERY_OPTS_INIT;
	chan_t *ch = NULL;

	o.max_unacked = max_unacked;
	o.ack_wait_ns = ack_wait_ns;
	CU_ASSERT_EQUAL_FATAL(chan_make_opts(NULL, c, name, cap, &o, &ch), CHAN_OK);
	return ch;
}

static chan_t *
mk(chan_conn_t *c, const char *name, size_t cap, uint32_t max_unacked)
{
	return mk_wait(c, name, cap, max_unacked, 30 * CHAN_SEC);
}

/* A STATS key read through the suite's own connection (one request). */
static uint64_t
stat(const char *key)
{
	chan_stat_t *st = NULL;
	size_t n = 0;
	uint64_t v = UINT64_MAX;

	CU_ASSERT_EQUAL_FATAL(chan_admin_stats(NULL, csuite.conn, &st, &n), CHAN_OK);
	for (size_t i = 0; i < n; i++)
		if (strcmp(st[i].key, key) == 0)
			v = st[i].value;
	free(st);
	return v;
}

static void
recv_msg(chan_t *ch, chan_msg_t *m)
{
	chan_ctx_t *ctx;
	bool ok = false;

	chan_with_timeout(&ctx, NULL, LONG_NS);
	CU_ASSERT_EQUAL_FATAL(chan_recv_msg(ctx, ch, m, &ok), CHAN_OK);
	chan_ctx_free(ctx);
	CU_ASSERT_FATAL(ok && m->tag != 0);
}

/*
 * Receive n values from a fresh ack channel, chan_ack each, flush: the
 * request frames that carried the acks, as the server counted them.
 */
static uint64_t
ack_frames(const char *name, size_t n)
{
	chan_conn_t *c = cs_dial(NULL);
	chan_t *ch = mk(c, name, n, 0);
	chan_msg_t *m = calloc(n, sizeof *m);
	uint64_t acked, before, polls = 0;

	CU_ASSERT_FATAL(m != NULL);
	for (size_t i = 0; i < n; i++)
		CU_ASSERT_EQUAL(chan_send(NULL, ch, "v", 1), CHAN_OK);
	for (size_t i = 0; i < n; i++)
		recv_msg(ch, &m[i]);
	acked = stat("acked");
	before = stat("requests_total");	/* counts itself */
	for (size_t i = 0; i < n; i++) {
		CU_ASSERT_EQUAL(chan_ack(ch, &m[i]), CHAN_OK);
		chan_msg_clear(&m[i]);
	}
	CU_ASSERT_EQUAL(chan_conn_flush(c), CHAN_OK);
	for (int t = 0; t < BOUND_MS && stat("acked") != acked + n; t++, polls++)
		pause_1ms();
	polls++;
	CU_ASSERT_EQUAL(stat("acked"), acked + n);
	polls++;
	/* since `before`: the polls, the STATS below, and the ACKs */
	acked = stat("requests_total") - before - polls - 1;
	free(m);
	chan_free(ch);
	chan_conn_close(c);
	return acked;
}

static void
test_acks_share_a_frame(void)
{
	CU_ASSERT_EQUAL(ack_frames("af.ten", 10), 1);
	/* past 512 tags a second frame (a frame must stay within max_frame) */
	CU_ASSERT_EQUAL(ack_frames("af.many", 600), 2);
}

static int
suite_init_small(void)
{
	return cs_up("max_frame = 1024\nmax_value = 256\n", true);
}

/* max_frame 1024: (1024 - 32) / 9 = 110 tags a frame, so 200 acks take 2, and none is refused. */
static void
test_acks_small_frames(void)
{
	CU_ASSERT_EQUAL(ack_frames("af.small", 200), 2);
	CU_ASSERT_EQUAL(stat("protocol_errors"), 0);
}

/*
 * The acks go ahead of the next request: at max_unacked 1 a try-receive
 * right after chan_ack finds room (were the ACK queued behind it, the
 * receive would meet the limit: "max_unacked reached").
 */
static void
test_acks_before_next_request(void)
{
	chan_conn_t *c = cs_dial(NULL);
	chan_t *ch = mk(c, "af.order", 4, 1);
	chan_value_t v;
	chan_msg_t m;
	bool ok = false;

	CU_ASSERT_EQUAL(chan_send(NULL, ch, "1", 1), CHAN_OK);
	CU_ASSERT_EQUAL(chan_send(NULL, ch, "2", 1), CHAN_OK);
	recv_msg(ch, &m);
	CU_ASSERT_EQUAL(chan_ack(ch, &m), CHAN_OK);
	chan_msg_clear(&m);
	CU_ASSERT_EQUAL(chan_try_recv(NULL, ch, &v, &ok), CHAN_OK);
	CU_ASSERT(ok && v.len == 1 && memcmp(v.data, "2", 1) == 0);
	chan_value_clear(&v);
	chan_free(ch);
	chan_conn_close(c);
}

/* Receive (bounded) into *m, which must be want, delivered for the count-th time. */
static void
recv_is(chan_t *ch, const char *want, uint32_t count, chan_msg_t *m)
{
	recv_msg(ch, m);
	CU_ASSERT(m->value.len == strlen(want) && memcmp(m->value.data, want, m->value.len) == 0);
	CU_ASSERT_EQUAL(m->count, count);
}

/*
 * a, b, c taken; a acked (the head of the channel's due list), b touched
 * (now due last): c comes back first, then b, each no sooner than its
 * ack_wait allows.
 */
static void
test_due_order(void)
{
	const int64_t wait = 300 * CHAN_MSEC;
	chan_conn_t *b = cs_dial(NULL);
	chan_t *ch = mk_wait(csuite.conn, "af.due", 4, 0, wait), *bch;
	chan_msg_t m[3], r;
	int64_t t0, t1;

	CU_ASSERT_EQUAL_FATAL(chan_handle_new(&bch, b, "af.due"), CHAN_OK);
	for (int i = 0; i < 3; i++)
		CU_ASSERT_EQUAL(chan_send(NULL, ch, (const char *[]){ "a", "b", "c" }[i], 1), CHAN_OK);
	t0 = chan_now();
	recv_is(ch, "a", 1, &m[0]);
	recv_is(ch, "b", 1, &m[1]);
	recv_is(ch, "c", 1, &m[2]);
	CU_ASSERT_EQUAL(chan_ack_n(NULL, ch, &m[0].tag, 1), CHAN_OK);
	t1 = chan_now();
	CU_ASSERT_EQUAL(chan_touch(NULL, ch, &m[1]), CHAN_OK);
	recv_is(bch, "c", 2, &r);
	CU_ASSERT(chan_now() - t0 >= wait);
	CU_ASSERT_EQUAL(chan_ack_n(NULL, bch, &r.tag, 1), CHAN_OK);
	chan_msg_clear(&r);
	recv_is(bch, "b", 2, &r);
	CU_ASSERT(chan_now() - t1 >= wait);
	CU_ASSERT_EQUAL(chan_ack_n(NULL, bch, &r.tag, 1), CHAN_OK);
	chan_msg_clear(&r);
	for (int i = 0; i < 3; i++)
		chan_msg_clear(&m[i]);
	chan_free(bch);
	chan_free(ch);
	chan_conn_close(b);
}

/* Deleted with two values in flight: at ack_wait both are dropped and counted; the server lives on. */
static void
test_due_deleted(void)
{
	chan_conn_t *c = cs_dial(NULL);
	chan_t *ch = mk_wait(c, "af.gone", 4, 0, 100 * CHAN_MSEC);
	uint64_t dropped = stat("delivery_dropped");
	chan_msg_t m[2];

	CU_ASSERT_EQUAL(chan_send(NULL, ch, "x", 1), CHAN_OK);
	CU_ASSERT_EQUAL(chan_send(NULL, ch, "y", 1), CHAN_OK);
	recv_msg(ch, &m[0]);
	recv_msg(ch, &m[1]);
	CU_ASSERT_EQUAL(chan_delete(NULL, ch, NULL), CHAN_OK);
	for (int t = 0; t < BOUND_MS && stat("delivery_dropped") != dropped + 2; t++)
		pause_1ms();
	CU_ASSERT_EQUAL(stat("delivery_dropped"), dropped + 2);
	CU_ASSERT_EQUAL(stat("inflight"), 0);
	chan_msg_clear(&m[0]);
	chan_msg_clear(&m[1]);
	chan_free(ch);
	chan_conn_close(c);
}

static void
register_suites(void)
{
	CU_pSuite s = test_suite("ackflow", cs_suite_init, cs_suite_clean);

	test_add(s, "acks between two writes share one ACK frame", test_acks_share_a_frame);
	test_add(s, "acks go ahead of the next request", test_acks_before_next_request);
	test_add(s, "ack_wait: back in deadline order after an ACK and a TOUCH", test_due_order);
	test_add(s, "ack_wait on a deleted channel: dropped, counted", test_due_deleted);
	s = test_suite("ackflow-small-frames", suite_init_small, cs_suite_clean);
	test_add(s, "ACK frames stay within the server's max_frame", test_acks_small_frames);
}

int
main(int argc, char **argv)
{
	return test_main(argc, argv, register_suites);
}
