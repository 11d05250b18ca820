/*
 * router.c: local, forwarded, MOVED or UNAVAILABLE per request; requests
 * whose channel's owner is unknown wait for etcd, in their connection's
 * order. A forwarded request keeps (client connection, client id) <->
 * peer id until its last reply, which is relayed with the client's id.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "acl.h"
#include "clock.h"
#include "cluster.h"
#include "codec.h"
#include "dispatch.h"
#include "engine.h"
#include "log.h"
#include "peer.h"
#include "request.h"
#include "router.h"
#include "stats.h"

/* A client's request the router has, held or forwarded: its id is in use (§9) until it ends. */
struct remote {
	struct hmap_node node;		/* in the router's ids, by (conn_id, id) */
	uint64_t conn_id, id, op;
	int64_t start;			/* when it came: its latency, and what its wait has spent */
	bool forwarded;
};

/* A request held until etcd says who owns its channel, or behind one that is. */
struct held {
	struct remote rq;
	struct router *r;
	uint8_t *frame;
	size_t len;
	bool behind;			/* not asking etcd: waiting for an earlier one of its connection */
	bool resolved;			/* etcd answered: dispatch it again */
	bool canceled;			/* CANCEL answered it: etcd's answer only frees it */
	uint32_t asked;			/* etcd's answers it had before it was held */
	TAILQ_ENTRY(held) link;
};
TAILQ_HEAD(held_list, held);

/*
 * A request forwarded to its channel's owner, until its last reply. It
 * never outlives its connection: conn_cancel_all ends it (router_forget).
 */
struct fwd {
	struct remote rq;
	struct conn *c;
	struct hmap_node by_pid;	/* in the router's fwds */
	uint64_t pid;			/* its id on the peer connection */
	struct peer *pe;
};

struct router {
	struct server *s;
	struct cluster *cl;
	struct peers *peers;
	struct held_list held;
	struct hmap ids;		/* struct remote by (conn_id, id) */
	struct hmap fwds;		/* struct fwd by pid */
	struct proto_out out;		/* scratch: frames for the peers */
	uint32_t asked;			/* etcd's answers the request dispatched again has had */
	int64_t again_start;		/* ... and when it came */
};

static uint64_t
ids_hash(const struct router *r, uint64_t conn_id, uint64_t id)
{
	return hmap_hash_u64(r->ids.seed, conn_id * 0x9e3779b97f4a7c15ULL ^ id);
}

static struct remote *
remote_find(const struct router *r, uint64_t conn_id, uint64_t id)
{
	struct hmap_node *n;

	HMAP_FOR_EACH_HASH(n, ids_hash(r, conn_id, id), &r->ids) {
		struct remote *rq = HMAP_ENTRY(n, struct remote, node);

		if (rq->conn_id == conn_id && rq->id == id)
			return rq;
	}
	return NULL;
}

bool
router_has(struct conn *c, uint64_t id)
{
	struct router *r = c->srv->router;

	return hmap_count(&r->ids) > 0 && remote_find(r, c->id, id) != NULL;
}

/* A named (cluster) channel among what r waits on? */
static bool
waits_on_named(const struct request *r)
{
	enum case_dir dir;

	for (size_t i = 0; i < request_ncases(r); i++) {
		struct chan *ch = request_case(r, i, &dir);

		if (ch != NULL && !chan_anonymous(ch))
			return true;
	}
	return false;
}

/*
 * This node is fenced: operations waiting on its named channels end
 * UNAVAILABLE now rather than wait while another node may take them over.
 * Links run on as before (PROTOCOL.md §17).
 */
static void
fenced(void *arg)
{
	struct router *r = arg;
	struct hmap_node *n, *nx;
	struct conn *c;
	size_t pos, ended = 0;

	TAILQ_FOREACH(c, &r->s->conns, link) {
		HMAP_FOR_EACH_SAFE(n, nx, pos, &c->pending) {
			struct request *q = HMAP_ENTRY(n, struct request, node);

			if (q->kind != REQUEST_LINK && waits_on_named(q)) {
				request_cancel(q, STATUS_UNAVAILABLE);
				ended++;
			}
		}
	}
	log_warn("cluster-fenced-waiters ended=%zu status=UNAVAILABLE", ended);
}

