/*
 * test_server_proto.c: the corners of PROTOCOL.md that a client written
 * from the text alone must be able to rely on: request ids, HELLO's
 * errors, what max_pending counts, what INFO's bytes count, CANCEL of
 * itself. Through a real chand on an ephemeral loopback port, over the raw
 * protocol.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <stdio.h>
#include <string.h>

#include "srvtest.h"

static struct test_server srv;
static struct test_conn a, b;

static int
suite_init(void)
{
	return test_server_start(&srv, "max_pending = 2\nmax_buffered_bytes = 200\n");
}

static int
suite_clean(void)
{
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

/* Does the error reply's message start with s? */
static bool
msg_starts(const struct proto_reply *r, const char *s)
{
	return r->msg != NULL && r->msg_len >= strlen(s) && memcmp(r->msg, s, strlen(s)) == 0;
}

/* ---- HELLO's errors (§5) ---------------------------------------------------------- */

/* [1, 1, nil, 1, "t"]: a HELLO one argument short. */
static const uint8_t short_hello[] = { 0, 0, 0, 7, 0x95, 0x01, 0x01, 0xc0, 0x01, 0xa1, 't' };

/* The next reply answers op: [id, status, ...], then (closed) EOF. */
static void
expect(struct test_conn *c, uint64_t op, uint64_t id, int status, bool closed)
{
	struct proto_reply r;
	const uint8_t *body;

	st_reply(c, op, &r);
	CU_ASSERT_EQUAL(r.id, id);
	CU_ASSERT_EQUAL(r.status, status);
	if (closed)
		CU_ASSERT_EQUAL(test_conn_frame(c, REPLY_MS, &body), 0);
}

/* A HELLO that is BAD_REQUEST leaves the connection open and waiting for a HELLO. */
static void
test_hello_bad_request_retry(void)
{
	struct test_conn c;
	struct proto_out o;

	proto_out_init(&o);
	/* then a good HELLO: the connection works */
	CU_ASSERT_FATAL(test_conn_open(&c, srv.port, false) == 0);
	CU_ASSERT_EQUAL(test_conn_write(&c, short_hello, sizeof short_hello), 0);
	expect(&c, OP_HELLO, 1, STATUS_BAD_REQUEST, false);
	proto_req_hello(&o, 2, PROTO_VERSION, "retry", NULL);
	st_write(&c, &o);
	expect(&c, OP_HELLO, 2, STATUS_OK, false);
	proto_req_ping(&o, 3);
	st_write(&c, &o);
	expect(&c, OP_PING, 3, STATUS_OK, false);
	test_conn_close(&c);
	/* then anything but HELLO: PROTOCOL, to its id, and closed */
	CU_ASSERT_FATAL(test_conn_open(&c, srv.port, false) == 0);
	CU_ASSERT_EQUAL(test_conn_write(&c, short_hello, sizeof short_hello), 0);
	expect(&c, OP_HELLO, 1, STATUS_BAD_REQUEST, false);
	proto_req_ping(&o, 2);
	st_write(&c, &o);
	expect(&c, OP_PING, 2, STATUS_PROTOCOL, true);
	test_conn_close(&c);
	proto_out_destroy(&o);
}

/* Refused credentials and identity_max_connections close the connection after the reply. */
static void
test_hello_refusals_close(void)
{
	/* the SHA-256 of "secret" */
	static const char conf[] = "token = t:2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b\n"
	    "identity_max_connections = 1\n";
	const char *tokens[] = { "wrong", NULL, "secret", "secret" };
	const int want[] = { STATUS_PERMISSION_DENIED, STATUS_PERMISSION_DENIED, STATUS_OK, STATUS_LIMIT };
	struct test_server s;
	struct test_conn c[4];
	struct proto_out o;

	CU_ASSERT_FATAL(test_server_start(&s, conf) == 0);
	proto_out_init(&o);
	for (int i = 0; i < 4; i++) {
		CU_ASSERT_FATAL(test_conn_open(&c[i], s.port, false) == 0);
		proto_req_hello(&o, 5, PROTO_VERSION, "t", tokens[i]);
		st_write(&c[i], &o);
		expect(&c[i], OP_HELLO, 5, want[i], want[i] != STATUS_OK);
	}
	for (int i = 0; i < 4; i++)
		test_conn_close(&c[i]);
	proto_out_destroy(&o);
	CU_ASSERT_EQUAL(test_server_stop(&s), 0);
}

