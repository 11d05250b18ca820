/*
 * test_codec.c: the wire codec (proto/) on its own: round trips of every
 * message, every truncation point, and every kind of bad input of
 * PROTOCOL.md §9. No sockets.
 *
 * This file holds the suite, its fixtures and the round trips of requests
 * and replies, the fast paths held to the general path; truncation and bad
 * input are in test_codec_bad_input.c, links and streams in
 * test_codec_links.c. All three add to the one "codec" suite, in order.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "testutil.h"
#include "codectest.h"

const struct proto_limits limits = { .max_value = 1024, .max_select_cases = 8 };
struct proto_out out;
struct proto_case cases[8];

static int
setup(void)
{
	proto_out_init(&out);
	return 0;
}

static int
teardown(void)
{
	proto_out_destroy(&out);
	return 0;
}

/* The body of the single frame in out. */
const uint8_t *
only_body(size_t *len)
{
	const uint8_t *body = NULL;
	const char *why = NULL;
	long n = proto_frame_split(proto_out_data(&out), proto_out_len(&out), 1 << 20, &body, len, &why);

	CU_ASSERT_FATAL(n > 0);
	CU_ASSERT_EQUAL_FATAL((size_t)n, proto_out_len(&out));
	return body;
}

int
decode_req(struct proto_request *q, const char **why)
{
	size_t len;
	const uint8_t *body = only_body(&len);

	return proto_decode_request(body, len, &limits, cases, 8, q, why);
}

int
decode_rep(uint64_t op, struct proto_reply *r)
{
	size_t len;
	const uint8_t *body = only_body(&len);
	const char *why = NULL;

	return proto_decode_reply(body, len, op, r, &why);
}

/* ---- requests ---------------------------------------------------------------- */

static void
test_req_hello(void)
{
	struct proto_request q;
	const char *why;

	proto_out_reset(&out);
	CU_ASSERT_EQUAL(proto_req_hello(&out, 1, PROTO_VERSION, "tester", "s3cret"), 0);
	CU_ASSERT_EQUAL(decode_req(&q, &why), STATUS_OK);
	CU_ASSERT_EQUAL(q.op, OP_HELLO);
	CU_ASSERT_EQUAL(q.id, 1);
	CU_ASSERT_EQUAL(q.version, PROTO_VERSION);
	CU_ASSERT(NAME_IS(q.client, q.client_len, "tester"));
	CU_ASSERT(NAME_IS(q.token, q.token_len, "s3cret"));

	proto_out_reset(&out);
	CU_ASSERT_EQUAL(proto_req_hello(&out, 2, 7, "", NULL), 0);
	CU_ASSERT_EQUAL(decode_req(&q, &why), STATUS_OK);
	CU_ASSERT_EQUAL(q.version, 7);
	CU_ASSERT_EQUAL(q.client_len, 0);
	CU_ASSERT_PTR_NULL(q.token);
}

static void
test_req_simple(void)
{
	static const uint64_t ops[] = { OP_OPEN, OP_RECV, OP_CLOSE, OP_LEN, OP_CAP, OP_DELETE, OP_INFO };
	struct proto_request q;
	const char *why;

	for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
		proto_out_reset(&out);
		CU_ASSERT_EQUAL(proto_req_name(&out, ops[i], 40 + i, 1500, "jobs", 4), 0);
		CU_ASSERT_EQUAL(decode_req(&q, &why), STATUS_OK);
		CU_ASSERT_EQUAL(q.op, ops[i]);
		CU_ASSERT_EQUAL(q.id, 40 + i);
		CU_ASSERT_EQUAL(q.wait_us, 1500);
		CU_ASSERT(NAME_IS(q.name, q.name_len, "jobs"));
	}
	proto_out_reset(&out);
	CU_ASSERT_EQUAL(proto_req_ping(&out, UINT64_MAX), 0);
	CU_ASSERT_EQUAL(decode_req(&q, &why), STATUS_OK);
	CU_ASSERT_EQUAL(q.op, OP_PING);
	CU_ASSERT_EQUAL(q.id, UINT64_MAX);
	CU_ASSERT_EQUAL(q.wait_us, PROTO_WAIT_FOREVER);

	proto_out_reset(&out);
	CU_ASSERT_EQUAL(proto_req_cancel(&out, 9, 8), 0);
	CU_ASSERT_EQUAL(decode_req(&q, &why), STATUS_OK);
	CU_ASSERT_EQUAL(q.op, OP_CANCEL);
	CU_ASSERT_EQUAL(q.target, 8);
}

