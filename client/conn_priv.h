/*
 * conn_priv.h: a connection's state, shared by conn.c (calls, lifecycle),
 * wire.c (bytes in and out), spare.c (records kept for reuse) and
 * cluster.c (a front's routing). Nothing else includes it.
 *
 * There is no reader thread. Requests are appended to a write queue and
 * whoever finds nobody flushing writes the whole queue (group commit), so
 * many threads' frames leave in one send. Replies are read by the threads
 * that wait for them, leader/follower style: one waiting thread at a time
 * holds the read token and reads the socket, handing each reply to its call
 * by id; the others sleep on their call's condition variable. When the
 * leader's own reply arrives it passes the token to a sleeping follower.
 * A call's reply is thus read by its own thread whenever it is alone, with
 * no thread handoff at all.
 *
 * How the leader waits (enum call_lead): on a plain socket, whenever only
 * the server can end its call, it blocks in recv itself, without a poll
 * first (plain sockets block, every other read and write passes
 * MSG_DONTWAIT; closing the connection, a shutdown, wakes it). That holds
 * for a background call, and for a call whose context the server ends by
 * itself: no deadline, or the deadline the request carries on the wire.
 * A cancel reaches such a leader through the server: the canceller queues
 * the CANCEL and writes what the socket takes at once, never waiting
 * (call_ctx_done runs under the contexts' global lock), and the server's
 * CANCELED wakes the recv. A receive timeout, the tick (a quarter of the
 * grace period), bounds that wait should the server stop answering or the
 * CANCEL not fit the socket. Every other leader polls the socket and the
 * wake fd, which a context's end writes.
 *
 * Locks: conn->lock guards the calls, ids, the read token and the follower
 * list; conn->wlock guards the write queue. The context lock (ctx.c) is
 * taken before conn->lock, and before wlock (a canceller's CANCEL); wlock
 * and lock are never held together.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef CHAN_CONN_PRIV_H
#define CHAN_CONN_PRIV_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include "codec.h"
#include "hmap.h"

#include "chanclient.h"
#include "conn_internal.h"
#include "ctx_internal.h"

/* One reply frame, queued on its call until taken. */
struct reply {
	struct reply *next;
	size_t len;
	uint8_t body[];
};

/* How a call's thread waits on the socket while it holds the read token (see above). */
enum call_lead {
	LEAD_POLL,		/* poll the socket and the wake fd */
	LEAD_RECV,		/* recv: nothing but the server or the connection's end ends the wait */
	LEAD_RECV_TICK,		/* recv, waking each tick; a cancel is written by its canceller */
};

struct call {
	struct hmap_node node;
	TAILQ_ENTRY(call) wait_link;		/* in conn->followers while its thread sleeps */
	uint64_t id;
	uint64_t op;
	chan_conn_t *conn;
	chan_conn_t *front;			/* a reference: the cluster front it was routed from */
	call_interim_fn *interim;		/* NULL: a single reply */
	uint64_t interims_allowed;		/* interim replies that may still come */
	struct ctx_watch watch;
	bool linked;				/* in conn->calls: more replies may come */
	bool done;				/* the final reply or a failure arrived */
	bool leading;				/* its thread holds the read token */
	bool cancel_sent;
	bool deferred;				/* sent with WIRE_DEFER, WANT not sent yet */
	bool final_taken;			/* its thread took the last reply: unlinked */
	enum call_lead lead;			/* how its thread waits while it holds the read token */
	int64_t wire_deadline;			/* the deadline its request carries (a stream's, a link's: its life), 0: none */
	int err;				/* connection failure */
	int ctx_err;				/* the context ended */
	struct reply *head, **tail;		/* replies not yet taken */
	struct call *spare_next;		/* in its thread's spare list once ended */
	_Alignas(max_align_t) unsigned char user[CALL_USER_SIZE];	/* conn_call_user's */
	pthread_cond_t cond;			/* last: call_init clears only what precedes it */
};

TAILQ_HEAD(call_list, call);

struct chan_conn {
	int fd;
	int wakefd;				/* eventfd: wakes the leader out of its poll */
	struct ctls *tls;			/* tls://: every byte goes through it */
	struct cluster *cluster;		/* a front (cluster.h): no socket, calls are routed */
	unsigned refs;				/* atomic */
	pthread_condattr_t cattr;		/* CLOCK_MONOTONIC condition variables */

