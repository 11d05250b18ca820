/*
 * codec_request.c: decoding requests (proto/PROTOCOL.md §5, §11, §12, §14):
 * the general decoder, proto_decode_request_general, which every input the
 * fast path (codec_request_fast.c) does not take goes to (see codec.h).
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <string.h>

#include "codec.h"
#include "codec_int.h"
#include "mpread.h"

/* ---- request decoding ------------------------------------------------------- */

struct rdec {
	struct mpr r;
	const struct proto_limits *limits;
	struct proto_request *req;
	const char **why;
	uint32_t nargs;			/* arguments after [op, id, wait] */
};

#define BAD(d, msg) (*(d)->why = (msg), STATUS_BAD_REQUEST)

static int
dec_name(struct rdec *d, bool nil_ok, const char **name, uint32_t *len)
{
	if (mpr_peek(&d->r) == MPR_NIL) {
		if (!nil_ok)
			return BAD(d, "channel name is nil");
		mpr_nil(&d->r);
		*name = NULL;
		*len = 0;
		return STATUS_OK;
	}
	if (mpr_str(&d->r, name, len) < 0)
		return BAD(d, "channel name must be a str");
	if (!proto_name_valid(*name, *len, d->why))
		return STATUS_BAD_REQUEST;
	return STATUS_OK;
}

static int
dec_value(struct rdec *d, struct proto_value *v)
{
	const uint8_t *raw;
	size_t raw_len;
	int st;

	if (mpr_raw(&d->r, &raw, &raw_len) < 0)
		return BAD(d, "value is malformed");
	st = proto_value_parse(raw, raw_len, v, d->why);
	if (st != STATUS_OK)
		return st;
	if (v->kind == VALUE_ERROR && !d->limits->error_values)
		return BAD(d, "ext type 2 is reserved for the server");
	if (v->kind == VALUE_BIN && v->len > d->limits->max_value) {
		*d->why = "value is larger than max_value";
		return STATUS_LIMIT;
	}
	return STATUS_OK;
}

/* HELLO's optional caps (PROTOCOL.md §5): nil or a map; "moved" a bool, "node" a node's name. */
static int
dec_hello_caps(struct rdec *d)
{
	uint32_t n;

	if (mpr_peek(&d->r) == MPR_NIL)
		return mpr_nil(&d->r), STATUS_OK;
	if (mpr_map(&d->r, &n) < 0)
		return BAD(d, "HELLO caps must be nil or a map");
	while (n-- > 0) {
		const char *key;
		uint32_t klen;

		if (mpr_str(&d->r, &key, &klen) < 0)
			return BAD(d, "HELLO caps keys must be str");
		if (klen == 5 && memcmp(key, "moved", 5) == 0) {
			if (mpr_bool(&d->r, &d->req->moved) < 0)
				return BAD(d, "HELLO caps moved must be a bool");
		} else if (klen == 4 && memcmp(key, "node", 4) == 0) {
			if (mpr_str(&d->r, &d->req->node, &d->req->node_len) < 0 ||
			    d->req->node_len == 0 || d->req->node_len > PROTO_NODE_NAME_MAX ||
			    !proto_utf8_valid((const uint8_t *)d->req->node, d->req->node_len))
				return BAD(d, "HELLO caps node must be a node name (1 to 64 bytes of UTF-8)");
		} else {
			mpr_skip(&d->r);	/* capabilities this server does not know: ignored */
		}
	}
	return STATUS_OK;
}

