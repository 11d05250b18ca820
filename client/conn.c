/*
 * conn.c: a connection to chand, shared by many threads.
 *
 * Each call is a stack object with its own condition variable, indexed by
 * request id in a hash map under the connection's lock. One reader thread
 * per connection splits the byte stream into frames and hands each reply
 * to its call by id, so a blocked call blocks only its own thread and
 * replies may come back in any order. Writers serialise on a separate write
 * lock so that whole frames go out one at a time. When the stream breaks
 * the reader fails every pending call at once.
 *
 * Lock order: the context lock (ctx.c) before conn->lock; conn->wlock is
 * never held together with conn->lock.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "codec.h"
#include "hmap.h"
#include "rand.h"

#include "chanclient.h"
#include "conn_internal.h"
#include "ctx_internal.h"
#include "dial.h"
#include "tls.h"

#define CONN_DEFAULT_FRAME (2u << 20)		/* PROTOCOL.md §8 default max_frame */
#define CONN_READ_LIMIT (64u << 20)		/* largest reply frame we accept, at least */
#define CONN_DEFAULT_GRACE (1 * NSEC_PER_SEC)
#define CONN_READ_CHUNK 65536

struct chan_conn {
	int fd;
	struct ctls *tls;			/* tls://: every byte goes through it */
	unsigned refs;				/* atomic */
	pthread_mutex_t lock;			/* calls, next_id, dead */
	pthread_mutex_t wlock;			/* whole frames out, one at a time */
	pthread_condattr_t cattr;		/* CLOCK_MONOTONIC condition variables */
	pthread_t reader;
	bool reader_started;
	struct hmap calls;			/* struct call by id */
	uint64_t seed;
	uint64_t next_id;
	int dead;				/* 0, or what every call now fails with */
	bool shutting;				/* the server announced SHUTTING_DOWN */
	size_t max_frame;			/* outgoing limit (HELLO) */
	size_t read_limit;			/* atomic: incoming limit */
	int64_t grace_ns;
	chan_conn_info_t info;			/* set by HELLO, then read-only */
};

struct call {
	struct hmap_node node;
	uint64_t id;
	pthread_cond_t cond;
	chan_conn_t *conn;
	struct ctx_watch watch;
	bool linked;				/* in conn->calls */
	bool done;				/* the reply or a failure arrived */
	int err;				/* connection failure */
	int ctx_err;				/* the context ended */
	uint8_t *body;
	size_t len;
	/* two-reply calls (links, PROTOCOL.md §12): STARTED first, then the final reply */
	bool interim;				/* expect STARTED; stay linked after it */
	bool started;				/* STARTED arrived (in ibody until taken) */
	bool cancel_sent;
	uint64_t op;
	uint8_t *ibody;
	size_t ilen;
};

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
	if (c->fd >= 0)
		close(c->fd);
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
		c->dead = err;
	HMAP_FOR_EACH_SAFE(n, nx, pos, &c->calls) {
		struct call *call = HMAP_ENTRY(n, struct call, node);

		hmap_remove(&c->calls, n);
		call->linked = false;
		call->done = true;
		call->err = c->dead;
		pthread_cond_signal(&call->cond);
	}
}

static void
fail_all(chan_conn_t *c, int err)
{
	pthread_mutex_lock(&c->lock);
	fail_all_locked(c, err);
	pthread_mutex_unlock(&c->lock);
	shutdown(c->fd, SHUT_RDWR);	/* the stream is unusable: stop both sides */
}

void
chan_conn_close(chan_conn_t *c)
{
	if (c == NULL)
		return;
	fail_all(c, CHAN_ENOTCONN);
	if (c->reader_started)
		pthread_join(c->reader, NULL);
	conn_unref(c);		/* the fd closes with the last reference */
}

/* ---- the reader thread --------------------------------------------------------- */

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

/* A connection notice [0, status, message]. */
static void
notice(chan_conn_t *c, int status)
{
	if (status == STATUS_SHUTTING_DOWN) {
		pthread_mutex_lock(&c->lock);
		c->shutting = true;	/* pending requests get their own replies */
		pthread_mutex_unlock(&c->lock);
		return;
	}
	fail_all(c, call_status_err(status, false));
}

