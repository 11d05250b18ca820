/*
 * chan.c: channel handles and the channel operations, each one request on
 * the handle's connection (conn.c), plus errors. Select is select.c.
 *
 * Each operation is an encoder (what goes on the wire) and a short
 * function turning the reply into results; conn_call does the waiting.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"

#include "chanclient.h"
#include "chan_internal.h"
#include "cluster.h"
#include "conn_internal.h"
#include "ctx_internal.h"

/* ---- errors ------------------------------------------------------------------- */

const char *
chan_strerror(int err)
{
	static const char *const msgs[] = {
		[-CHAN_ECLOSED + CHAN_EBASE] = "channel closed",
		[-CHAN_EDEADLINE + CHAN_EBASE] = "context deadline exceeded",
		[-CHAN_ECANCELED + CHAN_EBASE] = "context canceled",
		[-CHAN_ENOTFOUND + CHAN_EBASE] = "no such channel",
		[-CHAN_EEXISTS + CHAN_EBASE] = "channel exists with a different capacity",
		[-CHAN_EPERM + CHAN_EBASE] = "permission denied",
		[-CHAN_EBADREQ + CHAN_EBASE] = "bad request (rejected by the server)",
		[-CHAN_ELIMIT + CHAN_EBASE] = "limit exceeded",
		[-CHAN_EPROTO + CHAN_EBASE] = "protocol error",
		[-CHAN_ESHUTDOWN + CHAN_EBASE] = "server shutting down",
		[-CHAN_EWOULDBLOCK + CHAN_EBASE] = "operation would block",
		[-CHAN_ECONNLOST + CHAN_EBASE] = "connection lost",
		[-CHAN_ENOTCONN + CHAN_EBASE] = "connection closed",
		[-CHAN_ECONNECT + CHAN_EBASE] = "cannot connect",
		[-CHAN_ENOTSUP + CHAN_EBASE] = "not supported",
		[-CHAN_EINVAL + CHAN_EBASE] = "invalid argument",
		[-CHAN_ENOMEM + CHAN_EBASE] = "out of memory",
		[-CHAN_EUNKNOWN + CHAN_EBASE] = "unknown status from the server",
		[-CHAN_ETLS + CHAN_EBASE] = "TLS handshake or certificate verification failed",
		[-CHAN_ERESOLVE + CHAN_EBASE] = "host name did not resolve",
		[-CHAN_ESTORAGE + CHAN_EBASE] = "the server cannot write its journal (durable channel)",
		[-CHAN_EUNAVAILABLE + CHAN_EBASE] = "cluster: channel unavailable (owner unreachable, "
		    "fenced, on another node than the others, or MOVED did not converge)",
	};
	int i = CHAN_EBASE - err;

	if (err == CHAN_OK)
		return "success";
	if (err == CHAN_DEFAULT)
		return "default case";
	if (i <= 0 || i >= (int)(sizeof msgs / sizeof msgs[0]) || msgs[i] == NULL)
		return "unknown error";
	return msgs[i];
}

int
call_status_err(int status, bool try)
{
	static const int map[STATUS_MAX + 1] = {
		[STATUS_OK] = CHAN_OK,
		[STATUS_CLOSED] = CHAN_ECLOSED,
		[STATUS_DEADLINE_EXCEEDED] = CHAN_EDEADLINE,
		[STATUS_CANCELED] = CHAN_ECANCELED,
		[STATUS_NOT_FOUND] = CHAN_ENOTFOUND,
		[STATUS_EXISTS] = CHAN_EEXISTS,
		[STATUS_PERMISSION_DENIED] = CHAN_EPERM,
		[STATUS_BAD_REQUEST] = CHAN_EBADREQ,
		[STATUS_LIMIT] = CHAN_ELIMIT,
		[STATUS_PROTOCOL] = CHAN_EPROTO,
		[STATUS_SHUTTING_DOWN] = CHAN_ESHUTDOWN,
		[STATUS_STARTED] = CHAN_EUNKNOWN,	/* an interim reply, never a result */
		/* cluster replies (PROTOCOL.md §17): a front follows MOVED, so one left over is an error */
		[STATUS_MOVED] = CHAN_EUNAVAILABLE,
		[STATUS_UNAVAILABLE] = CHAN_EUNAVAILABLE,
		[STATUS_STORAGE] = CHAN_ESTORAGE,
	};

	if (status < 0 || status > STATUS_MAX)
		return CHAN_EUNKNOWN;
	if (try && status == STATUS_DEADLINE_EXCEEDED)
		return CHAN_EWOULDBLOCK;
	return map[status];
}

