/*
 * xselect.c: cross-node SELECT at its home node (xselect.h, PROTOCOL.md
 * §17).
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "acl.h"
#include "clock.h"
#include "cluster.h"
#include "conn.h"
#include "log.h"
#include "peer.h"
#include "request.h"
#include "router_int.h"
#include "stats.h"
#include "xselect.h"
#include "xselect_int.h"

struct xselects *
xselects_new(struct router *r)
{
	struct xselects *xs = calloc(1, sizeof *xs);

	if (xs == NULL)
		return NULL;
	xs->r = r;
	xs->rng = (uint64_t)clock_now_ns() | 1;
	hmap_init(&xs->pids, (uint64_t)(uintptr_t)xs ^ 0xbb67ae8584caa73bULL);
	TAILQ_INIT(&xs->list);
	return xs;
}

void
xsel_free(struct xsel *x)
{
	struct xselects *xs = x->xs;

	for (uint32_t i = 0; i < x->ngroups; i++) {
		if (x->g[i].open || x->g[i].settling)
			hmap_remove(&xs->pids, &x->g[i].by_pid);
		xsel_group_release(&x->g[i]);
	}
	if (x->c != NULL)
		hmap_remove(&xs->r->ids, &x->rq.node);
	TAILQ_REMOVE(&xs->list, x, link);
	free(x->frame);
	free(x);
}

void
xselects_free(struct xselects *xs)
{
	struct xsel *x;

	if (xs == NULL)
		return;
	while ((x = TAILQ_FIRST(&xs->list)) != NULL)
		xsel_free(x);
	hmap_destroy(&xs->pids);
	free(xs);
}

/* xorshift64*: the home's random order of a select's cases */
uint32_t
xsel_uniform(struct xselects *xs, uint32_t n)
{
	xs->rng ^= xs->rng >> 12;
	xs->rng ^= xs->rng << 25;
	xs->rng ^= xs->rng >> 27;
	return (uint32_t)(((xs->rng * 0x2545f4914f6cdd1dULL) >> 32) % n);
}

/* ---- answering the client ------------------------------------------------------------ */

/* Somebody still waits for x's result: its client, or a round's caller. */
static bool
waits(const struct xsel *x)
{
	return x->c != NULL || x->done != NULL;
}

/*
 * A round's result to its caller, once (status, the frame's case index or
 * -1, rep or NULL, pe the owner's connection when rep carries a tag).
 */
static void
round_done(struct xsel *x, int status, int64_t index, const struct proto_reply *rep,
    struct peer *pe, const char *why)
{
	xselect_done done = x->done;

	x->done = NULL;
	if (done != NULL)
		done(x->arg, status, index, rep, pe, why);
}

/* The client's wait is over (answered or ended): its id is free again. */
static struct conn *
client_done(struct xsel *x, int status)
{
	struct conn *c = x->c;

	if (c == NULL)
		return NULL;
	c->nforwarded -= x->ngroups;
	stats_record(&x->xs->r->s->ops, OP_SELECT, status, clock_now_ns() - x->rq.start);
	hmap_remove(&x->xs->r->ids, &x->rq.node);
	x->c = NULL;
	return c->closing || c->dead ? NULL : c;
}

void
xsel_reply_error(struct xsel *x, int status, const char *why)
{
	struct conn *c;

	round_done(x, status, -1, NULL, NULL, why);
	if ((c = client_done(x, status)) == NULL)
		return;
	if (status == STATUS_UNAVAILABLE)
		cluster_counters(x->xs->r->cl)->unavailable++;
	conn_reply_error(c, x->rq.id, status, why);
}

/*
 * The winner g's reply, with the client's id and case index; an ack
 * channel's value under a tag of this node's for the owner's (§16 through
 * a forwarder), or NACKed at its owner when the client cannot have it.
 */
