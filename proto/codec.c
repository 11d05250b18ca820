/*
 * codec.c: op names, framing, and every encoder of proto/PROTOCOL.md
 * but the admin operations' (codec_admin.c; names and values:
 * codec_value.c; decoding: codec_request.c, codec_reply.c).
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <string.h>

#include "codec.h"
#include "codec_int.h"
#include "mpread.h"

static const char *const op_names[] = {
	[OP_HELLO] = "HELLO", [OP_PING] = "PING", [OP_MAKE] = "MAKE",
	[OP_OPEN] = "OPEN", [OP_SEND] = "SEND", [OP_RECV] = "RECV",
	[OP_CLOSE] = "CLOSE", [OP_LEN] = "LEN", [OP_CAP] = "CAP",
	[OP_SELECT] = "SELECT", [OP_CANCEL] = "CANCEL", [OP_DELETE] = "DELETE",
	[OP_INFO] = "INFO", [OP_STATS] = "STATS", [OP_CHANNELS] = "CHANNELS",
	[OP_CLIENTS] = "CLIENTS", [OP_WAITERS] = "WAITERS", [OP_UNBLOCK] = "UNBLOCK",
	[OP_SHUTDOWN] = "SHUTDOWN", [OP_STREAM] = "STREAM", [OP_CREDIT] = "CREDIT",
	[OP_WANT] = "WANT", [OP_ACK] = "ACK", [OP_NACK] = "NACK", [OP_TOUCH] = "TOUCH",
	[OP_INFLIGHT] = "INFLIGHT", [OP_CLUSTER_NODES] = "CLUSTER_NODES", [OP_XSETTLE] = "XSETTLE", [OP_OR] = "OR", [OP_OR_DONE] = "OR_DONE",
	[OP_TEE] = "TEE", [OP_BRIDGE] = "BRIDGE", [OP_FAN_IN] = "FAN_IN",
	[OP_REPEAT] = "REPEAT", [OP_TAKE] = "TAKE", [OP_FAN_OUT] = "FAN_OUT",
};

/* Arguments each op takes after [op, id, wait]. */
const uint8_t proto_op_arity[OP_MAX + 1] = {
	[OP_HELLO] = 3, [OP_PING] = 0, [OP_MAKE] = 2, [OP_OPEN] = 1,
	[OP_SEND] = 2, [OP_RECV] = 1, [OP_CLOSE] = 1, [OP_LEN] = 1,
	[OP_CAP] = 1, [OP_SELECT] = 2, [OP_CANCEL] = 1, [OP_DELETE] = 1,
	[OP_INFO] = 1, [OP_STATS] = 0, [OP_CHANNELS] = 2, [OP_CLIENTS] = 0,
	[OP_WAITERS] = 1, [OP_UNBLOCK] = 2, [OP_SHUTDOWN] = 0,
	[OP_STREAM] = 2, [OP_CREDIT] = 2, [OP_WANT] = 1,
	[OP_ACK] = 1, [OP_NACK] = 2, [OP_TOUCH] = 1, [OP_INFLIGHT] = 2,
	[OP_CLUSTER_NODES] = 0, [OP_XSETTLE] = 2,
	[OP_OR] = 3, [OP_OR_DONE] = 3, [OP_TEE] = 3, [OP_BRIDGE] = 3,
	[OP_FAN_IN] = 3, [OP_REPEAT] = 3, [OP_TAKE] = 4, [OP_FAN_OUT] = 6,
};

const char *
proto_op_name(uint64_t op)
{
	if (op == 0 || op > OP_MAX)
		return NULL;
	return op_names[op];
}

long
proto_frame_split(const uint8_t *buf, size_t avail, size_t max_frame,
    const uint8_t **body, size_t *body_len, const char **why)
{
	uint32_t len;

	if (avail < PROTO_FRAME_HDR)
		return 0;
	len = proto_frame_len(buf);
	if (len == 0) {
		*why = "frame length is 0";
		return -1;
	}
	if (len > max_frame) {
		*why = "frame length is larger than max_frame";
		return -1;
	}
	if (avail - PROTO_FRAME_HDR < len)
		return 0;
	*body = buf + PROTO_FRAME_HDR;
	*body_len = len;
	return (long)(PROTO_FRAME_HDR + len);
}