static int
dec_hello(struct rdec *d)
{
	struct proto_request *q = d->req;
	uint32_t n;

	if (mpr_uint(&d->r, &q->version) < 0)
		return BAD(d, "HELLO version must be a non-negative integer");
	if (mpr_str(&d->r, &q->client, &q->client_len) < 0)
		return BAD(d, "HELLO client name must be a str");
	if (q->client_len > PROTO_CLIENT_NAME_MAX || !proto_utf8_valid((const uint8_t *)q->client, q->client_len))
		return BAD(d, "HELLO client name must be at most 255 bytes of UTF-8");
	if (mpr_peek(&d->r) == MPR_NIL)
		n = 0, mpr_nil(&d->r);
	else if (mpr_map(&d->r, &n) < 0)
		return BAD(d, "HELLO auth must be nil or a map");
	while (n-- > 0) {
		const char *key;
		uint32_t klen;

		if (mpr_str(&d->r, &key, &klen) < 0)
			return BAD(d, "HELLO auth keys must be str");
		if (klen == 5 && memcmp(key, "token", 5) == 0) {
			if (mpr_str(&d->r, &q->token, &q->token_len) < 0)
				return BAD(d, "HELLO auth token must be a str");
		} else {
			mpr_skip(&d->r);	/* unknown credentials: ignored */
		}
	}
	return d->nargs == 4 ? dec_hello_caps(d) : STATUS_OK;
}

static int
dec_case(struct rdec *d, struct proto_case *c)
{
	uint32_t n;
	uint64_t dir;
	int st;

	if (mpr_array(&d->r, &n) < 0)
		return BAD(d, "select case must be an array");
	if (n < 2 || n > 3)
		return BAD(d, "select case must be [0, name] or [1, name, value]");
	if (mpr_uint(&d->r, &dir) < 0 || dir > 1)
		return BAD(d, "select case direction must be 0 (receive) or 1 (send)");
	if (n != (dir ? 3u : 2u))
		return BAD(d, dir ? "send case must be [1, name, value]" : "receive case must be [0, name]");
	c->dir = (uint8_t)dir;
	if ((st = dec_name(d, true, &c->name, &c->name_len)) != STATUS_OK)
		return st;
	memset(&c->value, 0, sizeof c->value);
	if (dir)
		return dec_value(d, &c->value);
	return STATUS_OK;
}

static int
dec_select(struct rdec *d, struct proto_case *cases, uint32_t case_cap)
{
	struct proto_request *q = d->req;
	uint32_t n;
	int st;

	if (mpr_array(&d->r, &n) < 0)
		return BAD(d, "select cases must be an array");
	if (n == 0)
		return BAD(d, "select needs at least one case");
	if (n > case_cap || n > d->limits->max_select_cases) {
		*d->why = "select has more cases than max_select_cases";
		return STATUS_LIMIT;
	}
	for (uint32_t i = 0; i < n; i++)
		if ((st = dec_case(d, &cases[i])) != STATUS_OK)
			return st;
	q->cases = cases;
	q->ncases = n;
	if (mpr_bool(&d->r, &q->has_default) < 0)
		return BAD(d, "select default must be a boolean");
	if (d->nargs >= 3 && mpr_bool(&d->r, &q->hold) < 0) {
		uint64_t h;

		/* or 2: hold, and say STARTED when it waits (§17) */
		if (mpr_uint(&d->r, &h) < 0 || h != PROTO_HOLD_PARKED)
			return BAD(d, "select hold must be a boolean or 2");
		q->hold = q->hold_parked = true;
	}
	if (d->nargs == 4) {
		uint64_t firm;

		if (mpr_uint(&d->r, &firm) < 0 || firm > n)
			return BAD(d, "select firm must be an integer from 0 to the number of cases");
		if (firm > 0 && !q->hold)
			return BAD(d, "select firm needs hold");
		q->firm = (uint32_t)firm;
	}
	return STATUS_OK;
}

/* One output: nil (anonymous, unbuffered) or [name | nil, cap]. */
static int
dec_link_out(struct rdec *d, struct proto_link_out *out)
{
	uint32_t n;
	int st;

	memset(out, 0, sizeof *out);
	if (mpr_peek(&d->r) == MPR_NIL)
		return mpr_nil(&d->r), STATUS_OK;
	if (mpr_array(&d->r, &n) < 0 || n != 2)
		return BAD(d, "link output must be nil or [name | nil, cap]");
	if ((st = dec_name(d, true, &out->name, &out->name_len)) != STATUS_OK)
		return st;
	if (mpr_uint(&d->r, &out->cap) < 0)
		return BAD(d, "link output cap must be a non-negative integer");
	return STATUS_OK;
}

