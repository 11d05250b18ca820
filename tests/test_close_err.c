/*
 * test_close_err.c: CLOSE with an error (PROTOCOL.md §5 CLOSE, issue 17),
 * over the raw protocol against a real chand: who sees the error (a blocked
 * RECV, a RECV after the buffer drained, SELECT, STREAM, INFO, CHANNELS),
 * the old 1-argument CLOSE unchanged, bad input, and the links that pass
 * an input's error on to their outputs (§12).
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <stdio.h>
#include <string.h>

#include "srvtest.h"

#define NAME_CAP 256

static struct test_server srv;
static struct test_conn a, b;
static struct proto_out o;

static int
suite_init(void)
{
	proto_out_init(&o);
	return test_server_start(&srv, "");
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

/* CLOSE name with [code, msg] (msg NULL: the 1-argument form) through c; its status. */
static int
close_err(struct test_conn *c, const char *name, uint64_t code, const char *msg)
{
	struct proto_close_err e = { .set = msg != NULL, .code = code, .msg = msg,
	    .msg_len = msg ? (uint32_t)strlen(msg) : 0 };
	struct proto_reply r;
	uint64_t id = c->next_id++;

	CU_ASSERT_EQUAL_FATAL(proto_req_close(&o, id, PROTO_WAIT_FOREVER, name, strlen(name), &e), 0);
	st_write(c, &o);
	st_reply(c, OP_CLOSE, &r);
	CU_ASSERT_EQUAL(r.id, id);
	return r.status;
}

/* The next frame on c, its result count checked, decoded as a reply to op. */
static void
reply_n(struct test_conn *c, uint64_t op, int nresults, struct proto_reply *r)
{
	const uint8_t *body;
	const char *why;
	long n = test_conn_frame(c, REPLY_MS, &body);

	CU_ASSERT_FATAL(n > 0);
	CU_ASSERT_EQUAL(proto_reply_nresults(body, (size_t)n), nresults);
	CU_ASSERT_EQUAL_FATAL(proto_decode_reply(body, (size_t)n, op, r, &why), STATUS_OK);
}

/* r is ok=false with exactly this close error (msg NULL: none). */
static void
expect_err(const struct proto_reply *r, uint64_t code, const char *msg)
{
	CU_ASSERT_EQUAL(r->status, STATUS_OK);
	CU_ASSERT_FALSE(r->ok);
	CU_ASSERT_EQUAL(r->value.kind, VALUE_NONE);
	CU_ASSERT_EQUAL(r->close_err.set, msg != NULL);
	if (msg == NULL || !r->close_err.set)
		return;
	CU_ASSERT_EQUAL(r->close_err.code, code);
	CU_ASSERT(r->close_err.msg_len == strlen(msg) && memcmp(r->close_err.msg, msg, strlen(msg)) == 0);
}

/* A RECV through c of a closed, drained channel: ok=false with this error (msg NULL: none). */
static void
expect_recv_closed(struct test_conn *c, const char *name, uint64_t code, const char *msg)
{
	struct proto_reply r;
	uint64_t id = st_recv(c, name, 10 * 1000000);

	reply_n(c, OP_RECV, msg ? 3 : 2, &r);
	CU_ASSERT_EQUAL(r.id, id);
	expect_err(&r, code, msg);
}

static void
expect_recv_value(struct test_conn *c, const char *name, const char *want)
{
	char buf[64];
	bool ok = false;

	CU_ASSERT_EQUAL(st_recv_wait(c, name, 10 * 1000000, buf, sizeof buf, &ok), STATUS_OK);
	CU_ASSERT(ok);
	CU_ASSERT_STRING_EQUAL(buf, want);
}

/* ---- receivers ----------------------------------------------------------------- */

