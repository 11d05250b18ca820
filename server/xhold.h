/*
 * xhold.h: an owner's side of a cross-node SELECT (PROTOCOL.md §17): the
 * values its SELECTs with `hold` received, each lent by the engine
 * (engine_lend) and kept here under (connection, request id) until XSETTLE
 * keeps it (it leaves its channel for good) or gives it back (engine_requeue:
 * ahead of every buffered value), or the connection ends (given back).
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
struct engine;
struct value;
struct xhold;

/* NULL when out of memory. */
struct xhold *xhold_new(struct engine *e);
/* Give every held value back to its channel, then free the table. Accepts NULL. */
void xhold_free(struct xhold *h);
/*
 * Hold v, just received from ch by request id of connection owner. The
 * table owns v from the call on: STATUS_LIMIT (out of memory) gives it back
 * to ch at once.
 */
int xhold_take(struct xhold *h, const void *owner, uint64_t id, struct chan *ch, struct value *v);
/* XSETTLE: keep (true) or give back the value held for (owner, id); STATUS_NOT_FOUND if none. */
int xhold_settle(struct xhold *h, const void *owner, uint64_t id, bool keep);
/* owner's connection ended: every value it held goes back. */
void xhold_owner_gone(struct xhold *h, const void *owner);
/* Values held now. */
size_t xhold_count(const struct xhold *h);

#endif
