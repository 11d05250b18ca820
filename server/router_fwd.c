/*
 * router_fwd.c: requests forwarded to their channel's owner over a peer
 * connection (peer.h, PROTOCOL.md §17): (client connection, client id)
 * <-> peer id until the last reply, which is relayed with the client's id;
 * CANCEL and CREDIT follow them; a lost peer or a gone client ends them.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acl.h"
#include "clock.h"
#include "cluster.h"
#include "codec.h"
#include "log.h"
#include "peer.h"
#include "request.h"
#include "router.h"
#include "router_int.h"
#include "stats.h"
#include "xpump.h"
#include "xselect.h"
#include "xstream.h"

/*
 * A request forwarded to its channel's owner, until its last reply. It
 * never outlives its connection: conn_cancel_all ends it (router_forget).
 */
struct fwd {
	struct remote rq;
	struct conn *c;
	struct hmap_node by_pid;	/* in the router's fwds */
	TAILQ_ENTRY(fwd) clink;		/* on c's fwds */
	uint64_t pid;			/* its id on the peer connection */
	struct peer *pe;
	struct router_acks *acks;	/* an ACK's tags (router_tags.c), or NULL */
};

static void
fwd_free(struct router *r, struct fwd *f)
{
	f->c->nforwarded--;
	TAILQ_REMOVE(&f->c->fwds, f, clink);
	hmap_remove(&r->ids, &f->rq.node);
	hmap_remove(&r->fwds, &f->by_pid);
	free(f->acks);
	free(f);
}

void
router_fwds_free(struct router *r)
{
	struct hmap_node *n, *nx;
	size_t pos;

	HMAP_FOR_EACH_SAFE(n, nx, pos, &r->fwds) {
		free(HMAP_ENTRY(n, struct fwd, by_pid)->acks);
		free(HMAP_ENTRY(n, struct fwd, by_pid));
	}
}

void
router_unavailable(struct router *r, struct conn *c, uint64_t id, const char *why)
{
	cluster_counters(r->cl)->unavailable++;
	conn_reply_error(c, id, STATUS_UNAVAILABLE, why);
}

/* The client's rights on what q names, checked here as the owner would (§13); false: answered. */
static bool
allowed_there(struct conn *c, const struct proto_request *q)
{
	switch (q->op) {
	case OP_MAKE:
		return acl_allow(c, q->id, RIGHT_MAKE, q->name, q->name_len);
	case OP_SEND:
		return acl_allow(c, q->id, RIGHT_SEND, q->name, q->name_len);
	case OP_RECV:
		return acl_allow(c, q->id, RIGHT_RECV, q->name, q->name_len);
	case OP_CLOSE:
		return acl_allow(c, q->id, RIGHT_CLOSE, q->name, q->name_len);
	case OP_DELETE:
		return acl_allow(c, q->id, RIGHT_DELETE, q->name, q->name_len);
	case OP_SELECT: case OP_STREAM:
		return acl_allow_cases(c, q);
	default:
		return acl_allow(c, q->id, 0, q->name, q->name_len);
	}
}

/* Write r->out's frame to pe as request pid of (c, id, op) that came at start; false when it could not go. */
static bool
send_fwd(struct router *r, struct conn *c, uint64_t id, uint64_t op, struct peer *pe,
    uint64_t pid, int64_t start, struct router_acks *acks, bool deferred)
{
	struct fwd *f = calloc(1, sizeof *f);

	if (f == NULL) {
		free(acks);
		goto fail;
	}
	*f = (struct fwd){ .rq = { .conn_id = c->id, .id = id, .op = op, .start = start,
	    .forwarded = true, .deferred = deferred }, .c = c, .pid = pid, .pe = pe, .acks = acks };
	if (hmap_insert(&r->ids, &f->rq.node, ids_hash(r, c->id, id)) < 0)
		goto fail;
	if (hmap_insert(&r->fwds, &f->by_pid, hmap_hash_u64(r->fwds.seed, pid)) < 0) {
		hmap_remove(&r->ids, &f->rq.node);
		goto fail;
	}
	c->nforwarded++;
	TAILQ_INSERT_TAIL(&c->fwds, f, clink);
	/* known before it is written: nothing can run at the owner that nobody waits for */
	if (peer_write(pe, proto_out_data(&r->out), proto_out_len(&r->out)) < 0) {
		fwd_free(r, f);
		f = NULL;
		goto fail;
	}
	cluster_counters(r->cl)->forwarded++;
	/* counted when its last reply is relayed */
	r->s->current.counted = true;
	return true;
fail:
	if (f != NULL)
		free(f->acks);
	free(f);
	conn_reply_error(c, id, STATUS_LIMIT, "out of memory");
	return false;
}

