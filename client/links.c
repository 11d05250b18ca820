/*
 * links.c: the link constructors (PROTOCOL.md §12) and the link handle.
 *
 * A link is one request that gets two replies: conn_call_start returns at
 * STARTED with the call still registered, conn_call_next takes the final
 * reply. Between the two nobody may be waiting, yet cancelling the link's
 * context must still stop it: each link watches its context, and the watch
 * (which runs under the context lock, where no socket write belongs) queues
 * a CANCEL for one process-wide canceller thread, started with the first
 * link, like ctx.c's timer thread.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"

#include "chanclient.h"
#include "conn_internal.h"
#include "ctx_internal.h"

struct chan_link {
	chan_conn_t *conn;		/* the call holds the reference */
	chan_ctx_t *ctx;		/* a reference: the link's lifetime */
	struct call *call;
	uint64_t id;
	struct ctx_watch watch;		/* queues a CANCEL when ctx is cancelled */
	bool watching;
	bool ended;			/* result and sent are final */
	int result;
	uint64_t sent;
};

/* ---- the canceller ---------------------------------------------------------------- */

struct cancel_req {
	struct cancel_req *next;
	chan_conn_t *conn;		/* a reference */
	uint64_t id;
};

static pthread_mutex_t cq_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cq_cond = PTHREAD_COND_INITIALIZER;
static struct cancel_req *cq_head, **cq_tail = &cq_head;
static pthread_once_t cq_once = PTHREAD_ONCE_INIT;
static bool cq_ok;

static void *
canceller_main(void *arg)
{
	struct cancel_req *q;

	pthread_mutex_lock(&cq_lock);
	for (;;) {
		while (cq_head == NULL)
			pthread_cond_wait(&cq_cond, &cq_lock);
		q = cq_head;
		if ((cq_head = q->next) == NULL)
			cq_tail = &cq_head;
		pthread_mutex_unlock(&cq_lock);
		conn_cancel(q->conn, q->id);
		conn_unref(q->conn);
		free(q);
		pthread_mutex_lock(&cq_lock);
	}
	return NULL;
}

static void
canceller_init(void)
{
	pthread_attr_t ta;
	pthread_t t;

	pthread_attr_init(&ta);
	pthread_attr_setdetachstate(&ta, PTHREAD_CREATE_DETACHED);
	cq_ok = pthread_create(&t, &ta, canceller_main, NULL) == 0;
	pthread_attr_destroy(&ta);
}

/* The context watch: under the context lock, so only queue. */
static void
link_ctx_done(struct ctx_watch *w, int err)
{
	chan_link_t *link = w->arg;
	struct cancel_req *q;

	if (err != CHAN_ECANCELED)
		return;		/* a deadline: the server ends the link by itself */
	if ((q = malloc(sizeof *q)) == NULL)
		return;		/* chan_link_wait and chan_link_free still send one */
	conn_ref(link->conn);
	q->conn = link->conn;
	q->id = link->id;
	q->next = NULL;
	pthread_mutex_lock(&cq_lock);
	*cq_tail = q;
	cq_tail = &q->next;
	pthread_cond_signal(&cq_cond);
	pthread_mutex_unlock(&cq_lock);
}

/* ---- starting a link ---------------------------------------------------------------- */

static int
enc_link(struct proto_out *o, uint64_t id, int64_t wait_us, void *arg)
{
	return proto_req_link(o, id, wait_us, arg);
}

/* Fill the common part of a link request: done and outs. */
static int
link_request(struct proto_request *l, uint64_t op, chan_conn_t *conn,
    const chan_link_opts_t *opts, uint32_t nouts)
{
	bool custom = false;

	memset(l, 0, sizeof *l);
	l->op = op;
	if (opts == NULL)
		return CHAN_OK;
	if (opts->done != NULL) {
		if (chan_conn(opts->done) != conn)
			return CHAN_EINVAL;
		l->done = chan_name(opts->done);
		l->done_len = (uint32_t)strlen(l->done);
	}
	for (uint32_t i = 0; i < nouts; i++) {
		l->outs[i].name = opts->out_name[i];
		l->outs[i].name_len = opts->out_name[i] ? (uint32_t)strlen(opts->out_name[i]) : 0;
		l->outs[i].cap = opts->out_cap[i];
		custom = custom || opts->out_name[i] != NULL || opts->out_cap[i] != 0;
	}
	l->nouts = custom ? nouts : 0;	/* nil: every output anonymous, unbuffered */
	return CHAN_OK;
}

