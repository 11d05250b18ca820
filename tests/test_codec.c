/*
 * test_codec.c: the wire codec (proto/) on its own: round trips of every
 * message, every truncation point, and every kind of bad input of
 * PROTOCOL.md §9. No sockets.
 */
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "mpread.h"
#include "rand.h"
#include "testutil.h"

static const struct proto_limits limits = { .max_value = 1024, .max_select_cases = 8 };
static struct proto_out out;
static struct proto_case cases[8];

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
static const uint8_t *
only_body(size_t *len)
{
	const uint8_t *body = NULL;
	const char *why = NULL;
	long n = proto_frame_split(proto_out_data(&out), proto_out_len(&out), 1 << 20, &body, len, &why);

	CU_ASSERT_FATAL(n > 0);
	CU_ASSERT_EQUAL_FATAL((size_t)n, proto_out_len(&out));
	return body;
}

static int
decode_req(struct proto_request *q, const char **why)
{
	size_t len;
	const uint8_t *body = only_body(&len);

	return proto_decode_request(body, len, &limits, cases, 8, q, why);
}

static int
decode_rep(uint64_t op, struct proto_reply *r)
{
	size_t len;
	const uint8_t *body = only_body(&len);
	const char *why = NULL;

	return proto_decode_reply(body, len, op, r, &why);
}

#define NAME_IS(p, l, s) (l == strlen(s) && memcmp(p, s, l) == 0)

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
 * SEND, RECV and SELECT take a one-pass fast path: every integer, str and bin
 * width, every wait, and every mutation of them decode exactly as the
 * general path decodes them (status, reason, fields).
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
	    a.msg_len == b.msg_len && same_value(&a.value, &b.value));
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
 * OK replies to SEND and RECV and a STREAM's values take a one-pass fast
 * path: every id width, value size, nil, and every mutation of them (and
 * the same bytes as a reply to other ops) decode exactly as the general
 * path decodes them.
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
			}
		}
	/* the fast path's own answers, checked against known fields */
	struct proto_reply r;

	proto_out_reset(&out);
	proto_rep_select(&out, 77, 3, NULL, 0, true);
	CU_ASSERT_EQUAL(decode_rep(OP_STREAM, &r), STATUS_OK);
	CU_ASSERT(r.id == 77 && r.index == 3 && r.interim && r.ok && r.value.kind == VALUE_NONE);
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
		.max_select_cases = 1024, .max_stream_credit = 512,
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

/* ---- framing and truncation ---------------------------------------------------- */

/* A stream of several frames of every request kind. */
static void
build_stream(void)
{
	struct proto_value v = { .kind = VALUE_BIN, .data = (const uint8_t *)"hello", .len = 5 };
	struct proto_case c[2] = {
		{ .dir = 0, .name = "a", .name_len = 1 },
		{ .dir = 1, .name = "b", .name_len = 1, .value = v },
	};

	proto_out_reset(&out);
	proto_req_hello(&out, 1, 1, "t", "tok");
	proto_req_make(&out, 2, "a", 1, 4);
	proto_req_send(&out, 3, 10, "a", 1, &v);
	proto_req_name(&out, OP_RECV, 4, PROTO_WAIT_FOREVER, "a", 1);
	proto_req_select(&out, 5, 0, c, 2, false);
	proto_req_cancel(&out, 6, 5);
	proto_req_ping(&out, 7);
	proto_req_stream(&out, 8, PROTO_WAIT_FOREVER, c, 2, 16);
	proto_req_credit(&out, 9, 8, 4);
}

static void
test_truncation(void)
{
	build_stream();
	const uint8_t *buf = proto_out_data(&out);
	size_t total = proto_out_len(&out);
	size_t off = 0;
	int frames = 0;

	while (off < total) {
		const uint8_t *body;
		size_t blen, full;
		const char *why;
		long n;

		/* find this frame's full size */
		n = proto_frame_split(buf + off, total - off, 1 << 20, &body, &blen, &why);
		CU_ASSERT_FATAL(n > 0);
		full = (size_t)n;
		/* every shorter prefix is "need more", never a frame or an error */
		for (size_t cut = 0; cut < full; cut++)
			CU_ASSERT_EQUAL(proto_frame_split(buf + off, cut, 1 << 20, &body, &blen, &why), 0);
		/* every truncated body is a PROTOCOL error, never a request */
		for (size_t cut = 0; cut < blen; cut++) {
			struct proto_request q;
			uint8_t *copy = malloc(cut ? cut : 1);

			memcpy(copy, buf + off + PROTO_FRAME_HDR, cut);
			CU_ASSERT_EQUAL(proto_decode_request(copy, cut, &limits, cases, 8, &q, &why),
			    STATUS_PROTOCOL);
			free(copy);	/* a separate buffer so ASan catches any over-read */
		}
		off += full;
		frames++;
	}
	CU_ASSERT_EQUAL(frames, 9);
}

static void
test_frame_limits(void)
{
	const uint8_t zero[4] = { 0, 0, 0, 0 };
	const uint8_t huge[4] = { 0xff, 0xff, 0xff, 0xff };
	const uint8_t just[4] = { 0, 0, 1, 0 };	/* 256 */
	const uint8_t *body;
	size_t blen;
	const char *why = NULL;

	CU_ASSERT_EQUAL(proto_frame_split(zero, 4, 256, &body, &blen, &why), -1);
	CU_ASSERT_PTR_NOT_NULL(why);
	/* rejected with only the header present: nothing of the body is needed */
	CU_ASSERT_EQUAL(proto_frame_split(huge, 4, 256, &body, &blen, &why), -1);
	CU_ASSERT_EQUAL(proto_frame_split(just, 4, 255, &body, &blen, &why), -1);
	CU_ASSERT_EQUAL(proto_frame_split(just, 4, 256, &body, &blen, &why), 0);
}

