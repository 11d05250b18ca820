/*
 * router_tags.c: ack channels through a forwarder (PROTOCOL.md §17): a
 * value its owner delivered, under the owner's tag, to this node's peer
 * connection reaches the client under a tag of this node's own (above
 * ROUTER_TAG_BASE, so never one of its local tags), remembered as (client
 * connection, tag) <-> (peer, owner's tag). ACK, NACK and TOUCH of such a
 * tag go to the owner with the owner's tag; the client's end NACKs its
 * values there, so that they come back at once and no other client's do.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "codec.h"
#include "peer.h"
#include "router.h"
#include "router_int.h"

/* A tag this node handed to a client for a value in flight at its owner. */
struct ftag {
	struct hmap_node node;		/* in the router's ftags, by tag */
	uint64_t tag, otag;		/* the client's, the owner's */
	struct conn *c;
	TAILQ_ENTRY(ftag) clink;	/* on c's ftags */
	struct peer *pe;
};

/* A forwarded ACK: its tags (client's, owner's), to word the owner's error with the client's. */
struct router_acks {
	uint64_t n, unknown;		/* the client's tags forwarded; those not (not in flight, or another's) */
	uint64_t first_unknown;
	int unknown_st;			/* NOT_FOUND or PERMISSION_DENIED */
	uint64_t pairs[][2];
};

static struct ftag *
ftag_find(const struct router *r, uint64_t tag)
{
	struct hmap_node *n;

	HMAP_FOR_EACH_HASH(n, hmap_hash_u64(r->ftags.seed, tag), &r->ftags) {
		struct ftag *t = HMAP_ENTRY(n, struct ftag, node);

		if (t->tag == tag)
			return t;
	}
	return NULL;
}

static void
ftag_free(struct router *r, struct ftag *t)
{
	TAILQ_REMOVE(&t->c->ftags, t, clink);
	hmap_remove(&r->ftags, &t->node);
	free(t);
}

void
router_tags_nack(struct router *r, struct peer *pe, uint64_t otag)
{
	proto_out_reset(&r->out);
	if (proto_req_nack(&r->out, peers_next_id(r->peers), otag, 0) == 0)
		peer_write(pe, proto_out_data(&r->out), proto_out_len(&r->out));
}

int
router_tags_issue(struct router *r, struct conn *c, struct peer *pe, uint64_t otag, uint64_t *tag)
{
	struct ftag *t = malloc(sizeof *t);

	if (t == NULL)
		return -1;
	*t = (struct ftag){ .tag = ROUTER_TAG_BASE + ++r->next_tag, .otag = otag, .c = c, .pe = pe };
	if (hmap_insert(&r->ftags, &t->node, hmap_hash_u64(r->ftags.seed, t->tag)) < 0) {
		free(t);
		return -1;
	}
	TAILQ_INSERT_TAIL(&c->ftags, t, clink);
	*tag = t->tag;
	return 0;
}

bool
router_tagged_reply(uint64_t op, const uint8_t *body, size_t len)
{
	size_t n;

	if (op != OP_RECV && op != OP_SELECT && op != OP_STREAM)
		return false;
	n = proto_reply_nresults(body, len);
	return n == (op == OP_RECV ? 4u : 5u);
}

int
router_tags_relay(struct router *r, struct conn *c, struct peer *pe, uint64_t op, uint64_t id,
    const uint8_t *body, size_t len)
{
	struct proto_reply rep;
	const char *why;
	uint64_t tag;
	int rc;

	if (proto_decode_reply(body, len, op, &rep, &why) != STATUS_OK || rep.tag == 0)
		return -1;
	if (c->closing) {
		/* nobody will get it: back to its channel now */
		router_tags_nack(r, pe, rep.tag);
		return 1;
	}
	if (router_tags_issue(r, c, pe, rep.tag, &tag) < 0)
		goto fail;
	rc = op == OP_RECV ?
	    proto_rep_recv_ack(&r->s->out, id, rep.value.raw, rep.value.raw_len, tag, rep.count) :
	    proto_rep_select_ack(&r->s->out, id, rep.index, rep.value.raw, rep.value.raw_len, tag,
	    rep.count);
	if (rc < 0) {
		ftag_free(r, ftag_find(r, tag));
		goto fail;
	}
	return 0;
fail:
	router_tags_nack(r, pe, rep.tag);
	conn_reply_error(c, id, STATUS_LIMIT, "out of memory (the value went back to its channel)");
	return 1;
}