/* ---- encoding ----------------------------------------------------------------- */

void
proto_out_init(struct proto_out *o)
{
	msgpack_sbuffer_init(&o->sb);
	msgpack_packer_init(&o->pk, &o->sb, msgpack_sbuffer_write);
	o->frame = 0;
	o->last_id = 0;
	o->last_status = 0;
}

void
proto_out_destroy(struct proto_out *o)
{
	msgpack_sbuffer_destroy(&o->sb);
}

void
proto_out_reset(struct proto_out *o)
{
	o->sb.size = 0;
}

void
proto_out_truncate(struct proto_out *o, size_t len)
{
	if (len < o->sb.size)
		o->sb.size = len;
}

void
proto_out_consume(struct proto_out *o, size_t n)
{
	if (n >= o->sb.size) {
		o->sb.size = 0;
		o->frame = 0;
		return;
	}
	memmove(o->sb.data, o->sb.data + n, o->sb.size - n);
	o->sb.size -= n;
	o->frame = o->frame > n ? o->frame - n : 0;
}

static int
frame_begin(struct proto_out *o)
{
	static const char zero[PROTO_FRAME_HDR];

	o->frame = o->sb.size;
	return msgpack_sbuffer_write(&o->sb, zero, sizeof zero);
}

/* Patch the length in, or drop the partial frame when rc says it failed. */
int
codec_frame_end(struct proto_out *o, int rc)
{
	uint8_t *h;
	size_t body;

	if (rc != 0) {
		o->sb.size = o->frame;
		return -1;
	}
	h = (uint8_t *)o->sb.data + o->frame;
	body = o->sb.size - o->frame - PROTO_FRAME_HDR;
	h[0] = (uint8_t)(body >> 24);
	h[1] = (uint8_t)(body >> 16);
	h[2] = (uint8_t)(body >> 8);
	h[3] = (uint8_t)body;
	return 0;
}

int
codec_pack_str(msgpack_packer *pk, const char *s, size_t len)
{
	return msgpack_pack_str(pk, len) | msgpack_pack_str_body(pk, s, len);
}

int
codec_pack_cstr(msgpack_packer *pk, const char *s)
{
	return codec_pack_str(pk, s, strlen(s));
}

int
codec_pack_name(msgpack_packer *pk, const char *name, size_t len)
{
	return name ? codec_pack_str(pk, name, len) : msgpack_pack_nil(pk);
}

static int
pack_wait(msgpack_packer *pk, int64_t wait_us)
{
	return wait_us < 0 ? msgpack_pack_nil(pk) : msgpack_pack_int64(pk, wait_us);
}

static int
pack_raw(msgpack_packer *pk, const uint8_t *raw, size_t len)
{
	return raw ? msgpack_sbuffer_write(pk->data, (const char *)raw, len) : msgpack_pack_nil(pk);
}

static int
pack_value(msgpack_packer *pk, const struct proto_value *v)
{
	switch (v->kind) {
	case VALUE_BIN:
		return msgpack_pack_bin(pk, v->len) | msgpack_pack_bin_body(pk, v->data, v->len);
	case VALUE_CHANREF:
		return msgpack_pack_ext(pk, v->len, PROTO_EXT_CHANREF) |
		    msgpack_pack_ext_body(pk, v->data, v->len);
	case VALUE_ERROR:
		return msgpack_pack_ext(pk, v->len, PROTO_EXT_ERROR) |
		    msgpack_pack_ext_body(pk, v->data, v->len);
	default:
		return msgpack_pack_nil(pk);
	}
}

/* [op, id, wait, ...] with nargs arguments to follow. */
int
codec_req_head(struct proto_out *o, uint64_t op, uint64_t id, int64_t wait_us, size_t nargs)
{
	return frame_begin(o) | msgpack_pack_array(&o->pk, 3 + nargs) |
	    msgpack_pack_uint64(&o->pk, op) | msgpack_pack_uint64(&o->pk, id) |
	    pack_wait(&o->pk, wait_us);
}