/* ---- bad input ------------------------------------------------------------------ */

/* Decode hand-made bytes (a body, no length header). */
static int
decode_bytes(const void *bytes, size_t len, struct proto_request *q)
{
	const char *why = NULL;
	uint8_t *copy = malloc(len ? len : 1);
	int st;

	memcpy(copy, bytes, len);
	st = proto_decode_request(copy, len, &limits, cases, 8, q, &why);
	CU_ASSERT_PTR_NOT_NULL(why == NULL && st == STATUS_OK ? "ok" : why);
	free(copy);
	return st;
}

static msgpack_sbuffer sb;
static msgpack_packer pk;

static void
pk_reset(void)
{
	msgpack_sbuffer_clear(&sb);
}

static int
pk_decode(struct proto_request *q)
{
	return decode_bytes(sb.data, sb.size, q);
}

static void
pk_head(uint64_t op, uint64_t id, size_t nargs)
{
	pk_reset();
	msgpack_pack_array(&pk, 3 + nargs);
	msgpack_pack_uint64(&pk, op);
	msgpack_pack_uint64(&pk, id);
	msgpack_pack_nil(&pk);
}

static void
pk_str(const char *s, size_t len)
{
	msgpack_pack_str(&pk, len);
	msgpack_pack_str_body(&pk, s, len);
}

static void
test_bad_header(void)
{
	struct proto_request q;
	static const uint8_t not_array[] = { 0x01 };
	static const uint8_t short_array[] = { 0x92, 0x05, 0x01 };
	static const uint8_t reserved[] = { 0xc1 };
	static const uint8_t trailing[] = { 0x93, 0x02, 0x01, 0xc0, 0x00 };
	static const uint8_t op_zero[] = { 0x93, 0x00, 0x01, 0xc0 };
	static const uint8_t op_str[] = { 0x93, 0xa1, 'x', 0x01, 0xc0 };
	static const uint8_t id_zero[] = { 0x93, 0x02, 0x00, 0xc0 };
	static const uint8_t id_neg[] = { 0x93, 0x02, 0xff, 0xc0 };
	static const uint8_t empty[] = { 0 };

	CU_ASSERT_EQUAL(decode_bytes(empty, 0, &q), STATUS_PROTOCOL);
	CU_ASSERT_EQUAL(decode_bytes(not_array, sizeof not_array, &q), STATUS_PROTOCOL);
	CU_ASSERT_EQUAL(decode_bytes(short_array, sizeof short_array, &q), STATUS_PROTOCOL);
	CU_ASSERT_EQUAL(decode_bytes(reserved, sizeof reserved, &q), STATUS_PROTOCOL);
	CU_ASSERT_EQUAL(decode_bytes(trailing, sizeof trailing, &q), STATUS_PROTOCOL);
	CU_ASSERT_EQUAL(decode_bytes(op_zero, sizeof op_zero, &q), STATUS_PROTOCOL);
	CU_ASSERT_EQUAL(decode_bytes(op_str, sizeof op_str, &q), STATUS_PROTOCOL);
	CU_ASSERT_EQUAL(decode_bytes(id_zero, sizeof id_zero, &q), STATUS_PROTOCOL);
	CU_ASSERT_EQUAL(q.id, 0);
	CU_ASSERT_EQUAL(decode_bytes(id_neg, sizeof id_neg, &q), STATUS_PROTOCOL);
}

static void
test_absurd_headers(void)
{
	struct proto_request q;
	/* an array32 of 2^32-1 elements in a 5-byte frame: must not allocate or read */
	static const uint8_t arr32[] = { 0xdd, 0xff, 0xff, 0xff, 0xff };
	static const uint8_t arr16[] = { 0xdc, 0xff, 0xff, 0x01, 0x02 };
	static const uint8_t map32[] = { 0x94, 0x02, 0x01, 0xc0, 0xdf, 0x7f, 0xff, 0xff, 0xff };
	static const uint8_t bin32[] = { 0x95, 0x05, 0x01, 0xc0, 0xa1, 'c', 0xc6, 0xff, 0xff, 0xff, 0xf0, 0 };
	static const uint8_t str32[] = { 0x94, 0x06, 0x01, 0xc0, 0xdb, 0x00, 0x10, 0x00, 0x00, 'a' };
	static const uint8_t ext32[] = { 0x95, 0x05, 0x01, 0xc0, 0xa1, 'c', 0xc9, 0x7f, 0, 0, 0, 1 };
	uint8_t deep[64];

	CU_ASSERT_EQUAL(decode_bytes(arr32, sizeof arr32, &q), STATUS_PROTOCOL);
	CU_ASSERT_EQUAL(decode_bytes(arr16, sizeof arr16, &q), STATUS_PROTOCOL);
	CU_ASSERT_EQUAL(decode_bytes(map32, sizeof map32, &q), STATUS_PROTOCOL);
	CU_ASSERT_EQUAL(decode_bytes(bin32, sizeof bin32, &q), STATUS_PROTOCOL);
	CU_ASSERT_EQUAL(decode_bytes(str32, sizeof str32, &q), STATUS_PROTOCOL);
	CU_ASSERT_EQUAL(decode_bytes(ext32, sizeof ext32, &q), STATUS_PROTOCOL);
	/* nesting deeper than 32: [[[[...]]]] */
	memset(deep, 0x91, sizeof deep);
	deep[sizeof deep - 1] = 0xc0;
	CU_ASSERT_EQUAL(decode_bytes(deep, sizeof deep, &q), STATUS_PROTOCOL);
}