static void
relay(struct xsel *x, struct xgroup *g)
{
	struct router *r = x->xs->r;
	struct proto_out *o = &r->s->out;
	struct proto_reply rep;
	const char *why;
	char msg[300];
	struct conn *c;
	uint64_t tag = 0;
	int64_t idx;
	int rc;

	if (proto_decode_reply(g->reply, g->reply_len, OP_SELECT, &rep, &why) != STATUS_OK ||
	    rep.index < 0 || rep.index >= (int64_t)g->ncases) {
		xsel_reply_error(x, STATUS_UNAVAILABLE,
		    "a node's reply to a cross-node select was malformed");
		return;
	}
	idx = g->index[rep.index];
	snprintf(msg, sizeof msg, "%.*s", (int)rep.msg_len, rep.msg_len ? rep.msg : "");
	if (x->done != NULL) {
		round_done(x, rep.status, idx, &rep, g->pe, msg);	/* a tag is the caller's */
		return;
	}
	c = client_done(x, rep.status);
	if (rep.tag != 0 && (c == NULL || router_tags_issue(r, c, g->pe, rep.tag, &tag) < 0)) {
		router_tags_nack(r, g->pe, rep.tag);	/* back to its channel at once */
		if (c != NULL)
			conn_reply_error(c, x->rq.id, STATUS_LIMIT,
			    "out of memory (the value went back to its channel)");
		return;
	}
	if (c == NULL)
		return;
	rc = rep.status != STATUS_OK ? proto_rep_case_error(o, x->rq.id, rep.status, msg, idx) :
	    proto_rep_case(o, x->rq.id, idx, &rep, tag);
	if (rc == 0)
		conn_flush_out(c);
}

/* ---- talking to the owners ----------------------------------------------------------- */

void
xsel_send_frame(struct xselects *xs, struct peer *pe)
{
	/* a failure is the connection's: its lost callback ends what waits on it */
	peer_write(pe, proto_out_data(&xs->r->out), proto_out_len(&xs->r->out));
}

/*
 * Once nobody waits for x's outcome, its groups' CANCELED answers only
 * free it: deferred (§15, §17 CANCEL of a SELECT with hold 2), they come
 * with the owner's next reply instead of a write and a wake-up each. A
 * group that fired before the CANCEL came still answers at once.
 */
void
xsel_cancel_open(struct xsel *x)
{
	struct xselects *xs = x->xs;
	bool unawaited = !waits(x);

	x->canceling = true;
	for (uint32_t i = 0; i < x->ngroups; i++) {
		proto_out_reset(&xs->r->out);
		if (x->g[i].open && proto_req_cancel(&xs->r->out, peers_next_id(xs->r->peers),
		    x->g[i].pid) == 0 && (!unawaited || proto_req_defer_last(&xs->r->out) == 0))
			xsel_send_frame(xs, x->g[i].pe);
	}
}

/* The groups still open are CANCELed now (once). */
static void
cancel_rest(struct xsel *x)
{
	if (!x->canceling && x->nopen > 0)
		xsel_cancel_open(x);
}

/*
 * Keep (winner) or give back the value held for g's SELECT, target; pid
 * 0: nobody waits for the answer, so it may be deferred (§15).
 */
static void
settle(struct xsel *x, struct xgroup *g, uint64_t target, bool keep, uint64_t pid)
{
	struct xselects *xs = x->xs;

	g->held = false;
	proto_out_reset(&xs->r->out);
	if (proto_req_xsettle(&xs->r->out, pid ? pid : peers_next_id(xs->r->peers), target,
	    keep) == 0 && (pid != 0 || proto_req_defer_last(&xs->r->out) == 0))
		xsel_send_frame(xs, g->pe);
}

/*
 * The winner w: its held value confirmed (XSETTLE keep; true: its answer
 * awaited), else its reply relayed now (false). A value received by a
 * blocking select's group (hold 2) is taken unless given back, so its
 * reply goes at once, its XSETTLE keep after it, answer unawaited.
 */
