/*
 * engine_int.h: what engine.c shares with its other parts (engine_chans.c,
 * engine_claim.c, engine_close.c, engine_stream.c). Not for any other
 * module: everyone else uses engine.h.
 *
 * An operation (struct engine_op) is one pending send, receive or select:
 * one waiter per case. A stream (engine_stream.c) owns a set of operations
 * of its own, its *units*, each one pending receive over the stream's
 * channels; the engine completes a unit exactly as any other operation
 * (op_finish, then its done callback from engine_leave), but a unit goes
 * back to its stream instead of the engine's free list.
 *
 * Thread-safety: none, as for the whole engine.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef CHAND_ENGINE_INT_H
#define CHAND_ENGINE_INT_H

#include <sys/queue.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chan.h"
#include "engine.h"
#include "hmap.h"
#include "rand.h"

/* A select has at most this many cases (the index is an int). */
#define ENGINE_MAX_CASES	(1u << 24)
/* Free operations kept for reuse; past this, finished ones are freed. */
#define ENGINE_FREE_OPS_MAX	65536
/* Waiter arrays bigger than this are not kept on a free operation. */
#define ENGINE_KEEP_WAITERS	64

enum op_state { OP_FREE, OP_WAITING, OP_DONE };

struct engine_op {
	TAILQ_ENTRY(engine_op) link;	/* free list or completion queue */
	engine_done_fn *done;
	void *arg;
	struct waiter *w;		/* nw waiters: &one or arr */
	uint32_t nw;
	uint32_t arrcap;		/* slots in arr, kept across reuse */
	struct waiter *arr;		/* for operations of several cases */
	uint8_t state;			/* enum op_state */
	bool claim;			/* ENGINE_CLAIM: its send cases only report ready */
	struct engine_result res;	/* valid once OP_DONE */
	struct engine_stream *stream;	/* a stream's unit, or NULL */
	uint32_t nlinked;		/* a unit: its waiters linked, waiting or parked */
	TAILQ_ENTRY(engine_op) slink;	/* a unit: in its stream's armed or spare list */
	struct waiter one;		/* single-case operations need no array */
};
TAILQ_HEAD(opq, engine_op);

struct engine {
	struct hmap chans;		/* name -> live channel */
	struct engine_limits limits;
	struct rand_state rng;		/* select's poll order */
	uint64_t bytes;			/* buffered bytes, all channels */
	uint64_t values;		/* buffered values, all channels */
	uint64_t nwaiters;		/* linked waiters, all channels */
	uint64_t nsenders;		/* of which send waiters */
	uint64_t nparked;		/* of which streams' parked waiters (engine_stream.c) */
	uint32_t *order;		/* select's poll order scratch */
	size_t order_cap;
	struct opq free_ops;
	size_t nfree_ops;
	struct opq done_ops;		/* completed, done not yet called */
	unsigned depth;			/* public calls on the stack */
	unsigned iterating;		/* engine_foreach_chan on the stack */
	bool draining;			/* engine_leave is running callbacks */
	void (*owner_gone)(void *owner, void *arg);
	void *owner_arg;
	engine_change_fn *change;	/* durable channels' changes, or NULL */
	void *change_arg;
	char maker[1 + ENGINE_MAKER_MAX];	/* "@" node, ends anonymous names; "" alone */
	size_t maker_len;
};

/* Tell the change hook about a durable channel's change. */
static inline void
engine_changed(struct engine *e, struct chan *ch, enum engine_change what, const struct value *v)
{
	if ((ch->flags & CHAN_DURABLE) && e->change != NULL)
		e->change(e->change_arg, ch, what, v);
}

/* Every public call that can complete operations is bracketed by these. */
void engine_enter(struct engine *e);
void engine_leave(struct engine *e);
/*
 * The oldest receiver of ch that can take a value now, or NULL: parked
 * waiters met first are dropped from ch on the way (stream_drop_parked).
 */
struct waiter *engine_first_receiver(struct engine *e, struct chan *ch);
/* Resolve a waiting operation: unlink its waiters, queue its completion. */
void op_finish(struct engine *e, struct engine_op *op, int status, int index,
    struct value *v, bool ok);
/*
 * Link one waiter per case of op (op->w has n slots; recv cases carry no
 * value), queued on their channels in order (a permutation of 0..n-1), or
 * in case order for NULL.
 */
void op_link(struct engine *e, struct engine_op *op, const struct engine_case *cases, size_t n,
    const uint32_t *order);
/*
 * Poll cases in a random order (ENGINE_ORDERED: in theirs): 1 fired (*r),
 * 0 none ready, -1 out of memory. ENGINE_CLAIM: send cases only report
 * ready. Other flags are ignored.
 */
int poll_cases(struct engine *e, const struct engine_case *cases, size_t n, unsigned flags,
    struct engine_result *r);
/*
 * poll_cases over the cases named by idx[0..k) only; idx is left in the
 * order they were tried (on 0, a uniform permutation: the queueing order).
 */
int poll_subset(struct engine *e, const struct engine_case *cases, uint32_t *idx, size_t k,
    unsigned flags, struct engine_result *r);
/*
 * The order the last poll_cases of n cases tried them in, once it found
 * none ready (NULL for one case): op_link queues in it, as Go does.
 */
const uint32_t *poll_order(struct engine *e, size_t n);
/* poll_cases' scratch for n positions (kept, only grows); NULL when out of memory. */
uint32_t *engine_order(struct engine *e, size_t n);
/* The first case on a deleted channel, or -1. */
int find_deleted(const struct engine_case *cases, size_t n);

/* engine_claim.c (ENGINE_CLAIM, §17) */
/* Can ch take one more claim (a receiver or free slot no claim reserved)? */
bool claim_room(const struct chan *ch);
/*
 * ch can take a send now: its first claiming sender, not one of op's own,
 * is reported ready, reserving one receiver or slot.
 */
void claim_first(struct engine *e, struct chan *ch, const struct engine_op *op);
/* Has a receive case's channel a claiming sender waiting (ENGINE_CLAIM_WAIT)? */
bool claimers_wait(const struct engine_case *cases, size_t n);

/*
 * engine_close.c: a closed channel's waiting receivers get ok=false and its
 * close error, unless a lent value may still come back to one of them.
 */
void close_receivers(struct engine *e, struct chan *ch);

/* engine_stream.c: the hooks engine.c calls for a stream's units. */

/*
 * A unit was resolved by op_finish (res filled): its waiter on the
 * channel that fired leaves it; the others stay linked, parked, until the
 * unit is armed again; it leaves its stream's armed list.
 */
void stream_unit_finished(struct engine *e, struct engine_op *op);
/* w, a parked waiter, met at the head of its channel's recvq: drop it from there. */
void stream_drop_parked(struct engine *e, struct waiter *w);
/*
 * ch was closed with w (a unit's waiter on it) queued: the first unit of
 * its stream to meet the close reports it (op_finish, ok=false); any other
 * only withdraws w from ch, so the stream reports each close once.
 */
void stream_recv_closed(struct engine *e, struct chan *ch, struct waiter *w);
/* ch was deleted with w (a unit's waiter) queued: the stream ends with NOT_FOUND. */
void stream_chan_deleted(struct engine *e, struct waiter *w);

#endif