static void
test_bad_requests(void)
{
	struct proto_request q;

	/* unknown op: BAD_REQUEST with the id, so the connection goes on */
	pk_head(99, 5, 0);
	CU_ASSERT_EQUAL(pk_decode(&q), STATUS_BAD_REQUEST);
	CU_ASSERT_EQUAL(q.id, 5);

	/* wrong arity: RECV with no name, RECV with two */
	pk_head(OP_RECV, 6, 0);
	CU_ASSERT_EQUAL(pk_decode(&q), STATUS_BAD_REQUEST);
	pk_head(OP_RECV, 6, 2);
	pk_str("a", 1);
	pk_str("b", 1);
	CU_ASSERT_EQUAL(pk_decode(&q), STATUS_BAD_REQUEST);

	/* wrong types: a name that is an int, a bin name, a cap that is a str */
	pk_head(OP_RECV, 7, 1);
	msgpack_pack_int(&pk, 3);
	CU_ASSERT_EQUAL(pk_decode(&q), STATUS_BAD_REQUEST);
	pk_head(OP_RECV, 7, 1);
	msgpack_pack_bin(&pk, 1);
	msgpack_pack_bin_body(&pk, "a", 1);
	CU_ASSERT_EQUAL(pk_decode(&q), STATUS_BAD_REQUEST);
	pk_head(OP_MAKE, 7, 2);
	pk_str("a", 1);
	pk_str("1", 1);
	CU_ASSERT_EQUAL(pk_decode(&q), STATUS_BAD_REQUEST);
	pk_head(OP_MAKE, 7, 2);
	pk_str("a", 1);
	msgpack_pack_int(&pk, -1);
	CU_ASSERT_EQUAL(pk_decode(&q), STATUS_BAD_REQUEST);

	/* SEND value types: str, int, unknown ext are not values */
	pk_head(OP_SEND, 8, 2);
	pk_str("a", 1);
	pk_str("v", 1);
	CU_ASSERT_EQUAL(pk_decode(&q), STATUS_BAD_REQUEST);
	pk_head(OP_SEND, 8, 2);
	pk_str("a", 1);
	msgpack_pack_ext(&pk, 1, 9);
	msgpack_pack_ext_body(&pk, "x", 1);
	CU_ASSERT_EQUAL(pk_decode(&q), STATUS_BAD_REQUEST);
	pk_head(OP_SEND, 8, 2);
	pk_str("a", 1);
	msgpack_pack_ext(&pk, 1, PROTO_EXT_ERROR);
	msgpack_pack_ext_body(&pk, "x", 1);
	CU_ASSERT_EQUAL(pk_decode(&q), STATUS_BAD_REQUEST);
	/* a channel reference whose name is empty */
	pk_head(OP_SEND, 8, 2);
	pk_str("a", 1);
	msgpack_pack_ext(&pk, 0, PROTO_EXT_CHANREF);
	CU_ASSERT_EQUAL(pk_decode(&q), STATUS_BAD_REQUEST);

	/* select: cases not an array, a bad direction, a receive case with a value */
	pk_head(OP_SELECT, 9, 2);
	msgpack_pack_int(&pk, 1);
	msgpack_pack_false(&pk);
	CU_ASSERT_EQUAL(pk_decode(&q), STATUS_BAD_REQUEST);
	pk_head(OP_SELECT, 9, 2);
	msgpack_pack_array(&pk, 1);
	msgpack_pack_array(&pk, 2);
	msgpack_pack_int(&pk, 2);
	pk_str("a", 1);
	msgpack_pack_false(&pk);
	CU_ASSERT_EQUAL(pk_decode(&q), STATUS_BAD_REQUEST);
	pk_head(OP_SELECT, 9, 2);
	msgpack_pack_array(&pk, 1);
	msgpack_pack_array(&pk, 3);
	msgpack_pack_int(&pk, 0);
	pk_str("a", 1);
	msgpack_pack_bin(&pk, 0);
	msgpack_pack_false(&pk);
	CU_ASSERT_EQUAL(pk_decode(&q), STATUS_BAD_REQUEST);
	pk_head(OP_SELECT, 9, 2);
	msgpack_pack_array(&pk, 1);
	msgpack_pack_array(&pk, 2);
	msgpack_pack_int(&pk, 0);
	pk_str("a", 1);
	msgpack_pack_nil(&pk);	/* default must be a boolean */
	CU_ASSERT_EQUAL(pk_decode(&q), STATUS_BAD_REQUEST);

	/* CANCEL of id 0 */
	pk_head(OP_CANCEL, 10, 1);
	msgpack_pack_int(&pk, 0);
	CU_ASSERT_EQUAL(pk_decode(&q), STATUS_BAD_REQUEST);

	/* HELLO with a non-map auth */
	pk_head(OP_HELLO, 11, 3);
	msgpack_pack_int(&pk, 1);
	pk_str("x", 1);
	msgpack_pack_int(&pk, 1);
	CU_ASSERT_EQUAL(pk_decode(&q), STATUS_BAD_REQUEST);
}