bool
router_fwd_send(struct router *r, struct conn *c, uint64_t id, uint64_t op, struct peer *pe,
    uint64_t pid, struct router_acks *acks)
{
	return send_fwd(r, c, id, op, pe, pid, clock_now_ns(), acks, false);
}

/* Forward q (body) to node at addr, with what is left of its wait. */
void
router_forward(struct router *r, struct conn *c, const struct proto_request *q,
    const uint8_t *body, size_t len, const char *node, const char *addr)
{
	int64_t start = router_came(r), wait = q->wait_us;
	/* held for etcd: what it waited */
	int64_t spent = (server_request_start(r->s) - start) / 1000;
	const char *why;
	struct peer *pe;
	uint64_t pid;

	if (!allowed_there(c, q))
		return;
	/* as many as may be pending here: the peer connection is shared by every client */
	if (c->nforwarded >= r->s->cfg.max_pending) {
		conn_reply_error(c, q->id, STATUS_LIMIT,
		    "max_pending requests are forwarded from this connection");
		return;
	}
	if ((pe = peer_get(r->peers, node, addr, &why)) == NULL) {
		router_unavailable(r, c, q->id, why);
		return;
	}
	/* a peer that does not read must not make this node buffer without bound */
	if (r->s->cfg.max_output_bytes != 0 && peer_unsent(pe) > r->s->cfg.max_output_bytes) {
		conn_reply_error(c, q->id, STATUS_LIMIT, "the connection to the owner has "
		    "max_output_bytes unsent; try again");
		return;
	}
	/* the wait budget travels: what etcd's answer took is spent */
	if (wait > 0)
		wait = wait > spent ? wait - spent : 0;
	pid = peers_next_id(r->peers);
	proto_out_reset(&r->out);
	if (proto_req_readdress(&r->out, body, len, pid, wait) < 0) {
		conn_reply_error(c, q->id, STATUS_LIMIT, "out of memory");
		return;
	}
	/* a longer id or wait could pass the owner's max_frame: that would close the peer connection */
	if (proto_out_len(&r->out) - PROTO_FRAME_HDR > r->s->cfg.max_frame) {
		conn_reply_error(c, q->id, STATUS_LIMIT, "the request is too large to forward (max_frame)");
		return;
	}
	/* held for etcd first: a WANT may have come meanwhile, so its reply is not held */
	send_fwd(r, c, q->id, q->op, pe, pid, start, NULL, q->deferred && r->again_start == 0);
}

/*
 * CANCEL or CREDIT of a request forwarded as f: it goes to the same peer,
 * about f's peer id; its reply comes back as any other.
 */
void
router_forward_to_target(struct router *r, struct conn *c, const struct proto_request *q,
    struct remote *rq)
{
	struct fwd *f = (struct fwd *)rq;
	uint64_t pid = peers_next_id(r->peers);
	int rc;

	proto_out_reset(&r->out);
	rc = q->op == OP_CANCEL ? proto_req_cancel(&r->out, pid, f->pid) :
	    proto_req_credit(&r->out, pid, f->pid, q->count);
	if (rc < 0) {
		conn_reply_error(c, q->id, STATUS_LIMIT, "out of memory");
		return;
	}
	router_fwd_send(r, c, q->id, q->op, f->pe, pid, NULL);
}

/* Is body, a reply to op, the last one (not a STREAM's value, not STARTED)? */
static bool
last_reply(uint64_t op, int status, const uint8_t *body, size_t len)
{
	if (status == STATUS_STARTED)
		return false;
	return op != OP_STREAM || status != STATUS_OK || proto_reply_nresults(body, len) == 1;
}