/* ---- handles and values ----------------------------------------------------------- */

static int
handle_new(chan_t **out, chan_conn_t *conn, const char *name, size_t len)
{
	chan_t *ch;

	if ((ch = calloc(1, sizeof *ch)) == NULL || (ch->name = malloc(len + 1)) == NULL) {
		free(ch);
		return CHAN_ENOMEM;
	}
	memcpy(ch->name, name, len);
	ch->name[len] = '\0';
	ch->name_len = len;
	ch->conn = conn;
	pthread_mutex_init(&ch->lock, NULL);
	conn_ref(conn);
	*out = ch;
	return CHAN_OK;
}

int
chan_handle_new(chan_t **out, chan_conn_t *conn, const char *name)
{
	if (out == NULL || conn == NULL || name == NULL)
		return CHAN_EINVAL;
	return handle_new(out, conn, name, strlen(name));
}

const char *
chan_name(const chan_t *ch)
{
	return ch ? ch->name : NULL;
}

chan_conn_t *
chan_conn(const chan_t *ch)
{
	return ch ? ch->conn : NULL;
}

int
chan_owner_conn(chan_ctx_t *ctx, chan_t *ch, chan_conn_t **out)
{
	return cluster_conn_for(ch->conn, ctx, ch->name, ch->name_len, &ch->route, out);
}

void
chan_free(chan_t *ch)
{
	if (ch == NULL)
		return;
	conn_unref(ch->conn);
	pthread_mutex_destroy(&ch->lock);
	free(ch->err_msg);
	free(ch->name);
	free(ch);
}

int
chan_close_err_copy(const struct proto_close_err *pe, uint64_t *code, char **msg)
{
	if ((*msg = malloc(pe->msg_len + 1)) == NULL)
		return CHAN_ENOMEM;
	if (pe->msg_len)
		memcpy(*msg, pe->msg, pe->msg_len);
	(*msg)[pe->msg_len] = '\0';
	*code = pe->code;
	return CHAN_OK;
}

bool
chan_close_err_out(const char *src, uint64_t src_code, uint64_t *code, char *msg, size_t cap)
{
	if (code)
		*code = src_code;
	if (msg && cap > 0)
		snprintf(msg, cap, "%s", src);
	return true;
}

/* A receive through ch returned ok false: record what it said of the close error. */
int
chan_note_close_err(chan_t *ch, const struct proto_close_err *pe)
{
	char *msg = NULL;
	uint64_t code = 0;

	if (pe->set && chan_close_err_copy(pe, &code, &msg) != CHAN_OK)
		return CHAN_ENOMEM;
	pthread_mutex_lock(&ch->lock);
	free(ch->err_msg);
	ch->err_set = pe->set;
	ch->err_code = code;
	ch->err_msg = msg;
	pthread_mutex_unlock(&ch->lock);
	return CHAN_OK;
}

bool
chan_err(chan_t *ch, uint64_t *code, char *msg, size_t cap)
{
	bool set;

	if (ch == NULL)
		return false;
	pthread_mutex_lock(&ch->lock);
	if ((set = ch->err_set))
		chan_close_err_out(ch->err_msg, ch->err_code, code, msg, cap);
	pthread_mutex_unlock(&ch->lock);
	return set;
}

