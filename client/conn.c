/*
 * conn.c: a connection to chand, shared by many threads: its calls and
 * its end (close, the last reference); conn_open.c makes it.
 *
 * A call is one request id with a queue of replies: one reply for most
 * requests, STARTED then the final reply for links, a value per reply for
 * streams. Calls are indexed by id under the connection's lock; the bytes
 * move in wire.c. A thread waits for its call's next reply in call_block,
 * reading the socket itself when nobody else does (conn_priv.h).
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "codec.h"
#include "hmap.h"

#include "chanclient.h"
#include "cluster.h"
#include "conn_priv.h"
#include "tls.h"

/* ---- references and teardown ---------------------------------------------------- */

void
conn_ref(chan_conn_t *c)
{
	__atomic_add_fetch(&c->refs, 1, __ATOMIC_RELAXED);
}

void
conn_unref(chan_conn_t *c)
{
	if (c == NULL || __atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL) > 0)
		return;
	ctls_free(c->tls);
	cluster_free(c->cluster);
	if (c->fd >= 0)
		close(c->fd);
	if (c->wakefd >= 0)
		close(c->wakefd);
	free(c->rbuf);
	free(c->acks);
	proto_out_destroy(&c->wbuf[0]);
	proto_out_destroy(&c->wbuf[1]);
	hmap_destroy(&c->calls);
	pthread_condattr_destroy(&c->cattr);
	pthread_mutex_destroy(&c->lock);
	pthread_mutex_destroy(&c->wlock);
	free(c);
}

uint64_t
conn_max_value(chan_conn_t *c)
{
	return c->info.max_value;
}

/* Fail every pending call with err (conn->lock held). The first failure sticks. */
static void
fail_all_locked(chan_conn_t *c, int err)
{
	struct hmap_node *n, *nx;
	size_t pos;

	if (c->dead == 0)
		__atomic_store_n(&c->dead, err, __ATOMIC_RELEASE);
	HMAP_FOR_EACH_SAFE(n, nx, pos, &c->calls) {
		struct call *call = HMAP_ENTRY(n, struct call, node);

		hmap_remove(&c->calls, n);
		call->linked = false;
		call->done = true;
		call->err = c->dead;
		pthread_cond_signal(&call->cond);
	}
}

void
conn_break(chan_conn_t *c, int err)
{
	pthread_mutex_lock(&c->lock);
	fail_all_locked(c, err);
	pthread_mutex_unlock(&c->lock);
	if (c->fd >= 0)
		shutdown(c->fd, SHUT_RDWR);	/* the stream is unusable: stop both sides */
	wire_wake(c);
}

int
conn_broke_contract(chan_conn_t *c)
{
	conn_break(c, CHAN_EPROTO);
	return CHAN_EPROTO;
}

void
chan_conn_close(chan_conn_t *c)
{
	if (c == NULL)
		return;
	conn_break(c, CHAN_ENOTCONN);
	if (c->cluster != NULL)
		cluster_close(c->cluster);	/* the nodes' calls fail now too */
	conn_unref(c);		/* the fd closes with the last reference */
}

int
chan_conn_flush(chan_conn_t *c)
{
	int dead;

	if (c == NULL)
		return CHAN_EINVAL;
	if (c->cluster != NULL && (dead = cluster_flush(c->cluster)) != 0)
		return dead;
	wire_flush(c);
	pthread_mutex_lock(&c->lock);
	dead = c->dead;
	pthread_mutex_unlock(&c->lock);
	return dead;
}

/* ---- replies in --------------------------------------------------------------- */

static struct call *
call_find_locked(chan_conn_t *c, uint64_t id)
{
	struct hmap_node *n;

	HMAP_FOR_EACH_HASH(n, hmap_hash_u64(c->seed, id), &c->calls) {
		struct call *call = HMAP_ENTRY(n, struct call, node);

		if (call->id == id)
			return call;
	}
	return NULL;
}

/* A connection notice [0, status, message] (conn->lock held). */
static void
notice_locked(chan_conn_t *c, int status)
{
	if (status != STATUS_SHUTTING_DOWN)	/* then pending requests get their own replies */
		fail_all_locked(c, call_status_err(status, false));
}

