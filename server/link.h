/*
 * link.h: server-side concurrency patterns ("links", DESIGN.md §6,
 * PROTOCOL.md §12): or, or-done, tee, bridge, fan-in, repeat, take and
 * fan-out jobs.
 *
 * A link is a small state machine on the loop thread. It drives the engine
 * only through engine_submit and engine_op_cancel with done callbacks, the
 * very waiters a remote client gets, so it blocks and feels backpressure
 * exactly as a client would. It is created by a request that stays pending
 * for the link's whole life (request.h, REQUEST_LINK): a CANCEL of that
 * request, its deadline, its connection going away, shutdown, or its done
 * channel firing stops it. A stopped link closes its outputs (Go's `defer
 * close(out)`), cancels its own waiters, and answers its request; it frees
 * itself once the last engine callback and pool result it waits for came
 * back, and then releases its holds on every channel.
 *
 * Thread-safety: loop thread only (fan-out stages run on the pool, but
 * their results are applied here).
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef CHAND_LINK_H
#define CHAND_LINK_H

#include <stdbool.h>
#include <stddef.h>

#include "engine.h"

struct conn;
struct link;
struct proto_request;
struct server;

/*
 * The handler of every link op: validate against the server's state, make
 * the outputs, answer [id, STARTED, [names]] and start. Errors are
 * answered at once and nothing is left behind.
 */
void link_request(struct conn *c, const struct proto_request *q);
/*
 * Told once when a link stops, after its outputs are closed: status is its
 * final one (xpump.h's stand-ins for other nodes' channels). true, for a
 * link that ended OK: its final reply waits until the hook calls
 * link_finish (a CANCEL, deadline or disconnect meanwhile sends it at once).
 */
typedef bool link_end_fn(void *arg, int status);
struct link_hook {
	link_end_fn *ended;
	void *arg;
	struct link **link;		/* set to the link once it runs (valid until ended) */
	/* BRIDGE: a reference to a channel this node does not have: a held stand-in, or NULL */
	struct chan *(*follow)(void *arg, const char *name, size_t len);
	/* BRIDGE: it no longer follows ch (one of follow's stand-ins, or a channel of this node) */
	void (*unfollow)(void *arg, struct chan *ch);
	/*
	 * The name of the channel ch stands in for (its length in *len), on
	 * which the creator's rights are checked; NULL when ch is no stand-in.
	 * *sending: a value the link sent into ch is still on its way to that
	 * channel (a pending send, for a reload's check).
	 */
	const char *(*stands_for)(void *arg, const struct chan *ch, size_t *len, bool *sending);
	/*
	 * The link waits, STARTED not sent, until the hook calls link_go (or
	 * link_stop: then its only reply is that error, and it closes nothing).
	 */
	bool hold_start;
};
/*
 * link_request with a hook: true once the link runs (hook->ended is then
 * called when it stops, maybe before this returns); false when it could
 * not start (answered; ended is never called).
 */
bool link_start(struct conn *c, const struct proto_request *q, const struct link_hook *hook);
/*
 * Stop l (no-op if stopped): its request is answered with status (OK: the
 * link ended normally) and msg (NULL: the status's usual message).
 */
void link_stop(struct link *l, int status, const char *msg);
/* A link held at its start (hook->hold_start) runs: STARTED, then its first operations. */
void link_go(struct link *l);
/* The hook that deferred l's final reply lets it go (now, if not sent yet); l may be freed. */
void link_finish(struct link *l);
/*
 * The rules were reloaded: every running link's pending operations are
 * checked against its creator's rights now. One on a channel the creator
 * may no longer use ends: the link stops with PERMISSION_DENIED, except a
 * bridge's receive from the channel it follows, which becomes an error value.
 */
void link_rules_changed(struct server *s);
/* What l waits on right now, for WAITERS: case count, and case i. */
size_t link_ncases(const struct link *l);
struct chan *link_case(const struct link *l, size_t i, enum case_dir *dir);

#endif