int
proto_req_hello(struct proto_out *o, uint64_t id, uint64_t version, const char *client,
    const char *token)
{
	int rc = codec_req_head(o, OP_HELLO, id, PROTO_WAIT_FOREVER, 3) |
	    msgpack_pack_uint64(&o->pk, version) | codec_pack_cstr(&o->pk, client ? client : "");

	if (token)
		rc |= msgpack_pack_map(&o->pk, 1) | codec_pack_cstr(&o->pk, "token") | codec_pack_cstr(&o->pk, token);
	else
		rc |= msgpack_pack_nil(&o->pk);
	return codec_frame_end(o, rc);
}

int
proto_req_hello_caps(struct proto_out *o, uint64_t id, uint64_t version, const char *client,
    const char *token, bool moved)
{
	int rc = codec_req_head(o, OP_HELLO, id, PROTO_WAIT_FOREVER, 4) |
	    msgpack_pack_uint64(&o->pk, version) | codec_pack_cstr(&o->pk, client ? client : "");

	if (token)
		rc |= msgpack_pack_map(&o->pk, 1) | codec_pack_cstr(&o->pk, "token") | codec_pack_cstr(&o->pk, token);
	else
		rc |= msgpack_pack_nil(&o->pk);
	rc |= msgpack_pack_map(&o->pk, 1) | codec_pack_cstr(&o->pk, "moved") |
	    (moved ? msgpack_pack_true(&o->pk) : msgpack_pack_false(&o->pk));
	return codec_frame_end(o, rc);
}

int
proto_req_ping(struct proto_out *o, uint64_t id)
{
	return codec_frame_end(o, codec_req_head(o, OP_PING, id, PROTO_WAIT_FOREVER, 0));
}

int
proto_req_make(struct proto_out *o, uint64_t id, const char *name, size_t len, uint64_t cap)
{
	return codec_frame_end(o, codec_req_head(o, OP_MAKE, id, PROTO_WAIT_FOREVER, 2) |
	    codec_pack_name(&o->pk, name, len) | msgpack_pack_uint64(&o->pk, cap));
}

int
proto_req_make_opts(struct proto_out *o, uint64_t id, const char *name, size_t len, uint64_t cap,
    const struct proto_delivery *d)
{
	msgpack_packer *pk = &o->pk;
	int rc;

	if (!d->on && !d->durable)
		return proto_req_make(o, id, name, len, cap);
	rc = codec_req_head(o, OP_MAKE, id, PROTO_WAIT_FOREVER, 3) | codec_pack_name(pk, name, len) |
	    msgpack_pack_uint64(pk, cap) | msgpack_pack_map(pk, (d->on ? 3 : 0) +
	    (d->on && d->dead_letter != NULL ? 1 : 0) + (d->on && d->max_ack_pending != 0 ? 1 : 0) +
	    (d->durable ? 1 : 0));
	if (d->durable)
		rc |= codec_pack_cstr(pk, "durable") | msgpack_pack_true(pk);
	if (!d->on)
		return codec_frame_end(o, rc);
	rc |= codec_pack_cstr(pk, "ack_wait") | msgpack_pack_uint64(pk, d->ack_wait_us) |
	    codec_pack_cstr(pk, "max_deliver") | msgpack_pack_uint64(pk, d->max_deliver) |
	    codec_pack_cstr(pk, "max_unacked") | msgpack_pack_uint64(pk, d->max_unacked);
	/* sent only when set: a server from before it would refuse the unknown option */
	if (d->max_ack_pending != 0)
		rc |= codec_pack_cstr(pk, "max_ack_pending") | msgpack_pack_uint64(pk, d->max_ack_pending);
	if (d->dead_letter != NULL)
		rc |= codec_pack_kv_str(pk, "dead_letter", d->dead_letter, d->dead_letter_len);
	return codec_frame_end(o, rc);
}

int
proto_req_ack(struct proto_out *o, uint64_t id, const uint64_t *tags, size_t n)
{
	int rc = codec_req_head(o, OP_ACK, id, PROTO_WAIT_FOREVER, 1) | msgpack_pack_array(&o->pk, n);

	for (size_t i = 0; i < n; i++)
		rc |= msgpack_pack_uint64(&o->pk, tags[i]);
	return codec_frame_end(o, rc);
}

