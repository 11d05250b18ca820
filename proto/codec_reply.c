/*
 * codec_reply.c: decoding replies and the admin lists they carry (see
 * codec.h), for clients and tests: a fast path for the replies a pipelining
 * client gets most (OK to SEND and RECV, a STREAM's values), and the
 * general decoder every other reply goes to.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <stddef.h>
#include <string.h>

#include "codec.h"
#include "codec_int.h"
#include "mpread.h"

/* ---- reply decoding --------------------------------------------------------- */

#define PROTO_ERR(msg) (*why = (msg), STATUS_PROTOCOL)

int
proto_reply_header(const uint8_t *body, size_t len, uint64_t *id, int *status, const char **why)
{
	struct mpr r;
	uint32_t n;
	uint64_t st;

	mpr_init(&r, body, len);
	if (mpr_array(&r, &n) < 0 || n < 2)
		return PROTO_ERR("reply must be [id, status, ...]");
	if (mpr_uint(&r, id) < 0)
		return PROTO_ERR("reply id must be an unsigned integer");
	if (mpr_uint(&r, &st) < 0 || st > INT32_MAX)
		return PROTO_ERR("reply status must be a small unsigned integer");
	*status = (int)st;
	return STATUS_OK;
}

int
proto_reply_nresults(const uint8_t *body, size_t len)
{
	struct mpr r;
	uint32_t n;

	mpr_init(&r, body, len);
	if (mpr_array(&r, &n) < 0 || n < 2 || n - 2 > INT32_MAX)
		return -1;
	return (int)(n - 2);
}

static bool
key_is(const char *k, uint32_t klen, const char *want)
{
	return strlen(want) == klen && memcmp(k, want, klen) == 0;
}

static int
dec_reply_value(struct mpr *r, struct proto_value *v, const char **why)
{
	const uint8_t *raw;
	size_t raw_len;

	if (mpr_peek(r) == MPR_NIL) {
		mpr_nil(r);
		memset(v, 0, sizeof *v);
		return STATUS_OK;
	}
	if (mpr_raw(r, &raw, &raw_len) < 0 || proto_value_parse(raw, raw_len, v, why) != STATUS_OK)
		return PROTO_ERR("reply value is malformed");
	return STATUS_OK;
}

/*
 * The result maps (HELLO's info, INFO, the CLIENTS and WAITERS lists):
 * each known key goes to one field of the caller's struct, by type;
 * unknown keys are skipped, so a newer server may add some.
 */
enum field_type { FIELD_UINT, FIELD_STR, FIELD_BOOL, FIELD_ARRAY, FIELD_CLOSE_ERR };

struct map_field {
	const char *key;
	enum field_type type;
	size_t off;		/* uint64_t, bool, const char *, const uint8_t * or struct proto_close_err */
	size_t len_off;		/* FIELD_STR: uint32_t length; FIELD_ARRAY: size_t bytes */
	size_t n_off;		/* FIELD_ARRAY: uint32_t elements */
};

#define UINT_FIELD(s, f) { #f, FIELD_UINT, offsetof(struct s, f), 0, 0 }
#define BOOL_FIELD(s, f) { #f, FIELD_BOOL, offsetof(struct s, f), 0, 0 }
#define STR_FIELD(s, f) { #f, FIELD_STR, offsetof(struct s, f), offsetof(struct s, f##_len), 0 }

/* A close error, [code, message] (§5 CLOSE); -1 when it is not one. */
static int
dec_close_err(struct mpr *r, struct proto_close_err *err)
{
	uint32_t n;

	if (mpr_array(r, &n) < 0 || n != 2 || mpr_uint(r, &err->code) < 0 ||
	    mpr_str(r, &err->msg, &err->msg_len) < 0)
		return -1;
	err->set = true;
	return 0;
}

/* The member of type T at offset off of the struct at out (a map_field's offsetof: aligned). */
#define AT(T, out, off) ((T *)(void *)((out) + (off)))