void
chan_value_clear(chan_value_t *v)
{
	if (v == NULL)
		return;
	free(v->data);
	chan_free(v->chan);
	memset(v, 0, sizeof *v);
}

int
chan_value_from_proto(chan_conn_t *conn, const struct proto_value *pv, chan_value_t *v)
{
	chan_value_t tmp = { .kind = CHAN_VALUE_NIL };
	int rc = CHAN_OK;

	switch (pv->kind) {
	case VALUE_NONE:
		break;
	case VALUE_BIN:
	case VALUE_ERROR:	/* a failed stage or bridge (§7): its message, as an error */
		tmp.kind = pv->kind == VALUE_BIN ? CHAN_VALUE_BYTES : CHAN_VALUE_ERROR;
		if (v == NULL)
			break;		/* the caller does not take it: no copy to make and free */
		if ((tmp.data = malloc(pv->len + 1)) == NULL)
			return CHAN_ENOMEM;
		if (pv->len)
			memcpy(tmp.data, pv->data, pv->len);
		((char *)tmp.data)[pv->len] = '\0';
		tmp.len = pv->len;
		break;
	case VALUE_CHANREF:
		tmp.kind = CHAN_VALUE_CHAN;
		rc = handle_new(&tmp.chan, conn, (const char *)pv->data, pv->len);
		break;
	default:
		return CHAN_EPROTO;
	}
	if (rc == CHAN_OK && v != NULL)
		*v = tmp;
	else
		chan_value_clear(&tmp);
	return rc;
}

/* ---- one-name operations ------------------------------------------------------- */

struct name_arg {
	uint64_t op;
	const char *name;
	size_t len;
};

static int
enc_name(struct proto_out *o, uint64_t id, int64_t wait_us, void *arg)
{
	struct name_arg *a = arg;

	return proto_req_name(o, a->op, id, wait_us, a->name, a->len);
}

/* An [op, id, wait, name] call; *r holds an OK reply when 0 is returned. */
static int
name_call(chan_ctx_t *ctx, chan_t *ch, uint64_t op, enum call_wait how, struct call_reply *r)
{
	struct name_arg a;
	int rc;

	if (ch == NULL)
		return CHAN_EINVAL;
	a = (struct name_arg){ op, ch->name, ch->name_len };
	if ((rc = conn_call(ch->conn, ctx, op, how, enc_name, &a, r)) != 0)
		return rc;
	if ((rc = call_status_err(r->rep.status, how == CALL_TRY)) != 0)
		call_reply_free(r);
	return rc;
}

/* Calls whose result is one number. */
static int
uint_call(chan_ctx_t *ctx, chan_t *ch, uint64_t op, size_t *out)
{
	struct call_reply r;
	int rc;

	if ((rc = name_call(ctx, ch, op, CALL_NOWAIT, &r)) != 0)
		return rc;
	if (out)
		*out = (size_t)r.rep.n;
	call_reply_free(&r);
	return CHAN_OK;
}

int
chan_len(chan_ctx_t *ctx, chan_t *ch, size_t *out)
{
	return uint_call(ctx, ch, OP_LEN, out);
}

int
chan_cap(chan_ctx_t *ctx, chan_t *ch, size_t *out)
{
	return uint_call(ctx, ch, OP_CAP, out);
}

int
chan_delete(chan_ctx_t *ctx, chan_t *ch, size_t *discarded)
{
	return uint_call(ctx, ch, OP_DELETE, discarded);
}

int
chan_close(chan_ctx_t *ctx, chan_t *ch)
{
	struct call_reply r;
	int rc;

	if ((rc = name_call(ctx, ch, OP_CLOSE, CALL_NOWAIT, &r)) == 0)
		call_reply_free(&r);
	return rc;
}

struct close_arg {
	const chan_t *ch;
	struct proto_close_err err;
};