static bool
confirm(struct xsel *x, struct xgroup *w)
{
	uint64_t target = w->pid;

	if (!w->held || (x->blocking && !w->sent)) {
		cluster_counters(x->xs->r->cl)->xselect_firm += w->firmed;
		relay(x, w);
		if (w->held)
			settle(x, w, target, true, 0);
		return false;
	}
	/* from now on its pid is its XSETTLE's */
	w->settling = true;
	w->pid = peers_next_id(x->xs->r->peers);
	if (hmap_insert(&x->xs->pids, &w->by_pid, hmap_hash_u64(x->xs->pids.seed, w->pid)) == 0) {
		settle(x, w, target, true, w->pid);
		return true;
	}
	w->settling = false;
	settle(x, w, target, false, 0);
	xsel_reply_error(x, STATUS_LIMIT, "out of memory");
	cancel_rest(x);
	return false;
}

static void restart(struct xsel *x);

/*
 * g fired for good at its poll (firmed), but its client had gone: an ack
 * channel's value is NACKed back to its channel; any other was taken and
 * is lost with the client, as a value a forwarded RECV took (said in the log).
 */
static void
firm_unwanted(struct xsel *x, struct xgroup *g)
{
	struct proto_reply rep;
	const char *why;

	if (proto_decode_reply(g->reply, g->reply_len, OP_SELECT, &rep, &why) != STATUS_OK)
		return;
	if (rep.tag != 0)
		router_tags_nack(x->xs->r, g->pe, rep.tag);
	else if (rep.value.kind != VALUE_NONE && rep.ok)
		log_warn("xselect-lost node=%s note=\"the client went before the value its select took "
		    "at the poll came\"", peer_node(g->pe));
}

/* g's held value goes back to its owner's channel; one taken for good is unwanted. */
static void
give_back(struct xsel *x, struct xgroup *g)
{
	if (g->held)
		settle(x, g, g->pid, false, 0);
	else if (g->firmed)
		firm_unwanted(x, g);
	g->firmed = false;
}

/* Every held value but the winner w's (NULL: every one) goes back (give_back). */
static void
give_back_others(struct xsel *x, const struct xgroup *w)
{
	for (uint32_t i = 0; i < x->ngroups; i++)
		if (&x->g[i] != w)
			give_back(x, &x->g[i]);
}

/*
 * The group that fired whose case comes first in the home's random order
 * of the client's cases (each owner polled its group in that order): the
 * first ready case of a uniformly random order, uniform among the cases
 * ready on every node, as Go's choice. NULL when none fired.
 */
static struct xgroup *
pick_fired(struct xsel *x)
{
	struct xgroup *w = NULL;

	for (uint32_t i = 0; i < x->ngroups; i++)
		if (x->g[i].fired && (w == NULL || x->g[i].fired_rank < w->fired_rank))
			w = &x->g[i];
	return w;
}

/*
 * Every group answered: pick the winner (pick_fired),
 * give the others' values back, answer; or answer default, the first
 * error, DEADLINE_EXCEEDED.
 */
void
xsel_decide(struct xsel *x)
{
	struct xgroup *w = NULL;

	if (x->winner != NULL) {
		/* parked, decided at its first fire: every other group has answered now */
		if (x->restart_pending)
			restart(x);
		else if (!x->winner->settling)
			xsel_free(x);
		return;
	}
	/* the client gone: nothing wins, every value goes back */
	if (waits(x))
		w = pick_fired(x);
	give_back_others(x, w);
	if (w != NULL && confirm(x, w))
		return;
	if (w != NULL) {
		/* answered */
	} else if (x->cancel_late) {
		xsel_reply_error(x, STATUS_CANCELED, "canceled");
	} else if (x->err != STATUS_OK) {
		xsel_reply_error(x, x->err, x->why);
	} else if (x->ndefault == x->ngroups) {
		struct conn *c;

		round_done(x, STATUS_OK, -1, NULL, NULL, NULL);
		c = client_done(x, STATUS_OK);

		if (c != NULL && proto_rep_select(&x->xs->r->s->out, x->rq.id, -1, NULL, 0, true) == 0)
			conn_flush_out(c);
	} else {
		xsel_reply_error(x, STATUS_DEADLINE_EXCEEDED, "deadline exceeded");
	}
	xsel_free(x);
}