static int
dec_field(struct mpr *r, const struct map_field *f, uint8_t *out)
{
	struct mpr save = *r;
	int rc;

	switch (f->type) {
	case FIELD_UINT:
		return mpr_uint(r, AT(uint64_t, out, f->off));
	case FIELD_BOOL:
		return mpr_bool(r, AT(bool, out, f->off));
	case FIELD_STR:
		return mpr_str(r, AT(const char *, out, f->off), AT(uint32_t, out, f->len_off));
	case FIELD_CLOSE_ERR:
		return dec_close_err(r, AT(struct proto_close_err, out, f->off));
	default:	/* FIELD_ARRAY: the count, then the raw extent of the whole array */
		if ((rc = mpr_array(r, AT(uint32_t, out, f->n_off))) < 0)
			return rc;
		*r = save;
		return mpr_raw(r, AT(const uint8_t *, out, f->off), AT(size_t, out, f->len_off));
	}
}

/* Decode n key/value pairs at r into out. -1 on a non-str key or a value of the wrong type. */
static int
dec_fields(struct mpr *r, uint32_t n, const struct map_field *fields, size_t nfields, void *out)
{
	while (n-- > 0) {
		const struct map_field *f = NULL;
		const char *k;
		uint32_t kl;

		if (mpr_str(r, &k, &kl) < 0)
			return -1;
		for (size_t i = 0; i < nfields && f == NULL; i++)
			if (key_is(k, kl, fields[i].key))
				f = &fields[i];
		if ((f ? dec_field(r, f, out) : mpr_skip(r)) < 0)
			return -1;
	}
	return 0;
}

static const struct map_field hello_fields[] = {
	UINT_FIELD(proto_hello_info, version),
	STR_FIELD(proto_hello_info, server),
	UINT_FIELD(proto_hello_info, max_frame),
	UINT_FIELD(proto_hello_info, max_value),
	UINT_FIELD(proto_hello_info, max_pending),
	UINT_FIELD(proto_hello_info, max_select_cases),
	UINT_FIELD(proto_hello_info, max_stream_credit),
	UINT_FIELD(proto_hello_info, max_waiters_per_connection),
};

static const struct map_field chan_fields[] = {
	STR_FIELD(proto_chan_info, name),
	UINT_FIELD(proto_chan_info, len),
	UINT_FIELD(proto_chan_info, cap),
	BOOL_FIELD(proto_chan_info, closed),
	BOOL_FIELD(proto_chan_info, anonymous),
	UINT_FIELD(proto_chan_info, senders),
	UINT_FIELD(proto_chan_info, receivers),
	UINT_FIELD(proto_chan_info, bytes),
	{ "close_error", FIELD_CLOSE_ERR, offsetof(struct proto_chan_info, close_err), 0, 0 },
	UINT_FIELD(proto_chan_info, ack_wait),
	UINT_FIELD(proto_chan_info, inflight),
	UINT_FIELD(proto_chan_info, redelivered),
	UINT_FIELD(proto_chan_info, dead_lettered),
	UINT_FIELD(proto_chan_info, max_unacked),
	UINT_FIELD(proto_chan_info, max_ack_pending),
	BOOL_FIELD(proto_chan_info, durable),
	UINT_FIELD(proto_chan_info, journal_bytes),
};

static const struct map_field inflight_fields[] = {
	UINT_FIELD(proto_inflight_info, client),
	UINT_FIELD(proto_inflight_info, tag),
	UINT_FIELD(proto_inflight_info, count),
	UINT_FIELD(proto_inflight_info, age_ms),
};

static const struct map_field client_fields[] = {
	UINT_FIELD(proto_client_info, id),
	STR_FIELD(proto_client_info, peer),
	STR_FIELD(proto_client_info, name),
	UINT_FIELD(proto_client_info, pending),
	UINT_FIELD(proto_client_info, age_ms),
	UINT_FIELD(proto_client_info, unsent),
};

static const struct map_field node_fields[] = {
	STR_FIELD(proto_node_info, name),
	STR_FIELD(proto_node_info, advertise),
	UINT_FIELD(proto_node_info, owned),
	UINT_FIELD(proto_node_info, self),
	UINT_FIELD(proto_node_info, lease_left_ms),
};

static const struct map_field waiter_fields[] = {
	UINT_FIELD(proto_waiter_info, client),
	UINT_FIELD(proto_waiter_info, request),
	UINT_FIELD(proto_waiter_info, op),
	UINT_FIELD(proto_waiter_info, waited_ms),
	STR_FIELD(proto_waiter_info, home),
	{ "cases", FIELD_ARRAY, offsetof(struct proto_waiter_info, cases),
	  offsetof(struct proto_waiter_info, cases_len), offsetof(struct proto_waiter_info, ncases) },
};

