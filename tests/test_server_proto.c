/*
 * test_server_proto.c: the corners of PROTOCOL.md that a client written
 * from the text alone must be able to rely on: request ids, HELLO's
 * errors, what max_pending counts, what INFO's bytes count, CANCEL of
 * itself. Through a real chand on an ephemeral loopback port, over the raw
 * protocol.
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

static void
register_suites(void)
{
	CU_pSuite s = CU_add_suite_with_setup_and_teardown("protocol", suite_init, suite_clean,
	    test_setup, test_teardown);

	test_add(s, "a duplicate pending id: pending CANCELED, notice on id 0, closed", test_duplicate_pending_id);
	test_add(s, "the id of a held deferred reply is still in use", test_duplicate_held_id);
	test_add(s, "a held reply's id is free once written", test_held_id_free_once_written);
}

int
main(int argc, char **argv)
{
	return test_main(argc, argv, register_suites);
}
