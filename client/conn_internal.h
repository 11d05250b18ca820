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
