/*
 * codec_request_fast.c: proto_decode_request, the one-pass fast path for
 * SEND, RECV, SELECT and ACK in the encoding every client uses (a fixarray,
 * a fixint op, unsigned id and wait, str names, bin values, unsigned tags).
 * It reads each header once and takes a str or bin extent straight from
 * its header. It accepts only frames the general path accepts, with the
 * same result; anything else, valid or not, goes to the general decoder
 * (codec_request.c), which words any error. Kept apart from that decoder
 * because it shares none of its state, only the fast_* readers of
 * codec_int.h, and is tested against it as a separate implementation.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <string.h>

#include "codec.h"
#include "codec_int.h"
#include "mpread.h"

/* A channel name: a valid str, or nil when nil_ok. */
static bool
fast_name(struct fast *f, bool nil_ok, const char **name, uint32_t *len)
{
	const uint8_t *p;
	const char *why;
	size_t n;

	if (nil_ok && f->p < f->end && f->p[0] == 0xc0) {
		f->p++;
		*name = NULL;
		*len = 0;
		return true;
	}
	if (!fast_bytes(f, false, &p, &n) || !proto_name_valid((const char *)p, n, &why))
		return false;
	*name = (const char *)p;
	*len = (uint32_t)n;
	return true;
}

/* A value that is a bin of at most max_value bytes. */
static bool
fast_value(struct fast *f, const struct proto_limits *limits, struct proto_value *v)
{
	const uint8_t *raw = f->p;

	if (!fast_bytes(f, true, &v->data, &v->len) || v->len > limits->max_value)
		return false;
	v->kind = VALUE_BIN;
	v->raw = raw;
	v->raw_len = (size_t)(f->p - raw);
	return true;
}

/* SELECT's cases, each [0, name | nil] or [1, name | nil, value], then default. */
static bool
fast_select(struct fast *f, const struct proto_limits *limits, struct proto_case *cases,
    uint32_t case_cap, struct proto_request *q)
{
	size_t left = (size_t)(f->end - f->p), hlen = 1;
	uint64_t n;

	if (left == 0)
		return false;
	if ((f->p[0] & 0xf0) == 0x90) {
		n = f->p[0] & 0x0f;
	} else if (f->p[0] == 0xdc || f->p[0] == 0xdd) {
		hlen = f->p[0] == 0xdc ? 3 : 5;
		if (left < hlen)
			return false;
		n = mpr_be(f->p + 1, hlen - 1);
	} else {
		return false;
	}
	if (n == 0 || n > case_cap || n > limits->max_select_cases)
		return false;
	f->p += hlen;
	for (uint64_t i = 0; i < n; i++) {
		struct proto_case *c = &cases[i];

		if (f->end - f->p < 2 || (f->p[0] != 0x92 && f->p[0] != 0x93) || f->p[1] != (f->p[0] == 0x93))
			return false;
		c->dir = f->p[1];
		f->p += 2;
		memset(&c->value, 0, sizeof c->value);
		if (!fast_name(f, true, &c->name, &c->name_len) || (c->dir && !fast_value(f, limits, &c->value)))
			return false;
	}
	if (!fast_bool(f, &q->has_default))
		return false;
	q->cases = cases;
	q->ncases = (uint32_t)n;
	return true;
}

/* ACK's tags: an array16 at most of unsigned tags, none 0; q->tags spans them. */
static bool
fast_ack(struct fast *f, struct proto_request *q)
{
	size_t left = (size_t)(f->end - f->p), hlen = 1;
	uint64_t n, tag;

	if (left == 0)
		return false;
	if ((f->p[0] & 0xf0) == 0x90) {
		n = f->p[0] & 0x0f;
	} else if (f->p[0] == 0xdc && left >= 3) {
		hlen = 3;
		n = mpr_be(f->p + 1, 2);
	} else {
		return false;
	}
	if (n == 0)
		return false;
	f->p += hlen;
	q->tags.p = f->p;
	q->tags.left = (uint32_t)n;
	for (uint64_t i = 0; i < n; i++)
		if (!fast_uint(f, &tag) || tag == 0)
			return false;
	q->tags.end = f->p;
	return true;
}

static bool
decode_fast(const uint8_t *body, size_t len, const struct proto_limits *limits,
    struct proto_case *cases, uint32_t case_cap, struct proto_request *q)
{
	struct fast f = { body + 2, body + len };
	uint64_t wait;

	if (len < 2)
		return false;
	q->op = body[1] & ~PROTO_OP_DEFER;
	q->deferred = (body[1] & PROTO_OP_DEFER) != 0;
	/* the array header holds [op, id, wait] and the op's exact arity */
	if (body[1] >= 0x80 || body[0] != (q->op == OP_RECV || q->op == OP_ACK ? 0x94 : 0x95) ||
	    (q->op != OP_SEND && q->op != OP_RECV && q->op != OP_SELECT && q->op != OP_ACK))
		return false;
	if (!fast_uint(&f, &q->id) || q->id == 0)
		return false;
	if (f.p < f.end && f.p[0] == 0xc0) {
		f.p++;
		q->wait_us = PROTO_WAIT_FOREVER;
	} else if (fast_uint(&f, &wait) && wait <= PROTO_WAIT_MAX) {
		q->wait_us = (int64_t)wait;
	} else {
		return false;
	}
	switch (q->op) {
	case OP_SEND:
		if (!fast_name(&f, false, &q->name, &q->name_len) || !fast_value(&f, limits, &q->value))
			return false;
		break;
	case OP_RECV:
		if (!fast_name(&f, false, &q->name, &q->name_len))
			return false;
		break;
	case OP_ACK:
		if (!fast_ack(&f, q))
			return false;
		break;
	default:
		if (!fast_select(&f, limits, cases, case_cap, q))
			return false;
		break;
	}
	return f.p == f.end;
}

int
proto_decode_request(const uint8_t *body, size_t len, const struct proto_limits *limits,
    struct proto_case *cases, uint32_t case_cap, struct proto_request *req, const char **why)
{
	memset(req, 0, sizeof *req);
	if (decode_fast(body, len, limits, cases, case_cap, req))
		return STATUS_OK;
	return proto_decode_request_general(body, len, limits, cases, case_cap, req, why);
}