static int
enc_close(struct proto_out *o, uint64_t id, int64_t wait_us, void *arg)
{
	struct close_arg *a = arg;

	return proto_req_close(o, id, wait_us, a->ch->name, a->ch->name_len, &a->err);
}

int
chan_close_err(chan_ctx_t *ctx, chan_t *ch, uint64_t code, const char *msg)
{
	struct close_arg a;
	struct call_reply r;
	int rc;

	if (ch == NULL || (msg != NULL && strlen(msg) > CHAN_CLOSE_MSG_MAX))
		return CHAN_EINVAL;
	a = (struct close_arg){ ch, { .set = true, .code = code, .msg = msg ? msg : "",
	    .msg_len = msg ? (uint32_t)strlen(msg) : 0 } };
	if ((rc = conn_call(ch->conn, ctx, OP_CLOSE, CALL_NOWAIT, enc_close, &a, &r)) != 0)
		return rc;
	rc = call_status_err(r.rep.status, false);
	call_reply_free(&r);
	return rc;
}

int
chan_info(chan_ctx_t *ctx, chan_t *ch, chan_info_t *out)
{
	struct call_reply r;
	const struct proto_chan_info *i = &r.rep.info;
	int rc;

	if (out == NULL)
		return CHAN_EINVAL;
	if ((rc = name_call(ctx, ch, OP_INFO, CALL_NOWAIT, &r)) != 0)
		return rc;
	chan_info_from_proto(i, out);
	call_reply_free(&r);
	return CHAN_OK;
}

void
chan_info_from_proto(const struct proto_chan_info *i, chan_info_t *out)
{
	size_t nl = i->name_len < sizeof out->name ? i->name_len : sizeof out->name - 1;

	memset(out, 0, sizeof *out);
	if (nl)
		memcpy(out->name, i->name, nl);
	out->len = (size_t)i->len;
	out->cap = (size_t)i->cap;
	out->closed = i->closed;
	out->anonymous = i->anonymous;
	out->senders = (size_t)i->senders;
	out->receivers = (size_t)i->receivers;
	out->bytes = (size_t)i->bytes;
	if ((out->has_close_error = i->close_err.set)) {
		nl = i->close_err.msg_len < sizeof out->close_message ? i->close_err.msg_len :
		    sizeof out->close_message - 1;
		if (nl)
			memcpy(out->close_message, i->close_err.msg, nl);
		out->close_code = i->close_err.code;
	}
	out->ack_wait_ns = (int64_t)i->ack_wait * CHAN_USEC;
	out->inflight = (size_t)i->inflight;
	out->redelivered = i->redelivered;
	out->dead_lettered = i->dead_lettered;
	out->max_unacked = (uint32_t)i->max_unacked;
	out->max_ack_pending = (uint32_t)i->max_ack_pending;
	out->durable = i->durable;
	out->journal_bytes = i->journal_bytes;
}

int
chan_open(chan_ctx_t *ctx, chan_conn_t *conn, const char *name, chan_t **out)
{
	chan_t *ch;
	struct call_reply r;
	int rc;

	if (out == NULL || conn == NULL || name == NULL)
		return CHAN_EINVAL;
	if ((rc = handle_new(&ch, conn, name, strlen(name))) != 0)
		return rc;
	if ((rc = name_call(ctx, ch, OP_OPEN, CALL_NOWAIT, &r)) != 0) {
		chan_free(ch);
		return rc;
	}
	call_reply_free(&r);
	*out = ch;
	return CHAN_OK;
}

/* ---- make ----------------------------------------------------------------------- */

struct make_arg {
	const char *name;
	size_t len;
	uint64_t cap;
};

static int
enc_make(struct proto_out *o, uint64_t id, int64_t wait_us, void *arg)
{
	struct make_arg *a = arg;

	return proto_req_make(o, id, a->name, a->len, a->cap);
}

