/*
 * test_delivery_limits.c: the limits on values in flight (PROTOCOL.md
 * §16, Limits) against a real chand: max_ack_pending, the channel-wide
 * limit, across connections and in order; a SELECT receive case at a limit
 * is not ready, and waits for room; a NACK and an ack_wait expiry each
 * make room for a waiting receiver. The wire is driven by hand (srvtest.h)
 * so that every ACK is the test's own: the client library's select and
 * stream helpers ack by themselves. Waits are replies read with a generous
 * bound; a receive that must wait is shown waiting by a PING answered
 * after it (frames run in order) and by the value left in the buffer.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clienttest.h"
#include "srvtest.h"

static struct proto_out o;

/* An ack channel with the two limits (0: none) on the suite's connection. */
static chan_t *
mk(const char *name, size_t cap, int64_t ack_wait_ns, uint32_t max_unacked,
    uint32_t max_ack_pending)
{
	chan_delivery_opts_t opts = CHAN_DELIVERY_OPTS_INIT;
	chan_t *ch = NULL;

	opts.ack_wait_ns = ack_wait_ns;
	opts.max_unacked = max_unacked;
	opts.max_ack_pending = max_ack_pending;
	CU_ASSERT_EQUAL_FATAL(chan_make_opts(NULL, csuite.conn, name, cap, &opts, &ch), CHAN_OK);
	return ch;
}

static void
send_s(chan_t *ch, const char *s)
{
	CU_ASSERT_EQUAL(chan_send(NULL, ch, s, strlen(s)), CHAN_OK);
}

static chan_info_t
info(chan_t *ch)
{
	chan_info_t i;

	memset(&i, 0, sizeof i);
	CU_ASSERT_EQUAL(chan_info(NULL, ch, &i), CHAN_OK);
	return i;
}

/* The next reply on t must answer id (a request of kind op): decoded into *r. */
static void
expect(struct test_conn *t, uint64_t id, uint64_t op, struct proto_reply *r)
{
	const uint8_t *body;
	const char *why;
	uint64_t got;
	int status;
	long n = test_conn_frame(t, REPLY_MS, &body);

	CU_ASSERT_FATAL(n > 0);
	CU_ASSERT_EQUAL_FATAL(proto_reply_header(body, (size_t)n, &got, &status, &why), STATUS_OK);
	CU_ASSERT_EQUAL_FATAL(got, id);
	CU_ASSERT_EQUAL_FATAL(proto_decode_reply(body, (size_t)n, op, r, &why), STATUS_OK);
}