static void
test_req_make(void)
{
	struct proto_request q;
	const char *why;

	proto_out_reset(&out);
	CU_ASSERT_EQUAL(proto_req_make(&out, 3, "work", 4, 1024), 0);
	CU_ASSERT_EQUAL(decode_req(&q, &why), STATUS_OK);
	CU_ASSERT_EQUAL(q.op, OP_MAKE);
	CU_ASSERT(NAME_IS(q.name, q.name_len, "work"));
	CU_ASSERT_EQUAL(q.cap, 1024);

	proto_out_reset(&out);
	CU_ASSERT_EQUAL(proto_req_make(&out, 4, NULL, 0, 0), 0);
	CU_ASSERT_EQUAL(decode_req(&q, &why), STATUS_OK);
	CU_ASSERT_PTR_NULL(q.name);
	CU_ASSERT_EQUAL(q.cap, 0);

	proto_out_reset(&out);
	CU_ASSERT_EQUAL(proto_req_make(&out, 5, "~mine", 5, 0), 0);
	CU_ASSERT_EQUAL(decode_req(&q, &why), STATUS_BAD_REQUEST);
	CU_ASSERT_EQUAL(q.id, 5);
}

static void
test_req_send(void)
{
	static const uint8_t payload[300] = { 1, 2, 3 };
	struct proto_value v = { .kind = VALUE_BIN, .data = payload, .len = sizeof payload };
	struct proto_value ref = { .kind = VALUE_CHANREF, .data = (const uint8_t *)"inner", .len = 5 };
	struct proto_request q;
	const char *why;

	proto_out_reset(&out);
	CU_ASSERT_EQUAL(proto_req_send(&out, 6, 0, "c", 1, &v), 0);
	CU_ASSERT_EQUAL(decode_req(&q, &why), STATUS_OK);
	CU_ASSERT_EQUAL(q.op, OP_SEND);
	CU_ASSERT_EQUAL(q.wait_us, 0);
	CU_ASSERT_EQUAL(q.value.kind, VALUE_BIN);
	CU_ASSERT_EQUAL(q.value.len, sizeof payload);
	CU_ASSERT(memcmp(q.value.data, payload, sizeof payload) == 0);
	/* raw is the exact encoding: bin16 header + payload */
	CU_ASSERT_EQUAL(q.value.raw_len, 3 + sizeof payload);
	CU_ASSERT_EQUAL(q.value.raw[0], 0xc5);

	proto_out_reset(&out);
	CU_ASSERT_EQUAL(proto_req_send(&out, 7, PROTO_WAIT_FOREVER, "c", 1, &ref), 0);
	CU_ASSERT_EQUAL(decode_req(&q, &why), STATUS_OK);
	CU_ASSERT_EQUAL(q.value.kind, VALUE_CHANREF);
	CU_ASSERT(NAME_IS((const char *)q.value.data, q.value.len, "inner"));

	/* over max_value (1024 here) is LIMIT, and the id is known */
	static const uint8_t big[1025];
	struct proto_value bv = { .kind = VALUE_BIN, .data = big, .len = sizeof big };

	proto_out_reset(&out);
	CU_ASSERT_EQUAL(proto_req_send(&out, 8, 0, "c", 1, &bv), 0);
	CU_ASSERT_EQUAL(decode_req(&q, &why), STATUS_LIMIT);
	CU_ASSERT_EQUAL(q.id, 8);
}

static bool
same_value(const struct proto_value *a, const struct proto_value *b)
{
	return a->kind == b->kind && a->raw == b->raw && a->raw_len == b->raw_len &&
	    a->data == b->data && a->len == b->len;
}

/* proto_decode_request (with its fast path) and the general path agree on body. */
static bool
same_as_general(const uint8_t *body, size_t len)
{
	static struct proto_case c2[8];
	struct proto_request a, b;
	const char *wa = NULL, *wb = NULL;
	int sa = proto_decode_request(body, len, &limits, cases, 8, &a, &wa);
	int sb = proto_decode_request_general(body, len, &limits, c2, 8, &b, &wb);

	if (sa != sb || wa != wb || a.op != b.op || a.id != b.id)
		return false;
	if (sa != STATUS_OK)
		return true;
	if (a.deferred != b.deferred)
		return false;
	if (a.op == OP_ACK)
		return a.tags.p == b.tags.p && a.tags.end == b.tags.end && a.tags.left == b.tags.left;
	if (a.op == OP_SELECT) {
		if (a.wait_us != b.wait_us || a.ncases != b.ncases || a.has_default != b.has_default)
			return false;
		for (uint32_t i = 0; i < a.ncases; i++)
			if (a.cases[i].dir != b.cases[i].dir || a.cases[i].name != b.cases[i].name ||
			    a.cases[i].name_len != b.cases[i].name_len ||
			    !same_value(&a.cases[i].value, &b.cases[i].value))
				return false;
		return true;
	}
	if (a.op != OP_SEND && a.op != OP_RECV)
		return true;
	return a.wait_us == b.wait_us && a.name == b.name && a.name_len == b.name_len &&
	    same_value(&a.value, &b.value);
}

static bool
out_agrees(void)
{
	size_t len;
	const uint8_t *body = only_body(&len);

	return same_as_general(body, len);
}

