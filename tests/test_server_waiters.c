/*
 * test_server_waiters.c: the budgets of pending requests (PROTOCOL.md §8:
 * max_waiters_per_connection, max_waiters, max_held_bytes_per_connection,
 * max_held_bytes) against a real chand: the STREAM amplification of issue
 * 23 refused while a neighbour stays fast and chand's memory stays put,
 * many connections meeting the server's budget, CREDIT and SELECT counted,
 * links and their values counted, every budget free again once the
 * requests end however they end, SIGHUP changing the budgets, and a client
 * that does not read the replies it is owed closed at max_output_bytes.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "srvtest.h"

#define NCHANS 1024
#define AWAIT_MS 10000

static struct test_server srv;
static struct test_conn bystander;
static struct proto_out o;
static char names[NCHANS][32];

/* ---- helpers -------------------------------------------------------------------- */

static int
start(const char *conf)
{
	proto_out_init(&o);
	if (test_server_start(&srv, conf) < 0)
		return -1;
	return test_conn_open(&bystander, srv.port, true);
}

static int
stop(void)
{
	test_conn_close(&bystander);
	proto_out_destroy(&o);
	return test_server_stop(&srv) == 0 ? 0 : -1;
}

/*
 * ThreadSanitizer keeps shadow and meta memory beside each page chand
 * touches, several times its size: under it (the same build as chand's)
 * the bounds on chand's own growth are scaled.
 */
#if defined(__SANITIZE_THREAD__)
#define RSS_SCALE 4
#else
#define RSS_SCALE 1
#endif