#define NFIELDS(a) (sizeof(a) / sizeof((a)[0]))

static int
dec_hello_info(struct mpr *r, struct proto_hello_info *h, const char **why)
{
	uint32_t n;

	if (mpr_map(r, &n) < 0)
		return PROTO_ERR("HELLO result must be a map");
	if (dec_fields(r, n, hello_fields, NFIELDS(hello_fields), h) < 0)
		return PROTO_ERR("HELLO result has a key that is not a str or a value of the wrong type");
	return STATUS_OK;
}

static int
dec_chan_info(struct mpr *r, struct proto_chan_info *i, const char **why)
{
	uint32_t n;

	if (mpr_map(r, &n) < 0)
		return PROTO_ERR("INFO result must be a map");
	if (dec_fields(r, n, chan_fields, NFIELDS(chan_fields), i) < 0)
		return PROTO_ERR("INFO result has a key that is not a str or a value of the wrong type");
	return STATUS_OK;
}

/*
 * After a receive's value and ok: a value comes with ok true, nil with ok
 * false (nil_ok: or with ok true, a SELECT's send case); with one more
 * result, the close error of a closed channel.
 */
static int
dec_received(struct mpr *r, bool more, bool nil_ok, struct proto_reply *rep)
{
	if (rep->value.kind == VALUE_NONE ? rep->ok && !nil_ok : !rep->ok)
		return -1;
	if (!more)
		return 0;
	if (rep->ok)
		return -1;
	return dec_close_err(r, &rep->close_err);
}

/* An ack channel's value ends with its tag and delivery count (§16): both 1 or more, ok true. */
static int
dec_tag(struct mpr *r, struct proto_reply *rep, const char **why)
{
	if (mpr_uint(r, &rep->tag) < 0 || rep->tag == 0 || mpr_uint(r, &rep->count) < 0 ||
	    rep->count == 0 || !rep->ok)
		return PROTO_ERR("an ack channel's value must end with tag and count (1 or more), ok true");
	return STATUS_OK;
}

/*
 * A STREAM's interim reply: [id, OK, index, value | nil, ok] (§14), then
 * either a close error (§5 CLOSE) or, for an ack channel's value, [tag, count] (§16).
 */
static int
dec_stream_value(struct mpr *r, uint32_t n, struct proto_reply *rep, const char **why)
{
	int64_t idx;

	if (mpr_int(r, &idx) < 0 || idx < 0 || dec_reply_value(r, &rep->value, why) != STATUS_OK ||
	    mpr_bool(r, &rep->ok) < 0 || dec_received(r, n == 4, false, rep) < 0)
		return PROTO_ERR("STREAM value must be [index, value, true], [index, nil, false] "
		    "or [index, nil, false, error]");
	rep->index = idx;
	rep->interim = true;
	return n == 5 ? dec_tag(r, rep, why) : STATUS_OK;
}

