/*
 * xhold.h: an owner's side of a cross-node SELECT (PROTOCOL.md §17): the
 * values its SELECTs with `hold` received, each lent by the engine
 * (engine_lend) and kept here under (connection, request id) until XSETTLE
 * keeps it (it leaves its channel for good) or gives it back (engine_requeue:
 * ahead of every buffered value), or the connection ends (given back; kept
 * for a SELECT with hold 2); and
 * the values of their send cases that were ready (ENGINE_CLAIM), kept until
 * XSETTLE sends them (keep) or drops them, or the connection ends (dropped:
 * never sent).
 *
 * Ownership: the server owns the table; the table owns each held value and
 * one engine hold on its channel. Thread-safety: loop thread only.
 * Errors: enum status.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef CHAND_XHOLD_H
#define CHAND_XHOLD_H

#include <stddef.h>
#include <stdint.h>

struct chan;
struct conn;
struct delivery;
struct engine;
struct value;
struct xhold;

/* d: the ack channels' values in flight (xhold_take_tagged). NULL when out of memory. */
struct xhold *xhold_new(struct engine *e, struct delivery *d);
/* Give every held value back to its channel, then free the table. Accepts NULL. */
void xhold_free(struct xhold *h);
/*
 * Hold v, just received from ch by request id of connection owner. The
 * table owns v from the call on: STATUS_LIMIT (out of memory) gives it back
 * to ch at once. kept_at_end: owner's end keeps it, as XSETTLE keep would
 * (a SELECT with hold 2: taken unless given back), else it goes back; such
 * a value is not reported taken to the change hook (below): for the
 * journal it left its channel as for any receiver.
 */
int xhold_take(struct xhold *h, const void *owner, uint64_t id, struct chan *ch, struct value *v,
    bool kept_at_end);
/*
 * Hold v, the value of a send case of request id that is ready but did not
 * send (ENGINE_CLAIM), on ch. As xhold_take; STATUS_LIMIT drops v. Owner's
 * end drops it.
 */
int xhold_take_send(struct xhold *h, const void *owner, uint64_t id, struct chan *ch,
    struct value *v);
/*
 * Hold an ack channel's value, just taken in flight for owner under tag
 * (delivery_take) by request id: XSETTLE keep leaves it in flight (owner
 * ACKs it, §16); giving it back untakes it (delivery_untake: its channel's
 * head, its delivery count unchanged). Owner's end untakes it, or with
 * kept_at_end leaves it in flight, for that end to NACK (§16). STATUS_LIMIT
 * (out of memory) untakes it at once.
 */
int xhold_take_tagged(struct xhold *h, struct conn *owner, uint64_t id, struct chan *ch,
    uint64_t tag, bool kept_at_end);
/* xhold_settle: nothing is held for (owner, id). */
#define XHOLD_NONE (-1)
/*
 * XSETTLE: keep (true) or give back the value held for (owner, id): OK, or
 * XHOLD_NONE if none. A tagged value kept gets a fresh ack_wait, or
 * NOT_FOUND when ack_wait gave it back meanwhile. A held send kept is sent now, without waiting: the
 * send's status (OK; DEADLINE_EXCEEDED: no receiver and no room any more;
 * CLOSED, NOT_FOUND, LIMIT); given back, it is dropped (OK).
 */
int xhold_settle(struct xhold *h, const void *owner, uint64_t id, bool keep);
/* owner's connection ended: every value it held goes back, or is kept (kept_at_end). */
void xhold_owner_gone(struct xhold *h, const void *owner);
/* Values held now. */
size_t xhold_count(const struct xhold *h);

/*
 * Durable channels (durable.h): a received value's hold is reported to one
 * hook, which must not call back into the engine or this table: taken
 * (XHOLD_TAKE, once it is lent; not one kept at its owner's end), kept or
 * dropped (XHOLD_KEEP, before it is freed), given back (XHOLD_BACK, just
 * before engine_requeue, which hands it straight to a waiting receiver if
 * there is one). A send case's value is not reported. fn NULL: none.
 */
enum xhold_change { XHOLD_TAKE, XHOLD_KEEP, XHOLD_BACK };
typedef void xhold_change_fn(void *arg, struct chan *ch, enum xhold_change what,
    const struct value *v);
void xhold_set_change_hook(struct xhold *h, xhold_change_fn *fn, void *arg);

#endif
