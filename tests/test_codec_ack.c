/*
 * test_codec_ack.c: the codec's ack-channel messages (PROTOCOL.md §16),
 * part of test_codec: MAKE's delivery options, ACK, NACK, TOUCH and
 * INFLIGHT requests, tagged RECV, SELECT and STREAM replies, INFO's extra
 * keys, each with its bad forms.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <string.h>

#include "codec.h"
#include "testutil.h"
#include "codectest.h"

static void
pk_cstr(const char *s)
{
	pk_str(s, strlen(s));
}

static void
test_req_make_opts(void)
{
	struct proto_delivery d = { .on = true, .ack_wait_us = 30000000, .max_deliver = 7,
	    .max_unacked = 9, .max_ack_pending = 11, .dead_letter = "dl", .dead_letter_len = 2 };
	struct proto_request q;
	const char *why;

	proto_out_reset(&out);
	CU_ASSERT_EQUAL_FATAL(proto_req_make_opts(&out, 3, "jobs", 4, 16, &d), 0);
	CU_ASSERT_EQUAL_FATAL(decode_req(&q, &why), STATUS_OK);
	CU_ASSERT(q.dlv.on);
	CU_ASSERT_EQUAL(q.dlv.ack_wait_us, 30000000);
	CU_ASSERT_EQUAL(q.dlv.max_deliver, 7);
	CU_ASSERT_EQUAL(q.dlv.max_unacked, 9);
	CU_ASSERT_EQUAL(q.dlv.max_ack_pending, 11);
	CU_ASSERT(NAME_IS(q.dlv.dead_letter, q.dlv.dead_letter_len, "dl"));
	CU_ASSERT_EQUAL(q.cap, 16);
	/* without options: the plain two-argument MAKE, dlv off */
	d.on = false;
	proto_out_reset(&out);
	CU_ASSERT_EQUAL_FATAL(proto_req_make_opts(&out, 3, "jobs", 4, 16, &d), 0);
	CU_ASSERT_EQUAL_FATAL(decode_req(&q, &why), STATUS_OK);
	CU_ASSERT_FALSE(q.dlv.on);
	/* only ack_wait given: the defaults */
	pk_head(OP_MAKE, 4, 3);
	pk_cstr("j");
	msgpack_pack_uint8(&pk, 0);
	msgpack_pack_map(&pk, 1);
	pk_cstr("ack_wait");
	msgpack_pack_uint32(&pk, 1000);
	CU_ASSERT_EQUAL_FATAL(pk_decode(&q), STATUS_OK);
	CU_ASSERT(q.dlv.on && q.dlv.ack_wait_us == 1000);
	CU_ASSERT_EQUAL(q.dlv.max_deliver, PROTO_MAX_DELIVER_DEFAULT);
	CU_ASSERT_EQUAL(q.dlv.max_unacked, PROTO_MAX_UNACKED_DEFAULT);
	CU_ASSERT_EQUAL(q.dlv.max_ack_pending, PROTO_MAX_ACK_PENDING_DEFAULT);
	CU_ASSERT_PTR_NULL(q.dlv.dead_letter);
	/* nil as the third argument: a plain channel */
	pk_head(OP_MAKE, 4, 3);
	pk_cstr("j");
	msgpack_pack_uint8(&pk, 0);
	msgpack_pack_nil(&pk);
	CU_ASSERT_EQUAL_FATAL(pk_decode(&q), STATUS_OK);
	CU_ASSERT_FALSE(q.dlv.on);
}

/* MAKE "j" 0 with a one-key options map: key, then the value packed by the caller. */
static void
make_with(const char *key)
{
	pk_head(OP_MAKE, 5, 3);
	pk_cstr("j");
	msgpack_pack_uint8(&pk, 0);
	msgpack_pack_map(&pk, 2);
	pk_cstr("ack_wait");
	msgpack_pack_uint32(&pk, 1000);
	pk_cstr(key);
}