/* Results of an OK reply, per op; n is the number of elements after [id, status]. */
static int
dec_ok_results(struct mpr *r, uint64_t op, uint32_t n, struct proto_reply *rep, const char **why)
{
	static const uint8_t nres[OP_MAX + 1] = {
		[OP_HELLO] = 1, [OP_MAKE] = 3, [OP_OPEN] = 1, [OP_RECV] = 2,
		[OP_LEN] = 1, [OP_CAP] = 1, [OP_SELECT] = 3, [OP_DELETE] = 1,
		[OP_INFO] = 1, [OP_STATS] = 1, [OP_CHANNELS] = 2, [OP_CLIENTS] = 1,
		[OP_WAITERS] = 2, [OP_UNBLOCK] = 1, [OP_STREAM] = 1,
		[OP_OR] = 1, [OP_OR_DONE] = 1, [OP_TEE] = 1, [OP_BRIDGE] = 1,
		[OP_FAN_IN] = 1, [OP_REPEAT] = 1, [OP_TAKE] = 1, [OP_FAN_OUT] = 1,
		[OP_ACK] = 1, [OP_INFLIGHT] = 2, [OP_CLUSTER_NODES] = 1,
	};
	int64_t idx;
	/* an ack channel's value has two results more (§16) */
	bool tagged = (op == OP_RECV && n == 4) || (op == OP_SELECT && n == 5);

	if (op == 0 || op > OP_MAX || proto_op_name(op) == NULL)
		return PROTO_ERR("reply to an unknown op");
	/* receives have 2 (RECV) or 3 (SELECT, STREAM) results, one more with a close
	 * error (§5 CLOSE), two more for an ack channel's value (§16) */
	if (op == OP_STREAM && n >= 3 && n <= 5)
		return dec_stream_value(r, n, rep, why);
	if (n != nres[op] + 2u * tagged && !((op == OP_RECV || op == OP_SELECT) && n == nres[op] + 1u))
		return PROTO_ERR("reply has the wrong number of results");
	switch (op) {
	case OP_HELLO:
		return dec_hello_info(r, &rep->hello, why);
	case OP_MAKE:
		if (mpr_str(r, &rep->name, &rep->name_len) < 0 || mpr_uint(r, &rep->n) < 0 ||
		    mpr_bool(r, &rep->created) < 0)
			return PROTO_ERR("MAKE result must be [name, cap, created]");
		if (!proto_name_valid(rep->name, rep->name_len, why))
			return STATUS_PROTOCOL;
		return STATUS_OK;
	case OP_RECV:
		if (dec_reply_value(r, &rep->value, why) != STATUS_OK || mpr_bool(r, &rep->ok) < 0 ||
		    dec_received(r, n == 3, false, rep) < 0)
			return PROTO_ERR("RECV result must be [value, true], [nil, false] "
			    "or [nil, false, error]");
		return tagged ? dec_tag(r, rep, why) : STATUS_OK;
	case OP_SELECT:
		if (mpr_int(r, &idx) < 0 || idx < -1 || dec_reply_value(r, &rep->value, why) != STATUS_OK ||
		    mpr_bool(r, &rep->ok) < 0 || dec_received(r, n == 4, true, rep) < 0 || (n == 4 && idx < 0))
			return PROTO_ERR("SELECT result must be [index, value, true], [index, nil, ok] "
			    "or [index, nil, false, error]");
		rep->index = idx;
		return tagged ? dec_tag(r, rep, why) : STATUS_OK;
	case OP_INFO:
		return dec_chan_info(r, &rep->info, why);
	case OP_STATS:
		if (mpr_map(r, &rep->list.left) < 0)
			return PROTO_ERR("STATS result must be a map");
		rep->list.p = r->p;
		rep->list.end = r->end;
		return STATUS_OK;
	case OP_CHANNELS: case OP_CLIENTS: case OP_WAITERS: case OP_INFLIGHT: case OP_CLUSTER_NODES:
		if (mpr_array(r, &rep->list.left) < 0)
			return PROTO_ERR("result must be an array");
		rep->list.p = r->p;
		for (uint32_t i = 0; i < rep->list.left; i++)
			if (mpr_skip(r) < 0)
				return PROTO_ERR("result list is malformed");
		rep->list.end = r->p;
		if (op != OP_CLIENTS && op != OP_CLUSTER_NODES && mpr_uint(r, &rep->total) < 0)
			return PROTO_ERR("result total must be an unsigned integer");
		return STATUS_OK;
	case OP_UNBLOCK: case OP_STREAM: case OP_ACK:
	case OP_OPEN: case OP_LEN: case OP_CAP: case OP_DELETE:
	case OP_OR: case OP_OR_DONE: case OP_TEE: case OP_BRIDGE:
	case OP_FAN_IN: case OP_REPEAT: case OP_TAKE: case OP_FAN_OUT:
		if (mpr_uint(r, &rep->n) < 0)
			return PROTO_ERR("result must be an unsigned integer");
		return STATUS_OK;
	default:
		return STATUS_OK;
	}
}

/* A link's interim reply: [id, STARTED, [name...]] (§12). */
static int
dec_started(struct mpr *r, uint64_t op, uint32_t n, struct proto_reply *rep, const char **why)
{
	/* or a SELECT with hold 2 that waits (§17): no names */
	if (!(proto_op_is_link(op) || op == OP_SELECT) || n != 1 || mpr_array(r, &rep->list.left) < 0)
		return PROTO_ERR("STARTED must answer a link or a SELECT and be [id, STARTED, [name...]]");
	rep->list.p = r->p;
	for (uint32_t i = 0; i < rep->list.left; i++) {
		const char *name;
		uint32_t len;

		if (mpr_str(r, &name, &len) < 0)
			return PROTO_ERR("STARTED names must be str");
	}
	if (op == OP_SELECT && rep->list.left != 0)
		return PROTO_ERR("a SELECT's STARTED names nothing: [id, STARTED, []]");
	rep->list.end = r->p;
	rep->total = rep->list.left;
	rep->interim = true;
	return STATUS_OK;
}

