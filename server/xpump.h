/*
 * xpump.h: links whose channels live on other nodes (PROTOCOL.md §17,
 * "Links in a cluster"). The link runs here, unchanged (link.h): each
 * channel it names that another node owns is replaced, before it starts,
 * by a local anonymous unbuffered *stand-in*, and a *pump* moves values
 * between the stand-in and the owner over the peer connection (peer.h):
 *
 * - an input or the done channel (inbound): a one-case SELECT with `hold`
 *   parked at the owner; the value it lends is sent into the stand-in, and
 *   kept at the owner (XSETTLE keep) only once that send completed; given
 *   back (keep false) if the link stopped first. A close at the owner
 *   closes the stand-in, with its error. At most one value is in flight.
 * - an output (outbound): a receive from the stand-in, then a SEND to the
 *   owner, awaited before the next receive (one value in flight); the
 *   link's close of the stand-in becomes a CLOSE at the owner, with its
 *   error.
 * - a channel a BRIDGE follows (link.h's follow hook): inbound, from the
 *   moment it takes the reference until it leaves the channel. Every
 *   BRIDGE of a cluster starts here, for the channels it may follow.
 *
 * A link with a remote output starts (STARTED) only once each such
 * output's owner said its cap is the one asked (EXISTS otherwise, nothing
 * ran). The link's rights are its creator's on the remote channels' names
 * (link.h's stands_for hook), not on the stand-ins'. A pump whose owner
 * answers an error, or whose peer connection goes while the link still
 * needs it, stops the link (UNAVAILABLE "node N lost: ...", or the owner's
 * status). The link's end stops the pumps: parked SELECTs and SENDs are
 * CANCELed at their owners (a link that ended OK lets its last SEND
 * finish, and answers once its remote outputs are closed there), held
 * values go back.
 *
 * Ownership: the router owns the table; a link's pumps live until the
 * link stopped and their last reply came. Thread-safety: loop thread only.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef CHAND_XPUMP_H
#define CHAND_XPUMP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec.h"

struct conn;
struct peer;
struct router;
struct xpumps;

/* NULL when out of memory. */
struct xpumps *xpumps_new(struct router *r);
/* Free every pump without a word (the router is going). Accepts NULL. */
void xpumps_free(struct xpumps *ps);
/*
 * Start link request q of c, some of whose named channels other nodes own
 * (xlink_check said so), with a pump for each; it is answered as any link.
 */
void xpump_link(struct xpumps *ps, struct conn *c, const struct proto_request *q);
/* A peer reply for pid: true when it was a pump's. */
bool xpump_replied(struct xpumps *ps, uint64_t pid, const uint8_t *body, size_t len);
/* pe's connection is gone (why): the links pumping through it stop UNAVAILABLE. */
void xpump_peer_gone(struct xpumps *ps, struct peer *pe, const char *why);

#endif
