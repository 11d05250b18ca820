/*
 * router_int.h: what router.c (the routing step, requests held for etcd)
 * and router_fwd.c (requests forwarded to their owner) share.
 * Thread-safety: loop thread only.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef CHAND_ROUTER_INT_H
#define CHAND_ROUTER_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include "codec.h"
#include "conn.h"
#include "hmap.h"
#include "server.h"

struct cluster;
struct peer;
struct peers;
struct held;
TAILQ_HEAD(held_list, held);

/* A client's request the router has, held or forwarded: its id is in use (§9) until it ends. */
struct remote {
	struct hmap_node node;		/* in the router's ids, by (conn_id, id) */
	uint64_t conn_id, id, op;
	int64_t start;			/* when it came: its latency, and what its wait has spent */
	bool forwarded;
	bool deferred;			/* forwarded: its reply may be held (§15): asked so, and no WANT yet */
	bool xselect;			/* a cross-node SELECT (xselect.c) */
	bool xstream;			/* a cross-node STREAM (xstream.c) */
};

struct router {
	struct server *s;
	struct cluster *cl;
	struct peers *peers;
	struct held_list held;
	struct hmap ids;		/* struct remote by (conn_id, id) */
	struct hmap fwds;		/* struct fwd by pid */
	struct hmap ftags;		/* router_tags.c: struct ftag by the client's tag */
	uint64_t next_tag;		/* ... the last one handed out, above ROUTER_TAG_BASE */
	struct xselects *xs;		/* cross-node SELECTs coordinated here */
	struct xpumps *xps;		/* links' pumps to other nodes' channels */
	struct xstreams *xt;		/* cross-node STREAMs run here */
	struct proto_out out;		/* scratch: frames for the peers */
	uint32_t asked;			/* etcd's answers the request dispatched again has had */
	int64_t again_start;		/* ... and when it came */
};

/* When the request being routed came: held for etcd, its first arrival (redispatch). */
static inline int64_t
router_came(const struct router *r)
{
	return r->again_start != 0 ? r->again_start : server_request_start(r->s);
}

static inline uint64_t
ids_hash(const struct router *r, uint64_t conn_id, uint64_t id)
{
	return hmap_hash_u64(r->ids.seed, conn_id * 0x9e3779b97f4a7c15ULL ^ id);
}

/*
 * router.c: c's requests held for etcd end with status (answered unless c
 * is going); etcd's answer to one only frees it. Returns how many.
 */
size_t router_held_forget(struct router *r, struct conn *c, int status);
/* UNAVAILABLE to c's request id, counted. */
void router_unavailable(struct router *r, struct conn *c, uint64_t id, const char *why);

/*
 * router_fwd.c: send r->out's frame, request pid, to pe for c's request id
 * (op); its replies are relayed. acks (a forwarded ACK's tags, or NULL) is
 * the forwarded request's from the call on. false: c was answered.
 */
struct router_acks;
bool router_fwd_send(struct router *r, struct conn *c, uint64_t id, uint64_t op, struct peer *pe,
    uint64_t pid, struct router_acks *acks);
/* router_fwd.c: forward q (body) to node at addr, with what is left of its wait. */
void router_forward(struct router *r, struct conn *c, const struct proto_request *q,
    const uint8_t *body, size_t len, const char *node, const char *addr);
/* CANCEL or CREDIT q of the forwarded request rq: to the same peer, about its peer id. */
void router_forward_to_target(struct router *r, struct conn *c, const struct proto_request *q,
    struct remote *rq);
/* peer.c's callbacks (peers_on). */
void router_peer_replied(void *arg, uint64_t pid, const uint8_t *body, size_t len, int64_t now);
void router_peer_gone(void *arg, struct peer *pe, const char *why);
/* Free every forwarded request without a word (the router is going). */
void router_fwds_free(struct router *r);

/*
 * router_tags.c: ack channels' values through this node. Tags it hands to
 * clients are above ROUTER_TAG_BASE (this node's own are far below).
 */
#define ROUTER_TAG_BASE (UINT64_C(1) << 62)
/* ACK, NACK or TOUCH naming a forwarded tag: to its owner (or answered); true: dispatch's. */
bool router_tags_route(struct router *r, struct conn *c, const struct proto_request *q);
/* Is body, a reply to op, a value from an ack channel (with a tag)? */
bool router_tagged_reply(uint64_t op, const uint8_t *body, size_t len);
/*
 * Encode body, such a reply on pe, for c's request id in r->s->out with a
 * tag of this node's: 0; 1 when the value went back to its owner instead
 * (c is closing, or was answered LIMIT); -1 when body is malformed.
 */
int router_tags_relay(struct router *r, struct conn *c, struct peer *pe, uint64_t op, uint64_t id,
    const uint8_t *body, size_t len);
/* Answer c's request id, a forwarded ACK (acks), from the owner's reply body. */
void router_acks_reply(struct router *r, struct conn *c, uint64_t id, const struct router_acks *acks,
    const uint8_t *body, size_t len);
/*
 * A tag of this node's for c, standing for the owner's otag on pe, in *tag:
 * 0, or -1 when out of memory (nothing changed).
 */
int router_tags_issue(struct router *r, struct conn *c, struct peer *pe, uint64_t otag,
    uint64_t *tag);
/* NACK the owner's tag otag on pe now, its reply unheard: the value goes back to its channel. */
void router_tags_nack(struct router *r, struct peer *pe, uint64_t otag);
/* c went: its forwarded tags are NACKed at their owners. pe went: its tags are forgotten. */
void router_tags_gone(struct router *r, struct conn *c, struct peer *pe);
/* Free every forwarded tag without a word (the router is going). */
void router_tags_free(struct router *r);

#endif