int
conn_deliver_locked(chan_conn_t *c, const uint8_t *body, size_t len)
{
	struct reply *rp;
	struct call *call;
	const char *why;
	uint64_t id;
	int status;
	bool final;

	if (proto_reply_header(body, len, &id, &status, &why) != STATUS_OK)
		return CHAN_EPROTO;
	if (id == 0) {
		notice_locked(c, status);
		return 0;
	}
	if ((call = call_find_locked(c, id)) == NULL)
		return 0;	/* a reply to CANCEL or to an abandoned call */
	final = call->interim == NULL || !call->interim(status, proto_reply_nresults(body, len));
	if (!final) {
		if (call->interims_allowed == 0)
			return CHAN_EPROTO;	/* more than the call allowed: a stream past its credit */
		call->interims_allowed--;
	}
	if ((rp = reply_get(len)) == NULL)
		return CHAN_ENOMEM;
	rp->next = NULL;
	rp->len = len;
	memcpy(rp->body, body, len);
	*call->tail = rp;
	call->tail = &rp->next;
	if (final) {
		hmap_remove(&c->calls, &call->node);	/* the final reply: no more for this id */
		call->linked = false;
		call->done = true;
	}
	if (!call->leading)
		pthread_cond_signal(&call->cond);
	return 0;
}

/* ---- waiting ------------------------------------------------------------------- */

void
call_reply_free(struct call_reply *r)
{
	reply_put(r->raw);
	r->raw = NULL;		/* rep pointed into it: nothing in *r is to be read now */
	conn_unref(r->via);
	r->via = NULL;
}

static int
enc_cancel(struct proto_out *o, uint64_t id, int64_t wait_us, void *arg)
{
	return proto_req_cancel(o, id, *(uint64_t *)arg);
}

/*
 * CANCEL's own OK says nothing the target's CANCELED does not: let the
 * server defer it. flags: WIRE_NOWAIT or 0. 0, or conn_post's error.
 */
static int
send_cancel(chan_conn_t *c, uint64_t target, unsigned flags)
{
	return conn_post(c, enc_cancel, &target, WIRE_DEFER | flags);
}

/*
 * The call's context ended (under the contexts' lock). A follower wakes on
 * its cond and a polling leader through the wake fd; a leader blocked in
 * recv only hears the server, so a cancel writes its CANCEL here, never
 * waiting for room (conn_priv.h). Out of memory the call's thread sends it
 * after the tick instead.
 */
static void
call_ctx_done(struct ctx_watch *w, int err)
{
	struct call *call = w->arg;
	chan_conn_t *c = call->conn;
	uint64_t id = call->id;
	bool post = false;

	pthread_mutex_lock(&c->lock);
	if (call->ctx_err == 0)
		call->ctx_err = err;
	if (!call->leading)
		pthread_cond_signal(&call->cond);
	else if (call->lead == LEAD_POLL)
		wire_wake(c);
	else if ((post = err == CHAN_ECANCELED && call->linked && !call->cancel_sent))
		call->cancel_sent = true;
	pthread_mutex_unlock(&c->lock);
	if (post && send_cancel(c, id, WIRE_NOWAIT) != 0) {
		pthread_mutex_lock(&c->lock);
		call->cancel_sent = false;
		pthread_mutex_unlock(&c->lock);
	}
}

static bool
call_ready(const struct call *call)
{
	return call->head != NULL || call->done;
}

/* Sleep on call->cond until signalled or deadline (0: none); conn->lock held. */
static void
call_sleep(chan_conn_t *c, struct call *call, int64_t deadline)
{
	struct timespec ts;

	TAILQ_INSERT_TAIL(&c->followers, call, wait_link);
	if (deadline == 0) {
		pthread_cond_wait(&call->cond, &c->lock);
	} else {
		ts.tv_sec = deadline / NSEC_PER_SEC;
		ts.tv_nsec = deadline % NSEC_PER_SEC;
		pthread_cond_timedwait(&call->cond, &c->lock, &ts);
	}
	TAILQ_REMOVE(&c->followers, call, wait_link);
}