int
proto_req_nack(struct proto_out *o, uint64_t id, uint64_t tag, int64_t delay_us)
{
	return codec_frame_end(o, codec_req_head(o, OP_NACK, id, PROTO_WAIT_FOREVER, 2) |
	    msgpack_pack_uint64(&o->pk, tag) | msgpack_pack_int64(&o->pk, delay_us));
}

int
proto_req_touch(struct proto_out *o, uint64_t id, uint64_t tag)
{
	return codec_frame_end(o, codec_req_head(o, OP_TOUCH, id, PROTO_WAIT_FOREVER, 1) |
	    msgpack_pack_uint64(&o->pk, tag));
}

int
proto_req_inflight(struct proto_out *o, uint64_t id, const char *name, size_t len, uint64_t limit)
{
	return codec_frame_end(o, codec_req_head(o, OP_INFLIGHT, id, PROTO_WAIT_FOREVER, 2) |
	    codec_pack_name(&o->pk, name, len) | msgpack_pack_uint64(&o->pk, limit));
}

int
proto_req_name(struct proto_out *o, uint64_t op, uint64_t id, int64_t wait_us, const char *name,
    size_t len)
{
	return codec_frame_end(o, codec_req_head(o, op, id, wait_us, 1) | codec_pack_name(&o->pk, name, len));
}

/* A close error, [code, message]. */
static int
pack_close_err(msgpack_packer *pk, const struct proto_close_err *err)
{
	return msgpack_pack_array(pk, 2) | msgpack_pack_uint64(pk, err->code) |
	    codec_pack_str(pk, err->msg, err->msg_len);
}

int
proto_req_close(struct proto_out *o, uint64_t id, int64_t wait_us, const char *name, size_t len,
    const struct proto_close_err *err)
{
	bool with = err != NULL && err->set;

	return codec_frame_end(o, codec_req_head(o, OP_CLOSE, id, wait_us, with ? 2 : 1) | codec_pack_name(&o->pk, name, len) |
	    (with ? pack_close_err(&o->pk, err) : 0));
}

int
proto_req_send(struct proto_out *o, uint64_t id, int64_t wait_us, const char *name, size_t len,
    const struct proto_value *value)
{
	return codec_frame_end(o, codec_req_head(o, OP_SEND, id, wait_us, 2) | codec_pack_name(&o->pk, name, len) |
	    pack_value(&o->pk, value));
}

int
proto_req_select(struct proto_out *o, uint64_t id, int64_t wait_us,
    const struct proto_case *cases, size_t ncases, bool has_default)
{
	return proto_req_select_hold(o, id, wait_us, cases, ncases, has_default, false, 0);
}

int
proto_req_xsettle(struct proto_out *o, uint64_t id, uint64_t target, bool keep)
{
	return codec_frame_end(o, codec_req_head(o, OP_XSETTLE, id, PROTO_WAIT_FOREVER, 2) |
	    msgpack_pack_uint64(&o->pk, target) |
	    (keep ? msgpack_pack_true(&o->pk) : msgpack_pack_false(&o->pk)));
}

int
proto_req_select_hold(struct proto_out *o, uint64_t id, int64_t wait_us,
    const struct proto_case *cases, size_t ncases, bool has_default, int hold, uint32_t firm)
{
	int rc = codec_req_head(o, OP_SELECT, id, wait_us, !hold ? 2 : firm ? 4 : 3) |
	    msgpack_pack_array(&o->pk, ncases);

	for (size_t i = 0; i < ncases; i++) {
		const struct proto_case *c = &cases[i];

		rc |= msgpack_pack_array(&o->pk, c->dir ? 3 : 2) | msgpack_pack_uint8(&o->pk, c->dir) |
		    codec_pack_name(&o->pk, c->name, c->name_len);
		if (c->dir)
			rc |= pack_value(&o->pk, &c->value);
	}
	rc |= has_default ? msgpack_pack_true(&o->pk) : msgpack_pack_false(&o->pk);
	if (hold == PROTO_HOLD_PARKED)
		rc |= msgpack_pack_uint8(&o->pk, PROTO_HOLD_PARKED);
	else if (hold)
		rc |= msgpack_pack_true(&o->pk);
	if (hold && firm)
		rc |= msgpack_pack_uint32(&o->pk, firm);
	return codec_frame_end(o, rc);
}

