/*
 * conn_internal.h: the call machinery of a connection, for chan.c.
 *
 * conn_call sends one request and waits for its reply: it stamps a fresh
 * id and the context's remaining budget into the request (through the
 * caller's encoder), hands the reply frame back decoded, and turns context
 * ends and connection failures into CHAN_E* codes.
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

struct call_reply {
	uint8_t *body;			/* the reply frame's body, owned */
	size_t len;
	struct proto_reply rep;		/* decoded; points into body */
};

/*
 * Make one call. Returns 0 with *r holding a well-formed reply (whatever its
 * status: see call_status_err), or a CHAN_E* error (then *r holds nothing).
 * A context that ends while waiting gives CHAN_ECANCELED / CHAN_EDEADLINE
 * once the server confirmed (or the grace period passed); if the server
 * completed the operation first, its reply is returned instead.
 * Free *r with call_reply_free.
 */
int conn_call(chan_conn_t *c, chan_ctx_t *ctx, uint64_t op, enum call_wait how,
    call_encode_fn enc, void *arg, struct call_reply *r);
void call_reply_free(struct call_reply *r);

/*
 * Calls that get two replies: a link (PROTOCOL.md §12) answers STARTED when
 * it runs, and its final reply when it ends. conn_call_start sends the
 * request with the context's budget as its wait and returns at the first
 * reply: 0 with *r holding STARTED and *out the call, which stays
 * registered for the final reply; or the error (a final error reply as its
 * CHAN_E* code is the caller's to map: *r holds it with *out NULL and 0
 * returned; a context end or connection failure as the code). The context
 * is watched only while a thread waits in these functions.
 * conn_call_await waits (once) for the final reply, watching ctx like
 * conn_call. conn_call_end unregisters and frees the call, sending CANCEL
 * first if no final reply came (that reply is then dropped). One thread at
 * a time per call; conn_cancel (any thread) sends CANCEL for a request id.
 */
struct call;
int conn_call_start(chan_conn_t *c, chan_ctx_t *ctx, uint64_t op, call_encode_fn enc, void *arg,
    struct call_reply *r, struct call **out);
int conn_call_await(struct call *call, chan_ctx_t *ctx, struct call_reply *r);
uint64_t conn_call_id(const struct call *call);
void conn_call_end(struct call *call);
void conn_cancel(chan_conn_t *c, uint64_t id);

/* A wire status as a CHAN_E* code (0 for OK); try: DEADLINE_EXCEEDED is would-block. */
int call_status_err(int status, bool try);

/* References: a chan_t holds one on its connection. */
void conn_ref(chan_conn_t *c);
void conn_unref(chan_conn_t *c);
/* The largest value payload the server takes (HELLO's max_value). */
uint64_t conn_max_value(chan_conn_t *c);

/* Copy a decoded INFO map into the public struct (chan.c). */
void chan_info_from_proto(const struct proto_chan_info *i, chan_info_t *out);

#endif