static void
pk_wait_req(void (*pack_wait)(void))
{
	pk_reset();
	msgpack_pack_array(&pk, 4);
	msgpack_pack_int(&pk, OP_RECV);
	msgpack_pack_int(&pk, 12);
	pack_wait();
	pk_str("a", 1);
}

static void wait_neg(void) { msgpack_pack_int64(&pk, -1); }
static void wait_huge(void) { msgpack_pack_int64(&pk, PROTO_WAIT_MAX + 1); }
static void wait_u64max(void) { msgpack_pack_uint64(&pk, UINT64_MAX); }
static void wait_float(void) { msgpack_pack_double(&pk, 1.5); }
static void wait_str(void) { pk_str("1s", 2); }
static void wait_max(void) { msgpack_pack_int64(&pk, PROTO_WAIT_MAX); }

static void
test_bad_waits(void)
{
	struct proto_request q;
	void (*bad[])(void) = { wait_neg, wait_huge, wait_u64max, wait_float, wait_str };

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		pk_wait_req(bad[i]);
		CU_ASSERT_EQUAL(pk_decode(&q), STATUS_BAD_REQUEST);
		CU_ASSERT_EQUAL(q.id, 12);
	}
	pk_wait_req(wait_max);
	CU_ASSERT_EQUAL(pk_decode(&q), STATUS_OK);
	CU_ASSERT_EQUAL(q.wait_us, PROTO_WAIT_MAX);
}

static void
test_names(void)
{
	const char *why;
	char long_name[256];

	memset(long_name, 'n', sizeof long_name);
	CU_ASSERT(proto_name_valid("jobs", 4, &why));
	CU_ASSERT(proto_name_valid("k\xc3\xa4se", 5, &why));		/* "käse" */
	CU_ASSERT(proto_name_valid(long_name, 255, &why));
	CU_ASSERT_FALSE(proto_name_valid(long_name, 256, &why));
	CU_ASSERT_FALSE(proto_name_valid("", 0, &why));
	CU_ASSERT_FALSE(proto_name_valid("a\nb", 3, &why));
	CU_ASSERT_FALSE(proto_name_valid("a\x7f", 2, &why));
	CU_ASSERT_FALSE(proto_name_valid("\xc3", 1, &why));		/* truncated */
	CU_ASSERT_FALSE(proto_name_valid("\xc0\xaf", 2, &why));		/* overlong '/' */
	CU_ASSERT_FALSE(proto_name_valid("\xed\xa0\x80", 3, &why));	/* surrogate */
	CU_ASSERT_FALSE(proto_name_valid("\xf4\x90\x80\x80", 4, &why));	/* > U+10FFFF */
	CU_ASSERT_FALSE(proto_name_valid("\xff", 1, &why));

	/* and through the decoder: too long, non-UTF-8 */
	struct proto_request q;

	pk_head(OP_RECV, 13, 1);
	pk_str(long_name, 256);
	CU_ASSERT_EQUAL(pk_decode(&q), STATUS_BAD_REQUEST);
	pk_head(OP_RECV, 13, 1);
	pk_str("\xff\xfe", 2);
	CU_ASSERT_EQUAL(pk_decode(&q), STATUS_BAD_REQUEST);
	pk_head(OP_RECV, 13, 1);
	pk_str("", 0);
	CU_ASSERT_EQUAL(pk_decode(&q), STATUS_BAD_REQUEST);
}

static void
test_bad_replies(void)
{
	struct proto_reply r;
	const char *why;
	static const uint8_t not_array[] = { 0xc0 };
	static const uint8_t short_rep[] = { 0x91, 0x01 };
	static const uint8_t recv_missing_ok[] = { 0x93, 0x01, 0x00, 0xc0 };
	static const uint8_t err_no_msg[] = { 0x92, 0x01, 0x07 };
	uint64_t id;
	int st;

	CU_ASSERT_EQUAL(proto_decode_reply(not_array, 1, OP_PING, &r, &why), STATUS_PROTOCOL);
	CU_ASSERT_EQUAL(proto_reply_header(short_rep, 2, &id, &st, &why), STATUS_PROTOCOL);
	CU_ASSERT_EQUAL(proto_decode_reply(recv_missing_ok, 4, OP_RECV, &r, &why), STATUS_PROTOCOL);
	CU_ASSERT_EQUAL(proto_decode_reply(err_no_msg, 3, OP_RECV, &r, &why), STATUS_PROTOCOL);
	CU_ASSERT_EQUAL(proto_reply_header(recv_missing_ok, 4, &id, &st, &why), STATUS_OK);
	CU_ASSERT_EQUAL(id, 1);
	CU_ASSERT_EQUAL(st, 0);
}

/* ---- the reader against msgpack-c ------------------------------------------------ */

