/*
 * stream.c: receive streams (PROTOCOL.md §14). One STREAM request whose
 * interim replies are the values; the final reply ends it.
 *
 * Credit flows back as the program takes values: when it asks for the
 * next one and must wait for it, or after half the credit (at least one)
 * was taken, one CREDIT grants back what was taken, corked so that it
 * leaves with the next write (written at once instead, it measured slower
 * at credit 16: a write more per credit's worth of values costs more than
 * the round trip it saves; tests/bench/RESULTS.md). The server has then
 * used at least that much, so the stream never asks for more than it was
 * opened with and CREDIT can never hit max_stream_credit: its reply is
 * not awaited.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <stdlib.h>
#include <string.h>

#include "codec.h"

#include "chanclient.h"
#include "conn_internal.h"
#include "ctx_internal.h"

struct chan_stream {
	struct call *call;
	chan_ctx_t *ctx;		/* a reference: bounds the stream's life */
	chan_conn_t *conn;
	size_t refill;			/* grant credit back in steps of this */
	size_t taken;			/* values taken since the last grant */
	int end;			/* 0 while running; then what every recv returns */
	size_t end_index;
	size_t n;			/* channels */
	struct stream_err *errs;	/* per channel, once one was reported closed with an error */
};

/* A channel's close error, as its close report carried it. */
struct stream_err {
	bool set;
	uint64_t code;
	char *msg;
};

struct stream_arg {
	struct proto_case *names;
	size_t n;
	uint64_t credit;
};

static int
enc_stream(struct proto_out *o, uint64_t id, int64_t wait_us, void *arg)
{
	struct stream_arg *a = arg;

	return proto_req_stream(o, id, wait_us, a->names, a->n, a->credit);
}

struct credit_arg {
	uint64_t stream, n;
};

static int
enc_credit(struct proto_out *o, uint64_t id, int64_t wait_us, void *arg)
{
	struct credit_arg *a = arg;

	return proto_req_credit(o, id, a->stream, a->n);
}

/* A value or a close report: [index, value, ok], or [index, nil, false, error]. */
static bool
stream_interim(int status, int nresults)
{
	/* 4: a close error (§5 CLOSE); 5: an ack channel's value (§16) */
	return status == STATUS_OK && nresults >= 3 && nresults <= 5;
}

/* The channels' names in wire form; they must share one connection. */
static int
stream_names(chan_t *const *chans, size_t n, struct proto_case **out, chan_conn_t **conn)
{
	struct proto_case *pc;

	if ((pc = calloc(n, sizeof *pc)) == NULL)
		return CHAN_ENOMEM;
	*conn = NULL;
	for (size_t i = 0; i < n; i++) {
		if (chans[i] == NULL || (*conn != NULL && chan_conn(chans[i]) != *conn)) {
			free(pc);
			return CHAN_EINVAL;
		}
		*conn = chan_conn(chans[i]);
		pc[i].name = chan_name(chans[i]);
		pc[i].name_len = (uint32_t)strlen(pc[i].name);
	}
	*out = pc;
	return CHAN_OK;
}

int
chan_stream_open(chan_ctx_t *ctx, chan_t *const *chans, size_t n, size_t credit,
    chan_stream_t **out)
{
	struct stream_arg a = { NULL, n, credit };
	struct call_interim values = { stream_interim, credit };
	chan_stream_t *s;
	int rc;

	if (out == NULL || chans == NULL || n == 0 || n > UINT32_MAX || credit == 0)
		return CHAN_EINVAL;
	if ((s = calloc(1, sizeof *s)) == NULL)
		return CHAN_ENOMEM;
	if ((rc = stream_names(chans, n, &a.names, &s->conn)) != CHAN_OK)
		goto fail;
	ctx = ctx_or_background(ctx);
	rc = conn_submit(s->conn, ctx, OP_STREAM, CALL_BUDGET, &values, 0, enc_stream, &a, &s->call);
	free(a.names);
	if (rc != CHAN_OK)
		goto fail;
	ctx_ref(ctx);
	s->ctx = ctx;
	s->n = n;
	s->refill = credit / 2 ? credit / 2 : 1;
	*out = s;
	return CHAN_OK;
fail:
	free(s);
	return rc;
}

/* Grant back the credit of the values taken (corked: it leaves with the next write). */
static void
stream_grant(chan_stream_t *s)
{
	struct credit_arg a = { conn_call_id(s->call), s->taken };

	s->taken = 0;
	conn_call_allow(s->call, a.n);	/* before the server can have it */
	/* nobody waits for CREDIT's OK: deferred; a failure reaches the stream itself */
	conn_post(conn_call_conn(s->call), enc_credit, &a, WIRE_CORK | WIRE_DEFER);
}