/*
 * A blocking select's poll is heard out: some group fired, and every
 * group still open said it waits (STARTED): nothing was ready there when
 * its owner polled. The choice can be made now, without the CANCELs'
 * round trip to the waiting ones. Not before: a group still polling may
 * yet take a value, and the client, once answered, must find every value
 * it did not choose in its channel (given back before it is answered),
 * as after Go's select; so even a case fired for good waits for that.
 */
static bool
poll_heard(struct xsel *x)
{
	if (x->winner != NULL || x->canceling || !x->blocking || !waits(x) || x->nopen == 0 ||
	    pick_fired(x) == NULL)
		return false;
	for (uint32_t i = 0; i < x->ngroups; i++)
		if (x->g[i].open && !x->g[i].waiting)
			return false;
	return true;
}

/*
 * poll_heard: the winner among the groups that fired (pick_fired), the other
 * fired ones' values back; the waiting groups are CANCELed once the
 * client has its answer, as when a parked select wakes.
 */
static void
decide_heard(struct xsel *x)
{
	struct xgroup *w = pick_fired(x);

	give_back_others(x, w);
	x->winner = w;
	if (!confirm(x, w))
		cancel_rest(x);		/* answered (or failed) at once */
}

/*
 * A case fired for good decides the select: a group that may still fire
 * one (its poll's answer has not come), or one that did, its value not
 * relayed yet (it waits for the other groups' word, poll_heard).
 */
static bool
firm_pending(const struct xsel *x)
{
	for (uint32_t i = 0; i < x->ngroups; i++) {
		const struct xgroup *g = &x->g[i];

		if ((g->open && g->firm > 0 && !g->waiting) || g->firmed)
			return true;
	}
	return false;
}

static void abandon(struct xsel *x, int status, const char *why);

/*
 * A CANCEL that came while a group could fire for good (xselect_cancel)
 * is carried out once none can, unless one did or a case won meanwhile;
 * true if so.
 */
static bool
cancel_deferred(struct xsel *x)
{
	if (!x->cancel_late || !waits(x) || x->winner != NULL || firm_pending(x))
		return false;
	abandon(x, STATUS_CANCELED, "canceled");
	return true;
}