/* Every single-byte change and every truncation of the frame in out: the same verdict both ways. */
static void
assert_mutants_agree(void)
{
	size_t len;
	const uint8_t *body = only_body(&len);
	uint8_t *m = malloc(len);

	CU_ASSERT_FATAL(m != NULL);
	CU_ASSERT(same_as_general(body, len));
	for (size_t cut = 0; cut < len; cut++)
		CU_ASSERT(same_as_general(body, cut));
	for (size_t i = 0; i < len && i < 48; i++) {
		memcpy(m, body, len);
		for (int v = 0; v < 256; v++) {
			m[i] = (uint8_t)v;
			if (!same_as_general(m, len)) {
				CU_FAIL("fast path and general path disagree");
				break;
			}
		}
	}
	free(m);
}

/*
 * SEND, RECV, SELECT and ACK take a one-pass fast path: every integer, str
 * and bin width, every wait, and every mutation of them decode exactly as
 * the general path decodes them (status, reason, fields).
 */
static void
test_req_fast_path(void)
{
	static const uint64_t ids[] = { 1, 127, 128, 255, 256, 65535, 65536, 1ULL << 40, UINT64_MAX };
	static const int64_t waits[] = { PROTO_WAIT_FOREVER, 0, 1, 200, 70000, 1LL << 33, PROTO_WAIT_MAX };
	static const size_t vlens[] = { 0, 1, 255, 256, 1024, 1025 };
	static const uint8_t payload[1025];
	char name[300];

	memset(name, 'n', sizeof name);
	for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
		for (size_t w = 0; w < sizeof waits / sizeof waits[0]; w++) {
			proto_out_reset(&out);
			proto_req_name(&out, OP_RECV, ids[i], waits[w], name, 1 + i * 31);
			CU_ASSERT(out_agrees());
		}
	}
	for (size_t k = 0; k < sizeof vlens / sizeof vlens[0]; k++) {
		struct proto_value v = { .kind = VALUE_BIN, .data = payload, .len = vlens[k] };

		proto_out_reset(&out);
		proto_req_send(&out, ids[k], waits[k], name, 40, &v);
		CU_ASSERT(out_agrees());
	}
	/* mutants of a small SEND and RECV, and of a str8 name and bin16 value */
	struct proto_value small = { .kind = VALUE_BIN, .data = (const uint8_t *)"xyz", .len = 3 };
	struct proto_value wide = { .kind = VALUE_BIN, .data = payload, .len = 300 };

	proto_out_reset(&out);
	proto_req_send(&out, 300, 70000, "chan", 4, &small);
	assert_mutants_agree();
	proto_out_reset(&out);
	proto_req_name(&out, OP_RECV, 9, PROTO_WAIT_FOREVER, "chan", 4);
	assert_mutants_agree();
	proto_out_reset(&out);
	proto_req_send(&out, 5, 0, name, 40, &wide);
	assert_mutants_agree();
	/* ACK: 1, 15 (fixarray) and 16 (array16) tags of every width, deferred or not */
	for (size_t n = 1; n <= 16; n += n == 1 ? 14 : 1) {
		uint64_t tags[16];

		for (size_t t = 0; t < n; t++)
			tags[t] = ids[(t + n) % (sizeof ids / sizeof ids[0])];
		proto_out_reset(&out);
		proto_req_ack(&out, ids[n % 9], tags, n);
		CU_ASSERT(out_agrees());
		proto_req_defer_last(&out);
		CU_ASSERT(out_agrees());
		assert_mutants_agree();
	}
	/* SELECT: receive, nil and send cases, with and without default, up to the case limit */
	struct proto_case sel[9] = {
		{ .dir = 0, .name = "a", .name_len = 1 },
		{ .dir = 1, .name = "b", .name_len = 1, .value = small },
		{ .dir = 0, .name = NULL },
	};

	for (int i = 3; i < 9; i++)
		sel[i] = (struct proto_case){ .dir = (uint8_t)(i & 1), .name = "c", .name_len = 1,
		    .value = small };
	for (size_t n = 1; n <= 9; n++) {
		proto_out_reset(&out);
		proto_req_select(&out, 11, 1000, sel, n, n & 1);
		CU_ASSERT(out_agrees());
	}
	proto_out_reset(&out);
	proto_req_select(&out, 12, PROTO_WAIT_FOREVER, sel, 3, true);
	assert_mutants_agree();
}

/* proto_decode_reply (with its fast path) and the general path agree on body, as a reply to op. */
static bool
reply_same_as_general(const uint8_t *body, size_t len, uint64_t op)
{
	struct proto_reply a, b;
	const char *wa = NULL, *wb = NULL;
	int sa = proto_decode_reply(body, len, op, &a, &wa);
	int sb = proto_decode_reply_general(body, len, op, &b, &wb);

	if (sa != sb || wa != wb)
		return false;
	return sa != STATUS_OK || (a.id == b.id && a.status == b.status && a.index == b.index &&
	    a.ok == b.ok && a.interim == b.interim && a.n == b.n && a.msg == b.msg &&
	    a.msg_len == b.msg_len && a.tag == b.tag && a.count == b.count &&
	    same_value(&a.value, &b.value));
}

