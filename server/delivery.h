/*
 * delivery.h: at-least-once delivery on ack channels (PROTOCOL.md §16).
 *
 * The engine still hands a value to exactly one receiver. When the value
 * came from an ack channel (one made with delivery options), the network
 * side passes it here before replying (delivery_take) and it is *in
 * flight*: held for that connection under a tag until ACK. NACK, ack_wait
 * passing without ACK or TOUCH, or the connection's end give it back to
 * the engine (engine_requeue: straight to a waiting receiver, else ahead
 * of every value never delivered) with its delivery count + 1; a value
 * delivered max_deliver times goes to the dead_letter channel instead (a
 * map with its channel, count and last reason), or is dropped with a log
 * line and a metric. The engine never calls this module.
 *
 * Ownership: the server owns one struct delivery; it owns the values in
 * flight, each of which holds its channel. A channel's options live in
 * its chan_ext block, freed with it. Thread-safety: loop thread only.
 *
 * Errors: enum status. ACK, NACK and TOUCH of a tag: STATUS_NOT_FOUND
 * when it is not in flight (never issued, acked, NACKed, redelivered after
 * ack_wait, or its channel deleted), STATUS_PERMISSION_DENIED when another
 * connection holds it; either way nothing changes.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef CHAND_DELIVERY_H
#define CHAND_DELIVERY_H

#include <stdbool.h>
#include <stdint.h>

#include <event2/event.h>

#include "codec.h"
#include "engine.h"
#include "value.h"

struct conn;
struct delivery;
struct request;
struct request_wait;

struct delivery_counters {
	uint64_t inflight;		/* now, NACKed values waiting out their delay included */
	uint64_t acked;
	uint64_t redelivered;		/* given back to their channel for another delivery */
	uint64_t dead_lettered;		/* sent to a dead_letter channel */
	uint64_t dropped;		/* past max_deliver with no dead_letter to take them, or deleted */
};

/* STATUS_LIMIT when out of memory. */
int delivery_new(struct delivery **out, struct engine *e, struct event_base *base);
/* Free every value in flight and drop the holds on their channels. Accepts NULL. */
void delivery_free(struct delivery *d);

/*
 * Durable ack channels (durable.h, docs/JOURNAL.md): every change of the
 * values in flight of a channel marked durable goes to one hook, which
 * must not call back into this module or the engine:
 * DELIVERY_TAKE, v just taken in flight under tag with count (before any
 * other hook call it causes); DELIVERY_REQUEUE, tag given back with count,
 * just before the engine gets it (a value given back with no tag yet is a
 * TAKE under a fresh tag, then a REQUEUE); DELIVERY_ACK, tag gone for good
 * (acked; dead-lettered, after the dead letter's own push; dropped).
 * DELIVERY_TAKE comes after the value is in flight; the others before it
 * leaves.
 */
enum delivery_change { DELIVERY_TAKE, DELIVERY_REQUEUE, DELIVERY_ACK };
typedef void delivery_change_fn(void *arg, struct chan *ch, enum delivery_change what,
    const struct value *v, uint64_t tag, uint32_t count);
void delivery_set_change_hook(struct delivery *d, delivery_change_fn *fn, void *arg);
/* Visit ch's values in flight (delayed NACKs included), oldest tag first. */
void delivery_foreach_inflight(const struct chan *ch,
    void (*fn)(void *arg, const struct value *v, uint64_t tag, uint32_t count), void *arg);
/*
 * Replay (durable.c): v was in flight under tag with count when chand
 * stopped: it comes back as after ack_wait (REQUEUE, or past max_deliver
 * the dead letter), through the hook; later tags are above tag. Takes v.
 */
void delivery_restore(struct delivery *d, struct chan *ch, struct value *v, uint64_t tag,
    uint32_t count);
/* Replay: tags up to tag were used; later ones go above (tags are never reused). */
void delivery_tags_above(struct delivery *d, uint64_t tag);

/* Does ch have delivery options (an ack channel)? ch may be NULL. */
static inline bool
delivery_on(const struct chan *ch)
{
	return ch != NULL && chan_ext(ch) != NULL;
}

/* Give a new channel o's options (o->on); STATUS_LIMIT when out of memory. */
int delivery_attach(struct chan *ch, const struct proto_delivery *o);
/* Would MAKE with o (on or not) open ch as it is? Else MAKE answers EXISTS. */
bool delivery_same(const struct chan *ch, const struct proto_delivery *o);
/*
 * A durable ack channel's options as the journal's DECLARE keeps them
 * (docs/JOURNAL.md): delivery_opts_encode writes ch's into buf (at least
 * DELIVERY_OPTS_MAX bytes) and returns the length, 0 for a plain channel;
 * delivery_opts_decode reads them back into o (dead_letter points into
 * blob), -1 when the blob is not one it wrote.
 */