bool
proto_op_deferrable(uint64_t op)
{
	return op == OP_SEND || op == OP_RECV || op == OP_SELECT || op == OP_CANCEL ||
	    op == OP_CREDIT || op == OP_ACK || op == OP_XSETTLE;
}

/* The library's requests are fixarrays with a fixint op: the op is the body's second byte. */
int
proto_req_defer_last(struct proto_out *o)
{
	uint8_t *op = (uint8_t *)o->sb.data + o->frame + PROTO_FRAME_HDR + 1;

	if (o->sb.size < o->frame + PROTO_FRAME_HDR + 2 || (op[-1] & 0xf0) != 0x90 ||
	    !proto_op_deferrable(*op))
		return -1;
	*op |= PROTO_OP_DEFER;
	return 0;
}

int
proto_req_want(struct proto_out *o, uint64_t id, uint64_t target)
{
	return codec_frame_end(o, codec_req_head(o, OP_WANT, id, PROTO_WAIT_FOREVER, 1) |
	    msgpack_pack_uint64(&o->pk, target));
}

int
proto_req_cancel(struct proto_out *o, uint64_t id, uint64_t target)
{
	return codec_frame_end(o, codec_req_head(o, OP_CANCEL, id, PROTO_WAIT_FOREVER, 1) |
	    msgpack_pack_uint64(&o->pk, target));
}

/* [id, status, ...] with nres results to follow. */
int
codec_rep_head(struct proto_out *o, uint64_t id, int status, size_t nres)
{
	o->last_id = id;
	o->last_status = status;
	return frame_begin(o) | msgpack_pack_array(&o->pk, 2 + nres) |
	    msgpack_pack_uint64(&o->pk, id) | msgpack_pack_int(&o->pk, status);
}

int
proto_rep_ok(struct proto_out *o, uint64_t id)
{
	return codec_frame_end(o, codec_rep_head(o, id, STATUS_OK, 0));
}

int
proto_rep_error(struct proto_out *o, uint64_t id, int status, const char *msg)
{
	return codec_frame_end(o, codec_rep_head(o, id, status, 1) | codec_pack_cstr(&o->pk, msg));
}

int
proto_rep_case_error(struct proto_out *o, uint64_t id, int status, const char *msg, int64_t index)
{
	return codec_frame_end(o, codec_rep_head(o, id, status, 2) | codec_pack_cstr(&o->pk, msg) |
	    msgpack_pack_int64(&o->pk, index));
}

int
proto_rep_uint(struct proto_out *o, uint64_t id, uint64_t n)
{
	return codec_frame_end(o, codec_rep_head(o, id, STATUS_OK, 1) | msgpack_pack_uint64(&o->pk, n));
}

int
proto_rep_make(struct proto_out *o, uint64_t id, const char *name, size_t len, uint64_t cap,
    bool created)
{
	return codec_frame_end(o, codec_rep_head(o, id, STATUS_OK, 3) | codec_pack_str(&o->pk, name, len) |
	    msgpack_pack_uint64(&o->pk, cap) |
	    (created ? msgpack_pack_true(&o->pk) : msgpack_pack_false(&o->pk)));
}

int
proto_rep_recv(struct proto_out *o, uint64_t id, const uint8_t *raw, size_t raw_len, bool ok)
{
	return codec_frame_end(o, codec_rep_head(o, id, STATUS_OK, 2) | pack_raw(&o->pk, raw, raw_len) |
	    (ok ? msgpack_pack_true(&o->pk) : msgpack_pack_false(&o->pk)));
}

int
proto_rep_select(struct proto_out *o, uint64_t id, int64_t index, const uint8_t *raw,
    size_t raw_len, bool ok)
{
	return codec_frame_end(o, codec_rep_head(o, id, STATUS_OK, 3) | msgpack_pack_int64(&o->pk, index) |
	    pack_raw(&o->pk, raw, raw_len) |
	    (ok ? msgpack_pack_true(&o->pk) : msgpack_pack_false(&o->pk)));
}