/* Every truncation and single-byte change of the reply in out: the same verdict both ways. */
static void
assert_reply_mutants_agree(uint64_t op)
{
	size_t len;
	const uint8_t *body = only_body(&len);
	uint8_t *m = malloc(len);

	CU_ASSERT_FATAL(m != NULL);
	CU_ASSERT(reply_same_as_general(body, len, op));
	for (size_t cut = 0; cut < len; cut++)
		CU_ASSERT(reply_same_as_general(body, cut, op));
	for (size_t i = 0; i < len && i < 48; i++) {
		memcpy(m, body, len);
		for (int v = 0; v < 256; v++) {
			m[i] = (uint8_t)v;
			if (!reply_same_as_general(m, len, op)) {
				CU_FAIL("reply fast path and general path disagree");
				break;
			}
		}
	}
	free(m);
}

/*
 * OK replies to SEND and RECV and a STREAM's values, tagged or not (§16),
 * take a one-pass fast path: every id width, value size, nil, and every
 * mutation of them (and the same bytes as a reply to other ops) decode
 * exactly as the general path decodes them.
 */
static void
test_reply_fast_path(void)
{
	static const uint64_t ids[] = { 1, 127, 128, 65536, 1ULL << 40, UINT64_MAX };
	static const size_t vlens[] = { 0, 1, 255, 256, 70000 };
	static const uint64_t ops[] = { OP_SEND, OP_RECV, OP_STREAM, OP_SELECT, OP_LEN };
	uint8_t *payload = calloc(1, 70000);
	struct proto_out raw;
	size_t len;

	CU_ASSERT_FATAL(payload != NULL);
	proto_out_init(&raw);
	for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
		for (size_t k = 0; k < sizeof vlens / sizeof vlens[0]; k++) {
			struct proto_value v = { .kind = VALUE_BIN, .data = payload, .len = vlens[k] };

			proto_out_reset(&raw);
			CU_ASSERT_EQUAL_FATAL(proto_value_encode(&raw, &v), 0);
			for (size_t o = 0; o < sizeof ops / sizeof ops[0]; o++) {
				const uint8_t *body;

				proto_out_reset(&out);
				proto_rep_ok(&out, ids[i]);
				body = only_body(&len);
				CU_ASSERT(reply_same_as_general(body, len, ops[o]));
				proto_out_reset(&out);
				proto_rep_recv(&out, ids[i], proto_out_data(&raw), proto_out_len(&raw), k & 1);
				body = only_body(&len);
				CU_ASSERT(reply_same_as_general(body, len, ops[o]));
				proto_out_reset(&out);
				proto_rep_select(&out, ids[i], (int64_t)(ids[k] >> 1), proto_out_data(&raw),
				    proto_out_len(&raw), k & 1);
				body = only_body(&len);
				CU_ASSERT(reply_same_as_general(body, len, ops[o]));
				proto_out_reset(&out);
				proto_rep_recv_ack(&out, ids[i], proto_out_data(&raw), proto_out_len(&raw),
				    ids[k], ids[i] >> 32);
				body = only_body(&len);
				CU_ASSERT(reply_same_as_general(body, len, ops[o]));
				proto_out_reset(&out);
				proto_rep_select_ack(&out, ids[i], (int64_t)k, proto_out_data(&raw),
				    proto_out_len(&raw), ids[k], 1 + k);
				body = only_body(&len);
				CU_ASSERT(reply_same_as_general(body, len, ops[o]));
			}
		}
	/* the fast path's own answers, checked against known fields */
	struct proto_reply r;

	proto_out_reset(&out);
	proto_rep_select(&out, 77, 3, NULL, 0, false);
	CU_ASSERT_EQUAL(decode_rep(OP_STREAM, &r), STATUS_OK);
	CU_ASSERT(r.id == 77 && r.index == 3 && r.interim && !r.ok && r.value.kind == VALUE_NONE);
	/* a received value comes with ok true, nil with ok false (PROTOCOL.md §9, bad replies) */
	proto_out_reset(&out);
	proto_rep_select(&out, 77, 3, NULL, 0, true);
	CU_ASSERT_EQUAL(decode_rep(OP_STREAM, &r), STATUS_PROTOCOL);
	CU_ASSERT_EQUAL(decode_rep(OP_SELECT, &r), STATUS_OK);		/* a send case's */
	proto_out_reset(&out);
	proto_rep_select(&out, 77, 3, (const uint8_t *)"\xc4\x01z", 3, false);
	CU_ASSERT_EQUAL(decode_rep(OP_STREAM, &r), STATUS_PROTOCOL);
	CU_ASSERT_EQUAL(decode_rep(OP_SELECT, &r), STATUS_PROTOCOL);
	proto_out_reset(&out);
	proto_rep_recv(&out, 77, (const uint8_t *)"\xc4\x01z", 3, false);
	CU_ASSERT_EQUAL(decode_rep(OP_RECV, &r), STATUS_PROTOCOL);
	proto_out_reset(&out);
	proto_rep_recv(&out, 77, NULL, 0, true);
	CU_ASSERT_EQUAL(decode_rep(OP_RECV, &r), STATUS_PROTOCOL);
	proto_out_reset(&out);
	proto_rep_select_ack(&out, 78, 1, (const uint8_t *)"\xc4\x01z", 3, 70000, 2);
	CU_ASSERT_EQUAL(decode_rep(OP_STREAM, &r), STATUS_OK);
	CU_ASSERT(r.id == 78 && r.index == 1 && r.interim && r.ok && r.tag == 70000 && r.count == 2);
	CU_ASSERT(r.value.kind == VALUE_BIN && r.value.len == 1 && r.value.data[0] == 'z');
	/* mutants of each shape, small and with a bin16 value */
	for (size_t k = 0; k < 2; k++) {
		struct proto_value v = { .kind = VALUE_BIN, .data = payload, .len = k ? 300 : 3 };

		proto_out_reset(&raw);
		proto_value_encode(&raw, &v);
		proto_out_reset(&out);
		proto_rep_ok(&out, 300);
		assert_reply_mutants_agree(OP_SEND);
		proto_out_reset(&out);
		proto_rep_recv(&out, 9, proto_out_data(&raw), proto_out_len(&raw), true);
		assert_reply_mutants_agree(OP_RECV);
		proto_out_reset(&out);
		proto_rep_select(&out, 70000, 2, proto_out_data(&raw), proto_out_len(&raw), true);
		assert_reply_mutants_agree(OP_STREAM);
		proto_out_reset(&out);
		proto_rep_recv_ack(&out, 9, proto_out_data(&raw), proto_out_len(&raw), 300, 1);
		assert_reply_mutants_agree(OP_RECV);
		proto_out_reset(&out);
		proto_rep_select_ack(&out, 70000, 2, proto_out_data(&raw), proto_out_len(&raw), 65536, 3);
		assert_reply_mutants_agree(OP_STREAM);
	}
	proto_out_destroy(&raw);
	free(payload);
}