/* done, then outs: nil or an array of exactly as many outputs as the op makes. */
static int
dec_link_head(struct rdec *d)
{
	struct proto_request *q = d->req;
	uint32_t want = q->op == OP_TEE ? 2 : 1, n;
	int st;

	if ((st = dec_name(d, true, &q->done, &q->done_len)) != STATUS_OK)
		return st;
	if (q->wait_us == 0)
		return BAD(d, "a link's wait is its lifetime: nil or more than 0");
	if (mpr_peek(&d->r) == MPR_NIL) {
		mpr_nil(&d->r);
		q->nouts = want;	/* all anonymous and unbuffered */
		return STATUS_OK;
	}
	if (mpr_array(&d->r, &n) < 0 || n != want)
		return BAD(d, want == 2 ? "TEE outs must be nil or an array of 2 outputs" :
		    "link outs must be nil or an array of 1 output");
	q->nouts = n;
	for (uint32_t i = 0; i < n; i++)
		if ((st = dec_link_out(d, &q->outs[i])) != STATUS_OK)
			return st;
	return STATUS_OK;
}

/* OR, FAN_IN inputs (names) and REPEAT values: 1 to max_select_cases of them, into cases. */
static int
dec_link_list(struct rdec *d, struct proto_case *cases, uint32_t case_cap)
{
	struct proto_request *q = d->req;
	bool values = q->op == OP_REPEAT;
	uint32_t n;
	int st;

	if (mpr_array(&d->r, &n) < 0)
		return BAD(d, values ? "REPEAT values must be an array" : "link inputs must be an array");
	if (n == 0)
		return BAD(d, values ? "REPEAT needs at least one value" : "link needs at least one input");
	if (n > case_cap || n > d->limits->max_select_cases) {
		*d->why = values ? "REPEAT has more values than max_select_cases" :
		    "link has more inputs than max_select_cases";
		return STATUS_LIMIT;
	}
	for (uint32_t i = 0; i < n; i++) {
		memset(&cases[i], 0, sizeof cases[i]);
		cases[i].dir = values;
		st = values ? dec_value(d, &cases[i].value) :
		    dec_name(d, false, &cases[i].name, &cases[i].name_len);
		if (st != STATUS_OK)
			return st;
	}
	q->cases = cases;
	q->ncases = n;
	return STATUS_OK;
}

static int
dec_fan_out(struct rdec *d)
{
	struct proto_request *q = d->req;

	if (mpr_str(&d->r, &q->stage, &q->stage_len) < 0 || q->stage_len == 0 ||
	    q->stage_len > PROTO_STAGE_NAME_MAX || !proto_utf8_valid((const uint8_t *)q->stage, q->stage_len))
		return BAD(d, "FAN_OUT stage must be a str of 1 to 64 bytes of UTF-8");
	if (mpr_uint(&d->r, &q->count) < 0 || q->count == 0)
		return BAD(d, "FAN_OUT workers must be an integer of 1 or more");
	if (mpr_bool(&d->r, &q->ordered) < 0)
		return BAD(d, "FAN_OUT ordered must be a boolean");
	return STATUS_OK;
}

static int
dec_link(struct rdec *d, struct proto_case *cases, uint32_t case_cap)
{
	struct proto_request *q = d->req;
	int st;

	if ((st = dec_link_head(d)) != STATUS_OK)
		return st;
	if (q->op == OP_OR || q->op == OP_FAN_IN || q->op == OP_REPEAT)
		return dec_link_list(d, cases, case_cap);
	if ((st = dec_name(d, false, &q->name, &q->name_len)) != STATUS_OK)
		return st;
	if (q->op == OP_TAKE && mpr_uint(&d->r, &q->count) < 0)
		return BAD(d, "TAKE n must be a non-negative integer");
	if (q->op == OP_FAN_OUT)
		return dec_fan_out(d);
	return STATUS_OK;
}