void
router_tags_gone(struct router *r, struct conn *c, struct peer *pe)
{
	struct hmap_node *n, *nx;
	struct ftag *t;
	size_t pos;

	while (c != NULL && (t = TAILQ_FIRST(&c->ftags)) != NULL) {
		router_tags_nack(r, t->pe, t->otag);
		ftag_free(r, t);
	}
	if (pe == NULL)
		return;
	HMAP_FOR_EACH_SAFE(n, nx, pos, &r->ftags) {
		t = HMAP_ENTRY(n, struct ftag, node);
		/* the owner gave it back when the peer connection ended */
		if (t->pe == pe)
			ftag_free(r, t);
	}
}

/* The client's own tag: NOT_FOUND, PERMISSION_DENIED or OK (*t set). */
static int
own_tag(const struct router *r, const struct conn *c, uint64_t tag, struct ftag **t)
{
	*t = ftag_find(r, tag);
	if (*t == NULL)
		return STATUS_NOT_FOUND;
	return (*t)->c == c ? STATUS_OK : STATUS_PERMISSION_DENIED;
}

/* NACK or TOUCH of tag t: to its owner; a NACKed tag ends here at once. */
static void
nack_touch(struct router *r, struct conn *c, const struct proto_request *q, struct ftag *t)
{
	struct peer *pe = t->pe;
	uint64_t pid = peers_next_id(r->peers);
	int rc;

	proto_out_reset(&r->out);
	rc = q->op == OP_NACK ? proto_req_nack(&r->out, pid, t->otag, q->delay_us) :
	    proto_req_touch(&r->out, pid, t->otag);
	if (rc < 0) {
		conn_reply_error(c, q->id, STATUS_LIMIT, "out of memory");
		return;
	}
	if (q->op == OP_NACK)
		ftag_free(r, t);
	router_fwd_send(r, c, q->id, q->op, pe, pid, NULL);
}

/*
 * The ACK's tags, all of this node's forwarded ones and of one owner: *pe
 * set, their pairs in a (malloc'd). false: answered here (nothing was acked).
 */
static bool
ack_tags(struct router *r, struct conn *c, const struct proto_request *q, struct peer **pe,
    struct router_acks **a)
{
	struct proto_list l = q->tags;
	uint64_t tag, n = q->tags.left;
	struct ftag *t;
	int st;

	*pe = NULL;
	if ((*a = calloc(1, sizeof **a + n * sizeof (*a)->pairs[0])) == NULL) {
		conn_reply_error(c, q->id, STATUS_LIMIT, "out of memory");
		return false;
	}
	while (proto_list_tag(&l, &tag) == 1) {
		if ((st = own_tag(r, c, tag, &t)) != STATUS_OK && tag >= ROUTER_TAG_BASE) {
			if ((*a)->unknown++ == 0) {
				(*a)->first_unknown = tag;
				(*a)->unknown_st = st;
			}
			continue;
		}
		if (st != STATUS_OK || (*pe != NULL && t->pe != *pe)) {
			free(*a);
			conn_reply_error(c, q->id, STATUS_BAD_REQUEST, "an ACK through this node takes "
			    "the tags of one node's channels only: ack the others in another ACK");
			return false;
		}
		*pe = t->pe;
		(*a)->pairs[(*a)->n][0] = tag;
		(*a)->pairs[(*a)->n++][1] = t->otag;
	}
	return true;
}

