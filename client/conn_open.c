/*
 * conn_open.c: a connection's making: the struct, the dial (dial.c: TCP,
 * unix, TLS), HELLO and the server's limits it answers with, chan_dial
 * (a cluster address gets a front: cluster.c), and the two questions any
 * connection answers (chan_conn_info, chan_ping).
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "codec.h"
#include "hmap.h"
#include "rand.h"

#include "chanclient.h"
#include "cluster.h"
#include "conn_priv.h"
#include "dial.h"
#include "tls.h"

#define CONN_DEFAULT_FRAME (2u << 20)		/* PROTOCOL.md §8 default max_frame */
#define CONN_READ_LIMIT (64u << 20)		/* largest reply frame we accept, at least */
#define CONN_DEFAULT_GRACE (1 * NSEC_PER_SEC)
#define CONN_MIN_TICK (1 * NSEC_PER_MSEC)	/* a zero receive timeout would mean none */

static chan_conn_t *
conn_new(int fd, const chan_dial_opts_t *opts)
{
	struct rand_state rs;
	chan_conn_t *c = calloc(1, sizeof *c);

	if (c == NULL)
		return NULL;
	if ((c->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
		free(c);
		return NULL;
	}
	c->fd = fd;
	c->refs = 1;
	c->next_id = 1;
	c->max_frame = CONN_DEFAULT_FRAME;
	c->read_limit = CONN_READ_LIMIT;
	c->grace_ns = opts && opts->cancel_grace_ns > 0 ? opts->cancel_grace_ns : CONN_DEFAULT_GRACE;
	c->tick_ns = c->grace_ns / 4 > CONN_MIN_TICK ? c->grace_ns / 4 : CONN_MIN_TICK;
	rand_seed(&rs);
	c->seed = rand_next(&rs);
	hmap_init(&c->calls, c->seed);
	TAILQ_INIT(&c->followers);
	proto_out_init(&c->wbuf[0]);
	proto_out_init(&c->wbuf[1]);
	c->wq = &c->wbuf[0];
	pthread_mutex_init(&c->lock, NULL);
	pthread_mutex_init(&c->wlock, NULL);
	pthread_condattr_init(&c->cattr);
	pthread_condattr_setclock(&c->cattr, CLOCK_MONOTONIC);
	return c;
}

struct hello_arg {
	const char *client, *token;
	bool moved;
};

static int
enc_hello(struct proto_out *o, uint64_t id, int64_t wait_us, void *arg)
{
	struct hello_arg *h = arg;

	if (h->moved)
		return proto_req_hello_caps(o, id, PROTO_VERSION, h->client, h->token, true);
	return proto_req_hello(o, id, PROTO_VERSION, h->client, h->token);
}

static int
hello(chan_conn_t *c, chan_ctx_t *ctx, const chan_dial_opts_t *opts, bool moved)
{
	struct hello_arg h = { "libchanclient", NULL, moved };
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
		if (sl > 0)	/* a map without "server" leaves it NULL */
			memcpy(c->info.server, hi->server, sl);
		c->info.max_frame = hi->max_frame;
		c->info.max_value = hi->max_value;
		c->info.max_pending = hi->max_pending;
		c->info.max_select_cases = hi->max_select_cases;
		c->info.max_stream_credit = hi->max_stream_credit;
		c->info.max_waiters_per_connection = hi->max_waiters_per_connection;
		if (hi->max_frame != 0)
			c->max_frame = hi->max_frame;
		if (hi->max_frame * 2 > CONN_READ_LIMIT)
			__atomic_store_n(&c->read_limit, hi->max_frame * 2, __ATOMIC_RELAXED);
	}
	call_reply_free(&r);
	return rc;
}

int
conn_dial(chan_ctx_t *ctx, const char *addr, const chan_dial_opts_t *opts, bool moved,
    chan_conn_t **out)
{
	struct ctls *tls = NULL;
	chan_conn_t *c = NULL;
	int fd = -1, fl, rc;

	ctx = ctx_or_background(ctx);
	if ((rc = chan_ctx_err(ctx)) != 0)
		return rc;
	if ((rc = dial_addr(addr, ctx, &fd)) != CHAN_OK)
		return rc;
	if (strncmp(addr, "tls://", 6) == 0 && (rc = dial_tls(addr + 6, fd, ctx, opts, &tls)) != CHAN_OK)
		goto fail;
	/* a plain socket blocks: only a recv leader waits in it (conn_priv.h), all else passes MSG_DONTWAIT */
	rc = CHAN_ECONNECT;
	if (tls == NULL && ((fl = fcntl(fd, F_GETFL)) < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0))
		goto fail;
	rc = CHAN_ENOMEM;
	if ((c = conn_new(fd, opts)) == NULL)
		goto fail;
	c->tls = tls;
	tls = NULL;
	if ((rc = hello(c, ctx, opts, moved)) != CHAN_OK)
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
chan_dial(chan_ctx_t *ctx, const char *addr, const chan_dial_opts_t *opts, chan_conn_t **out)
{
	if (out == NULL || addr == NULL)
		return CHAN_EINVAL;
	if (cluster_addr(addr))
		return cluster_dial(ctx_or_background(ctx), addr, opts, out);
	return conn_dial(ctx, addr, opts, false, out);
}

chan_conn_t *
conn_front_new(struct cluster *cl, const chan_conn_info_t *info, const chan_dial_opts_t *opts)
{
	chan_conn_t *c = conn_new(-1, opts);

	if (c == NULL)
		return NULL;
	c->cluster = cl;
	c->info = *info;
	return c;
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