static void
test_bad_make_opts(void)
{
	struct proto_request q;

	make_with("prefetch");
	msgpack_pack_uint8(&pk, 1);
	CU_ASSERT_EQUAL(pk_decode(&q), STATUS_BAD_REQUEST);
	make_with("max_deliver");
	msgpack_pack_int8(&pk, -1);
	CU_ASSERT_EQUAL(pk_decode(&q), STATUS_BAD_REQUEST);
	make_with("max_unacked");
	msgpack_pack_uint64(&pk, (uint64_t)UINT32_MAX + 1);
	CU_ASSERT_EQUAL(pk_decode(&q), STATUS_BAD_REQUEST);
	make_with("max_ack_pending");
	msgpack_pack_uint64(&pk, (uint64_t)UINT32_MAX + 1);
	CU_ASSERT_EQUAL(pk_decode(&q), STATUS_BAD_REQUEST);
	make_with("max_ack_pending");
	msgpack_pack_int8(&pk, -1);
	CU_ASSERT_EQUAL(pk_decode(&q), STATUS_BAD_REQUEST);
	make_with("dead_letter");
	msgpack_pack_uint8(&pk, 1);
	CU_ASSERT_EQUAL(pk_decode(&q), STATUS_BAD_REQUEST);
	make_with("dead_letter");	/* itself */
	pk_cstr("j");
	CU_ASSERT_EQUAL(pk_decode(&q), STATUS_BAD_REQUEST);
	/* ack_wait 0, missing, too large; not a map; anonymous; four arguments */
	pk_head(OP_MAKE, 5, 3);
	pk_cstr("j");
	msgpack_pack_uint8(&pk, 0);
	msgpack_pack_map(&pk, 1);
	pk_cstr("ack_wait");
	msgpack_pack_uint8(&pk, 0);
	CU_ASSERT_EQUAL(pk_decode(&q), STATUS_BAD_REQUEST);
	pk_head(OP_MAKE, 5, 3);
	pk_cstr("j");
	msgpack_pack_uint8(&pk, 0);
	msgpack_pack_map(&pk, 1);
	pk_cstr("max_deliver");
	msgpack_pack_uint8(&pk, 3);
	CU_ASSERT_EQUAL(pk_decode(&q), STATUS_BAD_REQUEST);
	pk_head(OP_MAKE, 5, 3);
	pk_cstr("j");
	msgpack_pack_uint8(&pk, 0);
	msgpack_pack_map(&pk, 1);
	pk_cstr("ack_wait");
	msgpack_pack_uint64(&pk, (uint64_t)PROTO_WAIT_MAX + 1);
	CU_ASSERT_EQUAL(pk_decode(&q), STATUS_BAD_REQUEST);
	pk_head(OP_MAKE, 5, 3);
	pk_cstr("j");
	msgpack_pack_uint8(&pk, 0);
	msgpack_pack_array(&pk, 0);
	CU_ASSERT_EQUAL(pk_decode(&q), STATUS_BAD_REQUEST);
	pk_head(OP_MAKE, 5, 3);
	msgpack_pack_nil(&pk);
	msgpack_pack_uint8(&pk, 0);
	msgpack_pack_map(&pk, 1);
	pk_cstr("ack_wait");
	msgpack_pack_uint8(&pk, 9);
	CU_ASSERT_EQUAL(pk_decode(&q), STATUS_BAD_REQUEST);
	pk_head(OP_MAKE, 5, 4);
	pk_cstr("j");
	msgpack_pack_uint8(&pk, 0);
	msgpack_pack_nil(&pk);
	msgpack_pack_nil(&pk);
	CU_ASSERT_EQUAL(pk_decode(&q), STATUS_BAD_REQUEST);
}