	pthread_mutex_t lock;
	struct hmap calls;			/* struct call by id */
	struct call_list followers;		/* threads waiting for the read token or a reply */
	bool reading;				/* someone holds the read token */
	uint64_t seed;
	uint64_t next_id;			/* atomic: wire.c takes ids under wlock */
	uint64_t deferred_last;			/* atomic: the newest deferred request's id, no WANT since */
	int dead;				/* 0, or what every call now fails with: set under lock,
					   atomically (cluster.c reads it without) */

	/* the read token's: only its holder touches these */
	uint8_t *rbuf;
	size_t rlen, rcap;
	int64_t rcvtimeo_ns;			/* the socket's receive timeout now, 0: none */

	pthread_mutex_t wlock;
	struct proto_out wbuf[2];		/* one fills while the other is written */
	struct proto_out *wq;			/* the one requests are appended to */
	bool flushing;				/* a thread is writing: it writes ours too */
	uint64_t *acks;				/* tags posted (ack_post), not yet in wq */
	size_t nacks;

	size_t max_frame;			/* outgoing limit (HELLO) */
	size_t read_limit;			/* atomic: incoming limit */
	int64_t grace_ns;
	int64_t tick_ns;			/* LEAD_RECV_TICK's receive timeout: grace_ns / 4 */
	chan_conn_info_t info;			/* set by HELLO, then read-only */
};

/* A fresh request id (either lock held, or none). */
static inline uint64_t
conn_new_id(chan_conn_t *c)
{
	return __atomic_fetch_add(&c->next_id, 1, __ATOMIC_RELAXED);
}

/* ---- wire.c ---------------------------------------------------------------- */

/*
 * Append one request frame (enc) to the write queue, marked deferred with
 * WIRE_DEFER; flush unless WIRE_CORK. With WIRE_NOWAIT the flush writes
 * only what a plain socket takes now, never waiting for room (safe under
 * the context lock), and leaves the rest (over TLS: all) queued for the
 * next flush. The tags ack_post collected go first, in one ACK frame.
 * Errors: CHAN_ENOMEM, CHAN_ELIMIT (the frame exceeds max_frame: nothing
 * queued). Write failures break the connection (every call fails).
 */
int wire_submit(chan_conn_t *c, uint64_t id, int64_t wait_us, call_encode_fn enc, void *arg,
    unsigned flags);
/* Write everything queued (or leave it to the thread already writing). */
void wire_flush(chan_conn_t *c);
/*
 * The read token's holder (conn->lock not held): wait until the socket has
 * bytes, the wake fd fires or deadline (0: none) passes, and deliver every
 * whole reply read. With no deadline, on a plain socket, LEAD_RECV and
 * LEAD_RECV_TICK read at once, blocking (the latter at most a tick); any
 * other wait polls. Returns 0, or the CHAN_E* code the connection broke
 * with.
 */
int wire_lead(chan_conn_t *c, int64_t deadline, enum call_lead lead);
/* Wake the read token's holder out of its poll. */
void wire_wake(chan_conn_t *c);

/* ---- spare.c ------------------------------------------------------------------ */

/*
 * A heap call with its cond initialised: one the thread ended before if it
 * kept any, else a new one; NULL out of memory. call_spare_put takes an
 * ended call (unlinked, call_fini done) back: kept for the thread's next
 * call (at most 1,024, freed at thread exit) or freed.
 */
struct call *call_spare_get(chan_conn_t *c);
void call_spare_put(struct call *call);

/*
 * A reply frame for a body of len bytes (len not set), NULL out of memory;
 * reply_put (NULL is fine) frees it or keeps it for the thread's next one.
 * Bodies up to REPLY_SPARE_BODY share one size: SEND and RECV results, a
 * stream's small values.
 */
#define REPLY_SPARE_BODY 240
struct reply *reply_get(size_t len);
void reply_put(struct reply *rp);

/* ---- conn.c, for wire.c ------------------------------------------------------ */

/*
 * Queue one reply frame on its call (conn->lock held). 0, or the CHAN_E*
 * code the connection breaks with: CHAN_EPROTO (not [id, status, ...]),
 * CHAN_ENOMEM.
 */
int conn_deliver_locked(chan_conn_t *c, const uint8_t *body, size_t len);
/* Fail every pending call with err and stop the stream (conn->lock not held). */
void conn_break(chan_conn_t *c, int err);

#endif