/* ---- request ids (§2, §9, §15) -------------------------------------------------- */

/*
 * A duplicate of a pending id: the pending requests are answered CANCELED,
 * the duplicate gets no reply of its own, the notice goes to id 0, then
 * the connection closes. Each id is answered exactly once.
 */
static void
test_duplicate_pending_id(void)
{
	const char *n = st_name("dup");
	struct proto_out o;
	struct proto_reply r;
	const uint8_t *body;
	int seen50 = 0, seen51 = 0;

	CU_ASSERT_EQUAL(st_make(&a, n, 0), STATUS_OK);
	proto_out_init(&o);
	proto_req_name(&o, OP_RECV, 50, PROTO_WAIT_FOREVER, n, strlen(n));
	proto_req_name(&o, OP_RECV, 51, PROTO_WAIT_FOREVER, n, strlen(n));
	proto_req_ping(&o, 50);
	st_write(&a, &o);
	for (int i = 0; i < 2; i++) {
		st_reply(&a, OP_RECV, &r);
		CU_ASSERT_EQUAL(r.status, STATUS_CANCELED);
		seen50 += r.id == 50;
		seen51 += r.id == 51;
	}
	CU_ASSERT(seen50 == 1 && seen51 == 1);
	st_reply(&a, OP_PING, &r);
	CU_ASSERT_EQUAL(r.id, 0);
	CU_ASSERT_EQUAL(r.status, STATUS_PROTOCOL);
	CU_ASSERT(msg_starts(&r, "duplicate request id 50"));
	CU_ASSERT_EQUAL(test_conn_frame(&a, REPLY_MS, &body), 0);
	CU_ASSERT(st_await_waiters(&b, n, 0, 0));
	proto_out_destroy(&o);
}

/*
 * Any PROTOCOL close answers what it owes first, here for a frame of length
 * 0: the held deferred reply, then the pending request CANCELED, then the
 * notice.
 */
static void
test_protocol_close_answers_pending(void)
{
	static const uint8_t empty_frame[4] = { 0, 0, 0, 0 };
	const char *n = st_name("pc.wait"), *m = st_name("pc.buf");
	struct proto_reply r;
	const uint8_t *body;
	uint64_t rid, sid;

	CU_ASSERT_EQUAL(st_make(&a, n, 0), STATUS_OK);
	CU_ASSERT_EQUAL(st_make(&a, m, 1), STATUS_OK);
	sid = st_send_deferred(&a, m, "x", 1);	/* buffered at once: its OK is held */
	rid = st_recv(&a, n, PROTO_WAIT_FOREVER);
	CU_ASSERT(st_await_waiters(&b, n, 0, 1));
	CU_ASSERT_EQUAL(test_conn_write(&a, empty_frame, sizeof empty_frame), 0);
	st_reply(&a, OP_SEND, &r);
	CU_ASSERT_EQUAL(r.id, sid);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
	st_reply(&a, OP_RECV, &r);
	CU_ASSERT_EQUAL(r.id, rid);
	CU_ASSERT_EQUAL(r.status, STATUS_CANCELED);
	st_reply(&a, OP_PING, &r);
	CU_ASSERT_EQUAL(r.id, 0);
	CU_ASSERT_EQUAL(r.status, STATUS_PROTOCOL);
	CU_ASSERT_EQUAL(test_conn_frame(&a, REPLY_MS, &body), 0);
	CU_ASSERT(st_await_waiters(&b, n, 0, 0));
}