static void
test_req_ack_nack_touch(void)
{
	uint64_t tags[3] = { 1, 300, UINT64_MAX }, tag;
	struct proto_request q;
	struct proto_list l;
	const char *why;
	int i = 0;

	proto_out_reset(&out);
	CU_ASSERT_EQUAL_FATAL(proto_req_ack(&out, 8, tags, 3), 0);
	CU_ASSERT_EQUAL(proto_req_defer_last(&out), 0);	/* ACK takes the bit (§15) */
	CU_ASSERT_EQUAL_FATAL(decode_req(&q, &why), STATUS_OK);
	CU_ASSERT_EQUAL(q.op, OP_ACK);
	CU_ASSERT(q.deferred);
	CU_ASSERT_EQUAL(q.tags.left, 3);
	l = q.tags;
	while (proto_list_tag(&l, &tag) == 1)
		CU_ASSERT_EQUAL(tag, tags[i++]);
	CU_ASSERT_EQUAL(i, 3);
	proto_out_reset(&out);
	CU_ASSERT_EQUAL_FATAL(proto_req_nack(&out, 9, 7, 250000), 0);
	CU_ASSERT_EQUAL(proto_req_defer_last(&out), -1);	/* NACK does not */
	CU_ASSERT_EQUAL_FATAL(decode_req(&q, &why), STATUS_OK);
	CU_ASSERT(q.op == OP_NACK && q.tag == 7 && q.delay_us == 250000);
	proto_out_reset(&out);
	CU_ASSERT_EQUAL_FATAL(proto_req_touch(&out, 10, 7), 0);
	CU_ASSERT_EQUAL_FATAL(decode_req(&q, &why), STATUS_OK);
	CU_ASSERT(q.op == OP_TOUCH && q.tag == 7);
	proto_out_reset(&out);
	CU_ASSERT_EQUAL_FATAL(proto_req_inflight(&out, 11, "jobs", 4, 5), 0);
	CU_ASSERT_EQUAL_FATAL(decode_req(&q, &why), STATUS_OK);
	CU_ASSERT(q.op == OP_INFLIGHT && q.limit == 5 && NAME_IS(q.name, q.name_len, "jobs"));
	CU_ASSERT_STRING_EQUAL(proto_op_name(OP_ACK), "ACK");
	CU_ASSERT_STRING_EQUAL(proto_op_name(OP_INFLIGHT), "INFLIGHT");
	/* bad: no tags, tag 0, a str tag, NACK delay too large or negative, TOUCH of 0 */
	pk_head(OP_ACK, 12, 1);
	msgpack_pack_array(&pk, 0);
	CU_ASSERT_EQUAL(pk_decode(&q), STATUS_BAD_REQUEST);
	pk_head(OP_ACK, 12, 1);
	msgpack_pack_array(&pk, 2);
	msgpack_pack_uint8(&pk, 1);
	msgpack_pack_uint8(&pk, 0);
	CU_ASSERT_EQUAL(pk_decode(&q), STATUS_BAD_REQUEST);
	pk_head(OP_ACK, 12, 1);
	msgpack_pack_array(&pk, 1);
	pk_cstr("7");
	CU_ASSERT_EQUAL(pk_decode(&q), STATUS_BAD_REQUEST);
	pk_head(OP_ACK, 12, 1);
	msgpack_pack_uint8(&pk, 7);	/* not an array */
	CU_ASSERT_EQUAL(pk_decode(&q), STATUS_BAD_REQUEST);
	pk_head(OP_NACK, 13, 2);
	msgpack_pack_uint8(&pk, 7);
	msgpack_pack_uint64(&pk, (uint64_t)PROTO_WAIT_MAX + 1);
	CU_ASSERT_EQUAL(pk_decode(&q), STATUS_BAD_REQUEST);
	pk_head(OP_NACK, 13, 2);
	msgpack_pack_uint8(&pk, 7);
	msgpack_pack_int8(&pk, -1);
	CU_ASSERT_EQUAL(pk_decode(&q), STATUS_BAD_REQUEST);
	pk_head(OP_TOUCH, 14, 1);
	msgpack_pack_uint8(&pk, 0);
	CU_ASSERT_EQUAL(pk_decode(&q), STATUS_BAD_REQUEST);
	pk_head(OP_TOUCH, 14, 2);	/* arity */
	msgpack_pack_uint8(&pk, 1);
	msgpack_pack_uint8(&pk, 1);
	CU_ASSERT_EQUAL(pk_decode(&q), STATUS_BAD_REQUEST);
}