/* Hand one reply frame to its call. Returns 0, or -1 when the stream is broken. */
static int
deliver(chan_conn_t *c, const uint8_t *body, size_t len)
{
	uint64_t id;
	int status;
	const char *why;
	struct call *call;
	uint8_t *copy;

	if (proto_reply_header(body, len, &id, &status, &why) != STATUS_OK)
		return -1;
	if (id == 0) {
		notice(c, status);
		return 0;
	}
	if ((copy = malloc(len)) == NULL)
		return -1;
	memcpy(copy, body, len);
	pthread_mutex_lock(&c->lock);
	if ((call = call_find_locked(c, id)) != NULL && call->interim && !call->started &&
	    status == STATUS_STARTED) {
		call->started = true;	/* the link runs: stay linked for the final reply */
		call->ibody = copy;
		call->ilen = len;
		copy = NULL;
		pthread_cond_signal(&call->cond);
	} else if (call != NULL) {
		hmap_remove(&c->calls, &call->node);
		call->linked = false;
		call->done = true;
		call->body = copy;
		call->len = len;
		copy = NULL;
		pthread_cond_signal(&call->cond);
	}
	pthread_mutex_unlock(&c->lock);
	free(copy);		/* a reply to CANCEL or to an abandoned call */
	return 0;
}

/* Split and deliver the whole frames in buf[0..len); returns bytes used or -1. */
static long
deliver_frames(chan_conn_t *c, const uint8_t *buf, size_t len)
{
	size_t used = 0;
	size_t limit = __atomic_load_n(&c->read_limit, __ATOMIC_RELAXED);

	for (;;) {
		const uint8_t *body;
		size_t blen;
		const char *why;
		long n = proto_frame_split(buf + used, len - used, limit, &body, &blen, &why);

		if (n < 0)
			return -1;
		if (n == 0)
			return (long)used;
		if (deliver(c, body, blen) < 0)
			return -1;
		used += (size_t)n;
	}
}

static void *
reader_main(void *arg)
{
	chan_conn_t *c = arg;
	uint8_t *buf = NULL;
	size_t len = 0, cap = 0;
	int err = CHAN_ECONNLOST;

	for (;;) {
		ssize_t got;
		long used;

		if (cap - len < CONN_READ_CHUNK) {
			uint8_t *nb = realloc(buf, cap + 4 * CONN_READ_CHUNK);

			if (nb == NULL) {
				err = CHAN_ENOMEM;
				break;
			}
			buf = nb;
			cap += 4 * CONN_READ_CHUNK;
		}
		got = c->tls ? ctls_read(c->tls, buf + len, cap - len) : recv(c->fd, buf + len, cap - len, 0);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			break;
		len += (size_t)got;
		if ((used = deliver_frames(c, buf, len)) < 0) {
			err = CHAN_EPROTO;
			break;
		}
		memmove(buf, buf + used, len - (size_t)used);
		len -= (size_t)used;
	}
	free(buf);
	fail_all(c, err);
	return NULL;
}

/* ---- calls ------------------------------------------------------------------------ */

void
call_reply_free(struct call_reply *r)
{
	free(r->body);
	memset(r, 0, sizeof *r);
}

static void
call_ctx_done(struct ctx_watch *w, int err)
{
	struct call *call = w->arg;
	chan_conn_t *c = call->conn;

	pthread_mutex_lock(&c->lock);
	if (call->ctx_err == 0)
		call->ctx_err = err;
	pthread_cond_signal(&call->cond);
	pthread_mutex_unlock(&c->lock);
}

/* The wire wait for a call: µs, PROTO_WAIT_FOREVER, or CHAN_EDEADLINE if none is left. */
static int
wire_wait(enum call_wait how, int64_t deadline, int64_t *wait_us)
{
	int64_t left;

	*wait_us = PROTO_WAIT_FOREVER;
	if (how == CALL_TRY)
		*wait_us = 0;
	if (how != CALL_BUDGET || deadline == 0)
		return CHAN_OK;
	if ((left = deadline - clock_now_ns()) <= 0)
		return CHAN_EDEADLINE;
	*wait_us = (left + NSEC_PER_USEC - 1) / NSEC_PER_USEC;	/* never round to "don't wait" */
	if (*wait_us > PROTO_WAIT_MAX)
		*wait_us = PROTO_WAIT_MAX;
	return CHAN_OK;
}

