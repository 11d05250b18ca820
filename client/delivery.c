/*
 * delivery.c: ack channels in libchanclient (PROTOCOL.md §16): MAKE with
 * delivery options, receives that keep their tag, and ACK, NACK, TOUCH.
 *
 * chan_ack is posted corked and deferred: it leaves with the connection's
 * next write (the next receive, usually) and its reply with the next reply,
 * so a consumer that keeps receiving pays no round trip and no write for
 * its acks; the tags acked until that write share one ACK frame (ack_post),
 * so the server decodes and answers one request, not one a value. The
 * receives that return no tag (chan_recv, chan_select, chan_op_wait,
 * chan_stream_recv) ack the same way at once.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <string.h>

#include "codec.h"

#include "chanclient.h"
#include "chan_internal.h"
#include "cluster.h"
#include "conn_internal.h"

/* ---- make ------------------------------------------------------------------------ */

struct make_arg {
	const char *name;
	size_t len;
	uint64_t cap;
	struct proto_delivery d;
};

static int
enc_make_opts(struct proto_out *o, uint64_t id, int64_t wait_us, void *arg)
{
	struct make_arg *a = arg;

	(void)wait_us;
	return proto_req_make_opts(o, id, a->name, a->len, a->cap, &a->d);
}

/* The options in wire form; CHAN_EINVAL for what the server would refuse anyway. */
static int
opts_to_proto(const chan_delivery_opts_t *opts, struct proto_delivery *d)
{
	int64_t us;

	memset(d, 0, sizeof *d);
	if (opts == NULL)
		return CHAN_OK;
	d->durable = opts->durable;
	if (opts->durable && opts->ack_wait_ns == 0)
		return CHAN_OK;
	us = (opts->ack_wait_ns + CHAN_USEC - 1) / CHAN_USEC;
	if (opts->ack_wait_ns <= 0 || us > PROTO_WAIT_MAX)
		return CHAN_EINVAL;
	d->on = true;
	d->ack_wait_us = (uint64_t)us;
	d->max_deliver = opts->max_deliver;
	d->max_unacked = opts->max_unacked;
	d->max_ack_pending = opts->max_ack_pending;
	if (opts->dead_letter != NULL) {
		d->dead_letter = opts->dead_letter;
		d->dead_letter_len = (uint32_t)strlen(opts->dead_letter);
	}
	return CHAN_OK;
}

int
chan_make_opts(chan_ctx_t *ctx, chan_conn_t *conn, const char *name, size_t cap,
    const chan_delivery_opts_t *opts, chan_t **out)
{
	struct make_arg a = { name, name ? strlen(name) : 0, cap, { 0 } };
	struct call_reply r;
	char buf[PROTO_NAME_MAX + 1];
	int rc;

	if (out == NULL || conn == NULL || (rc = opts_to_proto(opts, &a.d)) != CHAN_OK)
		return CHAN_EINVAL;
	if ((rc = conn_call(conn, ctx, OP_MAKE, CALL_NOWAIT, enc_make_opts, &a, &r)) != 0)
		return rc;
	if ((rc = call_status_err(r.rep.status, false)) == 0) {
		memcpy(buf, r.rep.name, r.rep.name_len);
		buf[r.rep.name_len] = '\0';
		rc = chan_handle_new(out, conn, buf);
	}
	call_reply_free(&r);
	return rc;
}

/* ---- receive ------------------------------------------------------------------------ */

struct recv_arg {
	const char *name;
	size_t len;
};

static int
enc_recv(struct proto_out *o, uint64_t id, int64_t wait_us, void *arg)
{
	struct recv_arg *a = arg;

	return proto_req_name(o, OP_RECV, id, wait_us, a->name, a->len);
}

int
chan_recv_msg(chan_ctx_t *ctx, chan_t *ch, chan_msg_t *m, bool *ok)
{
	struct recv_arg a;
	struct call_reply r;
	int rc;

	if (m == NULL || ch == NULL)
		return CHAN_EINVAL;
	memset(m, 0, sizeof *m);
	a = (struct recv_arg){ chan_name(ch), strlen(chan_name(ch)) };
	if ((rc = conn_call(chan_conn(ch), ctx, OP_RECV, CALL_BUDGET, enc_recv, &a, &r)) != 0)
		return rc;
	if ((rc = call_status_err(r.rep.status, false)) == 0 &&
	    (rc = chan_value_from_proto(chan_conn(ch), &r.rep.value, &m->value)) == 0) {
		m->tag = r.rep.tag;
		m->count = (uint32_t)r.rep.count;
		if (m->tag != 0)
			conn_ref(m->conn = call_reply_conn(chan_conn(ch), &r));
		if (ok)
			*ok = r.rep.ok;
		/* closed and drained: the close error, as chan_recv records it (chan_err) */
		if (!r.rep.ok && (rc = chan_note_close_err(ch, &r.rep.close_err)) != 0)
			chan_value_clear(&m->value);
	}
	/* a tagged value not handed over (out of memory) stays in flight: back after ack_wait */
	call_reply_free(&r);
	return rc;
}

void
chan_msg_clear(chan_msg_t *m)
{
	if (m == NULL)
		return;
	chan_value_clear(&m->value);
	conn_unref(m->conn);
	m->conn = NULL;
	m->tag = 0;
	m->count = 0;
}

/* ---- ACK, NACK, TOUCH --------------------------------------------------------------- */

/*
 * The connection m's tag belongs to (a reference, the caller's): the one
 * that received it, or for a message without one (a tag alone) the one
 * requests about ch's values go to.
 */