int
proto_rep_closed_err(struct proto_out *o, uint64_t id, int64_t index,
    const struct proto_close_err *err)
{
	msgpack_packer *pk = &o->pk;

	return codec_frame_end(o, codec_rep_head(o, id, STATUS_OK, index < 0 ? 3 : 4) |
	    (index < 0 ? 0 : msgpack_pack_int64(pk, index)) | msgpack_pack_nil(pk) |
	    msgpack_pack_false(pk) | pack_close_err(pk, err));
}

/*
 * The reply another node gave a select case, re-encoded for this node's
 * client: under index, and under tag (this node's; 0: none) for the owner's.
 */
int
proto_rep_case(struct proto_out *o, uint64_t id, int64_t index, const struct proto_reply *rep,
    uint64_t tag)
{
	bool none = rep->value.kind == VALUE_NONE;

	if (rep->close_err.set)
		return proto_rep_closed_err(o, id, index, &rep->close_err);
	if (tag != 0)
		return proto_rep_select_ack(o, id, index, rep->value.raw, rep->value.raw_len, tag,
		    rep->count);
	return proto_rep_select(o, id, index, none ? NULL : rep->value.raw, none ? 0 : rep->value.raw_len,
	    rep->ok);
}

int
proto_rep_recv_ack(struct proto_out *o, uint64_t id, const uint8_t *raw, size_t raw_len,
    uint64_t tag, uint64_t count)
{
	return codec_frame_end(o, codec_rep_head(o, id, STATUS_OK, 4) | pack_raw(&o->pk, raw, raw_len) |
	    msgpack_pack_true(&o->pk) | msgpack_pack_uint64(&o->pk, tag) |
	    msgpack_pack_uint64(&o->pk, count));
}

int
proto_rep_select_ack(struct proto_out *o, uint64_t id, int64_t index, const uint8_t *raw,
    size_t raw_len, uint64_t tag, uint64_t count)
{
	return codec_frame_end(o, codec_rep_head(o, id, STATUS_OK, 5) | msgpack_pack_int64(&o->pk, index) |
	    pack_raw(&o->pk, raw, raw_len) | msgpack_pack_true(&o->pk) |
	    msgpack_pack_uint64(&o->pk, tag) | msgpack_pack_uint64(&o->pk, count));
}

int
codec_pack_kv_uint(msgpack_packer *pk, const char *k, uint64_t v)
{
	return codec_pack_cstr(pk, k) | msgpack_pack_uint64(pk, v);
}

int
codec_pack_kv_str(msgpack_packer *pk, const char *k, const char *s, size_t len)
{
	return codec_pack_cstr(pk, k) | codec_pack_str(pk, s, len);
}

static int
pack_kv_bool(msgpack_packer *pk, const char *k, bool v)
{
	return codec_pack_cstr(pk, k) | (v ? msgpack_pack_true(pk) : msgpack_pack_false(pk));
}

int
proto_rep_hello(struct proto_out *o, uint64_t id, const struct proto_hello_info *h)
{
	msgpack_packer *pk = &o->pk;

	return codec_frame_end(o, codec_rep_head(o, id, STATUS_OK, 1) | msgpack_pack_map(pk, 8) |
	    codec_pack_kv_uint(pk, "version", h->version) |
	    codec_pack_kv_str(pk, "server", h->server, h->server_len) |
	    codec_pack_kv_uint(pk, "max_frame", h->max_frame) |
	    codec_pack_kv_uint(pk, "max_value", h->max_value) |
	    codec_pack_kv_uint(pk, "max_pending", h->max_pending) |
	    codec_pack_kv_uint(pk, "max_select_cases", h->max_select_cases) |
	    codec_pack_kv_uint(pk, "max_stream_credit", h->max_stream_credit) |
	    codec_pack_kv_uint(pk, "max_waiters_per_connection", h->max_waiters_per_connection));
}

int
proto_rep_info(struct proto_out *o, uint64_t id, const struct proto_chan_info *i)
{
	return codec_frame_end(o, codec_rep_head(o, id, STATUS_OK, 1) | proto_pack_chan_info(o, i));
}