/* New handles for the output names of a STARTED reply (outs[i] may be NULL). */
static int
started_outs(chan_conn_t *conn, struct proto_list *names, chan_t **const *outs, size_t nouts)
{
	chan_t *h[PROTO_LINK_OUTS_MAX] = { NULL };
	char buf[PROTO_NAME_MAX + 1];
	const char *name;
	uint32_t len;
	size_t i;
	int rc = CHAN_OK;

	if (names->left != nouts)
		return CHAN_EPROTO;
	for (i = 0; i < nouts && rc == CHAN_OK; i++) {
		if (proto_list_name(names, &name, &len) != 1 || len > PROTO_NAME_MAX)
			rc = CHAN_EPROTO;
		else if (outs[i] != NULL) {
			memcpy(buf, name, len);
			buf[len] = '\0';
			rc = chan_handle_new(&h[i], conn, buf);
		}
	}
	for (i = 0; i < nouts; i++) {
		if (rc != CHAN_OK)
			chan_free(h[i]);
		else if (outs[i] != NULL)
			*outs[i] = h[i];
	}
	return rc;
}

/* Watch the link's context; a context already cancelled stops the link now. */
static void
link_watch(chan_link_t *link, chan_ctx_t *ctx)
{
	int err;

	link->ctx = ctx_or_background(ctx);
	ctx_ref(link->ctx);
	link->watch.fn = link_ctx_done;
	link->watch.arg = link;
	if ((err = ctx_watch(link->ctx, &link->watch)) == 0)
		link->watching = true;
	else if (err == CHAN_ECANCELED)
		conn_cancel(link->conn, link->id);
}

/* Send l on conn, wait for STARTED, hand out the link and its outputs. */
static int
link_start(chan_ctx_t *ctx, chan_conn_t *conn, struct proto_request *l, chan_link_t **linkp,
    chan_t **const *outs, size_t nouts)
{
	struct call_reply r;
	struct call *call;
	chan_link_t *link;
	int rc;

	pthread_once(&cq_once, canceller_init);
	if (!cq_ok)
		return CHAN_ENOMEM;
	if ((link = calloc(1, sizeof *link)) == NULL)
		return CHAN_ENOMEM;
	if ((rc = conn_call_start(conn, ctx, l->op, enc_link, l, &r, &call)) != CHAN_OK)
		goto fail;
	if (call == NULL) {	/* it could not start: one error reply (an OK ends a link that never started) */
		rc = r.rep.status == STATUS_OK ? conn_broke_contract(call_reply_conn(conn, &r)) :
		    call_status_err(r.rep.status, false);
		call_reply_free(&r);
		goto fail;
	}
	link->conn = conn_call_conn(call);	/* in a cluster, the node the link runs on */
	link->call = call;
	link->id = conn_call_id(call);
	rc = started_outs(conn, &r.rep.list, outs, nouts);
	call_reply_free(&r);
	if (rc == CHAN_EPROTO)	/* not the outputs asked for */
		conn_broke_contract(link->conn);
	if (rc != CHAN_OK) {
		conn_call_end(call);	/* stops it */
		goto fail;
	}
	link_watch(link, ctx);
	*linkp = link;
	return CHAN_OK;
fail:
	free(link);
	return rc;
}

