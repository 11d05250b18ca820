/*
 * test_server.c: Go's channel semantics (DESIGN.md §4) through a real chand
 * on an ephemeral loopback port, over the raw protocol.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "srvtest.h"

static struct test_server srv;
static struct test_conn a, b;

static int
suite_init(void)
{
	return test_server_start(&srv, NULL);
}

static int
suite_clean(void)
{
	/* a clean SIGTERM shutdown exits 0 */
	return test_server_stop(&srv) == 0 ? 0 : -1;
}

static void
test_setup(void)
{
	st_pair_open(&a, &b, srv.port);
}

static void
test_teardown(void)
{
	st_pair_close(&a, &b);
}

static void
test_make_open(void)
{
	const char *n = st_name("mk");
	struct proto_reply r;

	CU_ASSERT_EQUAL(st_make(&a, n, 4), STATUS_OK);
	CU_ASSERT_EQUAL(st_make(&b, n, 4), STATUS_OK);	/* same cap: opens */
	CU_ASSERT_EQUAL(st_make(&b, n, 5), STATUS_EXISTS);
	st_name_op(&b, OP_OPEN, n);
	st_reply(&b, OP_OPEN, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
	CU_ASSERT_EQUAL(r.n, 4);
	st_name_op(&b, OP_OPEN, "no.such.channel");
	st_reply(&b, OP_OPEN, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_NOT_FOUND);
	st_name_op(&b, OP_CAP, n);
	st_reply(&b, OP_CAP, &r);
	CU_ASSERT_EQUAL(r.n, 4);
}

/* '~' and 32 lowercase hex digits (PROTOCOL.md §6). */
static bool
anon_name_ok(const char *n, size_t len)
{
	if (len != 33 || n[0] != '~')
		return false;
	for (size_t i = 1; i < len; i++)
		if (!((n[i] >= '0' && n[i] <= '9') || (n[i] >= 'a' && n[i] <= 'f')))
			return false;
	return true;
}

static void
test_anonymous(void)
{
	struct test_conn c;
	struct proto_reply r;
	struct proto_out o;
	char name[64], more[64][64];

	CU_ASSERT_FATAL(test_conn_open(&c, srv.port, true) == 0);
	proto_out_init(&o);
	proto_req_make(&o, c.next_id++, NULL, 0, 2);
	st_write(&c, &o);
	st_reply(&c, OP_MAKE, &r);
	CU_ASSERT_EQUAL_FATAL(r.status, STATUS_OK);
	CU_ASSERT(r.created);
	CU_ASSERT(anon_name_ok(r.name, r.name_len));
	snprintf(name, sizeof name, "%.*s", (int)r.name_len, r.name);
	/* 64 more anonymous channels: 64 other names, none a counter's */
	for (int i = 0; i < 64; i++)
		proto_req_make(&o, c.next_id++, NULL, 0, 2);
	st_write(&c, &o);
	for (int i = 0; i < 64; i++) {
		st_reply(&c, OP_MAKE, &r);
		CU_ASSERT_FATAL(r.status == STATUS_OK);
		CU_ASSERT(anon_name_ok(r.name, r.name_len));
		snprintf(more[i], sizeof more[i], "%.*s", (int)r.name_len, r.name);
		CU_ASSERT(strcmp(more[i], name) != 0);
		for (int j = 0; j < i; j++)
			CU_ASSERT(strcmp(more[i], more[j]) != 0);
	}
	/* the old predictable names open nothing for another connection */
	CU_ASSERT_EQUAL(st_info(&b, "~0", NULL), STATUS_NOT_FOUND);
	CU_ASSERT_EQUAL(st_info(&b, "~1", NULL), STATUS_NOT_FOUND);
	st_name_op(&b, OP_OPEN, "~0");
	st_reply(&b, OP_OPEN, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_NOT_FOUND);
	/* the name itself is the capability: usable from another connection */
	CU_ASSERT_EQUAL(st_send_wait(&a, name, "x", 0), STATUS_OK);
	/* MAKE may not use the reserved prefix */
	CU_ASSERT_EQUAL(st_make(&a, "~mine", 0), STATUS_BAD_REQUEST);
	/* the creator goes away: the channel goes with it */
	test_conn_close(&c);
	proto_out_destroy(&o);
	for (int i = 0; i < 10000 && st_info(&a, name, NULL) == STATUS_OK; i++)
		;	/* INFO round trips until the server has seen the disconnect */
	CU_ASSERT_EQUAL(st_info(&a, name, NULL), STATUS_NOT_FOUND);
}

static void
test_rendezvous(void)
{
	const char *n = st_name("rv");
	struct proto_reply r;
	uint64_t rid;

	CU_ASSERT_EQUAL(st_make(&a, n, 0), STATUS_OK);
	/* receiver first */
	rid = st_recv(&a, n, PROTO_WAIT_FOREVER);
	CU_ASSERT(st_await_waiters(&b, n, 0, 1));
	CU_ASSERT_EQUAL(st_send_wait(&b, n, "ping", PROTO_WAIT_FOREVER), STATUS_OK);
	st_reply(&a, OP_RECV, &r);
	CU_ASSERT_EQUAL(r.id, rid);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
	CU_ASSERT(r.ok);
	CU_ASSERT(ST_VALUE_IS(r, "ping"));
	/* sender first: the send waits for the receiver */
	rid = st_send(&b, n, "pong", 4, PROTO_WAIT_FOREVER);
	CU_ASSERT(st_await_waiters(&a, n, 1, 0));
	{
		char buf[16];
		bool ok;

		CU_ASSERT_EQUAL(st_recv_wait(&a, n, PROTO_WAIT_FOREVER, buf, sizeof buf, &ok), STATUS_OK);
		CU_ASSERT_STRING_EQUAL(buf, "pong");
	}
	st_reply(&b, OP_SEND, &r);
	CU_ASSERT_EQUAL(r.id, rid);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
	/* unbuffered: nobody waiting, so a non-blocking send fails */
	CU_ASSERT_EQUAL(st_send_wait(&a, n, "x", 0), STATUS_DEADLINE_EXCEEDED);
}

static void
test_buffered_fifo(void)
{
	const char *n = st_name("fifo");
	char buf[16], want[16];
	struct proto_reply r;
	bool ok;

	CU_ASSERT_EQUAL(st_make(&a, n, 3), STATUS_OK);
	for (int i = 0; i < 3; i++) {
		snprintf(want, sizeof want, "v%d", i);
		CU_ASSERT_EQUAL(st_send_wait(&a, n, want, 0), STATUS_OK);
	}
	CU_ASSERT_EQUAL(st_send_wait(&a, n, "full", 0), STATUS_DEADLINE_EXCEEDED);
	st_name_op(&a, OP_LEN, n);
	st_reply(&a, OP_LEN, &r);
	CU_ASSERT_EQUAL(r.n, 3);
	for (int i = 0; i < 3; i++) {
		snprintf(want, sizeof want, "v%d", i);
		CU_ASSERT_EQUAL(st_recv_wait(&b, n, 0, buf, sizeof buf, &ok), STATUS_OK);
		CU_ASSERT_STRING_EQUAL(buf, want);
	}
	CU_ASSERT_EQUAL(st_recv_wait(&b, n, 0, buf, sizeof buf, &ok), STATUS_DEADLINE_EXCEEDED);
}

static void
test_handoff_full_buffer(void)
{
	const char *n = st_name("handoff");
	struct proto_reply r;
	char buf[16];
	bool ok;
	uint64_t sid;

	CU_ASSERT_EQUAL(st_make(&a, n, 1), STATUS_OK);
	CU_ASSERT_EQUAL(st_send_wait(&a, n, "first", 0), STATUS_OK);
	sid = st_send(&a, n, "second", 6, PROTO_WAIT_FOREVER);	/* blocks: buffer full */
	CU_ASSERT(st_await_waiters(&b, n, 1, 0));
	/* the receive takes the head and moves the waiting sender's value in */
	CU_ASSERT_EQUAL(st_recv_wait(&b, n, 0, buf, sizeof buf, &ok), STATUS_OK);
	CU_ASSERT_STRING_EQUAL(buf, "first");
	st_reply(&a, OP_SEND, &r);
	CU_ASSERT_EQUAL(r.id, sid);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
	st_name_op(&b, OP_LEN, n);
	st_reply(&b, OP_LEN, &r);
	CU_ASSERT_EQUAL(r.n, 1);
	CU_ASSERT_EQUAL(st_recv_wait(&b, n, 0, buf, sizeof buf, &ok), STATUS_OK);
	CU_ASSERT_STRING_EQUAL(buf, "second");
}

static void
test_close_drain(void)
{
	const char *n = st_name("drain");
	char buf[16];
	bool ok;

	CU_ASSERT_EQUAL(st_make(&a, n, 2), STATUS_OK);
	CU_ASSERT_EQUAL(st_send_wait(&a, n, "a", 0), STATUS_OK);
	CU_ASSERT_EQUAL(st_send_wait(&a, n, "b", 0), STATUS_OK);
	CU_ASSERT_EQUAL(st_close(&a, n), STATUS_OK);
	CU_ASSERT_EQUAL(st_close(&a, n), STATUS_CLOSED);
	CU_ASSERT_EQUAL(st_send_wait(&a, n, "c", PROTO_WAIT_FOREVER), STATUS_CLOSED);
	CU_ASSERT_EQUAL(st_recv_wait(&b, n, 0, buf, sizeof buf, &ok), STATUS_OK);
	CU_ASSERT(ok);
	CU_ASSERT_STRING_EQUAL(buf, "a");
	CU_ASSERT_EQUAL(st_recv_wait(&b, n, 0, buf, sizeof buf, &ok), STATUS_OK);
	CU_ASSERT(ok);
	CU_ASSERT_STRING_EQUAL(buf, "b");
	/* drained: ok=false, at once, however long the receiver would wait */
	CU_ASSERT_EQUAL(st_recv_wait(&b, n, PROTO_WAIT_FOREVER, buf, sizeof buf, &ok), STATUS_OK);
	CU_ASSERT_FALSE(ok);
}

static void
test_close_wakes_waiters(void)
{
	const char *n = st_name("wake");
	struct proto_reply r;
	const char *m = st_name("wake2");

	CU_ASSERT_EQUAL(st_make(&a, n, 0), STATUS_OK);
	CU_ASSERT_EQUAL(st_make(&a, m, 0), STATUS_OK);
	st_recv(&b, n, PROTO_WAIT_FOREVER);
	st_send(&b, m, "s", 1, PROTO_WAIT_FOREVER);
	CU_ASSERT(st_await_waiters(&a, n, 0, 1));
	CU_ASSERT(st_await_waiters(&a, m, 1, 0));
	CU_ASSERT_EQUAL(st_close(&a, n), STATUS_OK);
	st_reply(&b, OP_RECV, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
	CU_ASSERT_FALSE(r.ok);
	CU_ASSERT_EQUAL(r.value.kind, VALUE_NONE);
	CU_ASSERT_EQUAL(st_close(&a, m), STATUS_OK);
	st_reply(&b, OP_SEND, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_CLOSED);
}

static void
test_fifo_waiters(void)
{
	const char *n = st_name("fifow");
	struct test_conn c[4];
	char want[16];

	CU_ASSERT_EQUAL(st_make(&a, n, 0), STATUS_OK);
	/* four receivers queue in a known order */
	for (int i = 0; i < 4; i++) {
		CU_ASSERT_FATAL(test_conn_open(&c[i], srv.port, true) == 0);
		st_recv(&c[i], n, PROTO_WAIT_FOREVER);
		CU_ASSERT_FATAL(st_await_waiters(&a, n, 0, i + 1));
	}
	for (int i = 0; i < 4; i++) {
		snprintf(want, sizeof want, "v%d", i);
		CU_ASSERT_EQUAL(st_send_wait(&a, n, want, 0), STATUS_OK);
	}
	for (int i = 0; i < 4; i++) {
		struct proto_reply r;

		snprintf(want, sizeof want, "v%d", i);
		st_reply(&c[i], OP_RECV, &r);
		CU_ASSERT(ST_VALUE_IS(r, want));
		test_conn_close(&c[i]);
	}
	/* and senders, the same way */
	for (int i = 0; i < 4; i++) {
		CU_ASSERT_FATAL(test_conn_open(&c[i], srv.port, true) == 0);
		snprintf(want, sizeof want, "s%d", i);
		st_send(&c[i], n, want, strlen(want), PROTO_WAIT_FOREVER);
		CU_ASSERT_FATAL(st_await_waiters(&a, n, i + 1, 0));
	}
	for (int i = 0; i < 4; i++) {
		char buf[16];
		bool ok;

		snprintf(want, sizeof want, "s%d", i);
		CU_ASSERT_EQUAL(st_recv_wait(&a, n, 0, buf, sizeof buf, &ok), STATUS_OK);
		CU_ASSERT_STRING_EQUAL(buf, want);
		test_conn_close(&c[i]);
	}
}

static void
test_select_fairness(void)
{
	enum { N = 10000 };
	const char *x = st_name("fairx"), *y = st_name("fairy");
	struct proto_case cases[2] = {
		{ .dir = 0, .name = x, .name_len = (uint32_t)strlen(x) },
		{ .dir = 0, .name = y, .name_len = (uint32_t)strlen(y) },
	};
	int hits[2] = { 0, 0 };

	CU_ASSERT_EQUAL(st_make(&a, x, N), STATUS_OK);
	CU_ASSERT_EQUAL(st_make(&a, y, N), STATUS_OK);
	for (int i = 0; i < N; i++) {
		st_send(&a, x, "x", 1, 0);
		st_send(&a, y, "y", 1, 0);
	}
	for (int i = 0; i < 2 * N; i++) {
		struct proto_reply r;

		st_reply(&a, OP_SEND, &r);
		CU_ASSERT_EQUAL_FATAL(r.status, STATUS_OK);
	}
	/* both always ready: pipeline N selects */
	for (int i = 0; i < N; i++)
		st_select(&b, cases, 2, false, 0);
	for (int i = 0; i < N; i++) {
		struct proto_reply r;

		st_reply(&b, OP_SELECT, &r);
		CU_ASSERT_EQUAL_FATAL(r.status, STATUS_OK);
		CU_ASSERT_FATAL(r.index == 0 || r.index == 1);
		CU_ASSERT(ST_VALUE_IS(r, r.index == 0 ? "x" : "y"));
		hits[r.index]++;
	}
	/* uniform: each side within 45%..55% (p of failing by chance < 1e-20) */
	CU_ASSERT(hits[0] > N * 45 / 100 && hits[0] < N * 55 / 100);
	CU_ASSERT_EQUAL(hits[0] + hits[1], N);
}

/*
 * Go's TestPseudoRandomSend over the wire: a select with two cases on one
 * unbuffered channel waits (INFO shows both queued), then one RECV (or
 * SEND) wakes it; each case must win about half the time, within 4σ.
 */
static void
test_blocked_select_random(void)
{
	enum { N = 400 };
	const char *n = st_name("rsel");
	uint32_t len = (uint32_t)strlen(n);
	struct proto_case snd[2] = {
		{ .dir = 1, .name = n, .name_len = len,
		  .value = { .kind = VALUE_BIN, .data = (const uint8_t *)"0", .len = 1 } },
		{ .dir = 1, .name = n, .name_len = len,
		  .value = { .kind = VALUE_BIN, .data = (const uint8_t *)"1", .len = 1 } },
	};
	struct proto_case rcv[2] = { { .dir = 0, .name = n, .name_len = len },
	    { .dir = 0, .name = n, .name_len = len } };
	int sends[2] = { 0, 0 }, recvs[2] = { 0, 0 };
	struct proto_reply r;
	char buf[8];
	bool ok;

	CU_ASSERT_EQUAL(st_make(&a, n, 0), STATUS_OK);
	for (int i = 0; i < N; i++) {
		st_select(&a, snd, 2, false, PROTO_WAIT_FOREVER);
		CU_ASSERT_FATAL(st_await_waiters(&b, n, 2, 0));
		CU_ASSERT_EQUAL(st_recv_wait(&b, n, 0, buf, sizeof buf, &ok), STATUS_OK);
		st_reply(&a, OP_SELECT, &r);
		CU_ASSERT_FATAL(r.status == STATUS_OK && (r.index == 0 || r.index == 1));
		CU_ASSERT(buf[0] == '0' + r.index);
		sends[r.index]++;
		st_select(&a, rcv, 2, false, PROTO_WAIT_FOREVER);
		CU_ASSERT_FATAL(st_await_waiters(&b, n, 0, 2));
		CU_ASSERT_EQUAL(st_send_wait(&b, n, "v", 0), STATUS_OK);
		st_reply(&a, OP_SELECT, &r);
		CU_ASSERT_FATAL(r.status == STATUS_OK && (r.index == 0 || r.index == 1));
		CU_ASSERT(ST_VALUE_IS(r, "v"));
		recvs[r.index]++;
	}
	/* |hits - N/2| <= 4σ = 4·sqrt(N/4) = 40 (p of failing by chance ~ 6e-5 each) */
	CU_ASSERT(abs(sends[0] - N / 2) <= 40);
	CU_ASSERT(abs(recvs[0] - N / 2) <= 40);
	if (abs(sends[0] - N / 2) > 40 || abs(recvs[0] - N / 2) > 40)
		fprintf(stderr, "case 0 won %d of %d sends, %d of %d receives\n", sends[0], N, recvs[0], N);
}

static void
test_select_default(void)
{
	const char *n = st_name("dflt");
	struct proto_case c = { .dir = 0, .name = n, .name_len = (uint32_t)strlen(n) };
	struct proto_reply r;

	CU_ASSERT_EQUAL(st_make(&a, n, 1), STATUS_OK);
	st_select(&a, &c, 1, true, PROTO_WAIT_FOREVER);
	st_reply(&a, OP_SELECT, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
	CU_ASSERT_EQUAL(r.index, -1);
	/* not ready, no default, no wait: DEADLINE_EXCEEDED */
	st_select(&a, &c, 1, false, 0);
	st_reply(&a, OP_SELECT, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_DEADLINE_EXCEEDED);
	/* ready: the case, never the default */
	CU_ASSERT_EQUAL(st_send_wait(&a, n, "v", 0), STATUS_OK);
	st_select(&a, &c, 1, true, 0);
	st_reply(&a, OP_SELECT, &r);
	CU_ASSERT_EQUAL(r.index, 0);
	CU_ASSERT(ST_VALUE_IS(r, "v"));
}

static void
test_select_not_itself(void)
{
	const char *n = st_name("self");
	struct proto_case c[2] = {
		{ .dir = 1, .name = n, .name_len = (uint32_t)strlen(n),
		  .value = { .kind = VALUE_BIN, .data = (const uint8_t *)"me", .len = 2 } },
		{ .dir = 0, .name = n, .name_len = (uint32_t)strlen(n) },
	};
	struct proto_reply r;
	char buf[16];
	bool ok;

	CU_ASSERT_EQUAL(st_make(&a, n, 0), STATUS_OK);
	/* alone, a send and a receive case on one unbuffered channel never pair */
	st_select(&a, c, 2, false, 100000);
	st_reply(&a, OP_SELECT, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_DEADLINE_EXCEEDED);
	CU_ASSERT(st_await_waiters(&b, n, 0, 0));
	/* a third party completes it: here a receiver takes the send case */
	st_select(&a, c, 2, false, PROTO_WAIT_FOREVER);
	CU_ASSERT(st_await_waiters(&b, n, 1, 1));
	CU_ASSERT_EQUAL(st_recv_wait(&b, n, 0, buf, sizeof buf, &ok), STATUS_OK);
	CU_ASSERT_STRING_EQUAL(buf, "me");
	st_reply(&a, OP_SELECT, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
	CU_ASSERT_EQUAL(r.index, 0);
	/* resolved: its receive case left nothing behind */
	CU_ASSERT(st_await_waiters(&b, n, 0, 0));
}

static void
test_select_withdraws_others(void)
{
	const char *n[3] = { st_name("w0"), st_name("w1"), st_name("w2") };
	struct proto_case c[4];
	struct proto_reply r;

	for (int i = 0; i < 3; i++) {
		CU_ASSERT_EQUAL(st_make(&a, n[i], 0), STATUS_OK);
		c[i] = (struct proto_case){ .dir = 0, .name = n[i], .name_len = (uint32_t)strlen(n[i]) };
	}
	c[3] = (struct proto_case){ .dir = 0, .name = NULL };	/* nil channel: never ready */
	st_select(&a, c, 4, false, PROTO_WAIT_FOREVER);
	CU_ASSERT(st_await_waiters(&b, n[2], 0, 1));
	CU_ASSERT_EQUAL(st_send_wait(&b, n[1], "one", 0), STATUS_OK);
	st_reply(&a, OP_SELECT, &r);
	CU_ASSERT_EQUAL(r.index, 1);
	CU_ASSERT(ST_VALUE_IS(r, "one"));
	for (int i = 0; i < 3; i++)
		CU_ASSERT(st_await_waiters(&b, n[i], 0, 0));
	/* so a later send on another of them finds no receiver */
	CU_ASSERT_EQUAL(st_send_wait(&b, n[0], "x", 0), STATUS_DEADLINE_EXCEEDED);
}

static void
test_select_duplicates_and_send(void)
{
	const char *n = st_name("dup");
	struct proto_case c[2] = {
		{ .dir = 0, .name = n, .name_len = (uint32_t)strlen(n) },
		{ .dir = 0, .name = n, .name_len = (uint32_t)strlen(n) },
	};
	struct proto_case s = { .dir = 1, .name = n, .name_len = (uint32_t)strlen(n),
	    .value = { .kind = VALUE_BIN, .data = (const uint8_t *)"sv", .len = 2 } };
	struct proto_reply r;

	CU_ASSERT_EQUAL(st_make(&a, n, 0), STATUS_OK);
	st_select(&a, c, 2, false, PROTO_WAIT_FOREVER);
	CU_ASSERT(st_await_waiters(&b, n, 0, 2));
	/* a select's send case pairs with the waiting duplicate receive */
	st_select(&b, &s, 1, false, 0);
	st_reply(&b, OP_SELECT, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
	CU_ASSERT_EQUAL(r.index, 0);
	st_reply(&a, OP_SELECT, &r);
	CU_ASSERT(r.index == 0 || r.index == 1);
	CU_ASSERT(ST_VALUE_IS(r, "sv"));
	CU_ASSERT(st_await_waiters(&b, n, 0, 0));
	/* a send case on a closed channel: CLOSED with its index */
	CU_ASSERT_EQUAL(st_close(&a, n), STATUS_OK);
	st_select(&b, &s, 1, false, 0);
	st_reply(&b, OP_SELECT, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_CLOSED);
	CU_ASSERT_EQUAL(r.index, 0);
}

/* After a deadline the channel is as if the operation had never been made. */
static void
test_deadlines_leave_nothing(void)
{
	const char *n = st_name("dl");
	struct proto_case c = { .dir = 0, .name = n, .name_len = (uint32_t)strlen(n) };
	struct proto_reply r;
	char buf[16];
	bool ok;
	uint64_t rid;

	CU_ASSERT_EQUAL(st_make(&a, n, 0), STATUS_OK);
	CU_ASSERT_EQUAL(st_recv_wait(&a, n, 20000, buf, sizeof buf, &ok), STATUS_DEADLINE_EXCEEDED);
	CU_ASSERT_EQUAL(st_send_wait(&a, n, "x", 20000), STATUS_DEADLINE_EXCEEDED);
	st_select(&a, &c, 1, false, 20000);
	st_reply(&a, OP_SELECT, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_DEADLINE_EXCEEDED);
	CU_ASSERT(st_await_waiters(&b, n, 0, 0));
	/* no stale receiver: a non-blocking send still finds nobody */
	CU_ASSERT_EQUAL(st_send_wait(&b, n, "x", 0), STATUS_DEADLINE_EXCEEDED);
	/* and a real pair works as usual */
	rid = st_recv(&a, n, PROTO_WAIT_FOREVER);
	CU_ASSERT(st_await_waiters(&b, n, 0, 1));
	CU_ASSERT_EQUAL(st_send_wait(&b, n, "real", 0), STATUS_OK);
	st_reply(&a, OP_RECV, &r);
	CU_ASSERT_EQUAL(r.id, rid);
	CU_ASSERT(ST_VALUE_IS(r, "real"));
}

/*
 * A wait ends at its deadline, never before. The loop's timers run on a
 * coarse clock (a tick, a few ms, behind) cached when a loop iteration
 * begins, so a deadline armed in a long iteration would fire early unless
 * the server checks the precise clock. Each trial writes a 20 ms RECV and,
 * in the same write, 3,000 RECVs that cannot wait (to make that iteration
 * long), and times the first from before the write to its reply.
 */
#define DL_BUSY 3000

static void
test_deadline_never_early(void)
{
	const char *n = st_name("dlexact");
	struct proto_out o;
	struct proto_reply r;
	int early = 0;

	CU_ASSERT_EQUAL(st_make(&a, n, 0), STATUS_OK);
	proto_out_init(&o);
	for (int t = 0; t < 20; t++) {
		uint64_t timed = a.next_id++;
		int64_t t0, took;

		proto_req_name(&o, OP_RECV, timed, 20000, n, strlen(n));
		for (int i = 0; i < DL_BUSY; i++)
			proto_req_name(&o, OP_RECV, a.next_id++, 0, n, strlen(n));
		t0 = clock_now_ns();
		st_write(&a, &o);
		for (int i = 0; i < DL_BUSY; i++) {
			st_reply(&a, OP_RECV, &r);
			CU_ASSERT_NOT_EQUAL_FATAL(r.id, timed);
		}
		st_reply(&a, OP_RECV, &r);
		took = clock_now_ns() - t0;
		CU_ASSERT_EQUAL(r.id, timed);
		CU_ASSERT_EQUAL(r.status, STATUS_DEADLINE_EXCEEDED);
		early += took < 20 * NSEC_PER_MSEC;
	}
	proto_out_destroy(&o);
	CU_ASSERT_EQUAL(early, 0);
}

static void
test_disconnect_leaves_nothing(void)
{
	const char *n = st_name("disc");
	const char *m = st_name("disc2");
	struct proto_case c[2] = {
		{ .dir = 0, .name = n, .name_len = (uint32_t)strlen(n) },
		{ .dir = 1, .name = m, .name_len = (uint32_t)strlen(m),
		  .value = { .kind = VALUE_BIN, .data = (const uint8_t *)"v", .len = 1 } },
	};
	struct test_conn c1, c2, c3;

	CU_ASSERT_EQUAL(st_make(&a, n, 0), STATUS_OK);
	CU_ASSERT_EQUAL(st_make(&a, m, 0), STATUS_OK);
	CU_ASSERT_FATAL(test_conn_open(&c1, srv.port, true) == 0);
	CU_ASSERT_FATAL(test_conn_open(&c2, srv.port, true) == 0);
	CU_ASSERT_FATAL(test_conn_open(&c3, srv.port, true) == 0);
	st_recv(&c1, n, PROTO_WAIT_FOREVER);
	st_send(&c2, m, "x", 1, PROTO_WAIT_FOREVER);
	st_select(&c3, c, 2, false, PROTO_WAIT_FOREVER);
	CU_ASSERT(st_await_waiters(&a, n, 0, 2));
	CU_ASSERT(st_await_waiters(&a, m, 2, 0));
	test_conn_close(&c1);
	test_conn_close(&c2);
	test_conn_close(&c3);
	CU_ASSERT(st_await_waiters(&a, n, 0, 0));
	CU_ASSERT(st_await_waiters(&a, m, 0, 0));
}

static void
test_cancel(void)
{
	const char *n = st_name("cancel");
	struct proto_out o;
	struct proto_reply r;
	uint64_t rid, cid;

	CU_ASSERT_EQUAL(st_make(&a, n, 0), STATUS_OK);
	rid = st_recv(&a, n, PROTO_WAIT_FOREVER);
	proto_out_init(&o);
	cid = a.next_id++;
	proto_req_cancel(&o, cid, rid);
	st_write(&a, &o);
	st_reply(&a, OP_RECV, &r);	/* the cancelled request's reply comes first */
	CU_ASSERT_EQUAL(r.id, rid);
	CU_ASSERT_EQUAL(r.status, STATUS_CANCELED);
	st_reply(&a, OP_CANCEL, &r);
	CU_ASSERT_EQUAL(r.id, cid);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
	CU_ASSERT(st_await_waiters(&b, n, 0, 0));
	/* nothing pending under that id any more */
	proto_req_cancel(&o, a.next_id++, rid);
	st_write(&a, &o);
	st_reply(&a, OP_CANCEL, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_NOT_FOUND);
	proto_out_destroy(&o);
}

static void
test_delete(void)
{
	const char *n = st_name("del");
	struct proto_reply r;
	uint64_t rid;

	CU_ASSERT_EQUAL(st_make(&a, n, 4), STATUS_OK);
	CU_ASSERT_EQUAL(st_send_wait(&a, n, "1", 0), STATUS_OK);
	CU_ASSERT_EQUAL(st_send_wait(&a, n, "2", 0), STATUS_OK);
	st_name_op(&a, OP_DELETE, n);
	st_reply(&a, OP_DELETE, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
	CU_ASSERT_EQUAL(r.n, 2);
	CU_ASSERT_EQUAL(st_info(&a, n, NULL), STATUS_NOT_FOUND);
	/* a waiter on a deleted channel gets NOT_FOUND */
	CU_ASSERT_EQUAL(st_make(&a, n, 0), STATUS_OK);
	rid = st_recv(&b, n, PROTO_WAIT_FOREVER);
	CU_ASSERT(st_await_waiters(&a, n, 0, 1));
	st_name_op(&a, OP_DELETE, n);
	st_reply(&a, OP_DELETE, &r);
	st_reply(&b, OP_RECV, &r);
	CU_ASSERT_EQUAL(r.id, rid);
	CU_ASSERT_EQUAL(r.status, STATUS_NOT_FOUND);
}

static void
test_chanref_values(void)
{
	const char *outer = st_name("outer");
	struct proto_value ref = { .kind = VALUE_CHANREF, .data = (const uint8_t *)"inner.ch", .len = 8 };
	struct proto_out o;
	struct proto_reply r;

	CU_ASSERT_EQUAL(st_make(&a, outer, 1), STATUS_OK);
	proto_out_init(&o);
	proto_req_send(&o, a.next_id++, 0, outer, strlen(outer), &ref);
	st_write(&a, &o);
	st_reply(&a, OP_SEND, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
	st_recv(&b, outer, 0);
	st_reply(&b, OP_RECV, &r);
	CU_ASSERT_EQUAL(r.value.kind, VALUE_CHANREF);
	CU_ASSERT(r.value.len == 8 && memcmp(r.value.data, "inner.ch", 8) == 0);
	proto_out_destroy(&o);
}

/* Out-of-order replies: a blocked RECV does not hold up a later PING. */
static void
test_pipelined_any_order(void)
{
	const char *n = st_name("order");
	struct proto_reply r;
	uint64_t rid, pid;

	CU_ASSERT_EQUAL(st_make(&a, n, 0), STATUS_OK);
	rid = st_recv(&a, n, PROTO_WAIT_FOREVER);
	pid = st_ping(&a);
	st_reply(&a, OP_PING, &r);
	CU_ASSERT_EQUAL(r.id, pid);
	CU_ASSERT_EQUAL(st_send_wait(&b, n, "late", 0), STATUS_OK);
	st_reply(&a, OP_RECV, &r);
	CU_ASSERT_EQUAL(r.id, rid);
}

static void
register_suites(void)
{
	CU_pSuite s = CU_add_suite_with_setup_and_teardown("semantics", suite_init, suite_clean,
	    test_setup, test_teardown);

	test_add(s, "MAKE opens same cap, EXISTS on another, OPEN, CAP", test_make_open);
	test_add(s, "anonymous channels: unguessable unique names, gone with the creator", test_anonymous);
	test_add(s, "unbuffered rendezvous in both orders", test_rendezvous);
	test_add(s, "buffered FIFO, LEN, full and empty without waiting", test_buffered_fifo);
	test_add(s, "receive on a full buffer hands off the waiting sender", test_handoff_full_buffer);
	test_add(s, "close drains the buffer before ok=false; double close; send on closed", test_close_drain);
	test_add(s, "close wakes receivers (ok=false) and senders (CLOSED)", test_close_wakes_waiters);
	test_add(s, "waiting receivers and senders are served FIFO", test_fifo_waiters);
	test_add(s, "select is uniform over ready cases (10,000 selects)", test_select_fairness);
	test_add(s, "a blocked select's cases on one channel fire at random (400 wakes each way)",
	    test_blocked_select_random);
	test_add(s, "select default only when nothing is ready", test_select_default);
	test_add(s, "select never matches its own cases", test_select_not_itself);
	test_add(s, "a resolved select leaves no waiter; nil case never ready", test_select_withdraws_others);
	test_add(s, "duplicate cases; send case; send case on closed", test_select_duplicates_and_send);
	test_add(s, "a deadline on send, receive and select leaves nothing", test_deadlines_leave_nothing);
	test_add(s, "a deadline is never reached early", test_deadline_never_early);
	test_add(s, "a disconnect in a blocked send, receive, select leaves nothing", test_disconnect_leaves_nothing);
	test_add(s, "CANCEL of a pending request, and of an unknown one", test_cancel);
	test_add(s, "DELETE discards values and fails waiters with NOT_FOUND", test_delete);
	test_add(s, "channel references travel as values", test_chanref_values);
	test_add(s, "replies come in any order", test_pipelined_any_order);
}

int
main(int argc, char **argv)
{
	return test_main(argc, argv, register_suites);
}
