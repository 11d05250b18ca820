/*
 * xlink.h: a link's channels in a cluster (PROTOCOL.md §17, "Links in a
 * cluster"). A link runs on the node it was requested from; every named
 * channel it names (done, inputs, outputs) must have a live owner, this
 * node or another (then xpump.h reaches it). The routing step asks here
 * before a link runs, and refuses it with the reason otherwise. Anonymous
 * channels are the node's own (link.c finds them or says NOT_FOUND).
 *
 * Thread-safety: loop thread only. Errors: enum status.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef CHAND_XLINK_H
#define CHAND_XLINK_H

#include <stdbool.h>
#include <stddef.h>

#include "codec.h"

struct cluster;

/* What xlink_check found besides its status. */
struct xlink_found {
	bool remote;			/* a channel is owned by another node */
	const char *unknown;		/* NOT_FOUND: the name the owner cache does not know (in q) */
	uint32_t unknown_len;
	uint32_t names;			/* named channels q names */
};
/*
 * May link request q run on this node? STATUS_OK; STATUS_UNAVAILABLE (this
 * node fenced, or an owner's lease ending) or STATUS_NOT_FOUND (a named
 * channel the owner cache does not know: in a cluster a link makes no named
 * channel; etcd may know it yet), with the words in why (cap bytes).
 */
int xlink_check(struct cluster *cl, const struct proto_request *q, struct xlink_found *f,
    char *why, size_t cap);

#endif