int
chan_make(chan_ctx_t *ctx, chan_conn_t *conn, const char *name, size_t cap, chan_t **out)
{
	struct make_arg a = { name, name ? strlen(name) : 0, cap };
	struct call_reply r;
	int rc;

	if (out == NULL || conn == NULL)
		return CHAN_EINVAL;
	if ((rc = conn_call(conn, ctx, OP_MAKE, CALL_NOWAIT, enc_make, &a, &r)) != 0)
		return rc;
	if ((rc = call_status_err(r.rep.status, false)) == 0)
		rc = handle_new(out, conn, r.rep.name, r.rep.name_len);
	call_reply_free(&r);
	return rc;
}

/* ---- send and receive ------------------------------------------------------------- */

struct send_arg {
	const chan_t *ch;
	struct proto_value v;
};

static int
enc_send(struct proto_out *o, uint64_t id, int64_t wait_us, void *arg)
{
	struct send_arg *a = arg;

	return proto_req_send(o, id, wait_us, a->ch->name, a->ch->name_len, &a->v);
}

static int
send_value(chan_ctx_t *ctx, chan_t *ch, const struct proto_value *v, enum call_wait how)
{
	struct send_arg a;
	struct call_reply r;
	int rc;

	if (ch == NULL)
		return CHAN_EINVAL;
	a.ch = ch;
	a.v = *v;
	if ((rc = conn_call(ch->conn, ctx, OP_SEND, how, enc_send, &a, &r)) != 0)
		return rc;
	rc = call_status_err(r.rep.status, how == CALL_TRY);
	call_reply_free(&r);
	return rc;
}

/* The arguments of a send of bytes, checked before anything is queued. */
static int
send_bytes_check(const chan_t *ch, const void *data, size_t len)
{
	if (ch == NULL || (data == NULL && len != 0))
		return CHAN_EINVAL;
	return len > conn_max_value(ch->conn) ? CHAN_ELIMIT : CHAN_OK;
}

static int
send_bytes(chan_ctx_t *ctx, chan_t *ch, const void *data, size_t len, enum call_wait how)
{
	struct proto_value v = { .kind = VALUE_BIN, .data = data, .len = len };
	int rc = send_bytes_check(ch, data, len);

	return rc != CHAN_OK ? rc : send_value(ctx, ch, &v, how);
}

int
chan_send(chan_ctx_t *ctx, chan_t *ch, const void *data, size_t len)
{
	return send_bytes(ctx, ch, data, len, CALL_BUDGET);
}

int
chan_try_send(chan_ctx_t *ctx, chan_t *ch, const void *data, size_t len)
{
	return send_bytes(ctx, ch, data, len, CALL_TRY);
}

int
chan_send_chan(chan_ctx_t *ctx, chan_t *ch, const chan_t *ref)
{
	struct proto_value v;

	if (ref == NULL)
		return CHAN_EINVAL;
	v = (struct proto_value){ .kind = VALUE_CHANREF, .data = (const uint8_t *)ref->name,
	    .len = ref->name_len };
	return send_value(ctx, ch, &v, CALL_BUDGET);
}

static int
recv_value(chan_ctx_t *ctx, chan_t *ch, chan_value_t *v, bool *ok, enum call_wait how)
{
	struct call_reply r;
	int rc;

	if (v)
		memset(v, 0, sizeof *v);
	if ((rc = name_call(ctx, ch, OP_RECV, how, &r)) != 0)
		return rc;
	/* not handed over (out of memory): an ack channel's value stays in flight, back after ack_wait */
	if ((rc = chan_value_from_proto(ch->conn, &r.rep.value, v)) != 0)
		goto done;
	if (r.rep.tag != 0)	/* returned untagged: acked with the next write */
		ack_post(call_reply_conn(ch->conn, &r), &r.rep.tag, 1);
	if (ok)
		*ok = r.rep.ok;
	if (!r.rep.ok && (rc = chan_note_close_err(ch, &r.rep.close_err)) != 0)
		chan_value_clear(v);
done:
	call_reply_free(&r);
	return rc;
}