static void
test_req_select(void)
{
	struct proto_case in[3] = {
		{ .dir = 0, .name = "a", .name_len = 1 },
		{ .dir = 1, .name = "b", .name_len = 1,
		  .value = { .kind = VALUE_BIN, .data = (const uint8_t *)"xy", .len = 2 } },
		{ .dir = 0, .name = NULL },
	};
	struct proto_request q;
	const char *why;

	proto_out_reset(&out);
	CU_ASSERT_EQUAL(proto_req_select(&out, 10, 250000, in, 3, true), 0);
	CU_ASSERT_EQUAL(decode_req(&q, &why), STATUS_OK);
	CU_ASSERT_EQUAL(q.op, OP_SELECT);
	CU_ASSERT_EQUAL(q.ncases, 3);
	CU_ASSERT(q.has_default);
	CU_ASSERT_EQUAL(q.cases[0].dir, 0);
	CU_ASSERT(NAME_IS(q.cases[0].name, q.cases[0].name_len, "a"));
	CU_ASSERT_EQUAL(q.cases[1].dir, 1);
	CU_ASSERT_EQUAL(q.cases[1].value.len, 2);
	CU_ASSERT(memcmp(q.cases[1].value.data, "xy", 2) == 0);
	CU_ASSERT_PTR_NULL(q.cases[2].name);

	/* nine cases: more than the limit of eight */
	struct proto_case many[9];

	for (int i = 0; i < 9; i++)
		many[i] = in[0];
	proto_out_reset(&out);
	CU_ASSERT_EQUAL(proto_req_select(&out, 11, 0, many, 9, false), 0);
	CU_ASSERT_EQUAL(decode_req(&q, &why), STATUS_LIMIT);
	CU_ASSERT_EQUAL(q.id, 11);

	proto_out_reset(&out);
	CU_ASSERT_EQUAL(proto_req_select(&out, 12, 0, in, 0, true), 0);
	CU_ASSERT_EQUAL(decode_req(&q, &why), STATUS_BAD_REQUEST);
}