/*
 * A forwarded request, unlinked before its client hears how it ended: a
 * reply may close the client (a slow consumer), which ends its other
 * forwarded requests from inside the write. Connections are never freed
 * synchronously, so c stays valid until the loop runs again.
 */
struct ended {
	struct conn *c;
	uint64_t id, op, pid;
	int64_t start;
	struct peer *pe;
};

static void
unlink_one(struct router *r, struct fwd *f, struct ended *e)
{
	*e = (struct ended){ .c = f->c, .id = f->rq.id, .op = f->rq.op, .pid = f->pid,
	    .start = f->rq.start, .pe = f->pe };
	fwd_free(r, f);
}

/* The first forwarded request of c (c not NULL) or on pe, or NULL. */
static struct fwd *
first_of(struct router *r, const struct conn *c, const struct peer *pe)
{
	struct hmap_node *n;
	size_t pos;

	if (c != NULL)
		return TAILQ_FIRST(&c->fwds);
	for (n = hmap_first(&r->fwds, &pos); n != NULL; n = hmap_next(&r->fwds, n, &pos)) {
		struct fwd *f = HMAP_ENTRY(n, struct fwd, by_pid);

		if (f->pe == pe)
			return f;
	}
	return NULL;
}

/*
 * Unlink every forwarded request of c (or on pe) into *out (malloc'd);
 * returns how many. None: 0 and *out NULL. Out of memory: one at a time,
 * each unlinked as it is ended (the caller calls again).
 */
static size_t
unlink_all(struct router *r, const struct conn *c, const struct peer *pe, struct ended **out)
{
	size_t n = 0, cap = c != NULL ? c->nforwarded : hmap_count(&r->fwds);
	struct ended *e = cap > 0 ? malloc(cap * sizeof *e) : NULL;
	struct hmap_node *hn, *nx;
	size_t pos;
	struct fwd *f;

	*out = e;
	if (e == NULL) {
		if ((f = first_of(r, c, pe)) == NULL)
			return 0;
		if ((*out = malloc(sizeof **out)) != NULL) {
			unlink_one(r, f, *out);
			return 1;
		}
		/* not even one: they go without their replies, but none may outlive c */
		do
			fwd_free(r, f);
		while ((f = first_of(r, c, pe)) != NULL);
		return 0;
	}
	if (c != NULL) {
		while (n < cap && (f = TAILQ_FIRST(&c->fwds)) != NULL)
			unlink_one(r, f, &e[n++]);
	} else {
		HMAP_FOR_EACH_SAFE(hn, nx, pos, &r->fwds) {
			f = HMAP_ENTRY(hn, struct fwd, by_pid);
			if (n < cap && f->pe == pe)
				unlink_one(r, f, &e[n++]);
		}
	}
	if (n == 0) {		/* none on pe: e was sized by every peer's forwards */
		free(e);
		*out = NULL;
	}
	return n;
}

