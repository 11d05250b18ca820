/*
 * test_server_limits.c: a real chand against bad input, every limit,
 * backpressure, many connections, many deadlines, shutdown and config
 * errors. Whatever one client does, another connected client keeps working.
 *
 * This file holds the suites' chand and bystander, bad input and scale, and
 * the limits; how replies are written is in test_server_limits_writes.c,
 * shutdown, config errors and the unix socket in
 * test_server_limits_lifecycle.c.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "srvtest.h"
#include "limitstest.h"

struct test_server srv;
struct test_conn bystander;	/* must keep working through everything */

int
start(const char *conf)
{
	if (test_server_start(&srv, conf) < 0)
		return -1;
	return test_conn_open(&bystander, srv.port, true);
}

int
stop(void)
{
	test_conn_close(&bystander);
	return test_server_stop(&srv) == 0 ? 0 : -1;
}

static int init_default(void) { return start(NULL); }

static int
init_small(void)
{
	return start("max_pending = 2\nmax_connections = 4\nmax_channels = 3\n"
	    "max_buffered_bytes = 100\nmax_value = 64\nmax_frame = 1024\nmax_cap = 8\n"
	    "max_select_cases = 3\noutput_hwm = 4096\n");
}

void
assert_bystander_ok(void)
{
	struct proto_reply r;

	st_ping(&bystander);
	st_reply(&bystander, OP_PING, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
}

/*
 * Is c still served? A PING's reply says so at once; a closed connection reads
 * end of file (or fails the write) without the wait a silent read would need.
 */
static bool
conn_answers(struct test_conn *c)
{
	struct proto_out o;
	const uint8_t *body;
	uint64_t rid = 0;
	int status = -1;
	const char *why;
	long n = -1;

	proto_out_init(&o);
	proto_req_ping(&o, 424242);
	if (test_conn_write(c, proto_out_data(&o), proto_out_len(&o)) == 0)
		n = test_conn_frame(c, REPLY_MS, &body);
	proto_out_destroy(&o);
	if (n > 0)
		proto_reply_header(body, (size_t)n, &rid, &status, &why);
	return n > 0 && rid == 424242 && status == STATUS_OK;
}

/* Send raw bytes on a new connection (after HELLO if asked); return the first reply frame's status. */
static int
raw_exchange(const void *bytes, size_t len, bool hello, uint64_t *id, bool *closed)
{
	struct test_conn c;
	const uint8_t *body;
	long n;
	uint64_t rid = 0;
	int status = -1;
	const char *why;

	CU_ASSERT_FATAL(test_conn_open(&c, srv.port, hello) == 0);
	CU_ASSERT_FATAL(test_conn_write(&c, bytes, len) == 0);
	n = test_conn_frame(&c, REPLY_MS, &body);
	if (n > 0)
		proto_reply_header(body, (size_t)n, &rid, &status, &why);
	if (id)
		*id = rid;
	if (closed)
		*closed = !conn_answers(&c);
	test_conn_close(&c);
	return status;
}

static size_t
frame(uint8_t *buf, const uint8_t *body, size_t len)
{
	buf[0] = (uint8_t)(len >> 24);
	buf[1] = (uint8_t)(len >> 16);
	buf[2] = (uint8_t)(len >> 8);
	buf[3] = (uint8_t)len;
	memcpy(buf + 4, body, len);
	return len + 4;
}

static void
test_malformed_frames(void)
{
	static const uint8_t not_msgpack[] = { 0xc1 };
	static const uint8_t not_array[] = { 0xa1, 'x' };
	static const uint8_t trailing[] = { 0x93, 0x02, 0x05, 0xc0, 0x00 };
	static const uint8_t absurd[] = { 0xdd, 0xff, 0xff, 0xff, 0xff };
	static const uint8_t no_id[] = { 0x93, 0x02, 0xa1, 'x', 0xc0 };
	const uint8_t *bodies[] = { not_msgpack, not_array, trailing, absurd, no_id };
	const size_t lens[] = { sizeof not_msgpack, sizeof not_array, sizeof trailing,
	    sizeof absurd, sizeof no_id };
	uint8_t buf[64];

	for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
		uint64_t id;
		bool closed;
		size_t n = frame(buf, bodies[i], lens[i]);

		CU_ASSERT_EQUAL(raw_exchange(buf, n, true, &id, &closed), STATUS_PROTOCOL);
		CU_ASSERT_EQUAL(id, 0);
		CU_ASSERT(closed);
		assert_bystander_ok();
	}
}