static void peer_replied(void *arg, uint64_t pid, const uint8_t *body, size_t len);
static void peer_gone(void *arg, struct peer *pe, const char *why);

/* A node left the live set: what was forwarded to it ends now, not when TCP notices. */
static void
node_down(void *arg, const char *node)
{
	struct router *r = arg;

	peers_node_down(r->peers, node);
}

int
router_new(struct router **out, struct server *s, struct cluster *cl)
{
	struct router *r = calloc(1, sizeof *r);

	if (r == NULL)
		return -1;
	r->s = s;
	r->cl = cl;
	r->peers = s->peers;
	TAILQ_INIT(&r->held);
	hmap_init(&r->ids, (uint64_t)(uintptr_t)r ^ (uint64_t)clock_now_ns());
	hmap_init(&r->fwds, (uint64_t)(uintptr_t)r ^ 0x9e3779b97f4a7c15ULL);
	proto_out_init(&r->out);
	cluster_on_fenced(cl, fenced, r);
	cluster_on_node_down(cl, node_down, r);
	peers_on(r->peers, peer_replied, peer_gone, r);
	*out = r;
	return 0;
}

static void
held_free(struct held *h)
{
	free(h->frame);
	free(h);
}

static void
fwd_free(struct router *r, struct fwd *f)
{
	f->c->nforwarded--;
	hmap_remove(&r->ids, &f->rq.node);
	hmap_remove(&r->fwds, &f->by_pid);
	free(f);
}

void
router_free(struct router *r)
{
	struct held *h;
	struct hmap_node *n, *nx;
	size_t pos;

	if (r == NULL)
		return;
	while ((h = TAILQ_FIRST(&r->held)) != NULL) {
		TAILQ_REMOVE(&r->held, h, link);
		held_free(h);
	}
	HMAP_FOR_EACH_SAFE(n, nx, pos, &r->fwds)
		free(HMAP_ENTRY(n, struct fwd, by_pid));
	hmap_destroy(&r->ids);
	hmap_destroy(&r->fwds);
	proto_out_destroy(&r->out);
	free(r);
}

/* Requests of c held now. */
static size_t
held_count(const struct router *r, const struct conn *c)
{
	const struct held *h;
	size_t n = 0;

	TAILQ_FOREACH(h, &r->held, link) {
		if (h->rq.conn_id == c->id && !h->canceled)
			n++;
	}
	return n;
}

static struct conn *
conn_by_id(struct server *s, uint64_t id)
{
	struct conn *c;

	TAILQ_FOREACH(c, &s->conns, link) {
		if (c->id == id)
			return c->closing || c->dead ? NULL : c;
	}
	return NULL;
}

/* Dispatch h's frame again, as if it had just come (its id is free again first). */
static void
redispatch(struct router *r, struct held *h)
{
	struct conn *c = conn_by_id(r->s, h->rq.conn_id);

	hmap_remove(&r->ids, &h->rq.node);
	if (c != NULL) {
		r->asked = h->asked + h->resolved;
		r->again_start = h->rq.start;
		r->s->stats.requests_total--;	/* it was counted when it came */
		dispatch_frame(c, h->frame, h->len);
		r->asked = 0;
		r->again_start = 0;
	}
	held_free(h);
}