/* SELECT's hold and XSETTLE (node-to-node, PROTOCOL.md §17). */
static void
test_req_hold_xsettle(void)
{
	struct proto_case sc[2] = { { .dir = 0, .name = "a", .name_len = 1 },
	    { .dir = 0, .name = "b", .name_len = 1 } };
	struct proto_request q;
	const char *why;

	proto_out_reset(&out);
	CU_ASSERT_EQUAL_FATAL(proto_req_select_hold(&out, 3, 500, sc, 2, true, true, 0), 0);
	CU_ASSERT_EQUAL_FATAL(decode_req(&q, &why), STATUS_OK);
	CU_ASSERT(q.op == OP_SELECT && q.ncases == 2 && q.has_default && q.hold && !q.hold_parked);
	/* hold 2: held, and STARTED (no names) when it waits */
	proto_out_reset(&out);
	CU_ASSERT_EQUAL_FATAL(proto_req_select_hold(&out, 3, 500, sc, 2, false, PROTO_HOLD_PARKED, 0), 0);
	CU_ASSERT_EQUAL_FATAL(decode_req(&q, &why), STATUS_OK);
	CU_ASSERT(q.op == OP_SELECT && q.hold && q.hold_parked && q.firm == 0);
	/* firm (a seventh element): the first firm cases fire for good at the poll */
	proto_out_reset(&out);
	CU_ASSERT_EQUAL_FATAL(proto_req_select_hold(&out, 3, 500, sc, 2, false, PROTO_HOLD_PARKED, 2), 0);
	CU_ASSERT_EQUAL_FATAL(decode_req(&q, &why), STATUS_OK);
	CU_ASSERT(q.op == OP_SELECT && q.hold && q.hold_parked && q.firm == 2);
	proto_out_reset(&out);
	CU_ASSERT_EQUAL_FATAL(proto_rep_started(&out, 3, NULL, NULL, 0), 0);
	{
		struct proto_reply r;

		CU_ASSERT_EQUAL(proto_decode_reply(proto_out_data(&out) + 4, proto_out_len(&out) - 4,
		    OP_SELECT, &r, &why), STATUS_OK);
		CU_ASSERT(r.id == 3 && r.status == STATUS_STARTED && r.interim && r.total == 0);
	}
	proto_out_reset(&out);
	CU_ASSERT_EQUAL_FATAL(proto_req_select(&out, 4, 500, sc, 2, false), 0);
	CU_ASSERT_EQUAL_FATAL(decode_req(&q, &why), STATUS_OK);
	CU_ASSERT(q.op == OP_SELECT && !q.hold);
	proto_out_reset(&out);
	CU_ASSERT_EQUAL_FATAL(proto_req_xsettle(&out, 5, 3, true), 0);
	CU_ASSERT_EQUAL_FATAL(decode_req(&q, &why), STATUS_OK);
	CU_ASSERT(q.op == OP_XSETTLE && q.target == 3 && q.keep);
	proto_out_reset(&out);
	CU_ASSERT_EQUAL_FATAL(proto_req_xsettle(&out, 6, 3, false), 0);
	CU_ASSERT_EQUAL_FATAL(decode_req(&q, &why), STATUS_OK);
	CU_ASSERT(q.op == OP_XSETTLE && !q.keep);
	CU_ASSERT_STRING_EQUAL(proto_op_name(OP_XSETTLE), "XSETTLE");
	/* bad: target 0, keep not a boolean, hold not a boolean */
	pk_head(OP_XSETTLE, 7, 2);
	msgpack_pack_uint8(&pk, 0);
	msgpack_pack_true(&pk);
	CU_ASSERT_EQUAL(pk_decode(&q), STATUS_BAD_REQUEST);
	pk_head(OP_XSETTLE, 7, 2);
	msgpack_pack_uint8(&pk, 3);
	msgpack_pack_uint8(&pk, 1);
	CU_ASSERT_EQUAL(pk_decode(&q), STATUS_BAD_REQUEST);
	pk_head(OP_SELECT, 8, 3);
	msgpack_pack_array(&pk, 1);
	msgpack_pack_array(&pk, 2);
	msgpack_pack_uint8(&pk, 0);
	pk_cstr("a");
	msgpack_pack_false(&pk);
	msgpack_pack_uint8(&pk, 1);
	CU_ASSERT_EQUAL(pk_decode(&q), STATUS_BAD_REQUEST);
	/* HELLO of a node: caps node, kept for WAITERS' home; an empty name is bad */
	proto_out_reset(&out);
	CU_ASSERT_EQUAL_FATAL(proto_req_hello_node(&out, 9, "chand-node", NULL, "n1"), 0);
	CU_ASSERT_EQUAL_FATAL(decode_req(&q, &why), STATUS_OK);
	CU_ASSERT(q.op == OP_HELLO && q.moved && q.node_len == 2 && memcmp(q.node, "n1", 2) == 0);
	proto_out_reset(&out);
	CU_ASSERT_EQUAL_FATAL(proto_req_hello_node(&out, 9, "chand-node", NULL, ""), 0);
	CU_ASSERT_EQUAL(decode_req(&q, &why), STATUS_BAD_REQUEST);
}

