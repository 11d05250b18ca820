/*
 * cluster.h: this node's etcd session (PROTOCOL.md §17): a lease kept
 * alive, the node key under it, a mirror of the live nodes and one of the
 * channel owners, claims, placement and fencing.
 *
 * Nothing here knows about connections or requests: the router asks
 * (cluster_owner, cluster_place, cluster_serving) and starts the
 * asynchronous steps (cluster_resolve); their completions come back
 * through callbacks from the loop, never from inside the call.
 *
 * Ownership: the server owns the cluster (NULL without cluster_etcd).
 * Strings returned point into the cluster and stay valid until the loop
 * runs again. Thread-safety: loop thread only.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef CHAND_CLUSTER_H
#define CHAND_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct config;
struct event_base;
struct cluster;
struct etcd_stats;

struct cluster_stats {
	uint64_t serving;		/* 1 or 0 */
	uint64_t nodes;			/* live nodes known, this one included */
	uint64_t owned;			/* ownership keys held under the current lease */
	uint64_t moved, unavailable;	/* replies sent by the router */
	uint64_t etcd_errors;		/* failed etcd calls */
	uint64_t sessions;		/* leases granted since start */
	uint64_t forwarded;		/* requests forwarded to their owner (router.c) */
	uint64_t peer_errors;		/* node-to-node connections that failed (peer.c) */
	uint64_t peers;			/* node-to-node connections up now (peer.c) */
	uint64_t xselect_retries;	/* cross-node selects polled again (xselect.c) */
	uint64_t xselect_firm;		/* ... answered with a case fired for good at its poll, no XSETTLE */
};

/*
 * Start the session from cfg's cluster keys (cluster_etcd must be set):
 * nothing is waited for; the node serves once its lease is granted and its
 * node key put. Returns 0, or -1 with a malloc'd *cause.
 */
int cluster_new(struct cluster **out, struct event_base *base, const struct config *cfg,
    char **cause);
/* Clean stop: revoke the lease (asynchronously, best effort) so that the node's keys go now. */
void cluster_stop(struct cluster *cl);
/* Is the revoke still out? (bounded by the etcd calls' timeout) */
bool cluster_leaving(const struct cluster *cl);
void cluster_free(struct cluster *cl);

/*
 * Is this node sure its lease is alive at now_ns: a keepalive sent less
 * than node_ttl − margin before (by this node's monotonic clock) was
 * answered with a live lease? now_ns: clock_now_ns(), or a reading taken
 * a moment ago (the router's: the dispatch's, not one more a request).
 */
bool cluster_serving(const struct cluster *cl, int64_t now_ns);

enum cluster_where {
	CLUSTER_UNKNOWN,		/* no owner known here */
	CLUSTER_HERE,			/* owned by this node, under its current lease */
	CLUSTER_THERE,			/* owned by another node; *addr is its advertise, "" if not live */
};
/*
 * Who owns channel name, by the mirror of the chans/ prefix (no etcd call).
 * An anonymous name names its maker (engine_anon_maker): CLUSTER_HERE when
 * that is this node or none (then no node has it), else by the mirror of
 * nodes/ (CLUSTER_UNKNOWN: not a live node as far as this one knows).
 * *node stays valid until the loop runs on.
 */
enum cluster_where cluster_owner(struct cluster *cl, const char *name, size_t len,
    const char **node, const char **addr);
/*
 * Rendezvous placement over the live nodes: the node name, and its
 * advertise address in *addr. Never NULL: with no live node known (not yet
 * synced) it is this node.
 */
const char *cluster_place(struct cluster *cl, const char *name, size_t len, const char **addr);
/* This node's name. */
const char *cluster_self(const struct cluster *cl);
/*
 * Every live node by the mirror of nodes/ (CLUSTER_NODES, §17): its name,
 * advertise address ("" if its key is malformed) and the channels the
 * mirror of chans/ says it owns. fn must not change the cluster.
 */
typedef void cluster_node_fn(void *arg, const char *node, const char *addr, uint64_t owned);
void cluster_each_node(struct cluster *cl, cluster_node_fn *fn, void *arg);
/* Until etcd may expire this node's lease (node_ttl after the last answered keepalive), in ms; 0 if not live. */
uint64_t cluster_lease_left_ms(const struct cluster *cl);

/*
 * Learn name's owner from etcd (the mirror may lag); if there is none and
 * make is set and the place is this node, claim it (a txn bound to the
 * lease). For an anonymous name, learn whether its maker is live. cb gets
 * STATUS_OK (cluster_owner now knows what etcd said) or STATUS_UNAVAILABLE
 * and why. Returns 0, or -1 when out of memory (cb is not called).
 */
typedef void cluster_done(void *arg, int status, const char *why);
int cluster_resolve(struct cluster *cl, const char *name, size_t len, bool make, cluster_done *cb,
    void *arg);

/*
 * fn(arg) runs from the loop when this node goes from serving to fenced
 * (the keepalive tick notices it), so that operations waiting on its
 * channels can be ended.
 */
void cluster_on_fenced(struct cluster *cl, void (*fn)(void *arg), void *arg);

/*
 * fn(arg, node, up) runs from the loop when node leaves the live set (up
 * false: its key went, its lease ended or it stopped), so that what was
 * forwarded to it can end; and when its key is written (up true: it
 * joined, or came back as a new process), so that it is dialled at once.
 */
void cluster_on_node_change(struct cluster *cl, void (*fn)(void *arg, const char *node, bool up),
    void *arg);

/*
 * Counters for STATS, with serving, nodes and owned worked out now (owned
 * walks every channel's key: for STATS and metrics, never per request).
 */
struct cluster_stats *cluster_stats(struct cluster *cl);
/* The same counters as they stand, for the router and peer.c to bump (moved, unavailable, forwarding). */
struct cluster_stats *cluster_counters(struct cluster *cl);
/* The etcd calls' times and errors (etcd.h), for metrics.c. */
const struct etcd_stats *cluster_etcd_stats(const struct cluster *cl);

#endif