/* etcd answered for h: h first, then its connection's requests behind it, in order. */
static void
resolved(void *arg, int status, const char *why)
{
	struct held *h = arg, *b, *next;
	struct router *r = h->r;
	struct held_list behind = TAILQ_HEAD_INITIALIZER(behind);
	struct conn *c;

	TAILQ_REMOVE(&r->held, h, link);
	for (b = TAILQ_FIRST(&r->held); b != NULL; b = next) {
		next = TAILQ_NEXT(b, link);
		if (b->rq.conn_id == h->rq.conn_id && b->behind) {
			TAILQ_REMOVE(&r->held, b, link);
			TAILQ_INSERT_TAIL(&behind, b, link);
		}
	}
	if (h->canceled) {
		held_free(h);
	} else if (status != STATUS_OK) {
		hmap_remove(&r->ids, &h->rq.node);
		if ((c = conn_by_id(r->s, h->rq.conn_id)) != NULL) {
			cluster_stats(r->cl)->unavailable++;
			stats_record(&r->s->ops, h->rq.op, STATUS_UNAVAILABLE,
			    clock_now_ns() - h->rq.start);
			conn_reply_error(c, h->rq.id, STATUS_UNAVAILABLE, why);
		}
		held_free(h);
	} else {
		h->resolved = true;
		redispatch(r, h);
	}
	while ((b = TAILQ_FIRST(&behind)) != NULL) {
		TAILQ_REMOVE(&behind, b, link);
		redispatch(r, b);
	}
}

/* Hold q until etcd answers for name (name NULL: behind an earlier held request). */
static void
hold(struct router *r, struct conn *c, const struct proto_request *q, const uint8_t *body,
    size_t len, const char *name, uint32_t nlen)
{
	struct held *h = NULL;

	if (held_count(r, c) >= r->s->cfg.max_pending) {
		conn_reply_error(c, q->id, STATUS_LIMIT,
		    "max_pending requests are waiting for etcd on this connection");
		return;
	}
	if ((h = calloc(1, sizeof *h)) == NULL || (h->frame = malloc(len)) == NULL)
		goto fail;
	*h = (struct held){ .rq = { .conn_id = c->id, .id = q->id, .op = q->op,
	    .start = r->again_start ? r->again_start : clock_now_ns() }, .r = r,
	    .frame = h->frame, .len = len, .behind = name == NULL, .asked = r->asked };
	memcpy(h->frame, body, len);
	if (hmap_insert(&r->ids, &h->rq.node, ids_hash(r, c->id, q->id)) < 0)
		goto fail;
	TAILQ_INSERT_TAIL(&r->held, h, link);
	if (name != NULL && cluster_resolve(r->cl, name, nlen, q->op == OP_MAKE, resolved, h) < 0) {
		TAILQ_REMOVE(&r->held, h, link);
		hmap_remove(&r->ids, &h->rq.node);
		goto fail;
	}
	/* not counted now: it is counted when it is dispatched again */
	r->s->current.counted = true;
	return;
fail:
	if (h != NULL)
		held_free(h);
	conn_reply_error(c, q->id, STATUS_LIMIT, "out of memory");
}

static bool
anonymous(const char *name, uint32_t len)
{
	return len > 0 && name[0] == '~';
}

static void
unavailable(struct router *r, struct conn *c, uint64_t id, const char *why)
{
	cluster_stats(r->cl)->unavailable++;
	conn_reply_error(c, id, STATUS_UNAVAILABLE, why);
}

/* ---- forwarding ------------------------------------------------------------------- */

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

/* Write r->out's frame to pe as request pid of (c, id, op); false when it could not go. */
static bool
send_fwd(struct router *r, struct conn *c, uint64_t id, uint64_t op, struct peer *pe,
    uint64_t pid, int64_t start)
{
	struct fwd *f = calloc(1, sizeof *f);

	if (f == NULL)
		goto fail;
	*f = (struct fwd){ .rq = { .conn_id = c->id, .id = id, .op = op, .start = start,
	    .forwarded = true }, .c = c, .pid = pid, .pe = pe };
	if (hmap_insert(&r->ids, &f->rq.node, ids_hash(r, c->id, id)) < 0)
		goto fail;
	if (hmap_insert(&r->fwds, &f->by_pid, hmap_hash_u64(r->fwds.seed, pid)) < 0) {
		hmap_remove(&r->ids, &f->rq.node);
		goto fail;
	}
	c->nforwarded++;
	/* known before it is written: nothing can run at the owner that nobody waits for */
	if (peer_write(pe, proto_out_data(&r->out), proto_out_len(&r->out)) < 0) {
		fwd_free(r, f);
		f = NULL;
		goto fail;
	}
	cluster_stats(r->cl)->forwarded++;
	/* counted when its last reply is relayed */
	r->s->current.counted = true;
	return true;
fail:
	free(f);
	conn_reply_error(c, id, STATUS_LIMIT, "out of memory");
	return false;
}