/* MAKE's delivery options: nil, or a map with ack_wait (§16). */
static int
dec_delivery(struct rdec *d)
{
	struct proto_delivery *o = &d->req->dlv;
	const char *key;
	uint32_t n, klen;
	bool acked = false;

	o->max_deliver = PROTO_MAX_DELIVER_DEFAULT;
	o->max_unacked = PROTO_MAX_UNACKED_DEFAULT;
	o->max_ack_pending = PROTO_MAX_ACK_PENDING_DEFAULT;
	if (mpr_peek(&d->r) == MPR_NIL)
		return mpr_nil(&d->r), STATUS_OK;
	if (mpr_map(&d->r, &n) < 0)
		return BAD(d, "MAKE delivery options must be nil or a map");
	while (n-- > 0) {
		if (mpr_str(&d->r, &key, &klen) < 0)
			return BAD(d, "MAKE delivery option names must be str");
		if (klen == 8 && memcmp(key, "ack_wait", 8) == 0) {
			if (mpr_uint(&d->r, &o->ack_wait_us) < 0 || o->ack_wait_us == 0 ||
			    o->ack_wait_us > PROTO_WAIT_MAX)
				return BAD(d, "ack_wait must be 1 to 2^48 microseconds");
			o->on = true;
		} else if (klen == 7 && memcmp(key, "durable", 7) == 0) {
			if (mpr_bool(&d->r, &o->durable) < 0)
				return BAD(d, "durable must be a bool");
			continue;
		} else if (klen == 11 && memcmp(key, "max_deliver", 11) == 0) {
			if (mpr_uint(&d->r, &o->max_deliver) < 0 || o->max_deliver > UINT32_MAX)
				return BAD(d, "max_deliver must be 0 (unlimited) to 2^32-1");
		} else if (klen == 11 && memcmp(key, "max_unacked", 11) == 0) {
			if (mpr_uint(&d->r, &o->max_unacked) < 0 || o->max_unacked > UINT32_MAX)
				return BAD(d, "max_unacked must be 0 (unlimited) to 2^32-1");
		} else if (klen == 15 && memcmp(key, "max_ack_pending", 15) == 0) {
			if (mpr_uint(&d->r, &o->max_ack_pending) < 0 || o->max_ack_pending > UINT32_MAX)
				return BAD(d, "max_ack_pending must be 0 (unlimited) to 2^32-1");
		} else if (klen == 11 && memcmp(key, "dead_letter", 11) == 0) {
			int st = dec_name(d, true, &o->dead_letter, &o->dead_letter_len);

			if (st != STATUS_OK)
				return st;
		} else {
			return BAD(d, "unknown MAKE option (ack_wait, max_deliver, max_unacked, max_ack_pending, "
			    "dead_letter, durable)");
		}
		acked = true;
	}
	if (acked && !o->on)
		return BAD(d, "delivery options need ack_wait");
	return STATUS_OK;
}

/* ACK: [tag...], 1 to PROTO_ACK_TAGS_MAX tags of 1 or more. */
static int
dec_ack(struct rdec *d)
{
	struct proto_list *l = &d->req->tags;
	uint64_t tag;
	uint32_t n;

	if (mpr_array(&d->r, &n) < 0 || n == 0)
		return BAD(d, "ACK tags must be an array of 1 or more tags");
	if (n > PROTO_ACK_TAGS_MAX) {
		*d->why = "ACK has more than 65536 tags";
		return STATUS_LIMIT;
	}
	l->p = d->r.p;
	l->left = n;
	while (n-- > 0)
		if (mpr_uint(&d->r, &tag) < 0 || tag == 0)
			return BAD(d, "an ACK tag must be an integer of 1 or more");
	l->end = d->r.p;
	return STATUS_OK;
}