static int
tag_conn(chan_t *ch, const chan_msg_t *m, chan_ctx_t *ctx, chan_conn_t **out)
{
	if (m->conn == NULL)
		return chan_owner_conn(ctx, ch, out);
	conn_ref(*out = m->conn);
	return CHAN_OK;
}

struct tags_arg {
	const uint64_t *tags;
	size_t n;
};

static int
enc_ack(struct proto_out *o, uint64_t id, int64_t wait_us, void *arg)
{
	struct tags_arg *a = arg;

	(void)wait_us;
	return proto_req_ack(o, id, a->tags, a->n);
}

int
chan_ack(chan_t *ch, const chan_msg_t *m)
{
	chan_conn_t *c;
	int rc;

	if (ch == NULL || m == NULL || m->tag == 0)
		return CHAN_EINVAL;
	if ((rc = tag_conn(ch, m, NULL, &c)) != CHAN_OK)
		return rc;
	/* with the tags acked until the next write, in one frame (wire.c) */
	rc = ack_post(c, &m->tag, 1);
	conn_unref(c);
	return rc;
}

int
chan_ack_n(chan_ctx_t *ctx, chan_t *ch, const uint64_t *tags, size_t n)
{
	struct tags_arg a = { tags, n };
	struct call_reply r;
	chan_conn_t *c;
	int rc;

	if (ch == NULL || tags == NULL || n == 0 || n > PROTO_ACK_TAGS_MAX)
		return CHAN_EINVAL;
	for (size_t i = 0; i < n; i++)
		if (tags[i] == 0)
			return CHAN_EINVAL;
	if ((rc = chan_owner_conn(ctx, ch, &c)) != CHAN_OK)
		return rc;
	/* the reply is read before c's reference goes */
	if ((rc = conn_call(c, ctx, OP_ACK, CALL_NOWAIT, enc_ack, &a, &r)) == 0) {
		rc = call_status_err(r.rep.status, false);
		call_reply_free(&r);
	}
	conn_unref(c);
	return rc;
}

struct tag_arg {
	uint64_t op, tag;
	int64_t delay_us;
};

static int
enc_tag(struct proto_out *o, uint64_t id, int64_t wait_us, void *arg)
{
	struct tag_arg *a = arg;

	(void)wait_us;
	if (a->op == OP_NACK)
		return proto_req_nack(o, id, a->tag, a->delay_us);
	return proto_req_touch(o, id, a->tag);
}

static int
tag_call(chan_ctx_t *ctx, chan_t *ch, const chan_msg_t *m, struct tag_arg *a)
{
	struct call_reply r;
	chan_conn_t *c;
	int rc;

	if ((rc = tag_conn(ch, m, ctx, &c)) != CHAN_OK)
		return rc;
	if ((rc = conn_call(c, ctx, a->op, CALL_NOWAIT, enc_tag, a, &r)) == 0) {
		rc = call_status_err(r.rep.status, false);
		call_reply_free(&r);
	}
	conn_unref(c);
	return rc;
}

int
chan_nack(chan_ctx_t *ctx, chan_t *ch, const chan_msg_t *m, int64_t delay_ns)
{
	struct tag_arg a;

	if (ch == NULL || m == NULL || m->tag == 0 || delay_ns < 0 ||
	    delay_ns / CHAN_USEC > PROTO_WAIT_MAX)
		return CHAN_EINVAL;
	a = (struct tag_arg){ OP_NACK, m->tag, (delay_ns + CHAN_USEC - 1) / CHAN_USEC };
	return tag_call(ctx, ch, m, &a);
}

int
chan_touch(chan_ctx_t *ctx, chan_t *ch, const chan_msg_t *m)
{
	struct tag_arg a;

	if (ch == NULL || m == NULL || m->tag == 0)
		return CHAN_EINVAL;
	a = (struct tag_arg){ OP_TOUCH, m->tag, 0 };
	return tag_call(ctx, ch, m, &a);
}

/* ---- INFLIGHT (admin) -------------------------------------------------------------- */

struct inflight_arg {
	const char *name;
	uint64_t limit;
};

static int
enc_inflight(struct proto_out *o, uint64_t id, int64_t wait_us, void *arg)
{
	struct inflight_arg *a = arg;

	(void)wait_us;
	return proto_req_inflight(o, id, a->name, strlen(a->name), a->limit);
}

int
chan_admin_inflight(chan_ctx_t *ctx, chan_conn_t *conn, const char *name, size_t limit,
    chan_inflight_t **out, size_t *n, size_t *total)
{
	struct inflight_arg a = { name, limit };
	struct proto_inflight_info pi;
	struct call_reply r;
	chan_inflight_t *list;
	size_t i = 0;
	int rc;

	if (conn == NULL || name == NULL || out == NULL || n == NULL)
		return CHAN_EINVAL;
	if ((rc = conn_call(conn, ctx, OP_INFLIGHT, CALL_NOWAIT, enc_inflight, &a, &r)) != 0)
		return rc;
	if ((rc = call_status_err(r.rep.status, false)) != 0)
		goto done;
	if ((list = calloc(r.rep.list.left + 1, sizeof *list)) == NULL) {
		rc = CHAN_ENOMEM;
		goto done;
	}
	while (proto_list_inflight(&r.rep.list, &pi) == 1)
		list[i++] = (chan_inflight_t){ .client = pi.client, .tag = pi.tag,
		    .count = (uint32_t)pi.count, .age_ms = pi.age_ms };
	if (total)
		*total = (size_t)r.rep.total;
	*out = list;
	*n = i;
done:
	call_reply_free(&r);
	return rc;
}