/* chand's resident set, in KiB, from /proc. */
static long
rss_kb(void)
{
	char path[64], line[256];
	long kb = -1;
	FILE *f;

	snprintf(path, sizeof path, "/proc/%d/status", (int)srv.pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof line, f) != NULL)
		if (sscanf(line, "VmRSS: %ld", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

/* Make channels names[0..n) (unbuffered), pipelined: one round trip for all. */
static void
make_chans(const char *base, size_t n)
{
	struct proto_reply r;

	for (size_t i = 0; i < n; i++) {
		snprintf(names[i], sizeof names[i], "%s.%zu", base, i);
		proto_req_make(&o, bystander.next_id++, names[i], strlen(names[i]), 0);
	}
	st_write(&bystander, &o);
	for (size_t i = 0; i < n; i++) {
		st_reply(&bystander, OP_MAKE, &r);
		CU_ASSERT_EQUAL(r.status, STATUS_OK);
	}
}

/* STREAM over names[0..n) with credit, waiting forever; returns its id (no reply read). */
static uint64_t
stream(struct test_conn *c, size_t n, uint64_t credit)
{
	static struct proto_case pc[NCHANS];
	uint64_t id = c->next_id++;

	for (size_t i = 0; i < n; i++)
		pc[i] = (struct proto_case){ .name = names[i], .name_len = (uint32_t)strlen(names[i]) };
	CU_ASSERT_EQUAL_FATAL(proto_req_stream(&o, id, PROTO_WAIT_FOREVER, pc, n, credit), 0);
	st_write(c, &o);
	return id;
}

/* SELECT receiving from names[0..n); returns its id (no reply read). */
static uint64_t
select_recv(struct test_conn *c, size_t n, bool dflt)
{
	static struct proto_case pc[NCHANS];

	for (size_t i = 0; i < n; i++)
		pc[i] = (struct proto_case){ .name = names[i], .name_len = (uint32_t)strlen(names[i]) };
	return st_select(c, pc, n, dflt, PROTO_WAIT_FOREVER);
}

static uint64_t
simple(struct test_conn *c, uint64_t op, uint64_t target, uint64_t n)
{
	uint64_t id = c->next_id++;

	if (op == OP_CREDIT)
		proto_req_credit(&o, id, target, n);
	else
		proto_req_cancel(&o, id, target);
	st_write(c, &o);
	return id;
}

/* The next reply is [id, LIMIT, msg] with msg naming key. */
static void
expect_limit(struct test_conn *c, uint64_t id, uint64_t op, const char *key)
{
	struct proto_reply r;
	char msg[256];

	st_next(c, op == OP_STREAM ? id : 0, op, &r);
	CU_ASSERT_EQUAL(r.id, id);
	CU_ASSERT_EQUAL(r.status, STATUS_LIMIT);
	snprintf(msg, sizeof msg, "%.*s", (int)r.msg_len, r.msg ? r.msg : "");
	CU_ASSERT_PTR_NOT_NULL(strstr(msg, key));
	if (strstr(msg, key) == NULL)
		fprintf(stderr, "expected LIMIT naming %s, got status %d \"%s\"\n", key, r.status, msg);
}

/* A PING on c is answered; returns how long it took, in ms. */
static int64_t
ping_ms(struct test_conn *c)
{
	struct proto_reply r;
	int64_t t0 = clock_now_ns();

	st_ping(c);
	st_reply(c, OP_PING, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
	return (clock_now_ns() - t0) / NSEC_PER_MSEC;
}

/* Wait (up to 10 s) until STATS key is want. */
static bool
await_stat(const char *key, uint64_t want)
{
	int64_t end = clock_now_ns() + (int64_t)AWAIT_MS * NSEC_PER_MSEC;
	uint64_t v;

	while ((v = st_stat(&bystander, key)) != want && clock_now_ns() < end)
		;
	if (v != want)
		fprintf(stderr, "STATS %s is %llu, not %llu\n", key, (unsigned long long)v,
		    (unsigned long long)want);
	return v == want;
}

/* End stream or select sid on c by CANCEL: its final reply, then CANCEL's OK. */
static void
cancel(struct test_conn *c, uint64_t target, uint64_t op)
{
	struct proto_reply r;
	uint64_t id = simple(c, OP_CANCEL, target, 0);

	st_next(c, op == OP_STREAM ? target : 0, op, &r);
	CU_ASSERT_EQUAL(r.id, target);
	CU_ASSERT_EQUAL(r.status, STATUS_CANCELED);
	st_next(c, 0, OP_CANCEL, &r);
	CU_ASSERT_EQUAL(r.id, id);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
}

/* ---- the default limits ------------------------------------------------------------ */

static int init_default(void) { return start(NULL); }

/*
 * Issue 23: STREAM over 1,024 channels with credit 1,024 asked for 1,048,576
 * waiters (~48 MB) from a ~6 KB request. It must be refused at the
 * connection's budget, leave nothing behind, and cost a neighbour nothing.
 */
static void
test_stream_amplification(void)
{
	struct test_conn evil;
	uint64_t ids[4];
	long before, after;

	make_chans("amp", NCHANS);
	CU_ASSERT_FATAL(test_conn_open(&evil, srv.port, true) == 0);
	before = rss_kb();
	for (size_t i = 0; i < 4; i++)
		ids[i] = stream(&evil, NCHANS, 1024);
	CU_ASSERT(ping_ms(&bystander) < 1000);
	for (size_t i = 0; i < 4; i++)
		expect_limit(&evil, ids[i], OP_STREAM, "max_waiters_per_connection");
	CU_ASSERT(ping_ms(&bystander) < 1000);
	after = rss_kb();
	CU_ASSERT(before > 0 && after > 0);
	/* unbounded, the four would hold ~200 MB */
	CU_ASSERT(after - before < RSS_SCALE * 32 * 1024);
	if (after - before >= RSS_SCALE * 32 * 1024)
		fprintf(stderr, "chand's RSS grew %ld KiB\n", after - before);
	CU_ASSERT_EQUAL(st_stat(&bystander, "waiters"), 0);
	CU_ASSERT_EQUAL(st_stat(&bystander, "waiters_held"), 0);
	CU_ASSERT(test_server_log_has(&srv, "limit=max_waiters_per_connection"));
	test_conn_close(&evil);
}

/*
 * A stream at exactly the connection's budget (64 × 1,024 = 65,536) is
 * taken; one more waiter on that connection is not, another connection is
 * unaffected, and ending the stream frees the budget for the next one.
 */
static void
test_full_budget_then_free(void)
{
	struct test_conn c, other;
	struct proto_reply r;
	uint64_t sid, id, osid;
	long before, after;

	make_chans("full", 64);
	CU_ASSERT_FATAL(test_conn_open(&c, srv.port, true) == 0);
	CU_ASSERT_FATAL(test_conn_open(&other, srv.port, true) == 0);
	before = rss_kb();
	sid = stream(&c, 64, 1024);
	CU_ASSERT(await_stat("waiters", 65536));
	CU_ASSERT_EQUAL(st_stat(&bystander, "waiters_held"), 65536);
	after = rss_kb();
	/* the budget's arithmetic in chand.conf(5): ~56 bytes a waiter, ~3.5 MB a connection */
	CU_ASSERT(after - before < RSS_SCALE * 8 * 1024);
	if (after - before >= RSS_SCALE * 8 * 1024)
		fprintf(stderr, "65536 waiters: RSS +%ld KiB\n", after - before);
	id = st_recv(&c, names[0], PROTO_WAIT_FOREVER);
	expect_limit(&c, id, OP_RECV, "max_waiters_per_connection");
	/* a try-receive never waits: it costs nothing */
	id = st_recv(&c, names[0], 0);
	st_reply(&c, OP_RECV, &r);
	CU_ASSERT_EQUAL(r.id, id);
	CU_ASSERT_EQUAL(r.status, STATUS_DEADLINE_EXCEEDED);
	/* the budget is the connection's: another one may wait */
	osid = stream(&other, 1, 1);
	CU_ASSERT(await_stat("waiters_held", 65537));
	cancel(&other, osid, OP_STREAM);
	cancel(&c, sid, OP_STREAM);
	CU_ASSERT(await_stat("waiters_held", 0));
	CU_ASSERT_EQUAL(st_stat(&bystander, "waiters"), 0);
	sid = stream(&c, 64, 1024);
	CU_ASSERT(await_stat("waiters", 65536));
	cancel(&c, sid, OP_STREAM);
	CU_ASSERT(await_stat("waiters_held", 0));
	test_conn_close(&other);
	test_conn_close(&c);
}

/* ---- small budgets -------------------------------------------------------------------- */

static int
init_small(void)
{
	return start("max_waiters_per_connection = 100\nmax_waiters = 250\n"
	    "max_held_bytes_per_connection = 4K\nmax_held_bytes = 10K\nmax_value = 1K\n"
	    "max_select_cases = 128\nmax_stream_credit = 64\n");
}

/* Connections that each stay within their own budget meet the server's, and leave it when they go. */
static void
test_global_budget(void)
{
	struct test_conn c[4];

	make_chans("glob", 10);
	for (int i = 0; i < 4; i++)
		CU_ASSERT_FATAL(test_conn_open(&c[i], srv.port, true) == 0);
	stream(&c[0], 10, 10);
	stream(&c[1], 10, 10);
	CU_ASSERT(await_stat("waiters_held", 200));
	/* 200 + 100 > 250: the server's budget, though c[2]'s own is empty */
	expect_limit(&c[2], stream(&c[2], 10, 10), OP_STREAM, "max_waiters");
	CU_ASSERT(test_server_log_has(&srv, "limit=max_waiters "));
	stream(&c[2], 5, 10);
	CU_ASSERT(await_stat("waiters_held", 250));
	expect_limit(&c[3], st_recv(&c[3], names[0], PROTO_WAIT_FOREVER), OP_RECV, "max_waiters");
	CU_ASSERT(ping_ms(&bystander) < 1000);
	/* a disconnect gives its share back */
	test_conn_close(&c[0]);
	CU_ASSERT(await_stat("waiters_held", 150));
	stream(&c[3], 10, 10);
	CU_ASSERT(await_stat("waiters_held", 250));
	for (int i = 1; i < 4; i++)
		test_conn_close(&c[i]);
	CU_ASSERT(await_stat("waiters_held", 0));
	CU_ASSERT_EQUAL(st_stat(&bystander, "waiters"), 0);
}

/* CREDIT that would pass the budget is refused and grants nothing; within it, it is taken. */
static void
test_credit_past_budget(void)
{
	struct test_conn c;
	struct proto_chan_info info;
	struct proto_reply r;
	uint64_t sid, id;

	make_chans("cred", 10);
	CU_ASSERT_FATAL(test_conn_open(&c, srv.port, true) == 0);
	sid = stream(&c, 10, 5);
	CU_ASSERT(await_stat("waiters", 50));
	/* 10 channels × (5 + 6) = 110 > 100 */
	id = simple(&c, OP_CREDIT, sid, 6);
	expect_limit(&c, id, OP_CREDIT, "max_waiters_per_connection");
	CU_ASSERT_EQUAL(st_info(&bystander, names[3], &info), STATUS_OK);
	CU_ASSERT_EQUAL(info.receivers, 5);
	CU_ASSERT_EQUAL(st_stat(&bystander, "waiters_held"), 50);
	id = simple(&c, OP_CREDIT, sid, 5);
	st_next(&c, sid, OP_CREDIT, &r);
	CU_ASSERT_EQUAL(r.id, id);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
	CU_ASSERT(await_stat("waiters", 100));
	CU_ASSERT_EQUAL(st_stat(&bystander, "waiters_held"), 100);
	/* a value used one unit: granting it again reuses the unit, at no extra cost */
	CU_ASSERT_EQUAL(st_send_wait(&bystander, names[7], "v", PROTO_WAIT_FOREVER), STATUS_OK);
	st_next(&c, sid, OP_CREDIT, &r);
	CU_ASSERT(r.interim);
	CU_ASSERT(ST_VALUE_IS(r, "v"));
	id = simple(&c, OP_CREDIT, sid, 1);
	st_next(&c, sid, OP_CREDIT, &r);
	CU_ASSERT_EQUAL(r.id, id);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
	CU_ASSERT_EQUAL(st_stat(&bystander, "waiters_held"), 100);
	cancel(&c, sid, OP_STREAM);
	CU_ASSERT(await_stat("waiters_held", 0));
	CU_ASSERT_EQUAL(st_stat(&bystander, "waiters"), 0);
	test_conn_close(&c);
}

/* A SELECT costs one waiter per case; SEND and RECV one; what never waits, nothing. */
static void
test_select_counted(void)
{
	struct test_conn c;
	struct proto_reply r;
	uint64_t s1, s2, id;

	make_chans("sel", 100);
	CU_ASSERT_FATAL(test_conn_open(&c, srv.port, true) == 0);
	s1 = select_recv(&c, 60, false);
	CU_ASSERT(await_stat("waiters_held", 60));
	expect_limit(&c, select_recv(&c, 41, false), OP_SELECT, "max_waiters_per_connection");
	/* with a default it never waits */
	id = select_recv(&c, 41, true);
	st_reply(&c, OP_SELECT, &r);
	CU_ASSERT_EQUAL(r.id, id);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
	CU_ASSERT_EQUAL(r.index, -1);
	s2 = select_recv(&c, 40, false);
	CU_ASSERT(await_stat("waiters_held", 100));
	CU_ASSERT_EQUAL(st_stat(&bystander, "waiters"), 100);
	/* a SEND that would wait is refused; one that meets a waiting receiver is not (§8) */
	CU_ASSERT_EQUAL_FATAL(st_make(&c, "sel.nobody", 0), STATUS_OK);
	expect_limit(&c, st_send(&c, "sel.nobody", "x", 1, PROTO_WAIT_FOREVER), OP_SEND,
	    "max_waiters_per_connection");
	cancel(&c, s1, OP_SELECT);
	cancel(&c, s2, OP_SELECT);
	CU_ASSERT(await_stat("waiters_held", 0));
	s1 = select_recv(&c, 100, false);
	CU_ASSERT(await_stat("waiters", 100));
	cancel(&c, s1, OP_SELECT);
	CU_ASSERT(await_stat("waiters_held", 0));
	test_conn_close(&c);
}

/* Start a link on c; returns its id after reading its STARTED (or the status, in *st). */
static uint64_t
link_start(struct test_conn *c, const struct proto_request *l, int *st)
{
	struct proto_reply r;
	uint64_t id = c->next_id++;

	CU_ASSERT_FATAL(proto_req_link(&o, id, PROTO_WAIT_FOREVER, l) == 0);
	st_write(c, &o);
	st_next(c, 0, l->op, &r);
	CU_ASSERT_EQUAL(r.id, id);
	*st = r.status;
	return id;
}

/*
 * Value bytes: waiting SENDs hold their values, a forwarding link may hold
 * max_value, REPEAT its values and a copy; past the connection's 4 KiB and
 * the server's 10 KiB they are refused.
 */
static void
test_held_bytes(void)
{
	static uint8_t big[1000];
	struct proto_case vals[4];
	struct proto_request fwd = { .op = OP_OR_DONE };
	struct proto_request rep = { .op = OP_REPEAT, .cases = vals };
	struct test_conn c[3];
	int st;

	make_chans("bytes", 2);
	for (int i = 0; i < 3; i++)
		CU_ASSERT_FATAL(test_conn_open(&c[i], srv.port, true) == 0);
	for (int i = 0; i < 4; i++)
		vals[i] = (struct proto_case){ .dir = 1, .value = { .kind = VALUE_BIN, .data = big,
		    .len = sizeof big } };
	/* three values of 1,003 encoded bytes wait, and an OR_DONE may hold 1 KiB: 4,033 */
	for (int i = 0; i < 3; i++)
		st_send(&c[0], names[0], big, sizeof big, PROTO_WAIT_FOREVER);
	fwd.name = names[1];
	fwd.name_len = (uint32_t)strlen(names[1]);
	link_start(&c[0], &fwd, &st);
	CU_ASSERT_EQUAL(st, STATUS_STARTED);
	CU_ASSERT(await_stat("held_bytes", 4033));
	expect_limit(&c[0], st_send(&c[0], names[0], big, sizeof big, PROTO_WAIT_FOREVER), OP_SEND,
	    "max_held_bytes_per_connection");
	/* REPEAT: 4 values and a copy, 5,015 > 4 KiB; 3 and a copy, 4,012 */
	rep.ncases = 4;
	link_start(&c[1], &rep, &st);
	CU_ASSERT_EQUAL(st, STATUS_LIMIT);
	rep.ncases = 3;
	link_start(&c[1], &rep, &st);
	CU_ASSERT_EQUAL(st, STATUS_STARTED);
	CU_ASSERT(await_stat("held_bytes", 8045));
	/* the server's 10 KiB */
	link_start(&c[2], &rep, &st);
	CU_ASSERT_EQUAL(st, STATUS_LIMIT);
	CU_ASSERT(test_server_log_has(&srv, "limit=max_held_bytes "));
	CU_ASSERT(test_server_log_has(&srv, "limit=max_held_bytes_per_connection"));
	test_conn_close(&c[0]);
	CU_ASSERT(await_stat("held_bytes", 4012));
	link_start(&c[2], &rep, &st);
	CU_ASSERT_EQUAL(st, STATUS_STARTED);
	for (int i = 1; i < 3; i++)
		test_conn_close(&c[i]);
	CU_ASSERT(await_stat("held_bytes", 0));
	CU_ASSERT(await_stat("waiters_held", 0));
	CU_ASSERT(await_stat("waiters", 0));
}

/* A link counts the waiters it queues at once: OR and FAN_IN their inputs, plus its done channel. */
static void
test_link_waiters(void)
{
	struct proto_case in[100];
	struct proto_request l = { .op = OP_OR, .cases = in };
	struct test_conn c;
	uint64_t id;
	int st;

	make_chans("link", 100);
	CU_ASSERT_FATAL(test_conn_open(&c, srv.port, true) == 0);
	for (int i = 0; i < 100; i++)
		in[i] = (struct proto_case){ .name = names[i], .name_len = (uint32_t)strlen(names[i]) };
	/* 100 inputs and a done channel: 101 */
	l.ncases = 100;
	l.done = names[0];
	l.done_len = (uint32_t)strlen(names[0]);
	link_start(&c, &l, &st);
	CU_ASSERT_EQUAL(st, STATUS_LIMIT);
	CU_ASSERT_EQUAL(st_stat(&bystander, "waiters"), 0);
	/* 99 and the done channel: 100, the whole budget */
	l.ncases = 99;
	id = link_start(&c, &l, &st);
	CU_ASSERT_EQUAL_FATAL(st, STATUS_STARTED);
	CU_ASSERT(await_stat("waiters", 100));
	CU_ASSERT_EQUAL(st_stat(&bystander, "waiters_held"), 100);
	expect_limit(&c, st_recv(&c, names[0], PROTO_WAIT_FOREVER), OP_RECV, "max_waiters_per_connection");
	cancel(&c, id, OP_OR);
	CU_ASSERT(await_stat("waiters_held", 0));
	CU_ASSERT_EQUAL(st_stat(&bystander, "waiters"), 0);
	test_conn_close(&c);
}

/* The client id of c's pending request id, from WAITERS through the bystander. */
static uint64_t
client_of(uint64_t id)
{
	struct proto_waiter_info w;
	struct proto_reply r;
	uint64_t client = 0;

	proto_req_waiters(&o, bystander.next_id++, 0);
	st_write(&bystander, &o);
	st_reply(&bystander, OP_WAITERS, &r);
	CU_ASSERT_EQUAL_FATAL(r.status, STATUS_OK);
	while (proto_list_waiter(&r.list, &w) == 1)
		if (w.request == id)
			client = w.client;
	CU_ASSERT(client != 0);
	return client;
}

/* However a request ends (deadline, UNBLOCK, a done channel, a match), its budget is free again. */
static void
test_every_end_frees(void)
{
	static uint8_t big[1000];
	struct proto_request fwd = { .op = OP_OR_DONE };
	struct test_conn c;
	struct proto_reply r;
	uint64_t id, sid;
	int st;

	make_chans("ends", 10);
	CU_ASSERT_FATAL(test_conn_open(&c, srv.port, true) == 0);
	/* the deadline */
	id = st_recv(&c, names[0], 50000);
	st_reply(&c, OP_RECV, &r);
	CU_ASSERT_EQUAL(r.id, id);
	CU_ASSERT_EQUAL(r.status, STATUS_DEADLINE_EXCEEDED);
	CU_ASSERT_EQUAL(st_stat(&bystander, "waiters_held"), 0);
	/* UNBLOCK */
	sid = stream(&c, 10, 5);
	CU_ASSERT(await_stat("waiters_held", 50));
	proto_req_unblock(&o, bystander.next_id++, client_of(sid), sid);
	st_write(&bystander, &o);
	st_reply(&bystander, OP_UNBLOCK, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
	st_next(&c, sid, OP_STREAM, &r);
	CU_ASSERT_EQUAL(r.id, sid);
	CU_ASSERT_EQUAL(r.status, STATUS_CANCELED);
	CU_ASSERT_EQUAL(st_stat(&bystander, "waiters_held"), 0);
	/* a link's done channel: its input and done, and max_value in hand */
	fwd.name = names[0];
	fwd.name_len = (uint32_t)strlen(names[0]);
	fwd.done = names[1];
	fwd.done_len = (uint32_t)strlen(names[1]);
	id = link_start(&c, &fwd, &st);
	CU_ASSERT_EQUAL_FATAL(st, STATUS_STARTED);
	CU_ASSERT(await_stat("waiters_held", 2));
	CU_ASSERT_EQUAL(st_stat(&bystander, "held_bytes"), 1024);
	CU_ASSERT_EQUAL(st_close(&bystander, names[1]), STATUS_OK);
	st_next(&c, 0, OP_OR_DONE, &r);
	CU_ASSERT_EQUAL(r.id, id);
	CU_ASSERT_EQUAL(r.status, STATUS_CANCELED);
	CU_ASSERT_EQUAL(st_stat(&bystander, "waiters_held"), 0);
	CU_ASSERT_EQUAL(st_stat(&bystander, "held_bytes"), 0);
	/* a match */
	id = st_send(&c, names[2], big, sizeof big, PROTO_WAIT_FOREVER);
	CU_ASSERT(await_stat("held_bytes", 1003));
	st_recv(&bystander, names[2], PROTO_WAIT_FOREVER);
	st_reply(&bystander, OP_RECV, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
	st_reply(&c, OP_SEND, &r);
	CU_ASSERT_EQUAL(r.id, id);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
	CU_ASSERT_EQUAL(st_stat(&bystander, "held_bytes"), 0);
	CU_ASSERT_EQUAL(st_stat(&bystander, "waiters_held"), 0);
	test_conn_close(&c);
}

/* Rewrite chand's config file with conf and SIGHUP it; wait for the reload line naming changed. */
static bool
reload(const char *conf, const char *changed)
{
	int64_t end = clock_now_ns() + (int64_t)AWAIT_MS * NSEC_PER_MSEC;
	char needle[256];
	FILE *f = fopen(srv.conf, "w");

	if (f == NULL)
		return false;
	fputs(conf, f);
	fclose(f);
	kill(srv.pid, SIGHUP);
	snprintf(needle, sizeof needle, "changed=%s", changed);
	while (!test_server_log_has(&srv, needle) && clock_now_ns() < end)
		poll(NULL, 0, 20);	/* pace the log reads */
	return test_server_log_has(&srv, needle);
}

/* SIGHUP changes the budgets in place: new requests meet the new value, pending ones stay. */
static void
test_reload(void)
{
	struct test_conn c;
	uint64_t sid, s2;

	make_chans("reload", 100);
	CU_ASSERT_FATAL(test_conn_open(&c, srv.port, true) == 0);
	sid = stream(&c, 10, 10);
	CU_ASSERT(await_stat("waiters_held", 100));
	CU_ASSERT_FATAL(reload("max_waiters_per_connection = 200\nmax_waiters = 250\n"
	    "max_held_bytes_per_connection = 4K\nmax_held_bytes = 10K\nmax_value = 1K\n"
	    "max_select_cases = 128\nmax_stream_credit = 64\n", "max_waiters_per_connection"));
	s2 = select_recv(&c, 100, false);
	CU_ASSERT(await_stat("waiters_held", 200));
	/* lowered below what c holds: its requests stay, a new one is refused */
	CU_ASSERT_FATAL(reload("max_waiters_per_connection = 150\nmax_waiters = 250\n"
	    "max_held_bytes_per_connection = 4K\nmax_held_bytes = 11K\nmax_value = 1K\n"
	    "max_select_cases = 128\nmax_stream_credit = 64\n", "max_waiters_per_connection,max_held_bytes"));
	expect_limit(&c, st_recv(&c, names[0], PROTO_WAIT_FOREVER), OP_RECV, "max_waiters_per_connection");
	CU_ASSERT_EQUAL(st_stat(&bystander, "waiters_held"), 200);
	cancel(&c, s2, OP_SELECT);
	cancel(&c, sid, OP_STREAM);
	CU_ASSERT_EQUAL(st_stat(&bystander, "waiters_held"), 0);
	test_conn_close(&c);
}

/* ---- replies owed past backpressure ------------------------------------------------ */

static int
init_output(void)
{
	return start("max_output_bytes = 1M\noutput_hwm = 64K\nmax_value = 256K\nmax_frame = 512K\n");
}

/* The notice body's message names key. */
static bool
notice_names(const uint8_t *body, size_t len, const char *key)
{
	struct proto_reply r;
	const char *why;
	char msg[256];

	if (proto_decode_reply(body, len, OP_PING, &r, &why) != STATUS_OK || r.msg == NULL)
		return false;
	snprintf(msg, sizeof msg, "%.*s", (int)r.msg_len, r.msg);
	return strstr(msg, key) != NULL;
}

/*
 * Backpressure stops reading requests, but replies already owed (RECVs in
 * flight, stream credit) still come: a client that owes 64 × 250 KB and
 * does not read is closed as a slow consumer at max_output_bytes (16 MB
 * owed: more than the kernel's socket buffers take, 4 MB at most here),
 * after what was written and a [0, LIMIT, msg] notice; nobody else notices.
 */
static void
test_slow_consumer_closed(void)
{
	static uint8_t big[250000];
	struct test_conn rx, tx;
	const uint8_t *body;
	const char *why;
	uint64_t id;
	int status, values = 0, canceled = 0;
	bool notice = false;
	long n;

	make_chans("owed", 1);
	CU_ASSERT_FATAL(test_conn_open_rcvbuf(&rx, srv.port, true, 4096) == 0);
	CU_ASSERT_FATAL(test_conn_open(&tx, srv.port, true) == 0);
	for (int i = 0; i < 64; i++)
		st_recv(&rx, names[0], PROTO_WAIT_FOREVER);
	CU_ASSERT_FATAL(st_await_waiters(&bystander, names[0], 0, 64));
	for (int i = 0; i < 64; i++)
		st_send(&tx, names[0], big, sizeof big, PROTO_WAIT_FOREVER);
	CU_ASSERT(ping_ms(&bystander) < 1000);
	/* values written before, the notice, each RECV still owed CANCELED, then EOF */
	while ((n = test_conn_frame(&rx, REPLY_MS, &body)) > 0) {
		CU_ASSERT_EQUAL_FATAL(proto_reply_header(body, (size_t)n, &id, &status, &why), STATUS_OK);
		if (id == 0)
			notice = status == STATUS_LIMIT && notice_names(body, (size_t)n, "max_output_bytes");
		else if (status == STATUS_OK)
			values++;
		else
			canceled += status == STATUS_CANCELED;
	}
	CU_ASSERT_EQUAL(n, 0);
	CU_ASSERT(notice);
	CU_ASSERT(values > 0 && values < 64);
	CU_ASSERT_EQUAL(values + canceled, 64);
	CU_ASSERT(test_server_log_has(&srv, "limit=max_output_bytes"));
	CU_ASSERT(await_stat("connections", 2));
	CU_ASSERT(ping_ms(&tx) < 1000);
	test_conn_close(&rx);
	test_conn_close(&tx);
}

static void
register_suites(void)
{
	CU_pSuite s = test_suite("waiters: default budgets", init_default, stop);

	test_add(s, "STREAM amplification refused, neighbour fast, RSS bounded", test_stream_amplification);
	test_add(s, "a full connection budget, then freed", test_full_budget_then_free);
	s = test_suite("waiters: small budgets", init_small, stop);
	test_add(s, "many connections meet max_waiters", test_global_budget);
	test_add(s, "CREDIT past the budget refused, nothing granted", test_credit_past_budget);
	test_add(s, "SELECT counts its cases", test_select_counted);
	test_add(s, "a link counts its inputs and done channel", test_link_waiters);
	test_add(s, "value bytes held by SENDs and links", test_held_bytes);
	test_add(s, "every way a request ends frees its budget", test_every_end_frees);
	test_add(s, "SIGHUP changes the budgets in place", test_reload);
	s = test_suite("waiters: output owed", init_output, stop);
	test_add(s, "a slow consumer past max_output_bytes is closed", test_slow_consumer_closed);
}

int
main(int argc, char **argv)
{
	return test_main(argc, argv, register_suites);
}