/* NACK: tag, delay; TOUCH: tag. */
static int
dec_tag_op(struct rdec *d)
{
	struct proto_request *q = d->req;
	uint64_t delay;

	if (mpr_uint(&d->r, &q->tag) < 0 || q->tag == 0)
		return BAD(d, "tag must be an integer of 1 or more");
	if (q->op == OP_TOUCH)
		return STATUS_OK;
	if (mpr_uint(&d->r, &delay) < 0 || delay > PROTO_WAIT_MAX)
		return BAD(d, "NACK delay must be 0 to 2^48 microseconds");
	q->delay_us = (int64_t)delay;
	return STATUS_OK;
}

/* STREAM: [name...] of 1 to max_select_cases channels (into cases), then credit >= 1. */
static int
dec_stream(struct rdec *d, struct proto_case *cases, uint32_t case_cap)
{
	struct proto_request *q = d->req;
	uint32_t n;
	int st;

	if (mpr_array(&d->r, &n) < 0)
		return BAD(d, "STREAM channels must be an array of names");
	if (n == 0)
		return BAD(d, "STREAM needs at least one channel");
	if (n > case_cap || n > d->limits->max_select_cases) {
		*d->why = "STREAM has more channels than max_select_cases";
		return STATUS_LIMIT;
	}
	for (uint32_t i = 0; i < n; i++) {
		memset(&cases[i], 0, sizeof cases[i]);
		if ((st = dec_name(d, false, &cases[i].name, &cases[i].name_len)) != STATUS_OK)
			return st;
	}
	q->cases = cases;
	q->ncases = n;
	if (mpr_uint(&d->r, &q->count) < 0 || q->count == 0)
		return BAD(d, "STREAM credit must be an integer of 1 or more");
	return STATUS_OK;
}

static int
dec_credit(struct rdec *d)
{
	struct proto_request *q = d->req;

	if (mpr_uint(&d->r, &q->target) < 0 || q->target == 0)
		return BAD(d, "CREDIT stream must be a request id (1 or more)");
	if (mpr_uint(&d->r, &q->count) < 0 || q->count == 0)
		return BAD(d, "CREDIT n must be an integer of 1 or more");
	return STATUS_OK;
}

/* CLOSE: name, then an optional error, nil or [code, message] (§5). */
static int
dec_close(struct rdec *d)
{
	struct proto_close_err *err = &d->req->close_err;
	uint32_t n;
	int st;

	if ((st = dec_name(d, false, &d->req->name, &d->req->name_len)) != STATUS_OK)
		return st;
	if (d->nargs == 1)
		return STATUS_OK;
	if (mpr_peek(&d->r) == MPR_NIL)
		return mpr_nil(&d->r), STATUS_OK;
	if (mpr_array(&d->r, &n) < 0 || n != 2)
		return BAD(d, "CLOSE error must be nil or [code, message]");
	if (mpr_uint(&d->r, &err->code) < 0)
		return BAD(d, "CLOSE error code must be a non-negative integer");
	if (mpr_str(&d->r, &err->msg, &err->msg_len) < 0)
		return BAD(d, "CLOSE error message must be a str");
	if (err->msg_len > PROTO_CLOSE_MSG_MAX)
		return BAD(d, "CLOSE error message is longer than 1024 bytes");
	if (!proto_utf8_valid((const uint8_t *)err->msg, err->msg_len))
		return BAD(d, "CLOSE error message is not valid UTF-8");
	err->set = true;
	return STATUS_OK;
}