static void
test_oversize_and_empty_frames(void)
{
	/* 2^31 announced, nothing sent after: rejected from the header alone */
	static const uint8_t huge[] = { 0x80, 0x00, 0x00, 0x00 };
	static const uint8_t empty[] = { 0x00, 0x00, 0x00, 0x00 };
	bool closed;

	CU_ASSERT_EQUAL(raw_exchange(huge, sizeof huge, true, NULL, &closed), STATUS_PROTOCOL);
	CU_ASSERT(closed);
	CU_ASSERT_EQUAL(raw_exchange(empty, sizeof empty, true, NULL, &closed), STATUS_PROTOCOL);
	CU_ASSERT(closed);
	assert_bystander_ok();
}

static void
test_hello_first(void)
{
	struct proto_out o;
	uint64_t id;
	bool closed;

	proto_out_init(&o);
	proto_req_ping(&o, 7);
	CU_ASSERT_EQUAL(raw_exchange(proto_out_data(&o), proto_out_len(&o), false, &id, &closed),
	    STATUS_PROTOCOL);
	CU_ASSERT_EQUAL(id, 7);
	CU_ASSERT(closed);
	/* a second HELLO is only BAD_REQUEST */
	proto_out_reset(&o);
	proto_req_hello(&o, 8, 1, "again", NULL);
	CU_ASSERT_EQUAL(raw_exchange(proto_out_data(&o), proto_out_len(&o), true, &id, &closed),
	    STATUS_BAD_REQUEST);
	CU_ASSERT_FALSE(closed);
	/* version 0 is below the lowest supported */
	proto_out_reset(&o);
	proto_req_hello(&o, 9, 0, "old", NULL);
	CU_ASSERT_EQUAL(raw_exchange(proto_out_data(&o), proto_out_len(&o), false, &id, &closed),
	    STATUS_PROTOCOL);
	CU_ASSERT(closed);
	proto_out_destroy(&o);
	assert_bystander_ok();
}

