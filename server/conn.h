/*
 * conn.h: one client connection: its transport (conn_io.h), the frame
 * reader, the reply writer with backpressure, its pending requests and the
 * anonymous channels it holds.
 *
 * A connection is owned by the server's list. It ends in one place,
 * conn_free, whatever the reason (EOF, error, protocol error, shutdown):
 * every pending request is cancelled and every hold released there, so a
 * disconnect leaves no waiter. Thread-safety: loop thread only.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef CHAND_CONN_H
#define CHAND_CONN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

#include <event2/event_struct.h>

#include "auth.h"
#include "conn_io.h"
#include "hmap.h"

struct bufferevent;
struct tls_session;
struct server;
struct chan;
struct ident;
struct held_slot;
struct held;
struct fwd;
struct ftag;
struct durable_gate;

struct conn {
	TAILQ_ENTRY(conn) link;
	struct server *srv;
	uint64_t id;
	char peer[80];
	char client[64];		/* from HELLO, for logs */
	char node[65];			/* HELLO caps "node": another node's connection (§17), else "" */
	bool hello;			/* HELLO done */
	bool moved;			/* its HELLO said it follows MOVED (router.c) */
	uint32_t nforwarded;		/* its requests forwarded to other nodes now (router.c) */
	TAILQ_HEAD(, ftag) ftags;	/* ack channels' values it holds through this node (router_tags.c) */
	TAILQ_HEAD(, fwd) fwds;		/* its requests forwarded (router_fwd.c) */
	TAILQ_HEAD(, held) for_etcd;	/* its requests held for etcd, in its order (router.c) */
	uint32_t nfor_etcd;		/* ... those not canceled */
	bool closing;			/* flushing its last bytes, then freed */
	bool dead;			/* being freed: write nothing more */
	bool read_paused;		/* output over output_hwm */
	bool output_full;		/* output passed max_output_bytes: being closed */

	/* transport (conn_io.c) */
	int fd;
	struct evbuffer *in;		/* a socket's: its own; the pair's: the bufferevent's */
	struct io_run out;		/* unsent bytes for the socket (under TLS, records) */
	struct io_run clear;		/* TLS: replies not yet made records */
	struct tls_session *tsess;	/* TLS: the session on fd */
	struct bufferevent *bev;	/* the in-process pair only: its input and output */
	struct event rev, wev;		/* sockets only: read and write readiness */
	TAILQ_ENTRY(conn) wlink;	/* on the server's pending-write list */
	bool wpending;			/* on that list */
	bool reading;			/* rev is added */
	bool writing;			/* wev is added: the socket would block */
	int close_timeout_sec;		/* closing: how long the last bytes may take */

	struct hmap pending;		/* struct request by id */
	struct held_slot *held;		/* ids of deferred replies held unsent (conn.c) */
	uint32_t held_cap, nheld;	/* slots, ids in them */
	uint32_t held_gen;		/* a slot of another generation is empty */
	uint64_t waiters, held_bytes;	/* charged by its pending requests (budget.h) */
	struct chan **holds;		/* anonymous channels made or opened here */
	struct delivery_conn *dlv;	/* its values in flight (delivery.c); NULL if none yet */
	struct durable_gate *gate;	/* replies held until the journal has them (durable.c) */
	size_t nholds, holds_cap;
	int64_t connected_ns;
	int64_t active_ns;		/* last whole frame received (idle_timeout) */
	int64_t frame_start_ns;		/* a partial frame is buffered since; 0 if none (frame_timeout) */
	size_t in_held;			/* io_input's bytes, as counted in the server's input_held */
	bool got_frame;			/* a frame was dispatched since the last conn_input_done */

	/* security (acl.c, tls.c) */
	bool tls;			/* a TLS connection */
	bool tls_ready;			/* its handshake is done */
	char cert_name[AUTH_NAME_MAX];	/* the verified client certificate's CN, or "" */
	char ident[AUTH_NAME_MAX];	/* the identity after HELLO, "" without auth */
	struct ident *who;		/* its counters; NULL without auth */
	bool by_token;			/* identified by a token: digest is set */
	uint8_t digest[AUTH_DIGEST_LEN];
};

/* Take over an accepted socket (tls: speak TLS on it). Returns 0, or -1 (the fd is closed). */
int conn_accept(struct server *s, int fd, const char *peer, bool tls);
/*
 * The peer address of the node's in-process connection to itself, in logs
 * and in chanctl connections.
 */
