/*
 * test_codec_bad_input.c: the codec against input it must refuse, part of
 * test_codec: every truncation point of a stream of frames, a queue written
 * in part, frame lengths refused from the header alone, malformed headers,
 * absurd sizes and nesting, bad requests, waits, names and replies
 * (PROTOCOL.md §9), and the reader held to msgpack-c on random objects.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "mpread.h"
#include "rand.h"
#include "testutil.h"
#include "codectest.h"

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

/*
 * A queue written in part (a send that took k bytes): what is left is the
 * stream from byte k on, and a frame appended after it (deferred, as a
 * canceller's CANCEL is) follows it whole.
 */
static void
test_consume(void)
{
	struct proto_out one;
	uint8_t *whole;
	size_t total;

	proto_out_init(&one);
	CU_ASSERT_EQUAL_FATAL(proto_req_cancel(&one, 10, 5), 0);
	CU_ASSERT_EQUAL_FATAL(proto_req_defer_last(&one), 0);
	build_stream();
	total = proto_out_len(&out);
	whole = malloc(total);
	CU_ASSERT_FATAL(whole != NULL);
	memcpy(whole, proto_out_data(&out), total);
	for (size_t k = 0; k <= total + 1; k++) {
		size_t left = k < total ? total - k : 0;

		build_stream();
		proto_out_consume(&out, k);
		CU_ASSERT_EQUAL_FATAL(proto_out_len(&out), left);
		CU_ASSERT(memcmp(proto_out_data(&out), whole + total - left, left) == 0);
		CU_ASSERT_EQUAL(proto_req_cancel(&out, 10, 5), 0);
		CU_ASSERT_EQUAL(proto_req_defer_last(&out), 0);
		CU_ASSERT_EQUAL_FATAL(proto_out_len(&out), left + proto_out_len(&one));
		CU_ASSERT(memcmp(proto_out_data(&out) + left, proto_out_data(&one), proto_out_len(&one)) == 0);
	}
	free(whole);
	proto_out_destroy(&one);
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
msgpack_packer pk;

/* The packer's buffer: made before the first test runs, freed after the last (test_codec.c). */
void
pk_init(void)
{
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
}

void
pk_free(void)
{
	msgpack_sbuffer_destroy(&sb);
}

static void
pk_reset(void)
{
	msgpack_sbuffer_clear(&sb);
}

int
pk_decode(struct proto_request *q)
{
	return decode_bytes(sb.data, sb.size, q);
}

void
pk_head(uint64_t op, uint64_t id, size_t nargs)
{
	pk_reset();
	msgpack_pack_array(&pk, 3 + nargs);
	msgpack_pack_uint64(&pk, op);
	msgpack_pack_uint64(&pk, id);
	msgpack_pack_nil(&pk);
}

void
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
	/* hold's firm (§17): at most the cases, an integer, and only with hold; one more argument is too many */
	for (int k = 0; k < 5; k++) {
		pk_head(OP_SELECT, 9, k == 4 ? 5 : 4);
		msgpack_pack_array(&pk, 1);
		msgpack_pack_array(&pk, 2);
		msgpack_pack_int(&pk, 0);
		pk_str("a", 1);
		msgpack_pack_false(&pk);
		if (k == 2)
			msgpack_pack_false(&pk);	/* firm 1 without hold */
		else
			msgpack_pack_true(&pk);
		if (k == 0)
			msgpack_pack_int(&pk, 2);	/* more than the cases */
		else if (k == 1)
			msgpack_pack_true(&pk);
		else
			msgpack_pack_int(&pk, 1);
		if (k == 4)
			msgpack_pack_int(&pk, 1);
		if (k == 3) {
			/* hold true, firm 1: the one good form */
			CU_ASSERT_EQUAL(pk_decode(&q), STATUS_OK);
			CU_ASSERT(q.hold && q.firm == 1);
		} else {
			CU_ASSERT_EQUAL(pk_decode(&q), STATUS_BAD_REQUEST);
		}
	}

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

/* Adds its tests to test_codec.c's suite s, after the reply round trips. */
void
register_codec_bad_input(CU_pSuite s)
{
	test_add(s, "every truncation point needs more, never garbage", test_truncation);
	test_add(s, "a queue written in part keeps the rest, then whole frames", test_consume);
	test_add(s, "frame length 0 and oversize rejected from the header", test_frame_limits);
	test_add(s, "malformed headers are PROTOCOL", test_bad_header);
	test_add(s, "absurd array/map/str/bin/ext headers and deep nesting", test_absurd_headers);
	test_add(s, "unknown op, arity, types are BAD_REQUEST", test_bad_requests);
	test_add(s, "negative, absurd and mistyped waits", test_bad_waits);
	test_add(s, "channel names: empty, long, control, UTF-8", test_names);
	test_add(s, "malformed replies", test_bad_replies);
	test_add(s, "reader agrees with msgpack-c on random objects", test_reader_vs_msgpack_c);
}