int
proto_pack_chan_info(struct proto_out *o, const struct proto_chan_info *i)
{
	msgpack_packer *pk = &o->pk;
	int rc;

	/* a plain channel's map has 8 keys, one more for a close error, six more on an ack channel */
	rc = msgpack_pack_map(pk, 8 + (i->close_err.set ? 1 : 0) + (i->ack_wait != 0 ? 6 : 0) +
	    (i->durable ? 2 : 0)) |
	    codec_pack_kv_str(pk, "name", i->name, i->name_len) |
	    codec_pack_kv_uint(pk, "len", i->len) | codec_pack_kv_uint(pk, "cap", i->cap) |
	    pack_kv_bool(pk, "closed", i->closed) | pack_kv_bool(pk, "anonymous", i->anonymous) |
	    codec_pack_kv_uint(pk, "senders", i->senders) | codec_pack_kv_uint(pk, "receivers", i->receivers) |
	    codec_pack_kv_uint(pk, "bytes", i->bytes);
	if (i->close_err.set)
		rc |= codec_pack_cstr(pk, "close_error") | pack_close_err(pk, &i->close_err);
	if (i->ack_wait != 0)
		rc |= codec_pack_kv_uint(pk, "ack_wait", i->ack_wait) |
		    codec_pack_kv_uint(pk, "inflight", i->inflight) |
		    codec_pack_kv_uint(pk, "redelivered", i->redelivered) |
		    codec_pack_kv_uint(pk, "dead_lettered", i->dead_lettered) |
		    codec_pack_kv_uint(pk, "max_unacked", i->max_unacked) |
		    codec_pack_kv_uint(pk, "max_ack_pending", i->max_ack_pending);
	if (i->durable)
		rc |= pack_kv_bool(pk, "durable", true) | codec_pack_kv_uint(pk, "journal_bytes", i->journal_bytes);
	return rc;
}

int
proto_pack_inflight(struct proto_out *o, const struct proto_inflight_info *i)
{
	msgpack_packer *pk = &o->pk;

	return msgpack_pack_map(pk, 4) | codec_pack_kv_uint(pk, "client", i->client) |
	    codec_pack_kv_uint(pk, "tag", i->tag) | codec_pack_kv_uint(pk, "count", i->count) |
	    codec_pack_kv_uint(pk, "age_ms", i->age_ms);
}

int
proto_value_encode(struct proto_out *o, const struct proto_value *v)
{
	size_t start = o->sb.size;

	if (pack_value(&o->pk, v) != 0) {
		o->sb.size = start;
		return -1;
	}
	return 0;
}

/* ---- links (§12) ------------------------------------------------------------- */

static int
pack_link_outs(msgpack_packer *pk, const struct proto_request *l)
{
	int rc;

	if (l->nouts == 0)
		return msgpack_pack_nil(pk);
	rc = msgpack_pack_array(pk, l->nouts);
	for (uint32_t i = 0; i < l->nouts; i++)
		rc |= msgpack_pack_array(pk, 2) | codec_pack_name(pk, l->outs[i].name, l->outs[i].name_len) |
		    msgpack_pack_uint64(pk, l->outs[i].cap);
	return rc;
}

static int
pack_link_list(msgpack_packer *pk, const struct proto_request *l)
{
	int rc = msgpack_pack_array(pk, l->ncases);

	for (uint32_t i = 0; i < l->ncases; i++)
		rc |= l->cases[i].dir ? pack_value(pk, &l->cases[i].value) :
		    codec_pack_name(pk, l->cases[i].name, l->cases[i].name_len);
	return rc;
}

int
proto_req_link(struct proto_out *o, uint64_t id, int64_t wait_us, const struct proto_request *l)
{
	msgpack_packer *pk = &o->pk;
	int rc;

	if (!proto_op_is_link(l->op))
		return -1;
	rc = codec_req_head(o, l->op, id, wait_us, proto_op_arity[l->op]) | codec_pack_name(pk, l->done, l->done_len) |
	    pack_link_outs(pk, l);
	if (l->op == OP_OR || l->op == OP_FAN_IN || l->op == OP_REPEAT)
		return codec_frame_end(o, rc | pack_link_list(pk, l));
	rc |= codec_pack_name(pk, l->name, l->name_len);
	if (l->op == OP_TAKE)
		rc |= msgpack_pack_uint64(pk, l->count);
	if (l->op == OP_FAN_OUT)
		rc |= codec_pack_str(pk, l->stage, l->stage_len) | msgpack_pack_uint64(pk, l->count) |
		    (l->ordered ? msgpack_pack_true(pk) : msgpack_pack_false(pk));
	return codec_frame_end(o, rc);
}