#define DELIVERY_OPTS_MAX (1 + 8 + 4 * 3 + 1 + PROTO_NAME_MAX)
size_t delivery_opts_encode(const struct chan *ch, uint8_t *buf);
int delivery_opts_decode(const void *blob, size_t len, struct proto_delivery *o);
/* The INFO fields of an ack channel (ack_wait, inflight, redelivered, dead_lettered). */
void delivery_chan_info(const struct chan *ch, struct proto_chan_info *i);
/* Values of ch in flight (NACKed ones waiting included): LEN counts them. */
uint32_t delivery_inflight(const struct chan *ch);

/*
 * v was received by c from the ack channel ch: it is in flight from now
 * on, held here (v stays readable until the caller returns to the loop:
 * encode the reply from it, do not free it). *tag and *count (1 on the
 * first delivery) go in the reply. STATUS_LIMIT when out of memory: v was
 * given back to ch.
 */
int delivery_take(struct delivery *d, struct conn *c, struct chan *ch, struct value *v,
    uint64_t *tag, uint32_t *count);
/* v was matched for a receiver that is gone before it got it: back to ch's head, count unchanged. */
void delivery_unsent(struct delivery *d, struct chan *ch, struct value *v);

/* ACK and NACK may let receives waiting at a limit go (request_resume, request_enable). */
int delivery_ack(struct delivery *d, struct conn *c, uint64_t tag);
/* Back to the channel after delay_us (0: now); the tag ends at once. */
int delivery_nack(struct delivery *d, struct conn *c, uint64_t tag, int64_t delay_us);
/*
 * tag, taken in flight for c, was never delivered after all (a cross-node
 * select's owner: its home chose another case, PROTOCOL.md §17): back to
 * its channel's head with the delivery count it had before, like
 * delivery_unsent; the tag ends. Errors as delivery_ack.
 */
int delivery_untake(struct delivery *d, struct conn *c, uint64_t tag);
/* A new ack_wait from now. */
int delivery_touch(struct delivery *d, struct conn *c, uint64_t tag);
/*
 * The limits (PROTOCOL.md §16): max_unacked counts c's values of ch in
 * flight and c's receives waiting on ch in the engine; max_ack_pending
 * counts the same over every connection. A receive case (RECV, SELECT)
 * asks delivery_claim first: 0 when there is room under both (it is
 * claimed: delivery_unclaim it when it ends, after its value, if any, went
 * to delivery_take), 1 at a limit, -1 out of memory. At a limit it waits
 * on the channel's queue, in order with every connection's: a RECV held
 * out of the engine (delivery_hold; resumed with request_resume, claimed,
 * once there is room), a SELECT's case as a nil case (delivery_block;
 * enabled with request_enable, claimed). delivery_unhold and
 * delivery_unblock take one back (its deadline, CANCEL, its end).
 */
bool delivery_limited(const struct chan *ch);	/* an ack channel with either limit; ch may be NULL */
int delivery_claim(struct conn *c, struct chan *ch);
void delivery_unclaim(struct conn *c, struct chan *ch);
void delivery_hold(struct conn *c, struct chan *ch, struct request *r);
void delivery_unhold(struct conn *c, struct chan *ch, struct request *r);
void delivery_block(struct request_wait *w);
void delivery_unblock(struct request_wait *w);
/*
 * A STREAM by c over ch alone counts each unit of credit it has in the
 * engine the same way: delivery_watch it when it starts (-1: out of
 * memory); delivery_claim_units claims up to want units, as many as there
 * is room for (the rest is owed: r->owed, paid with stream_pay once an ACK
 * makes room); delivery_used_unit for each unit that got a value (after
 * delivery_take) or a close report; delivery_unwatch at its end, with the
 * units it still had.
 */
int delivery_watch(struct conn *c, struct chan *ch, struct request *r);
uint32_t delivery_claim_units(struct conn *c, struct chan *ch, uint64_t want);
void delivery_used_unit(struct conn *c, struct chan *ch);
/* Units claimed and not granted after all (out of memory): no room is checked. */
void delivery_return_units(struct conn *c, struct chan *ch, uint32_t n);
void delivery_unwatch(struct conn *c, struct chan *ch, struct request *r, uint32_t units);

/*
 * A STREAM over several channels has a gate (request.h) on each with a
 * limit: delivery_gate puts it on its channel's list (-1: out of memory),
 * its units claimed with delivery_claim_units and used with
 * delivery_used_unit; delivery_release_units gives n back (room for the
 * others); delivery_ungate takes it off, giving back the units it has. When
 * there is room, delivery calls stream_gate_fill.
 */
int delivery_gate(struct conn *c, struct request_wait *g);
void delivery_ungate(struct conn *c, struct request_wait *g);
void delivery_release_units(struct conn *c, struct chan *ch, uint32_t n);

/* c is going away: everything it holds goes back to its channel, oldest first. */
void delivery_conn_gone(struct delivery *d, struct conn *c);

/*
 * INFLIGHT: pack up to limit (0: all) of ch's values held by connections,
 * oldest tag first, as proto_pack_inflight maps; *total = how many there
 * are. Returns 0 or -1 (out of memory).
 */
int delivery_list(const struct chan *ch, struct proto_out *o, uint64_t limit,
    uint64_t *total);
void delivery_counters(const struct delivery *d, struct delivery_counters *out);

#endif