/* Write whole frames; on failure break the stream so the reader fails everyone. */
static int
conn_write(chan_conn_t *c, const uint8_t *p, size_t len)
{
	int rc = 0;

	pthread_mutex_lock(&c->wlock);
	if (c->tls != NULL && len > 0) {
		rc = ctls_write(c->tls, p, len);
		len = 0;
	}
	while (len > 0) {
		ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = -1;
			break;
		}
		p += n;
		len -= (size_t)n;
	}
	pthread_mutex_unlock(&c->wlock);
	if (rc < 0)
		shutdown(c->fd, SHUT_RDWR);
	return rc;
}

static int
enc_cancel(struct proto_out *o, uint64_t id, int64_t wait_us, void *arg)
{
	return proto_req_cancel(o, id, *(uint64_t *)arg);
}

/* Encode with a fresh id (stored in *id) and send. Errors: CHAN_ENOMEM, CHAN_ELIMIT. */
static int
send_request(chan_conn_t *c, uint64_t id, int64_t wait_us, call_encode_fn enc, void *arg)
{
	struct proto_out o;
	int rc = CHAN_OK;

	proto_out_init(&o);
	if (enc(&o, id, wait_us, arg) < 0)
		rc = CHAN_ENOMEM;
	else if (proto_out_len(&o) - PROTO_FRAME_HDR > c->max_frame)
		rc = CHAN_ELIMIT;	/* the server would drop the whole connection */
	else
		conn_write(c, proto_out_data(&o), proto_out_len(&o));	/* failures reach the call via the reader */
	proto_out_destroy(&o);
	return rc;
}

static void
send_cancel(chan_conn_t *c, uint64_t target)
{
	uint64_t id;

	pthread_mutex_lock(&c->lock);
	id = c->next_id++;
	pthread_mutex_unlock(&c->lock);
	send_request(c, id, PROTO_WAIT_FOREVER, enc_cancel, &target);
}

/* Link call under a fresh id. */
static int
call_link(chan_conn_t *c, struct call *call)
{
	int rc = CHAN_OK;

	pthread_mutex_lock(&c->lock);
	if (c->dead != 0) {
		rc = c->dead;
	} else {
		call->id = c->next_id++;
		if (hmap_insert(&c->calls, &call->node, hmap_hash_u64(c->seed, call->id)) < 0)
			rc = CHAN_ENOMEM;
		else
			call->linked = true;
	}
	pthread_mutex_unlock(&c->lock);
	return rc;
}

static void
call_unlink(chan_conn_t *c, struct call *call)
{
	pthread_mutex_lock(&c->lock);
	if (call->linked)
		hmap_remove(&c->calls, &call->node);
	call->linked = false;
	pthread_mutex_unlock(&c->lock);
}

/* Wait on call->cond until done or until deadline (0: none); conn->lock held. */
static bool
call_timedwait(struct call *call, int64_t deadline)
{
	struct timespec ts;

	if (deadline == 0) {
		pthread_cond_wait(&call->cond, &call->conn->lock);
		return true;
	}
	ts.tv_sec = deadline / NSEC_PER_SEC;
	ts.tv_nsec = deadline % NSEC_PER_SEC;
	return pthread_cond_timedwait(&call->cond, &call->conn->lock, &ts) != ETIMEDOUT;
}

/*
 * Wait for the reply. When the context ends first, tell the server (CANCEL)
 * for a cancel; for a deadline the server ends the request by itself. Then
 * wait up to the grace period for the server's final reply, so that a value
 * matched before the cancel is not lost and no waiter stays behind.
 */
static bool
call_ready(const struct call *call, bool first)
{
	return call->done || (first && call->started);
}