static void
test_hello_negotiates(void)
{
	struct test_conn c;
	struct proto_out o;
	struct proto_reply r;

	CU_ASSERT_FATAL(test_conn_open(&c, srv.port, false) == 0);
	proto_out_init(&o);
	proto_req_hello(&o, 1, 99, "future", NULL);
	st_write(&c, &o);
	st_reply(&c, OP_HELLO, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
	CU_ASSERT_EQUAL(r.hello.version, PROTO_VERSION);
	CU_ASSERT_EQUAL(r.hello.max_frame, 2097152);
	CU_ASSERT_EQUAL(r.hello.max_pending, 4096);
	proto_out_destroy(&o);
	test_conn_close(&c);
}

/* Requests that are well-formed frames but invalid: BAD_REQUEST, connection goes on. */
static void
test_bad_requests_keep_connection(void)
{
	struct test_conn c;
	msgpack_sbuffer sb;
	msgpack_packer pk;
	uint8_t buf[512];
	struct proto_reply r;
	const char *bad_names[] = { "", "\xff\xfe", "a\nb" };
	char longname[300];

	CU_ASSERT_FATAL(test_conn_open(&c, srv.port, true) == 0);
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	memset(longname, 'x', sizeof longname);
	/* unknown op 77 */
	msgpack_pack_array(&pk, 3);
	msgpack_pack_int(&pk, 77);
	msgpack_pack_int(&pk, 100);
	msgpack_pack_nil(&pk);
	test_conn_write(&c, buf, frame(buf, (uint8_t *)sb.data, sb.size));
	st_reply(&c, OP_PING, &r);
	CU_ASSERT_EQUAL(r.id, 100);
	CU_ASSERT_EQUAL(r.status, STATUS_BAD_REQUEST);
	/* RECV with an int for a name, and with a negative and an absurd wait */
	for (int k = 0; k < 3; k++) {
		msgpack_sbuffer_clear(&sb);
		msgpack_pack_array(&pk, 4);
		msgpack_pack_int(&pk, OP_RECV);
		msgpack_pack_int(&pk, 101 + k);
		if (k == 0)
			msgpack_pack_nil(&pk), msgpack_pack_int(&pk, 5);
		else
			msgpack_pack_int64(&pk, k == 1 ? -5 : INT64_MAX), msgpack_pack_str_with_body(&pk, "a", 1);
		test_conn_write(&c, buf, frame(buf, (uint8_t *)sb.data, sb.size));
		st_reply(&c, OP_RECV, &r);
		CU_ASSERT_EQUAL(r.id, (uint64_t)(101 + k));
		CU_ASSERT_EQUAL(r.status, STATUS_BAD_REQUEST);
	}
	/* empty, non-UTF-8, control-character and too long names */
	for (size_t k = 0; k < 4; k++) {
		const char *nm = k < 3 ? bad_names[k] : longname;
		size_t nl = k < 3 ? strlen(bad_names[k]) : sizeof longname;

		msgpack_sbuffer_clear(&sb);
		msgpack_pack_array(&pk, 4);
		msgpack_pack_int(&pk, OP_LEN);
		msgpack_pack_int(&pk, 200 + (int)k);
		msgpack_pack_nil(&pk);
		msgpack_pack_str_with_body(&pk, nm, nl);
		test_conn_write(&c, buf, frame(buf, (uint8_t *)sb.data, sb.size));
		st_reply(&c, OP_LEN, &r);
		CU_ASSERT_EQUAL(r.status, STATUS_BAD_REQUEST);
	}
	/* still alive */
	CU_ASSERT_EQUAL(st_make(&c, st_name("alive"), 0), STATUS_OK);
	msgpack_sbuffer_destroy(&sb);
	test_conn_close(&c);
	assert_bystander_ok();
}

static void
test_duplicate_pending_id(void)
{
	const char *n = st_name("dupid");
	struct test_conn c;
	struct proto_out o;
	struct proto_reply r;
	const uint8_t *body;

	CU_ASSERT_EQUAL(st_make(&bystander, n, 0), STATUS_OK);
	CU_ASSERT_FATAL(test_conn_open(&c, srv.port, true) == 0);
	proto_out_init(&o);
	proto_req_name(&o, OP_RECV, 50, PROTO_WAIT_FOREVER, n, strlen(n));
	proto_req_name(&o, OP_RECV, 50, PROTO_WAIT_FOREVER, n, strlen(n));
	st_write(&c, &o);
	/* the pending one is cancelled as the connection closes, then the notice, to id 0 */
	st_reply(&c, OP_RECV, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_CANCELED);
	st_reply(&c, OP_RECV, &r);
	CU_ASSERT_EQUAL(r.id, 0);
	CU_ASSERT_EQUAL(r.status, STATUS_PROTOCOL);
	CU_ASSERT_EQUAL(test_conn_frame(&c, REPLY_MS, &body), 0);
	proto_out_destroy(&o);
	test_conn_close(&c);
	CU_ASSERT(st_await_waiters(&bystander, n, 0, 0));
}

/* 1,000 connections each blocked in a receive, then all served. */
static void
test_thousand_blocked(void)
{
	enum { N = 1000 };
	const char *n = st_name("many");
	struct test_conn *c = calloc(N, sizeof *c);
	int served = 0;

	CU_ASSERT_EQUAL(st_make(&bystander, n, 0), STATUS_OK);
	for (int i = 0; i < N; i++) {
		CU_ASSERT_FATAL(test_conn_open(&c[i], srv.port, true) == 0);
		st_recv(&c[i], n, PROTO_WAIT_FOREVER);
	}
	CU_ASSERT_FATAL(st_await_waiters(&bystander, n, 0, N));
	for (int i = 0; i < N; i++)
		st_send(&bystander, n, &i, sizeof i, 0);
	for (int i = 0; i < N; i++) {
		struct proto_reply r;

		st_reply(&bystander, OP_SEND, &r);
		CU_ASSERT_EQUAL(r.status, STATUS_OK);
	}
	/* FIFO: the i-th receiver got value i */
	for (int i = 0; i < N; i++) {
		struct proto_reply r;
		int v = -1;

		st_reply(&c[i], OP_RECV, &r);
		if (r.status == STATUS_OK && r.value.len == sizeof v)
			memcpy(&v, r.value.data, sizeof v);
		served += v == i;
		test_conn_close(&c[i]);
	}
	CU_ASSERT_EQUAL(served, N);
	free(c);
}

/* 100,000 pending deadlines over 25 connections; every one expires, none is left. */
static void
test_many_deadlines(void)
{
	enum { CONNS = 25, PER = 4000 };
	const char *n = st_name("timers");
	struct test_conn c[CONNS];
	struct proto_out o;
	uint64_t expired = 0;

	CU_ASSERT_EQUAL(st_make(&bystander, n, 0), STATUS_OK);
	proto_out_init(&o);
	for (int i = 0; i < CONNS; i++) {
		CU_ASSERT_FATAL(test_conn_open(&c[i], srv.port, true) == 0);
		for (int k = 0; k < PER; k++)
			proto_req_name(&o, OP_RECV, c[i].next_id++, 200000 + (k % 100) * 1000, n, strlen(n));
		st_write(&c[i], &o);
	}
	for (int i = 0; i < CONNS; i++) {
		for (int k = 0; k < PER; k++) {
			struct proto_reply r;

			st_reply(&c[i], OP_RECV, &r);
			expired += r.status == STATUS_DEADLINE_EXCEEDED;
		}
		test_conn_close(&c[i]);
	}
	CU_ASSERT_EQUAL(expired, (uint64_t)CONNS * PER);
	CU_ASSERT(st_await_waiters(&bystander, n, 0, 0));
	proto_out_destroy(&o);
}

/* ---- the small-limits server ------------------------------------------------------ */

static void
test_limit_pending(void)
{
	const char *n = st_name("pend");
	struct test_conn c;
	struct proto_reply r;

	CU_ASSERT_EQUAL(st_make(&bystander, n, 0), STATUS_OK);
	CU_ASSERT_FATAL(test_conn_open(&c, srv.port, true) == 0);
	st_recv(&c, n, PROTO_WAIT_FOREVER);
	st_recv(&c, n, PROTO_WAIT_FOREVER);
	st_recv(&c, n, PROTO_WAIT_FOREVER);	/* the third: over max_pending = 2 */
	st_reply(&c, OP_RECV, &r);
	CU_ASSERT_EQUAL(r.id, 4);
	CU_ASSERT_EQUAL(r.status, STATUS_LIMIT);
	test_conn_close(&c);
	CU_ASSERT(st_await_waiters(&bystander, n, 0, 0));
	st_name_op(&bystander, OP_DELETE, n);	/* give its slot back to max_channels */
	st_reply(&bystander, OP_DELETE, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
}

static void
test_limit_connections(void)
{
	struct test_conn c[3];
	struct test_conn extra;
	const uint8_t *body;
	uint64_t id;
	int st;
	const char *why;
	long len;

	/* bystander + 3 = max_connections (4); the fifth is turned away */
	for (int i = 0; i < 3; i++)
		CU_ASSERT_FATAL(test_conn_open(&c[i], srv.port, true) == 0);
	CU_ASSERT_FATAL(test_conn_open(&extra, srv.port, false) == 0);
	len = test_conn_frame(&extra, REPLY_MS, &body);
	CU_ASSERT_FATAL(len > 0);
	proto_reply_header(body, (size_t)len, &id, &st, &why);
	CU_ASSERT_EQUAL(id, 0);
	CU_ASSERT_EQUAL(st, STATUS_LIMIT);
	CU_ASSERT_EQUAL(test_conn_frame(&extra, REPLY_MS, &body), 0);
	test_conn_close(&extra);
	for (int i = 0; i < 3; i++)
		test_conn_close(&c[i]);
	assert_bystander_ok();
}

static void
test_limit_sizes(void)
{
	static const char big[65] = "0123456789012345678901234567890123456789012345678901234567890123";
	struct proto_case cs[4];
	struct proto_reply r;
	const char *n = st_name("sz");
	struct test_conn *b = &bystander;

	CU_ASSERT_EQUAL(st_make(b, n, 8), STATUS_OK);
	CU_ASSERT_EQUAL(st_make(b, st_name("cap"), 9), STATUS_LIMIT);		/* max_cap 8 */
	/* max_value 64 */
	st_send(b, n, big, 65, 0);
	st_reply(b, OP_SEND, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_LIMIT);
	/* max_buffered_bytes 100: the third 40-byte value does not fit */
	CU_ASSERT_EQUAL(st_send(b, n, big, 40, 0) > 0, 1);
	CU_ASSERT_EQUAL(st_send(b, n, big, 40, 0) > 0, 1);
	st_send(b, n, big, 40, 0);
	st_reply(b, OP_SEND, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
	st_reply(b, OP_SEND, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
	st_reply(b, OP_SEND, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_LIMIT);
	/* max_select_cases 3 */
	for (int i = 0; i < 4; i++)
		cs[i] = (struct proto_case){ .dir = 0, .name = n, .name_len = (uint32_t)strlen(n) };
	st_select(b, cs, 4, true, 0);
	st_reply(b, OP_SELECT, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_LIMIT);
	/* max_channels 3: "sz" is the only live one, so two more fit */
	const char *c1 = st_name("c1"), *c2 = st_name("c2");

	CU_ASSERT_EQUAL(st_make(b, c1, 0), STATUS_OK);
	CU_ASSERT_EQUAL(st_make(b, c2, 0), STATUS_OK);
	CU_ASSERT_EQUAL(st_make(b, st_name("c3"), 0), STATUS_LIMIT);
	st_name_op(b, OP_DELETE, c1);
	st_reply(b, OP_DELETE, &r);
	st_name_op(b, OP_DELETE, n);
	st_reply(b, OP_DELETE, &r);
	assert_bystander_ok();
}

static void
test_limit_frame(void)
{
	uint8_t buf[1100] = { 0 };
	bool closed;

	/* max_frame 1024: a 1025-byte frame, header only, is refused */
	buf[2] = 0x04;
	buf[3] = 0x01;
	CU_ASSERT_EQUAL(raw_exchange(buf, 4, true, NULL, &closed), STATUS_PROTOCOL);
	CU_ASSERT(closed);
	assert_bystander_ok();
}

/*
 * A client that pipelines requests and does not read its replies: once its
 * unsent replies pass output_hwm (4 KiB here; the kernel's socket buffers
 * take the first few MB), chand stops reading it, so its writes stall; the
 * other client is served meanwhile; when it reads again every reply
 * arrives, in order, none dropped.
 */
static void
test_backpressure(void)
{
	enum { ROUNDS = 1000000 };
	const char *n = st_name("bp");
	struct test_conn slow;
	struct proto_out o;
	size_t off = 0;
	uint64_t next = 0;
	bool stalled = false;
	int64_t end = clock_now_ns() + 60 * NSEC_PER_SEC;

	CU_ASSERT_FATAL(test_conn_open_rcvbuf(&slow, srv.port, true, 4096) == 0);
	proto_out_init(&o);
	for (int i = 0; i < ROUNDS; i++)
		proto_req_ping(&o, slow.next_id++);
	fcntl(slow.fd, F_SETFL, fcntl(slow.fd, F_GETFL) | O_NONBLOCK);
	/*
	 * Write without reading until chand says it paused this client: a
	 * stall alone could be a slow server, so the log line is the condition.
	 */
	while (off < proto_out_len(&o) && clock_now_ns() < end) {
		struct pollfd p = { .fd = slow.fd, .events = POLLOUT };
		ssize_t w = send(slow.fd, proto_out_data(&o) + off, proto_out_len(&o) - off, MSG_NOSIGNAL);

		if (w > 0) {
			off += (size_t)w;
			continue;
		}
		if (poll(&p, 1, 100) == 0 && test_server_log_has(&srv, "action=pause-reading")) {
			stalled = true;
			break;
		}
	}
	CU_ASSERT(stalled);
	/* the other client is unaffected */
	CU_ASSERT_EQUAL(st_make(&bystander, n, 1), STATUS_OK);
	assert_bystander_ok();
	/* now read every reply (and write the rest as room appears) */
	while (next < ROUNDS && clock_now_ns() < end) {
		struct pollfd p = { .fd = slow.fd, .events = POLLIN | (off < proto_out_len(&o) ? POLLOUT : 0) };
		const uint8_t *body;
		long len;

		if (poll(&p, 1, 1000) <= 0)
			break;
		if ((p.revents & POLLOUT) && off < proto_out_len(&o)) {
			ssize_t w = send(slow.fd, proto_out_data(&o) + off, proto_out_len(&o) - off, MSG_NOSIGNAL);

			off += w > 0 ? (size_t)w : 0;
		}
		if (!(p.revents & POLLIN))
			continue;
		while ((len = test_conn_frame(&slow, 0, &body)) > 0) {
			uint64_t id;
			int st;
			const char *why;

			proto_reply_header(body, (size_t)len, &id, &st, &why);
			if (id != next + 2 || st != STATUS_OK)
				break;
			next++;
		}
	}
	CU_ASSERT_EQUAL(next, ROUNDS);
	CU_ASSERT(test_server_log_has(&srv, "action=resume-reading"));
	proto_out_destroy(&o);
	test_conn_close(&slow);
}

static void
register_suites(void)
{
	CU_pSuite s = test_suite("bad input and scale", init_default, stop);

	test_add(s, "malformed frames: PROTOCOL, closed, others unaffected", test_malformed_frames);
	test_add(s, "oversize and empty frames refused from the header", test_oversize_and_empty_frames);
	test_add(s, "HELLO first, once, with a supported version", test_hello_first);
	test_add(s, "HELLO negotiates the version and reports limits", test_hello_negotiates);
	test_add(s, "unknown op, bad types, waits and names: BAD_REQUEST", test_bad_requests_keep_connection);
	test_add(s, "an id already pending is a PROTOCOL error", test_duplicate_pending_id);
	test_add(s, "1,000 connections blocked in RECV, then all served", test_thousand_blocked);
	test_add(s, "100,000 pending deadlines all expire, none left", test_many_deadlines);

	s = test_suite("limits", init_small, stop);
	test_add(s, "max_pending", test_limit_pending);
	test_add(s, "max_connections", test_limit_connections);
	test_add(s, "max_cap, max_value, max_buffered_bytes, max_select_cases, max_channels", test_limit_sizes);
	test_add(s, "max_frame", test_limit_frame);
	test_add(s, "backpressure on a client that does not read", test_backpressure);

	register_server_limits_writes();
	register_server_limits_lifecycle();
}

int
main(int argc, char **argv)
{
	return test_main(argc, argv, register_suites);
}