/* The one-input links: OR_DONE, TEE, BRIDGE, TAKE, FAN_OUT. */
static int
one_input(struct proto_request *l, uint64_t op, chan_t *in, const chan_link_opts_t *opts,
    uint32_t nouts, chan_link_t **link)
{
	int rc;

	if (in == NULL || link == NULL)
		return CHAN_EINVAL;
	if ((rc = link_request(l, op, chan_conn(in), opts, nouts)) != CHAN_OK)
		return rc;
	l->name = chan_name(in);
	l->name_len = (uint32_t)strlen(l->name);
	return CHAN_OK;
}

/* OR and FAN_IN: the inputs as receive cases. */
static int
many_inputs(chan_ctx_t *ctx, uint64_t op, chan_t *const *inputs, size_t n,
    const chan_link_opts_t *opts, chan_link_t **link, chan_t **out)
{
	struct proto_request l;
	struct proto_case *pc;
	chan_conn_t *conn;
	int rc;

	if (inputs == NULL || n == 0 || n > UINT32_MAX || link == NULL || inputs[0] == NULL)
		return CHAN_EINVAL;
	conn = chan_conn(inputs[0]);
	if ((rc = link_request(&l, op, conn, opts, 1)) != CHAN_OK)
		return rc;
	if ((pc = calloc(n, sizeof *pc)) == NULL)
		return CHAN_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		if (inputs[i] == NULL || chan_conn(inputs[i]) != conn) {
			free(pc);
			return CHAN_EINVAL;
		}
		pc[i].name = chan_name(inputs[i]);
		pc[i].name_len = (uint32_t)strlen(pc[i].name);
	}
	l.cases = pc;
	l.ncases = (uint32_t)n;
	rc = link_start(ctx, conn, &l, link, (chan_t **const[]){ out }, 1);
	free(pc);
	return rc;
}

/* ---- the constructors --------------------------------------------------------------- */

int
chan_or(chan_ctx_t *ctx, chan_t *const *inputs, size_t n, const chan_link_opts_t *opts,
    chan_link_t **link, chan_t **out)
{
	return many_inputs(ctx, OP_OR, inputs, n, opts, link, out);
}

int
chan_fan_in(chan_ctx_t *ctx, chan_t *const *inputs, size_t n, const chan_link_opts_t *opts,
    chan_link_t **link, chan_t **out)
{
	return many_inputs(ctx, OP_FAN_IN, inputs, n, opts, link, out);
}

/* A one-input, one-output link. */
static int
simple_link(chan_ctx_t *ctx, uint64_t op, chan_t *in, const chan_link_opts_t *opts,
    chan_link_t **link, chan_t **out)
{
	struct proto_request l;
	int rc;

	if ((rc = one_input(&l, op, in, opts, 1, link)) != CHAN_OK)
		return rc;
	return link_start(ctx, chan_conn(in), &l, link, (chan_t **const[]){ out }, 1);
}

int
chan_or_done(chan_ctx_t *ctx, chan_t *in, const chan_link_opts_t *opts, chan_link_t **link,
    chan_t **out)
{
	return simple_link(ctx, OP_OR_DONE, in, opts, link, out);
}

int
chan_bridge(chan_ctx_t *ctx, chan_t *in, const chan_link_opts_t *opts, chan_link_t **link,
    chan_t **out)
{
	return simple_link(ctx, OP_BRIDGE, in, opts, link, out);
}

int
chan_tee(chan_ctx_t *ctx, chan_t *in, const chan_link_opts_t *opts, chan_link_t **link,
    chan_t **out1, chan_t **out2)
{
	struct proto_request l;
	int rc;

	if ((rc = one_input(&l, OP_TEE, in, opts, 2, link)) != CHAN_OK)
		return rc;
	return link_start(ctx, chan_conn(in), &l, link, (chan_t **const[]){ out1, out2 }, 2);
}

int
chan_take(chan_ctx_t *ctx, chan_t *in, uint64_t n, const chan_link_opts_t *opts,
    chan_link_t **link, chan_t **out)
{
	struct proto_request l;
	int rc;

	if ((rc = one_input(&l, OP_TAKE, in, opts, 1, link)) != CHAN_OK)
		return rc;
	l.count = n;
	return link_start(ctx, chan_conn(in), &l, link, (chan_t **const[]){ out }, 1);
}