/* first: a two-reply call returns at its STARTED reply too. */
static void
call_wait(chan_conn_t *c, struct call *call, int64_t deadline, bool first)
{
	int64_t grace_end;

	pthread_mutex_lock(&c->lock);
	while (!call_ready(call, first) && call->ctx_err == 0) {
		if (!call_timedwait(call, deadline) && !call_ready(call, first) && call->ctx_err == 0)
			call->ctx_err = CHAN_EDEADLINE;
	}
	if (call->ctx_err == 0) {
		pthread_mutex_unlock(&c->lock);
		return;
	}
	if (!call->done && call->ctx_err == CHAN_ECANCELED && !call->cancel_sent) {
		call->cancel_sent = true;
		pthread_mutex_unlock(&c->lock);
		send_cancel(c, call->id);
		pthread_mutex_lock(&c->lock);
	}
	grace_end = clock_now_ns() + c->grace_ns;
	while (!call->done && call->linked && call_timedwait(call, grace_end))
		;
	if (call->done || !call->linked) {
		pthread_mutex_unlock(&c->lock);
		return;
	}
	/* the server did not confirm in time: give up on the reply */
	hmap_remove(&c->calls, &call->node);
	call->linked = false;
	pthread_mutex_unlock(&c->lock);
	if (!call->cancel_sent)
		send_cancel(c, call->id);
}

/* Turn a finished call into conn_call's result. */
static int
call_result(struct call *call, uint64_t op, struct call_reply *r)
{
	const char *why;
	int st;

	if (!call->done)
		return call->ctx_err;
	if (call->err != 0)
		return call->err;
	r->body = call->body;
	r->len = call->len;
	call->body = NULL;
	if (proto_decode_reply(r->body, r->len, op, &r->rep, &why) != STATUS_OK) {
		call_reply_free(r);
		fail_all(call->conn, CHAN_EPROTO);	/* the server broke the contract */
		return CHAN_EPROTO;
	}
	st = r->rep.status;
	if (call->ctx_err != 0 && (st == STATUS_CANCELED || st == STATUS_DEADLINE_EXCEEDED)) {
		call_reply_free(r);
		return call->ctx_err;
	}
	return CHAN_OK;
}

/* Link call under a fresh id, watch ctx and send its request; undone on failure. */
static int
call_send(chan_conn_t *c, chan_ctx_t *ctx, int64_t wait_us, call_encode_fn enc,
    void *arg, struct call *call)
{
	int rc;

	if ((rc = call_link(c, call)) != 0)
		return rc;
	if ((rc = ctx_watch(ctx, &call->watch)) != 0) {
		call_unlink(c, call);
		return rc;
	}
	if ((rc = send_request(c, call->id, wait_us, enc, arg)) != 0) {
		ctx_unwatch(ctx, &call->watch);
		call_unlink(c, call);
	}
	return rc;
}

int
conn_call(chan_conn_t *c, chan_ctx_t *ctx, uint64_t op, enum call_wait how,
    call_encode_fn enc, void *arg, struct call_reply *r)
{
	struct call call;
	int64_t deadline, wait_us;
	int rc;

	memset(r, 0, sizeof *r);
	if (c == NULL)
		return CHAN_EINVAL;
	ctx = ctx_or_background(ctx);
	deadline = ctx_deadline_ns(ctx);
	if ((rc = chan_ctx_err(ctx)) != 0 || (rc = wire_wait(how, deadline, &wait_us)) != 0)
		return rc;		/* done already: nothing is sent */
	conn_ref(c);		/* a concurrent chan_conn_close must not close the fd under us */
	memset(&call, 0, sizeof call);
	call.conn = c;
	call.watch.fn = call_ctx_done;
	call.watch.arg = &call;
	pthread_cond_init(&call.cond, &c->cattr);
	if ((rc = call_send(c, ctx, wait_us, enc, arg, &call)) == 0) {
		call_wait(c, &call, deadline, false);
		ctx_unwatch(ctx, &call.watch);
		rc = call_result(&call, op, r);
	}
	free(call.body);
	pthread_cond_destroy(&call.cond);
	conn_unref(c);
	return rc;
}

/* ---- two-reply calls (links, PROTOCOL.md §12) ------------------------------------ */