int
chan_recv(chan_ctx_t *ctx, chan_t *ch, chan_value_t *v, bool *ok)
{
	return recv_value(ctx, ch, v, ok, CALL_BUDGET);
}

int
chan_try_recv(chan_ctx_t *ctx, chan_t *ch, chan_value_t *v, bool *ok)
{
	return recv_value(ctx, ch, v, ok, CALL_TRY);
}

/* ---- asynchronous operations ------------------------------------------------------ */

/* An asynchronous operation: its handle lives in its call's record (conn_call_user). */
struct chan_op {
	struct call *call;
	chan_ctx_t *ctx;		/* a reference: chan_op_wait watches it */
	chan_conn_t *conn;		/* the call's (it holds the reference) */
	uint64_t op;
};
_Static_assert(sizeof(struct chan_op) <= CALL_USER_SIZE, "chan_op_t must fit in a call's user room");

static int
op_submit(chan_ctx_t *ctx, chan_t *ch, uint64_t op, call_encode_fn enc, void *arg,
    chan_op_t **out)
{
	struct call *call;
	chan_conn_t *c = ch->conn, *node = NULL;
	chan_op_t *o;
	int rc;

	ctx = ctx_or_background(ctx);
	/* a front: its owner's connection, found by name (conn_submit would encode the request to read it) */
	if (conn_is_front(c) && (rc = chan_owner_conn(ctx, ch, &node)) != CHAN_OK)
		return rc;
	rc = conn_submit(node != NULL ? node : c, ctx, op, CALL_BUDGET, NULL, WIRE_CORK | WIRE_DEFER, enc,
	    arg, &call);
	conn_unref(node);
	if (rc != 0)
		return rc;
	if (node != NULL)
		conn_call_routed(call, c);
	ctx_ref(ctx);
	o = conn_call_user(call);
	*o = (struct chan_op){ .call = call, .ctx = ctx, .conn = ch->conn, .op = op };
	*out = o;
	return CHAN_OK;
}

int
chan_send_async(chan_ctx_t *ctx, chan_t *ch, const void *data, size_t len, chan_op_t **out)
{
	struct send_arg a = { ch, { .kind = VALUE_BIN, .data = data, .len = len } };
	int rc = out == NULL ? CHAN_EINVAL : send_bytes_check(ch, data, len);

	return rc != CHAN_OK ? rc : op_submit(ctx, ch, OP_SEND, enc_send, &a, out);
}

int
chan_recv_async(chan_ctx_t *ctx, chan_t *ch, chan_op_t **out)
{
	struct name_arg a;

	if (out == NULL || ch == NULL)
		return CHAN_EINVAL;
	a = (struct name_arg){ OP_RECV, ch->name, ch->name_len };
	return op_submit(ctx, ch, OP_RECV, enc_name, &a, out);
}

int
chan_op_wait(chan_op_t *op, chan_value_t *v, bool *ok)
{
	struct call_reply r;
	chan_ctx_t *ctx;
	int rc;

	if (v)
		memset(v, 0, sizeof *v);
	if (ok)
		*ok = false;
	if (op == NULL)
		return CHAN_EINVAL;
	if ((rc = conn_call_next(op->call, op->ctx, &r)) == 0) {
		rc = call_status_err(r.rep.status, false);
		if (rc == 0 && op->op == OP_RECV && (rc = chan_value_from_proto(op->conn, &r.rep.value, v)) == 0 && ok)
			*ok = r.rep.ok;
		if (r.rep.tag != 0 && rc == 0)	/* handed over, untagged (else back after ack_wait) */
			ack_post(conn_call_conn(op->call), &r.rep.tag, 1);
		call_reply_free(&r);
	}
	ctx = op->ctx;
	conn_call_end(op->call);	/* op goes with it */
	chan_ctx_free(ctx);
	return rc;
}