static int
dec_admin(struct rdec *d)
{
	struct proto_request *q = d->req;

	switch (q->op) {
	case OP_CHANNELS:
		if (mpr_peek(&d->r) == MPR_NIL) {
			mpr_nil(&d->r);
		} else if (mpr_str(&d->r, &q->pattern, &q->pattern_len) < 0 ||
		    q->pattern_len > PROTO_NAME_MAX ||
		    !proto_utf8_valid((const uint8_t *)q->pattern, q->pattern_len)) {
			return BAD(d, "CHANNELS pattern must be nil or a str of at most 255 bytes of UTF-8");
		}
		/* FALLTHROUGH */
	case OP_WAITERS:
		if (mpr_uint(&d->r, &q->limit) < 0)
			return BAD(d, "limit must be a non-negative integer");
		return STATUS_OK;
	case OP_UNBLOCK:
		if (mpr_uint(&d->r, &q->target) < 0 || q->target == 0)
			return BAD(d, "UNBLOCK client must be a client id (1 or more)");
		if (mpr_peek(&d->r) == MPR_NIL)
			return mpr_nil(&d->r), STATUS_OK;
		if (mpr_uint(&d->r, &q->target_req) < 0 || q->target_req == 0)
			return BAD(d, "UNBLOCK request must be nil or a request id (1 or more)");
		return STATUS_OK;
	default:	/* STATS, CLIENTS, SHUTDOWN take nothing */
		return STATUS_OK;
	}
}

static int
dec_args(struct rdec *d, struct proto_case *cases, uint32_t case_cap)
{
	struct proto_request *q = d->req;
	int st;

	switch (q->op) {
	case OP_HELLO:
		return dec_hello(d);
	case OP_PING:
		return STATUS_OK;
	case OP_MAKE:
		if ((st = dec_name(d, true, &q->name, &q->name_len)) != STATUS_OK)
			return st;
		if (q->name && q->name[0] == '~')
			return BAD(d, "names starting with '~' are reserved for anonymous channels");
		if (mpr_uint(&d->r, &q->cap) < 0)
			return BAD(d, "cap must be a non-negative integer");
		if (d->r.p == d->r.end)
			return STATUS_OK;
		if ((st = dec_delivery(d)) != STATUS_OK)
			return st;
		if (q->dlv.on && q->name == NULL)
			return BAD(d, "an anonymous channel cannot have delivery options");
		if (q->dlv.dead_letter != NULL && q->dlv.dead_letter_len == q->name_len &&
		    memcmp(q->dlv.dead_letter, q->name, q->name_len) == 0)
			return BAD(d, "a channel cannot be its own dead_letter");
		return STATUS_OK;
	case OP_SEND:
		if ((st = dec_name(d, false, &q->name, &q->name_len)) != STATUS_OK)
			return st;
		return dec_value(d, &q->value);
	case OP_SELECT:
		return dec_select(d, cases, case_cap);
	case OP_CANCEL:
		if (mpr_uint(&d->r, &q->target) < 0 || q->target == 0)
			return BAD(d, "CANCEL target must be a request id (1 or more)");
		return STATUS_OK;
	case OP_XSETTLE:
		if (mpr_uint(&d->r, &q->target) < 0 || q->target == 0)
			return BAD(d, "XSETTLE target must be a request id (1 or more)");
		if (mpr_bool(&d->r, &q->keep) < 0)
			return BAD(d, "XSETTLE keep must be a boolean");
		return STATUS_OK;
	case OP_WANT:
		if (mpr_uint(&d->r, &q->target) < 0 || q->target == 0)
			return BAD(d, "WANT target must be a request id (1 or more)");
		return STATUS_OK;
	case OP_STATS: case OP_CHANNELS: case OP_CLIENTS: case OP_WAITERS:
	case OP_UNBLOCK: case OP_SHUTDOWN: case OP_CLUSTER_NODES:
		return dec_admin(d);
	case OP_STREAM:
		return dec_stream(d, cases, case_cap);
	case OP_CREDIT:
		return dec_credit(d);
	case OP_CLOSE:
		return dec_close(d);
	case OP_ACK:
		return dec_ack(d);
	case OP_NACK: case OP_TOUCH:
		return dec_tag_op(d);
	case OP_INFLIGHT:
		if ((st = dec_name(d, false, &q->name, &q->name_len)) != STATUS_OK)
			return st;
		if (mpr_uint(&d->r, &q->limit) < 0)
			return BAD(d, "limit must be a non-negative integer");
		return STATUS_OK;
	case OP_OR: case OP_OR_DONE: case OP_TEE: case OP_BRIDGE:
	case OP_FAN_IN: case OP_REPEAT: case OP_TAKE: case OP_FAN_OUT:
		return dec_link(d, cases, case_cap);
	default:		/* the one-name ops */
		return dec_name(d, false, &q->name, &q->name_len);
	}
}