static void
call_destroy(struct call *call)
{
	free(call->body);
	free(call->ibody);
	pthread_cond_destroy(&call->cond);
	conn_unref(call->conn);
	free(call);
}

/* Hand the STARTED reply out, decoded. */
static int
call_interim(struct call *call, struct call_reply *r)
{
	const char *why;

	r->body = call->ibody;
	r->len = call->ilen;
	call->ibody = NULL;
	if (proto_decode_reply(r->body, r->len, call->op, &r->rep, &why) != STATUS_OK) {
		call_reply_free(r);
		fail_all(call->conn, CHAN_EPROTO);
		return CHAN_EPROTO;
	}
	return CHAN_OK;
}

int
conn_call_start(chan_conn_t *c, chan_ctx_t *ctx, uint64_t op, call_encode_fn enc, void *arg,
    struct call_reply *r, struct call **out)
{
	struct call *call;
	int64_t deadline, wait_us;
	bool started;
	int rc;

	memset(r, 0, sizeof *r);
	*out = NULL;
	if (c == NULL)
		return CHAN_EINVAL;
	ctx = ctx_or_background(ctx);
	deadline = ctx_deadline_ns(ctx);
	if ((rc = chan_ctx_err(ctx)) != 0 || (rc = wire_wait(CALL_BUDGET, deadline, &wait_us)) != 0)
		return rc;
	if ((call = calloc(1, sizeof *call)) == NULL)
		return CHAN_ENOMEM;
	conn_ref(c);
	call->conn = c;
	call->op = op;
	call->interim = true;
	call->watch.fn = call_ctx_done;
	call->watch.arg = call;
	pthread_cond_init(&call->cond, &c->cattr);
	if ((rc = call_send(c, ctx, wait_us, enc, arg, call)) != 0)
		goto fail;
	call_wait(c, call, deadline, true);
	ctx_unwatch(ctx, &call->watch);
	pthread_mutex_lock(&c->lock);
	started = call->started;
	pthread_mutex_unlock(&c->lock);
	if (!started) {
		rc = call_result(call, op, r);	/* it could not start, or the context ended */
		goto fail;
	}
	if ((rc = call_interim(call, r)) != 0)
		goto fail;
	*out = call;
	return CHAN_OK;
fail:
	call_destroy(call);
	return rc;
}

int
conn_call_await(struct call *call, chan_ctx_t *ctx, struct call_reply *r)
{
	chan_conn_t *c = call->conn;
	int rc;

	memset(r, 0, sizeof *r);
	ctx = ctx_or_background(ctx);
	if ((rc = ctx_watch(ctx, &call->watch)) != 0) {
		pthread_mutex_lock(&c->lock);
		if (call->ctx_err == 0)
			call->ctx_err = rc;
		pthread_mutex_unlock(&c->lock);
	}
	call_wait(c, call, ctx_deadline_ns(ctx), false);
	if (rc == 0)
		ctx_unwatch(ctx, &call->watch);
	return call_result(call, call->op, r);
}

uint64_t
conn_call_id(const struct call *call)
{
	return call->id;
}

void
conn_cancel(chan_conn_t *c, uint64_t id)
{
	send_cancel(c, id);
}

void
conn_call_end(struct call *call)
{
	chan_conn_t *c;
	bool pending;

	if (call == NULL)
		return;
	c = call->conn;
	pthread_mutex_lock(&c->lock);
	if ((pending = call->linked))
		hmap_remove(&c->calls, &call->node);
	call->linked = false;
	pthread_mutex_unlock(&c->lock);
	if (pending)
		send_cancel(c, call->id);	/* stop it; its final reply will be dropped */
	call_destroy(call);
}

/* ---- connections ---------------------------------------------------------------- */

static chan_conn_t *
conn_new(int fd, const chan_dial_opts_t *opts)
{
	struct rand_state rs;
	chan_conn_t *c = calloc(1, sizeof *c);

	if (c == NULL)
		return NULL;
	c->fd = fd;
	c->refs = 1;
	c->next_id = 1;
	c->max_frame = CONN_DEFAULT_FRAME;
	c->read_limit = CONN_READ_LIMIT;
	c->grace_ns = opts && opts->cancel_grace_ns > 0 ? opts->cancel_grace_ns : CONN_DEFAULT_GRACE;
	rand_seed(&rs);
	c->seed = rand_next(&rs);
	hmap_init(&c->calls, c->seed);
	pthread_mutex_init(&c->lock, NULL);
	pthread_mutex_init(&c->wlock, NULL);
	pthread_condattr_init(&c->cattr);
	pthread_condattr_setclock(&c->cattr, CLOCK_MONOTONIC);
	return c;
}

