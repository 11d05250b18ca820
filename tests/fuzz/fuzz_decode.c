/*
 * fuzz_decode.c: libFuzzer harness for the wire decoder (proto/mpread.c,
 * proto/codec_request.c, codec_reply.c). See tests/fuzz/README.md.
 *
 * The input is treated two ways:
 *   1. as a byte stream, split into frames by proto_frame_split (max_frame
 *      65536), every frame body then decoded as below;
 *   2. as one frame body on its own (so that mutations need not keep the
 *      length prefixes right to reach the decoders).
 * Each body goes through proto_decode_request, proto_reply_header and
 * proto_decode_reply (every op, and one past OP_MAX), and mpr_skip is compared with msgpack-c;
 * the fast paths of proto_decode_request and proto_decode_reply must agree
 * with their general paths.
 * Every invariant violation is __builtin_trap().
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "codec_int.h"
#include "fuzzdecode.h"
#include "mpread.h"
#include "status.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

const struct proto_limits fuzz_limits = { .max_value = 4096, .max_select_cases = NCASES };

/* ---- helpers ---------------------------------------------------------------- */

/* p[0..len) lies inside body[0..blen) (a NULL slice must be empty). */
bool
inside(const void *p, size_t len, const uint8_t *body, size_t blen)
{
	uintptr_t s = (uintptr_t)p, b = (uintptr_t)body;

	if (p == NULL)
		return len == 0;
	return s >= b && s - b <= blen && len <= blen - (s - b);
}

bool
same_bytes(const void *a, size_t alen, const void *b, size_t blen)
{
	if (alen != blen)
		return false;
	if ((a == NULL) != (b == NULL))
		return false;
	return alen == 0 || memcmp(a, b, alen) == 0;
}

/* Names: NULL (nil) and a str are different things. */
bool
same_name(const char *a, uint32_t alen, const char *b, uint32_t blen)
{
	if ((a == NULL) != (b == NULL))
		return false;
	return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

/* Like same_name, but NULL and "" are both "empty" (encoders write "" for NULL). */
bool
same_str(const char *a, uint32_t alen, const char *b, uint32_t blen)
{
	return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

bool
same_value(const struct proto_value *a, const struct proto_value *b)
{
	if (a->kind != b->kind)
		return false;
	if (a->kind == VALUE_NONE)
		return true;
	return a->len == b->len && (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

bool
value_inside(const struct proto_value *v, const uint8_t *body, size_t blen)
{
	if (v->kind == VALUE_NONE)
		return v->raw == NULL && v->data == NULL && v->len == 0;
	return inside(v->raw, v->raw_len, body, blen) && inside(v->data, v->len, body, blen) &&
	    inside(v->data, v->len, v->raw, v->raw_len);
}

/* value.raw parses on its own to the same value. */
void
check_value_reparse(const struct proto_value *v)
{
	struct proto_value w;
	const char *why = NULL;

	if (v->kind == VALUE_NONE)
		return;
	CHECK(proto_value_parse(v->raw, v->raw_len, &w, &why) == STATUS_OK);
	CHECK(w.kind == v->kind && w.raw == v->raw && w.raw_len == v->raw_len);
	CHECK(w.data == v->data && w.len == v->len);
}

/* A NUL-terminated copy, or NULL when s holds a NUL (the C-string encoders cannot say it). */
char *
cstr_dup(const char *s, size_t len)
{
	char *c;

	if (len && memchr(s, 0, len))
		return NULL;
	c = malloc(len + 1);
	CHECK(c != NULL);
	if (len)
		memcpy(c, s, len);
	c[len] = 0;
	return c;
}

/* The body of the one frame in o, which must hold exactly one frame. */
const uint8_t *
only_frame(const struct proto_out *o, size_t *blen)
{
	const uint8_t *body = NULL;
	const char *why = NULL;
	long n = proto_frame_split(proto_out_data(o), proto_out_len(o), SIZE_MAX, &body, blen, &why);

	CHECK(n > 0 && (size_t)n == proto_out_len(o));
	CHECK(body == proto_out_data(o) + PROTO_FRAME_HDR && *blen == proto_out_len(o) - PROTO_FRAME_HDR);
	return body;
}

bool
same_close_err(const struct proto_close_err *a, const struct proto_close_err *b)
{
	return a->set == b->set && (!a->set || (a->code == b->code &&
	    same_str(a->msg, a->msg_len, b->msg, b->msg_len)));
}

/* The same value at the same place in the frame. */
bool
same_extent(const struct proto_value *a, const struct proto_value *b)
{
	return a->kind == b->kind && a->raw == b->raw && a->raw_len == b->raw_len &&
	    a->data == b->data && a->len == b->len;
}

/* ---- values ------------------------------------------------------------------------ */

/* The body as one encoded value: parse, then encode(parse) parses to the same value. */
static void
check_value(const uint8_t *body, size_t blen)
{
	struct proto_value v, w;
	struct proto_out o;
	const char *why = NULL;
	int st = proto_value_parse(body, blen, &v, &why);

	if (st != STATUS_OK) {
		CHECK(st == STATUS_BAD_REQUEST && why != NULL);
		return;
	}
	CHECK(v.kind == VALUE_BIN || v.kind == VALUE_CHANREF || v.kind == VALUE_ERROR);
	CHECK(v.raw == body && v.raw_len == blen && inside(v.data, v.len, body, blen));
	CHECK(v.kind != VALUE_CHANREF || proto_name_valid((const char *)v.data, v.len, &why));
	proto_out_init(&o);
	CHECK(proto_value_encode(&o, &v) == 0);
	CHECK(proto_value_parse(proto_out_data(&o), proto_out_len(&o), &w, &why) == STATUS_OK);
	CHECK(same_value(&v, &w));
	proto_out_destroy(&o);
}

/* ---- entry --------------------------------------------------------------------------- */

static void
check_body(const uint8_t *body, size_t blen)
{
	check_value(body, blen);
	check_request(body, blen);
	check_reply(body, blen);
	diff_skip(body, blen);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t off = 0;

	/* 1. The input as a stream of frames. */
	for (;;) {
		const uint8_t *body = NULL;
		size_t blen = 0, avail = size - off;
		const char *why = NULL;
		long n = proto_frame_split(data + off, avail, MAX_FRAME, &body, &blen, &why);

		if (n == 0) {
			/* Needs more: the header or the body is incomplete. */
			CHECK(avail < PROTO_FRAME_HDR ||
			    (size_t)proto_frame_len(data + off) > avail - PROTO_FRAME_HDR);
			break;
		}
		if (n < 0) {
			uint32_t len;

			CHECK(n == -1 && why != NULL && avail >= PROTO_FRAME_HDR);
			len = proto_frame_len(data + off);
			CHECK(len == 0 || len > MAX_FRAME);
			break;
		}
		CHECK(body == data + off + PROTO_FRAME_HDR);
		CHECK(blen >= 1 && blen <= MAX_FRAME && (size_t)n == PROTO_FRAME_HDR + blen);
		CHECK((size_t)n <= avail);
		check_body(body, blen);
		off += (size_t)n;
	}

	/* 2. The whole input as one body (a copy of exactly that size, for ASan). */
	if (size >= 1 && size <= MAX_FRAME) {
		uint8_t *copy = malloc(size);

		CHECK(copy != NULL);
		memcpy(copy, data, size);
		check_body(copy, size);
		free(copy);
	}
	return 0;
}