/* A reply from a peer: to its client with the client's id; a MOVED becomes UNAVAILABLE for one that did not ask. */
void
router_peer_replied(void *arg, uint64_t pid, const uint8_t *body, size_t len, int64_t now)
{
	struct router *r = arg;
	struct hmap_node *n;
	struct fwd *f = NULL;
	struct conn *c;
	struct peer *pe;
	struct router_acks *acks;
	uint64_t id, cid, op;
	int status;
	const char *why;
	char msg[400];
	struct proto_reply rep;
	bool bounce, deferred;

	HMAP_FOR_EACH_HASH(n, hmap_hash_u64(r->fwds.seed, pid), &r->fwds) {
		if (HMAP_ENTRY(n, struct fwd, by_pid)->pid == pid)
			f = HMAP_ENTRY(n, struct fwd, by_pid);
	}
	/* a request whose client went (its CANCEL's reply too): nobody waits for it */
	if (f == NULL && (xselect_replied(r->xs, pid, body, len) ||
	    xpump_replied(r->xps, pid, body, len)))
		return;
	if (f == NULL || proto_reply_header(body, len, &id, &status, &why) != STATUS_OK)
		return;
	c = f->c;
	cid = f->rq.id;
	op = f->rq.op;
	pe = f->pe;
	acks = f->acks;
	f->acks = NULL;
	deferred = f->rq.deferred;
	if ((bounce = status == STATUS_MOVED && !c->moved)) {
		/* ownership changed on the way: never a second hop (no loop between stale views) */
		if (proto_decode_reply(body, len, f->rq.op, &rep, &why) != STATUS_OK)
			rep.msg_len = 0;
		snprintf(msg, sizeof msg, "owned by another node at %.*s now; try again",
		    (int)rep.msg_len, rep.msg_len ? rep.msg : "");
		status = STATUS_UNAVAILABLE;
	}
	/* unlinked first: writing to c may end it, and f with it */
	if (last_reply(op, status, body, len)) {
		stats_record(&r->s->ops, op, status, now - f->rq.start);
		fwd_free(r, f);
	} else {
		f->acks = acks;
		acks = NULL;
	}
	if (!bounce && acks == NULL && status == STATUS_OK && router_tagged_reply(op, body, len)) {
		/* an ack channel's value: under a tag of this node's */
		if (router_tags_relay(r, c, pe, op, cid, body, len) == 0)
			conn_queue_out(c, deferred);
	} else if (c->closing) {
		/* nobody hears it */
	} else if (bounce) {
		router_unavailable(r, c, cid, msg);
	} else if (acks != NULL) {
		router_acks_reply(r, c, cid, acks, body, len);
	} else if (proto_rep_readdress(&r->s->out, body, len, cid) == 0) {
		/* held as a local deferred reply would be (§15), until a WANT or another reply */
		conn_queue_out(c, deferred);
	}
	free(acks);
}

/* pe's connection is gone: everything forwarded on it ends UNAVAILABLE now. */
void
router_peer_gone(void *arg, struct peer *pe, const char *why)
{
	struct router *r = arg;
	struct ended *e;
	size_t n, total = 0;
	char msg[600];

	xselect_peer_gone(r->xs, pe, why);
	xpump_peer_gone(r->xps, pe, why);
	router_tags_gone(r, NULL, pe);
	snprintf(msg, sizeof msg, "node %s lost: %s", peer_node(pe), why);
	while ((n = unlink_all(r, NULL, pe, &e)) > 0) {
		for (size_t i = 0; i < n; i++) {
			stats_record(&r->s->ops, e[i].op, STATUS_UNAVAILABLE,
			    clock_now_ns() - e[i].start);
			if (!e[i].c->closing)
				router_unavailable(r, e[i].c, e[i].id, msg);
		}
		free(e);
		total += n;
	}
	if (total > 0)
		log_warn("cluster-forwarded-ended node=%s ended=%zu status=UNAVAILABLE", peer_node(pe),
		    total);
}

size_t
router_forget(struct conn *c, int status)
{
	struct router *r = c->srv->router;
	struct ended *e;
	size_t n, total = xselect_forget(r->xs, c, status) + xstream_forget(r->xt, c, status) +
	    router_held_forget(r, c, status);

	while (c->nforwarded > 0 && (n = unlink_all(r, c, NULL, &e)) > 0) {
		for (size_t i = 0; i < n; i++) {
			/* its waiter at the owner goes now; the replies to both find nobody */
			proto_out_reset(&r->out);
			if (e[i].op != OP_CANCEL && e[i].op != OP_CREDIT &&
			    proto_req_cancel(&r->out, peers_next_id(r->peers), e[i].pid) == 0)
				peer_write(e[i].pe, proto_out_data(&r->out), proto_out_len(&r->out));
			stats_record(&r->s->ops, e[i].op, status, clock_now_ns() - e[i].start);
			if (!c->dead && !c->closing)
				conn_reply_error(c, e[i].id, status, request_status_message(status));
		}
		free(e);
		total += n;
	}
	/* its ack channels' values go back at their owners, as a local consumer's do */
	if (c->dead && !TAILQ_EMPTY(&c->ftags))
		router_tags_gone(r, c, NULL);
	return total;
}

