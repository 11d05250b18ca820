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

/* A call whose result is a list: an OK reply and room for its items (zeroed). */
static int
admin_list(chan_ctx_t *ctx, chan_conn_t *conn, struct admin_arg *a, size_t size,
    struct call_reply *r, void **items)
{
	int rc;

	if ((rc = admin_call(ctx, conn, a, r)) != 0)
		return rc;
	if ((*items = calloc(r->rep.list.left + 1, size)) == NULL) {
		call_reply_free(r);
		return CHAN_ENOMEM;
	}
	return CHAN_OK;
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

int
chan_admin_stats(chan_ctx_t *ctx, chan_conn_t *conn, chan_stat_t **out, size_t *n)
{
	struct admin_arg a = { .op = OP_STATS };
	struct call_reply r;
	const char *k;
	uint32_t kl;
	uint64_t v;
	chan_stat_t *st;
	size_t i = 0;
	int rc;

	if (out == NULL || n == NULL)
		return CHAN_EINVAL;
	if ((rc = admin_list(ctx, conn, &a, sizeof *st, &r, (void **)&st)) != 0)
		return rc;
	while (proto_list_stat(&r.rep.list, &k, &kl, &v) == 1) {
		copy_str(st[i].key, sizeof st[i].key, k, kl);
		st[i++].value = v;
	}
	call_reply_free(&r);
	*out = st;
	*n = i;
	return CHAN_OK;
}

int
chan_admin_channels(chan_ctx_t *ctx, chan_conn_t *conn, const char *pattern, size_t limit,
    chan_info_t **out, size_t *n, size_t *matched)
{
	struct admin_arg a = { .op = OP_CHANNELS, .pattern = pattern, .limit = limit };
	struct proto_chan_info pi;
	struct call_reply r;
	chan_info_t *list;
	size_t i = 0;
	int rc;

	if (out == NULL || n == NULL)
		return CHAN_EINVAL;
	if ((rc = admin_list(ctx, conn, &a, sizeof *list, &r, (void **)&list)) != 0)
		return rc;
	while (proto_list_chan(&r.rep.list, &pi) == 1)
		chan_info_from_proto(&pi, &list[i++]);
	if (matched)
		*matched = (size_t)r.rep.total;
	call_reply_free(&r);
	*out = list;
	*n = i;
	return CHAN_OK;
}

int
chan_admin_clients(chan_ctx_t *ctx, chan_conn_t *conn, chan_client_info_t **out, size_t *n)
{
	struct admin_arg a = { .op = OP_CLIENTS };
	struct proto_client_info pc;
	struct call_reply r;
	chan_client_info_t *list;
	size_t i = 0;
	int rc;

	if (out == NULL || n == NULL)
		return CHAN_EINVAL;
	if ((rc = admin_list(ctx, conn, &a, sizeof *list, &r, (void **)&list)) != 0)
		return rc;
	while (proto_list_client(&r.rep.list, &pc) == 1) {
		chan_client_info_t *c = &list[i++];

		c->id = pc.id;
		copy_str(c->peer, sizeof c->peer, pc.peer, pc.peer_len);
		copy_str(c->name, sizeof c->name, pc.name, pc.name_len);
		c->pending = (size_t)pc.pending;
		c->age_ms = pc.age_ms;
		c->unsent = (size_t)pc.unsent;
	}
	call_reply_free(&r);
	*out = list;
	*n = i;
	return CHAN_OK;
}

int
chan_admin_cluster_nodes(chan_ctx_t *ctx, chan_conn_t *conn, chan_node_info_t **out, size_t *n)
{
	struct admin_arg a = { .op = OP_CLUSTER_NODES };
	struct proto_node_info pn;
	struct call_reply r;
	chan_node_info_t *list;
	size_t i = 0;
	int rc;

	if (out == NULL || n == NULL)
		return CHAN_EINVAL;
	if ((rc = admin_list(ctx, conn, &a, sizeof *list, &r, (void **)&list)) != 0)
		return rc;
	while (proto_list_node(&r.rep.list, &pn) == 1) {
		chan_node_info_t *d = &list[i++];

		copy_str(d->name, sizeof d->name, pn.name, pn.name_len);
		copy_str(d->addr, sizeof d->addr, pn.advertise, pn.advertise_len);
		d->owned = (size_t)pn.owned;
		d->self = pn.self != 0;
		d->lease_left_ms = pn.lease_left_ms;
	}
	call_reply_free(&r);
	*out = list;
	*n = i;
	return CHAN_OK;
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

static int
waiter_cases(const struct proto_waiter_info *pw, chan_waiter_t *w)
{
	struct proto_list cl;
	uint8_t dir;
	const char *name;
	uint32_t nl;

	w->cases = calloc(pw->ncases + 1, sizeof *w->cases);
	if (w->cases == NULL)
		return CHAN_ENOMEM;
	proto_case_list(pw, &cl);
	while (w->ncases < pw->ncases && proto_list_case(&cl, &dir, &name, &nl) == 1) {
		chan_waiter_case_t *c = &w->cases[w->ncases++];

		c->dir = dir ? CHAN_DIR_SEND : CHAN_DIR_RECV;
		copy_str(c->channel, sizeof c->channel, name ? name : "", nl);
	}
	return CHAN_OK;
}

int
chan_admin_waiters(chan_ctx_t *ctx, chan_conn_t *conn, size_t limit, chan_waiter_t **out,
    size_t *n, size_t *total)
{
	struct admin_arg a = { .op = OP_WAITERS, .limit = limit };
	struct proto_waiter_info pw;
	struct call_reply r;
	chan_waiter_t *list;
	size_t i = 0;
	int rc;

	if (out == NULL || n == NULL)
		return CHAN_EINVAL;
	if ((rc = admin_list(ctx, conn, &a, sizeof *list, &r, (void **)&list)) != 0)
		return rc;
	while (proto_list_waiter(&r.rep.list, &pw) == 1) {
		chan_waiter_t *w = &list[i++];
		const char *op = proto_op_name(pw.op);

		w->client = pw.client;
		w->request = pw.request;
		w->op = op ? op : "?";
		w->waited_ms = pw.waited_ms;
		if (waiter_cases(&pw, w) != CHAN_OK) {
			chan_admin_waiters_free(list, i);
			call_reply_free(&r);
			return CHAN_ENOMEM;
		}
	}
	if (total)
		*total = (size_t)r.rep.total;
	call_reply_free(&r);
	*out = list;
	*n = i;
	return CHAN_OK;
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