/* The final reply: remember why the stream ended. */
static void
stream_ended(chan_stream_t *s, const struct proto_reply *rep)
{
	s->end = rep->status == STATUS_OK ? CHAN_ECLOSED : call_status_err(rep->status, false);
	s->end_index = rep->index >= 0 ? (size_t)rep->index : 0;
}

/* chans[i] (i < n) was reported closed with an error: keep it for chan_stream_err. */
static int
stream_set_err(chan_stream_t *s, size_t i, const struct proto_close_err *pe)
{
	struct stream_err *e;

	if (s->errs == NULL && (s->errs = calloc(s->n, sizeof *s->errs)) == NULL)
		return CHAN_ENOMEM;
	e = &s->errs[i];
	free(e->msg);
	e->msg = NULL;
	if (chan_close_err_copy(pe, &e->code, &e->msg) != CHAN_OK)
		return CHAN_ENOMEM;
	e->set = true;
	return CHAN_OK;
}

bool
chan_stream_err(const chan_stream_t *s, size_t index, uint64_t *code, char *msg, size_t cap)
{
	if (s == NULL || s->errs == NULL || index >= s->n || !s->errs[index].set)
		return false;
	return chan_close_err_out(s->errs[index].msg, s->errs[index].code, code, msg, cap);
}

/* The next value with its tag and count (0 from a plain channel). */
static int
stream_next(chan_stream_t *s, chan_value_t *v, bool *ok, size_t *index, uint64_t *tag,
    uint32_t *count)
{
	struct call_reply r;
	int rc;

	*tag = 0;
	*count = 0;
	if (v)
		memset(v, 0, sizeof *v);
	if (ok)
		*ok = false;
	if (s == NULL)
		return CHAN_EINVAL;
	if (s->end != 0)
		goto ended;
	/* about to wait: every taken value's credit goes back first, so the stream is full */
	if (s->taken >= s->refill || (s->taken > 0 && !conn_call_has_reply(s->call)))
		stream_grant(s);
	if ((rc = conn_call_next(s->call, s->ctx, &r)) != CHAN_OK) {
		s->end = rc;		/* the context, or the connection */
		goto ended;
	}
	if (r.rep.index >= (int64_t)s->n) {	/* about a channel the stream does not have */
		call_reply_free(&r);
		s->end = conn_broke_contract(conn_call_conn(s->call));
		goto ended;
	}
	if (!r.rep.interim) {
		stream_ended(s, &r.rep);
		call_reply_free(&r);
		goto ended;
	}
	rc = chan_value_from_proto(s->conn, &r.rep.value, v);
	if (rc == CHAN_OK && r.rep.close_err.set)
		rc = stream_set_err(s, (size_t)r.rep.index, &r.rep.close_err);
	if (ok)
		*ok = r.rep.ok;
	if (index)
		*index = (size_t)r.rep.index;
	*tag = r.rep.tag;
	*count = (uint32_t)r.rep.count;
	call_reply_free(&r);
	s->taken++;
	return rc;
ended:
	if (index && s->end == CHAN_ENOTFOUND)
		*index = s->end_index;
	return s->end;
}

int
chan_stream_recv(chan_stream_t *s, chan_value_t *v, bool *ok, size_t *index)
{
	uint64_t tag;
	uint32_t count;
	int rc = stream_next(s, v, ok, index, &tag, &count);

	if (tag != 0 && rc == CHAN_OK)	/* an ack channel's value, returned untagged */
		ack_post(conn_call_conn(s->call), &tag, 1);
	return rc;
}

int
chan_stream_recv_msg(chan_stream_t *s, chan_msg_t *m, bool *ok, size_t *index)
{
	int rc;

	if (m == NULL)
		return CHAN_EINVAL;
	memset(m, 0, sizeof *m);
	rc = stream_next(s, &m->value, ok, index, &m->tag, &m->count);
	if (rc != CHAN_OK) {
		/* not handed over (out of memory): left in flight, back after ack_wait, as chan_recv_msg */
		m->tag = 0;
		m->count = 0;
	} else if (m->tag != 0) {
		/* the stream's node tagged it, not necessarily the channel's owner */
		conn_ref(m->conn = conn_call_conn(s->call));
	}
	return rc;
}

void
chan_stream_free(chan_stream_t *s)
{
	if (s == NULL)
		return;
	conn_call_end(s->call);
	chan_ctx_free(s->ctx);
	for (size_t i = 0; s->errs != NULL && i < s->n; i++)
		free(s->errs[i].msg);
	free(s->errs);
	free(s);
}