/* A RECV blocked on the channel gets ok=false and the error the moment it closes. */
static void
test_blocked_receiver(void)
{
	const char *ch = st_name("ce.blocked");
	struct proto_reply r;
	uint64_t id;

	CU_ASSERT_EQUAL(st_make(&a, ch, 0), STATUS_OK);
	id = st_recv(&b, ch, PROTO_WAIT_FOREVER);
	CU_ASSERT_FATAL(st_await_waiters(&a, ch, 0, 1));
	CU_ASSERT_EQUAL(close_err(&a, ch, 7, "disk full"), STATUS_OK);
	reply_n(&b, OP_RECV, 3, &r);
	CU_ASSERT_EQUAL(r.id, id);
	expect_err(&r, 7, "disk full");
	/* and every later receive, as Go's closed channel stays ready */
	expect_recv_closed(&b, ch, 7, "disk full");
}

/* Buffered values first, then ok=false with the error; a blocked sender got CLOSED. */
static void
test_values_then_error(void)
{
	const char *ch = st_name("ce.drain");

	CU_ASSERT_EQUAL(st_make(&a, ch, 2), STATUS_OK);
	CU_ASSERT_EQUAL(st_send_wait(&a, ch, "x", 0), STATUS_OK);
	CU_ASSERT_EQUAL(st_send_wait(&a, ch, "y", 0), STATUS_OK);
	CU_ASSERT_EQUAL(close_err(&a, ch, UINT64_MAX, "upstream failed: \xc3\xa9"), STATUS_OK);
	expect_recv_value(&b, ch, "x");
	expect_recv_value(&b, ch, "y");
	expect_recv_closed(&b, ch, UINT64_MAX, "upstream failed: \xc3\xa9");
	expect_recv_closed(&a, ch, UINT64_MAX, "upstream failed: \xc3\xa9");
}

/* A select's receive case: waiting, or on a channel closed already. */
static void
test_select(void)
{
	const char *ch = st_name("ce.sel"), *other = st_name("ce.sel.other");
	struct proto_case cases[2] = {
		{ .dir = 0, .name = other, .name_len = (uint32_t)strlen(other) },
		{ .dir = 0, .name = ch, .name_len = (uint32_t)strlen(ch) },
	};
	struct proto_reply r;
	uint64_t id;

	CU_ASSERT_EQUAL(st_make(&a, ch, 0), STATUS_OK);
	CU_ASSERT_EQUAL(st_make(&a, other, 0), STATUS_OK);
	id = st_select(&b, cases, 2, false, PROTO_WAIT_FOREVER);
	CU_ASSERT_FATAL(st_await_waiters(&a, ch, 0, 1));
	CU_ASSERT_EQUAL(close_err(&a, ch, 3, "no more"), STATUS_OK);
	reply_n(&b, OP_SELECT, 4, &r);
	CU_ASSERT_EQUAL(r.id, id);
	CU_ASSERT_EQUAL(r.index, 1);
	expect_err(&r, 3, "no more");
	/* ready at once now, with a default case even */
	id = st_select(&b, cases, 2, true, 0);
	reply_n(&b, OP_SELECT, 4, &r);
	CU_ASSERT_EQUAL(r.id, id);
	CU_ASSERT_EQUAL(r.index, 1);
	expect_err(&r, 3, "no more");
	/* the select withdrew its other case */
	CU_ASSERT(st_await_waiters(&a, other, 0, 0));
}

/* A STREAM's close report carries the error as a fourth result; a plain close's does not. */
static void
test_stream(void)
{
	const char *c1 = st_name("ce.s1"), *c2 = st_name("ce.s2");
	struct proto_case pc[2] = {
		{ .name = c1, .name_len = (uint32_t)strlen(c1) },
		{ .name = c2, .name_len = (uint32_t)strlen(c2) },
	};
	struct proto_reply r;
	uint64_t sid = b.next_id++;

	CU_ASSERT_EQUAL(st_make(&a, c1, 1), STATUS_OK);
	CU_ASSERT_EQUAL(st_make(&a, c2, 0), STATUS_OK);
	CU_ASSERT_EQUAL(st_send_wait(&a, c1, "v", 0), STATUS_OK);
	CU_ASSERT_EQUAL(close_err(&a, c1, 42, "producer crashed"), STATUS_OK);
	CU_ASSERT_EQUAL_FATAL(proto_req_stream(&o, sid, PROTO_WAIT_FOREVER, pc, 2, 4), 0);
	st_write(&b, &o);
	reply_n(&b, OP_STREAM, 3, &r);
	CU_ASSERT(r.interim && r.ok && r.index == 0 && ST_VALUE_IS(r, "v"));
	reply_n(&b, OP_STREAM, 4, &r);
	CU_ASSERT(r.interim);
	CU_ASSERT_EQUAL(r.index, 0);
	expect_err(&r, 42, "producer crashed");
	/* c2's close while the stream waits on it: a plain report, then the end */
	CU_ASSERT_FATAL(st_await_waiters(&a, c2, 0, 2));
	CU_ASSERT_EQUAL(close_err(&a, c2, 0, NULL), STATUS_OK);
	reply_n(&b, OP_STREAM, 3, &r);
	CU_ASSERT(r.interim);
	CU_ASSERT_EQUAL(r.index, 1);
	expect_err(&r, 0, NULL);
	reply_n(&b, OP_STREAM, 1, &r);
	CU_ASSERT_FALSE(r.interim);
	CU_ASSERT_EQUAL(r.id, sid);
	CU_ASSERT_EQUAL(r.n, 1);
}

