/*
 * admin.c: the admin operations (PROTOCOL.md §11) as library calls, so that
 * chanctl, and any program, reach them the same way.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <stdlib.h>
#include <string.h>

#include "conn_internal.h"

struct admin_arg {
	uint64_t op;
	const char *pattern;
	uint64_t limit;
	uint64_t client, request;
};

static int
enc_admin(struct proto_out *o, uint64_t id, int64_t wait_us, void *arg)
{
	struct admin_arg *a = arg;

	switch (a->op) {
	case OP_CHANNELS:
		return proto_req_channels(o, id, a->pattern, a->limit);
	case OP_WAITERS:
		return proto_req_waiters(o, id, a->limit);
	case OP_UNBLOCK:
		return proto_req_unblock(o, id, a->client, a->request);
	default:
		return proto_req_simple(o, a->op, id);
	}
}

/* One admin call; on success *r holds an OK reply. */
static int
admin_call(chan_ctx_t *ctx, chan_conn_t *conn, struct admin_arg *a, struct call_reply *r)
{
	int rc;

	if (conn == NULL)
		return CHAN_EINVAL;
	if ((rc = conn_call(conn, ctx, a->op, CALL_NOWAIT, enc_admin, a, r)) != 0)
		return rc;
	if ((rc = call_status_err(r->rep.status, false)) != 0)
		call_reply_free(r);
	return rc;
}

/* Copy at most cap-1 bytes and a NUL. */
static void
copy_str(char *dst, size_t cap, const char *src, size_t len)
{
	if (len >= cap)
		len = cap - 1;
	if (len)
		memcpy(dst, src, len);
	dst[len] = '\0';
}

/*
 * Decode the list's next item into item: 1, 0 at its end, or a CHAN_E*
 * (what item already owns is freed by admin_list's free_items).
 */
typedef int (*item_fn)(struct proto_list *l, void *item);

/*
 * A call whose result is a list: items of size bytes, each decoded by next,
 * into a calloc'd array (*out, *n); the reply's total into *total when asked.
 * free_items, when set, frees the array and what its items own when one fails.
 */
static int
admin_list(chan_ctx_t *ctx, chan_conn_t *conn, struct admin_arg *a, size_t size, item_fn next,
    void (*free_items)(void *items, size_t n), void **out, size_t *n, size_t *total)
{
	struct call_reply r;
	char *items;
	size_t i = 0;
	int rc;

	if (out == NULL || n == NULL)
		return CHAN_EINVAL;
	if ((rc = admin_call(ctx, conn, a, &r)) != 0)
		return rc;
	if ((items = calloc(r.rep.list.left + 1, size)) == NULL) {
		call_reply_free(&r);
		return CHAN_ENOMEM;
	}
	while ((rc = next(&r.rep.list, items + i * size)) == 1)
		i++;
	if (rc < 0) {
		if (free_items != NULL)
			free_items(items, i + 1);
		else
			free(items);
		call_reply_free(&r);
		return rc;
	}
	if (total)
		*total = (size_t)r.rep.total;
	call_reply_free(&r);
	*out = items;
	*n = i;
	return CHAN_OK;
}

static int
next_stat(struct proto_list *l, void *item)
{
	chan_stat_t *st = item;
	const char *k;
	uint32_t kl;
	int rc;

	if ((rc = proto_list_stat(l, &k, &kl, &st->value)) == 1)
		copy_str(st->key, sizeof st->key, k, kl);
	return rc == 1;
}

int
chan_admin_stats(chan_ctx_t *ctx, chan_conn_t *conn, chan_stat_t **out, size_t *n)
{
	struct admin_arg a = { .op = OP_STATS };

	return admin_list(ctx, conn, &a, sizeof **out, next_stat, NULL, (void **)out, n, NULL);
}

static int
next_chan(struct proto_list *l, void *item)
{
	struct proto_chan_info pi;

	if (proto_list_chan(l, &pi) != 1)
		return 0;
	chan_info_from_proto(&pi, item);
	return 1;
}

int
chan_admin_channels(chan_ctx_t *ctx, chan_conn_t *conn, const char *pattern, size_t limit,
    chan_info_t **out, size_t *n, size_t *matched)
{
	struct admin_arg a = { .op = OP_CHANNELS, .pattern = pattern, .limit = limit };

	return admin_list(ctx, conn, &a, sizeof **out, next_chan, NULL, (void **)out, n, matched);
}