#define CONN_PEER_IN_PROCESS "in-process"
/*
 * Serve bev, one half of a bufferevent_pair, as an accepted connection:
 * the node's connection to itself (peer.c, PROTOCOL.md §17). It is listed
 * and counted like any other (max_connections, chanctl connections) with
 * peer CONN_PEER_IN_PROCESS; cert_name ("" for none) is the certificate
 * name it would have had over TLS. Returns 0, or -1 (bev is freed).
 */
int conn_accept_pair(struct server *s, struct bufferevent *bev, const char *cert_name);
/*
 * Close connections that did not say HELLO within hello_timeout, idle past
 * idle_timeout (no whole frame), or with a frame begun and not whole within
 * frame_timeout.
 */
void conn_sweep(struct server *s);
/* Tear down now: cancel pending requests, release holds, close. */
void conn_free(struct conn *c);
/*
 * Stop reading, flush what is queued (bounded by a timeout), then free.
 * A notice (status, msg) is queued first when msg is not NULL, to id.
 */
void conn_close_after_flush(struct conn *c, uint64_t id, int status, const char *msg);
/* The client broke the protocol (PROTOCOL.md §9): count it, log why, and close with [id, PROTOCOL, why]. */
void conn_protocol_error(struct conn *c, uint64_t id, const char *why);

/*
 * Move the bytes encoded in the server's scratch output to c, to be
 * written before the loop sleeps; or, for a deferred reply (deferred, or
 * the reply to the request in dispatch when it asked for that), held in
 * c's output until something else is written to c (PROTOCOL.md §15).
 */
void conn_queue_out(struct conn *c, bool deferred);
/* conn_queue_out(c, false). */
void conn_flush_out(struct conn *c);
/*
 * c's output just grew (conn_queue_out, or replies the journal held,
 * durable.c): close a slow consumer past max_output_bytes, or stop
 * reading past output_hwm.
 */
void conn_output_check(struct conn *c);
/*
 * c's request is about to do work over ncases channels (a select, a
 * stream): when that is many, write the replies already made to other
 * clients first, so that they do not wait for it.
 */
void conn_before_long_work(struct conn *c, size_t ncases);
/* Encode an error reply to c. */
void conn_reply_error(struct conn *c, uint64_t id, int status, const char *msg);

/*
 * Called by the transport (conn_io.c); each of them may free c.
 * conn_input: new bytes in io_input(c): dispatch every whole frame there.
 * conn_input_bytes: dispatch the whole frames at p (nothing is buffered
 * before them) where they lie; returns the bytes used, less than len when
 * the last frame is incomplete or c stopped reading. conn_wrote: a write left `left`
 * bytes unsent. conn_io_failed: EOF, a socket error or the flush timeout
 * (BEV_EVENT_* flags). conn_tls_ready: the TLS handshake is done.
 */
void conn_input(struct conn *c);
size_t conn_input_bytes(struct conn *c, const uint8_t *p, size_t len);
/*
 * After a read and the conn_input or conn_input_bytes it caused, with the
 * incomplete tail kept in io_input(c): note the time of the last whole
 * frame and of the partial one, count the bytes held in the server's
 * input_held, and when that passes max_input_buffer_bytes close the
 * connections holding the most (maybe c; none is freed here).
 */
void conn_input_done(struct conn *c);
/* The longest frame body c may send now: max_hello_frame until HELLO is accepted, then max_frame. */
size_t conn_max_frame(const struct conn *c);
void conn_wrote(struct conn *c, size_t left);
void conn_io_failed(struct conn *c, short what);
void conn_tls_ready(struct conn *c);

/*
 * Is id taken on c: a pending request has it, or a deferred reply to it is
 * held unsent (PROTOCOL.md §15), so the client has not read that reply yet?
 */
bool conn_id_in_use(struct conn *c, uint64_t id);
/* Write c's held deferred replies before the loop sleeps (WANT, §15). */
void conn_release(struct conn *c);

/* End every pending request of c with status, those forwarded to other nodes too; returns how many. */
size_t conn_cancel_all(struct conn *c, int status);
/* Remember an anonymous channel this connection holds. -1 when out of memory. */
int conn_hold(struct conn *c, struct chan *ch);

#endif