/* g's SELECT ended with status (rep decoded when valid). */
static void
group_ended(struct xgroup *g, int status, const struct proto_reply *rep, const uint8_t *body,
    size_t len, const char *why)
{
	struct xsel *x = g->x;
	bool nothing = status == STATUS_DEADLINE_EXCEEDED || status == STATUS_CANCELED ||
	    (status == STATUS_OK && rep->index < 0);
	bool wins, hear_out;

	g->open = false;
	x->nopen--;
	hmap_remove(&x->xs->pids, &g->by_pid);
	if (rep != NULL && rep->index >= 0)
		g->fired_rank = rep->index < (int64_t)g->ncases ? g->rank[rep->index] : UINT32_MAX;
	if (status == STATUS_OK && rep->index >= 0) {
		g->fired = true;
		/* a send case that is ready sends on XSETTLE keep; a value received goes back unless kept */
		g->sent = rep->index < (int64_t)g->ncases && g->send[rep->index];
		g->tagged = rep->tag != 0;	/* in flight at its owner, held there too */
		g->held = g->sent || (rep->value.kind != VALUE_NONE && rep->ok);
		/* one of its firm cases, ready at the poll (no STARTED before): for good there */
		if (!g->waiting && (uint64_t)rep->index < g->firm) {
			g->firmed = true;
			g->held = g->sent = false;
		}
	} else if (status != STATUS_OK && rep != NULL && rep->index >= 0) {
		g->fired = true;	/* a case's error: CLOSED, NOT_FOUND, ... */
	} else if (!nothing && x->err == STATUS_OK) {
		x->err = status;
		snprintf(x->why, sizeof x->why, "%s", why);
	}
	if (status == STATUS_OK && rep->index < 0)
		x->ndefault++;
	/* a wake-up: the first case to fire wins, as in Go (fairness is the poll's) */
	wins = g->fired && x->parked && x->winner == NULL && waits(x);
	if (g->fired && (g->reply = malloc(len)) != NULL) {
		memcpy(g->reply, body, len);
		g->reply_len = len;
	} else if (g->fired) {
		g->fired = false;	/* out of memory: undone */
		if (g->held)
			settle(x, g, g->pid, false, 0);
	}
	/*
	 * a fire at the poll, while other groups are open: the word of each on
	 * what was ready is awaited (STARTED, or its own fire), not a
	 * CANCEL's answer (poll_heard); any other end CANCELs the rest
	 */
	hear_out = g->fired && !wins && x->winner == NULL && x->blocking && waits(x) &&
	    x->nopen > 0;
	/*
	 * a wake-up CANCELs the other groups once its client is answered, or
	 * its value confirmed (cancel_rest): that work is not on the way there
	 */
	if (!nothing && !x->canceling && !wins && !hear_out)
		xsel_cancel_open(x);
	if (wins) {
		x->winner = g;
		if (!confirm(x, g))
			cancel_rest(x);		/* answered (or failed) at once */
	} else if (x->winner != NULL || !waits(x)) {
		/* too late, or nobody waits: back now, not once the others answered (deferred, §15) */
		give_back(x, g);
	} else if (poll_heard(x)) {
		decide_heard(x);
	}
	if (x->nopen == 0)
		xsel_decide(x);
	else
		cancel_deferred(x);
}

/* The winner g's send, granted, failed at its owner (rep: XSETTLE's): that case's error. */
static void
send_failed(struct xsel *x, struct xgroup *g, const struct proto_reply *rep)
{
	struct proto_reply sel;
	const char *why;
	char msg[300];
	struct conn *c;

	if (proto_decode_reply(g->reply, g->reply_len, OP_SELECT, &sel, &why) != STATUS_OK ||
	    sel.index < 0 || sel.index >= (int64_t)g->ncases) {
		xsel_reply_error(x, STATUS_UNAVAILABLE,
		    "a node's reply to a cross-node select was malformed");
		return;
	}
	snprintf(msg, sizeof msg, "%.*s", (int)rep->msg_len, rep->msg_len ? rep->msg : "");
	round_done(x, rep->status, g->index[sel.index], NULL, NULL, msg);
	if ((c = client_done(x, rep->status)) != NULL && proto_rep_case_error(&x->xs->r->s->out,
	    x->rq.id, rep->status, msg, g->index[sel.index]) == 0)
		conn_flush_out(c);
}

/*
 * The winner's send case was no longer ready when granted: nothing fired
 * and every other group's value went back, so the select starts over,
 * polled again at every owner.
 */
static void
restart(struct xsel *x)
{
	if (!waits(x) || x->cancel_late) {
		/* its client has gone, or CANCELed it meanwhile: it ends now */
		xsel_reply_error(x, STATUS_CANCELED, "canceled");
		xsel_free(x);
		return;
	}
	cluster_counters(x->xs->r->cl)->xselect_retries++;
	x->parked = false;
	xsel_again(x);
}

/*
 * g's owner says it waits: once every group waits, nothing was ready
 * when they polled, and the first to fire now wins.
 */
