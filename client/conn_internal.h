/*
 * conn_internal.h: the call machinery of a connection, for chan.c.
 *
 * conn_call sends one request and waits for its reply: it stamps a fresh
 * id and the context's remaining budget into the request (through the
 * caller's encoder), hands the reply frame back decoded, and turns context
 * ends and connection failures into CHAN_E* codes. Thread-safe: any number
 * of threads call at once on one connection.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef CHAN_CONN_INTERNAL_H
#define CHAN_CONN_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "codec.h"

#include "chanclient.h"

/* How a request uses the context's budget on the wire. */
enum call_wait {
	CALL_NOWAIT,	/* an op that never waits: wait = nil */
	CALL_BUDGET,	/* the context's remaining budget (nil if none) */
	CALL_TRY,	/* wait = 0 */
};

/* Append the request frame with this id and wait to o; 0 or -1 (no memory). */
typedef int (*call_encode_fn)(struct proto_out *o, uint64_t id, int64_t wait_us, void *arg);

/*
 * A reply with this status and number of results (after id and status) is
 * not the call's last (links: STARTED; streams: a value).
 */
typedef bool call_interim_fn(int status, int nresults);

/*
 * A call's interim replies: which replies they are (is), and how many the
 * server may send before the caller allows more (conn_call_allow): a
 * link's one STARTED, a stream's credit. One more than allowed breaks the
 * connection (CHAN_EPROTO) as it arrives, so a server cannot queue more
 * replies on a call than the call asked for.
 */
struct call_interim {
	call_interim_fn *is;
	uint64_t allowed;
};

struct reply;
struct call_reply {
	struct reply *raw;		/* owned: the frame rep points into */
	struct proto_reply rep;		/* decoded */
	chan_conn_t *via;		/* a front's call: the node that answered (a reference); else NULL */
};

/*
 * Make one call. Returns 0 with *r holding a well-formed reply (whatever its
 * status: see call_status_err), or a CHAN_E* error (then *r holds nothing).
 * A context that ends while waiting gives CHAN_ECANCELED / CHAN_EDEADLINE
 * once the server confirmed (or the grace period passed); if the server
 * completed the operation first, its reply is returned instead.
 * Free *r with call_reply_free (a second call is harmless; nothing in *r
 * may be read after the first: its strings and values pointed into the
 * frame).
 */
int conn_call(chan_conn_t *c, chan_ctx_t *ctx, uint64_t op, enum call_wait how,
    call_encode_fn enc, void *arg, struct call_reply *r);
void call_reply_free(struct call_reply *r);
/*
 * The connection that answered r, made on c: the one its tag belongs to
 * (ACK, NACK, TOUCH go there). Borrowed: good until call_reply_free.
 */
static inline chan_conn_t *
call_reply_conn(chan_conn_t *c, const struct call_reply *r)
{
	return r->via != NULL ? r->via : c;
}

/*
 * Calls that outlive one function: asynchronous operations, links
 * (PROTOCOL.md §12: STARTED, then the final reply) and streams (a reply per
 * value, then the final one).
 *
 * conn_submit registers a call under a fresh id and queues its request with
 * ctx's budget as its wait (how), without waiting; flags (enum wire_flag):
 * WIRE_CORK leaves the request in the write queue until a thread waits or
 * the queue is large (group commit); WIRE_DEFER asks the server to defer
 * its reply (PROTOCOL.md §15) until conn_call_next waits for it, which then
 * sends WANT first. Replies for which interim (NULL: none) says true keep the call
 * registered; conn_call_allow lets n more of them come (a stream's CREDIT, before
 * it is sent). conn_call_next waits for the call's next reply like conn_call,
 * watching ctx only while it waits; once the final reply was taken it
 * returns CHAN_EINVAL. conn_call_end unregisters and frees the call,
 * sending CANCEL first if the final reply has not come (it is then
 * dropped, with any reply not taken). One thread at a time per call;
 * conn_cancel (any thread) sends CANCEL for a request id.
 *
 * conn_call_start is conn_submit plus the first conn_call_next for a link:
 * 0 with *r holding STARTED and *out the call; or 0 with *r holding the
 * final (error) reply and *out NULL; or a CHAN_E* code.
 */
enum wire_flag {
	WIRE_CORK = 1,		/* leave it queued until a thread waits */
	WIRE_DEFER = 2,		/* the server may hold its reply (§15) */
	WIRE_NOWAIT = 4,	/* write what the socket takes now, never wait (conn_priv.h) */
};

struct call;
int conn_submit(chan_conn_t *c, chan_ctx_t *ctx, uint64_t op, enum call_wait how,
    const struct call_interim *interim, unsigned flags, call_encode_fn enc, void *arg,
    struct call **out);
void conn_call_allow(struct call *call, uint64_t n);
int conn_call_next(struct call *call, chan_ctx_t *ctx, struct call_reply *r);
/* A reply (or the call's failure) is there: conn_call_next would not wait. */
bool conn_call_has_reply(struct call *call);
int conn_call_start(chan_conn_t *c, chan_ctx_t *ctx, uint64_t op, call_encode_fn enc, void *arg,
    struct call_reply *r, struct call **out);
