/*
 * peer.h: node-to-node connections of a cluster (PROTOCOL.md §17): at
 * most one to each other node, opened when a request is first forwarded
 * there, to the node's advertise address, speaking the ordinary client
 * protocol. Its HELLO names this node (caps {"node": NAME}) and carries
 * cluster_token when one is set; requests are pipelined behind it, each
 * with an id from one counter of the table, so a peer id names one request
 * whichever connection carries it. This node's connection to itself (a
 * cross-node select's own group) is made in-process (peers_on_self).
 *
 * A connection that fails (EOF, a socket error, a refused HELLO, a
 * malformed reply) or whose node leaves the live set is dropped at once:
 * the lost callback runs, so that every request forwarded on it can end.
 * The next need dials again, not before a backoff (100 ms, doubling to
 * 5 s, reset by an accepted HELLO).
 *
 * Ownership: the server owns the table; a struct peer lives as long as the
 * table (its node is remembered for the backoff). Callbacks come from the
 * loop, never from inside a call here. Thread-safety: loop thread only.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef CHAND_PEER_H
#define CHAND_PEER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct peer;
struct peers;

/*
 * A reply to peer id pid arrived: body is its frame body, valid during the
 * call; now is the clock (clock_now_ns) read once for the replies of one read.
 */
typedef void peer_reply(void *arg, uint64_t pid, const uint8_t *body, size_t len, int64_t now);
/* pe's connection is gone (why says how): nothing more will come for what was sent on it. */
typedef void peer_lost(void *arg, struct peer *pe, const char *why);

/*
 * self: this node's name; token: cluster_token ("" for none); tls: the
 * client context (tls.h) when the nodes speak TLS, NULL for plain TCP (the
 * table owns it); max_frame: the longest reply accepted. errors and
 * connected (not NULL) are kept up to date: failed connections, and
 * connections whose HELLO was accepted. Returns 0, or -1 when out of
 * memory (tls is not freed).
 */
struct ssl_ctx_st;
int peers_new(struct peers **out, struct event_base *base, const char *self, const char *token,
    struct ssl_ctx_st *tls, size_t max_frame, uint64_t *errors, uint64_t *connected);
/*
 * This node itself (node == self in peer_get) is reached in-process once
 * accept is set: bev is one half of a bufferevent pair (BEV_OPT_DEFER_CALLBACKS),
 * the other is the peer's, and accept serves bev as an accepted connection
 * (conn.c). Everything else is as for another node: HELLO, requests, replies,
 * the loss rules (each half's end reaches the other as EOF, from the loop)
 * and the backoff; only the advertise address is not used. accept returns 0,
 * or -1 having freed bev. Without it, this node is dialled over TCP.
 */
struct bufferevent;
typedef int peer_self_accept(void *arg, struct bufferevent *bev);
void peers_on_self(struct peers *ps, peer_self_accept *accept, void *arg);
/* Close every connection (no callback runs; an in-process half gets EOF). */
void peers_free(struct peers *ps);
void peers_on(struct peers *ps, peer_reply *reply, peer_lost *lost, void *arg);

/*
 * The connection to node at addr (HOST:PORT), dialled now if there is none;
 * requests may be written before it is up. NULL (why set, a static or
 * table-owned string valid until the loop runs again) while its backoff
 * runs, or when addr cannot be used.
 */
struct peer *peer_get(struct peers *ps, const char *node, const char *addr, const char **why);
/* A new peer id. */
uint64_t peers_next_id(struct peers *ps);
/* Queue whole frames (headers included) on pe. -1 when out of memory. */
int peer_write(struct peer *pe, const void *frames, size_t len);
/* Bytes queued on pe and not yet written. */
size_t peer_unsent(const struct peer *pe);
const char *peer_node(const struct peer *pe);
/* node left the live set: drop its connection (lost runs now) and forget its backoff. */
void peers_node_down(struct peers *ps, const char *node);
/* node's key was written (it joined, or came back): no backoff before dialling it, if unconnected. */
void peers_node_up(struct peers *ps, const char *node);

#endif