/* Hold the read token for one wait on the socket; conn->lock held (dropped meanwhile). */
static void
call_lead(chan_conn_t *c, struct call *call, int64_t deadline)
{
	int rc;

	c->reading = true;
	call->leading = true;
	pthread_mutex_unlock(&c->lock);
	if ((rc = wire_lead(c, deadline, call->lead)) != 0)
		conn_break(c, rc);
	pthread_mutex_lock(&c->lock);
	call->leading = false;
	c->reading = false;
}

/*
 * Wait (conn->lock held) until call is ready, or its context ended (when
 * watch_ctx), or deadline (0: none) passed: false then. The waiting thread
 * reads the socket itself while nobody else does, and on leaving passes
 * the read token to a sleeping follower. With watch_ctx, deadline is the
 * context's own: its timer ends the context then and the watch wakes a
 * polling leader (call_ctx_done), so the leader's wait has no timeout of
 * its own (one would arm and cancel a kernel timer every wait); a recv
 * leader hears of the deadline from the server.
 */
static bool
call_block(chan_conn_t *c, struct call *call, int64_t deadline, bool watch_ctx)
{
	struct call *f;
	bool ok = true;

	while (!call_ready(call) && !(watch_ctx && call->ctx_err != 0)) {
		if (deadline != 0 && clock_now_ns() >= deadline) {
			ok = false;
			break;
		}
		if (!c->reading && c->dead == 0)
			call_lead(c, call, watch_ctx ? 0 : deadline);
		else
			call_sleep(c, call, deadline);
	}
	if (!c->reading && (f = TAILQ_FIRST(&c->followers)) != NULL)
		pthread_cond_signal(&f->cond);
	return ok;
}

int
conn_post(chan_conn_t *c, call_encode_fn enc, void *arg, unsigned flags)
{
	if (c->cluster != NULL)
		return CHAN_ENOTSUP;	/* no channel name to route by: ACK, CREDIT, CANCEL go on the call's node */
	return wire_submit(c, conn_new_id(c), PROTO_WAIT_FOREVER, enc, arg, flags);
}

static int
enc_want(struct proto_out *o, uint64_t id, int64_t wait_us, void *arg)
{
	return proto_req_want(o, id, *(uint64_t *)arg);
}

/*
 * Wait for the call's next reply (conn->lock held, and held again on
 * return; dropped meanwhile). When the context ends first, tell the server
 * (CANCEL) for a cancel; for a deadline the server ends the request by
 * itself. Then wait up to the grace period for the server's reply, so that
 * a value matched before the cancel is not lost and no waiter stays
 * behind. A reply that is there wins over the context, like Go's select
 * picking a ready case over ctx.Done().
 */
static void
call_wait_locked(chan_conn_t *c, struct call *call, int64_t deadline)
{
	bool cancel;

	if (!call_block(c, call, deadline, true) && call->ctx_err == 0)
		call->ctx_err = CHAN_EDEADLINE;
	if (call_ready(call) || call->ctx_err == 0)
		return;
	if ((cancel = call->ctx_err == CHAN_ECANCELED && !call->cancel_sent))
		call->cancel_sent = true;
	pthread_mutex_unlock(&c->lock);
	if (cancel)
		send_cancel(c, call->id, 0);
	else
		wire_flush(c);	/* the canceller may have left part of its CANCEL queued */
	pthread_mutex_lock(&c->lock);
	if (call_block(c, call, clock_now_ns() + c->grace_ns, false) || !call->linked)
		return;
	/* the server did not confirm in time: give up on the request */
	hmap_remove(&c->calls, &call->node);
	call->linked = false;
	if (!call->cancel_sent) {
		pthread_mutex_unlock(&c->lock);
		send_cancel(c, call->id, 0);
		pthread_mutex_lock(&c->lock);
	}
}

/*
 * Take the call's next reply off its queue (conn->lock held): the reply,
 * or NULL with *st saying why there is none (a failure, the context, or no
 * reply left to take). Only the call's own thread takes, so final_taken
 * is its own.
 */