/*
 * A deferred reply held unsent keeps its id in use: a request reusing it
 * is a duplicate (the two replies would arrive together, ambiguous).
 */
static void
test_duplicate_held_id(void)
{
	const char *n = st_name("held");
	struct proto_out o;
	struct proto_reply r;
	const uint8_t *body;
	uint64_t id;

	CU_ASSERT_EQUAL(st_make(&a, n, 4), STATUS_OK);
	id = st_send_deferred(&a, n, "x", 1);	/* buffered at once: its OK is held */
	CU_ASSERT(st_await_waiters(&b, n, 0, 0));
	proto_out_init(&o);
	proto_req_ping(&o, id);
	st_write(&a, &o);
	/* the held OK goes out as the connection closes, then the notice */
	st_reply(&a, OP_SEND, &r);
	CU_ASSERT_EQUAL(r.id, id);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
	st_reply(&a, OP_PING, &r);
	CU_ASSERT_EQUAL(r.id, 0);
	CU_ASSERT_EQUAL(r.status, STATUS_PROTOCOL);
	CU_ASSERT(msg_starts(&r, "duplicate request id"));
	CU_ASSERT_EQUAL(test_conn_frame(&a, REPLY_MS, &body), 0);
	proto_out_destroy(&o);
}

/* Once a held reply is written (with a later reply, or by WANT), its id is free again. */
static void
test_held_id_free_once_written(void)
{
	const char *n = st_name("free");
	struct proto_out o;
	struct proto_reply r;
	uint64_t id, w;

	CU_ASSERT_EQUAL(st_make(&a, n, 4), STATUS_OK);
	proto_out_init(&o);
	for (int round = 0; round < 2; round++) {
		/* round 0: a PING's reply writes it; round 1: WANT of the finished request does */
		id = st_send_deferred(&a, n, "x", 1);
		w = round == 0 ? st_ping(&a) : st_want(&a, id);
		st_reply(&a, OP_SEND, &r);
		CU_ASSERT_EQUAL(r.id, id);
		st_reply(&a, OP_PING, &r);
		CU_ASSERT_EQUAL(r.id, w);
		/* the client has read it: the id may be used again */
		proto_req_ping(&o, id);
		st_write(&a, &o);
		st_reply(&a, OP_PING, &r);
		CU_ASSERT_EQUAL(r.id, id);
		CU_ASSERT_EQUAL(r.status, STATUS_OK);
	}
	proto_out_destroy(&o);
}

/* ---- max_pending (§8): only a request that must wait counts ---------------------- */

