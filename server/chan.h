/*
 * chan.h: the channel object, internal to the engine (engine.c and the
 * engine's unit tests). Everyone else uses the accessors in engine.h.
 *
 * A channel is one allocation: the fixed fields, then its name inline. The
 * ring buffer of values is allocated on the first buffered value and grows
 * by doubling up to cap, so an idle channel costs about 100 bytes plus its
 * name (plus one or two hash bucket pointers in the engine's table). The
 * buffer is released again when it drains, unless it is small.
 *
 * recvq and sendq hold the waiters of pending operations, oldest first; a
 * waiter is unlinked in O(1) from wherever it sits. Invariants the engine
 * keeps: recvq non-empty implies an empty buffer and an open channel;
 * sendq non-empty implies a full buffer (len == cap) and an open channel.
 * A stream's unit keeps its waiters linked between two receives, *parked*
 * (engine_stream.c): a parked waiter is not a receiver (nrecv leaves it
 * out), and whoever meets one first at the head of recvq drops it
 * (engine_first_receiver), so the invariants hold for the receivers that are.
 *
 * Ownership: a channel owns its buffered values and its ring; it does not
 * own its waiters (their operation does). Thread-safety: none.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef CHAND_CHAN_H
#define CHAND_CHAN_H

#include <sys/queue.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hmap.h"
#include "engine.h"

/* One case of one pending operation, linked on its channel's queue. */
struct waiter {
	TAILQ_ENTRY(waiter) link;	/* in ch->recvq or ch->sendq */
	struct engine_op *op;		/* the operation it belongs to */
	struct chan *ch;		/* NULL: a nil-channel case, never linked */
	struct value *value;		/* send: owned until the case fires */
	uint32_t index;			/* the case's index in its operation */
	uint8_t dir;			/* enum case_dir */
	bool parked;			/* linked on recvq, but no receiver now (chan_park) */
};
TAILQ_HEAD(waitq, waiter);

/* A value given back by engine_requeue: taken before the ring's, oldest first. */
struct chan_back {
	struct chan_back *next;
	struct value *v;
};

#define CHAN_CLOSED	0x1
#define CHAN_DELETED	0x2
#define CHAN_ANONYMOUS	0x4
#define CHAN_DURABLE	0x8

struct chan {
	struct hmap_node node;		/* in the engine's name table */
	struct value **ring;		/* NULL until a value is buffered */
	uint32_t cap;			/* the channel's capacity */
	uint32_t size;			/* slots allocated in ring, <= cap */
	uint32_t head;			/* index of the oldest value */
	uint32_t len;			/* values buffered */
	struct waitq recvq;
	struct waitq sendq;
	uint64_t bytes;			/* sum of the buffered values' payloads (value_size) */
	uint32_t holds;			/* callers' holds plus linked waiters */
	uint32_t nrecv;			/* waiters on recvq, less the parked ones: the receivers */
	uint32_t nsend;			/* waiters on sendq */
	uint32_t name_len;
	uint8_t flags;			/* CHAN_* */
	uint32_t claims;		/* claiming senders reported ready, not settled (ENGINE_CLAIM) */
	void *owner;			/* the creator's identity (the server's), or NULL */
	struct close_err *err;		/* closed with this error (a reference), or NULL */
	/* values given back, outside cap: the newest, whose next is the oldest (a ring, so one pointer); NULL if none */
	struct chan_back *back;
	uint32_t nback;			/* values on back */
	uint32_t lent;			/* received values held outside that may come back */
	void *ext;			/* another module's data (chan_set_ext), freed with ch */
	char name[];			/* name_len bytes, then a NUL */
};

/* A new channel with no holds; NULL when out of memory. */
struct chan *chan_new(const char *name, size_t name_len, uint32_t cap, uint8_t flags);
/* Free the channel, its ring, its buffered values and its close error. No waiter may remain. */
void chan_free(struct chan *ch);

/* Append v (len < cap required). -1 when the ring cannot grow. */
int chan_buf_push(struct chan *ch, struct value *v);
/* Take the oldest value (len > 0 required); the caller owns it. */
struct value *chan_buf_pop(struct chan *ch);
/* Free every buffered value (given back ones too) and the ring; returns how many there were. */
size_t chan_buf_clear(struct chan *ch);
/* Append v to the values given back (no cap). -1 when out of memory. */
int chan_back_push(struct chan *ch, struct value *v);
/* Take the oldest value given back (nback > 0 required); the caller owns it. */
struct value *chan_back_pop(struct chan *ch);

/* Queue w at the tail of the queue for its direction, or unlink it. */
void chan_link(struct chan *ch, struct waiter *w);
void chan_unlink(struct chan *ch, struct waiter *w);
/* w, linked on recvq, stays there but is no receiver (parked), or is one again. */
void chan_park(struct chan *ch, struct waiter *w);
void chan_unpark(struct chan *ch, struct waiter *w);

static inline struct waiter *
chan_first_receiver(const struct chan *ch)
{
	return TAILQ_FIRST(&ch->recvq);
}

static inline struct waiter *
chan_first_sender(const struct chan *ch)
{
	return TAILQ_FIRST(&ch->sendq);
}

#endif