/* Forward q (body) to node at addr, with what is left of its wait. */
static void
forward(struct router *r, struct conn *c, const struct proto_request *q, const uint8_t *body,
    size_t len, const char *node, const char *addr)
{
	int64_t start = r->again_start ? r->again_start : clock_now_ns(), wait = q->wait_us;
	int64_t spent = (clock_now_ns() - start) / 1000;
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
		unavailable(r, c, q->id, why);
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
	send_fwd(r, c, q->id, q->op, pe, pid, start);
}

/*
 * CANCEL or CREDIT of a request forwarded as f: it goes to the same peer,
 * about f's peer id; its reply comes back as any other.
 */
static void
forward_to_target(struct router *r, struct conn *c, const struct proto_request *q, struct fwd *f)
{
	uint64_t pid = peers_next_id(r->peers);
	int rc;

	proto_out_reset(&r->out);
	rc = q->op == OP_CANCEL ? proto_req_cancel(&r->out, pid, f->pid) :
	    proto_req_credit(&r->out, pid, f->pid, q->count);
	if (rc < 0) {
		conn_reply_error(c, q->id, STATUS_LIMIT, "out of memory");
		return;
	}
	send_fwd(r, c, q->id, q->op, f->pe, pid, clock_now_ns());
}

/* CANCEL of a held request: it ends CANCELED now, then the CANCEL is OK (as dispatch's op_cancel). */
static void
cancel_held(struct router *r, struct conn *c, const struct proto_request *q, struct held *h)
{
	hmap_remove(&r->ids, &h->rq.node);
	stats_record(&r->s->ops, h->rq.op, STATUS_CANCELED, clock_now_ns() - h->rq.start);
	conn_reply_error(c, h->rq.id, STATUS_CANCELED, "canceled");
	if (h->behind) {
		TAILQ_REMOVE(&r->held, h, link);
		held_free(h);
	} else {
		/* etcd's answer still comes to it: it frees it and lets those behind it run */
		h->canceled = true;
	}
	if (proto_rep_ok(&r->s->out, q->id) == 0)
		conn_flush_out(c);
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

	for (n = hmap_first(&r->fwds, &pos); n != NULL; n = hmap_next(&r->fwds, n, &pos)) {
		struct fwd *f = HMAP_ENTRY(n, struct fwd, by_pid);

		if (c != NULL ? f->c == c : f->pe == pe)
			return f;
	}
	return NULL;
}

