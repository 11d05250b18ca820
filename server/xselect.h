/*
 * xselect.h: a cross-node SELECT at its home node (PROTOCOL.md §17): its
 * cases grouped by owner, each group sent as a SELECT with `hold` to its
 * owner (this node's own group to itself), all at once, with the
 * client's wait: each owner polls, and a group that must wait says so
 * (STARTED, hold 2). If one fires at its poll, the others are CANCELed
 * and, once all answered, one winner (a uniform choice among those that
 * fired) is the client's reply; if every group waits (parked), the first
 * to fire wins. The winner's held value is confirmed (XSETTLE keep: a
 * value received leaves its channel, a send case's value is sent) before
 * the reply, then the other groups are CANCELed, and every other held
 * value is given back (a send's is dropped). A granted send that is not ready any
 * more starts the select over. The same runs for another module as a
 * *round* (xselect_round: xstream.c's units of credit), answered by a
 * callback instead of a client's reply.
 *
 * Ownership: the router owns the table; a select lives until its last
 * group answered, even after its client went (its values go back then).
 * Thread-safety: loop thread only.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef CHAND_XSELECT_H
#define CHAND_XSELECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec.h"

struct conn;
struct peer;
struct remote;
struct router;
struct xselects;

/* NULL when out of memory. */
struct xselects *xselects_new(struct router *r);
/* Free every select without a word (the router is going). Accepts NULL. */
void xselects_free(struct xselects *xs);
/*
 * Coordinate q (a SELECT whose cases have several owners, decoded from
 * body) for c; it is answered in due course.
 */
void xselect_start(struct xselects *xs, struct conn *c, const struct proto_request *q,
    const uint8_t *body, size_t len);
/* A peer reply for pid: true when it was one of ours. */
bool xselect_replied(struct xselects *xs, uint64_t pid, const uint8_t *body, size_t len);
/* pe's connection is gone (why): its groups end UNAVAILABLE. */
void xselect_peer_gone(struct xselects *xs, struct peer *pe, const char *why);
/* CANCEL q of rq, a cross-node select of c: answered here. */
void xselect_cancel(struct xselects *xs, struct conn *c, const struct proto_request *q,
    struct remote *rq);
/*
 * A round: q (a SELECT encoded as body, no default, decoded into q) run
 * as a cross-node select for another module (xstream.c), not a request
 * of a client's: its wait runs from start, and its end is done(arg,
 * status, index, rep, pe, why), called once (unless dropped first): OK with
 * q's case index and the owner's reply rep (a value or a close report,
 * kept at its owner for good; a value with a tag, rep->tag, is in flight
 * at its owner on pe, §16: the caller hands out a tag of its own for it
 * or NACKs it there, router_tags_issue), or an error (index >= 0: that case's, rep
 * its reply if it has one; why its words). It may be called from within
 * xselect_round (a group that could not be sent). NULL with why when it
 * cannot start (done is never called).
 */
struct peer;
typedef void (*xselect_done)(void *arg, int status, int64_t index, const struct proto_reply *rep,
    struct peer *pe, const char *why);
struct xsel;
struct xsel *xselect_round(struct xselects *xs, const struct proto_request *q, const uint8_t *body,
    size_t len, int64_t start, xselect_done done, void *arg, const char **why);
/*
 * The round's caller no longer waits for it: true when dropped (done
 * never comes, its held values go back at their owners); false when its
 * winner is being confirmed (its value is kept: done comes), or when a
 * group may still fire a case for good at its poll (done comes: with that
 * case, or CANCELED once the group answered without it).
 */
bool xselect_drop(struct xsel *x);
/* c's pending requests end with status: its selects end too; returns how many. */
size_t xselect_forget(struct xselects *xs, struct conn *c, int status);

#endif