static int
dec_wait(struct rdec *d)
{
	int64_t w;

	if (mpr_peek(&d->r) == MPR_NIL) {
		mpr_nil(&d->r);
		d->req->wait_us = PROTO_WAIT_FOREVER;
		return STATUS_OK;
	}
	switch (mpr_int(&d->r, &w)) {
	case 0:
		break;
	case MPR_ERANGE:
		return BAD(d, "wait is larger than 2^48 microseconds");
	default:
		return BAD(d, "wait must be nil or an integer number of microseconds");
	}
	if (w < 0)
		return BAD(d, "wait must not be negative");
	if (w > PROTO_WAIT_MAX)
		return BAD(d, "wait is larger than 2^48 microseconds");
	d->req->wait_us = w;
	return STATUS_OK;
}

int
proto_decode_request_general(const uint8_t *body, size_t len, const struct proto_limits *limits,
    struct proto_case *cases, uint32_t case_cap, struct proto_request *req, const char **why)
{
	struct rdec d = { .limits = limits, .req = req, .why = why };
	struct mpr whole;
	uint32_t n;
	int st;

	memset(req, 0, sizeof *req);
	mpr_init(&d.r, body, len);
	/* Check the whole structure once; field reads below then only fail on types. */
	whole = d.r;
	if ((st = mpr_skip(&whole)) < 0) {
		*why = st == MPR_EINVALID ? "frame is not valid msgpack" : "frame body is truncated or malformed";
		return STATUS_PROTOCOL;
	}
	if (whole.p != whole.end) {
		*why = "frame has bytes after its array";
		return STATUS_PROTOCOL;
	}
	if (mpr_array(&d.r, &n) < 0) {
		*why = "frame body is not an array";
		return STATUS_PROTOCOL;
	}
	if (n < 3) {
		*why = "request must be [op, id, wait, args...]";
		return STATUS_PROTOCOL;
	}
	if (mpr_uint(&d.r, &req->op) < 0 || req->op == 0) {
		*why = "op must be a positive integer";
		return STATUS_PROTOCOL;
	}
	if (mpr_uint(&d.r, &req->id) < 0 || req->id == 0) {
		req->id = 0;
		*why = "id must be an integer from 1 to 2^64-1";
		return STATUS_PROTOCOL;
	}
	/* the deferred-reply bit first: an error reply names the op without it */
	if ((req->op & PROTO_OP_DEFER) && proto_op_deferrable(req->op & ~(uint64_t)PROTO_OP_DEFER)) {
		req->op &= ~(uint64_t)PROTO_OP_DEFER;
		req->deferred = true;
	}
	if ((st = dec_wait(&d)) != STATUS_OK)
		return st;
	if (req->op > OP_MAX || proto_op_name(req->op) == NULL)
		return BAD(&d, "unknown op");
	d.nargs = n - 3;
	/* four ops have an optional last argument: CLOSE its error, MAKE its delivery options (§16),
	 * HELLO its caps, SELECT its hold and then its firm (§17) */
	if (d.nargs != proto_op_arity[req->op] &&
	    !((req->op == OP_CLOSE || req->op == OP_MAKE || req->op == OP_HELLO ||
	    req->op == OP_SELECT) && d.nargs == proto_op_arity[req->op] + 1u) &&
	    !(req->op == OP_SELECT && d.nargs == proto_op_arity[req->op] + 2u))
		return BAD(&d, "wrong number of arguments for this op");
	return dec_args(&d, cases, case_cap);
}