static struct reply *
call_pop_locked(struct call *call, int *st)
{
	struct reply *rp;

	if ((rp = call->head) != NULL && (call->head = rp->next) == NULL)
		call->tail = &call->head;
	if (call->head == NULL && call->done)
		call->final_taken = true;
	*st = call->err != 0 ? call->err : call->ctx_err != 0 ? call->ctx_err : CHAN_EINVAL;
	return rp;
}

/* Decode a taken reply into *r (or clear *r and pass st on when there was none). */
static int
call_decode(struct call *call, struct reply *rp, int st, struct call_reply *r)
{
	const char *why;

	if (rp == NULL) {
		memset(r, 0, sizeof *r);
		return st;
	}
	r->raw = rp;
	r->via = NULL;		/* a front's caller sets it */
	if (proto_decode_reply(rp->body, rp->len, call->op, &r->rep, &why) != STATUS_OK) {
		call_reply_free(r);
		return conn_broke_contract(call->conn);
	}
	st = r->rep.status;
	if (st == STATUS_PROTOCOL)	/* the server closes the connection after it (§9) */
		conn_break(call->conn, CHAN_EPROTO);
	if (call->ctx_err != 0 && (st == STATUS_CANCELED || st == STATUS_DEADLINE_EXCEEDED)) {
		call_reply_free(r);
		return call->ctx_err;
	}
	return CHAN_OK;
}

/* ---- calls ------------------------------------------------------------------------ */

/*
 * The wire wait for a call at time now (read when deadline is set): µs,
 * PROTO_WAIT_FOREVER, or CHAN_EDEADLINE if none is left.
 */
static int
wire_wait(enum call_wait how, int64_t deadline, int64_t now, int64_t *wait_us)
{
	int64_t left;

	*wait_us = PROTO_WAIT_FOREVER;
	if (how == CALL_TRY)
		*wait_us = 0;
	if (how != CALL_BUDGET || deadline == 0)
		return CHAN_OK;
	if ((left = deadline - now) <= 0)
		return CHAN_EDEADLINE;
	*wait_us = (left + NSEC_PER_USEC - 1) / NSEC_PER_USEC;	/* never round to "don't wait" */
	if (*wait_us > PROTO_WAIT_MAX)
		*wait_us = PROTO_WAIT_MAX;
	return CHAN_OK;
}

/* Set up a call whose cond is initialised already (it is left as it is). */
static void
call_init(struct call *call, chan_conn_t *c, uint64_t op, const struct call_interim *interim)
{
	memset(call, 0, offsetof(struct call, cond));
	conn_ref(c);		/* a concurrent chan_conn_close must not free c under us */
	call->conn = c;
	call->op = op;
	if (interim != NULL) {
		call->interim = interim->is;
		call->interims_allowed = interim->allowed;
	}
	call->tail = &call->head;
	call->watch.fn = call_ctx_done;
	call->watch.arg = call;
}

static void
call_fini(struct call *call)
{
	struct reply *rp, *next;

	for (rp = call->head; rp != NULL; rp = next) {
		next = rp->next;
		reply_put(rp);
	}
	conn_unref(call->conn);
	conn_unref(call->front);
}

/* Link call under a fresh id and queue its request; nothing is left linked on failure. */
static int
call_send(struct call *call, chan_ctx_t *ctx, enum call_wait how, unsigned flags,
    call_encode_fn enc, void *arg)
{
	chan_conn_t *c = call->conn;
	int64_t wait_us, deadline, now;
	int rc;

	deadline = ctx_deadline_ns(ctx);
	now = deadline != 0 ? clock_now_ns() : 0;	/* one reading for both checks */
	if ((rc = ctx_err_at(ctx, now)) != 0 || (rc = wire_wait(how, deadline, now, &wait_us)) != 0)
		return rc;		/* done already: nothing is sent */
	pthread_mutex_lock(&c->lock);
	if ((rc = c->dead) == 0) {
		call->id = conn_new_id(c);
		if (hmap_insert(&c->calls, &call->node, hmap_hash_u64(c->seed, call->id)) < 0)
			rc = CHAN_ENOMEM;
		else
			call->linked = true;
	}
	pthread_mutex_unlock(&c->lock);
	call->deferred = (flags & WIRE_DEFER) != 0;
	call->wire_deadline = how == CALL_BUDGET ? deadline : 0;	/* the server ends the wait then (§4, §12, §14) */
	if (rc == 0 && (rc = wire_submit(c, call->id, wait_us, enc, arg, flags)) != 0) {
		pthread_mutex_lock(&c->lock);
		if (call->linked)
			hmap_remove(&c->calls, &call->node);
		call->linked = false;
		pthread_mutex_unlock(&c->lock);
	}
	return rc;
}

