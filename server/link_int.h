/*
 * link_int.h: what link.c shares with the kinds (link_kinds.c,
 * link_fanout.c). Not for any other module.
 *
 * The core (link.c) owns the lifecycle, the holds, the done-channel
 * watcher and the pump. A kind is a table entry with up to two *slots*,
 * each a chain of engine operations one after another: step() says what
 * the slot does next (submit these cases, nothing for now, or the link is
 * finished), result() applies what it got. The core calls step() again
 * until the slot waits, so a kind never recurses into the engine.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef CHAND_LINK_INT_H
#define CHAND_LINK_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "codec.h"
#include "engine.h"
#include "link.h"

struct server;
struct request;
struct fanout;

#define LINK_SLOTS 2

enum link_step { STEP_SUBMIT, STEP_IDLE, STEP_END };

struct link_kind {
	uint64_t op;
	unsigned nslots;
	/* Kind-specific setup after the channels are resolved: a status, *why on error. */
	int (*init)(struct link *l, const struct proto_request *q, const char **why);
	/* Fill cases (*n of them) for slot's next operation. */
	enum link_step (*step)(struct link *l, unsigned slot, struct engine_case *cases, size_t *n);
	/* Slot's operation completed; res->value is the kind's. Not called once stopped. */
	void (*result)(struct link *l, unsigned slot, struct engine_result *res);
	/* Free kind state (may be NULL). */
	void (*free)(struct link *l);
};

struct link {
	struct server *srv;
	struct request *req;		/* NULL once answered */
	const struct link_kind *kind;
	struct chan *done;		/* held; NULL: none */
	struct engine_op *done_op;	/* the pending receive on done */
	struct chan **in;		/* held inputs */
	size_t nin;
	struct chan *out[PROTO_LINK_OUTS_MAX];	/* held outputs */
	size_t nout;
	struct engine_op *op[LINK_SLOTS];	/* each slot's pending operation */
	struct engine_case *cases;	/* scratch for step() */
	unsigned refs;			/* running + pending ops + pool items + frames */
	bool stopped, pumping, repump;
	bool starting;			/* held at its start (hook.hold_start): STARTED not sent */
	bool finishing;			/* stopped OK; its hook holds the "running" reference (link_finish) */
	uint64_t sent;			/* values sent to the outputs */
	unsigned own_outs;		/* bit i: out[i] is a new anonymous channel, the creator's own */
	struct close_err *err;		/* the first input's close error (a reference): the outputs' on OK */
	struct link_hook hook;		/* link_start's; ended NULL: none (or told already) */

	/* kind state */
	int phase;
	struct value *val;		/* the value in hand */
	uint64_t count, limit;		/* take: sent and n; repeat: the next index */
	bool finished;			/* or: fired; an input ran dry */
	int tee_left;			/* tee: the output still owed val */
	struct value **values;		/* repeat */
	size_t nvalues;
	struct chan *inner;		/* bridge: held, the channel being drained */
	char *inner_name;		/* ... the name its reference gave (a stand-in's is "~...") */
	size_t inner_len;
	uint8_t *in_closed;		/* fan-in: per input */
	size_t nopen;
	struct fanout *job;		/* fan-out */
};

extern const struct link_kind link_or, link_or_done, link_tee, link_bridge, link_fan_in,
    link_repeat, link_take, link_fan_out;

void link_ref(struct link *l);
void link_unref(struct link *l);
/* Run every slot until each waits or idles. Reentrant calls only mark a re-run. */
void link_pump(struct link *l);
/*
 * An input closed (res->ok false): keep its close error, if it has one and
 * none was kept before, for the outputs (the link's end closes them with it).
 */
void link_input_closed(struct link *l, const struct engine_result *res);
/* A non-OK result stops the link with a fitting message; returns false then. */
bool link_check(struct link *l, struct engine_result *res);
/*
 * May the link's creator use right on the channel name now (the rules of
 * the moment: PROTOCOL.md §13)? false: a denied line is logged and msg
 * (cap bytes) says "permission denied: recv on NAME".
 */
bool link_may(struct link *l, unsigned right, const char *name, size_t len, char *msg, size_t cap);
/* One case. */
void link_case_recv(struct engine_case *c, struct chan *ch);
void link_case_send(struct engine_case *c, struct chan *ch, struct value *v);
/* A new error value (ext 2) with msg; NULL when out of memory. */
struct value *link_error_value(const char *msg);
/* A copy of v; NULL when out of memory. */
struct value *link_value_dup(const struct value *v);

#endif