/* ACK of forwarded tags: to their owner with its tags, which end here at once. */
static void
ack(struct router *r, struct conn *c, const struct proto_request *q)
{
	uint64_t *otags, pid;
	struct router_acks *a;
	struct peer *pe;
	char why[128];

	if (!ack_tags(r, c, q, &pe, &a))
		return;
	if (a->n == 0) {
		snprintf(why, sizeof why, "tag %" PRIu64 " %s (0 of %" PRIu64 " acked)", a->first_unknown,
		    a->unknown_st == STATUS_NOT_FOUND ? "is not in flight" : "is held by another connection",
		    a->unknown);
		conn_reply_error(c, q->id, a->unknown_st, why);
		free(a);
		return;
	}
	if ((otags = malloc(a->n * sizeof *otags)) == NULL) {
		free(a);
		conn_reply_error(c, q->id, STATUS_LIMIT, "out of memory");
		return;
	}
	for (uint64_t i = 0; i < a->n; i++) {
		struct ftag *t = ftag_find(r, a->pairs[i][0]);

		otags[i] = a->pairs[i][1];
		/* ended now (a tag listed twice is found once) */
		if (t != NULL)
			ftag_free(r, t);
	}
	pid = peers_next_id(r->peers);
	proto_out_reset(&r->out);
	if (proto_req_ack(&r->out, pid, otags, a->n) < 0) {
		free(a);
		conn_reply_error(c, q->id, STATUS_LIMIT, "out of memory");
	} else {
		router_fwd_send(r, c, q->id, q->op, pe, pid, a);
	}
	free(otags);
}

bool
router_tags_route(struct router *r, struct conn *c, const struct proto_request *q)
{
	struct proto_list l = q->tags;
	uint64_t tag = 0;
	struct ftag *t;
	int st;

	if (q->op == OP_ACK) {
		/* all local: dispatch's */
		while (proto_list_tag(&l, &tag) == 1 && tag < ROUTER_TAG_BASE)
			;
		if (tag < ROUTER_TAG_BASE)
			return true;
		ack(r, c, q);
		return false;
	}
	if (q->tag < ROUTER_TAG_BASE)
		return true;
	if ((st = own_tag(r, c, q->tag, &t)) != STATUS_OK)
		conn_reply_error(c, q->id, st, st == STATUS_NOT_FOUND ? "tag is not in flight" :
		    "tag is held by another connection");
	else
		nack_touch(r, c, q, t);
	return false;
}

void
router_tags_free(struct router *r)
{
	struct hmap_node *n, *nx;
	size_t pos;

	HMAP_FOR_EACH_SAFE(n, nx, pos, &r->ftags)
		free(HMAP_ENTRY(n, struct ftag, node));
}

void
router_acks_reply(struct router *r, struct conn *c, uint64_t id, const struct router_acks *a,
    const uint8_t *body, size_t len)
{
	struct proto_reply rep;
	const char *why;
	char msg[160], buf[160];
	uint64_t otag = 0, acked = 0, bad = a->first_unknown;
	int status = a->unknown_st;

	if (proto_decode_reply(body, len, OP_ACK, &rep, &why) != STATUS_OK)
		return;
	if (rep.status == STATUS_OK && a->unknown == 0) {
		if (proto_rep_uint(&r->s->out, id, rep.n) == 0)
			conn_flush_out(c);
		return;
	}
	if (rep.status == STATUS_OK) {
		acked = rep.n;
	} else {
		/* "tag O is not in flight (A of N acked)", in the owner's tags */
		snprintf(buf, sizeof buf, "%.*s", (int)rep.msg_len, rep.msg);
		if (sscanf(buf, "tag %" SCNu64 "%*[^(](%" SCNu64, &otag, &acked) != 2)
			acked = 0;
		for (uint64_t i = 0; i < a->n; i++) {
			if (a->pairs[i][1] == otag)
				bad = a->pairs[i][0];
		}
		status = rep.status;
	}
	snprintf(msg, sizeof msg, "tag %" PRIu64 " %s (%" PRIu64 " of %" PRIu64 " acked)", bad,
	    status == STATUS_NOT_FOUND ? "is not in flight" : "is held by another connection", acked,
	    a->n + a->unknown);
	conn_reply_error(c, id, status, msg);
}
