/*
 * fuzz_decode_reply.c: a body as a reply to every op (and one past OP_MAX): the fast and general paths agree, and a decoded reply round-trips.
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

/* ---- replies ------------------------------------------------------------------------ */

/* A link's or a held SELECT's interim STARTED (§12, §17), its output names re-read. */
static int
encode_started(struct proto_out *o, const struct proto_reply *p)
{
	const char **names = calloc(p->list.left + 1, sizeof *names);
	size_t *lens = calloc(p->list.left + 1, sizeof *lens);
	struct mpr r;
	uint32_t len;
	int rc;

	CHECK(names != NULL && lens != NULL);
	mpr_init(&r, p->list.p, (size_t)(p->list.end - p->list.p));
	for (uint32_t i = 0; i < p->list.left; i++) {
		CHECK(mpr_str(&r, &names[i], &len) == 0);
		lens[i] = len;
	}
	CHECK(r.p == r.end);
	rc = proto_rep_started(o, p->id, names, lens, p->list.left);
	free(names);
	free(lens);
	CHECK(rc == 0);
	return 1;
}

/* Encode a decoded reply to op. 1: encoded; 0: not representable. */
static int
encode_reply(struct proto_out *o, uint64_t op, const struct proto_reply *p)
{
	const uint8_t *raw = p->value.kind == VALUE_NONE ? NULL : p->value.raw;
	int rc;

	if (p->status == STATUS_STARTED)
		return encode_started(o, p);
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
	case OP_CLUSTER_NODES:
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

/* A waiter's cases: each name inside the body; 1 after the last, or -1. */
static int
walk_cases(const struct proto_waiter_info *w, const uint8_t *body, size_t blen)
{
	struct proto_list cl;
	const char *name;
	uint32_t len, n = 0;
	uint8_t dir;
	int rc;

	CHECK(inside(w->cases, w->cases_len, body, blen));
	proto_case_list(w, &cl);
	while ((rc = proto_list_case(&cl, &dir, &name, &len)) == 1) {
		CHECK(inside(name, len, body, blen) && ++n <= w->ncases);
	}
	return rc < 0 ? -1 : 1;
}

/* The next item of op's list, its strings inside the body: 1, 0 at the end, -1 when malformed. */
static int
next_item(uint64_t op, struct proto_list *l, const uint8_t *body, size_t blen)
{
	struct proto_chan_info ci;
	struct proto_client_info cl;
	struct proto_waiter_info wi;
	struct proto_node_info ni;
	struct proto_inflight_info ii;
	const char *k;
	uint32_t kl;
	uint64_t v;
	int rc;

	switch (op) {
	case OP_STATS:
		if ((rc = proto_list_stat(l, &k, &kl, &v)) == 1)
			CHECK(inside(k, kl, body, blen));
		return rc;
	case OP_CHANNELS:
		if ((rc = proto_list_chan(l, &ci)) == 1)
			CHECK(inside(ci.name, ci.name_len, body, blen) &&
			    inside(ci.close_err.msg, ci.close_err.msg_len, body, blen));
		return rc;
	case OP_CLIENTS:
		if ((rc = proto_list_client(l, &cl)) == 1)
			CHECK(inside(cl.peer, cl.peer_len, body, blen) && inside(cl.name, cl.name_len, body, blen));
		return rc;
	case OP_WAITERS:
		return (rc = proto_list_waiter(l, &wi)) == 1 ? walk_cases(&wi, body, blen) : rc;
	case OP_CLUSTER_NODES:
		if ((rc = proto_list_node(l, &ni)) == 1)
			CHECK(inside(ni.name, ni.name_len, body, blen) &&
			    inside(ni.advertise, ni.advertise_len, body, blen));
		return rc;
	case OP_INFLIGHT:
		return proto_list_inflight(l, &ii);
	default:
		return 0;
	}
}

/* An OK reply's list, walked as libchanclient's admin calls do: it ends, never past the body. */
static void
walk_list(uint64_t op, const struct proto_reply *p, const uint8_t *body, size_t blen)
{
	struct proto_list l = p->list;
	uint32_t n = 0;
	int rc;

	while ((rc = next_item(op, &l, body, blen)) == 1)
		CHECK(++n <= p->list.left);
	CHECK(rc == 0 || rc == -1);
}

void
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
		/* MAKE's name is the handle the client makes: a valid name (§6) */
		CHECK(op != OP_MAKE || p.status != STATUS_OK || proto_name_valid(p.name, p.name_len, &why));
		CHECK(inside(p.hello.server, p.hello.server_len, body, blen));
		CHECK(inside(p.info.name, p.info.name_len, body, blen));
		CHECK(value_inside(&p.value, body, blen));
		CHECK(inside(p.close_err.msg, p.close_err.msg_len, body, blen));
		CHECK(inside(p.info.close_err.msg, p.info.close_err.msg_len, body, blen));
		/* a received value comes with ok true, nil with ok false (a SELECT's send case: ok true) */
		if (p.status == STATUS_OK && (op == OP_RECV || op == OP_SELECT || (op == OP_STREAM && p.interim)))
			CHECK(p.value.kind == VALUE_NONE ? !p.ok || op == OP_SELECT : p.ok);
		/* a close error comes only with ok false and no value */
		CHECK(!p.close_err.set || (!p.ok && p.value.kind == VALUE_NONE));
		/* and never with an ack channel's tag (PROTOCOL.md §16): 3 results or 4, not both */
		CHECK(!p.close_err.set || p.tag == 0);
		CHECK(p.index >= -1 || p.status != STATUS_OK);
		if (p.status == STATUS_STARTED) {
			/* interim, no message: a link's output names, a held SELECT's none */
			CHECK(p.interim && p.msg == NULL && p.value.kind == VALUE_NONE);
			CHECK(proto_op_is_link(op) || (op == OP_SELECT && p.list.left == 0));
			CHECK(inside(p.list.p, (size_t)(p.list.end - p.list.p), body, blen));
		} else if (p.status == STATUS_OK) {
			CHECK(op >= 1 && op <= OP_MAX);
			CHECK(p.msg == NULL);
			if (op == OP_RECV || op == OP_SELECT || op == OP_STREAM)
				check_value_reparse(&p.value);
			else
				CHECK(p.value.kind == VALUE_NONE);
		} else {
			CHECK(p.msg != NULL);
		}
		if (p.status == STATUS_OK)
			walk_list(op, &p, body, blen);
		roundtrip_reply(op, &p);
	}
}