/* §15: the deferred-reply bit on each op that takes it, on none other; WANT. */
static void
test_req_deferred(void)
{
	const struct proto_case sel[1] = { { .dir = 0, .name = "a", .name_len = 1 } };
	const struct proto_value v = { .kind = VALUE_BIN, .data = (const uint8_t *)"v", .len = 1 };
	struct proto_request q;
	const uint8_t *body;
	size_t len;
	const char *why;

	for (int op = OP_SEND; op <= OP_CREDIT; op++) {
		proto_out_reset(&out);
		switch (op) {
		case OP_SEND: proto_req_send(&out, 7, 0, "a", 1, &v); break;
		case OP_RECV: proto_req_name(&out, OP_RECV, 7, 0, "a", 1); break;
		case OP_SELECT: proto_req_select(&out, 7, 0, sel, 1, false); break;
		case OP_CANCEL: proto_req_cancel(&out, 7, 3); break;
		case OP_CREDIT: proto_req_credit(&out, 7, 3, 2); break;
		default: proto_req_name(&out, (uint64_t)op, 7, 0, "a", 1); break;
		}
		CU_ASSERT_EQUAL(proto_req_defer_last(&out), proto_op_deferrable((uint64_t)op) ? 0 : -1);
		body = only_body(&len);
		CU_ASSERT(same_as_general(body, len));
		if (!proto_op_deferrable((uint64_t)op)) {
			CU_ASSERT_EQUAL(body[1], op);	/* left as it was */
			continue;
		}
		CU_ASSERT_EQUAL(body[1], op | PROTO_OP_DEFER);
		CU_ASSERT_EQUAL(decode_req(&q, &why), STATUS_OK);
		CU_ASSERT_EQUAL(q.op, (uint64_t)op);
		CU_ASSERT(q.deferred);
		CU_ASSERT_EQUAL(q.id, 7);
	}
	/* XSETTLE (node-to-node, §17) takes it too */
	proto_out_reset(&out);
	CU_ASSERT_EQUAL(proto_req_xsettle(&out, 7, 3, true), 0);
	CU_ASSERT_EQUAL(proto_req_defer_last(&out), 0);
	CU_ASSERT_EQUAL(decode_req(&q, &why), STATUS_OK);
	CU_ASSERT(q.op == OP_XSETTLE && q.deferred && q.target == 3 && q.keep);
	/* without the bit: not deferred */
	proto_out_reset(&out);
	proto_req_name(&out, OP_RECV, 8, 0, "a", 1);
	CU_ASSERT_EQUAL(decode_req(&q, &why), STATUS_OK);
	CU_ASSERT(!q.deferred);
	/* the bit on an op that cannot take it is an unknown op */
	for (uint64_t op = OP_HELLO; op <= OP_MAX; op++) {
		if (proto_op_deferrable(op) || proto_op_name(op) == NULL)
			continue;
		proto_out_reset(&out);
		proto_req_name(&out, op | PROTO_OP_DEFER, 9, 0, "a", 1);
		CU_ASSERT_EQUAL(decode_req(&q, &why), STATUS_BAD_REQUEST);
		CU_ASSERT_STRING_EQUAL(why, "unknown op");
	}
	/* WANT: one target id, 1 or more */
	proto_out_reset(&out);
	CU_ASSERT_EQUAL(proto_req_want(&out, 10, 4), 0);
	CU_ASSERT_EQUAL(decode_req(&q, &why), STATUS_OK);
	CU_ASSERT_EQUAL(q.op, OP_WANT);
	CU_ASSERT_EQUAL(q.target, 4);
	CU_ASSERT_STRING_EQUAL(proto_op_name(OP_WANT), "WANT");
	proto_out_reset(&out);
	proto_req_want(&out, 11, 0);
	CU_ASSERT_EQUAL(decode_req(&q, &why), STATUS_BAD_REQUEST);
	proto_out_reset(&out);
	proto_req_name(&out, OP_WANT, 12, 0, "a", 1);
	CU_ASSERT_EQUAL(decode_req(&q, &why), STATUS_BAD_REQUEST);
}

/* ---- replies ------------------------------------------------------------------ */