struct hello_arg {
	const char *client, *token;
};

static int
enc_hello(struct proto_out *o, uint64_t id, int64_t wait_us, void *arg)
{
	struct hello_arg *h = arg;

	return proto_req_hello(o, id, PROTO_VERSION, h->client, h->token);
}

static int
hello(chan_conn_t *c, chan_ctx_t *ctx, const chan_dial_opts_t *opts)
{
	struct hello_arg h = { "libchanclient", NULL };
	struct call_reply r;
	const struct proto_hello_info *hi = &r.rep.hello;
	size_t sl;
	int rc;

	if (opts && opts->client_name)
		h.client = opts->client_name;
	if (opts)
		h.token = opts->token;
	if ((rc = conn_call(c, ctx, OP_HELLO, CALL_NOWAIT, enc_hello, &h, &r)) != 0)
		return rc;
	if ((rc = call_status_err(r.rep.status, false)) == 0) {
		c->info.version = hi->version;
		sl = hi->server_len < sizeof c->info.server ? hi->server_len : sizeof c->info.server - 1;
		memcpy(c->info.server, hi->server, sl);
		c->info.max_frame = hi->max_frame;
		c->info.max_value = hi->max_value;
		c->info.max_pending = hi->max_pending;
		c->info.max_select_cases = hi->max_select_cases;
		if (hi->max_frame != 0)
			c->max_frame = hi->max_frame;
		if (hi->max_frame * 2 > CONN_READ_LIMIT)
			__atomic_store_n(&c->read_limit, hi->max_frame * 2, __ATOMIC_RELAXED);
	}
	call_reply_free(&r);
	return rc;
}

int
chan_dial(chan_ctx_t *ctx, const char *addr, const chan_dial_opts_t *opts, chan_conn_t **out)
{
	struct ctls *tls = NULL;
	chan_conn_t *c = NULL;
	int fd = -1, rc;

	if (out == NULL)
		return CHAN_EINVAL;
	ctx = ctx_or_background(ctx);
	if ((rc = chan_ctx_err(ctx)) != 0)
		return rc;
	if ((rc = dial_addr(addr, ctx, &fd)) != CHAN_OK)
		return rc;
	if (strncmp(addr, "tls://", 6) == 0 && (rc = dial_tls(addr + 6, fd, ctx, opts, &tls)) != CHAN_OK)
		goto fail;
	rc = CHAN_ENOMEM;
	if ((c = conn_new(fd, opts)) == NULL)
		goto fail;
	c->tls = tls;
	tls = NULL;
	if (pthread_create(&c->reader, NULL, reader_main, c) != 0)
		goto fail;
	c->reader_started = true;
	if ((rc = hello(c, ctx, opts)) != CHAN_OK)
		goto fail;
	*out = c;
	return CHAN_OK;
fail:
	ctls_free(tls);
	if (c != NULL)
		chan_conn_close(c);
	else
		close(fd);
	return rc;
}

int
chan_conn_info(chan_conn_t *c, chan_conn_info_t *out)
{
	if (c == NULL || out == NULL)
		return CHAN_EINVAL;
	*out = c->info;
	return CHAN_OK;
}

static int
enc_ping(struct proto_out *o, uint64_t id, int64_t wait_us, void *arg)
{
	return proto_req_ping(o, id);
}

int
chan_ping(chan_ctx_t *ctx, chan_conn_t *c)
{
	struct call_reply r;
	int rc;

	if ((rc = conn_call(c, ctx, OP_PING, CALL_NOWAIT, enc_ping, NULL, &r)) != 0)
		return rc;
	rc = call_status_err(r.rep.status, false);
	call_reply_free(&r);
	return rc;
}
