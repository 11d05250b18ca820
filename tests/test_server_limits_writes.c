/*
 * test_server_limits_writes.c: how chand writes its replies, part of
 * test_server_limits: a reply made by another connection or by a deadline
 * goes out before the loop sleeps, a reply larger than the socket takes is
 * finished later, close after flush with a partly written reply, deferred
 * replies held until the next reply or WANT and bounded (PROTOCOL.md §15),
 * and replies to others before a long select. The bystander keeps working
 * throughout.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "srvtest.h"
#include "limitstest.h"

/* ---- writes: replies go out before the loop sleeps (server/conn_io.c) ------------------- */

#define BIG_VALUE (8u << 20)	/* far more than a 4 KiB receive buffer and the kernel's send buffer */

static int
init_big(void)
{
	return start("max_value = 9M\nmax_frame = 10M\noutput_hwm = 64M\n");
}

/* The largest unsent byte count of any client, from CLIENTS through the bystander. */
static uint64_t
max_unsent(void)
{
	struct proto_out o;
	struct proto_reply r;
	struct proto_client_info ci;
	uint64_t most = 0;

	proto_out_init(&o);
	proto_req_simple(&o, OP_CLIENTS, bystander.next_id++);
	st_write(&bystander, &o);
	proto_out_destroy(&o);
	st_reply(&bystander, OP_CLIENTS, &r);
	while (proto_list_client(&r.list, &ci) == 1)
		most = ci.unsent > most ? ci.unsent : most;
	return most;
}

/* Wait (up to 10 s) until some client has unsent output: the server's write would block. */
static bool
await_unsent(void)
{
	int64_t end = clock_now_ns() + 10 * NSEC_PER_SEC;

	while (clock_now_ns() < end)
		if (max_unsent() > 0)
			return true;
	return false;
}

/*
 * Replies made outside the connection's own read: a SEND on another
 * connection completes a waiting RECV, and a deadline ends another. Each
 * is written before the loop sleeps: it arrives at once, with nothing more
 * sent on that connection to wake it.
 */
static void
test_reply_from_elsewhere(void)
{
	const char *n = st_name("elsewhere");
	struct test_conn rx;
	struct proto_reply r;
	uint64_t id;

	CU_ASSERT_FATAL(test_conn_open(&rx, srv.port, true) == 0);
	CU_ASSERT_EQUAL(st_make(&bystander, n, 0), STATUS_OK);
	id = st_recv(&rx, n, PROTO_WAIT_FOREVER);
	CU_ASSERT_FATAL(st_await_waiters(&bystander, n, -1, 1));
	CU_ASSERT_EQUAL(st_send_wait(&bystander, n, "v", PROTO_WAIT_FOREVER), STATUS_OK);
	CU_ASSERT_EQUAL_FATAL(test_conn_reply(&rx, OP_RECV, 1000, &r), 0);
	CU_ASSERT_EQUAL(r.id, id);
	CU_ASSERT(r.ok && ST_VALUE_IS(r, "v"));
	/* a deadline's reply: made by a timer, with no I/O on any connection */
	id = st_recv(&rx, n, 20000);
	CU_ASSERT_EQUAL_FATAL(test_conn_reply(&rx, OP_RECV, 1000, &r), 0);
	CU_ASSERT_EQUAL(r.id, id);
	CU_ASSERT_EQUAL(r.status, STATUS_DEADLINE_EXCEEDED);
	test_conn_close(&rx);
}

/* Send a BIG_VALUE of a known pattern into channel n (cap 1) through the bystander. */
static uint8_t *
put_big(const char *n)
{
	uint8_t *v = malloc(BIG_VALUE);

	CU_ASSERT_FATAL(v != NULL);
	for (size_t i = 0; i < BIG_VALUE; i++)
		v[i] = (uint8_t)(i * 31 + 7);
	CU_ASSERT_EQUAL(st_make(&bystander, n, 1), STATUS_OK);
	st_send(&bystander, n, v, BIG_VALUE, 0);
	return v;
}

/*
 * A reply much larger than the socket takes: the write stops half way
 * (CLIENTS shows it unsent while the client does not read), write interest
 * finishes it when the client reads, and every byte arrives in order.
 */
