/*
 * request.h: one pending client request: its id, its deadline timer, and
 * what it waits on, which is one of two kinds:
 * - REQUEST_OP: an engine operation (SEND, RECV, SELECT that could not
 *   complete at once); it completes through the engine's done callback.
 * - REQUEST_LINK: a link (link.h), pending for the link's whole life; it
 *   completes when the link ends (request_link_end).
 * - REQUEST_STREAM: a stream (stream.h), pending until the stream ends
 *   (request_stream_end); its values are interim replies on the way.
 * - REQUEST_HELD: a RECV on an ack channel made at max_unacked or
 *   max_ack_pending (delivery.h): parked with no engine operation until
 *   delivery resumes it (request_resume), when it becomes a REQUEST_OP.
 *
 * A request is owned by its connection's pending table until it completes;
 * completion (by a match or the link's end, the deadline, CANCEL,
 * disconnect or shutdown) writes the reply (unless the connection is going
 * away) and recycles the record. request_cancel ends either kind.
 * Thread-safety: loop thread only.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef CHAND_REQUEST_H
#define CHAND_REQUEST_H

#include <sys/queue.h>
#include <stdbool.h>
#include <stdint.h>

#include <event2/event.h>
#include <event2/event_struct.h>

#include "engine.h"
#include "hmap.h"

struct conn;
struct link;
struct proto_close_err;

enum request_kind { REQUEST_OP, REQUEST_LINK, REQUEST_STREAM, REQUEST_HELD };

/*
 * A RECV or SELECT that may not wait (wait 0, or default) but found a
 * cross-node select's send case waiting on one of its channels waits this
 * long at most for that select's home to grant the claim (PROTOCOL.md
 * §17); then it ends as it would have at once (DEADLINE_EXCEEDED, or
 * default).
 */
#define REQUEST_CLAIM_WAIT_US 100000

TAILQ_HEAD(request_list, request);

/*
 * A receive case of r on an ack channel with a limit (delivery.h): either
 * claimed (counted in the engine) or blocked (a nil case in the engine,
 * on its channel's queue until delivery has room for it). A STREAM over
 * several channels has one per such channel, a *gate*: the units it
 * claimed there, which the engine stream may take from it.
 */
struct request_wait {
	TAILQ_ENTRY(request_wait) link;	/* blocked, or a gate: on its channel's list */
	struct request *r;
	struct chan *ch;
	int index;			/* the SELECT's case or STREAM's channel; -1: a held RECV */
	bool claimed;
	uint32_t units;			/* a gate: claimed */
};
TAILQ_HEAD(request_waitq, request_wait);

struct request {
	struct hmap_node node;		/* in conn->pending, keyed by id */
	struct conn *conn;
	uint64_t id;
	uint64_t op;			/* OP_SEND, OP_RECV, OP_SELECT, or a link op */
	enum request_kind kind;
	struct engine_op *eop;		/* REQUEST_OP */
	struct link *link;		/* REQUEST_LINK */
	struct engine_stream *stream;	/* REQUEST_STREAM */
	uint64_t delivered;		/* REQUEST_STREAM: values replied so far */
	uint64_t waiters, bytes;	/* its charge to the budgets (budget.h) */
	struct chan *claim;		/* a RECV counted toward max_unacked (delivery_claim) */
	struct chan *held_ch;		/* REQUEST_HELD: the channel it will receive from */
	struct request_wait hold;	/* REQUEST_HELD: on its channel's queue */
	struct request_wait *waits;	/* a SELECT, a STREAM: its cases on channels with a limit */
	uint32_t nwaits;
	TAILQ_ENTRY(request) hlink;	/* a limited STREAM: on its channel's list */
	uint32_t units;			/* a limited STREAM: credit claimed in the engine */
	uint64_t owed;			/* a limited STREAM: credit granted, not yet given */
	struct event timer;		/* the deadline, when wait > 0 */
	bool timed;			/* timer armed */
	bool linked;			/* in conn->pending */
	bool deferred;			/* its reply may be held (PROTOCOL.md §15) */
	bool dsend;			/* a send case on a durable channel: its OK waits for the journal */
	uint8_t xhold;			/* a SELECT's hold (§17: 0, 1, 2): its received value goes to xhold.h */
	bool dflt;			/* a SELECT with default: waiting for a claim (§17), its end is default */
	int64_t start_ns;		/* CLOCK_MONOTONIC, when it began to wait */
	int64_t deadline_ns;		/* timed: start_ns + its wait */
	struct request *next_free;
};

/*
 * Run q (SEND, RECV or SELECT) for connection c: cases go to the engine
 * (send values move into it). If it completes at once the reply is written
 * now; otherwise the request waits, with a deadline when q->wait_us > 0,
 * unless c is at max_pending or identity_max_pending: then it is refused
 * with LIMIT (only a request that must wait counts toward them).
 * Returns 0, or -1 when out of memory (the reply is then written as LIMIT).
 */
int request_run(struct conn *c, const struct proto_request *q, const struct engine_case *cases,
    size_t ncases, unsigned flags);
/*
 * Make l's request pending on c, with its deadline when wait_us > 0.
 * Returns 0, or -1 when out of memory (nothing was replied).
 */
int request_link(struct conn *c, uint64_t id, uint64_t op, int64_t wait_us, struct link *l,
    struct request **out);
/*
 * The link ended: answer [id, OK, sent] or the error (msg NULL: the status's
 * usual message), unlink and recycle r.
 */
void request_link_end(struct request *r, int status, const char *msg, uint64_t sent);
/*
 * Make a STREAM request pending on c (r->stream still NULL: the caller sets
 * it), with its deadline when wait_us > 0. Returns 0, or -1 when out of
 * memory (nothing was replied).
 */
int request_stream(struct conn *c, uint64_t id, int64_t wait_us, struct request **out);
/*
 * The stream ended: answer [id, OK, delivered], or the error (with the
 * channel's index when index >= 0; msg NULL: the status's usual message),
 * unlink and recycle r.
 */
void request_stream_end(struct request *r, int status, int index, const char *msg);
/* What a pending request waits on, for WAITERS: case count, and case i. */
size_t request_ncases(const struct request *r);
struct chan *request_case(const struct request *r, size_t i, enum case_dir *dir);
/* REQUEST_HELD: receive now (the engine may complete it at once). */
void request_resume(struct request *r);
/* A SELECT's blocked case w, claimed now: live in the engine (which may complete it at once). */
void request_enable(struct request_wait *w);
/* The pending request of c with this id, or NULL. */
struct request *request_find(struct conn *c, uint64_t id);
/* End a pending request with status (CANCELED, SHUTTING_DOWN...). */
void request_cancel(struct request *r, int status);
/* The wire form of a channel's close error (err NULL: none). */
void request_close_err(const struct close_err *err, struct proto_close_err *out);
/* The words of an operation's status in its error reply ("send on closed channel", ...). */
const char *request_status_message(int status);
/* Free the recycled records of a server (at exit). */
void request_free_pool(struct request **pool);

#endif