static void
test_replies(void)
{
	struct proto_reply r;
	uint8_t raw[] = { 0xc4, 0x03, 'a', 'b', 'c' };

	proto_out_reset(&out);
	CU_ASSERT_EQUAL(proto_rep_ok(&out, 77), 0);
	CU_ASSERT_EQUAL(decode_rep(OP_SEND, &r), STATUS_OK);
	CU_ASSERT_EQUAL(r.id, 77);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);

	proto_out_reset(&out);
	CU_ASSERT_EQUAL(proto_rep_error(&out, 78, STATUS_CLOSED, "send on closed channel"), 0);
	CU_ASSERT_EQUAL(decode_rep(OP_SEND, &r), STATUS_OK);
	CU_ASSERT_EQUAL(r.status, STATUS_CLOSED);
	CU_ASSERT(NAME_IS(r.msg, r.msg_len, "send on closed channel"));

	proto_out_reset(&out);
	CU_ASSERT_EQUAL(proto_rep_case_error(&out, 79, STATUS_NOT_FOUND, "gone", 4), 0);
	CU_ASSERT_EQUAL(decode_rep(OP_SELECT, &r), STATUS_OK);
	CU_ASSERT_EQUAL(r.status, STATUS_NOT_FOUND);
	CU_ASSERT_EQUAL(r.index, 4);

	proto_out_reset(&out);
	CU_ASSERT_EQUAL(proto_rep_uint(&out, 80, 12345), 0);
	CU_ASSERT_EQUAL(decode_rep(OP_LEN, &r), STATUS_OK);
	CU_ASSERT_EQUAL(r.n, 12345);

	proto_out_reset(&out);
	CU_ASSERT_EQUAL(proto_rep_make(&out, 81, "~1f", 3, 16, true), 0);
	CU_ASSERT_EQUAL(decode_rep(OP_MAKE, &r), STATUS_OK);
	CU_ASSERT(NAME_IS(r.name, r.name_len, "~1f"));
	CU_ASSERT_EQUAL(r.n, 16);
	CU_ASSERT(r.created);
	/* the client makes a handle of MAKE's name: it must be a valid name (§6) */
	proto_out_reset(&out);
	CU_ASSERT_EQUAL(proto_rep_make(&out, 81, "", 0, 16, true), 0);
	CU_ASSERT_EQUAL(decode_rep(OP_MAKE, &r), STATUS_PROTOCOL);
	proto_out_reset(&out);
	CU_ASSERT_EQUAL(proto_rep_make(&out, 81, "a\x01", 2, 16, true), 0);
	CU_ASSERT_EQUAL(decode_rep(OP_MAKE, &r), STATUS_PROTOCOL);

	proto_out_reset(&out);
	CU_ASSERT_EQUAL(proto_rep_recv(&out, 82, raw, sizeof raw, true), 0);
	CU_ASSERT_EQUAL(decode_rep(OP_RECV, &r), STATUS_OK);
	CU_ASSERT_EQUAL(r.value.kind, VALUE_BIN);
	CU_ASSERT_EQUAL(r.value.len, 3);
	CU_ASSERT(memcmp(r.value.data, "abc", 3) == 0);
	CU_ASSERT(r.ok);

	proto_out_reset(&out);
	CU_ASSERT_EQUAL(proto_rep_recv(&out, 83, NULL, 0, false), 0);
	CU_ASSERT_EQUAL(decode_rep(OP_RECV, &r), STATUS_OK);
	CU_ASSERT_EQUAL(r.value.kind, VALUE_NONE);
	CU_ASSERT_FALSE(r.ok);

	proto_out_reset(&out);
	CU_ASSERT_EQUAL(proto_rep_select(&out, 84, -1, NULL, 0, true), 0);
	CU_ASSERT_EQUAL(decode_rep(OP_SELECT, &r), STATUS_OK);
	CU_ASSERT_EQUAL(r.index, -1);

	proto_out_reset(&out);
	CU_ASSERT_EQUAL(proto_rep_select(&out, 85, 2, raw, sizeof raw, true), 0);
	CU_ASSERT_EQUAL(decode_rep(OP_SELECT, &r), STATUS_OK);
	CU_ASSERT_EQUAL(r.index, 2);
	CU_ASSERT_EQUAL(r.value.len, 3);
}

static void
test_reply_maps(void)
{
	struct proto_hello_info h = {
		.version = 1, .server = "chand 0.1.0", .server_len = 11,
		.max_frame = 2097152, .max_value = 1048576, .max_pending = 4096,
		.max_select_cases = 1024, .max_stream_credit = 512, .max_waiters_per_connection = 65536,
	};
	struct proto_chan_info i = {
		.name = "q", .name_len = 1, .len = 3, .cap = 8, .closed = true,
		.anonymous = false, .senders = 2, .receivers = 0, .bytes = 99,
	};
	struct proto_reply r;

	proto_out_reset(&out);
	CU_ASSERT_EQUAL(proto_rep_hello(&out, 1, &h), 0);
	CU_ASSERT_EQUAL(decode_rep(OP_HELLO, &r), STATUS_OK);
	CU_ASSERT_EQUAL(r.hello.version, 1);
	CU_ASSERT(NAME_IS(r.hello.server, r.hello.server_len, "chand 0.1.0"));
	CU_ASSERT_EQUAL(r.hello.max_frame, 2097152);
	CU_ASSERT_EQUAL(r.hello.max_value, 1048576);
	CU_ASSERT_EQUAL(r.hello.max_pending, 4096);
	CU_ASSERT_EQUAL(r.hello.max_select_cases, 1024);
	CU_ASSERT_EQUAL(r.hello.max_stream_credit, 512);
	CU_ASSERT_EQUAL(r.hello.max_waiters_per_connection, 65536);

	proto_out_reset(&out);
	CU_ASSERT_EQUAL(proto_rep_info(&out, 2, &i), 0);
	CU_ASSERT_EQUAL(decode_rep(OP_INFO, &r), STATUS_OK);
	CU_ASSERT(NAME_IS(r.info.name, r.info.name_len, "q"));
	CU_ASSERT_EQUAL(r.info.len, 3);
	CU_ASSERT_EQUAL(r.info.cap, 8);
	CU_ASSERT(r.info.closed);
	CU_ASSERT_FALSE(r.info.anonymous);
	CU_ASSERT_EQUAL(r.info.senders, 2);
	CU_ASSERT_EQUAL(r.info.bytes, 99);
}

