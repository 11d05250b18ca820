/*
 * test_codec_links.c: the codec's link and stream messages, part of
 * test_codec: link requests and their STARTED and final replies
 * (PROTOCOL.md §12), STREAM and CREDIT and a stream's values, close reports
 * and final reply (§14), CLOSE's error and the replies that carry it (§5),
 * each with its bad forms.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <string.h>

#include "codec.h"
#include "testutil.h"
#include "codectest.h"

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
	/* ops 29-31 are unassigned (23-26 are §16's, 27 and 28 §17's CLUSTER_NODES and XSETTLE) */
	proto_out_reset(&out);
	CU_ASSERT_EQUAL(proto_req_name(&out, 29, 41, PROTO_WAIT_FOREVER, "a", 1), 0);
	CU_ASSERT_EQUAL(decode_req(&q, &why), STATUS_BAD_REQUEST);
	CU_ASSERT_PTR_NULL(proto_op_name(29));
	CU_ASSERT_STRING_EQUAL(proto_op_name(OP_FAN_OUT), "FAN_OUT");
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
	/* STARTED only answers a link, or a held SELECT with no names (§17) */
	CU_ASSERT_EQUAL(decode_rep(OP_RECV, &r), STATUS_PROTOCOL);
	CU_ASSERT_EQUAL(decode_rep(OP_SELECT, &r), STATUS_PROTOCOL);
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

/* Adds its tests to test_codec.c's suite s, after the bad input. */
/* ---- close errors (§5 CLOSE) ---------------------------------------------------- */

static void
test_close_err(void)
{
	struct proto_close_err e = { .set = true, .code = UINT64_MAX, .msg = "disk full", .msg_len = 9 };
	struct proto_request q;
	struct proto_reply r;
	const uint8_t *body;
	const char *why;
	size_t len;

	/* CLOSE with an error, and without (the 1-argument form, as of old) */
	proto_out_reset(&out);
	CU_ASSERT_EQUAL(proto_req_close(&out, 9, PROTO_WAIT_FOREVER, "c", 1, &e), 0);
	CU_ASSERT_EQUAL_FATAL(decode_req(&q, &why), STATUS_OK);
	CU_ASSERT(q.op == OP_CLOSE && NAME_IS(q.name, q.name_len, "c"));
	CU_ASSERT(q.close_err.set && q.close_err.code == UINT64_MAX);
	CU_ASSERT(NAME_IS(q.close_err.msg, q.close_err.msg_len, "disk full"));
	proto_out_reset(&out);
	CU_ASSERT_EQUAL(proto_req_close(&out, 9, PROTO_WAIT_FOREVER, "c", 1, NULL), 0);
	body = only_body(&len);
	CU_ASSERT_EQUAL(body[0], 0x94);
	CU_ASSERT_EQUAL_FATAL(decode_req(&q, &why), STATUS_OK);
	CU_ASSERT_FALSE(q.close_err.set);
	/* RECV, SELECT and a STREAM's close report with the error: one result more */
	proto_out_reset(&out);
	CU_ASSERT_EQUAL(proto_rep_closed_err(&out, 5, -1, &e), 0);
	body = only_body(&len);
	CU_ASSERT_EQUAL(proto_reply_nresults(body, len), 3);
	CU_ASSERT_EQUAL_FATAL(decode_rep(OP_RECV, &r), STATUS_OK);
	CU_ASSERT(!r.ok && r.value.kind == VALUE_NONE && r.close_err.set && r.close_err.code == UINT64_MAX);
	CU_ASSERT(NAME_IS(r.close_err.msg, r.close_err.msg_len, "disk full"));
	CU_ASSERT_EQUAL(decode_rep(OP_SELECT, &r), STATUS_PROTOCOL);
	proto_out_reset(&out);
	CU_ASSERT_EQUAL(proto_rep_closed_err(&out, 5, 2, &e), 0);
	CU_ASSERT_EQUAL_FATAL(decode_rep(OP_SELECT, &r), STATUS_OK);
	CU_ASSERT(r.index == 2 && !r.ok && r.close_err.set && !r.interim);
	CU_ASSERT_EQUAL_FATAL(decode_rep(OP_STREAM, &r), STATUS_OK);
	CU_ASSERT(r.index == 2 && !r.ok && r.close_err.set && r.interim);
	CU_ASSERT_EQUAL(decode_rep(OP_RECV, &r), STATUS_PROTOCOL);
	/* the plain forms carry none */
	proto_out_reset(&out);
	CU_ASSERT_EQUAL(proto_rep_recv(&out, 5, NULL, 0, false), 0);
	CU_ASSERT_EQUAL_FATAL(decode_rep(OP_RECV, &r), STATUS_OK);
	CU_ASSERT_FALSE(r.close_err.set);
}

/* An error with ok true, with a value, not [code, str], or at SELECT's index -1: malformed. */
static void
test_bad_close_err_replies(void)
{
	static const uint8_t ok_true[] = { 0x95, 0x05, 0x00, 0xc0, 0xc3, 0x92, 0x01, 0xa1, 'x' };
	static const uint8_t value[] = { 0x95, 0x05, 0x00, 0xc4, 0x01, 'v', 0xc2, 0x92, 0x01, 0xa1, 'x' };
	static const uint8_t code_str[] = { 0x95, 0x05, 0x00, 0xc0, 0xc2, 0x92, 0xa1, '1', 0xa1, 'x' };
	static const uint8_t code_only[] = { 0x95, 0x05, 0x00, 0xc0, 0xc2, 0x91, 0x01 };
	static const uint8_t good[] = { 0x95, 0x05, 0x00, 0xc0, 0xc2, 0x92, 0x01, 0xa1, 'x' };
	static const uint8_t sel_default[] = { 0x96, 0x05, 0x00, 0xff, 0xc0, 0xc2, 0x92, 0x01, 0xa1, 'x' };
	struct proto_reply r;
	const char *why;

	CU_ASSERT_EQUAL(proto_decode_reply(good, sizeof good, OP_RECV, &r, &why), STATUS_OK);
	CU_ASSERT(r.close_err.set && r.close_err.code == 1);
	CU_ASSERT_EQUAL(proto_decode_reply(ok_true, sizeof ok_true, OP_RECV, &r, &why), STATUS_PROTOCOL);
	CU_ASSERT_EQUAL(proto_decode_reply(value, sizeof value, OP_RECV, &r, &why), STATUS_PROTOCOL);
	CU_ASSERT_EQUAL(proto_decode_reply(code_str, sizeof code_str, OP_RECV, &r, &why), STATUS_PROTOCOL);
	CU_ASSERT_EQUAL(proto_decode_reply(code_only, sizeof code_only, OP_RECV, &r, &why), STATUS_PROTOCOL);
	CU_ASSERT_EQUAL(proto_decode_reply(sel_default, sizeof sel_default, OP_SELECT, &r, &why),
	    STATUS_PROTOCOL);
}

void
register_codec_links(CU_pSuite s)
{
	test_add(s, "link requests round trip (§12)", test_req_links);
	test_add(s, "bad link requests", test_bad_links);
	test_add(s, "STARTED and the final link reply round trip", test_rep_links);
	test_add(s, "STREAM and CREDIT round trip (§14)", test_req_stream);
	test_add(s, "bad STREAM and CREDIT requests", test_bad_stream);
	test_add(s, "STREAM values, close reports and the final reply", test_rep_stream);
	test_add(s, "CLOSE's error and the receive replies that carry it (§5)", test_close_err);
	test_add(s, "malformed close errors in replies", test_bad_close_err_replies);
}