static void
test_partial_write_completes(void)
{
	const char *n = st_name("partial");
	struct test_conn rx;
	struct proto_reply r;
	uint8_t *v = put_big(n);

	st_reply(&bystander, OP_SEND, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
	CU_ASSERT_FATAL(test_conn_open_rcvbuf(&rx, srv.port, true, 4096) == 0);
	st_recv(&rx, n, 0);
	CU_ASSERT(await_unsent());
	CU_ASSERT_EQUAL_FATAL(test_conn_reply(&rx, OP_RECV, REPLY_MS, &r), 0);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
	CU_ASSERT_EQUAL(r.value.len, BIG_VALUE);
	CU_ASSERT(r.value.len == BIG_VALUE && memcmp(r.value.data, v, BIG_VALUE) == 0);
	CU_ASSERT_EQUAL(max_unsent(), 0);
	assert_bystander_ok();
	test_conn_close(&rx);
	free(v);
}

/*
 * Close after flush with a partly written reply: a RECV of a big value,
 * then a malformed frame. The client still gets the whole value, then the
 * PROTOCOL notice, then EOF.
 */
static void
test_close_flushes_partial_write(void)
{
	static const uint8_t bad[] = { 0, 0, 0, 1, 0xc1 };
	const char *n = st_name("closeflush");
	struct test_conn rx;
	struct proto_reply r;
	const uint8_t *body;
	uint8_t *v = put_big(n);

	st_reply(&bystander, OP_SEND, &r);
	CU_ASSERT_FATAL(test_conn_open_rcvbuf(&rx, srv.port, true, 4096) == 0);
	st_recv(&rx, n, 0);
	CU_ASSERT_EQUAL_FATAL(test_conn_write(&rx, bad, sizeof bad), 0);
	CU_ASSERT(await_unsent());
	CU_ASSERT_EQUAL_FATAL(test_conn_reply(&rx, OP_RECV, REPLY_MS, &r), 0);
	CU_ASSERT(r.value.len == BIG_VALUE && memcmp(r.value.data, v, BIG_VALUE) == 0);
	CU_ASSERT_EQUAL_FATAL(test_conn_reply(&rx, OP_PING, REPLY_MS, &r), 0);
	CU_ASSERT_EQUAL(r.status, STATUS_PROTOCOL);
	CU_ASSERT_EQUAL(test_conn_frame(&rx, REPLY_MS, &body), 0);
	assert_bystander_ok();
	test_conn_close(&rx);
	free(v);
}

/*
 * The same, but the client never reads: the closing connection is dropped
 * after the flush timeout (5 s), with the "flush-timeout" log line, and its
 * unsent bytes go with it.
 */
static void
test_close_flush_timeout(void)
{
	static const uint8_t bad[] = { 0, 0, 0, 1, 0xc1 };
	const char *n = st_name("flushtimeout");
	struct test_conn rx;
	struct proto_reply r;
	uint8_t *v = put_big(n);
	int64_t end = clock_now_ns() + 15 * NSEC_PER_SEC;
	bool dropped = false;

	st_reply(&bystander, OP_SEND, &r);
	CU_ASSERT_FATAL(test_conn_open_rcvbuf(&rx, srv.port, true, 4096) == 0);
	st_recv(&rx, n, 0);
	CU_ASSERT_EQUAL_FATAL(test_conn_write(&rx, bad, sizeof bad), 0);
	CU_ASSERT(await_unsent());
	while (!dropped && clock_now_ns() < end) {
		dropped = test_server_log_has(&srv, "flush-timeout");
		if (!dropped)
			poll(NULL, 0, 100);	/* pace the log checks */
	}
	CU_ASSERT(dropped);
	CU_ASSERT_EQUAL(max_unsent(), 0);
	assert_bystander_ok();
	test_conn_close(&rx);
	free(v);
}

/* ---- deferred replies (PROTOCOL.md §15) -------------------------------------------- */

/* Wait (up to 10 s) until some client has exactly `want` bytes unsent, as CLIENTS reports. */
static bool
await_unsent_is(uint64_t want)
{
	int64_t end = clock_now_ns() + 10 * NSEC_PER_SEC;

	while (clock_now_ns() < end)
		if (max_unsent() == want)
			return true;
	return false;
}

/* Nothing has arrived on c (the server holds it): a poll that does not wait. */
static bool
nothing_to_read(struct test_conn *c)
{
	const uint8_t *body;

	return test_conn_frame(c, 0, &body) < 0;
}

static void
expect_reply(struct test_conn *c, uint64_t op, uint64_t id, int status)
{
	struct proto_reply r;

	CU_ASSERT_EQUAL_FATAL(test_conn_reply(c, op, REPLY_MS, &r), 0);
	CU_ASSERT_EQUAL(r.id, id);
	CU_ASSERT_EQUAL(r.status, status);
}

/*
 * A deferred SEND that completes at once is answered, but the reply stays
 * in chand (CLIENTS counts it unsent, nothing arrives) until a reply that
 * is not deferred goes to the same client: then both arrive, in order.
 */
static void
test_deferred_held_until_next_reply(void)
{
	const char *n = st_name("deferred");
	struct test_conn rx;
	uint64_t sid, pid;

	CU_ASSERT_FATAL(test_conn_open(&rx, srv.port, true) == 0);
	CU_ASSERT_EQUAL(st_make(&bystander, n, 4), STATUS_OK);
	sid = st_send_deferred(&rx, n, "v", 1);
	CU_ASSERT_FATAL(await_unsent());
	CU_ASSERT(nothing_to_read(&rx));
	pid = st_ping(&rx);
	expect_reply(&rx, OP_SEND, sid, STATUS_OK);
	expect_reply(&rx, OP_PING, pid, STATUS_OK);
	CU_ASSERT(await_unsent_is(0));
	test_conn_close(&rx);
}

/* WANT for a reply that is held releases it (WANT's own OK comes after it). */
static void
test_deferred_want_releases(void)
{
	const char *n = st_name("want");
	struct test_conn rx;
	uint64_t sid, wid;

	CU_ASSERT_FATAL(test_conn_open(&rx, srv.port, true) == 0);
	CU_ASSERT_EQUAL(st_make(&bystander, n, 4), STATUS_OK);
	sid = st_send_deferred(&rx, n, "v", 1);
	CU_ASSERT_FATAL(await_unsent());
	wid = st_want(&rx, sid);
	expect_reply(&rx, OP_SEND, sid, STATUS_OK);
	expect_reply(&rx, OP_WANT, wid, STATUS_OK);
	CU_ASSERT(await_unsent_is(0));
	test_conn_close(&rx);
}

/*
 * A deferred RECV that waits: matched later, its reply is held like any
 * other; after WANT it is not, and WANT's OK (held meanwhile) comes with it.
 */
static void
test_deferred_pending_want(void)
{
	const char *n = st_name("pwant");
	struct test_conn rx;
	uint64_t r1, r2, wid;
	struct proto_reply r;

	CU_ASSERT_FATAL(test_conn_open(&rx, srv.port, true) == 0);
	CU_ASSERT_EQUAL(st_make(&bystander, n, 0), STATUS_OK);
	r1 = st_recv_deferred(&rx, n);
	CU_ASSERT_FATAL(st_await_waiters(&bystander, n, -1, 1));
	CU_ASSERT_EQUAL(st_send_wait(&bystander, n, "a", PROTO_WAIT_FOREVER), STATUS_OK);
	CU_ASSERT_FATAL(await_unsent());
	CU_ASSERT(nothing_to_read(&rx));
	r2 = st_recv_deferred(&rx, n);
	wid = st_want(&rx, r2);
	CU_ASSERT_FATAL(st_await_waiters(&bystander, n, -1, 1));
	CU_ASSERT(nothing_to_read(&rx));	/* r1's value and WANT's OK are both held */
	CU_ASSERT_EQUAL(st_send_wait(&bystander, n, "b", PROTO_WAIT_FOREVER), STATUS_OK);
	CU_ASSERT_EQUAL_FATAL(test_conn_reply(&rx, OP_RECV, REPLY_MS, &r), 0);
	CU_ASSERT(r.id == r1 && r.ok && ST_VALUE_IS(r, "a"));
	expect_reply(&rx, OP_WANT, wid, STATUS_OK);
	CU_ASSERT_EQUAL_FATAL(test_conn_reply(&rx, OP_RECV, REPLY_MS, &r), 0);
	CU_ASSERT(r.id == r2 && r.ok && ST_VALUE_IS(r, "b"));
	CU_ASSERT(await_unsent_is(0));
	test_conn_close(&rx);
}

/*
 * Held replies are bounded (2 KiB): of 8 deferred RECVs of 512-byte values,
 * the first four come with nothing else asked (the fourth passes the bound
 * and takes the three held before it). The rest may be held (or may have
 * gone out behind a partial write): WANT and a PING bring every one of
 * them, in order, then WANT's and PING's own replies.
 */
static void
test_deferred_hold_is_bounded(void)
{
	const char *n = st_name("bounded");
	uint8_t v[512];
	struct test_conn rx;
	struct proto_reply r;
	uint64_t ids[8], wid = 0, pid = 0;

	memset(v, 'x', sizeof v);
	CU_ASSERT_FATAL(test_conn_open(&rx, srv.port, true) == 0);
	CU_ASSERT_EQUAL(st_make(&bystander, n, 8), STATUS_OK);
	for (int i = 0; i < 8; i++) {
		st_send(&bystander, n, v, sizeof v, 0);
		st_reply(&bystander, OP_SEND, &r);
		CU_ASSERT_EQUAL(r.status, STATUS_OK);
	}
	for (int i = 0; i < 8; i++)
		ids[i] = st_recv_deferred(&rx, n);
	for (int i = 0; i < 8; i++) {
		CU_ASSERT_EQUAL_FATAL(test_conn_reply(&rx, OP_RECV, REPLY_MS, &r), 0);
		CU_ASSERT(r.id == ids[i] && r.ok && r.value.len == sizeof v);
		if (i != 3)
			continue;
		wid = st_want(&rx, ids[7]);	/* after the four that must come by themselves */
		pid = st_ping(&rx);
	}
	expect_reply(&rx, OP_WANT, wid, STATUS_OK);
	expect_reply(&rx, OP_PING, pid, STATUS_OK);
	CU_ASSERT(await_unsent_is(0));
	test_conn_close(&rx);
}

/*
 * One read holding a SEND that completes another client's RECV and then a
 * select over many channels: chand writes the receiver's reply before the
 * select's work (io_write_others), and both clients get every reply.
 */
static void
test_write_others_before_long_select(void)
{
	const char *n = st_name("others");
	struct proto_case cases[40];
	char names[40][48];
	struct test_conn rx, tx;
	struct proto_out o;
	struct proto_value v = { .kind = VALUE_BIN, .data = (const uint8_t *)"v", .len = 1 };
	struct proto_reply r;
	uint64_t rid, sid, selid;

	CU_ASSERT_FATAL(test_conn_open(&rx, srv.port, true) == 0);
	CU_ASSERT_FATAL(test_conn_open(&tx, srv.port, true) == 0);
	CU_ASSERT_EQUAL(st_make(&bystander, n, 0), STATUS_OK);
	for (int i = 0; i < 40; i++) {
		snprintf(names[i], sizeof names[i], "%s.%d", n, i);
		CU_ASSERT_EQUAL(st_make(&bystander, names[i], 0), STATUS_OK);
		cases[i] = (struct proto_case){ .dir = 0, .name = names[i], .name_len = (uint32_t)strlen(names[i]) };
	}
	rid = st_recv(&rx, n, PROTO_WAIT_FOREVER);
	CU_ASSERT_FATAL(st_await_waiters(&bystander, n, -1, 1));
	proto_out_init(&o);
	sid = tx.next_id++;
	selid = tx.next_id++;
	proto_req_send(&o, sid, PROTO_WAIT_FOREVER, n, strlen(n), &v);
	proto_req_select(&o, selid, PROTO_WAIT_FOREVER, cases, 40, true);
	st_write(&tx, &o);	/* one write: one read on chand's side, as a rule */
	proto_out_destroy(&o);
	CU_ASSERT_EQUAL_FATAL(test_conn_reply(&rx, OP_RECV, REPLY_MS, &r), 0);
	CU_ASSERT(r.id == rid && r.ok && ST_VALUE_IS(r, "v"));
	expect_reply(&tx, OP_SEND, sid, STATUS_OK);
	CU_ASSERT_EQUAL_FATAL(test_conn_reply(&tx, OP_SELECT, REPLY_MS, &r), 0);
	CU_ASSERT(r.id == selid && r.status == STATUS_OK && r.index == -1);	/* the default */
	CU_ASSERT(await_unsent_is(0));
	test_conn_close(&rx);
	test_conn_close(&tx);
}

void
register_server_limits_writes(void)
{
	CU_pSuite s = test_suite("writes", init_big, stop);

	test_add(s, "replies made by another connection or a deadline arrive at once",
	    test_reply_from_elsewhere);
	test_add(s, "a reply larger than the socket takes is finished later", test_partial_write_completes);
	test_add(s, "close after flush finishes a partly written reply", test_close_flushes_partial_write);
	test_add(s, "close after flush gives up on a client that never reads", test_close_flush_timeout);
	test_add(s, "a deferred reply is held until the next reply", test_deferred_held_until_next_reply);
	test_add(s, "WANT releases a held reply", test_deferred_want_releases);
	test_add(s, "a pending deferred request: held when matched, not after WANT",
	    test_deferred_pending_want);
	test_add(s, "held replies are bounded", test_deferred_hold_is_bounded);
	test_add(s, "replies to others go out before a select over many channels",
	    test_write_others_before_long_select);
}