static void
test_rep_tagged(void)
{
	struct proto_chan_info i = { .name = "j", .name_len = 1, .len = 2, .cap = 4, .ack_wait = 5,
	    .inflight = 1, .redelivered = 3, .dead_lettered = 4 };
	struct proto_reply r;

	proto_out_reset(&out);
	CU_ASSERT_EQUAL_FATAL(proto_rep_recv_ack(&out, 5, (const uint8_t *)"\xc4\x01x", 3, 9, 2), 0);
	CU_ASSERT_EQUAL_FATAL(decode_rep(OP_RECV, &r), STATUS_OK);
	CU_ASSERT(r.ok && r.tag == 9 && r.count == 2 && r.value.len == 1);
	/* a plain reply has no tag */
	proto_out_reset(&out);
	CU_ASSERT_EQUAL_FATAL(proto_rep_recv(&out, 5, (const uint8_t *)"\xc4\x01x", 3, true), 0);
	CU_ASSERT_EQUAL_FATAL(decode_rep(OP_RECV, &r), STATUS_OK);
	CU_ASSERT_EQUAL(r.tag, 0);
	proto_out_reset(&out);
	CU_ASSERT_EQUAL_FATAL(proto_rep_select_ack(&out, 6, 1, (const uint8_t *)"\xc4\x01y", 3, 10, 1), 0);
	CU_ASSERT_EQUAL_FATAL(decode_rep(OP_SELECT, &r), STATUS_OK);
	CU_ASSERT(r.index == 1 && r.tag == 10 && r.count == 1);
	CU_ASSERT_EQUAL_FATAL(decode_rep(OP_STREAM, &r), STATUS_OK);
	CU_ASSERT(r.interim && r.index == 1 && r.tag == 10);
	/* a tag must come with ok true, and tag and count of 1 or more */
	proto_out_reset(&out);
	CU_ASSERT_EQUAL_FATAL(proto_rep_recv_ack(&out, 5, NULL, 0, 0, 1), 0);
	CU_ASSERT_EQUAL(decode_rep(OP_RECV, &r), STATUS_PROTOCOL);
	/* ACK's result, INFO's extra keys */
	proto_out_reset(&out);
	CU_ASSERT_EQUAL_FATAL(proto_rep_uint(&out, 7, 3), 0);
	CU_ASSERT_EQUAL_FATAL(decode_rep(OP_ACK, &r), STATUS_OK);
	CU_ASSERT_EQUAL(r.n, 3);
	proto_out_reset(&out);
	CU_ASSERT_EQUAL_FATAL(proto_rep_info(&out, 8, &i), 0);
	CU_ASSERT_EQUAL_FATAL(decode_rep(OP_INFO, &r), STATUS_OK);
	CU_ASSERT(r.info.ack_wait == 5 && r.info.inflight == 1 && r.info.redelivered == 3 &&
	    r.info.dead_lettered == 4 && r.info.len == 2);
	i.ack_wait = 0;		/* a plain channel's map is the old one */
	proto_out_reset(&out);
	CU_ASSERT_EQUAL_FATAL(proto_rep_info(&out, 8, &i), 0);
	CU_ASSERT_EQUAL_FATAL(decode_rep(OP_INFO, &r), STATUS_OK);
	CU_ASSERT(r.info.inflight == 0 && r.info.redelivered == 0);
	CU_ASSERT_FALSE(r.info.durable);
	i.durable = true;	/* a durable channel's two keys */
	i.journal_bytes = 12345;
	proto_out_reset(&out);
	CU_ASSERT_EQUAL_FATAL(proto_rep_info(&out, 8, &i), 0);
	CU_ASSERT_EQUAL_FATAL(decode_rep(OP_INFO, &r), STATUS_OK);
	CU_ASSERT(r.info.durable && r.info.journal_bytes == 12345);
}

