/*
 * xselect_int.h: what xselect.c (the groups' answers, the winner, the
 * client's end) and xselect_start.c (grouping the cases by owner, sending
 * the groups) share: the select's state. Thread-safety: loop thread only.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef CHAND_XSELECT_INT_H
#define CHAND_XSELECT_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include "codec.h"
#include "hmap.h"
#include "router_int.h"
#include "xselect.h"

struct xsel;

/* The cases of one owner: one SELECT with hold on its peer connection. */
struct xgroup {
	struct xsel *x;
	struct hmap_node by_pid;	/* in the table's pids while open or settling */
	uint64_t pid;			/* its SELECT's id, then its XSETTLE's (settling) */
	struct peer *pe;
	const char *node;		/* while starting only (the mirror's) */
	uint32_t ncases;
	uint32_t *index;		/* its case i is the client's case index[i] */
	uint32_t *rank;			/* ... the rank[i]-th in the home's order (rising; index's allocation) */
	uint32_t fired_rank;		/* fired: the rank of the case it took */
	uint32_t firm;			/* its first firm cases fire for good when ready at the poll */
	bool *send;			/* its case i is a send case */
	bool open;			/* its SELECT has not answered */
	bool waiting;			/* ... and its owner said it waits (STARTED) */
	bool fired;			/* it took a case: reply kept */
	bool held;			/* ... with a value its owner holds for us (received, or to send) */
	bool sent;			/* ... and that case is a send: XSETTLE keep sends it */
	bool tagged;			/* ... or an ack channel's value, in flight at its owner (§16) */
	bool firmed;			/* ... for good, at the poll (one of its firm cases): nothing held */
	bool settling;			/* the winner: XSETTLE keep sent, its OK awaited */
	uint8_t *reply;			/* its SELECT's reply (fired) */
	size_t reply_len;
};

struct xsel {
	struct remote rq;		/* in the router's ids while the client waits for it */
	struct xselects *xs;
	struct conn *c;			/* NULL once the client's wait ended (CANCEL, disconnect); always for a round */
	xselect_done done;		/* a round's caller (xselect_round), until answered or dropped */
	void *arg;
	TAILQ_ENTRY(xsel) link;
	uint32_t ngroups, nopen;
	uint32_t ncases;		/* the client's */
	uint32_t ndefault;		/* groups that answered default */
	bool canceling;			/* every open group was CANCELed */
	bool cancel_late;		/* CANCELed while its winner was confirmed or a group could fire for good */
	bool blocking;			/* the client may wait (wait != 0, no default) */
	bool parked;			/* every group said it waits: the first to fire wins */
	bool restart_pending;		/* poll again once every group has answered */
	struct xgroup *winner;		/* parked: the first group that fired */
	int err;			/* the first error that ends it when no group fires, or OK */
	char why[640];			/* ... and its words */
	uint8_t *frame;			/* the client's request, to send its groups again */
	size_t frame_len;
	struct xgroup g[];
};

struct xselects {
	struct router *r;
	struct hmap pids;		/* struct xgroup by pid */
	TAILQ_HEAD(, xsel) list;
	uint64_t rng;
};

/* A uniform draw in [0, n), n > 0. */
uint32_t xsel_uniform(struct xselects *xs, uint32_t n);
/* Forget x: its groups' pids, its id in the router's ids (client waiting), its memory. */
void xsel_free(struct xsel *x);
/* Write r->out's frame to pe (a failure is the connection's: its lost callback ends what waits). */
void xsel_send_frame(struct xselects *xs, struct peer *pe);
/* CANCEL every group of x still open. */
void xsel_cancel_open(struct xsel *x);
/* Every group of x answered: the winner, the client's answer, or (nothing yet) the end. */
void xsel_decide(struct xsel *x);
/*
 * xselect_start.c: group q's cases by owner, keeping its frame (body) if
 * none is kept; false with why when it cannot run.
 */
bool xsel_group_cases(struct xselects *xs, struct xsel *x, const struct proto_request *q,
    const uint8_t *body, size_t len, const char **why);
/* xselect_start.c: send every group of x (q: its request) with what is left of its wait. */
void xsel_run(struct xsel *x, const struct proto_request *q);
/* xselect_start.c: g's memory (its cases and its reply). */
void xsel_group_release(struct xgroup *g);
/*
 * xselect_start.c: poll x again from the start, grouped by owner anew
 * (every group answered, none holds a value), with what is left of its wait.
 */
void xsel_again(struct xsel *x);
/* Its client's (or round's caller's) answer: status, why. */
void xsel_reply_error(struct xsel *x, int status, const char *why);

#endif
