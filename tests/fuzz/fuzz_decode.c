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

#include <msgpack.h>

#include "codec.h"
#include "codec_int.h"
#include "mpread.h"
#include "status.h"

#define MAX_FRAME 65536
#define NCASES 64

#define CHECK(cond) do { if (!(cond)) __builtin_trap(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct proto_limits limits = { .max_value = 4096, .max_select_cases = NCASES };

/* ---- helpers ---------------------------------------------------------------- */

/* p[0..len) lies inside body[0..blen) (a NULL slice must be empty). */
static bool
inside(const void *p, size_t len, const uint8_t *body, size_t blen)
{
	uintptr_t s = (uintptr_t)p, b = (uintptr_t)body;

	if (p == NULL)
		return len == 0;
	return s >= b && s - b <= blen && len <= blen - (s - b);
}

static bool
same_bytes(const void *a, size_t alen, const void *b, size_t blen)
{
	if (alen != blen)
		return false;
	if ((a == NULL) != (b == NULL))
		return false;
	return alen == 0 || memcmp(a, b, alen) == 0;
}

/* Names: NULL (nil) and a str are different things. */
static bool
same_name(const char *a, uint32_t alen, const char *b, uint32_t blen)
{
	if ((a == NULL) != (b == NULL))
		return false;
	return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

/* Like same_name, but NULL and "" are both "empty" (encoders write "" for NULL). */
static bool
same_str(const char *a, uint32_t alen, const char *b, uint32_t blen)
{
	return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

static bool
same_value(const struct proto_value *a, const struct proto_value *b)
{
	if (a->kind != b->kind)
		return false;
	if (a->kind == VALUE_NONE)
		return true;
	return a->len == b->len && (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

static bool
value_inside(const struct proto_value *v, const uint8_t *body, size_t blen)
{
	if (v->kind == VALUE_NONE)
		return v->raw == NULL && v->data == NULL && v->len == 0;
	return inside(v->raw, v->raw_len, body, blen) && inside(v->data, v->len, body, blen) &&
	    inside(v->data, v->len, v->raw, v->raw_len);
}

/* value.raw parses on its own to the same value. */
static void
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
static char *
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
static const uint8_t *
only_frame(const struct proto_out *o, size_t *blen)
{
	const uint8_t *body = NULL;
	const char *why = NULL;
	long n = proto_frame_split(proto_out_data(o), proto_out_len(o), SIZE_MAX, &body, blen, &why);

	CHECK(n > 0 && (size_t)n == proto_out_len(o));
	CHECK(body == proto_out_data(o) + PROTO_FRAME_HDR && *blen == proto_out_len(o) - PROTO_FRAME_HDR);
	return body;
}

/* ---- mpr_skip against msgpack-c ------------------------------------------------ */

static double
be_float(const uint8_t *p, size_t n)
{
	uint64_t u = 0;

	for (size_t i = 0; i < n; i++)
		u = u << 8 | p[i];
	if (n == 4) {
		uint32_t u32 = (uint32_t)u;
		float f;

		memcpy(&f, &u32, sizeof f);
		return (double)f;
	} else {
		double d;

		memcpy(&d, &u, sizeof d);
		return d;
	}
}

/* Walk one object with the mpr reader and compare it with msgpack-c's tree. */
static bool
same_object(struct mpr *r, const msgpack_object *o)
{
	const uint8_t *raw, *b;
	const char *s;
	size_t raw_len;
	uint64_t u;
	int64_t i;
	uint32_t n;
	int8_t et;
	bool v;
	double d;

	switch (mpr_peek(r)) {
	case MPR_NIL:
		return mpr_nil(r) == 0 && o->type == MSGPACK_OBJECT_NIL;
	case MPR_BOOL:
		return mpr_bool(r, &v) == 0 && o->type == MSGPACK_OBJECT_BOOLEAN && o->via.boolean == v;
	case MPR_UINT:
		return mpr_uint(r, &u) == 0 && o->type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
		    o->via.u64 == u;
	case MPR_INT:
		if (mpr_int(r, &i) != 0)
			return false;
		if (i >= 0)
			return o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 == (uint64_t)i;
		return o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER && o->via.i64 == i;
	case MPR_FLOAT:
		if (mpr_raw(r, &raw, &raw_len) != 0 || (raw_len != 5 && raw_len != 9))
			return false;
		if (o->type != (raw_len == 5 ? MSGPACK_OBJECT_FLOAT32 : MSGPACK_OBJECT_FLOAT64))
			return false;
		d = be_float(raw + 1, raw_len - 1);
		return memcmp(&d, &o->via.f64, sizeof d) == 0;
	case MPR_STR:
		return mpr_str(r, &s, &n) == 0 && o->type == MSGPACK_OBJECT_STR &&
		    same_str(s, n, o->via.str.ptr, o->via.str.size);
	case MPR_BIN:
		return mpr_bin(r, &b, &n) == 0 && o->type == MSGPACK_OBJECT_BIN &&
		    same_str((const char *)b, n, o->via.bin.ptr, o->via.bin.size);
	case MPR_EXT:
		return mpr_ext(r, &et, &b, &n) == 0 && o->type == MSGPACK_OBJECT_EXT &&
		    o->via.ext.type == et && same_str((const char *)b, n, o->via.ext.ptr, o->via.ext.size);
	case MPR_ARRAY:
		if (mpr_array(r, &n) != 0 || o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != n)
			return false;
		for (uint32_t k = 0; k < n; k++)
			if (!same_object(r, &o->via.array.ptr[k]))
				return false;
		return true;
	case MPR_MAP:
		if (mpr_map(r, &n) != 0 || o->type != MSGPACK_OBJECT_MAP || o->via.map.size != n)
			return false;
		for (uint32_t k = 0; k < n; k++)
			if (!same_object(r, &o->via.map.ptr[k].key) || !same_object(r, &o->via.map.ptr[k].val))
				return false;
		return true;
	default:
		return false;
	}
}

static void
diff_skip(const uint8_t *body, size_t blen)
{
	struct mpr r, w;
	msgpack_unpacked u;
	msgpack_unpack_return ur;
	size_t n, off = 0;
	int rc;

	mpr_init(&r, body, blen);
	rc = mpr_skip(&r);
	CHECK(rc == 0 || rc == MPR_ETRUNC || rc == MPR_EINVALID);
	if (rc != 0) {
		CHECK(r.p == body);	/* unchanged on error */
		return;
	}
	n = (size_t)(r.p - body);
	CHECK(n >= 1 && n <= blen);

	/* mpr accepted n bytes: every count in them is bounded by n, so msgpack-c is safe. */
	msgpack_unpacked_init(&u);
	ur = msgpack_unpack_next(&u, (const char *)body, blen, &off);
	CHECK(ur == MSGPACK_UNPACK_SUCCESS);
	CHECK(off == n);
	mpr_init(&w, body, blen);
	CHECK(same_object(&w, &u.data));
	CHECK((size_t)(w.p - body) == n);
	msgpack_unpacked_destroy(&u);

	/* Every proper prefix is truncated, for both readers (checked at a few cut points). */
	size_t cuts[3] = { n - 1, n / 2, 1 };

	for (int k = 0; k < 3; k++) {
		size_t c = cuts[k];

		if (c == 0 || c >= n)
			continue;
		mpr_init(&w, body, c);
		CHECK(mpr_skip(&w) == MPR_ETRUNC && w.p == body);
		off = 0;
		msgpack_unpacked_init(&u);
		ur = msgpack_unpack_next(&u, (const char *)body, c, &off);
		CHECK(ur == MSGPACK_UNPACK_CONTINUE);
		msgpack_unpacked_destroy(&u);
	}
}

/* ---- requests -------------------------------------------------------------------- */

static bool
op_takes_wait(uint64_t op)
{
	return op != OP_HELLO && op != OP_PING && op != OP_MAKE && op != OP_CANCEL && op != OP_CREDIT &&
	    op != OP_WANT && op != OP_ACK && op != OP_NACK && op != OP_TOUCH;
}

/* ACK's tags back into an array, then the request (§16). */
static int
encode_ack(struct proto_out *o, const struct proto_request *q)
{
	struct proto_list l = q->tags;
	uint64_t *tags = malloc((l.left + 1) * sizeof *tags), tag;
	size_t n = 0;

	CHECK(tags != NULL);
	while (proto_list_tag(&l, &tag) == 1)
		tags[n++] = tag;
	CHECK(n == q->tags.left && n >= 1);
	CHECK(proto_req_ack(o, q->id, tags, n) == 0);
	free(tags);
	CHECK(!q->deferred || proto_req_defer_last(o) == 0);
	return 1;
}

/* MAKE's delivery options (§16) as decoded: the same, defaults included. */
static bool
same_delivery(const struct proto_delivery *a, const struct proto_delivery *b)
{
	return a->on == b->on && (!a->on || (a->ack_wait_us == b->ack_wait_us &&
	    a->max_deliver == b->max_deliver && a->max_unacked == b->max_unacked &&
	    a->max_ack_pending == b->max_ack_pending &&
	    same_name(a->dead_letter, a->dead_letter_len, b->dead_letter, b->dead_letter_len)));
}

/* Encode a decoded request. 1: encoded; 0: not representable; traps on failure. */
static int
encode_request(struct proto_out *o, const struct proto_request *q)
{
	int rc;

	if (q->op == OP_STREAM)
		rc = proto_req_stream(o, q->id, q->wait_us, q->cases, q->ncases, q->count);
	else if (q->op == OP_CREDIT)
		rc = proto_req_credit(o, q->id, q->target, q->count);
	else if (q->op == OP_NACK)
		rc = proto_req_nack(o, q->id, q->tag, q->delay_us);
	else if (q->op == OP_TOUCH)
		rc = proto_req_touch(o, q->id, q->tag);
	else if (q->op == OP_ACK)
		return encode_ack(o, q);
	else if (q->op >= OP_STATS)
		return 0;	/* admin ops and links: not rebuilt here (other encoders, other fields) */
	if (q->op == OP_STREAM || q->op == OP_CREDIT || q->op == OP_NACK || q->op == OP_TOUCH) {
		CHECK(rc == 0);
		CHECK(!q->deferred || proto_req_defer_last(o) == 0);
		return 1;
	}
	switch (q->op) {
	case OP_HELLO: {
		char *client = cstr_dup(q->client, q->client_len);
		char *token = q->token ? cstr_dup(q->token, q->token_len) : NULL;

		if (client == NULL || (q->token && token == NULL)) {
			free(client);
			free(token);
			return 0;
		}
		rc = proto_req_hello(o, q->id, q->version, client, token);
		free(client);
		free(token);
		break;
	}
	case OP_PING:
		rc = proto_req_ping(o, q->id);
		break;
	case OP_MAKE:
		rc = proto_req_make_opts(o, q->id, q->name, q->name_len, q->cap, &q->dlv);
		break;
	case OP_SEND:
		rc = proto_req_send(o, q->id, q->wait_us, q->name, q->name_len, &q->value);
		break;
	case OP_SELECT:
		rc = proto_req_select(o, q->id, q->wait_us, q->cases, q->ncases, q->has_default);
		break;
	case OP_CANCEL:
		rc = proto_req_cancel(o, q->id, q->target);
		break;
	case OP_WANT:
		rc = proto_req_want(o, q->id, q->target);
		break;
	case OP_CLOSE:	/* an error of nil decodes as none: rebuilt as the 1-argument form */
		rc = proto_req_close(o, q->id, q->wait_us, q->name, q->name_len, &q->close_err);
		break;
	default:
		rc = proto_req_name(o, q->op, q->id, q->wait_us, q->name, q->name_len);
		break;
	}
	CHECK(rc == 0);
	/* the deferred-reply bit (§15) is set on the frame just encoded */
	CHECK(!q->deferred || proto_req_defer_last(o) == 0);
	return 1;
}

static bool
same_close_err(const struct proto_close_err *a, const struct proto_close_err *b)
{
	return a->set == b->set && (!a->set || (a->code == b->code &&
	    same_str(a->msg, a->msg_len, b->msg, b->msg_len)));
}

static bool
same_request(const struct proto_request *a, const struct proto_request *b)
{
	if (a->op != b->op || a->deferred != b->deferred || a->id != b->id || a->cap != b->cap ||
	    a->target != b->target ||
	    a->version != b->version || a->has_default != b->has_default || a->ncases != b->ncases ||
	    a->count != b->count || a->tag != b->tag || a->delay_us != b->delay_us ||
	    a->tags.left != b->tags.left || !same_delivery(&a->dlv, &b->dlv))
		return false;
	if (op_takes_wait(a->op) ? a->wait_us != b->wait_us : b->wait_us != PROTO_WAIT_FOREVER)
		return false;
	if (!same_name(a->name, a->name_len, b->name, b->name_len) ||
	    !same_str(a->client, a->client_len, b->client, b->client_len) ||
	    !same_name(a->token, a->token_len, b->token, b->token_len) ||
	    !same_value(&a->value, &b->value) || !same_close_err(&a->close_err, &b->close_err))
		return false;
	for (uint32_t i = 0; i < a->ncases; i++) {
		const struct proto_case *x = &a->cases[i], *y = &b->cases[i];

		if (x->dir != y->dir || !same_name(x->name, x->name_len, y->name, y->name_len) ||
		    !same_value(&x->value, &y->value))
			return false;
	}
	return true;
}

static void
check_name_field(const char *name, uint32_t len, bool nil_ok, const uint8_t *body, size_t blen)
{
	const char *why = NULL;

	if (name == NULL) {
		CHECK(nil_ok && len == 0);
		return;
	}
	CHECK(inside(name, len, body, blen));
	CHECK(proto_name_valid(name, len, &why));
}

static void
check_request_ok(const struct proto_request *q, const struct proto_case *cases,
    const uint8_t *body, size_t blen)
{
	CHECK(q->op >= 1 && q->op <= OP_MAX && proto_op_name(q->op) != NULL);
	CHECK(!q->deferred || proto_op_deferrable(q->op));
	CHECK(q->id >= 1);
	CHECK(q->wait_us == PROTO_WAIT_FOREVER || (q->wait_us >= 0 && q->wait_us <= PROTO_WAIT_MAX));
	CHECK(inside(q->client, q->client_len, body, blen));
	CHECK(inside(q->token, q->token_len, body, blen));
	CHECK(value_inside(&q->value, body, blen));
	/* CLOSE's error: inside, at most 1024 bytes of UTF-8; no other op has one */
	CHECK(inside(q->close_err.msg, q->close_err.msg_len, body, blen));
	CHECK(!q->close_err.set || (q->op == OP_CLOSE && q->close_err.msg_len <= PROTO_CLOSE_MSG_MAX &&
	    proto_utf8_valid((const uint8_t *)q->close_err.msg, q->close_err.msg_len)));
	switch (q->op) {
	case OP_HELLO:
		CHECK(q->client != NULL && q->client_len <= PROTO_CLIENT_NAME_MAX);
		break;
	case OP_MAKE:
		check_name_field(q->name, q->name_len, true, body, blen);
		CHECK(q->name == NULL || q->name[0] != '~');
		if (q->dlv.on) {
			CHECK(q->name != NULL);
			CHECK(q->dlv.ack_wait_us >= 1 && q->dlv.ack_wait_us <= PROTO_WAIT_MAX);
			CHECK(q->dlv.max_deliver <= UINT32_MAX && q->dlv.max_unacked <= UINT32_MAX);
			CHECK(q->dlv.max_ack_pending <= UINT32_MAX);
			check_name_field(q->dlv.dead_letter, q->dlv.dead_letter_len, true, body, blen);
		}
		break;
	case OP_ACK:
		CHECK(q->tags.left >= 1 && q->tags.left <= PROTO_ACK_TAGS_MAX);
		CHECK(inside(q->tags.p, (size_t)(q->tags.end - q->tags.p), body, blen));
		break;
	case OP_NACK:
	case OP_TOUCH:
		CHECK(q->tag >= 1 && q->delay_us >= 0 && q->delay_us <= PROTO_WAIT_MAX);
		break;
	case OP_SEND:
		check_name_field(q->name, q->name_len, false, body, blen);
		CHECK(q->value.kind == VALUE_BIN || q->value.kind == VALUE_CHANREF);
		CHECK(q->value.kind != VALUE_BIN || q->value.len <= limits.max_value);
		check_value_reparse(&q->value);
		break;
	case OP_SELECT:
		CHECK(q->cases == cases && q->ncases >= 1 && q->ncases <= NCASES);
		for (uint32_t i = 0; i < q->ncases; i++) {
			const struct proto_case *c = &q->cases[i];

			CHECK(c->dir <= 1);
			check_name_field(c->name, c->name_len, true, body, blen);
			CHECK(value_inside(&c->value, body, blen));
			if (c->dir) {
				CHECK(c->value.kind == VALUE_BIN || c->value.kind == VALUE_CHANREF);
				CHECK(c->value.kind != VALUE_BIN || c->value.len <= limits.max_value);
				check_value_reparse(&c->value);
			} else {
				CHECK(c->value.kind == VALUE_NONE);
			}
		}
		break;
	case OP_STREAM:
		CHECK(q->cases == cases && q->ncases >= 1 && q->ncases <= NCASES && q->count >= 1);
		for (uint32_t i = 0; i < q->ncases; i++)
			check_name_field(q->cases[i].name, q->cases[i].name_len, false, body, blen);
		break;
	case OP_CREDIT:
		CHECK(q->target >= 1 && q->count >= 1);
		break;
	case OP_CANCEL:
	case OP_WANT:
		CHECK(q->target >= 1);
		break;
	case OP_PING:
		break;
	default:
		/* admin ops (CHANNELS' pattern may be nil) and links (OR, FAN_IN, REPEAT have no name) */
		check_name_field(q->name, q->name_len, q->op >= OP_STATS, body, blen);
		break;
	}
	if (q->op != OP_SELECT && q->op != OP_STREAM && !proto_op_is_link(q->op))
		CHECK(q->cases == NULL && q->ncases == 0);
}

/* decode(encode(q)) == q, and encode is a fixpoint from there on. */
static void
roundtrip_request(const struct proto_request *q)
{
	static struct proto_case cases2[NCASES];
	struct proto_out o1, o2;
	struct proto_request q2;
	const uint8_t *b1, *b2;
	size_t l1, l2;
	const char *why = NULL;

	proto_out_init(&o1);
	proto_out_init(&o2);
	if (encode_request(&o1, q)) {
		b1 = only_frame(&o1, &l1);
		CHECK(proto_decode_request(b1, l1, &limits, cases2, NCASES, &q2, &why) == STATUS_OK);
		check_request_ok(&q2, cases2, b1, l1);
		CHECK(same_request(q, &q2));
		CHECK(encode_request(&o2, &q2));
		b2 = only_frame(&o2, &l2);
		CHECK(same_bytes(b1, l1, b2, l2));
	}
	proto_out_destroy(&o1);
	proto_out_destroy(&o2);
}

/* The same value at the same place in the frame. */
static bool
same_extent(const struct proto_value *a, const struct proto_value *b)
{
	return a->kind == b->kind && a->raw == b->raw && a->raw_len == b->raw_len &&
	    a->data == b->data && a->len == b->len;
}

/* The one-pass fast path for SEND, RECV and SELECT decodes exactly as the general path. */
static void
same_as_general(const uint8_t *body, size_t blen, int st, const struct proto_request *a,
    const char *why)
{
	static struct proto_case cases2[NCASES];
	struct proto_request b;
	const char *why2 = NULL;

	CHECK(proto_decode_request_general(body, blen, &limits, cases2, NCASES, &b, &why2) == st);
	CHECK(why2 == why || st == STATUS_OK);
	CHECK(a->op == b.op && a->deferred == b.deferred && a->id == b.id);
	if (st != STATUS_OK || (a->op != OP_SEND && a->op != OP_RECV && a->op != OP_SELECT))
		return;
	CHECK(a->wait_us == b.wait_us && a->name == b.name && a->name_len == b.name_len);
	CHECK(same_extent(&a->value, &b.value));
	CHECK(a->ncases == b.ncases && a->has_default == b.has_default);
	for (uint32_t i = 0; i < a->ncases; i++) {
		CHECK(a->cases[i].dir == b.cases[i].dir && a->cases[i].name == b.cases[i].name);
		CHECK(a->cases[i].name_len == b.cases[i].name_len);
		CHECK(same_extent(&a->cases[i].value, &b.cases[i].value));
	}
}

static void
check_request(const uint8_t *body, size_t blen)
{
	static struct proto_case cases[NCASES];
	struct proto_request q;
	const char *why = NULL;
	struct mpr r;
	uint32_t n;
	uint64_t op, id;
	int st;

	st = proto_decode_request(body, blen, &limits, cases, NCASES, &q, &why);
	same_as_general(body, blen, st, &q, why);
	switch (st) {
	case STATUS_OK:
		check_request_ok(&q, cases, body, blen);
		roundtrip_request(&q);
		break;
	case STATUS_PROTOCOL:
		CHECK(why != NULL && q.id == 0);
		break;
	case STATUS_BAD_REQUEST:
		CHECK(why != NULL && q.id != 0 && q.op != 0);
		break;
	case STATUS_LIMIT:
		CHECK(why != NULL && q.id != 0 && (q.op == OP_SEND || q.op == OP_SELECT ||
		    q.op == OP_STREAM || q.op == OP_ACK || proto_op_is_link(q.op)));
		break;
	default:
		__builtin_trap();
	}

	/* PROTOCOL exactly when the frame or the [op, id, wait] header is unusable (§9). */
	mpr_init(&r, body, blen);
	bool whole = mpr_skip(&r) == 0 && r.p == r.end;

	mpr_init(&r, body, blen);
	bool header = whole && mpr_array(&r, &n) == 0 && n >= 3 && mpr_uint(&r, &op) == 0 &&
	    op != 0 && mpr_uint(&r, &id) == 0 && id != 0;

	CHECK((st == STATUS_PROTOCOL) == !header);
	/* the deferred-reply bit is taken off the ops that accept it, kept on the rest (§15) */
	if (header && (op & PROTO_OP_DEFER) && proto_op_deferrable(op & ~(uint64_t)PROTO_OP_DEFER))
		CHECK(q.op == (op & ~(uint64_t)PROTO_OP_DEFER) && q.deferred && q.id == id);
	else if (header)
		CHECK(q.op == op && !q.deferred && q.id == id);
}

/* ---- replies ------------------------------------------------------------------------ */

/* Encode a decoded reply to op. 1: encoded; 0: not representable. */
static int
encode_reply(struct proto_out *o, uint64_t op, const struct proto_reply *p)
{
	const uint8_t *raw = p->value.kind == VALUE_NONE ? NULL : p->value.raw;
	int rc;

	if (p->status != STATUS_OK) {
		char *msg = cstr_dup(p->msg, p->msg_len);

		if (msg == NULL)
			return 0;
		if (p->index != -1)
			rc = proto_rep_case_error(o, p->id, p->status, msg, p->index);
		else
			rc = proto_rep_error(o, p->id, p->status, msg);
		free(msg);
		CHECK(rc == 0);
		return 1;
	}
	switch (op) {
	case OP_HELLO: {
		struct proto_hello_info h = p->hello;

		if (h.server == NULL)
			h.server = "";
		rc = proto_rep_hello(o, p->id, &h);
		break;
	}
	case OP_INFO: {
		struct proto_chan_info i = p->info;

		if (i.name == NULL)
			i.name = "";
		rc = proto_rep_info(o, p->id, &i);
		break;
	}
	case OP_MAKE:
		rc = proto_rep_make(o, p->id, p->name, p->name_len, p->n, p->created);
		break;
	case OP_RECV:	/* a close error's one result more, or an ack channel's tag and count (§16) */
		if (p->close_err.set)
			rc = proto_rep_closed_err(o, p->id, -1, &p->close_err);
		else
			rc = p->tag ? proto_rep_recv_ack(o, p->id, raw, p->value.raw_len, p->tag, p->count) :
			    proto_rep_recv(o, p->id, raw, p->value.raw_len, p->ok);
		break;
	case OP_SELECT:
		if (p->close_err.set)
			rc = proto_rep_closed_err(o, p->id, p->index, &p->close_err);
		else
			rc = p->tag ? proto_rep_select_ack(o, p->id, p->index, raw, p->value.raw_len, p->tag,
			    p->count) : proto_rep_select(o, p->id, p->index, raw, p->value.raw_len, p->ok);
		break;
	case OP_STREAM:	/* a value (interim), or the final OK: values delivered */
		if (p->interim && p->close_err.set)
			rc = proto_rep_closed_err(o, p->id, p->index, &p->close_err);
		else if (p->interim && p->tag)
			rc = proto_rep_select_ack(o, p->id, p->index, raw, p->value.raw_len, p->tag,
			    p->count);
		else
			rc = p->interim ? proto_rep_select(o, p->id, p->index, raw, p->value.raw_len, p->ok) :
			    proto_rep_uint(o, p->id, p->n);
		break;
	case OP_OPEN: case OP_LEN: case OP_CAP: case OP_DELETE:
	case OP_UNBLOCK:	/* canceled */
	case OP_ACK:		/* acked */
	case OP_OR: case OP_OR_DONE: case OP_TEE: case OP_BRIDGE:	/* a link's final OK: sent */
	case OP_FAN_IN: case OP_REPEAT: case OP_TAKE: case OP_FAN_OUT:
		rc = proto_rep_uint(o, p->id, p->n);
		break;
	case OP_STATS: case OP_CHANNELS: case OP_CLIENTS: case OP_WAITERS: case OP_INFLIGHT:
		return 0;	/* list results: the decoder keeps them raw, nothing to rebuild from */
	default:
		rc = proto_rep_ok(o, p->id);
		break;
	}
	CHECK(rc == 0);
	return 1;
}

static bool
same_reply(const struct proto_reply *a, const struct proto_reply *b)
{
	const struct proto_hello_info *h = &a->hello, *g = &b->hello;
	const struct proto_chan_info *i = &a->info, *j = &b->info;

	return a->id == b->id && a->status == b->status && a->index == b->index &&
	    a->ok == b->ok && a->n == b->n && a->created == b->created && a->interim == b->interim &&
	    a->tag == b->tag && a->count == b->count &&
	    (i->ack_wait == 0 || (i->ack_wait == j->ack_wait && i->inflight == j->inflight &&
	    i->redelivered == j->redelivered && i->dead_lettered == j->dead_lettered)) &&
	    same_str(a->msg, a->msg_len, b->msg, b->msg_len) &&
	    same_str(a->name, a->name_len, b->name, b->name_len) &&
	    same_value(&a->value, &b->value) &&
	    h->version == g->version && h->max_frame == g->max_frame &&
	    h->max_value == g->max_value && h->max_pending == g->max_pending &&
	    h->max_select_cases == g->max_select_cases && h->max_stream_credit == g->max_stream_credit &&
	    h->max_waiters_per_connection == g->max_waiters_per_connection &&
	    same_str(h->server, h->server_len, g->server, g->server_len) &&
	    same_str(i->name, i->name_len, j->name, j->name_len) &&
	    i->len == j->len && i->cap == j->cap && i->closed == j->closed &&
	    i->anonymous == j->anonymous && i->senders == j->senders &&
	    i->receivers == j->receivers && i->bytes == j->bytes &&
	    same_close_err(&a->close_err, &b->close_err) && same_close_err(&i->close_err, &j->close_err);
}

static void
roundtrip_reply(uint64_t op, const struct proto_reply *p)
{
	struct proto_out o1, o2;
	struct proto_reply p2;
	const uint8_t *b1, *b2;
	size_t l1, l2;
	const char *why = NULL;

	proto_out_init(&o1);
	proto_out_init(&o2);
	if (encode_reply(&o1, op, p)) {
		b1 = only_frame(&o1, &l1);
		CHECK(proto_decode_reply(b1, l1, op, &p2, &why) == STATUS_OK);
		CHECK(same_reply(p, &p2));
		CHECK(encode_reply(&o2, op, &p2));
		b2 = only_frame(&o2, &l2);
		CHECK(same_bytes(b1, l1, b2, l2));
	}
	proto_out_destroy(&o1);
	proto_out_destroy(&o2);
}

/* The one-pass fast path for OK to SEND, RECV and STREAM values decodes exactly as the general path. */
static void
reply_same_as_general(const uint8_t *body, size_t blen, uint64_t op, int st,
    const struct proto_reply *a, const char *why)
{
	struct proto_reply b;
	const char *why2 = NULL;

	CHECK(proto_decode_reply_general(body, blen, op, &b, &why2) == st);
	CHECK(st == STATUS_OK ? same_reply(a, &b) && same_extent(&a->value, &b.value) : why2 == why);
}

static void
check_reply(const uint8_t *body, size_t blen)
{
	uint64_t hid = 0;
	int hstatus = -1, hst;
	const char *why = NULL;

	hst = proto_reply_header(body, blen, &hid, &hstatus, &why);
	CHECK(hst == STATUS_OK || hst == STATUS_PROTOCOL);
	CHECK(hst == STATUS_OK || why != NULL);
	if (hst == STATUS_OK)
		CHECK(hstatus >= 0 && status_name(hstatus) != NULL);

	for (uint64_t op = 0; op <= OP_MAX + 1; op++) {
		struct proto_reply p;
		int st;

		why = NULL;
		st = proto_decode_reply(body, blen, op, &p, &why);
		reply_same_as_general(body, blen, op, st, &p, why);
		if (st == STATUS_PROTOCOL) {
			CHECK(why != NULL);
			continue;
		}
		CHECK(st == STATUS_OK);
		CHECK(hst == STATUS_OK && p.id == hid && p.status == hstatus);
		CHECK(inside(p.msg, p.msg_len, body, blen));
		CHECK(inside(p.name, p.name_len, body, blen));
		CHECK(inside(p.hello.server, p.hello.server_len, body, blen));
		CHECK(inside(p.info.name, p.info.name_len, body, blen));
		CHECK(value_inside(&p.value, body, blen));
		CHECK(inside(p.close_err.msg, p.close_err.msg_len, body, blen));
		CHECK(inside(p.info.close_err.msg, p.info.close_err.msg_len, body, blen));
		/* a close error comes only with ok false and no value */
		CHECK(!p.close_err.set || (!p.ok && p.value.kind == VALUE_NONE));
		/* and never with an ack channel's tag (PROTOCOL.md §16): 3 results or 4, not both */
		CHECK(!p.close_err.set || p.tag == 0);
		CHECK(p.index >= -1 || p.status != STATUS_OK);
		if (p.status == STATUS_OK) {
			CHECK(op >= 1 && op <= OP_MAX);
			CHECK(p.msg == NULL);
			if (op == OP_RECV || op == OP_SELECT || op == OP_STREAM)
				check_value_reparse(&p.value);
			else
				CHECK(p.value.kind == VALUE_NONE);
		} else {
			CHECK(p.msg != NULL);
		}
		roundtrip_reply(op, &p);
	}
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