int
proto_decode_reply_general(const uint8_t *body, size_t len, uint64_t op, struct proto_reply *rep,
    const char **why)
{
	struct mpr r, whole;
	uint32_t n;
	uint64_t st;

	memset(rep, 0, sizeof *rep);
	rep->index = -1;
	mpr_init(&r, body, len);
	whole = r;
	if (mpr_skip(&whole) < 0 || whole.p != whole.end)
		return PROTO_ERR("reply is not one well-formed msgpack object");
	if (mpr_array(&r, &n) < 0 || n < 2 || mpr_uint(&r, &rep->id) < 0 ||
	    mpr_uint(&r, &st) < 0 || st > INT32_MAX)
		return PROTO_ERR("reply must be [id, status, ...]");
	rep->status = (int)st;
	n -= 2;
	if (rep->status == STATUS_OK)
		return dec_ok_results(&r, op, n, rep, why);
	if (rep->status == STATUS_STARTED)
		return dec_started(&r, op, n, rep, why);
	if (n < 1 || n > 2 || mpr_str(&r, &rep->msg, &rep->msg_len) < 0)
		return PROTO_ERR("error reply must be [id, status, message, index?]");
	if (n == 2 && mpr_int(&r, &rep->index) < 0)
		return PROTO_ERR("error reply index must be an integer");
	return STATUS_OK;
}

/*
 * The fast path: OK replies to SEND ([id, 0]), RECV ([id, 0, value, ok])
 * and a STREAM's values ([id, 0, index, value, ok]), with an ack channel's
 * tag and count after ok (§16), as chand encodes them (a fixarray,
 * unsigned integers, a bin or nil value), in one pass. Like
 * the requests' fast path it accepts only replies the general path
 * accepts, with the same result, and returns false for anything else.
 */
static bool
decode_reply_fast(const uint8_t *body, size_t len, uint64_t op, struct proto_reply *rep)
{
	static const uint8_t header[OP_MAX + 1] = { [OP_SEND] = 0x92, [OP_RECV] = 0x94,
	    [OP_STREAM] = 0x95 };
	struct fast f = { body + 1, body + len };
	uint64_t idx;
	bool tagged;

	if (len < 3 || op > OP_MAX || header[op] == 0)
		return false;
	tagged = op != OP_SEND && body[0] == header[op] + 2;
	if (body[0] != header[op] && !tagged)
		return false;
	memset(rep, 0, sizeof *rep);
	rep->index = -1;
	if (!fast_uint(&f, &rep->id) || f.p >= f.end || *f.p++ != STATUS_OK)
		return false;
	if (op == OP_STREAM) {
		if (!fast_uint(&f, &idx) || idx > INT64_MAX)
			return false;
		rep->index = (int64_t)idx;
		rep->interim = true;
	}
	if (op != OP_SEND) {
		const uint8_t *raw = f.p;

		if (f.p < f.end && *f.p == 0xc0) {
			f.p++;		/* nil: VALUE_NONE, as memset left it */
		} else if (fast_bytes(&f, true, &rep->value.data, &rep->value.len)) {
			rep->value.kind = VALUE_BIN;
			rep->value.raw = raw;
			rep->value.raw_len = (size_t)(f.p - raw);
		} else {
			return false;
		}
		/* a value comes with ok true, nil with ok false */
		if (!fast_bool(&f, &rep->ok) || rep->ok != (rep->value.kind != VALUE_NONE))
			return false;
	}
	if (tagged && (!rep->ok || !fast_uint(&f, &rep->tag) || rep->tag == 0 ||
	    !fast_uint(&f, &rep->count) || rep->count == 0))
		return false;
	return f.p == f.end;
}

int
proto_decode_reply(const uint8_t *body, size_t len, uint64_t op, struct proto_reply *rep,
    const char **why)
{
	if (decode_reply_fast(body, len, op, rep))
		return STATUS_OK;
	return proto_decode_reply_general(body, len, op, rep, why);
}

/* ---- admin lists ------------------------------------------------------------- */