/*
 * How the call's thread waits on the socket when it leads (conn_priv.h): in
 * recv when only the server ends the wait, which it does when the context
 * has no deadline (a cancel reaches the server first) or when the request
 * carries the context's deadline, or an earlier one.
 */
static enum call_lead
call_lead_kind(const struct call *call, chan_ctx_t *ctx)
{
	int64_t deadline;

	if (ctx == chan_background())
		return LEAD_RECV;	/* never done */
	if (call->conn->tls != NULL)
		return LEAD_POLL;	/* a canceller's write could wait on TLS: it wakes the leader */
	deadline = ctx_deadline_ns(ctx);
	if (deadline == 0 || (call->wire_deadline != 0 && deadline >= call->wire_deadline))
		return LEAD_RECV_TICK;
	return LEAD_POLL;
}

/*
 * Wait for the call's next reply watching ctx, and take it into *r,
 * decoded (or say why there is none). Its request is written already: one
 * lock round on conn->lock waits and takes.
 */
static int
call_await(struct call *call, chan_ctx_t *ctx, struct call_reply *r)
{
	chan_conn_t *c = call->conn;
	struct reply *rp;
	int watch, st;

	call->lead = call_lead_kind(call, ctx);	/* before the watch: its callback reads it */
	watch = ctx_watch(ctx, &call->watch);
	pthread_mutex_lock(&c->lock);
	if (watch != 0 && call->ctx_err == 0)
		call->ctx_err = watch;
	call_wait_locked(c, call, ctx_deadline_ns(ctx));
	rp = call_pop_locked(call, &st);
	pthread_mutex_unlock(&c->lock);
	if (watch == 0)
		ctx_unwatch(ctx, &call->watch);
	return call_decode(call, rp, st, r);
}

/* Flush what this thread may have corked, then wait for the next reply, watching ctx. */
int
conn_call_next(struct call *call, chan_ctx_t *ctx, struct call_reply *r)
{
	int rc;

	/* no memset of *r: call_decode clears it, or the decoder fills all of r->rep */
	ctx = ctx_or_background(ctx);
	pthread_mutex_lock(&call->conn->lock);
	if (call_ready(call)) {		/* no wait: nothing to flush or watch */
		struct reply *rp = call_pop_locked(call, &rc);

		pthread_mutex_unlock(&call->conn->lock);
		return call_decode(call, rp, rc, r);
	}
	pthread_mutex_unlock(&call->conn->lock);
	if (call->deferred) {
		/* the server may be holding the reply: ask for it (one WANT per call) */
		call->deferred = false;
		conn_post(call->conn, enc_want, &call->id, WIRE_CORK);
	}
	/* about to wait: what was corked must go now, on every node of a front as on one connection */
	if (call->front != NULL)
		cluster_release_others(call->front->cluster, call->conn);
	wire_flush(call->conn);
	return call_await(call, ctx, r);
}

int
conn_call(chan_conn_t *c, chan_ctx_t *ctx, uint64_t op, enum call_wait how,
    call_encode_fn enc, void *arg, struct call_reply *r)
{
	struct call call;
	int rc;

	memset(r, 0, sizeof *r);
	if (c == NULL)
		return CHAN_EINVAL;
	if (c->cluster != NULL)
		return cluster_call(c, ctx, op, how, enc, arg, r);
	ctx = ctx_or_background(ctx);
	pthread_cond_init(&call.cond, &c->cattr);
	call_init(&call, c, op, NULL);
	/* uncorked, so call_send wrote it (and whatever this thread had corked): straight to the wait */
	if ((rc = call_send(&call, ctx, how, 0, enc, arg)) == 0)
		rc = call_await(&call, ctx, r);
	call_fini(&call);
	pthread_cond_destroy(&call.cond);
	return rc;
}