uint64_t conn_call_id(const struct call *call);
void conn_call_end(struct call *call);
/*
 * call was submitted on a node of the cluster front (conn_submit does this
 * for a call made on the front): a wait for it flushes every node's queue,
 * so that requests corked for other nodes leave too, as on one connection
 * (a wait on a reply that depends on them would never end). Takes a
 * reference on front until the call ends.
 */
void conn_call_routed(struct call *call, chan_conn_t *front);
/*
 * Everything queued on c leaves, with a WANT (PROTOCOL.md §15) of its newest
 * deferred request if it has one not wanted yet: its server then writes the
 * replies it holds (and that request's when it comes) instead of holding
 * them for a later wait, which would cost that wait a WANT's round trip.
 * For the other nodes of a front when a thread waits on one: a wait on one
 * connection has the same effect on the replies held for it.
 */
void conn_release(chan_conn_t *c);
/*
 * Room inside the call's record for the layer above (chan.c keeps an
 * asynchronous operation's handle there, so that the operation allocates
 * nothing of its own: the record is reused per thread): CALL_USER_SIZE
 * bytes, zeroed at conn_submit, aligned for any object, gone at conn_call_end.
 */
#define CALL_USER_SIZE 32
void *conn_call_user(struct call *call);
void conn_cancel(chan_conn_t *c, uint64_t id);
/*
 * Send a request whose reply nobody waits for (it is dropped when it
 * comes): CANCEL, CREDIT, WANT; flags as conn_submit's. Errors as
 * conn_submit's.
 */
int conn_post(chan_conn_t *c, call_encode_fn enc, void *arg, unsigned flags);

/*
 * ACK tags[0..n) without waiting (wire.c): corked and deferred, it leaves
 * with the next write. The tags posted until then go in one ACK frame,
 * ahead of whatever request is queued next (so a RECV held at max_unacked
 * finds them acked), instead of a frame and a reply per tag. For chan_ack
 * and the receives that return no tag (a value from an ack channel is
 * acked as it is returned). CHAN_OK, or CHAN_ENOMEM (not acked: the server
 * gives the values back after ack_wait).
 */
int ack_post(chan_conn_t *c, const uint64_t *tags, size_t n);

/*
 * A reply that decoded but breaks the contract in a way only the layer
 * above sees (a case or channel index out of range, a link's outputs not
 * the ones asked for, STARTED where none belongs): the server is not
 * speaking the protocol, so c (the connection that answered:
 * call_reply_conn, conn_call_conn) is unusable from now on, as for a reply
 * that does not decode. Every call on it fails with CHAN_EPROTO. Returns
 * CHAN_EPROTO.
 */
int conn_broke_contract(chan_conn_t *c);

/* A wire status as a CHAN_E* code (0 for OK); try: DEADLINE_EXCEEDED is would-block. */
int call_status_err(int status, bool try);

/*
 * Cluster fronts (cluster.c): a chan_conn_t with no socket whose calls
 * conn_call and conn_submit hand to cluster.c, which makes them on node
 * connections from conn_dial (moved: HELLO says {"moved": true}).
 */
struct cluster;
int conn_dial(chan_ctx_t *ctx, const char *addr, const chan_dial_opts_t *opts, bool moved,
    chan_conn_t **out);
/* A front owning cl (freed with its last reference), with a node's HELLO limits. */
chan_conn_t *conn_front_new(struct cluster *cl, const chan_conn_info_t *info,
    const chan_dial_opts_t *opts);
/* Is c a cluster front? */
bool conn_is_front(const chan_conn_t *c);
/* The connection a call was made on (a node's, for a call submitted on a front). */
chan_conn_t *conn_call_conn(const struct call *call);

/* References: a chan_t holds one on its connection. */
void conn_ref(chan_conn_t *c);
void conn_unref(chan_conn_t *c);
/* The largest value payload the server takes (HELLO's max_value). */
uint64_t conn_max_value(chan_conn_t *c);

/* Copy a decoded INFO map into the public struct (chan.c). */
void chan_info_from_proto(const struct proto_chan_info *i, chan_info_t *out);
/* A received wire value into *v (NULL: discard); a channel reference becomes a handle on conn. */
int chan_value_from_proto(chan_conn_t *conn, const struct proto_value *pv, chan_value_t *v);
/* A close error's message copied (malloc'd, NUL-terminated) with its code; CHAN_ENOMEM. */
int chan_close_err_copy(const struct proto_close_err *pe, uint64_t *code, char **msg);
/* Hand a recorded close error to chan_err's out parameters (each may be NULL); true. */
bool chan_close_err_out(const char *src, uint64_t src_code, uint64_t *code, char *msg, size_t cap);
/* A receive through ch returned ok false: record its close error (pe->set false: none). */
int chan_note_close_err(chan_t *ch, const struct proto_close_err *pe);

#endif