static int
list_map(struct proto_list *l, struct mpr *r, uint32_t *n)
{
	if (l->left == 0)
		return 0;
	mpr_init(r, l->p, (size_t)(l->end - l->p));
	if (mpr_map(r, n) < 0)
		return -1;
	return 1;
}

static void
list_advance(struct proto_list *l, const struct mpr *r)
{
	l->p = r->p;
	l->left--;
}

int
proto_list_chan(struct proto_list *l, struct proto_chan_info *out)
{
	struct mpr r;
	const char *why;
	int rc;

	if (l->left == 0)
		return 0;
	mpr_init(&r, l->p, (size_t)(l->end - l->p));
	memset(out, 0, sizeof *out);
	if ((rc = dec_chan_info(&r, out, &why)) != STATUS_OK)
		return -1;
	list_advance(l, &r);
	return 1;
}

/* One map of a CLIENTS or WAITERS list into out (zeroed first). */
static int
list_fields(struct proto_list *l, const struct map_field *fields, size_t nfields, void *out,
    size_t size)
{
	struct mpr r;
	uint32_t n;
	int rc = list_map(l, &r, &n);

	if (rc <= 0)
		return rc;
	memset(out, 0, size);
	if (dec_fields(&r, n, fields, nfields, out) < 0)
		return -1;
	list_advance(l, &r);
	return 1;
}

int
proto_list_client(struct proto_list *l, struct proto_client_info *out)
{
	return list_fields(l, client_fields, NFIELDS(client_fields), out, sizeof *out);
}

int
proto_list_node(struct proto_list *l, struct proto_node_info *out)
{
	return list_fields(l, node_fields, NFIELDS(node_fields), out, sizeof *out);
}

int
proto_list_waiter(struct proto_list *l, struct proto_waiter_info *out)
{
	return list_fields(l, waiter_fields, NFIELDS(waiter_fields), out, sizeof *out);
}

int
proto_list_inflight(struct proto_list *l, struct proto_inflight_info *out)
{
	return list_fields(l, inflight_fields, NFIELDS(inflight_fields), out, sizeof *out);
}

int
proto_list_tag(struct proto_list *l, uint64_t *tag)
{
	struct mpr r;

	if (l->left == 0)
		return 0;
	mpr_init(&r, l->p, (size_t)(l->end - l->p));
	if (mpr_uint(&r, tag) < 0)
		return 0;	/* the decoder checked every tag */
	l->p = r.p;
	l->left--;
	return 1;
}

void
proto_case_list(const struct proto_waiter_info *w, struct proto_list *l)
{
	struct mpr r;

	memset(l, 0, sizeof *l);
	if (w->cases == NULL)
		return;
	mpr_init(&r, w->cases, w->cases_len);
	if (mpr_array(&r, &l->left) < 0)
		return;
	l->p = r.p;
	l->end = r.end;
}

int
proto_list_case(struct proto_list *l, uint8_t *dir, const char **name, uint32_t *len)
{
	struct mpr r;
	uint32_t n;
	uint64_t d;

	if (l->left == 0)
		return 0;
	mpr_init(&r, l->p, (size_t)(l->end - l->p));
	if (mpr_array(&r, &n) < 0 || n != 2 || mpr_uint(&r, &d) < 0 || d > 1)
		return -1;
	*dir = (uint8_t)d;
	if (mpr_peek(&r) == MPR_NIL) {
		mpr_nil(&r);
		*name = NULL;
		*len = 0;
	} else if (mpr_str(&r, name, len) < 0) {
		return -1;
	}
	list_advance(l, &r);
	return 1;
}

int
proto_list_name(struct proto_list *l, const char **name, uint32_t *len)
{
	struct mpr r;

	if (l->left == 0)
		return 0;
	mpr_init(&r, l->p, (size_t)(l->end - l->p));
	if (mpr_str(&r, name, len) < 0)
		return -1;
	list_advance(l, &r);
	return 1;
}

int
proto_list_stat(struct proto_list *l, const char **key, uint32_t *klen, uint64_t *val)
{
	struct mpr r;

	if (l->left == 0)
		return 0;
	mpr_init(&r, l->p, (size_t)(l->end - l->p));
	if (mpr_str(&r, key, klen) < 0 || mpr_uint(&r, val) < 0)
		return -1;
	list_advance(l, &r);
	return 1;
}
