/*
 * test_stream.c: STREAM and CREDIT (PROTOCOL.md §14) through a real chand
 * on an ephemeral loopback port, over the raw protocol.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "srvtest.h"

#define MAX_CREDIT 20000

static struct test_server srv;
static struct test_conn a, b;
static struct proto_out o;

static int
suite_init(void)
{
	proto_out_init(&o);
	return test_server_start(&srv, "max_stream_credit = 20000\nmax_select_cases = 64\n");
}

static int
suite_clean(void)
{
	proto_out_destroy(&o);
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

/* STREAM over names[0..n); returns its id. */
static uint64_t
stream(struct test_conn *c, const char *const *names, size_t n, uint64_t credit, int64_t wait_us)
{
	struct proto_case pc[70];
	uint64_t id = c->next_id++;

	for (size_t i = 0; i < n; i++)
		pc[i] = (struct proto_case){ .name = names[i], .name_len = (uint32_t)strlen(names[i]) };
	CU_ASSERT_EQUAL_FATAL(proto_req_stream(&o, id, wait_us, pc, n, credit), 0);
	st_write(c, &o);
	return id;
}

static uint64_t
credit(struct test_conn *c, uint64_t sid, uint64_t n)
{
	uint64_t id = c->next_id++;

	CU_ASSERT_EQUAL_FATAL(proto_req_credit(&o, id, sid, n), 0);
	st_write(c, &o);
	return id;
}

static uint64_t
cancel(struct test_conn *c, uint64_t target)
{
	uint64_t id = c->next_id++;

	proto_req_cancel(&o, id, target);
	st_write(c, &o);
	return id;
}

/* The next reply must be a value of stream sid, from channel index, equal to want. */
static void
expect_value(struct test_conn *c, uint64_t sid, int64_t index, const char *want)
{
	struct proto_reply r;

	st_next(c, sid, OP_PING, &r);
	CU_ASSERT_EQUAL(r.id, sid);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
	CU_ASSERT(r.interim);
	CU_ASSERT(r.ok);
	CU_ASSERT_EQUAL(r.index, index);
	CU_ASSERT(ST_VALUE_IS(r, want));
}

/* A PING's reply comes next: nothing else was pending output. */
static void
expect_quiet(struct test_conn *c)
{
	struct proto_reply r;
	uint64_t id = st_ping(c);

	st_reply(c, OP_PING, &r);
	CU_ASSERT_EQUAL(r.id, id);
}

static void
send_ok(struct test_conn *c, const char *name, const char *v)
{
	CU_ASSERT_EQUAL(st_send_wait(c, name, v, PROTO_WAIT_FOREVER), STATUS_OK);
}

/* ---- tests --------------------------------------------------------------------- */