static void
group_waits(struct xgroup *g)
{
	struct xsel *x = g->x;

	g->waiting = true;
	if (x->winner != NULL || x->canceling || cancel_deferred(x))
		return;
	if (poll_heard(x)) {
		decide_heard(x);	/* the last word on a poll where a case fired */
		return;
	}
	for (uint32_t i = 0; i < x->ngroups; i++)
		if (!x->g[i].open || !x->g[i].waiting)
			return;
	x->parked = true;
}

bool
xselect_replied(struct xselects *xs, uint64_t pid, const uint8_t *body, size_t len)
{
	struct hmap_node *n;
	struct xgroup *g = NULL;
	struct proto_reply rep;
	const char *why;
	char msg[300];

	HMAP_FOR_EACH_HASH(n, hmap_hash_u64(xs->pids.seed, pid), &xs->pids) {
		if (HMAP_ENTRY(n, struct xgroup, by_pid)->pid == pid)
			g = HMAP_ENTRY(n, struct xgroup, by_pid);
	}
	if (g == NULL)
		return false;
	if (g->settling) {
		struct xsel *x = g->x;

		hmap_remove(&xs->pids, &g->by_pid);
		g->settling = false;
		if (proto_decode_reply(body, len, OP_XSETTLE, &rep, &why) != STATUS_OK) {
			rep.status = STATUS_PROTOCOL;
			rep.msg = why;
			rep.msg_len = (uint32_t)strlen(why);
		}
		if (rep.status == STATUS_OK) {
			relay(x, g);
		} else if ((g->sent && rep.status == STATUS_DEADLINE_EXCEEDED) ||
		    (g->tagged && rep.status == STATUS_NOT_FOUND)) {
			/*
			 * the send case is not ready any more (another sender was
			 * first), or ack_wait gave the value back first: poll again
			 */
			g->sent = false;
			if (x->nopen > 0) {
				x->restart_pending = true;	/* once the others have answered */
				cancel_rest(x);
			} else {
				restart(x);
			}
			return true;
		} else if (g->sent && rep.status != STATUS_PROTOCOL) {
			/* the send ran and failed (CLOSED, NOT_FOUND, LIMIT): that case's result */
			send_failed(x, g, &rep);
		} else {
			snprintf(msg, sizeof msg, "node %s did not confirm the case that fired: %s: %.*s",
			    peer_node(g->pe), status_name(rep.status), (int)rep.msg_len,
			    rep.msg_len ? rep.msg : "");
			xsel_reply_error(x, STATUS_UNAVAILABLE, msg);
		}
		cancel_rest(x);		/* the client has its reply: the others go now */
		if (x->nopen == 0)
			xsel_free(x);	/* else the last group to answer frees it (decide) */
		return true;
	}
	if (proto_decode_reply(body, len, OP_SELECT, &rep, &why) != STATUS_OK) {
		snprintf(msg, sizeof msg, "node %s: malformed reply: %s", peer_node(g->pe), why);
		group_ended(g, STATUS_UNAVAILABLE, NULL, body, len, msg);
		return true;
	}
	if (rep.status == STATUS_STARTED) {
		group_waits(g);
		return true;
	}
	snprintf(msg, sizeof msg, "%.*s", (int)rep.msg_len, rep.msg_len ? rep.msg : "");
	if (rep.status == STATUS_MOVED) {
		snprintf(msg, sizeof msg, "a channel moved to the node at %.*s; try again",
		    (int)rep.msg_len, rep.msg_len ? rep.msg : "");
		rep.status = STATUS_UNAVAILABLE;
		rep.index = -1;
	}
	group_ended(g, rep.status, &rep, body, len, msg);
	return true;
}

