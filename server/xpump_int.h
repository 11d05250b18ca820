/*
 * xpump_int.h: what xpump.c (the pumps' traffic) and xpump_start.c (their
 * start, link.h's hooks) share. Not for any other module. Loop thread only.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef CHAND_XPUMP_INT_H
#define CHAND_XPUMP_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include "hmap.h"
#include "xpump.h"

struct chan;
struct engine_op;
struct link;

enum pump_kind { PUMP_IN, PUMP_OUT };

struct xpset;

/* One remote channel of a link and its stand-in. */
struct pump {
	struct xpset *set;
	struct hmap_node by_pid;	/* in the table's pids while pid is awaited */
	uint64_t pid;			/* the SELECT (in) or SEND (out) awaited; 0: none */
	uint64_t held;			/* in: the SELECT whose value is being sent into sub; 0: none */
	bool canceled;			/* a CANCEL of pid was sent */
	bool closing;			/* pid is the CLOSE of the remote output */
	bool owed;			/* the link's final reply waits for that CLOSE's reply */
	bool checking;			/* pid is the CAP asked before the link starts */
	uint64_t cap;			/* out: the cap the request gave */
	enum pump_kind kind;
	const char *what;		/* "input", "output", "done channel" */
	char *name;			/* the remote channel's */
	uint32_t len;
	struct peer *pe;
	struct chan *sub;		/* the stand-in (held) */
	struct engine_op *op;		/* pending on sub */
	bool retired;			/* a bridge no longer follows it: freed once quiet */
	bool resolving;			/* followed, its owner asked of etcd: pe NULL until known */
};

/* One link's pumps. */
struct xpset {
	struct xpumps *ps;
	struct link *link;		/* NULL once it stopped (or never ran) */
	struct link *finishing;		/* it ended OK: its final reply waits for the owed CLOSEs */
	unsigned owed;			/* pumps owed */
	unsigned checking;		/* CAPs awaited: the link starts when none is */
	unsigned busy;			/* frames using it: freed only at 0 */
	TAILQ_ENTRY(xpset) entry;
	size_t n, cap;
	struct pump **p;
};

struct xpumps {
	struct router *r;
	struct hmap pids;		/* struct pump by pid */
	TAILQ_HEAD(, xpset) sets;
};

/* Free p (its stand-in released, its pid forgotten). */
void xp_pump_free(struct pump *p);
/* A frame uses set; the last one out frees what is quiet (and the set once its link stopped). */
void xp_set_enter(struct xpset *set);
void xp_set_leave(struct xpset *set);
/* The router's scratch frame, reset; written to p's peer. A fresh request id. */
struct proto_out *xp_frame(struct pump *p);
void xp_write_frame(struct pump *p);
uint64_t xp_next_id(struct pump *p);
/* pid is awaited now; false when out of memory. */
bool xp_await(struct pump *p, uint64_t pid);
/* CANCEL p's awaited request at its owner (once). */
void xp_cancel_pid(struct pump *p);
/* The link stops with the owner's status st (msg: its words). */
void xp_stop_link(struct pump *p, int st, const char *msg, uint32_t msg_len);
/* Park the next one-case SELECT (in); take the link's next value from the stand-in (out). */
void xp_in_ask(struct pump *p);
void xp_out_recv(struct pump *p);
/* The owner answered the CAP asked before the link starts (xpump_start.c). */
void xp_cap_replied(struct pump *p, const uint8_t *body, size_t len);

#endif