/* A stream waiting on the channel gets the error when it closes. */
static void
test_stream_waiting(void)
{
	const char *ch = st_name("ce.sw");
	struct proto_case pc = { .name = ch, .name_len = (uint32_t)strlen(ch) };
	struct proto_reply r;
	uint64_t sid = b.next_id++;

	CU_ASSERT_EQUAL(st_make(&a, ch, 0), STATUS_OK);
	CU_ASSERT_EQUAL_FATAL(proto_req_stream(&o, sid, PROTO_WAIT_FOREVER, &pc, 1, 2), 0);
	st_write(&b, &o);
	CU_ASSERT_FATAL(st_await_waiters(&a, ch, 0, 2));
	CU_ASSERT_EQUAL(close_err(&a, ch, 9, "cancelled by operator"), STATUS_OK);
	reply_n(&b, OP_STREAM, 4, &r);
	expect_err(&r, 9, "cancelled by operator");
	reply_n(&b, OP_STREAM, 1, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
	CU_ASSERT_FALSE(r.interim);
}

/* ---- INFO, CHANNELS, the old form ----------------------------------------------- */

static void
test_info(void)
{
	const char *ch = st_name("ce.info"), *plain = st_name("ce.info.plain");
	struct proto_chan_info i;
	struct proto_reply r;
	struct proto_chan_info li;
	bool seen = false;

	CU_ASSERT_EQUAL(st_make(&a, ch, 0), STATUS_OK);
	CU_ASSERT_EQUAL(st_make(&a, plain, 0), STATUS_OK);
	CU_ASSERT_EQUAL(st_info(&a, ch, &i), STATUS_OK);
	CU_ASSERT_FALSE(i.close_err.set);
	CU_ASSERT_EQUAL(close_err(&a, ch, 5, "quota"), STATUS_OK);
	CU_ASSERT_EQUAL(close_err(&a, plain, 0, NULL), STATUS_OK);
	CU_ASSERT_EQUAL(st_info(&a, ch, &i), STATUS_OK);
	CU_ASSERT(i.closed);
	CU_ASSERT_FATAL(i.close_err.set);
	CU_ASSERT_EQUAL(i.close_err.code, 5);
	CU_ASSERT(i.close_err.msg_len == 5 && memcmp(i.close_err.msg, "quota", 5) == 0);
	CU_ASSERT_EQUAL(st_info(&a, plain, &i), STATUS_OK);
	CU_ASSERT(i.closed);
	CU_ASSERT_FALSE(i.close_err.set);
	/* CHANNELS carries it alike */
	proto_req_channels(&o, a.next_id++, ch, 0);
	st_write(&a, &o);
	st_reply(&a, OP_CHANNELS, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
	while (proto_list_chan(&r.list, &li) == 1)
		if (li.close_err.set && li.close_err.code == 5)
			seen = true;
	CU_ASSERT(seen);
}

/* The 1-argument CLOSE and an error of nil: the replies of old, two results. */
static void
test_old_close_unchanged(void)
{
	const char *ch = st_name("ce.old"), *nil = st_name("ce.nil");
	struct proto_reply r;
	uint64_t id;
	/* [7, id, nil, name, nil] */
	uint8_t frame[64] = { 0, 0, 0, 0, 0x95, 0x07, 0x7f, 0xc0, 0xa0 };
	size_t nl = strlen(nil);

	CU_ASSERT_EQUAL(st_make(&a, ch, 0), STATUS_OK);
	id = st_recv(&b, ch, PROTO_WAIT_FOREVER);
	CU_ASSERT_FATAL(st_await_waiters(&a, ch, 0, 1));
	CU_ASSERT_EQUAL(st_close(&a, ch), STATUS_OK);
	reply_n(&b, OP_RECV, 2, &r);
	CU_ASSERT_EQUAL(r.id, id);
	expect_err(&r, 0, NULL);
	/* closing again, with or without an error: CLOSED, and the channel keeps no error */
	CU_ASSERT_EQUAL(st_close(&a, ch), STATUS_CLOSED);
	CU_ASSERT_EQUAL(close_err(&a, ch, 1, "late"), STATUS_CLOSED);
	expect_recv_closed(&b, ch, 0, NULL);

	CU_ASSERT_EQUAL(st_make(&a, nil, 0), STATUS_OK);
	CU_ASSERT_FATAL(nl < 32);
	frame[8] = (uint8_t)(0xa0 | nl);
	memcpy(frame + 9, nil, nl);
	frame[9 + nl] = 0xc0;
	frame[3] = (uint8_t)(6 + nl);
	CU_ASSERT_EQUAL(test_conn_write(&a, frame, 10 + nl), 0);
	st_reply(&a, OP_CLOSE, &r);
	CU_ASSERT_EQUAL(r.id, 0x7f);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
	expect_recv_closed(&b, nil, 0, NULL);
}

/* A close error whose channel was closed first by someone else: the first close's stays. */
static void
test_second_close_keeps_first(void)
{
	const char *ch = st_name("ce.twice");

	CU_ASSERT_EQUAL(st_make(&a, ch, 0), STATUS_OK);
	CU_ASSERT_EQUAL(close_err(&a, ch, 1, "first"), STATUS_OK);
	CU_ASSERT_EQUAL(close_err(&b, ch, 2, "second"), STATUS_CLOSED);
	expect_recv_closed(&b, ch, 1, "first");
}

/* ---- bad input (§5 CLOSE's table) ------------------------------------------------- */

/* Write [7, id, nil, name, <error>] with the error packed by the caller's bytes; its reply status. */
static int
raw_close(const char *name, const uint8_t *err, size_t err_len, int nargs, const char **msg)
{
	static struct proto_reply r;
	uint8_t frame[2048];
	size_t nl = strlen(name), n = 0;
	uint64_t id = a.next_id++;

	CU_ASSERT_FATAL(nl < 32 && id < 128 && err_len + nl + 16 < sizeof frame);
	n = 4;
	frame[n++] = (uint8_t)(0x90 | (3 + nargs));
	frame[n++] = OP_CLOSE;
	frame[n++] = (uint8_t)id;
	frame[n++] = 0xc0;
	frame[n++] = (uint8_t)(0xa0 | nl);
	memcpy(frame + n, name, nl);
	n += nl;
	memcpy(frame + n, err, err_len);
	n += err_len;
	frame[0] = frame[1] = 0;
	frame[2] = (uint8_t)((n - 4) >> 8);
	frame[3] = (uint8_t)(n - 4);
	CU_ASSERT_EQUAL(test_conn_write(&a, frame, n), 0);
	st_reply(&a, OP_CLOSE, &r);
	CU_ASSERT_EQUAL(r.id, id);
	*msg = r.msg;
	return r.status;
}

static void
expect_bad(const char *name, const uint8_t *err, size_t len, int nargs, const char *why)
{
	const char *msg;

	CU_ASSERT_EQUAL(raw_close(name, err, len, nargs, &msg), STATUS_BAD_REQUEST);
	CU_ASSERT(msg != NULL && strncmp(msg, why, strlen(why)) == 0);
}

static void
test_bad_input(void)
{
	const char *ch = st_name("ce.bad");
	static const uint8_t not_array[] = { 0x05 };
	static const uint8_t three[] = { 0x93, 0x01, 0xa1, 'x', 0xc0 };
	static const uint8_t code_str[] = { 0x92, 0xa1, '1', 0xa1, 'x' };
	static const uint8_t code_neg[] = { 0x92, 0xff, 0xa1, 'x' };
	static const uint8_t msg_bin[] = { 0x92, 0x01, 0xc4, 0x01, 'x' };
	static const uint8_t msg_nil[] = { 0x92, 0x01, 0xc0 };
	static const uint8_t msg_utf8[] = { 0x92, 0x01, 0xa2, 0xc3, 0x28 };
	static const uint8_t extra[] = { 0x92, 0x01, 0xa1, 'x', 0xc0 };
	uint8_t big[1100];
	struct proto_chan_info i;
	const char *msg;

	CU_ASSERT_EQUAL(st_make(&a, ch, 0), STATUS_OK);
	expect_bad(ch, not_array, sizeof not_array, 2, "CLOSE error must be nil or [code, message]");
	expect_bad(ch, three, sizeof three, 2, "CLOSE error must be nil or [code, message]");
	expect_bad(ch, code_str, sizeof code_str, 2, "CLOSE error code must be");
	expect_bad(ch, code_neg, sizeof code_neg, 2, "CLOSE error code must be");
	expect_bad(ch, msg_bin, sizeof msg_bin, 2, "CLOSE error message must be a str");
	expect_bad(ch, msg_nil, sizeof msg_nil, 2, "CLOSE error message must be a str");
	expect_bad(ch, msg_utf8, sizeof msg_utf8, 2, "CLOSE error message is not valid UTF-8");
	expect_bad(ch, extra, sizeof extra, 3, "wrong number of arguments");
	/* a message of 1025 bytes is too long; 1024 is the most */
	big[0] = 0x92;
	big[1] = 0x01;
	big[2] = 0xda;
	big[3] = 1025 >> 8;
	big[4] = 1025 & 0xff;
	memset(big + 5, 'm', 1025);
	expect_bad(ch, big, 5 + 1025, 2, "CLOSE error message is longer than 1024 bytes");
	/* nothing changed, and the connection goes on */
	CU_ASSERT_EQUAL(st_info(&a, ch, &i), STATUS_OK);
	CU_ASSERT_FALSE(i.closed);
	big[4] = 1024 & 0xff;
	big[3] = 1024 >> 8;
	CU_ASSERT_EQUAL(raw_close(ch, big, 5 + 1024, 2, &msg), STATUS_OK);
	CU_ASSERT_EQUAL(st_info(&a, ch, &i), STATUS_OK);
	CU_ASSERT(i.closed && i.close_err.set && i.close_err.msg_len == 1024);
}

/* ---- links (§12): an input's error goes downstream ------------------------------------ */

static void
copy_name(char *dst, const char *src, uint32_t len)
{
	memcpy(dst, src, len);
	dst[len] = '\0';
}

/* Start link l on c with anonymous outputs; returns its id, output names in outs. */
static uint64_t
link_start(struct test_conn *c, const struct proto_request *l, char outs[][NAME_CAP])
{
	struct proto_reply r;
	const char *name;
	uint32_t len;
	uint64_t id = c->next_id++;
	int i = 0;

	CU_ASSERT_FATAL(proto_req_link(&o, id, PROTO_WAIT_FOREVER, l) == 0);
	st_write(c, &o);
	st_reply(c, l->op, &r);
	CU_ASSERT_EQUAL_FATAL(r.status, STATUS_STARTED);
	while (proto_list_name(&r.list, &name, &len) == 1)
		copy_name(outs[i++], name, len);
	return id;
}

/* The link's final reply on c: OK. */
static void
link_ends_ok(struct test_conn *c, uint64_t op, uint64_t id)
{
	struct proto_reply r;

	st_reply(c, op, &r);
	CU_ASSERT_EQUAL(r.id, id);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
}

static struct proto_request
one_input(uint64_t op, const char *in)
{
	return (struct proto_request){ .op = op, .name = in, .name_len = (uint32_t)strlen(in) };
}

static struct proto_request
inputs(uint64_t op, struct proto_case *pc, const char *const *names, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		pc[i] = (struct proto_case){ .name = names[i], .name_len = (uint32_t)strlen(names[i]) };
	return (struct proto_request){ .op = op, .cases = pc, .ncases = n };
}

/* or-done: values through, then the output closes with the input's error. */
static void
test_or_done(void)
{
	const char *in = st_name("ce.od");
	struct proto_request l = one_input(OP_OR_DONE, in);
	char outs[2][NAME_CAP];
	uint64_t id;

	CU_ASSERT_EQUAL(st_make(&b, in, 1), STATUS_OK);
	id = link_start(&a, &l, outs);
	CU_ASSERT_EQUAL(st_send_wait(&b, in, "one", 0), STATUS_OK);
	CU_ASSERT_EQUAL(close_err(&b, in, 11, "source failed"), STATUS_OK);
	expect_recv_value(&b, outs[0], "one");
	expect_recv_closed(&b, outs[0], 11, "source failed");
	link_ends_ok(&a, OP_OR_DONE, id);
}

/* take and tee: take ends early with its input's error; a tee gives it to both outputs. */
static void
test_take_and_tee(void)
{
	const char *in = st_name("ce.take"), *tin = st_name("ce.tee");
	struct proto_request l = one_input(OP_TAKE, in), t = one_input(OP_TEE, tin);
	char outs[2][NAME_CAP], touts[2][NAME_CAP];
	uint64_t id, tid;

	l.count = 5;
	CU_ASSERT_EQUAL(st_make(&b, in, 0), STATUS_OK);
	CU_ASSERT_EQUAL(st_make(&b, tin, 0), STATUS_OK);
	id = link_start(&a, &l, outs);
	tid = link_start(&a, &t, touts);
	CU_ASSERT_FATAL(st_await_waiters(&b, in, 0, 1));
	CU_ASSERT_FATAL(st_await_waiters(&b, tin, 0, 1));
	CU_ASSERT_EQUAL(close_err(&b, in, 2, "short input"), STATUS_OK);
	CU_ASSERT_EQUAL(close_err(&b, tin, 4, "tee input gone"), STATUS_OK);
	expect_recv_closed(&b, outs[0], 2, "short input");
	expect_recv_closed(&b, touts[0], 4, "tee input gone");
	expect_recv_closed(&b, touts[1], 4, "tee input gone");
	link_ends_ok(&a, OP_TAKE, id);
	link_ends_ok(&a, OP_TEE, tid);
}

/* or: the input that fires it gives its error; a value fires it without one. */
static void
test_or(void)
{
	const char *n1[2] = { st_name("ce.or.a"), st_name("ce.or.b") };
	const char *n2[1] = { st_name("ce.or.c") };
	struct proto_case pc1[2], pc2[1];
	struct proto_request l1 = inputs(OP_OR, pc1, n1, 2), l2 = inputs(OP_OR, pc2, n2, 1);
	char outs1[2][NAME_CAP], outs2[2][NAME_CAP];
	uint64_t id1, id2;

	for (int i = 0; i < 2; i++)
		CU_ASSERT_EQUAL(st_make(&b, n1[i], 0), STATUS_OK);
	CU_ASSERT_EQUAL(st_make(&b, n2[0], 1), STATUS_OK);
	id1 = link_start(&a, &l1, outs1);
	id2 = link_start(&a, &l2, outs2);
	CU_ASSERT_FATAL(st_await_waiters(&b, n1[1], 0, 1));
	CU_ASSERT_EQUAL(close_err(&b, n1[1], 8, "b failed"), STATUS_OK);
	expect_recv_closed(&b, outs1[0], 8, "b failed");
	link_ends_ok(&a, OP_OR, id1);
	CU_ASSERT_EQUAL(st_send_wait(&b, n2[0], "tick", 0), STATUS_OK);
	expect_recv_closed(&b, outs2[0], 0, NULL);
	link_ends_ok(&a, OP_OR, id2);
}

/* fan-in: the output closes once every input has, with the first input's error to close with one. */
static void
test_fan_in(void)
{
	const char *n[3] = { st_name("ce.fi.a"), st_name("ce.fi.b"), st_name("ce.fi.c") };
	struct proto_case pc[3];
	struct proto_request l = inputs(OP_FAN_IN, pc, n, 3);
	char outs[2][NAME_CAP];
	struct proto_chan_info i;
	uint64_t id;

	for (int k = 0; k < 3; k++)
		CU_ASSERT_EQUAL(st_make(&b, n[k], 0), STATUS_OK);
	id = link_start(&a, &l, outs);
	CU_ASSERT_FATAL(st_await_waiters(&b, n[0], 0, 1));
	CU_ASSERT_EQUAL(close_err(&b, n[0], 0, NULL), STATUS_OK);
	CU_ASSERT_FATAL(st_await_waiters(&b, n[1], 0, 1));
	CU_ASSERT_EQUAL(close_err(&b, n[1], 21, "first error"), STATUS_OK);
	/* still running: one input is open */
	CU_ASSERT_FATAL(st_await_waiters(&b, n[2], 0, 1));
	CU_ASSERT_EQUAL(st_info(&b, outs[0], &i), STATUS_OK);
	CU_ASSERT_FALSE(i.closed);
	CU_ASSERT_EQUAL(close_err(&b, n[2], 22, "second error"), STATUS_OK);
	expect_recv_closed(&b, outs[0], 21, "first error");
	link_ends_ok(&a, OP_FAN_IN, id);
}

/* bridge: an inner channel's error is an error value and the bridge goes on; the outer one's closes it. */
static void
test_bridge(void)
{
	const char *in = st_name("ce.br"), *inner1 = st_name("ce.br.1"), *inner2 = st_name("ce.br.2");
	struct proto_request l = one_input(OP_BRIDGE, in);
	struct proto_value ref;
	struct proto_reply r;
	char outs[2][NAME_CAP], want[128];
	uint64_t id, sid;

	CU_ASSERT_EQUAL(st_make(&b, in, 2), STATUS_OK);
	CU_ASSERT_EQUAL(st_make(&b, inner1, 1), STATUS_OK);
	CU_ASSERT_EQUAL(st_make(&b, inner2, 1), STATUS_OK);
	CU_ASSERT_EQUAL(st_send_wait(&b, inner1, "i1", 0), STATUS_OK);
	CU_ASSERT_EQUAL(close_err(&b, inner1, 13, "inner broke"), STATUS_OK);
	CU_ASSERT_EQUAL(st_send_wait(&b, inner2, "i2", 0), STATUS_OK);
	CU_ASSERT_EQUAL(close_err(&b, inner2, 0, NULL), STATUS_OK);
	ref = (struct proto_value){ .kind = VALUE_CHANREF, .data = (const uint8_t *)inner1,
	    .len = strlen(inner1) };
	proto_req_send(&o, sid = b.next_id++, 0, in, strlen(in), &ref);
	ref.data = (const uint8_t *)inner2;
	ref.len = strlen(inner2);
	proto_req_send(&o, b.next_id++, 0, in, strlen(in), &ref);
	st_write(&b, &o);
	st_reply(&b, OP_SEND, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
	st_reply(&b, OP_SEND, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
	CU_ASSERT_EQUAL(close_err(&b, in, 99, "no more streams"), STATUS_OK);
	id = link_start(&a, &l, outs);
	expect_recv_value(&b, outs[0], "i1");
	sid = st_recv(&b, outs[0], 10 * 1000000);
	st_reply(&b, OP_RECV, &r);
	CU_ASSERT_EQUAL(r.id, sid);
	CU_ASSERT(r.ok);
	CU_ASSERT_EQUAL(r.value.kind, VALUE_ERROR);
	snprintf(want, sizeof want, "bridge: %s closed with error 13: inner broke", inner1);
	CU_ASSERT(r.value.len == strlen(want) && memcmp(r.value.data, want, r.value.len) == 0);
	expect_recv_value(&b, outs[0], "i2");
	expect_recv_closed(&b, outs[0], 99, "no more streams");
	link_ends_ok(&a, OP_BRIDGE, id);
}

/* fan-out: every result is sent first, then the output closes with the input's error. */
static void
test_fan_out(void)
{
	const char *in = st_name("ce.fo");
	struct proto_request l = one_input(OP_FAN_OUT, in);
	char outs[2][NAME_CAP];
	uint64_t id;

	l.stage = "identity";
	l.stage_len = 8;
	l.count = 1;
	l.ordered = true;
	CU_ASSERT_EQUAL(st_make(&b, in, 2), STATUS_OK);
	CU_ASSERT_EQUAL(st_send_wait(&b, in, "job1", 0), STATUS_OK);
	CU_ASSERT_EQUAL(st_send_wait(&b, in, "job2", 0), STATUS_OK);
	CU_ASSERT_EQUAL(close_err(&b, in, 3, "producer aborted"), STATUS_OK);
	id = link_start(&a, &l, outs);
	expect_recv_value(&b, outs[0], "job1");
	expect_recv_value(&b, outs[0], "job2");
	expect_recv_closed(&b, outs[0], 3, "producer aborted");
	link_ends_ok(&a, OP_FAN_OUT, id);
}

/* A link stopped by CANCEL closes its outputs without an error, whatever its inputs had. */
static void
test_stopped_link_plain_close(void)
{
	const char *n[2] = { st_name("ce.stop.a"), st_name("ce.stop.b") };
	struct proto_case pc[2];
	struct proto_request l = inputs(OP_FAN_IN, pc, n, 2);
	char outs[2][NAME_CAP];
	struct proto_reply r;
	uint64_t id;

	for (int k = 0; k < 2; k++)
		CU_ASSERT_EQUAL(st_make(&b, n[k], 0), STATUS_OK);
	id = link_start(&a, &l, outs);
	CU_ASSERT_FATAL(st_await_waiters(&b, n[0], 0, 1));
	CU_ASSERT_EQUAL(close_err(&b, n[0], 5, "gone"), STATUS_OK);
	CU_ASSERT_FATAL(st_await_waiters(&b, n[0], 0, 0));
	proto_req_cancel(&o, a.next_id++, id);
	st_write(&a, &o);
	st_reply(&a, OP_FAN_IN, &r);
	CU_ASSERT_EQUAL(r.id, id);
	CU_ASSERT_EQUAL(r.status, STATUS_CANCELED);
	st_reply(&a, OP_CANCEL, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
	expect_recv_closed(&b, outs[0], 0, NULL);
}

static void
register_suites(void)
{
	CU_pSuite s = CU_add_suite_with_setup_and_teardown("close with an error", suite_init, suite_clean,
	    test_setup, test_teardown);

	test_add(s, "a blocked RECV gets ok=false and the error", test_blocked_receiver);
	test_add(s, "buffered values first, then ok=false and the error", test_values_then_error);
	test_add(s, "a SELECT receive case gets the error, waiting or at once", test_select);
	test_add(s, "a STREAM's close report carries the error; a plain close's does not", test_stream);
	test_add(s, "a waiting STREAM gets the error when the channel closes", test_stream_waiting);
	test_add(s, "INFO and CHANNELS show close_error only when there is one", test_info);
	test_add(s, "the 1-argument CLOSE and a nil error are unchanged", test_old_close_unchanged);
	test_add(s, "a second CLOSE is CLOSED and the first error stays", test_second_close_keeps_first);
	test_add(s, "bad errors are BAD_REQUEST and leave the channel open", test_bad_input);
	test_add(s, "or-done passes its input's error on", test_or_done);
	test_add(s, "take and tee pass their input's error on", test_take_and_tee);
	test_add(s, "or passes on the error of the input that fired it", test_or);
	test_add(s, "fan-in passes on the first input's error", test_fan_in);
	test_add(s, "bridge: inner errors are error values, the outer error closes the output",
	    test_bridge);
	test_add(s, "fan-out passes its input's error on after every result", test_fan_out);
	test_add(s, "a cancelled link closes its outputs without an error", test_stopped_link_plain_close);
}

int
main(int argc, char **argv)
{
	return test_main(argc, argv, register_suites);
}