/*
 * Unlink every forwarded request of c (or on pe) into *out (malloc'd);
 * returns how many. Out of memory: one at a time, each unlinked as it is
 * ended (*out NULL, and the caller calls again).
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
	HMAP_FOR_EACH_SAFE(hn, nx, pos, &r->fwds) {
		f = HMAP_ENTRY(hn, struct fwd, by_pid);
		if (n < cap && (c != NULL ? f->c == c : f->pe == pe))
			unlink_one(r, f, &e[n++]);
	}
	return n;
}

/* A reply from a peer: to its client with the client's id; a MOVED becomes UNAVAILABLE for one that did not ask. */
static void
peer_replied(void *arg, uint64_t pid, const uint8_t *body, size_t len)
{
	struct router *r = arg;
	struct hmap_node *n;
	struct fwd *f = NULL;
	struct conn *c;
	uint64_t id, cid;
	int status;
	const char *why;
	char msg[400];
	struct proto_reply rep;
	bool bounce;

	HMAP_FOR_EACH_HASH(n, hmap_hash_u64(r->fwds.seed, pid), &r->fwds) {
		if (HMAP_ENTRY(n, struct fwd, by_pid)->pid == pid)
			f = HMAP_ENTRY(n, struct fwd, by_pid);
	}
	/* a request whose client went (its CANCEL's reply too): nobody waits for it */
	if (f == NULL || proto_reply_header(body, len, &id, &status, &why) != STATUS_OK)
		return;
	c = f->c;
	cid = f->rq.id;
	if ((bounce = status == STATUS_MOVED && !c->moved)) {
		/* ownership changed on the way: never a second hop (no loop between stale views) */
		if (proto_decode_reply(body, len, f->rq.op, &rep, &why) != STATUS_OK)
			rep.msg_len = 0;
		snprintf(msg, sizeof msg, "owned by another node at %.*s now; try again",
		    (int)rep.msg_len, rep.msg_len ? rep.msg : "");
		status = STATUS_UNAVAILABLE;
	}
	/* unlinked first: writing to c may end it, and f with it */
	if (last_reply(f->rq.op, status, body, len)) {
		stats_record(&r->s->ops, f->rq.op, status, clock_now_ns() - f->rq.start);
		fwd_free(r, f);
	}
	if (c->closing)
		return;
	if (bounce)
		unavailable(r, c, cid, msg);
	else if (proto_rep_readdress(&r->s->out, body, len, cid) == 0)
		conn_flush_out(c);
}