static int
next_client(struct proto_list *l, void *item)
{
	struct proto_client_info pc;
	chan_client_info_t *c = item;

	if (proto_list_client(l, &pc) != 1)
		return 0;
	c->id = pc.id;
	copy_str(c->peer, sizeof c->peer, pc.peer, pc.peer_len);
	copy_str(c->name, sizeof c->name, pc.name, pc.name_len);
	c->pending = (size_t)pc.pending;
	c->age_ms = pc.age_ms;
	c->unsent = (size_t)pc.unsent;
	return 1;
}

int
chan_admin_clients(chan_ctx_t *ctx, chan_conn_t *conn, chan_client_info_t **out, size_t *n)
{
	struct admin_arg a = { .op = OP_CLIENTS };

	return admin_list(ctx, conn, &a, sizeof **out, next_client, NULL, (void **)out, n, NULL);
}

static int
next_node(struct proto_list *l, void *item)
{
	struct proto_node_info pn;
	chan_node_info_t *d = item;

	if (proto_list_node(l, &pn) != 1)
		return 0;
	copy_str(d->name, sizeof d->name, pn.name, pn.name_len);
	copy_str(d->addr, sizeof d->addr, pn.advertise, pn.advertise_len);
	d->owned = (size_t)pn.owned;
	d->self = pn.self != 0;
	d->lease_left_ms = pn.lease_left_ms;
	return 1;
}

int
chan_admin_cluster_nodes(chan_ctx_t *ctx, chan_conn_t *conn, chan_node_info_t **out, size_t *n)
{
	struct admin_arg a = { .op = OP_CLUSTER_NODES };

	return admin_list(ctx, conn, &a, sizeof **out, next_node, NULL, (void **)out, n, NULL);
}

void
chan_admin_waiters_free(chan_waiter_t *w, size_t n)
{
	if (w == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		free(w[i].cases);
	free(w);
}

static void
free_waiters(void *items, size_t n)
{
	chan_admin_waiters_free(items, n);
}

static int
next_waiter(struct proto_list *l, void *item)
{
	struct proto_waiter_info pw;
	chan_waiter_t *w = item;
	const char *op, *name;
	struct proto_list cl;
	uint32_t nl;
	uint8_t dir;

	if (proto_list_waiter(l, &pw) != 1)
		return 0;
	op = proto_op_name(pw.op);
	w->client = pw.client;
	w->request = pw.request;
	w->op = op ? op : "?";
	w->waited_ms = pw.waited_ms;
	copy_str(w->home, sizeof w->home, pw.home ? pw.home : "", pw.home_len);
	if ((w->cases = calloc(pw.ncases + 1, sizeof *w->cases)) == NULL)
		return CHAN_ENOMEM;
	proto_case_list(&pw, &cl);
	while (w->ncases < pw.ncases && proto_list_case(&cl, &dir, &name, &nl) == 1) {
		chan_waiter_case_t *c = &w->cases[w->ncases++];

		c->dir = dir ? CHAN_DIR_SEND : CHAN_DIR_RECV;
		copy_str(c->channel, sizeof c->channel, name ? name : "", nl);
	}
	return 1;
}

int
chan_admin_waiters(chan_ctx_t *ctx, chan_conn_t *conn, size_t limit, chan_waiter_t **out,
    size_t *n, size_t *total)
{
	struct admin_arg a = { .op = OP_WAITERS, .limit = limit };

	return admin_list(ctx, conn, &a, sizeof **out, next_waiter, free_waiters, (void **)out, n,
	    total);
}

int
chan_admin_unblock(chan_ctx_t *ctx, chan_conn_t *conn, uint64_t client, uint64_t request,
    size_t *canceled)
{
	struct admin_arg a = { .op = OP_UNBLOCK, .client = client, .request = request };
	struct call_reply r;
	int rc;

	if (client == 0)
		return CHAN_EINVAL;
	if ((rc = admin_call(ctx, conn, &a, &r)) != 0)
		return rc;
	if (canceled)
		*canceled = (size_t)r.rep.n;
	call_reply_free(&r);
	return CHAN_OK;
}

int
chan_admin_shutdown(chan_ctx_t *ctx, chan_conn_t *conn)
{
	struct admin_arg a = { .op = OP_SHUTDOWN };
	struct call_reply r;
	int rc;

	if ((rc = admin_call(ctx, conn, &a, &r)) == 0)
		call_reply_free(&r);
	return rc;
}
