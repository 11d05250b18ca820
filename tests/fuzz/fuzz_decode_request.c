/*
 * fuzz_decode_request.c: a body as a request: the fast and general decoder paths agree, and what decodes encodes back to the same request.
 * Part of fuzz_decode (tests/fuzz/fuzzdecode.h).
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

/* ---- requests -------------------------------------------------------------------- */

static bool
op_takes_wait(uint64_t op)
{
	return op != OP_HELLO && op != OP_PING && op != OP_MAKE && op != OP_CANCEL && op != OP_CREDIT &&
	    op != OP_WANT && op != OP_ACK && op != OP_NACK && op != OP_TOUCH && op != OP_XSETTLE;
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
	return a->on == b->on && a->durable == b->durable && (!a->on || (a->ack_wait_us == b->ack_wait_us &&
	    a->max_deliver == b->max_deliver && a->max_unacked == b->max_unacked &&
	    a->max_ack_pending == b->max_ack_pending &&
	    same_name(a->dead_letter, a->dead_letter_len, b->dead_letter, b->dead_letter_len)));
}

/* Encode a decoded request. 1: encoded; 0: not representable; traps on failure. */
static int
encode_request(struct proto_out *o, const struct proto_request *q)
{
	int rc = -1;	/* each branch below sets it; gcc -O2 with ASan cannot tell */

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
	else if (q->op == OP_XSETTLE)
		rc = proto_req_xsettle(o, q->id, q->target, q->keep);
	else if (q->op >= OP_STATS)
		return 0;	/* admin ops and links: not rebuilt here (other encoders, other fields) */
	if (q->op == OP_STREAM || q->op == OP_CREDIT || q->op == OP_NACK || q->op == OP_TOUCH ||
	    q->op == OP_XSETTLE) {
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
		/* the hold argument (§17): nodes' SELECTs */
		rc = proto_req_select_hold(o, q->id, q->wait_us, q->cases, q->ncases, q->has_default,
		    q->hold_parked ? PROTO_HOLD_PARKED : q->hold, q->firm);
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
same_request(const struct proto_request *a, const struct proto_request *b)
{
	if (a->op != b->op || a->deferred != b->deferred || a->id != b->id || a->cap != b->cap ||
	    a->target != b->target ||
	    a->version != b->version || a->has_default != b->has_default || a->ncases != b->ncases ||
	    a->count != b->count || a->tag != b->tag || a->delay_us != b->delay_us ||
	    a->tags.left != b->tags.left || !same_delivery(&a->dlv, &b->dlv) ||
	    a->hold != b->hold || a->hold_parked != b->hold_parked || a->firm != b->firm ||
	    a->keep != b->keep)
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
		CHECK(q->value.kind != VALUE_BIN || q->value.len <= fuzz_limits.max_value);
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
				CHECK(c->value.kind != VALUE_BIN || c->value.len <= fuzz_limits.max_value);
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
	case OP_XSETTLE:
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
		CHECK(proto_decode_request(b1, l1, &fuzz_limits, cases2, NCASES, &q2, &why) == STATUS_OK);
		check_request_ok(&q2, cases2, b1, l1);
		CHECK(same_request(q, &q2));
		CHECK(encode_request(&o2, &q2));
		b2 = only_frame(&o2, &l2);
		CHECK(same_bytes(b1, l1, b2, l2));
	}
	proto_out_destroy(&o1);
	proto_out_destroy(&o2);
}

/* The one-pass fast path for SEND, RECV and SELECT decodes exactly as the general path. */
static void
same_as_general(const uint8_t *body, size_t blen, int st, const struct proto_request *a,
    const char *why)
{
	static struct proto_case cases2[NCASES];
	struct proto_request b;
	const char *why2 = NULL;

	CHECK(proto_decode_request_general(body, blen, &fuzz_limits, cases2, NCASES, &b, &why2) == st);
	CHECK(why2 == why || st == STATUS_OK);
	CHECK(a->op == b.op && a->deferred == b.deferred && a->id == b.id);
	if (st != STATUS_OK || (a->op != OP_SEND && a->op != OP_RECV && a->op != OP_SELECT))
		return;
	CHECK(a->wait_us == b.wait_us && a->name == b.name && a->name_len == b.name_len);
	CHECK(same_extent(&a->value, &b.value));
	CHECK(a->ncases == b.ncases && a->has_default == b.has_default);
	CHECK(a->hold == b.hold && a->hold_parked == b.hold_parked && a->firm == b.firm);
	for (uint32_t i = 0; i < a->ncases; i++) {
		CHECK(a->cases[i].dir == b.cases[i].dir && a->cases[i].name == b.cases[i].name);
		CHECK(a->cases[i].name_len == b.cases[i].name_len);
		CHECK(same_extent(&a->cases[i].value, &b.cases[i].value));
	}
}

void
check_request(const uint8_t *body, size_t blen)
{
	static struct proto_case cases[NCASES];
	struct proto_request q;
	const char *why = NULL;
	struct mpr r;
	uint32_t n;
	uint64_t op, id;
	int st;

	st = proto_decode_request(body, blen, &fuzz_limits, cases, NCASES, &q, &why);
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