void
xselect_peer_gone(struct xselects *xs, struct peer *pe, const char *why)
{
	struct xsel *x, *nx;
	char msg[600];

	snprintf(msg, sizeof msg, "node %s lost: %s", peer_node(pe), why);
	for (x = TAILQ_FIRST(&xs->list); x != NULL; x = nx) {
		nx = TAILQ_NEXT(x, link);
		for (uint32_t i = 0; i < x->ngroups; i++) {
			struct xgroup *g = &x->g[i];

			if (g->pe != pe)
				continue;
			if (g->held) {
				/* taken unless given back (hold 2): its owner's end keeps it */
				if (x->blocking && !g->sent && !g->tagged)
					log_warn("xselect-lost node=%s note=\"the connection to the owner "
					    "broke while it held a value for a select that waits: kept "
					    "there (or lost with the node), never delivered\"",
					    peer_node(pe));
				/* else its owner gives it back, or it went with the node: undone */
				g->held = false;
				g->fired = false;
				if (x->err == STATUS_OK) {
					x->err = STATUS_UNAVAILABLE;
					snprintf(x->why, sizeof x->why, "%s", msg);
				}
			}
			if (g->settling) {
				/* it may or may not have been kept there: never delivered twice */
				xsel_reply_error(x, STATUS_UNAVAILABLE, msg);
				hmap_remove(&xs->pids, &g->by_pid);
				g->settling = false;
				cancel_rest(x);
				if (x->nopen == 0)
					xsel_free(x);	/* else the last group to answer frees it */
				break;
			}
			if (g->open) {
				group_ended(g, STATUS_UNAVAILABLE, NULL, NULL, 0, msg);
				/* x may be gone: a group of x ending last decides and frees it */
				break;
			}
		}
	}
}

/* ---- the client ends its wait ---------------------------------------------------------- */

static bool
settling(const struct xsel *x)
{
	for (uint32_t i = 0; i < x->ngroups; i++)
		if (x->g[i].settling)
			return true;
	return false;
}

/*
 * Nobody waits for x's outcome any more: its open groups are CANCELed,
 * their values go back when they answer; a value held by a group that
 * answered goes back now, not once the others' (deferred) answers came.
 * A winner being confirmed is kept: its value goes with the client, as a
 * value handed over does.
 */
static void
let_go(struct xsel *x)
{
	give_back_others(x, x->winner);
	if (!settling(x) && !x->canceling)
		xsel_cancel_open(x);
}

bool
xselect_drop(struct xsel *x)
{
	if (settling(x))
		return false;
	if (firm_pending(x)) {
		x->cancel_late = true;	/* dropped once that group answered (cancel_deferred) */
		return false;
	}
	x->done = NULL;
	let_go(x);
	return true;
}

/* x's client no longer waits: answered status (let_go). */
static void
abandon(struct xsel *x, int status, const char *why)
{
	xsel_reply_error(x, status, why);
	let_go(x);
}

void
xselect_cancel(struct xselects *xs, struct conn *c, const struct proto_request *q,
    struct remote *rq)
{
	struct xsel *x = (struct xsel *)rq;

	/*
	 * the winner is being confirmed: too late, its reply comes (as for a
	 * select that ended); CANCELED if its send case was no longer ready.
	 * Or a group may be firing a case for good: its answer decides
	 * (cancel_deferred)
	 */
	if (settling(x) || firm_pending(x)) {
		x->cancel_late = true;
		conn_reply_error(c, q->id, STATUS_NOT_FOUND,
		    "too late: the select is ending; its own reply follows");
		return;
	}
	abandon(x, STATUS_CANCELED, "canceled");
	if (proto_rep_ok(&xs->r->s->out, q->id) == 0)
		conn_flush_out(c);
}

size_t
xselect_forget(struct xselects *xs, struct conn *c, int status)
{
	struct xsel *x, *nx;
	size_t n = 0;

	for (x = TAILQ_FIRST(&xs->list); x != NULL; x = nx) {
		nx = TAILQ_NEXT(x, link);
		if (x->c != c)
			continue;
		n++;
		abandon(x, status, request_status_message(status));
	}
	return n;
}
