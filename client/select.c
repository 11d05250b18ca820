/*
 * select.c: chan_select, one SELECT request over the cases' common
 * connection (PROTOCOL.md §5), and Go's select with only nil channels,
 * which waits for the context alone. Kept apart from chan.c's one-channel
 * operations because a select is a set of cases, each checked, encoded and
 * given its result of its own.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"

#include "chanclient.h"
#include "chan_internal.h"
#include "conn_internal.h"
#include "ctx_internal.h"

struct select_arg {
	struct proto_case *pc;
	size_t n;
	bool has_default;
};

static int
enc_select(struct proto_out *o, uint64_t id, int64_t wait_us, void *arg)
{
	struct select_arg *a = arg;

	return proto_req_select(o, id, wait_us, a->pc, a->n, a->has_default);
}

/* The cases' common connection (NULL when every case is a nil channel). */
static int
select_conn(const chan_case_t *cases, size_t n, chan_conn_t **conn)
{
	*conn = NULL;
	for (size_t i = 0; i < n; i++) {
		if (cases[i].ch == NULL)
			continue;
		if (*conn != NULL && *conn != cases[i].ch->conn)
			return CHAN_EINVAL;
		*conn = cases[i].ch->conn;
	}
	return CHAN_OK;
}

/* The wire form of cases; *pc is malloc'd. */
static int
select_cases(chan_case_t *cases, size_t n, uint64_t max_value, struct proto_case **pcp)
{
	struct proto_case *pc = calloc(n, sizeof *pc);

	if (pc == NULL)
		return CHAN_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		chan_case_t *c = &cases[i];

		memset(&c->value, 0, sizeof c->value);
		c->ok = false;
		c->err = 0;
		pc[i].dir = c->dir == CHAN_DIR_SEND;
		if (c->ch) {
			pc[i].name = c->ch->name;
			pc[i].name_len = (uint32_t)c->ch->name_len;
		}
		if (c->dir != CHAN_DIR_SEND)
			continue;
		if (c->ref)
			pc[i].value = (struct proto_value){ .kind = VALUE_CHANREF,
			    .data = (const uint8_t *)c->ref->name, .len = c->ref->name_len };
		else if (c->data == NULL && c->len != 0)
			goto invalid;
		else if (c->len > max_value)
			goto limit;
		else
			pc[i].value = (struct proto_value){ .kind = VALUE_BIN, .data = c->data, .len = c->len };
	}
	*pcp = pc;
	return CHAN_OK;
invalid:
	free(pc);
	return CHAN_EINVAL;
limit:
	free(pc);
	return CHAN_ELIMIT;
}

/* Every case is a nil channel: Go blocks until the context ends. */
static int
select_nothing(chan_ctx_t *ctx, bool has_default)
{
	struct pollfd p;
	int64_t d;

	if (has_default)
		return CHAN_DEFAULT;
	if ((p.fd = chan_ctx_done_fd(ctx)) < 0)
		return p.fd;
	p.events = POLLIN;
	while (chan_ctx_err(ctx) == 0) {
		d = ctx_deadline_ns(ctx);
		poll(&p, 1, d ? (int)((d - chan_now()) / CHAN_MSEC) + 1 : -1);
	}
	return chan_ctx_err(ctx);
}

/*
 * Results of a select reply into the cases. A case the server could not have
 * chosen (out of range, a nil channel's, a default there was not) breaks
 * the connection.
 */
static int
select_result(chan_conn_t *conn, chan_case_t *cases, size_t n, bool has_default,
    const struct call_reply *r)
{
	const struct proto_reply *rep = &r->rep;
	int64_t i = rep->index;
	int rc;

	if (i >= (int64_t)n || (i >= 0 && rep->status == STATUS_OK && cases[i].ch == NULL) ||
	    (i < 0 && rep->status == STATUS_OK && !has_default))
		return conn_broke_contract(call_reply_conn(conn, r));
	if (rep->status != STATUS_OK) {
		rc = call_status_err(rep->status, false);
		if (i >= 0)
			cases[i].err = rc;
		return rc;
	}
	if (i < 0)
		return CHAN_DEFAULT;
	if (cases[i].dir == CHAN_DIR_RECV) {
		/* not handed over (out of memory): left in flight, it comes back after ack_wait */
		if ((rc = chan_value_from_proto(conn, &rep->value, &cases[i].value)) != 0)
			return rc;
		if (rep->tag != 0)	/* select returns no tag: acked with the next write */
			ack_post(call_reply_conn(conn, r), &rep->tag, 1);
		cases[i].ok = rep->ok;
		if (!rep->ok && cases[i].ch != NULL && (rc = chan_note_close_err(cases[i].ch, &rep->close_err)) != 0)
			return rc;
	}
	return (int)i;
}

int
chan_select(chan_ctx_t *ctx, chan_case_t *cases, size_t n, bool has_default)
{
	struct select_arg a = { NULL, n, has_default };
	struct call_reply r;
	chan_conn_t *conn;
	int rc;

	if (cases == NULL || n == 0 || n > INT32_MAX || select_conn(cases, n, &conn) != 0)
		return CHAN_EINVAL;
	if (conn == NULL)
		return select_nothing(ctx_or_background(ctx), has_default);
	if ((rc = select_cases(cases, n, conn_max_value(conn), &a.pc)) != 0)
		return rc;
	rc = conn_call(conn, ctx, OP_SELECT, CALL_BUDGET, enc_select, &a, &r);
	free(a.pc);
	if (rc != 0)
		return rc;
	rc = select_result(conn, cases, n, has_default, &r);
	call_reply_free(&r);
	return rc;
}