/* The next reply answers id with value want, tagged, delivered count times; returns the tag. */
static uint64_t
expect_value(struct test_conn *t, uint64_t id, uint64_t op, const char *want, uint32_t count)
{
	struct proto_reply r;

	expect(t, id, op, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
	CU_ASSERT(r.ok && r.tag != 0 && ST_VALUE_IS(r, want));
	CU_ASSERT_EQUAL(r.count, count);
	return r.tag;
}

/* RECV (no deadline) answered with want at once. */
static uint64_t
take(struct test_conn *t, const char *name, const char *want)
{
	return expect_value(t, st_recv(t, name, -1), OP_RECV, want, 1);
}

/* Everything t sent before is done and unanswered: a PING's reply comes next. */
static void
quiet(struct test_conn *t)
{
	struct proto_reply r;

	expect(t, st_ping(t), OP_PING, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
}

static uint64_t
ack(struct test_conn *t, uint64_t tag)
{
	uint64_t id = t->next_id++;

	CU_ASSERT_EQUAL_FATAL(proto_req_ack(&o, id, &tag, 1), 0);
	st_write(t, &o);
	return id;
}

static void
ack_ok(struct test_conn *t, uint64_t id)
{
	struct proto_reply r;

	expect(t, id, OP_ACK, &r);
	CU_ASSERT(r.status == STATUS_OK && r.n == 1);
}

static int
suite_init(void)
{
	proto_out_init(&o);
	return cs_suite_init();
}

static int
suite_clean(void)
{
	proto_out_destroy(&o);
	return cs_suite_clean();
}

/* MAKE's max_ack_pending: INFO shows it, EXISTS on another, BAD_REQUEST out of range. */
static void
test_make_option(void)
{
	static const char name[] = "l.make";
	chan_delivery_opts_t opts = CHAN_DELIVERY_OPTS_INIT;
	struct proto_delivery d = { .on = true, .ack_wait_us = 1000000, .max_deliver = 5,
	    .max_unacked = 10, .max_ack_pending = (uint64_t)UINT32_MAX + 1 };
	chan_t *ch = mk(name, 4, CHAN_SEC, 10, 3), *x = NULL;
	chan_info_t i = info(ch);
	struct test_conn t;
	struct proto_reply r;

	CU_ASSERT_EQUAL(i.max_ack_pending, 3);
	CU_ASSERT_EQUAL(i.max_unacked, 10);
	opts.ack_wait_ns = CHAN_SEC;
	opts.max_unacked = 10;
	opts.max_ack_pending = 3;
	CU_ASSERT_EQUAL(chan_make_opts(NULL, csuite.conn, name, 4, &opts, &x), CHAN_OK);
	chan_free(x);
	opts.max_ack_pending = 4;
	CU_ASSERT_EQUAL(chan_make_opts(NULL, csuite.conn, name, 4, &opts, &x), CHAN_EEXISTS);
	opts.max_ack_pending = 0;	/* the default: no limit, not this channel's */
	CU_ASSERT_EQUAL(chan_make_opts(NULL, csuite.conn, name, 4, &opts, &x), CHAN_EEXISTS);
	CU_ASSERT_FATAL(test_conn_open(&t, csuite.srv.port, true) == 0);
	CU_ASSERT_EQUAL_FATAL(proto_req_make_opts(&o, t.next_id++, "l.make2", 7, 4, &d), 0);
	st_write(&t, &o);
	st_reply(&t, OP_MAKE, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_BAD_REQUEST);
	test_conn_close(&t);
	/* a channel made without it shows 0 */
	chan_free(ch);
	ch = mk("l.make3", 4, CHAN_SEC, 10, 0);
	CU_ASSERT_EQUAL(info(ch).max_ack_pending, 0);
	chan_free(ch);
}

/*
 * max_ack_pending 2 over two connections: a greedy consumer holding both
 * and asking for more waits, and so does another consumer, with a value
 * in the buffer; each ACK lets the oldest waiting receive go, whoever
 * made it.
 */
static void
test_greedy_waits(void)
{
	static const char name[] = "l.greedy";
	chan_t *ch = mk(name, 8, 30 * CHAN_SEC, 0, 2);
	struct test_conn g, w;
	uint64_t g1, g2, g3, gr, wr, gr2, a;
	chan_info_t i;

	CU_ASSERT_FATAL(test_conn_open(&g, csuite.srv.port, true) == 0);
	CU_ASSERT_FATAL(test_conn_open(&w, csuite.srv.port, true) == 0);
	send_s(ch, "1");
	send_s(ch, "2");
	send_s(ch, "3");
	g1 = take(&g, name, "1");
	g2 = take(&g, name, "2");
	/* the channel is at its limit: both receives wait, "3" stays buffered */
	gr = st_recv(&g, name, -1);
	quiet(&g);
	wr = st_recv(&w, name, -1);
	quiet(&w);
	i = info(ch);
	CU_ASSERT_EQUAL(i.inflight, 2);
	CU_ASSERT_EQUAL(i.len, 3);	/* two in flight and one buffered */
	/* with wait 0 at the limit: DEADLINE_EXCEEDED */
	{
		struct proto_reply r;
		uint64_t id = st_recv(&w, name, 0);

		expect(&w, id, OP_RECV, &r);
		CU_ASSERT_EQUAL(r.status, STATUS_DEADLINE_EXCEEDED);
	}
	/* an ACK makes room for one: the oldest waiting receive, g's own */
	a = ack(&g, g1);
	g3 = expect_value(&g, gr, OP_RECV, "3", 1);
	ack_ok(&g, a);
	send_s(ch, "4");
	quiet(&w);		/* w still waits: g holds two */
	CU_ASSERT_EQUAL(info(ch).len, 3);
	/* g asks again, after w: the next room is w's */
	gr2 = st_recv(&g, name, -1);
	quiet(&g);
	ack_ok(&g, ack(&g, g2));
	CU_ASSERT_EQUAL(expect_value(&w, wr, OP_RECV, "4", 1) != 0, true);
	quiet(&g);		/* gr2 waits on */
	CU_ASSERT_EQUAL(info(ch).inflight, 2);
	ack_ok(&g, ack(&g, g3));
	send_s(ch, "5");
	expect_value(&g, gr2, OP_RECV, "5", 1);
	test_conn_close(&w);
	test_conn_close(&g);
	chan_free(ch);
}

/* A NACK makes room on the channel: the value goes to the receive waiting at the limit. */
static void
test_nack_makes_room(void)
{
	static const char name[] = "l.nack";
	chan_t *ch = mk(name, 8, 30 * CHAN_SEC, 0, 1);
	struct test_conn a, b;
	struct proto_reply r;
	uint64_t tag, id, wr;

	CU_ASSERT_FATAL(test_conn_open(&a, csuite.srv.port, true) == 0);
	CU_ASSERT_FATAL(test_conn_open(&b, csuite.srv.port, true) == 0);
	send_s(ch, "a");
	send_s(ch, "b");
	tag = take(&a, name, "a");
	wr = st_recv(&b, name, -1);
	quiet(&b);		/* "b" is buffered, but the channel is at its limit */
	id = a.next_id++;
	CU_ASSERT_EQUAL_FATAL(proto_req_nack(&o, id, tag, 0), 0);
	st_write(&a, &o);
	expect(&a, id, OP_NACK, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
	/* the NACKed value is the next one out, to the receive that waited */
	tag = expect_value(&b, wr, OP_RECV, "a", 2);
	ack_ok(&b, ack(&b, tag));
	take(&a, name, "b");
	test_conn_close(&a);
	test_conn_close(&b);
	chan_free(ch);
}

/* An ack_wait expiry makes room the same way. */
static void
test_expiry_makes_room(void)
{
	static const char name[] = "l.expiry";
	chan_t *ch = mk(name, 8, CHAN_SEC / 5, 0, 1);
	struct test_conn a, b;
	uint64_t wr, tag;

	CU_ASSERT_FATAL(test_conn_open(&a, csuite.srv.port, true) == 0);
	CU_ASSERT_FATAL(test_conn_open(&b, csuite.srv.port, true) == 0);
	send_s(ch, "a");
	send_s(ch, "b");
	(void)take(&a, name, "a");
	wr = st_recv(&b, name, -1);
	quiet(&b);
	/* a never acks: after ack_wait "a" comes back, to b */
	tag = expect_value(&b, wr, OP_RECV, "a", 2);
	ack_ok(&b, ack(&b, tag));
	test_conn_close(&a);
	test_conn_close(&b);
	chan_free(ch);
}

/* A SELECT over an ack channel at max_unacked and a ready plain channel takes the plain one, always. */
static void
test_select_skips_limited(void)
{
	static const char name[] = "l.sel", pname[] = "l.sel.plain";
	struct proto_case pc[2] = { { .name = name, .name_len = sizeof name - 1 },
	    { .name = pname, .name_len = sizeof pname - 1 } };
	struct proto_case nc[2] = { { .name = NULL }, { .name = pname, .name_len = sizeof pname - 1 } };
	chan_t *ch = mk(name, 64, 30 * CHAN_SEC, 1, 0), *plain = NULL;
	struct test_conn t;
	struct proto_reply r;

	CU_ASSERT_EQUAL_FATAL(chan_make(NULL, csuite.conn, pname, 64, &plain), CHAN_OK);
	CU_ASSERT_FATAL(test_conn_open(&t, csuite.srv.port, true) == 0);
	send_s(ch, "held");
	(void)take(&t, name, "held");
	/* both are ready; the ack channel's case is not for t: 32 picks of one of two */
	for (int k = 0; k < 32; k++) {
		send_s(ch, "a");
		send_s(plain, "p");
		expect(&t, st_select(&t, pc, 2, false, -1), OP_SELECT, &r);
		CU_ASSERT_EQUAL(r.status, STATUS_OK);
		CU_ASSERT(r.index == 1 && r.tag == 0 && ST_VALUE_IS(r, "p"));
	}
	CU_ASSERT_EQUAL(info(ch).inflight, 1);
	/* a nil case (no channel: never ready) first, then the plain one */
	send_s(plain, "n");
	expect(&t, st_select(&t, nc, 2, false, -1), OP_SELECT, &r);
	CU_ASSERT(r.status == STATUS_OK && r.index == 1 && ST_VALUE_IS(r, "n"));
	/* alone, with a default: the default, though a value is buffered */
	expect(&t, st_select(&t, pc, 1, true, -1), OP_SELECT, &r);
	CU_ASSERT(r.status == STATUS_OK && r.index == -1);
	/* alone, with wait 0: DEADLINE_EXCEEDED */
	expect(&t, st_select(&t, pc, 1, false, 0), OP_SELECT, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_DEADLINE_EXCEEDED);
	test_conn_close(&t);
	chan_free(plain);
	chan_free(ch);
}

/*
 * A SELECT whose only ready case is at the limit waits: another case
 * becoming ready fires it, and so does an ACK from the same connection.
 */
static void
test_select_waits_for_room(void)
{
	static const char name[] = "l.selw", pname[] = "l.selw.plain";
	struct proto_case pc[2] = { { .name = name, .name_len = sizeof name - 1 },
	    { .name = pname, .name_len = sizeof pname - 1 } };
	chan_t *ch = mk(name, 8, 30 * CHAN_SEC, 1, 0), *plain = NULL;
	struct test_conn t;
	struct proto_reply r;
	uint64_t tag, sid, a;

	CU_ASSERT_EQUAL_FATAL(chan_make(NULL, csuite.conn, pname, 8, &plain), CHAN_OK);
	CU_ASSERT_FATAL(test_conn_open(&t, csuite.srv.port, true) == 0);
	send_s(ch, "1");
	send_s(ch, "2");
	tag = take(&t, name, "1");
	/* over both: nothing for t now; a value on the plain channel fires it */
	sid = st_select(&t, pc, 2, false, -1);
	quiet(&t);
	send_s(plain, "p");
	expect(&t, sid, OP_SELECT, &r);
	CU_ASSERT(r.status == STATUS_OK && r.index == 1 && ST_VALUE_IS(r, "p"));
	/* over the ack channel alone: it waits, "2" buffered, until t acks */
	sid = st_select(&t, pc, 1, false, -1);
	quiet(&t);
	CU_ASSERT_EQUAL(info(ch).len, 2);
	a = ack(&t, tag);
	tag = expect_value(&t, sid, OP_SELECT, "2", 1);
	ack_ok(&t, a);
	/* a waiting SELECT with room is a receiver like any other */
	sid = st_select(&t, pc, 2, false, -1);
	quiet(&t);
	CU_ASSERT_EQUAL(info(ch).receivers, 0);
	ack_ok(&t, ack(&t, tag));
	CU_ASSERT(wait_waiters(name, 0, 1));
	send_s(ch, "3");
	tag = expect_value(&t, sid, OP_SELECT, "3", 1);
	ack_ok(&t, ack(&t, tag));
	test_conn_close(&t);
	chan_free(plain);
	chan_free(ch);
}

/* The channel-wide limit holds a SELECT case of another connection too; a CANCEL leaves nothing behind. */
static void
test_select_chan_limit(void)
{
	static const char name[] = "l.selc";
	struct proto_case pc = { .name = name, .name_len = sizeof name - 1 };
	chan_t *ch = mk(name, 8, 30 * CHAN_SEC, 0, 1);
	struct test_conn a, b;
	struct proto_reply r;
	uint64_t tag, sid, cid;

	CU_ASSERT_FATAL(test_conn_open(&a, csuite.srv.port, true) == 0);
	CU_ASSERT_FATAL(test_conn_open(&b, csuite.srv.port, true) == 0);
	send_s(ch, "1");
	send_s(ch, "2");
	tag = take(&a, name, "1");
	/* b's SELECT waits; canceled, it leaves the channel's queue */
	sid = st_select(&b, &pc, 1, false, -1);
	quiet(&b);
	cid = b.next_id++;
	CU_ASSERT_EQUAL_FATAL(proto_req_cancel(&o, cid, sid), 0);
	st_write(&b, &o);
	expect(&b, sid, OP_SELECT, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_CANCELED);
	expect(&b, cid, OP_CANCEL, &r);
	sid = st_select(&b, &pc, 1, false, -1);
	quiet(&b);
	ack_ok(&a, ack(&a, tag));
	tag = expect_value(&b, sid, OP_SELECT, "2", 1);
	ack_ok(&b, ack(&b, tag));
	test_conn_close(&a);
	test_conn_close(&b);
	chan_free(ch);
}

/* The next frame on t is STREAM sid's value from channel index: want, tagged if tagged; the tag. */
static uint64_t
stream_value_is(struct test_conn *t, uint64_t sid, int64_t index, const char *want, bool tagged)
{
	struct proto_reply r;

	st_next(t, sid, OP_PING, &r);
	CU_ASSERT_EQUAL_FATAL(r.id, sid);
	CU_ASSERT(r.status == STATUS_OK && r.interim && r.ok);
	CU_ASSERT_EQUAL(r.index, index);
	CU_ASSERT(ST_VALUE_IS(r, want));
	CU_ASSERT_EQUAL(r.tag != 0, tagged);
	return r.tag;
}

/*
 * A STREAM over an ack channel at max_unacked and a plain channel: the
 * plain one flows while the ack channel's values wait; an ACK and more
 * credit let the next one come.
 */
static void
test_stream_two_channels(void)
{
	static const char name[] = "l.str", pname[] = "l.str.plain";
	struct proto_case pc[2] = { { .name = name, .name_len = sizeof name - 1 },
	    { .name = pname, .name_len = sizeof pname - 1 } };
	chan_t *ch = mk(name, 8, 30 * CHAN_SEC, 1, 0), *plain = NULL;
	struct test_conn t;
	struct proto_reply r;
	uint64_t sid, tag, cid, aid;
	bool credit_ok = false, value = false;
	chan_info_t i;

	CU_ASSERT_EQUAL_FATAL(chan_make(NULL, csuite.conn, pname, 8, &plain), CHAN_OK);
	CU_ASSERT_FATAL(test_conn_open(&t, csuite.srv.port, true) == 0);
	send_s(ch, "a1");
	send_s(ch, "a2");
	sid = t.next_id++;
	CU_ASSERT_EQUAL_FATAL(proto_req_stream(&o, sid, PROTO_WAIT_FOREVER, pc, 2, 4), 0);
	st_write(&t, &o);
	tag = stream_value_is(&t, sid, 0, "a1", true);
	/* the ack channel gives no more: the plain one takes the rest of the credit */
	send_s(plain, "p1");
	send_s(plain, "p2");
	send_s(plain, "p3");
	stream_value_is(&t, sid, 1, "p1", false);
	stream_value_is(&t, sid, 1, "p2", false);
	stream_value_is(&t, sid, 1, "p3", false);
	i = info(ch);
	CU_ASSERT_EQUAL(i.inflight, 1);
	CU_ASSERT_EQUAL(i.len, 2);	/* a2 still buffered */
	/* the ACK makes room, more credit takes a2 */
	ack_ok(&t, ack(&t, tag));
	cid = t.next_id++;
	CU_ASSERT_EQUAL_FATAL(proto_req_credit(&o, cid, sid, 1), 0);
	st_write(&t, &o);
	for (int k = 0; k < 2; k++) {
		st_next(&t, sid, OP_CREDIT, &r);
		if (r.id == cid) {
			CU_ASSERT_EQUAL(r.status, STATUS_OK);
			credit_ok = true;
		} else {
			CU_ASSERT(r.id == sid && r.index == 0 && ST_VALUE_IS(r, "a2") && r.tag != 0);
			tag = r.tag;
			value = true;
		}
	}
	CU_ASSERT(credit_ok && value);
	aid = ack(&t, tag);
	ack_ok(&t, aid);
	CU_ASSERT_EQUAL(info(ch).inflight, 0);
	/* the stream holds no room it cannot use: credit 0, a RECV elsewhere is served */
	send_s(ch, "a3");
	{
		chan_msg_t m;
		bool ok;

		CU_ASSERT_EQUAL(chan_recv_msg(NULL, ch, &m, &ok), CHAN_OK);
		CU_ASSERT(ok && m.value.len == 2 && memcmp(m.value.data, "a3", 2) == 0);
		CU_ASSERT_EQUAL(chan_ack_n(NULL, ch, &m.tag, 1), CHAN_OK);
		chan_msg_clear(&m);
	}
	test_conn_close(&t);
	chan_free(plain);
	chan_free(ch);
}

/*
 * max_ack_pending across a STREAM over two channels and another
 * connection's RECV: the stream's unused credit on the ack channel is
 * room the RECV cannot have, until the stream's credit is spent elsewhere.
 */
static void
test_stream_chan_limit(void)
{
	static const char name[] = "l.strc", pname[] = "l.strc.plain";
	struct proto_case pc[2] = { { .name = name, .name_len = sizeof name - 1 },
	    { .name = pname, .name_len = sizeof pname - 1 } };
	chan_t *ch = mk(name, 8, 30 * CHAN_SEC, 0, 2), *plain = NULL;
	struct test_conn t, u;
	uint64_t sid, tag, wr;

	CU_ASSERT_EQUAL_FATAL(chan_make(NULL, csuite.conn, pname, 8, &plain), CHAN_OK);
	CU_ASSERT_FATAL(test_conn_open(&t, csuite.srv.port, true) == 0);
	CU_ASSERT_FATAL(test_conn_open(&u, csuite.srv.port, true) == 0);
	sid = t.next_id++;
	CU_ASSERT_EQUAL_FATAL(proto_req_stream(&o, sid, PROTO_WAIT_FOREVER, pc, 2, 2), 0);
	st_write(&t, &o);
	quiet(&t);
	/* the stream's two units count on the ack channel: u's RECV waits, no receiver of it */
	wr = st_recv(&u, name, -1);
	quiet(&u);
	CU_ASSERT_EQUAL(info(ch).receivers, 2);
	send_s(ch, "a1");
	tag = stream_value_is(&t, sid, 0, "a1", true);
	/* one unit left, one in flight: still no room for u */
	CU_ASSERT_EQUAL(info(ch).receivers, 1);
	send_s(plain, "p1");
	stream_value_is(&t, sid, 1, "p1", false);
	/* the stream's credit is spent: its claim goes, u's RECV is a receiver now */
	CU_ASSERT(wait_waiters(name, 0, 1));
	send_s(ch, "a2");
	expect_value(&u, wr, OP_RECV, "a2", 1);
	ack_ok(&t, ack(&t, tag));
	test_conn_close(&u);
	test_conn_close(&t);
	chan_free(plain);
	chan_free(ch);
}

static void
register_suites(void)
{
	CU_pSuite s = test_suite("delivery limits", suite_init, suite_clean);

	test_add(s, "max_ack_pending on MAKE: INFO, EXISTS, BAD_REQUEST", test_make_option);
	test_add(s, "max_ack_pending holds a greedy consumer while another is served",
	    test_greedy_waits);
	test_add(s, "a NACK makes room for a waiting receiver", test_nack_makes_room);
	test_add(s, "an ack_wait expiry makes room for a waiting receiver", test_expiry_makes_room);
	test_add(s, "a SELECT case at max_unacked is not ready", test_select_skips_limited);
	test_add(s, "a SELECT at the limit waits for another case or an ACK",
	    test_select_waits_for_room);
	test_add(s, "max_ack_pending holds another connection's SELECT; CANCEL",
	    test_select_chan_limit);
	test_add(s, "a STREAM over two channels: one at max_unacked waits, the other flows",
	    test_stream_two_channels);
	test_add(s, "max_ack_pending counts a STREAM over two channels, up to its credit",
	    test_stream_chan_limit);
}

int
main(int argc, char **argv)
{
	return test_main(argc, argv, register_suites);
}
