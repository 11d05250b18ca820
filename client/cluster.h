/*
 * cluster.h: libchanclient's routing over a chand cluster (PROTOCOL.md §17).
 *
 * chan_dial of "cluster://h1:p1,h2:p2" (or of a comma-separated list), or
 * of "cluster+tls://h1:p1,h2:p2" (every node dialed "tls://"), returns a
 * *front* connection: a chan_conn_t with no socket of its own
 * that owns one connection per node it needed, dialed lazily (the seeds,
 * then the addresses MOVED names), each saying {"moved": true} in HELLO.
 * Every call on the front goes through cluster_call or cluster_pick: the
 * request's channel names are read back from its own encoding, the cached
 * owner (channel → node) is chosen, and a MOVED reply updates the cache
 * and sends the request again (at most CLUSTER_HOPS_MAX times). Anonymous
 * channels are cached to the node that made them. A node whose connection
 * broke is dropped with its cache entries; its pending calls failed with
 * the connection's error, and the next call re-resolves.
 *
 * Thread-safe: the node table and cache are under the cluster's lock,
 * which is never held across a call or a dial.
 * Errors: those of conn_call and chan_dial, and CHAN_EUNAVAILABLE (MOVED
 * did not converge, the channels of one request are on different nodes,
 * or no node could be reached).
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef CHAN_CLUSTER_H
#define CHAN_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chanclient.h"
#include "conn_internal.h"

#define CLUSTER_HOPS_MAX 5		/* MOVED followed per request, then CHAN_EUNAVAILABLE */
#define CLUSTER_NODES_MAX 64		/* addresses one front knows */
#define CLUSTER_CACHE_MAX 65536		/* cached owners; when full the cache starts again */

struct cluster;

/*
 * Where one channel handle's requests went last: the owner's index in the
 * front's node table, good while the front's owner cache has not dropped
 * or moved an entry since (epoch). Zeroed: none yet. Read and written
 * under the cluster's lock; a chan_t holds one (chan_internal.h).
 */
struct cluster_route {
	uint64_t epoch;
	size_t idx;
};

/* addr is a cluster address: "cluster://…", "cluster+tls://…" or a list with a comma. */
bool cluster_addr(const char *addr);
/* Dial a front for addr (one seed is dialed now, for its HELLO limits); *out is the caller's. */
int cluster_dial(chan_ctx_t *ctx, const char *addr, const chan_dial_opts_t *opts,
    chan_conn_t **out);
/* conn_call on a front: routed to the owner, MOVED followed. */
int cluster_call(chan_conn_t *front, chan_ctx_t *ctx, uint64_t op, enum call_wait how,
    call_encode_fn enc, void *arg, struct call_reply *r);
/*
 * The node connection (a reference, the caller's) a request that will
 * outlive one function (conn_submit: async ops, streams, links) goes to:
 * names it does not know are resolved first (an OPEN routed like
 * cluster_call); such a request does not follow MOVED afterwards.
 */
int cluster_pick(chan_conn_t *front, chan_ctx_t *ctx, uint64_t op, call_encode_fn enc, void *arg,
    chan_conn_t **node);
/*
 * The connection that requests about channel name's values (ACK, NACK,
 * TOUCH: tags are good only on the connection that received them), and
 * an asynchronous SEND or RECV of it, go to: c itself, or on a front the
 * owner's node connection (an OPEN through the front when the owner is not
 * cached). A reference: the caller's conn_unref. route is the handle's:
 * while it holds, the owner is found without hashing name.
 */
int cluster_conn_for(chan_conn_t *c, chan_ctx_t *ctx, const char *name, size_t len,
    struct cluster_route *route, chan_conn_t **out);
/* Close every node connection (chan_conn_close of the front); free it all (last reference). */
void cluster_close(struct cluster *cl);
void cluster_free(struct cluster *cl);
/* chan_conn_flush of every node; the first error. */
int cluster_flush(struct cluster *cl);
/*
 * A thread is about to wait on node connection waiting: every other node's
 * queue leaves, and the replies its server holds for deferred requests are
 * asked for (conn_release), as a wait on one connection would have both.
 */
void cluster_release_others(struct cluster *cl, const chan_conn_t *waiting);

#endif
