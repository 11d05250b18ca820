/*
 * xstream.h: a STREAM whose channels are owned by several nodes, run at
 * its home node (PROTOCOL.md §17, "Cross-node STREAM"). Each unit of
 * credit is one cross-node select round (xselect.h, xselect_round) over
 * the stream's channels not reported closed: a round that takes a value
 * or a close report is the stream's interim reply (kept at its owner
 * before it is written), and the unit is used; a close already reported
 * runs the round again without it. The stream ends as a single-node one
 * (every channel closed, CANCEL, its wait, its client going, an error),
 * its final reply after every value a round took.
 *
 * Ownership: the router owns the table; a stream lives until its last
 * round answered, even after its client went. Thread-safety: loop thread
 * only. Errors are the client's replies (nothing is returned).
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef CHAND_XSTREAM_H
#define CHAND_XSTREAM_H

#include <stddef.h>
#include <stdint.h>

#include "codec.h"

struct conn;
struct remote;
struct router;
struct xstreams;

/* NULL when out of memory. */
struct xstreams *xstreams_new(struct router *r);
/* Free every stream without a word (the router is going). Accepts NULL. */
void xstreams_free(struct xstreams *xt);
/* Run q (a STREAM whose channels have several owners, decoded from body) for c. */
void xstream_start(struct xstreams *xt, struct conn *c, const struct proto_request *q,
    const uint8_t *body, size_t len);
/* CANCEL or CREDIT q of rq, a cross-node stream of c: answered here. */
void xstream_target(struct xstreams *xt, struct conn *c, const struct proto_request *q,
    struct remote *rq);
/* c's pending requests end with status: its streams end too; returns how many. */
size_t xstream_forget(struct xstreams *xt, struct conn *c, int status);

#endif