static void
pack_random(struct rand_state *rs, int depth)
{
	uint32_t kind = rand_below(rs, depth > 4 ? 8 : 10);
	char buf[70000];

	switch (kind) {
	case 0: msgpack_pack_nil(&pk); break;
	case 1: msgpack_pack_uint64(&pk, rand_next(rs) >> rand_below(rs, 64)); break;
	case 2: msgpack_pack_int64(&pk, -(int64_t)(rand_next(rs) >> (1 + rand_below(rs, 63)))); break;
	case 3: msgpack_pack_double(&pk, 0.5); break;
	case 4: {
		size_t n = rand_below(rs, 3) == 0 ? rand_below(rs, sizeof buf) : rand_below(rs, 40);

		memset(buf, 'x', n);
		pk_str(buf, n);
		break;
	}
	case 5: {
		size_t n = rand_below(rs, 300);

		msgpack_pack_bin(&pk, n);
		msgpack_pack_bin_body(&pk, buf, n);
		break;
	}
	case 6: {
		size_t n = rand_below(rs, 20);

		msgpack_pack_ext(&pk, n, (int8_t)rand_below(rs, 100));
		msgpack_pack_ext_body(&pk, buf, n);
		break;
	}
	case 7: msgpack_pack_true(&pk); break;
	case 8: {
		uint32_t n = rand_below(rs, 20);

		msgpack_pack_array(&pk, n);
		for (uint32_t i = 0; i < n; i++)
			pack_random(rs, depth + 1);
		break;
	}
	default: {
		uint32_t n = rand_below(rs, 10);

		msgpack_pack_map(&pk, n);
		for (uint32_t i = 0; i < 2 * n; i++)
			pack_random(rs, depth + 1);
		break;
	}
	}
}

static void
test_reader_vs_msgpack_c(void)
{
	struct rand_state rs;

	rand_seed_with(&rs, 12345);
	for (int iter = 0; iter < 2000; iter++) {
		struct mpr r;
		msgpack_unpacked u;
		size_t off = 0;

		pk_reset();
		pack_random(&rs, 0);
		mpr_init(&r, sb.data, sb.size);
		CU_ASSERT_EQUAL(mpr_skip(&r), 0);
		CU_ASSERT_EQUAL(mpr_left(&r), 0);
		/* msgpack-c agrees on where the object ends */
		msgpack_unpacked_init(&u);
		CU_ASSERT_EQUAL(msgpack_unpack_next(&u, sb.data, sb.size, &off), MSGPACK_UNPACK_SUCCESS);
		CU_ASSERT_EQUAL(off, sb.size);
		msgpack_unpacked_destroy(&u);
		/* and every strict prefix is truncated, never accepted */
		for (size_t cut = 0; cut < sb.size && cut < 64; cut++) {
			mpr_init(&r, sb.data, cut);
			CU_ASSERT_NOT_EQUAL(mpr_skip(&r), 0);
		}
	}
}

/* ---- links (§12) ---------------------------------------------------------------- */

static int
link_round_trip(const struct proto_request *l, int64_t wait_us, struct proto_request *q)
{
	const char *why;

	proto_out_reset(&out);
	CU_ASSERT_EQUAL_FATAL(proto_req_link(&out, 40, wait_us, l), 0);
	return decode_req(q, &why);
}

static void
test_req_links(void)
{
	struct proto_case in[2] = { { .name = "a", .name_len = 1 }, { .name = "b", .name_len = 1 } };
	struct proto_case vals[2] = {
		{ .dir = 1, .value = { .kind = VALUE_BIN, .data = (const uint8_t *)"x", .len = 1 } },
		{ .dir = 1, .value = { .kind = VALUE_CHANREF, .data = (const uint8_t *)"c", .len = 1 } },
	};
	struct proto_request l, q;

	/* OR with a done channel and one named, buffered output */
	l = (struct proto_request){ .op = OP_OR, .done = "d", .done_len = 1, .nouts = 1,
	    .outs = { { .name = "o", .name_len = 1, .cap = 3 } }, .cases = in, .ncases = 2 };
	CU_ASSERT_EQUAL(link_round_trip(&l, PROTO_WAIT_FOREVER, &q), STATUS_OK);
	CU_ASSERT_EQUAL(q.op, OP_OR);
	CU_ASSERT(NAME_IS(q.done, q.done_len, "d"));
	CU_ASSERT_EQUAL(q.nouts, 1);
	CU_ASSERT(NAME_IS(q.outs[0].name, q.outs[0].name_len, "o"));
	CU_ASSERT_EQUAL(q.outs[0].cap, 3);
	CU_ASSERT_EQUAL(q.ncases, 2);
	CU_ASSERT(NAME_IS(q.cases[1].name, q.cases[1].name_len, "b"));

	/* TEE: nil outs means two anonymous outputs; nil done */
	l = (struct proto_request){ .op = OP_TEE, .name = "i", .name_len = 1 };
	CU_ASSERT_EQUAL(link_round_trip(&l, 5000000, &q), STATUS_OK);
	CU_ASSERT_EQUAL(q.wait_us, 5000000);
	CU_ASSERT_PTR_NULL(q.done);
	CU_ASSERT_EQUAL(q.nouts, 2);
	CU_ASSERT_PTR_NULL(q.outs[0].name);
	CU_ASSERT_PTR_NULL(q.outs[1].name);
	CU_ASSERT(NAME_IS(q.name, q.name_len, "i"));

	/* REPEAT values keep their raw encoding (a channel reference included) */
	l = (struct proto_request){ .op = OP_REPEAT, .cases = vals, .ncases = 2 };
	CU_ASSERT_EQUAL(link_round_trip(&l, PROTO_WAIT_FOREVER, &q), STATUS_OK);
	CU_ASSERT_EQUAL(q.ncases, 2);
	CU_ASSERT_EQUAL(q.cases[0].value.kind, VALUE_BIN);
	CU_ASSERT_EQUAL(q.cases[1].value.kind, VALUE_CHANREF);

	l = (struct proto_request){ .op = OP_TAKE, .name = "i", .name_len = 1, .count = 1ULL << 40 };
	CU_ASSERT_EQUAL(link_round_trip(&l, PROTO_WAIT_FOREVER, &q), STATUS_OK);
	CU_ASSERT_EQUAL(q.count, 1ULL << 40);

	l = (struct proto_request){ .op = OP_FAN_OUT, .name = "i", .name_len = 1, .stage = "sha256",
	    .stage_len = 6, .count = 4, .ordered = true };
	CU_ASSERT_EQUAL(link_round_trip(&l, PROTO_WAIT_FOREVER, &q), STATUS_OK);
	CU_ASSERT(NAME_IS(q.stage, q.stage_len, "sha256"));
	CU_ASSERT_EQUAL(q.count, 4);
	CU_ASSERT(q.ordered);

	for (uint64_t op = OP_OR_DONE; op <= OP_FAN_IN; op++) {
		l = (struct proto_request){ .op = op, .name = "i", .name_len = 1, .cases = in, .ncases = 2 };
		CU_ASSERT_EQUAL(link_round_trip(&l, PROTO_WAIT_FOREVER, &q), STATUS_OK);
		CU_ASSERT_EQUAL(q.op, op);
	}
}