int
chan_fan_out(chan_ctx_t *ctx, chan_t *in, const char *stage, size_t workers, bool ordered,
    const chan_link_opts_t *opts, chan_link_t **link, chan_t **out)
{
	struct proto_request l;
	int rc;

	if (stage == NULL || workers == 0)
		return CHAN_EINVAL;
	if ((rc = one_input(&l, OP_FAN_OUT, in, opts, 1, link)) != CHAN_OK)
		return rc;
	l.stage = stage;
	l.stage_len = (uint32_t)strlen(stage);
	l.count = workers;
	l.ordered = ordered;
	return link_start(ctx, chan_conn(in), &l, link, (chan_t **const[]){ out }, 1);
}

/* A value to repeat as a send case's value. */
static int
repeat_value(chan_conn_t *conn, const chan_value_t *v, struct proto_value *pv)
{
	switch (v->kind) {
	case CHAN_VALUE_BYTES:
		if (v->data == NULL && v->len != 0)
			return CHAN_EINVAL;
		*pv = (struct proto_value){ .kind = VALUE_BIN, .data = v->data, .len = v->len };
		return CHAN_OK;
	case CHAN_VALUE_CHAN:
		if (v->chan == NULL || chan_conn(v->chan) != conn)
			return CHAN_EINVAL;
		*pv = (struct proto_value){ .kind = VALUE_CHANREF,
		    .data = (const uint8_t *)chan_name(v->chan), .len = strlen(chan_name(v->chan)) };
		return CHAN_OK;
	default:
		return CHAN_EINVAL;
	}
}

int
chan_repeat(chan_ctx_t *ctx, chan_conn_t *conn, const chan_value_t *values, size_t n,
    const chan_link_opts_t *opts, chan_link_t **link, chan_t **out)
{
	struct proto_request l;
	struct proto_case *pc;
	int rc;

	if (conn == NULL || values == NULL || n == 0 || n > UINT32_MAX || link == NULL)
		return CHAN_EINVAL;
	if ((rc = link_request(&l, OP_REPEAT, conn, opts, 1)) != CHAN_OK)
		return rc;
	if ((pc = calloc(n, sizeof *pc)) == NULL)
		return CHAN_ENOMEM;
	for (size_t i = 0; i < n && rc == CHAN_OK; i++) {
		pc[i].dir = 1;
		rc = repeat_value(conn, &values[i], &pc[i].value);
	}
	l.cases = pc;
	l.ncases = (uint32_t)n;
	if (rc == CHAN_OK)
		rc = link_start(ctx, conn, &l, link, (chan_t **const[]){ out }, 1);
	free(pc);
	return rc;
}

/* ---- the handle ----------------------------------------------------------------------- */

int
chan_link_wait(chan_link_t *link, uint64_t *sent)
{
	struct call_reply r;
	int rc;

	if (link == NULL)
		return CHAN_EINVAL;
	if (!link->ended) {
		/* a second STARTED broke the connection as it came (conn_call_start) */
		if ((rc = conn_call_next(link->call, link->ctx, &r)) == CHAN_OK) {
			rc = call_status_err(r.rep.status, false);
			if (rc == CHAN_OK)
				link->sent = r.rep.n;
			call_reply_free(&r);
		}
		link->result = rc;
		link->ended = true;
	}
	if (sent)
		*sent = link->sent;
	return link->result;
}

int
chan_link_stop(chan_link_t *link)
{
	if (link == NULL)
		return CHAN_EINVAL;
	conn_cancel(link->conn, link->id);	/* NOT_FOUND (ignored) if it had ended */
	return CHAN_OK;
}

uint64_t
chan_link_id(const chan_link_t *link)
{
	return link ? link->id : 0;
}

void
chan_link_free(chan_link_t *link)
{
	if (link == NULL)
		return;
	if (link->watching)
		ctx_unwatch(link->ctx, &link->watch);
	conn_call_end(link->call);	/* CANCEL if it still runs */
	chan_ctx_free(link->ctx);
	free(link);
}