static void
test_pending_counts_waiters_only(void)
{
	const char *n = st_name("pw"), *m = st_name("pm"), *z = st_name("pz");
	struct proto_case c[2] = {
		{ .dir = 0, .name = n, .name_len = (uint32_t)strlen(n) },
		{ .dir = 0, .name = m, .name_len = (uint32_t)strlen(m) },
	};
	struct proto_reply r;
	struct proto_chan_info info;
	char buf[16];
	bool ok;

	CU_ASSERT_EQUAL(st_make(&a, n, 0), STATUS_OK);
	CU_ASSERT_EQUAL(st_make(&a, m, 4), STATUS_OK);
	CU_ASSERT_EQUAL(st_make(&a, z, 0), STATUS_OK);
	/* max_pending = 2: two receives wait on n */
	st_recv(&a, n, PROTO_WAIT_FOREVER);
	st_recv(&a, n, PROTO_WAIT_FOREVER);
	CU_ASSERT_FATAL(st_await_waiters(&b, n, 0, 2));
	/* requests that complete at once are not refused: buffer, take, select a ready case */
	CU_ASSERT_EQUAL(st_send_wait(&a, m, "v1", PROTO_WAIT_FOREVER), STATUS_OK);
	CU_ASSERT_EQUAL(st_send_wait(&a, m, "v2", PROTO_WAIT_FOREVER), STATUS_OK);
	CU_ASSERT_EQUAL(st_recv_wait(&a, m, PROTO_WAIT_FOREVER, buf, sizeof buf, &ok), STATUS_OK);
	CU_ASSERT_STRING_EQUAL(buf, "v1");
	st_select(&a, c, 2, false, PROTO_WAIT_FOREVER);
	st_reply(&a, OP_SELECT, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
	CU_ASSERT_EQUAL(r.index, 1);
	CU_ASSERT(ST_VALUE_IS(r, "v2"));
	/* nor are those that would not wait: a try-receive, a select with default */
	CU_ASSERT_EQUAL(st_recv_wait(&a, m, 0, buf, sizeof buf, &ok), STATUS_DEADLINE_EXCEEDED);
	st_select(&a, c, 2, true, PROTO_WAIT_FOREVER);
	st_reply(&a, OP_SELECT, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
	CU_ASSERT_EQUAL(r.index, -1);
	/* one that must wait is refused, and leaves no waiter */
	CU_ASSERT_EQUAL(st_recv_wait(&a, m, PROTO_WAIT_FOREVER, buf, sizeof buf, &ok), STATUS_LIMIT);
	CU_ASSERT_EQUAL(st_send_wait(&a, z, "x", 1000000), STATUS_LIMIT);
	st_select(&a, c, 2, false, 1000000);
	st_reply(&a, OP_SELECT, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_LIMIT);
	CU_ASSERT_EQUAL(st_info(&b, m, &info), STATUS_OK);
	CU_ASSERT_EQUAL(info.receivers, 0);
	CU_ASSERT_EQUAL(st_info(&b, z, &info), STATUS_OK);
	CU_ASSERT_EQUAL(info.senders, 0);
	CU_ASSERT(st_await_waiters(&b, n, 0, 2));
	/* a waiter served makes room for the next */
	CU_ASSERT_EQUAL(st_send_wait(&b, n, "go", 0), STATUS_OK);
	st_reply(&a, OP_RECV, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
	st_recv(&a, m, PROTO_WAIT_FOREVER);
	CU_ASSERT(st_await_waiters(&b, m, 0, 1));
}

/* ---- INFO bytes, STATS buffered_bytes, max_buffered_bytes: payload (§5, §8) ------ */

/* SEND of a value; returns its status. */
static int
send_value(struct test_conn *c, const char *name, const struct proto_value *v)
{
	struct proto_out o;
	struct proto_reply r;

	proto_out_init(&o);
	proto_req_send(&o, c->next_id++, 0, name, strlen(name), v);
	st_write(c, &o);
	proto_out_destroy(&o);
	st_reply(c, OP_SEND, &r);
	return r.status;
}

static void
test_bytes_count_payload(void)
{
	static uint8_t data[200];
	const char *n = st_name("bytes");
	struct proto_value v = { .kind = VALUE_BIN, .data = data, .len = 100 };
	struct proto_value ref = { .kind = VALUE_CHANREF, .data = (const uint8_t *)"abc", .len = 3 };
	struct proto_chan_info info;
	struct proto_reply r;
	uint64_t used = st_stat(&b, "buffered_bytes");

	CU_ASSERT_EQUAL(st_make(&a, n, 4), STATUS_OK);
	/* a 100-byte bin (102 bytes encoded) counts 100; a reference, its name */
	CU_ASSERT_EQUAL(send_value(&a, n, &v), STATUS_OK);
	CU_ASSERT_EQUAL(st_info(&b, n, &info), STATUS_OK);
	CU_ASSERT_EQUAL(info.bytes, 100);
	CU_ASSERT_EQUAL(st_stat(&b, "buffered_bytes"), used + 100);
	CU_ASSERT_EQUAL(send_value(&a, n, &ref), STATUS_OK);
	CU_ASSERT_EQUAL(st_info(&b, n, &info), STATUS_OK);
	CU_ASSERT_EQUAL(info.bytes, 103);
	/* max_buffered_bytes = 200 counts payload too: exactly up to it fits, a byte more does not */
	used = st_stat(&b, "buffered_bytes");
	CU_ASSERT_FATAL(used <= 200);
	v.len = 200 - used;
	CU_ASSERT_EQUAL(send_value(&a, n, &v), STATUS_OK);
	v.len = 1;
	CU_ASSERT_EQUAL(send_value(&a, n, &v), STATUS_LIMIT);
	CU_ASSERT_EQUAL(st_stat(&b, "buffered_bytes"), 200);
	/* DELETE gives them all back */
	st_name_op(&a, OP_DELETE, n);
	st_reply(&a, OP_DELETE, &r);
	CU_ASSERT_EQUAL(r.n, 3);
	CU_ASSERT_EQUAL(st_stat(&a, "buffered_bytes"), used - 103);
}

/* ---- SELECT (§5) ------------------------------------------------------------------ */

/* The next reply: decoded as a reply to op1 when it answers id1, else to op2. */
static void
reply_either(struct test_conn *c, uint64_t id1, uint64_t op1, uint64_t op2, struct proto_reply *r)
{
	const uint8_t *body;
	const char *why;
	long n = test_conn_frame(c, REPLY_MS, &body);
	uint64_t id;
	int st;

	CU_ASSERT_FATAL(n > 0);
	CU_ASSERT_FATAL(proto_reply_header(body, (size_t)n, &id, &st, &why) == STATUS_OK);
	CU_ASSERT_FATAL(proto_decode_reply(body, (size_t)n, id == id1 ? op1 : op2, r, &why) == STATUS_OK);
}

/*
 * "Never matches itself" is about one request: a RECV and a SEND (or a
 * SELECT's send case) of one connection pair like any two.
 */
static void
test_same_connection_rendezvous(void)
{
	const char *n = st_name("self");
	struct proto_case c = { .dir = 1, .name = n, .name_len = (uint32_t)strlen(n),
	    .value = { .kind = VALUE_BIN, .data = (const uint8_t *)"s", .len = 1 } };
	struct proto_reply r;
	uint64_t rid, sid;
	int got;

	CU_ASSERT_EQUAL(st_make(&a, n, 0), STATUS_OK);
	for (int round = 0; round < 2; round++) {
		rid = st_recv(&a, n, PROTO_WAIT_FOREVER);
		CU_ASSERT(st_await_waiters(&b, n, 0, 1));
		/* wait 0: it completes at once, with the waiting RECV, or fails */
		sid = round == 0 ? st_send(&a, n, "s", 1, 0) : st_select(&a, &c, 1, false, 0);
		got = 0;
		for (int i = 0; i < 2; i++) {
			reply_either(&a, rid, OP_RECV, round == 0 ? OP_SEND : OP_SELECT, &r);
			CU_ASSERT_EQUAL(r.status, STATUS_OK);
			if (r.id == rid) {
				CU_ASSERT(ST_VALUE_IS(r, "s"));
				got++;
			} else {
				CU_ASSERT_EQUAL(r.id, sid);
				got += 2;
			}
		}
		CU_ASSERT_EQUAL(got, 3);
	}
	CU_ASSERT(st_await_waiters(&b, n, 0, 0));
}

/* The errors that carry a case index, and one that does not. */
static void
test_select_error_index(void)
{
	static uint8_t big[201];
	const char *open_ch = st_name("si.open"), *shut = st_name("si.shut");
	struct proto_case c[2] = {
		{ .dir = 0, .name = open_ch, .name_len = (uint32_t)strlen(open_ch) },
		{ .dir = 1, .name = shut, .name_len = (uint32_t)strlen(shut),
		  .value = { .kind = VALUE_BIN, .data = big, .len = 1 } },
	};
	struct proto_reply r;

	CU_ASSERT_EQUAL(st_make(&a, open_ch, 4), STATUS_OK);
	CU_ASSERT_EQUAL(st_make(&a, shut, 4), STATUS_OK);
	/* a payload over max_buffered_bytes (200) on a send case: LIMIT, index 1 */
	c[1].value.len = sizeof big;
	st_select(&a, c, 2, false, 0);
	st_reply(&a, OP_SELECT, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_LIMIT);
	CU_ASSERT_EQUAL(r.index, 1);
	/* a send case on a closed channel: CLOSED, index 1 */
	c[1].value.len = 1;
	CU_ASSERT_EQUAL(st_close(&a, shut), STATUS_OK);
	st_select(&a, c, 2, false, 0);
	st_reply(&a, OP_SELECT, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_CLOSED);
	CU_ASSERT_EQUAL(r.index, 1);
	/* a case's channel that does not exist: NOT_FOUND, index 1 */
	c[1].name = "si.none";
	c[1].name_len = 7;
	st_select(&a, c, 2, false, 0);
	st_reply(&a, OP_SELECT, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_NOT_FOUND);
	CU_ASSERT_EQUAL(r.index, 1);
	/* nothing ready, wait 0: DEADLINE_EXCEEDED belongs to no case */
	st_select(&a, c, 1, false, 0);
	st_reply(&a, OP_SELECT, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_DEADLINE_EXCEEDED);
	CU_ASSERT_EQUAL(r.index, -1);
}

/* ---- CANCEL of its own id (§5) ------------------------------------------------- */

static void
test_cancel_own_id(void)
{
	struct proto_out o;
	struct proto_reply r;

	proto_out_init(&o);
	proto_req_cancel(&o, 70, 70);
	st_write(&a, &o);
	st_reply(&a, OP_CANCEL, &r);
	CU_ASSERT_EQUAL(r.id, 70);
	CU_ASSERT_EQUAL(r.status, STATUS_BAD_REQUEST);
	CU_ASSERT(msg_starts(&r, "CANCEL cannot target its own id"));
	/* deferred alike; and the connection goes on */
	proto_req_cancel(&o, 71, 71);
	CU_ASSERT_EQUAL(proto_req_defer_last(&o), 0);
	proto_req_ping(&o, 72);
	st_write(&a, &o);
	st_reply(&a, OP_CANCEL, &r);
	CU_ASSERT_EQUAL(r.id, 71);
	CU_ASSERT_EQUAL(r.status, STATUS_BAD_REQUEST);
	st_reply(&a, OP_PING, &r);
	CU_ASSERT_EQUAL(r.id, 72);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
	proto_out_destroy(&o);
}

static void
register_suites(void)
{
	CU_pSuite s = CU_add_suite_with_setup_and_teardown("protocol", suite_init, suite_clean,
	    test_setup, test_teardown);

	test_add(s, "a HELLO that is BAD_REQUEST can be retried; nothing else can follow it",
	    test_hello_bad_request_retry);
	test_add(s, "HELLO's PERMISSION_DENIED and LIMIT close the connection", test_hello_refusals_close);
	test_add(s, "a duplicate pending id: pending CANCELED, notice on id 0, closed", test_duplicate_pending_id);
	test_add(s, "a PROTOCOL close writes held replies, CANCELs pending ones, then the notice",
	    test_protocol_close_answers_pending);
	test_add(s, "the id of a held deferred reply is still in use", test_duplicate_held_id);
	test_add(s, "a held reply's id is free once written", test_held_id_free_once_written);
	test_add(s, "max_pending refuses only a request that must wait", test_pending_counts_waiters_only);
	test_add(s, "INFO bytes, STATS buffered_bytes and max_buffered_bytes count payload", test_bytes_count_payload);
	test_add(s, "two requests of one connection rendezvous", test_same_connection_rendezvous);
	test_add(s, "SELECT errors with and without a case index", test_select_error_index);
	test_add(s, "CANCEL of its own id is BAD_REQUEST", test_cancel_own_id);
}

int
main(int argc, char **argv)
{
	return test_main(argc, argv, register_suites);
}