static void
test_bad_links(void)
{
	struct proto_case many[9];
	struct proto_case err = { .dir = 1, .value = { .kind = VALUE_ERROR,
	    .data = (const uint8_t *)"e", .len = 1 } };
	struct proto_request l, q;
	const char *why;

	for (int i = 0; i < 9; i++)
		many[i] = (struct proto_case){ .name = "a", .name_len = 1 };
	l = (struct proto_request){ .op = OP_FAN_IN, .cases = many, .ncases = 9 };
	CU_ASSERT_EQUAL(link_round_trip(&l, PROTO_WAIT_FOREVER, &q), STATUS_LIMIT);
	l.ncases = 0;
	CU_ASSERT_EQUAL(link_round_trip(&l, PROTO_WAIT_FOREVER, &q), STATUS_BAD_REQUEST);
	/* a link's wait is its lifetime: 0 makes no sense */
	l = (struct proto_request){ .op = OP_OR_DONE, .name = "i", .name_len = 1 };
	CU_ASSERT_EQUAL(link_round_trip(&l, 0, &q), STATUS_BAD_REQUEST);
	/* TEE needs exactly two outputs */
	l = (struct proto_request){ .op = OP_TEE, .name = "i", .name_len = 1, .nouts = 1 };
	CU_ASSERT_EQUAL(link_round_trip(&l, PROTO_WAIT_FOREVER, &q), STATUS_BAD_REQUEST);
	/* clients may not send error values */
	l = (struct proto_request){ .op = OP_REPEAT, .cases = &err, .ncases = 1 };
	CU_ASSERT_EQUAL(link_round_trip(&l, PROTO_WAIT_FOREVER, &q), STATUS_BAD_REQUEST);
	/* workers 0, an empty stage name */
	l = (struct proto_request){ .op = OP_FAN_OUT, .name = "i", .name_len = 1, .stage = "x",
	    .stage_len = 1, .count = 0 };
	CU_ASSERT_EQUAL(link_round_trip(&l, PROTO_WAIT_FOREVER, &q), STATUS_BAD_REQUEST);
	l.count = 1;
	l.stage_len = 0;
	CU_ASSERT_EQUAL(link_round_trip(&l, PROTO_WAIT_FOREVER, &q), STATUS_BAD_REQUEST);
	/* a reserved name as an output is fine (it must exist); a bad one is not */
	l = (struct proto_request){ .op = OP_OR_DONE, .name = "i", .name_len = 1, .nouts = 1,
	    .outs = { { .name = "bad\x01", .name_len = 4 } } };
	CU_ASSERT_EQUAL(link_round_trip(&l, PROTO_WAIT_FOREVER, &q), STATUS_BAD_REQUEST);
	/* ops 23-31 are unassigned */
	proto_out_reset(&out);
	CU_ASSERT_EQUAL(proto_req_name(&out, 23, 41, PROTO_WAIT_FOREVER, "a", 1), 0);
	CU_ASSERT_EQUAL(decode_req(&q, &why), STATUS_BAD_REQUEST);
	CU_ASSERT_PTR_NULL(proto_op_name(23));
	CU_ASSERT_STRING_EQUAL(proto_op_name(OP_FAN_OUT), "FAN_OUT");
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

static void
test_rep_links(void)
{
	const char *names[] = { "~1", "out" };
	const size_t lens[] = { 2, 3 };
	struct proto_reply r;
	const char *n;
	uint32_t len;

	proto_out_reset(&out);
	CU_ASSERT_EQUAL(proto_rep_started(&out, 7, names, lens, 2), 0);
	CU_ASSERT_EQUAL(decode_rep(OP_TEE, &r), STATUS_OK);
	CU_ASSERT_EQUAL(r.id, 7);
	CU_ASSERT_EQUAL(r.status, STATUS_STARTED);
	CU_ASSERT_EQUAL(r.total, 2);
	CU_ASSERT_EQUAL(proto_list_name(&r.list, &n, &len), 1);
	CU_ASSERT(NAME_IS(n, len, "~1"));
	CU_ASSERT_EQUAL(proto_list_name(&r.list, &n, &len), 1);
	CU_ASSERT(NAME_IS(n, len, "out"));
	CU_ASSERT_EQUAL(proto_list_name(&r.list, &n, &len), 0);
	/* STARTED only answers a link */
	CU_ASSERT_EQUAL(decode_rep(OP_RECV, &r), STATUS_PROTOCOL);
	/* the final OK carries the values sent */
	proto_out_reset(&out);
	CU_ASSERT_EQUAL(proto_rep_uint(&out, 7, 42), 0);
	CU_ASSERT_EQUAL(decode_rep(OP_FAN_OUT, &r), STATUS_OK);
	CU_ASSERT_EQUAL(r.n, 42);
	CU_ASSERT_STRING_EQUAL(status_name(STATUS_STARTED), "STARTED");
}

/* ---- streams (§14) ------------------------------------------------------------- */

static void
test_req_stream(void)
{
	struct proto_case names[3] = {
		{ .name = "a", .name_len = 1 }, { .name = "bb", .name_len = 2 }, { .name = "~c", .name_len = 2 },
	};
	struct proto_request q;
	const char *why;

	proto_out_reset(&out);
	CU_ASSERT_EQUAL(proto_req_stream(&out, 5, 2500, names, 3, 1024), 0);
	CU_ASSERT_EQUAL_FATAL(decode_req(&q, &why), STATUS_OK);
	CU_ASSERT_EQUAL(q.op, OP_STREAM);
	CU_ASSERT_EQUAL(q.id, 5);
	CU_ASSERT_EQUAL(q.wait_us, 2500);
	CU_ASSERT_EQUAL(q.ncases, 3);
	CU_ASSERT(NAME_IS(q.cases[1].name, q.cases[1].name_len, "bb"));
	CU_ASSERT(NAME_IS(q.cases[2].name, q.cases[2].name_len, "~c"));
	CU_ASSERT_EQUAL(q.count, 1024);
	CU_ASSERT_STRING_EQUAL(proto_op_name(OP_STREAM), "STREAM");
	proto_out_reset(&out);
	CU_ASSERT_EQUAL(proto_req_credit(&out, 6, 5, 7), 0);
	CU_ASSERT_EQUAL_FATAL(decode_req(&q, &why), STATUS_OK);
	CU_ASSERT_EQUAL(q.op, OP_CREDIT);
	CU_ASSERT_EQUAL(q.target, 5);
	CU_ASSERT_EQUAL(q.count, 7);
	CU_ASSERT_STRING_EQUAL(proto_op_name(OP_CREDIT), "CREDIT");
}

static void
test_bad_stream(void)
{
	struct proto_case names[9];
	struct proto_request q;
	const char *why;

	for (int i = 0; i < 9; i++)
		names[i] = (struct proto_case){ .name = "a", .name_len = 1 };
	/* credit 0; no channel; more than max_select_cases; a nil or bad name */
	proto_out_reset(&out);
	proto_req_stream(&out, 5, PROTO_WAIT_FOREVER, names, 1, 0);
	CU_ASSERT_EQUAL(decode_req(&q, &why), STATUS_BAD_REQUEST);
	CU_ASSERT_EQUAL(q.id, 5);
	proto_out_reset(&out);
	proto_req_stream(&out, 5, PROTO_WAIT_FOREVER, names, 0, 1);
	CU_ASSERT_EQUAL(decode_req(&q, &why), STATUS_BAD_REQUEST);
	proto_out_reset(&out);
	proto_req_stream(&out, 5, PROTO_WAIT_FOREVER, names, 9, 1);
	CU_ASSERT_EQUAL(decode_req(&q, &why), STATUS_LIMIT);
	names[1] = (struct proto_case){ .name = NULL };
	proto_out_reset(&out);
	proto_req_stream(&out, 5, PROTO_WAIT_FOREVER, names, 2, 1);
	CU_ASSERT_EQUAL(decode_req(&q, &why), STATUS_BAD_REQUEST);
	names[1] = (struct proto_case){ .name = "x\x7f", .name_len = 2 };
	proto_out_reset(&out);
	proto_req_stream(&out, 5, PROTO_WAIT_FOREVER, names, 2, 1);
	CU_ASSERT_EQUAL(decode_req(&q, &why), STATUS_BAD_REQUEST);
	/* names not an array, credit not an integer, wrong arity */
	pk_head(OP_STREAM, 5, 2);
	pk_str("a", 1);
	msgpack_pack_uint8(&pk, 1);
	CU_ASSERT_EQUAL(pk_decode(&q), STATUS_BAD_REQUEST);
	pk_head(OP_STREAM, 5, 2);
	msgpack_pack_array(&pk, 1);
	pk_str("a", 1);
	msgpack_pack_int8(&pk, -1);
	CU_ASSERT_EQUAL(pk_decode(&q), STATUS_BAD_REQUEST);
	pk_head(OP_STREAM, 5, 1);
	msgpack_pack_array(&pk, 1);
	pk_str("a", 1);
	CU_ASSERT_EQUAL(pk_decode(&q), STATUS_BAD_REQUEST);
	/* CREDIT: stream id 0, n 0, a str */
	proto_out_reset(&out);
	proto_req_credit(&out, 6, 0, 1);
	CU_ASSERT_EQUAL(decode_req(&q, &why), STATUS_BAD_REQUEST);
	proto_out_reset(&out);
	proto_req_credit(&out, 6, 5, 0);
	CU_ASSERT_EQUAL(decode_req(&q, &why), STATUS_BAD_REQUEST);
	pk_head(OP_CREDIT, 6, 2);
	msgpack_pack_uint8(&pk, 5);
	pk_str("1", 1);
	CU_ASSERT_EQUAL(pk_decode(&q), STATUS_BAD_REQUEST);
}

static void
test_rep_stream(void)
{
	struct proto_reply r;

	/* a value: interim */
	proto_out_reset(&out);
	CU_ASSERT_EQUAL(proto_rep_select(&out, 5, 2, (const uint8_t *)"\xc4\x02hi", 4, true), 0);
	CU_ASSERT_EQUAL_FATAL(decode_rep(OP_STREAM, &r), STATUS_OK);
	CU_ASSERT(r.interim);
	CU_ASSERT_EQUAL(r.index, 2);
	CU_ASSERT(r.ok);
	CU_ASSERT_EQUAL(r.value.kind, VALUE_BIN);
	CU_ASSERT_EQUAL(r.value.len, 2);
	/* a close report: interim, nil, false */
	proto_out_reset(&out);
	CU_ASSERT_EQUAL(proto_rep_select(&out, 5, 0, NULL, 0, false), 0);
	CU_ASSERT_EQUAL_FATAL(decode_rep(OP_STREAM, &r), STATUS_OK);
	CU_ASSERT(r.interim);
	CU_ASSERT_FALSE(r.ok);
	CU_ASSERT_EQUAL(r.value.kind, VALUE_NONE);
	/* the index of a value is never -1 */
	proto_out_reset(&out);
	CU_ASSERT_EQUAL(proto_rep_select(&out, 5, -1, NULL, 0, true), 0);
	CU_ASSERT_EQUAL(decode_rep(OP_STREAM, &r), STATUS_PROTOCOL);
	/* the final OK: values delivered */
	proto_out_reset(&out);
	CU_ASSERT_EQUAL(proto_rep_uint(&out, 5, 99), 0);
	CU_ASSERT_EQUAL_FATAL(decode_rep(OP_STREAM, &r), STATUS_OK);
	CU_ASSERT_FALSE(r.interim);
	CU_ASSERT_EQUAL(r.n, 99);
	/* two results fit neither */
	proto_out_reset(&out);
	CU_ASSERT_EQUAL(proto_rep_recv(&out, 5, NULL, 0, false), 0);
	CU_ASSERT_EQUAL(decode_rep(OP_STREAM, &r), STATUS_PROTOCOL);
	/* errors are final; NOT_FOUND may carry the channel's index */
	proto_out_reset(&out);
	CU_ASSERT_EQUAL(proto_rep_case_error(&out, 5, STATUS_NOT_FOUND, "channel deleted", 1), 0);
	CU_ASSERT_EQUAL_FATAL(decode_rep(OP_STREAM, &r), STATUS_OK);
	CU_ASSERT_FALSE(r.interim);
	CU_ASSERT_EQUAL(r.index, 1);
	/* CREDIT answers a plain OK */
	proto_out_reset(&out);
	CU_ASSERT_EQUAL(proto_rep_ok(&out, 6), 0);
	CU_ASSERT_EQUAL(decode_rep(OP_CREDIT, &r), STATUS_OK);
	/* STARTED is interim too */
	proto_out_reset(&out);
	CU_ASSERT_EQUAL(proto_rep_started(&out, 7, NULL, NULL, 0), 0);
	CU_ASSERT_EQUAL_FATAL(decode_rep(OP_OR, &r), STATUS_OK);
	CU_ASSERT(r.interim);
}

static void
register_suites(void)
{
	CU_pSuite s = test_suite("codec", setup, teardown);

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	test_add(s, "request HELLO round trip", test_req_hello);
	test_add(s, "one-name requests, PING, CANCEL round trip", test_req_simple);
	test_add(s, "request MAKE round trip and reserved names", test_req_make);
	test_add(s, "request SEND round trip, raw value kept, LIMIT", test_req_send);
	test_add(s, "SEND, RECV, SELECT fast path decodes exactly as the general path", test_req_fast_path);
	test_add(s, "deferred replies: the op bit and WANT (§15)", test_req_deferred);
	test_add(s, "OK to SEND, RECV and STREAM values: fast path decodes as the general path",
	    test_reply_fast_path);
	test_add(s, "request SELECT round trip and case limits", test_req_select);
	test_add(s, "every reply round trip", test_replies);
	test_add(s, "HELLO and INFO maps round trip", test_reply_maps);
	test_add(s, "every truncation point needs more, never garbage", test_truncation);
	test_add(s, "frame length 0 and oversize rejected from the header", test_frame_limits);
	test_add(s, "malformed headers are PROTOCOL", test_bad_header);
	test_add(s, "absurd array/map/str/bin/ext headers and deep nesting", test_absurd_headers);
	test_add(s, "unknown op, arity, types are BAD_REQUEST", test_bad_requests);
	test_add(s, "negative, absurd and mistyped waits", test_bad_waits);
	test_add(s, "channel names: empty, long, control, UTF-8", test_names);
	test_add(s, "malformed replies", test_bad_replies);
	test_add(s, "reader agrees with msgpack-c on random objects", test_reader_vs_msgpack_c);
	test_add(s, "link requests round trip (§12)", test_req_links);
	test_add(s, "bad link requests", test_bad_links);
	test_add(s, "STARTED and the final link reply round trip", test_rep_links);
	test_add(s, "STREAM and CREDIT round trip (§14)", test_req_stream);
	test_add(s, "bad STREAM and CREDIT requests", test_bad_stream);
	test_add(s, "STREAM values, close reports and the final reply", test_rep_stream);
}

int
main(int argc, char **argv)
{
	int rc = test_main(argc, argv, register_suites);

	msgpack_sbuffer_destroy(&sb);
	return rc;
}