int
proto_rep_started(struct proto_out *o, uint64_t id, const char *const *names, const size_t *lens,
    size_t n)
{
	int rc = codec_rep_head(o, id, STATUS_STARTED, 1) | msgpack_pack_array(&o->pk, n);

	for (size_t i = 0; i < n; i++)
		rc |= codec_pack_str(&o->pk, names[i], lens[i]);
	return codec_frame_end(o, rc);
}

/* ---- streams (§14) ------------------------------------------------------------- */

int
proto_req_stream(struct proto_out *o, uint64_t id, int64_t wait_us, const struct proto_case *names,
    size_t n, uint64_t credit)
{
	int rc = codec_req_head(o, OP_STREAM, id, wait_us, 2) | msgpack_pack_array(&o->pk, n);

	for (size_t i = 0; i < n; i++)
		rc |= codec_pack_name(&o->pk, names[i].name, names[i].name_len);
	return codec_frame_end(o, rc | msgpack_pack_uint64(&o->pk, credit));
}

int
proto_req_credit(struct proto_out *o, uint64_t id, uint64_t stream_id, uint64_t n)
{
	return codec_frame_end(o, codec_req_head(o, OP_CREDIT, id, PROTO_WAIT_FOREVER, 2) |
	    msgpack_pack_uint64(&o->pk, stream_id) | msgpack_pack_uint64(&o->pk, n));
}

int
proto_req_hello_node(struct proto_out *o, uint64_t id, const char *client, const char *token,
    const char *node)
{
	int rc = codec_req_head(o, OP_HELLO, id, PROTO_WAIT_FOREVER, 4) |
	    msgpack_pack_uint64(&o->pk, PROTO_VERSION) | codec_pack_cstr(&o->pk, client);

	if (token)
		rc |= msgpack_pack_map(&o->pk, 1) | codec_pack_cstr(&o->pk, "token") | codec_pack_cstr(&o->pk, token);
	else
		rc |= msgpack_pack_nil(&o->pk);
	/* a node follows MOVED: a forwarded request is never forwarded again */
	rc |= msgpack_pack_map(&o->pk, 2) | codec_pack_cstr(&o->pk, "node") | codec_pack_cstr(&o->pk, node) |
	    codec_pack_cstr(&o->pk, "moved") | msgpack_pack_true(&o->pk);
	return codec_frame_end(o, rc);
}

int
proto_req_readdress(struct proto_out *o, const uint8_t *body, size_t len, uint64_t id,
    int64_t wait_us)
{
	struct mpr r;
	uint32_t n;
	uint64_t op, old;

	mpr_init(&r, body, len);
	if (mpr_array(&r, &n) < 0 || n < 3 || mpr_uint(&r, &op) < 0 || mpr_uint(&r, &old) < 0 ||
	    mpr_skip(&r) < 0)
		return -1;
	/* the rest, names and values (channel references too), goes as it came */
	return codec_frame_end(o, frame_begin(o) | msgpack_pack_array(&o->pk, n) |
	    msgpack_pack_uint64(&o->pk, op & ~(uint64_t)PROTO_OP_DEFER) |
	    msgpack_pack_uint64(&o->pk, id) | pack_wait(&o->pk, wait_us) |
	    msgpack_sbuffer_write(&o->sb, (const char *)r.p, mpr_left(&r)));
}

int
proto_rep_readdress(struct proto_out *o, const uint8_t *body, size_t len, uint64_t id)
{
	struct mpr r;
	uint32_t n;
	uint64_t old;
	int64_t status;

	mpr_init(&r, body, len);
	if (mpr_array(&r, &n) < 0 || n < 2 || mpr_uint(&r, &old) < 0 || mpr_int(&r, &status) < 0)
		return -1;
	o->last_id = id;
	o->last_status = (int)status;
	return codec_frame_end(o, frame_begin(o) | msgpack_pack_array(&o->pk, n) |
	    msgpack_pack_uint64(&o->pk, id) | msgpack_pack_int64(&o->pk, status) |
	    msgpack_sbuffer_write(&o->sb, (const char *)r.p, mpr_left(&r)));
}