/* MAKE's durable option (§16): alone a durable plain channel, with ack_wait both; STORAGE's name. */
static void
test_make_durable(void)
{
	struct proto_delivery d = { .durable = true };
	struct proto_request q;
	const char *why;

	proto_out_reset(&out);
	CU_ASSERT_EQUAL_FATAL(proto_req_make_opts(&out, 3, "jobs", 4, 16, &d), 0);
	CU_ASSERT_EQUAL_FATAL(decode_req(&q, &why), STATUS_OK);
	CU_ASSERT(q.dlv.durable && !q.dlv.on);
	d.on = true;
	d.ack_wait_us = 1000;
	proto_out_reset(&out);
	CU_ASSERT_EQUAL_FATAL(proto_req_make_opts(&out, 3, "jobs", 4, 16, &d), 0);
	CU_ASSERT_EQUAL_FATAL(decode_req(&q, &why), STATUS_OK);
	CU_ASSERT(q.dlv.durable && q.dlv.on && q.dlv.ack_wait_us == 1000);
	/* durable must be a bool; an ack option without ack_wait is still refused */
	pk_head(OP_MAKE, 4, 3);
	pk_cstr("j");
	msgpack_pack_uint8(&pk, 1);
	msgpack_pack_map(&pk, 1);
	pk_cstr("durable");
	msgpack_pack_uint8(&pk, 1);
	CU_ASSERT_EQUAL(pk_decode(&q), STATUS_BAD_REQUEST);
	pk_head(OP_MAKE, 4, 3);
	pk_cstr("j");
	msgpack_pack_uint8(&pk, 1);
	msgpack_pack_map(&pk, 2);
	pk_cstr("durable");
	msgpack_pack_true(&pk);
	pk_cstr("max_deliver");
	msgpack_pack_uint8(&pk, 3);
	CU_ASSERT_EQUAL(pk_decode(&q), STATUS_BAD_REQUEST);
	CU_ASSERT_STRING_EQUAL(status_name(STATUS_STORAGE), "STORAGE");
	CU_ASSERT_EQUAL(STATUS_STORAGE, 14);
}

/* Adds its tests to test_codec.c's suite s, after the links'. */
void
register_codec_ack(CU_pSuite s)
{
	test_add(s, "MAKE with delivery options round trips (§16)", test_req_make_opts);
	test_add(s, "bad delivery options", test_bad_make_opts);
	test_add(s, "ACK, NACK, TOUCH, INFLIGHT and their bad forms", test_req_ack_nack_touch);
	test_add(s, "tagged replies, ACK's result, INFO's extra keys", test_rep_tagged);
	test_add(s, "SELECT's hold and XSETTLE (§17)", test_req_hold_xsettle);
	test_add(s, "MAKE's durable option, STORAGE (§16)", test_make_durable);
}