/* pe's connection is gone: everything forwarded on it ends UNAVAILABLE now. */
static void
peer_gone(void *arg, struct peer *pe, const char *why)
{
	struct router *r = arg;
	struct ended *e;
	size_t n, total = 0;
	char msg[600];

	snprintf(msg, sizeof msg, "node %s lost: %s", peer_node(pe), why);
	while ((n = unlink_all(r, NULL, pe, &e)) > 0) {
		for (size_t i = 0; i < n; i++) {
			stats_record(&r->s->ops, e[i].op, STATUS_UNAVAILABLE,
			    clock_now_ns() - e[i].start);
			if (!e[i].c->closing)
				unavailable(r, e[i].c, e[i].id, msg);
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
	size_t n, total = 0;

	while (c->nforwarded > 0 && (n = unlink_all(r, c, NULL, &e)) > 0) {
		for (size_t i = 0; i < n; i++) {
			/* its waiter at the owner goes now; the replies to both find nobody */
			proto_out_reset(&r->out);
			if (e[i].op != OP_CANCEL && e[i].op != OP_CREDIT &&
			    proto_req_cancel(&r->out, peers_next_id(r->peers), e[i].pid) == 0)
				peer_write(e[i].pe, proto_out_data(&r->out), proto_out_len(&r->out));
			stats_record(&r->s->ops, e[i].op, status, clock_now_ns() - e[i].start);
			if (!c->dead && !c->closing)
				conn_reply_error(c, e[i].id, status, status == STATUS_SHUTTING_DOWN ?
				    "server is shutting down" : "canceled");
		}
		free(e);
		total += n;
	}
	return total;
}

/* ---- the routing step ---------------------------------------------------------------- */

/* The channel is another node's: MOVED to a client that follows it, else forwarded there. */
static void
route_there(struct router *r, struct conn *c, const struct proto_request *q, const uint8_t *body,
    size_t len, const char *node, const char *addr)
{
	char why[512];

	if (addr[0] == '\0') {
		snprintf(why, sizeof why, "owned by node %s, which is not live (its lease is ending)",
		    node);
		unavailable(r, c, q->id, why);
		return;
	}
	if (c->moved) {
		cluster_stats(r->cl)->moved++;
		conn_reply_error(c, q->id, STATUS_MOVED, addr);
		return;
	}
	forward(r, c, q, body, len, node, addr);
}

/* The channels q names: one, or its cases (SELECT, STREAM); 0 for an op that names none. */
static uint32_t
named(const struct proto_request *q)
{
	switch (q->op) {
	case OP_MAKE: case OP_OPEN: case OP_SEND: case OP_RECV: case OP_CLOSE:
	case OP_LEN: case OP_CAP: case OP_DELETE: case OP_INFO:
		return 1;
	case OP_SELECT: case OP_STREAM:
		return q->ncases;
	default:
		return 0;
	}
}

/* CANCEL or CREDIT of a request the router has: false when handled here. */
static bool
to_target(struct router *r, struct conn *c, const struct proto_request *q, const uint8_t *body,
    size_t len)
{
	struct remote *rq = remote_find(r, c->id, q->target);

	if (rq == NULL)
		return true;
	if (rq->forwarded)
		forward_to_target(r, c, q, (struct fwd *)rq);
	else if (q->op == OP_CANCEL)
		cancel_held(r, c, q, (struct held *)rq);
	else
		/* CREDIT for a STREAM waiting for etcd: after it, in order */
		hold(r, c, q, body, len, NULL, 0);
	return false;
}

bool
router_route(struct conn *c, const struct proto_request *q, const uint8_t *body, size_t len)
{
	struct router *r = c->srv->router;
	uint32_t n = named(q), here = 0, there = 0;
	const char *node = NULL, *addr = "", *unknown = NULL, *tnode = NULL, *taddr = "";
	uint32_t unknown_len = 0;

	if (q->op == OP_HELLO)
		c->moved = q->moved;
	if ((q->op == OP_CANCEL || q->op == OP_CREDIT) && hmap_count(&r->ids) > 0)
		return to_target(r, c, q, body, len);
	if (n == 0)
		return true;
	if (!TAILQ_EMPTY(&r->held) && held_count(r, c) > 0) {
		hold(r, c, q, body, len, NULL, 0);
		return false;
	}
	for (uint32_t i = 0; i < n; i++) {
		const char *name = q->op == OP_SELECT || q->op == OP_STREAM ? q->cases[i].name : q->name;
		uint32_t nlen = q->op == OP_SELECT || q->op == OP_STREAM ? q->cases[i].name_len :
		    q->name_len;

		/* nil cases go nowhere; anonymous channels live here (an anonymous MAKE too) */
		if (name == NULL && q->op != OP_MAKE)
			continue;
		if (name == NULL || anonymous(name, nlen)) {
			here++;
			continue;
		}
		if (!cluster_serving(r->cl)) {
			unavailable(r, c, q->id, "this node is fenced: its etcd lease is not certain");
			return false;
		}
		switch (cluster_owner(r->cl, name, nlen, &node, &addr)) {
		case CLUSTER_HERE:
			here++;
			break;
		case CLUSTER_THERE:
			/* node points into the mirror, stable until the loop runs again */
			if (tnode != NULL && strcmp(tnode, node) != 0)
				there++;
			if (tnode == NULL)
				there = 1;
			tnode = node;
			taddr = addr;
			break;
		case CLUSTER_UNKNOWN:
			if (unknown == NULL) {
				unknown = name;
				unknown_len = nlen;
			}
			break;
		}
	}
	/*
	 * ask etcd first (the watch may not have told this node yet of a channel
	 * just made), once per name at most: then decide with what is known
	 */
	if (unknown != NULL && r->asked < n) {
		hold(r, c, q, body, len, unknown, unknown_len);
		return false;
	}
	/* there counts the other owners: more than one, or one and this node, is two nodes */
	if (there > 0 && (here > 0 || there > 1 || unknown != NULL) && n > 1) {
		unavailable(r, c, q->id, "the channels of one SELECT or STREAM must be on one node: "
		    "a SELECT across nodes is not built");
		return false;
	}
	if (there > 0) {
		route_there(r, c, q, body, len, tnode, taddr);
		return false;
	}
	if (unknown == NULL)
		return true;
	/* etcd has no owner for it: a MAKE placed elsewhere goes there; anything else is NOT_FOUND here */
	if (q->op == OP_MAKE) {
		node = cluster_place(r->cl, unknown, unknown_len, &addr);
		if (strcmp(node, cluster_self(r->cl)) == 0) {
			unavailable(r, c, q->id, "the channel could not be claimed here; try again");
			return false;
		}
		route_there(r, c, q, body, len, node, addr);
		return false;
	}
	return true;
}