static void
test_credit_k(void)
{
	const char *n = st_name("sk");
	struct proto_chan_info info;
	struct proto_reply r;
	char v[8];
	uint64_t sid, cid;

	CU_ASSERT_EQUAL(st_make(&a, n, 8), STATUS_OK);
	for (int i = 0; i < 5; i++) {
		snprintf(v, sizeof v, "v%d", i);
		send_ok(&b, n, v);
	}
	/* buffered values go at once, exactly the credit */
	sid = stream(&a, &n, 1, 3, PROTO_WAIT_FOREVER);
	expect_value(&a, sid, 0, "v0");
	expect_value(&a, sid, 0, "v1");
	expect_value(&a, sid, 0, "v2");
	expect_quiet(&a);
	CU_ASSERT_EQUAL(st_info(&b, n, &info), STATUS_OK);
	CU_ASSERT_EQUAL(info.len, 2);
	CU_ASSERT_EQUAL(info.receivers, 0);
	/* CREDIT 4: two now, two wait; the values come before CREDIT's OK */
	cid = credit(&a, sid, 4);
	expect_value(&a, sid, 0, "v3");
	expect_value(&a, sid, 0, "v4");
	st_next(&a, sid, OP_CREDIT, &r);
	CU_ASSERT_EQUAL(r.id, cid);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
	CU_ASSERT(st_await_waiters(&b, n, 0, 2));
	send_ok(&b, n, "w0");
	send_ok(&b, n, "w1");
	expect_value(&a, sid, 0, "w0");
	expect_value(&a, sid, 0, "w1");
	/* credit used up: the next value is buffered */
	send_ok(&b, n, "w2");
	CU_ASSERT_EQUAL(st_info(&b, n, &info), STATUS_OK);
	CU_ASSERT_EQUAL(info.len, 1);
	cancel(&a, sid);
	st_next(&a, sid, OP_CANCEL, &r);
	CU_ASSERT_EQUAL(r.id, sid);
	CU_ASSERT_EQUAL(r.status, STATUS_CANCELED);
	CU_ASSERT_FALSE(r.interim);
	st_next(&a, sid, OP_CANCEL, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
}

static void
test_fifo_with_recv(void)
{
	const char *n = st_name("sf");
	struct test_conn c;
	struct proto_reply r;
	uint64_t sid, rid;

	CU_ASSERT_FATAL(test_conn_open(&c, srv.port, true) == 0);
	CU_ASSERT_EQUAL(st_make(&a, n, 0), STATUS_OK);
	sid = stream(&a, &n, 1, 3, PROTO_WAIT_FOREVER);
	CU_ASSERT(st_await_waiters(&c, n, 0, 3));
	rid = st_recv(&b, n, PROTO_WAIT_FOREVER);
	CU_ASSERT(st_await_waiters(&c, n, 0, 4));
	/* credit 3 queued before the RECV: the next three values are the stream's */
	send_ok(&c, n, "1");
	send_ok(&c, n, "2");
	send_ok(&c, n, "3");
	send_ok(&c, n, "4");
	expect_value(&a, sid, 0, "1");
	expect_value(&a, sid, 0, "2");
	expect_value(&a, sid, 0, "3");
	st_reply(&b, OP_RECV, &r);
	CU_ASSERT_EQUAL(r.id, rid);
	CU_ASSERT(ST_VALUE_IS(r, "4"));
	/* credit granted now queues behind a later RECV */
	rid = st_recv(&b, n, PROTO_WAIT_FOREVER);
	CU_ASSERT(st_await_waiters(&c, n, 0, 1));
	credit(&a, sid, 1);
	st_next(&a, sid, OP_CREDIT, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
	send_ok(&c, n, "5");
	send_ok(&c, n, "6");
	st_reply(&b, OP_RECV, &r);
	CU_ASSERT(ST_VALUE_IS(r, "5"));
	expect_value(&a, sid, 0, "6");
	test_conn_close(&c);
}

static void
test_uniform(void)
{
	enum { N = 10000 };
	const char *names[2] = { st_name("ux"), st_name("uy") };
	struct proto_reply r;
	int hits[2] = { 0, 0 };
	uint64_t sid;

	CU_ASSERT_EQUAL(st_make(&a, names[0], N), STATUS_OK);
	CU_ASSERT_EQUAL(st_make(&a, names[1], N), STATUS_OK);
	for (int i = 0; i < N; i++) {
		st_send(&b, names[0], "x", 1, 0);
		st_send(&b, names[1], "y", 1, 0);
	}
	for (int i = 0; i < 2 * N; i++) {
		st_reply(&b, OP_SEND, &r);
		CU_ASSERT_EQUAL_FATAL(r.status, STATUS_OK);
	}
	sid = stream(&a, names, 2, N, PROTO_WAIT_FOREVER);
	for (int i = 0; i < N; i++) {
		st_next(&a, sid, OP_PING, &r);
		CU_ASSERT_FATAL(r.interim && (r.index == 0 || r.index == 1));
		CU_ASSERT(ST_VALUE_IS(r, r.index == 0 ? "x" : "y"));
		hits[r.index]++;
	}
	/* uniform: each side within 45%..55% */
	CU_ASSERT(hits[0] > N * 45 / 100 && hits[0] < N * 55 / 100);
	cancel(&a, sid);
	st_next(&a, sid, OP_CANCEL, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_CANCELED);
	st_next(&a, sid, OP_CANCEL, &r);
}

static void
test_closed_once_then_end(void)
{
	const char *names[2] = { st_name("cx"), st_name("cy") };
	struct proto_reply r;
	uint64_t sid;

	CU_ASSERT_EQUAL(st_make(&a, names[0], 0), STATUS_OK);
	CU_ASSERT_EQUAL(st_make(&a, names[1], 0), STATUS_OK);
	sid = stream(&a, names, 2, 5, PROTO_WAIT_FOREVER);
	CU_ASSERT(st_await_waiters(&b, names[1], 0, 5));
	CU_ASSERT_EQUAL(st_close(&b, names[0]), STATUS_OK);
	st_next(&a, sid, OP_PING, &r);
	CU_ASSERT(r.interim);
	CU_ASSERT_EQUAL(r.index, 0);
	CU_ASSERT_FALSE(r.ok);
	CU_ASSERT_EQUAL(r.value.kind, VALUE_NONE);
	/* reported once: the other four pending receives stay on y only */
	CU_ASSERT(st_await_waiters(&b, names[1], 0, 4));
	CU_ASSERT(st_await_waiters(&b, names[0], 0, 0));
	expect_quiet(&a);
	send_ok(&b, names[1], "y1");
	expect_value(&a, sid, 1, "y1");
	/* the last close: reported, then the final reply [id, OK, delivered] */
	CU_ASSERT_EQUAL(st_close(&b, names[1]), STATUS_OK);
	st_next(&a, sid, OP_PING, &r);
	CU_ASSERT(r.interim);
	CU_ASSERT_EQUAL(r.index, 1);
	CU_ASSERT_FALSE(r.ok);
	st_next(&a, sid, OP_PING, &r);
	CU_ASSERT_EQUAL(r.id, sid);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
	CU_ASSERT_FALSE(r.interim);
	CU_ASSERT_EQUAL(r.n, 1);
	CU_ASSERT(st_await_waiters(&b, names[1], 0, 0));
	/* it is over: CREDIT finds no stream */
	credit(&a, sid, 1);
	st_next(&a, 0, OP_CREDIT, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_NOT_FOUND);
}

static void
test_cancel_leaves_nothing(void)
{
	const char *n = st_name("cn");
	struct proto_reply r;
	uint64_t sid, cid;

	CU_ASSERT_EQUAL(st_make(&a, n, 0), STATUS_OK);
	sid = stream(&a, &n, 1, 7, PROTO_WAIT_FOREVER);
	CU_ASSERT(st_await_waiters(&b, n, 0, 7));
	CU_ASSERT_EQUAL(st_stat(&b, "waiters"), 7);
	cid = cancel(&a, sid);
	st_next(&a, sid, OP_CANCEL, &r);
	CU_ASSERT_EQUAL(r.id, sid);
	CU_ASSERT_EQUAL(r.status, STATUS_CANCELED);
	st_next(&a, sid, OP_CANCEL, &r);
	CU_ASSERT_EQUAL(r.id, cid);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
	CU_ASSERT_EQUAL(st_stat(&b, "waiters"), 0);
	CU_ASSERT_EQUAL(st_stat(&b, "pending_requests"), 0);
	CU_ASSERT_EQUAL(st_send_wait(&b, n, "x", 0), STATUS_DEADLINE_EXCEEDED);
}

static void
test_deadline_and_no_wait(void)
{
	const char *n = st_name("dl");
	struct proto_reply r;
	uint64_t sid;

	CU_ASSERT_EQUAL(st_make(&a, n, 4), STATUS_OK);
	sid = stream(&a, &n, 1, 3, 50000);
	st_next(&a, sid, OP_PING, &r);
	CU_ASSERT_EQUAL(r.id, sid);
	CU_ASSERT_EQUAL(r.status, STATUS_DEADLINE_EXCEEDED);
	CU_ASSERT_EQUAL(st_stat(&b, "waiters"), 0);
	/* wait 0: what is ready, up to the credit, then DEADLINE_EXCEEDED */
	send_ok(&b, n, "a");
	send_ok(&b, n, "b");
	sid = stream(&a, &n, 1, 5, 0);
	expect_value(&a, sid, 0, "a");
	expect_value(&a, sid, 0, "b");
	st_next(&a, sid, OP_PING, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_DEADLINE_EXCEEDED);
	CU_ASSERT_EQUAL(st_stat(&b, "waiters"), 0);
}

static void
test_disconnect_and_delete(void)
{
	const char *names[2] = { st_name("gx"), st_name("gy") };
	struct test_conn c;
	struct proto_reply r;
	uint64_t sid;

	CU_ASSERT_EQUAL(st_make(&a, names[0], 0), STATUS_OK);
	CU_ASSERT_EQUAL(st_make(&a, names[1], 0), STATUS_OK);
	CU_ASSERT_FATAL(test_conn_open(&c, srv.port, true) == 0);
	stream(&c, names, 2, 9, PROTO_WAIT_FOREVER);
	CU_ASSERT(st_await_waiters(&b, names[0], 0, 9));
	test_conn_close(&c);
	CU_ASSERT(st_await_waiters(&b, names[0], 0, 0));
	CU_ASSERT(st_await_waiters(&b, names[1], 0, 0));
	/* a deleted channel ends the stream: NOT_FOUND with its index */
	sid = stream(&a, names, 2, 2, PROTO_WAIT_FOREVER);
	CU_ASSERT(st_await_waiters(&b, names[1], 0, 2));
	st_name_op(&b, OP_DELETE, names[1]);
	st_reply(&b, OP_DELETE, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
	st_next(&a, sid, OP_PING, &r);
	CU_ASSERT_EQUAL(r.id, sid);
	CU_ASSERT_EQUAL(r.status, STATUS_NOT_FOUND);
	CU_ASSERT_EQUAL(r.index, 1);
	CU_ASSERT(st_await_waiters(&b, names[0], 0, 0));
}

/* The WAITERS entry of a stream: op STREAM, its channels as receive cases. */
static void
test_waiters_listing(void)
{
	const char *names[2] = { st_name("wx"), st_name("wy") };
	struct proto_waiter_info w;
	struct proto_reply r;
	struct proto_list l;
	const char *name;
	uint32_t len;
	uint8_t dir;
	uint64_t sid;
	bool found = false;

	CU_ASSERT_EQUAL(st_make(&a, names[0], 0), STATUS_OK);
	CU_ASSERT_EQUAL(st_make(&a, names[1], 0), STATUS_OK);
	sid = stream(&a, names, 2, 3, PROTO_WAIT_FOREVER);
	CU_ASSERT(st_await_waiters(&b, names[1], 0, 3));
	proto_req_waiters(&o, b.next_id++, 0);
	st_write(&b, &o);
	st_reply(&b, OP_WAITERS, &r);
	while (proto_list_waiter(&r.list, &w) == 1) {
		if (w.request != sid)
			continue;
		found = true;
		CU_ASSERT_EQUAL(w.op, OP_STREAM);
		CU_ASSERT_EQUAL(w.ncases, 2);
		proto_case_list(&w, &l);
		CU_ASSERT_EQUAL(proto_list_case(&l, &dir, &name, &len), 1);
		CU_ASSERT_EQUAL(dir, 0);
		CU_ASSERT(len == strlen(names[0]) && memcmp(name, names[0], len) == 0);
	}
	CU_ASSERT(found);
	cancel(&a, sid);
	st_next(&a, sid, OP_CANCEL, &r);
	st_next(&a, sid, OP_CANCEL, &r);
}

static void
expect_error(struct test_conn *c, uint64_t op, int status, int64_t index)
{
	struct proto_reply r;

	st_next(c, 0, op, &r);
	CU_ASSERT_EQUAL(r.status, status);
	CU_ASSERT_EQUAL(r.index, index);
	CU_ASSERT_PTR_NOT_NULL(r.msg);
}

static void
test_bad_input(void)
{
	const char *n = st_name("bad");
	const char *many[65];
	const char *dup[3] = { n, "x", n };
	const char *missing[2] = { n, "no.such.stream.channel" };
	uint64_t rid;

	CU_ASSERT_EQUAL(st_make(&a, n, 0), STATUS_OK);
	CU_ASSERT_EQUAL(st_make(&a, "x", 0), STATUS_OK);
	stream(&a, &n, 1, 0, PROTO_WAIT_FOREVER);
	expect_error(&a, OP_STREAM, STATUS_BAD_REQUEST, -1);
	stream(&a, &n, 1, MAX_CREDIT + 1, PROTO_WAIT_FOREVER);
	expect_error(&a, OP_STREAM, STATUS_LIMIT, -1);
	stream(&a, &n, 0, 1, PROTO_WAIT_FOREVER);
	expect_error(&a, OP_STREAM, STATUS_BAD_REQUEST, -1);
	for (int i = 0; i < 65; i++)
		many[i] = n;
	stream(&a, many, 65, 1, PROTO_WAIT_FOREVER);
	expect_error(&a, OP_STREAM, STATUS_LIMIT, -1);
	stream(&a, dup, 3, 1, PROTO_WAIT_FOREVER);
	expect_error(&a, OP_STREAM, STATUS_BAD_REQUEST, 2);
	stream(&a, missing, 2, 1, PROTO_WAIT_FOREVER);
	expect_error(&a, OP_STREAM, STATUS_NOT_FOUND, 1);
	/* CREDIT: no such request, not a stream, past the limit */
	credit(&a, 424242, 1);
	expect_error(&a, OP_CREDIT, STATUS_NOT_FOUND, -1);
	rid = st_recv(&a, n, PROTO_WAIT_FOREVER);
	credit(&a, rid, 1);
	expect_error(&a, OP_CREDIT, STATUS_BAD_REQUEST, -1);
	cancel(&a, rid);
	expect_error(&a, OP_RECV, STATUS_CANCELED, -1);
	st_next(&a, 0, OP_CANCEL, &(struct proto_reply){ 0 });
	rid = stream(&a, &n, 1, MAX_CREDIT, PROTO_WAIT_FOREVER);
	credit(&a, rid, 1);
	expect_error(&a, OP_CREDIT, STATUS_LIMIT, -1);
	credit(&a, rid, UINT64_MAX);
	expect_error(&a, OP_CREDIT, STATUS_LIMIT, -1);
	cancel(&a, rid);
	expect_error(&a, OP_STREAM, STATUS_CANCELED, -1);
	st_next(&a, 0, OP_CANCEL, &(struct proto_reply){ 0 });
	/* the connection goes on, and nothing was left waiting */
	expect_quiet(&a);
	CU_ASSERT_EQUAL(st_stat(&b, "waiters"), 0);
}

/* A value sent while the stream is being cancelled goes to exactly one receiver. */
static void
test_cancel_race(void)
{
	const char *n = st_name("race");
	struct test_conn c;
	struct proto_reply r;
	int to_stream = 0, to_recv = 0;

	CU_ASSERT_FATAL(test_conn_open(&c, srv.port, true) == 0);
	CU_ASSERT_EQUAL(st_make(&a, n, 0), STATUS_OK);
	for (int i = 0; i < 200; i++) {
		uint64_t sid = stream(&a, &n, 1, 1, PROTO_WAIT_FOREVER), rid, cid;
		bool got = false, final = false;

		CU_ASSERT_FATAL(st_await_waiters(&c, n, 0, 1));
		rid = st_recv(&b, n, PROTO_WAIT_FOREVER);
		CU_ASSERT_FATAL(st_await_waiters(&c, n, 0, 2));
		/* race a SEND (from c) against the stream's CANCEL (from a) */
		st_send(&c, n, "v", 1, PROTO_WAIT_FOREVER);
		cid = cancel(&a, sid);
		/* the stream's replies, its final one last, then CANCEL's OK */
		while (!final) {
			st_next(&a, sid, OP_CANCEL, &r);
			CU_ASSERT_EQUAL_FATAL(r.id, sid);
			if (r.interim) {
				CU_ASSERT(ST_VALUE_IS(r, "v"));
				got = true;
			} else {
				CU_ASSERT_EQUAL(r.status, STATUS_CANCELED);
				final = true;
			}
		}
		st_reply(&c, OP_SEND, &r);
		CU_ASSERT_EQUAL(r.status, STATUS_OK);
		if (got) {
			to_stream++;
			/* the RECV is still waiting: cancel it, it had nothing */
			cancel(&b, rid);
			st_reply(&b, OP_RECV, &r);
			CU_ASSERT_EQUAL(r.id, rid);
			CU_ASSERT_EQUAL(r.status, STATUS_CANCELED);
			st_reply(&b, OP_CANCEL, &r);
		} else {
			to_recv++;
			st_reply(&b, OP_RECV, &r);
			CU_ASSERT_EQUAL(r.id, rid);
			CU_ASSERT(ST_VALUE_IS(r, "v"));
		}
		st_next(&a, sid, OP_CANCEL, &r);
		CU_ASSERT_EQUAL(r.id, cid);
		CU_ASSERT_EQUAL(r.status, STATUS_OK);
		CU_ASSERT_FATAL(st_await_waiters(&c, n, 0, 0));
	}
	CU_ASSERT_EQUAL(to_stream + to_recv, 200);
	test_conn_close(&c);
}

static void
register_suites(void)
{
	CU_pSuite s = CU_add_suite_with_setup_and_teardown("stream", suite_init, suite_clean,
	    test_setup, test_teardown);

	if (s == NULL) {
		fprintf(stderr, "CU_add_suite: %s\n", CU_get_error_msg());
		exit(2);
	}
	test_add(s, "credit k: k values, then waits; CREDIT resumes", test_credit_k);
	test_add(s, "FIFO with plain RECV receivers", test_fifo_with_recv);
	test_add(s, "multi-channel stream is uniform (10,000 values)", test_uniform);
	test_add(s, "a close is reported once, all closed ends it OK", test_closed_once_then_end);
	test_add(s, "CANCEL: final CANCELED, no waiter left", test_cancel_leaves_nothing);
	test_add(s, "deadline, and wait 0", test_deadline_and_no_wait);
	test_add(s, "disconnect leaves no waiter; delete ends NOT_FOUND", test_disconnect_and_delete);
	test_add(s, "WAITERS lists a stream", test_waiters_listing);
	test_add(s, "bad input", test_bad_input);
	test_add(s, "a value racing CANCEL is delivered exactly once", test_cancel_race);
}

int
main(int argc, char **argv)
{
	return test_main(argc, argv, register_suites);
}