int
conn_submit(chan_conn_t *c, chan_ctx_t *ctx, uint64_t op, enum call_wait how,
    const struct call_interim *interim, unsigned flags, call_encode_fn enc, void *arg,
    struct call **out)
{
	struct call *call;
	int rc;

	*out = NULL;
	if (c == NULL)
		return CHAN_EINVAL;
	if (c->cluster != NULL) {	/* made on the owner's connection: the call holds it */
		chan_conn_t *node;

		if ((rc = cluster_pick(c, ctx, op, enc, arg, &node)) != 0)
			return rc;
		rc = conn_submit(node, ctx, op, how, interim, flags, enc, arg, out);
		conn_unref(node);
		if (rc == 0)
			conn_call_routed(*out, c);
		return rc;
	}
	if ((call = call_spare_get(c)) == NULL)
		return CHAN_ENOMEM;
	call_init(call, c, op, interim);
	if ((rc = call_send(call, ctx_or_background(ctx), how, flags, enc, arg)) != 0) {
		call_fini(call);
		call_spare_put(call);
		return rc;
	}
	*out = call;
	return CHAN_OK;
}

void
conn_call_allow(struct call *call, uint64_t n)
{
	pthread_mutex_lock(&call->conn->lock);
	call->interims_allowed += n;
	pthread_mutex_unlock(&call->conn->lock);
}

bool
conn_call_has_reply(struct call *call)
{
	bool ready;

	pthread_mutex_lock(&call->conn->lock);
	ready = call_ready(call);
	pthread_mutex_unlock(&call->conn->lock);
	return ready;
}

void
conn_release(chan_conn_t *c)
{
	uint64_t target = __atomic_exchange_n(&c->deferred_last, 0, __ATOMIC_ACQ_REL);

	if (target != 0)
		conn_post(c, enc_want, &target, WIRE_CORK);
	wire_flush(c);
}

void
conn_call_routed(struct call *call, chan_conn_t *front)
{
	conn_ref(front);
	call->front = front;
}

bool
conn_is_front(const chan_conn_t *c)
{
	return c->cluster != NULL;
}

chan_conn_t *
conn_call_conn(const struct call *call)
{
	return call->conn;
}

uint64_t
conn_call_id(const struct call *call)
{
	return call->id;
}

void *
conn_call_user(struct call *call)
{
	return call->user;
}

void
conn_cancel(chan_conn_t *c, uint64_t id)
{
	send_cancel(c, id, 0);
}

void
conn_call_end(struct call *call)
{
	chan_conn_t *c;
	bool pending;

	if (call == NULL)
		return;
	c = call->conn;
	pending = false;
	if (!call->final_taken) {	/* else it left conn->calls for good, seen under the lock */
		pthread_mutex_lock(&c->lock);
		if ((pending = call->linked))
			hmap_remove(&c->calls, &call->node);
		call->linked = false;
		pthread_mutex_unlock(&c->lock);
	}
	if (pending)
		send_cancel(c, call->id, 0);	/* stop it; its final reply will be dropped */
	call_fini(call);
	call_spare_put(call);
}

/* ---- two-reply calls (links, PROTOCOL.md §12) ------------------------------------ */

static bool
link_interim(int status, int nresults)
{
	return status == STATUS_STARTED;
}

/* a link's one STARTED: a second breaks the connection as it arrives */
static const struct call_interim link_started = { link_interim, 1 };

int
conn_call_start(chan_conn_t *c, chan_ctx_t *ctx, uint64_t op, call_encode_fn enc, void *arg,
    struct call_reply *r, struct call **out)
{
	struct call *call;
	int rc;

	memset(r, 0, sizeof *r);
	*out = NULL;
	if ((rc = conn_submit(c, ctx, op, CALL_BUDGET, &link_started, 0, enc, arg, &call)) != 0)
		return rc;
	if ((rc = conn_call_next(call, ctx, r)) == 0 && r->rep.status == STATUS_STARTED) {
		*out = call;
		return CHAN_OK;
	}
	conn_call_end(call);	/* it could not start, or the context ended */
	return rc;
}