/* Forwarding (§17): a request and a reply again with another id; a node's HELLO. */
static void
test_readdress(void)
{
	const struct proto_value ref = { .kind = VALUE_CHANREF, .data = (const uint8_t *)"chan.x",
	    .len = 6 };
	const uint64_t big = 1ULL << 40;
	struct proto_out o2;
	struct proto_request q;
	struct proto_reply r;
	const uint8_t *body;
	size_t len;
	const char *why;

	proto_out_init(&o2);
	/* a deferred SEND of a channel reference: the op bit goes, the value is kept */
	proto_out_reset(&out);
	proto_req_send(&out, 7, 5000, "a", 1, &ref);
	CU_ASSERT_EQUAL(proto_req_defer_last(&out), 0);
	body = only_body(&len);
	CU_ASSERT_EQUAL_FATAL(proto_req_readdress(&o2, body, len, big, 1234), 0);
	CU_ASSERT_EQUAL(proto_decode_request(proto_out_data(&o2) + PROTO_FRAME_HDR,
	    proto_out_len(&o2) - PROTO_FRAME_HDR, &limits, cases, 8, &q, &why), STATUS_OK);
	CU_ASSERT_EQUAL(q.op, OP_SEND);
	CU_ASSERT_FALSE(q.deferred);
	CU_ASSERT_EQUAL(q.id, big);
	CU_ASSERT_EQUAL(q.wait_us, 1234);
	CU_ASSERT(NAME_IS(q.name, q.name_len, "a"));
	CU_ASSERT_EQUAL(q.value.kind, VALUE_CHANREF);
	CU_ASSERT(NAME_IS(q.value.data, q.value.len, "chan.x"));
	/* wait nil stays nil */
	proto_out_reset(&out);
	proto_out_reset(&o2);
	proto_req_name(&out, OP_RECV, 9, PROTO_WAIT_FOREVER, "b", 1);
	body = only_body(&len);
	CU_ASSERT_EQUAL_FATAL(proto_req_readdress(&o2, body, len, 3, PROTO_WAIT_FOREVER), 0);
	CU_ASSERT_EQUAL(proto_decode_request(proto_out_data(&o2) + PROTO_FRAME_HDR,
	    proto_out_len(&o2) - PROTO_FRAME_HDR, &limits, cases, 8, &q, &why), STATUS_OK);
	CU_ASSERT_EQUAL(q.id, 3);
	CU_ASSERT_EQUAL(q.wait_us, PROTO_WAIT_FOREVER);
	/* a reply back with the client's id */
	proto_out_reset(&out);
	proto_out_reset(&o2);
	proto_rep_error(&out, big, STATUS_CANCELED, "canceled");
	body = only_body(&len);
	CU_ASSERT_EQUAL_FATAL(proto_rep_readdress(&o2, body, len, 7), 0);
	CU_ASSERT_EQUAL(proto_decode_reply(proto_out_data(&o2) + PROTO_FRAME_HDR,
	    proto_out_len(&o2) - PROTO_FRAME_HDR, OP_RECV, &r, &why), STATUS_OK);
	CU_ASSERT_EQUAL(r.id, 7);
	CU_ASSERT_EQUAL(r.status, STATUS_CANCELED);
	CU_ASSERT(NAME_IS(r.msg, r.msg_len, "canceled"));
	/* not a request, not a reply: nothing is appended */
	proto_out_reset(&o2);
	CU_ASSERT_EQUAL(proto_req_readdress(&o2, (const uint8_t *)"\x92\x01", 2, 1, 0), -1);
	CU_ASSERT_EQUAL(proto_rep_readdress(&o2, (const uint8_t *)"\x91\x01", 2, 1), -1);
	CU_ASSERT_EQUAL(proto_out_len(&o2), 0);
	/* a node's HELLO: its token, and it follows MOVED */
	proto_out_reset(&out);
	CU_ASSERT_EQUAL(proto_req_hello_node(&out, 1, "chand-node", "tok", "n1"), 0);
	CU_ASSERT_EQUAL(decode_req(&q, &why), STATUS_OK);
	CU_ASSERT_EQUAL(q.op, OP_HELLO);
	CU_ASSERT(q.moved);
	CU_ASSERT(NAME_IS(q.token, q.token_len, "tok"));
	CU_ASSERT(NAME_IS(q.client, q.client_len, "chand-node"));
	proto_out_destroy(&o2);
}

static void
register_suites(void)
{
	CU_pSuite s = test_suite("codec", setup, teardown);

	pk_init();
	test_add(s, "request HELLO round trip", test_req_hello);
	test_add(s, "one-name requests, PING, CANCEL round trip", test_req_simple);
	test_add(s, "request MAKE round trip and reserved names", test_req_make);
	test_add(s, "request SEND round trip, raw value kept, LIMIT", test_req_send);
	test_add(s, "SEND, RECV, SELECT, ACK fast path decodes exactly as the general path", test_req_fast_path);
	test_add(s, "deferred replies: the op bit and WANT (§15)", test_req_deferred);
	test_add(s, "OK to SEND, RECV and STREAM values, tagged too: fast path decodes as the general path",
	    test_reply_fast_path);
	test_add(s, "request SELECT round trip and case limits", test_req_select);
	test_add(s, "every reply round trip", test_replies);
	test_add(s, "HELLO and INFO maps round trip", test_reply_maps);
	test_add(s, "forwarding: readdressed requests and replies, a node's HELLO", test_readdress);
	register_codec_bad_input(s);
	register_codec_links(s);
	register_codec_ack(s);
}

int
main(int argc, char **argv)
{
	int rc = test_main(argc, argv, register_suites);

	pk_free();
	return rc;
}
