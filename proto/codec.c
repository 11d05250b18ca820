/*
 * codec.c: encode and decode every frame of proto/PROTOCOL.md.
 */
#include <string.h>

#include "codec.h"
#include "mpread.h"

static const char *const op_names[] = {
	[OP_HELLO] = "HELLO", [OP_PING] = "PING", [OP_MAKE] = "MAKE",
	[OP_OPEN] = "OPEN", [OP_SEND] = "SEND", [OP_RECV] = "RECV",
	[OP_CLOSE] = "CLOSE", [OP_LEN] = "LEN", [OP_CAP] = "CAP",
	[OP_SELECT] = "SELECT", [OP_CANCEL] = "CANCEL", [OP_DELETE] = "DELETE",
	[OP_INFO] = "INFO", [OP_STATS] = "STATS", [OP_CHANNELS] = "CHANNELS",
	[OP_CLIENTS] = "CLIENTS", [OP_WAITERS] = "WAITERS", [OP_UNBLOCK] = "UNBLOCK",
	[OP_SHUTDOWN] = "SHUTDOWN", [OP_STREAM] = "STREAM", [OP_CREDIT] = "CREDIT", [OP_OR] = "OR", [OP_OR_DONE] = "OR_DONE",
	[OP_TEE] = "TEE", [OP_BRIDGE] = "BRIDGE", [OP_FAN_IN] = "FAN_IN",
	[OP_REPEAT] = "REPEAT", [OP_TAKE] = "TAKE", [OP_FAN_OUT] = "FAN_OUT",
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

/* ---- names and values ------------------------------------------------------- */

/* Strict UTF-8 (no overlongs, no surrogates, nothing past U+10FFFF). */
static bool
utf8_valid(const uint8_t *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		uint8_t c = s[i];
		size_t n;
		uint32_t cp, min;

		if (c < 0x80) {
			i++;
			continue;
		}
		if ((c & 0xe0) == 0xc0) {
			n = 1, cp = c & 0x1f, min = 0x80;
		} else if ((c & 0xf0) == 0xe0) {
			n = 2, cp = c & 0x0f, min = 0x800;
		} else if ((c & 0xf8) == 0xf0) {
			n = 3, cp = c & 0x07, min = 0x10000;
		} else {
			return false;
		}
		if (len - i - 1 < n)
			return false;
		for (size_t k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += n + 1;
	}
	return true;
}

bool
proto_name_valid(const char *name, size_t len, const char **why)
{
	const uint8_t *s = (const uint8_t *)name;

	if (len == 0) {
		*why = "channel name is empty";
		return false;
	}
	if (len > PROTO_NAME_MAX) {
		*why = "channel name is longer than 255 bytes";
		return false;
	}
	/* the usual name is printable ASCII: one pass settles it */
	size_t ascii = 0;

	while (ascii < len && s[ascii] >= 0x20 && s[ascii] < 0x7f)
		ascii++;
	if (ascii == len)
		return true;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < 0x20 || s[i] == 0x7f) {
			*why = "channel name contains a control character";
			return false;
		}
	}
	if (!utf8_valid(s, len)) {
		*why = "channel name is not valid UTF-8";
		return false;
	}
	return true;
}

int
proto_value_parse(const uint8_t *raw, size_t raw_len, struct proto_value *v, const char **why)
{
	struct mpr r;
	const uint8_t *data;
	uint32_t len;
	int8_t type;

	mpr_init(&r, raw, raw_len);
	memset(v, 0, sizeof *v);
	v->raw = raw;
	v->raw_len = raw_len;
	switch (mpr_peek(&r)) {
	case MPR_BIN:
		if (mpr_bin(&r, &data, &len) < 0)
			goto bad;
		v->kind = VALUE_BIN;
		break;
	case MPR_EXT:
		if (mpr_ext(&r, &type, &data, &len) < 0)
			goto bad;
		if (type == PROTO_EXT_CHANREF) {
			if (!proto_name_valid((const char *)data, len, why))
				return STATUS_BAD_REQUEST;
			v->kind = VALUE_CHANREF;
		} else if (type == PROTO_EXT_ERROR) {
			v->kind = VALUE_ERROR;
		} else {
			*why = "value is an ext of an unknown type";
			return STATUS_BAD_REQUEST;
		}
		break;
	default:
		*why = "value must be a bin or a channel reference";
		return STATUS_BAD_REQUEST;
	}
	if (r.p != r.end) {
		*why = "value has trailing bytes";
		return STATUS_BAD_REQUEST;
	}
	v->data = data;
	v->len = len;
	return STATUS_OK;
bad:
	*why = "value is truncated";
	return STATUS_BAD_REQUEST;
}

/* ---- request decoding ------------------------------------------------------- */

struct rdec {
	struct mpr r;
	const struct proto_limits *limits;
	struct proto_request *req;
	const char **why;
};

#define BAD(d, msg) (*(d)->why = (msg), STATUS_BAD_REQUEST)

static int
dec_name(struct rdec *d, bool nil_ok, const char **name, uint32_t *len)
{
	if (mpr_peek(&d->r) == MPR_NIL) {
		if (!nil_ok)
			return BAD(d, "channel name is nil");
		mpr_nil(&d->r);
		*name = NULL;
		*len = 0;
		return STATUS_OK;
	}
	if (mpr_str(&d->r, name, len) < 0)
		return BAD(d, "channel name must be a str");
	if (!proto_name_valid(*name, *len, d->why))
		return STATUS_BAD_REQUEST;
	return STATUS_OK;
}

static int
dec_value(struct rdec *d, struct proto_value *v)
{
	const uint8_t *raw;
	size_t raw_len;
	int st;

	if (mpr_raw(&d->r, &raw, &raw_len) < 0)
		return BAD(d, "value is malformed");
	st = proto_value_parse(raw, raw_len, v, d->why);
	if (st != STATUS_OK)
		return st;
	if (v->kind == VALUE_ERROR)
		return BAD(d, "ext type 2 is reserved for the server");
	if (v->kind == VALUE_BIN && v->len > d->limits->max_value) {
		*d->why = "value is larger than max_value";
		return STATUS_LIMIT;
	}
	return STATUS_OK;
}

static int
dec_hello(struct rdec *d)
{
	struct proto_request *q = d->req;
	uint32_t n;

	if (mpr_uint(&d->r, &q->version) < 0)
		return BAD(d, "HELLO version must be a non-negative integer");
	if (mpr_str(&d->r, &q->client, &q->client_len) < 0)
		return BAD(d, "HELLO client name must be a str");
	if (q->client_len > PROTO_CLIENT_NAME_MAX || !utf8_valid((const uint8_t *)q->client, q->client_len))
		return BAD(d, "HELLO client name must be at most 255 bytes of UTF-8");
	if (mpr_peek(&d->r) == MPR_NIL)
		return mpr_nil(&d->r), STATUS_OK;
	if (mpr_map(&d->r, &n) < 0)
		return BAD(d, "HELLO auth must be nil or a map");
	while (n-- > 0) {
		const char *key;
		uint32_t klen;

		if (mpr_str(&d->r, &key, &klen) < 0)
			return BAD(d, "HELLO auth keys must be str");
		if (klen == 5 && memcmp(key, "token", 5) == 0) {
			if (mpr_str(&d->r, &q->token, &q->token_len) < 0)
				return BAD(d, "HELLO auth token must be a str");
		} else {
			mpr_skip(&d->r);	/* unknown credentials: ignored */
		}
	}
	return STATUS_OK;
}

static int
dec_case(struct rdec *d, struct proto_case *c)
{
	uint32_t n;
	uint64_t dir;
	int st;

	if (mpr_array(&d->r, &n) < 0)
		return BAD(d, "select case must be an array");
	if (n < 2 || n > 3)
		return BAD(d, "select case must be [0, name] or [1, name, value]");
	if (mpr_uint(&d->r, &dir) < 0 || dir > 1)
		return BAD(d, "select case direction must be 0 (receive) or 1 (send)");
	if (n != (dir ? 3u : 2u))
		return BAD(d, dir ? "send case must be [1, name, value]" : "receive case must be [0, name]");
	c->dir = (uint8_t)dir;
	if ((st = dec_name(d, true, &c->name, &c->name_len)) != STATUS_OK)
		return st;
	memset(&c->value, 0, sizeof c->value);
	if (dir)
		return dec_value(d, &c->value);
	return STATUS_OK;
}

static int
dec_select(struct rdec *d, struct proto_case *cases, uint32_t case_cap)
{
	struct proto_request *q = d->req;
	uint32_t n;
	int st;

	if (mpr_array(&d->r, &n) < 0)
		return BAD(d, "select cases must be an array");
	if (n == 0)
		return BAD(d, "select needs at least one case");
	if (n > case_cap || n > d->limits->max_select_cases) {
		*d->why = "select has more cases than max_select_cases";
		return STATUS_LIMIT;
	}
	for (uint32_t i = 0; i < n; i++)
		if ((st = dec_case(d, &cases[i])) != STATUS_OK)
			return st;
	q->cases = cases;
	q->ncases = n;
	if (mpr_bool(&d->r, &q->has_default) < 0)
		return BAD(d, "select default must be a boolean");
	return STATUS_OK;
}

/* Arguments each op takes after [op, id, wait]. */
static const uint8_t op_arity[OP_MAX + 1] = {
	[OP_HELLO] = 3, [OP_PING] = 0, [OP_MAKE] = 2, [OP_OPEN] = 1,
	[OP_SEND] = 2, [OP_RECV] = 1, [OP_CLOSE] = 1, [OP_LEN] = 1,
	[OP_CAP] = 1, [OP_SELECT] = 2, [OP_CANCEL] = 1, [OP_DELETE] = 1,
	[OP_INFO] = 1, [OP_STATS] = 0, [OP_CHANNELS] = 2, [OP_CLIENTS] = 0,
	[OP_WAITERS] = 1, [OP_UNBLOCK] = 2, [OP_SHUTDOWN] = 0,
	[OP_STREAM] = 2, [OP_CREDIT] = 2,
	[OP_OR] = 3, [OP_OR_DONE] = 3, [OP_TEE] = 3, [OP_BRIDGE] = 3,
	[OP_FAN_IN] = 3, [OP_REPEAT] = 3, [OP_TAKE] = 4, [OP_FAN_OUT] = 6,
};

/* One output: nil (anonymous, unbuffered) or [name | nil, cap]. */
static int
dec_link_out(struct rdec *d, struct proto_link_out *out)
{
	uint32_t n;
	int st;

	memset(out, 0, sizeof *out);
	if (mpr_peek(&d->r) == MPR_NIL)
		return mpr_nil(&d->r), STATUS_OK;
	if (mpr_array(&d->r, &n) < 0 || n != 2)
		return BAD(d, "link output must be nil or [name | nil, cap]");
	if ((st = dec_name(d, true, &out->name, &out->name_len)) != STATUS_OK)
		return st;
	if (mpr_uint(&d->r, &out->cap) < 0)
		return BAD(d, "link output cap must be a non-negative integer");
	return STATUS_OK;
}

/* done, then outs: nil or an array of exactly as many outputs as the op makes. */
static int
dec_link_head(struct rdec *d)
{
	struct proto_request *q = d->req;
	uint32_t want = q->op == OP_TEE ? 2 : 1, n;
	int st;

	if ((st = dec_name(d, true, &q->done, &q->done_len)) != STATUS_OK)
		return st;
	if (q->wait_us == 0)
		return BAD(d, "a link's wait is its lifetime: nil or more than 0");
	if (mpr_peek(&d->r) == MPR_NIL) {
		mpr_nil(&d->r);
		q->nouts = want;	/* all anonymous and unbuffered */
		return STATUS_OK;
	}
	if (mpr_array(&d->r, &n) < 0 || n != want)
		return BAD(d, want == 2 ? "TEE outs must be nil or an array of 2 outputs" :
		    "link outs must be nil or an array of 1 output");
	q->nouts = n;
	for (uint32_t i = 0; i < n; i++)
		if ((st = dec_link_out(d, &q->outs[i])) != STATUS_OK)
			return st;
	return STATUS_OK;
}

/* OR, FAN_IN inputs (names) and REPEAT values: 1 to max_select_cases of them, into cases. */
static int
dec_link_list(struct rdec *d, struct proto_case *cases, uint32_t case_cap)
{
	struct proto_request *q = d->req;
	bool values = q->op == OP_REPEAT;
	uint32_t n;
	int st;

	if (mpr_array(&d->r, &n) < 0)
		return BAD(d, values ? "REPEAT values must be an array" : "link inputs must be an array");
	if (n == 0)
		return BAD(d, values ? "REPEAT needs at least one value" : "link needs at least one input");
	if (n > case_cap || n > d->limits->max_select_cases) {
		*d->why = values ? "REPEAT has more values than max_select_cases" :
		    "link has more inputs than max_select_cases";
		return STATUS_LIMIT;
	}
	for (uint32_t i = 0; i < n; i++) {
		memset(&cases[i], 0, sizeof cases[i]);
		cases[i].dir = values;
		st = values ? dec_value(d, &cases[i].value) :
		    dec_name(d, false, &cases[i].name, &cases[i].name_len);
		if (st != STATUS_OK)
			return st;
	}
	q->cases = cases;
	q->ncases = n;
	return STATUS_OK;
}

static int
dec_fan_out(struct rdec *d)
{
	struct proto_request *q = d->req;

	if (mpr_str(&d->r, &q->stage, &q->stage_len) < 0 || q->stage_len == 0 ||
	    q->stage_len > PROTO_STAGE_NAME_MAX || !utf8_valid((const uint8_t *)q->stage, q->stage_len))
		return BAD(d, "FAN_OUT stage must be a str of 1 to 64 bytes of UTF-8");
	if (mpr_uint(&d->r, &q->count) < 0 || q->count == 0)
		return BAD(d, "FAN_OUT workers must be an integer of 1 or more");
	if (mpr_bool(&d->r, &q->ordered) < 0)
		return BAD(d, "FAN_OUT ordered must be a boolean");
	return STATUS_OK;
}

static int
dec_link(struct rdec *d, struct proto_case *cases, uint32_t case_cap)
{
	struct proto_request *q = d->req;
	int st;

	if ((st = dec_link_head(d)) != STATUS_OK)
		return st;
	if (q->op == OP_OR || q->op == OP_FAN_IN || q->op == OP_REPEAT)
		return dec_link_list(d, cases, case_cap);
	if ((st = dec_name(d, false, &q->name, &q->name_len)) != STATUS_OK)
		return st;
	if (q->op == OP_TAKE && mpr_uint(&d->r, &q->count) < 0)
		return BAD(d, "TAKE n must be a non-negative integer");
	if (q->op == OP_FAN_OUT)
		return dec_fan_out(d);
	return STATUS_OK;
}

/* STREAM: [name...] of 1 to max_select_cases channels (into cases), then credit >= 1. */
static int
dec_stream(struct rdec *d, struct proto_case *cases, uint32_t case_cap)
{
	struct proto_request *q = d->req;
	uint32_t n;
	int st;

	if (mpr_array(&d->r, &n) < 0)
		return BAD(d, "STREAM channels must be an array of names");
	if (n == 0)
		return BAD(d, "STREAM needs at least one channel");
	if (n > case_cap || n > d->limits->max_select_cases) {
		*d->why = "STREAM has more channels than max_select_cases";
		return STATUS_LIMIT;
	}
	for (uint32_t i = 0; i < n; i++) {
		memset(&cases[i], 0, sizeof cases[i]);
		if ((st = dec_name(d, false, &cases[i].name, &cases[i].name_len)) != STATUS_OK)
			return st;
	}
	q->cases = cases;
	q->ncases = n;
	if (mpr_uint(&d->r, &q->count) < 0 || q->count == 0)
		return BAD(d, "STREAM credit must be an integer of 1 or more");
	return STATUS_OK;
}

static int
dec_credit(struct rdec *d)
{
	struct proto_request *q = d->req;

	if (mpr_uint(&d->r, &q->target) < 0 || q->target == 0)
		return BAD(d, "CREDIT stream must be a request id (1 or more)");
	if (mpr_uint(&d->r, &q->count) < 0 || q->count == 0)
		return BAD(d, "CREDIT n must be an integer of 1 or more");
	return STATUS_OK;
}

static int
dec_admin(struct rdec *d)
{
	struct proto_request *q = d->req;

	switch (q->op) {
	case OP_CHANNELS:
		if (mpr_peek(&d->r) == MPR_NIL) {
			mpr_nil(&d->r);
		} else if (mpr_str(&d->r, &q->pattern, &q->pattern_len) < 0 ||
		    q->pattern_len > PROTO_NAME_MAX ||
		    !utf8_valid((const uint8_t *)q->pattern, q->pattern_len)) {
			return BAD(d, "CHANNELS pattern must be nil or a str of at most 255 bytes of UTF-8");
		}
		/* FALLTHROUGH */
	case OP_WAITERS:
		if (mpr_uint(&d->r, &q->limit) < 0)
			return BAD(d, "limit must be a non-negative integer");
		return STATUS_OK;
	case OP_UNBLOCK:
		if (mpr_uint(&d->r, &q->target) < 0 || q->target == 0)
			return BAD(d, "UNBLOCK client must be a client id (1 or more)");
		if (mpr_peek(&d->r) == MPR_NIL)
			return mpr_nil(&d->r), STATUS_OK;
		if (mpr_uint(&d->r, &q->target_req) < 0 || q->target_req == 0)
			return BAD(d, "UNBLOCK request must be nil or a request id (1 or more)");
		return STATUS_OK;
	default:	/* STATS, CLIENTS, SHUTDOWN take nothing */
		return STATUS_OK;
	}
}

static int
dec_args(struct rdec *d, struct proto_case *cases, uint32_t case_cap)
{
	struct proto_request *q = d->req;
	int st;

	switch (q->op) {
	case OP_HELLO:
		return dec_hello(d);
	case OP_PING:
		return STATUS_OK;
	case OP_MAKE:
		if ((st = dec_name(d, true, &q->name, &q->name_len)) != STATUS_OK)
			return st;
		if (q->name && q->name[0] == '~')
			return BAD(d, "names starting with '~' are reserved for anonymous channels");
		if (mpr_uint(&d->r, &q->cap) < 0)
			return BAD(d, "cap must be a non-negative integer");
		return STATUS_OK;
	case OP_SEND:
		if ((st = dec_name(d, false, &q->name, &q->name_len)) != STATUS_OK)
			return st;
		return dec_value(d, &q->value);
	case OP_SELECT:
		return dec_select(d, cases, case_cap);
	case OP_CANCEL:
		if (mpr_uint(&d->r, &q->target) < 0 || q->target == 0)
			return BAD(d, "CANCEL target must be a request id (1 or more)");
		return STATUS_OK;
	case OP_STATS: case OP_CHANNELS: case OP_CLIENTS: case OP_WAITERS:
	case OP_UNBLOCK: case OP_SHUTDOWN:
		return dec_admin(d);
	case OP_STREAM:
		return dec_stream(d, cases, case_cap);
	case OP_CREDIT:
		return dec_credit(d);
	case OP_OR: case OP_OR_DONE: case OP_TEE: case OP_BRIDGE:
	case OP_FAN_IN: case OP_REPEAT: case OP_TAKE: case OP_FAN_OUT:
		return dec_link(d, cases, case_cap);
	default:		/* the one-name ops */
		return dec_name(d, false, &q->name, &q->name_len);
	}
}

static int
dec_wait(struct rdec *d)
{
	int64_t w;

	if (mpr_peek(&d->r) == MPR_NIL) {
		mpr_nil(&d->r);
		d->req->wait_us = PROTO_WAIT_FOREVER;
		return STATUS_OK;
	}
	switch (mpr_int(&d->r, &w)) {
	case 0:
		break;
	case MPR_ERANGE:
		return BAD(d, "wait is larger than 2^48 microseconds");
	default:
		return BAD(d, "wait must be nil or an integer number of microseconds");
	}
	if (w < 0)
		return BAD(d, "wait must not be negative");
	if (w > PROTO_WAIT_MAX)
		return BAD(d, "wait is larger than 2^48 microseconds");
	d->req->wait_us = w;
	return STATUS_OK;
}

int
proto_decode_request_general(const uint8_t *body, size_t len, const struct proto_limits *limits,
    struct proto_case *cases, uint32_t case_cap, struct proto_request *req, const char **why)
{
	struct rdec d = { .limits = limits, .req = req, .why = why };
	struct mpr whole;
	uint32_t n;
	int st;

	memset(req, 0, sizeof *req);
	mpr_init(&d.r, body, len);
	/* Check the whole structure once; field reads below then only fail on types. */
	whole = d.r;
	if ((st = mpr_skip(&whole)) < 0) {
		*why = st == MPR_EINVALID ? "frame is not valid msgpack" : "frame body is truncated or malformed";
		return STATUS_PROTOCOL;
	}
	if (whole.p != whole.end) {
		*why = "frame has bytes after its array";
		return STATUS_PROTOCOL;
	}
	if (mpr_array(&d.r, &n) < 0) {
		*why = "frame body is not an array";
		return STATUS_PROTOCOL;
	}
	if (n < 3) {
		*why = "request must be [op, id, wait, args...]";
		return STATUS_PROTOCOL;
	}
	if (mpr_uint(&d.r, &req->op) < 0 || req->op == 0) {
		*why = "op must be a positive integer";
		return STATUS_PROTOCOL;
	}
	if (mpr_uint(&d.r, &req->id) < 0 || req->id == 0) {
		req->id = 0;
		*why = "id must be an integer from 1 to 2^64-1";
		return STATUS_PROTOCOL;
	}
	if ((st = dec_wait(&d)) != STATUS_OK)
		return st;
	if (req->op > OP_MAX || op_names[req->op] == NULL)
		return BAD(&d, "unknown op");
	if (n - 3 != op_arity[req->op])
		return BAD(&d, "wrong number of arguments for this op");
	return dec_args(&d, cases, case_cap);
}

/*
 * The fast path: SEND, RECV and SELECT in the encoding every client uses (a
 * fixarray, a fixint op, unsigned id and wait, str names, bin values),
 * decoded in one pass that reads each header once and takes a str or bin
 * extent straight from its header. It accepts only frames the general path
 * accepts, with the same result; anything else, valid or not, returns
 * false and the general path decodes it (and words any error) as before.
 */
struct fast {
	const uint8_t *p;
	const uint8_t *end;
};

static uint64_t
fast_be(const uint8_t *p, size_t n)
{
	uint64_t v = 0;

	for (size_t i = 0; i < n; i++)
		v = (v << 8) | p[i];
	return v;
}

/* A positive fixint or uint 8/16/32/64. */
static bool
fast_uint(struct fast *f, uint64_t *v)
{
	size_t n;
	uint8_t b;

	if (f->p >= f->end)
		return false;
	b = f->p[0];
	if (b <= 0x7f) {
		*v = b;
		f->p++;
		return true;
	}
	if (b < 0xcc || b > 0xcf)
		return false;
	n = (size_t)1 << (b - 0xcc);
	if ((size_t)(f->end - f->p) <= n)
		return false;
	*v = fast_be(f->p + 1, n);
	f->p += 1 + n;
	return true;
}

/* A str (fixstr, str 8/16/32) or a bin (bin 8/16/32) whose bytes lie in the frame. */
static bool
fast_bytes(struct fast *f, bool bin, const uint8_t **data, size_t *len)
{
	size_t left = (size_t)(f->end - f->p), hlen;
	uint8_t b, first = bin ? 0xc4 : 0xd9;
	uint64_t n;

	if (left == 0)
		return false;
	b = f->p[0];
	if (!bin && (b & 0xe0) == 0xa0) {
		hlen = 1;
		n = b & 0x1f;
	} else {
		if (b < first || b > first + 2)
			return false;
		hlen = 1 + ((size_t)1 << (b - first));
		if (left < hlen)
			return false;
		n = fast_be(f->p + 1, hlen - 1);
	}
	if (n > left - hlen)
		return false;
	*data = f->p + hlen;
	*len = (size_t)n;
	f->p += hlen + n;
	return true;
}

/* A channel name: a valid str, or nil when nil_ok. */
static bool
fast_name(struct fast *f, bool nil_ok, const char **name, uint32_t *len)
{
	const uint8_t *p;
	const char *why;
	size_t n;

	if (nil_ok && f->p < f->end && f->p[0] == 0xc0) {
		f->p++;
		*name = NULL;
		*len = 0;
		return true;
	}
	if (!fast_bytes(f, false, &p, &n) || !proto_name_valid((const char *)p, n, &why))
		return false;
	*name = (const char *)p;
	*len = (uint32_t)n;
	return true;
}

/* A value that is a bin of at most max_value bytes. */
static bool
fast_value(struct fast *f, const struct proto_limits *limits, struct proto_value *v)
{
	const uint8_t *raw = f->p;

	if (!fast_bytes(f, true, &v->data, &v->len) || v->len > limits->max_value)
		return false;
	v->kind = VALUE_BIN;
	v->raw = raw;
	v->raw_len = (size_t)(f->p - raw);
	return true;
}

/* SELECT's cases, each [0, name | nil] or [1, name | nil, value], then default. */
static bool
fast_select(struct fast *f, const struct proto_limits *limits, struct proto_case *cases,
    uint32_t case_cap, struct proto_request *q)
{
	size_t left = (size_t)(f->end - f->p), hlen = 1;
	uint64_t n;

	if (left == 0)
		return false;
	if ((f->p[0] & 0xf0) == 0x90) {
		n = f->p[0] & 0x0f;
	} else if (f->p[0] == 0xdc || f->p[0] == 0xdd) {
		hlen = f->p[0] == 0xdc ? 3 : 5;
		if (left < hlen)
			return false;
		n = fast_be(f->p + 1, hlen - 1);
	} else {
		return false;
	}
	if (n == 0 || n > case_cap || n > limits->max_select_cases)
		return false;
	f->p += hlen;
	for (uint64_t i = 0; i < n; i++) {
		struct proto_case *c = &cases[i];

		if (f->end - f->p < 2 || (f->p[0] != 0x92 && f->p[0] != 0x93) || f->p[1] != (f->p[0] == 0x93))
			return false;
		c->dir = f->p[1];
		f->p += 2;
		memset(&c->value, 0, sizeof c->value);
		if (!fast_name(f, true, &c->name, &c->name_len) || (c->dir && !fast_value(f, limits, &c->value)))
			return false;
	}
	if (f->p >= f->end || (f->p[0] != 0xc2 && f->p[0] != 0xc3))
		return false;
	q->has_default = *f->p++ == 0xc3;
	q->cases = cases;
	q->ncases = (uint32_t)n;
	return true;
}

static bool
decode_fast(const uint8_t *body, size_t len, const struct proto_limits *limits,
    struct proto_case *cases, uint32_t case_cap, struct proto_request *q)
{
	struct fast f = { body + 2, body + len };
	uint64_t wait;

	/* the array header holds [op, id, wait] and the op's exact arity */
	if (len < 2 || body[0] != (body[1] == OP_RECV ? 0x94 : 0x95) ||
	    (body[1] != OP_SEND && body[1] != OP_RECV && body[1] != OP_SELECT))
		return false;
	q->op = body[1];
	if (!fast_uint(&f, &q->id) || q->id == 0)
		return false;
	if (f.p < f.end && f.p[0] == 0xc0) {
		f.p++;
		q->wait_us = PROTO_WAIT_FOREVER;
	} else if (fast_uint(&f, &wait) && wait <= PROTO_WAIT_MAX) {
		q->wait_us = (int64_t)wait;
	} else {
		return false;
	}
	switch (q->op) {
	case OP_SEND:
		if (!fast_name(&f, false, &q->name, &q->name_len) || !fast_value(&f, limits, &q->value))
			return false;
		break;
	case OP_RECV:
		if (!fast_name(&f, false, &q->name, &q->name_len))
			return false;
		break;
	default:
		if (!fast_select(&f, limits, cases, case_cap, q))
			return false;
		break;
	}
	return f.p == f.end;
}

int
proto_decode_request(const uint8_t *body, size_t len, const struct proto_limits *limits,
    struct proto_case *cases, uint32_t case_cap, struct proto_request *req, const char **why)
{
	memset(req, 0, sizeof *req);
	if (decode_fast(body, len, limits, cases, case_cap, req))
		return STATUS_OK;
	return proto_decode_request_general(body, len, limits, cases, case_cap, req, why);
}

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

static int
dec_hello_info(struct mpr *r, struct proto_hello_info *h, const char **why)
{
	uint32_t n;

	if (mpr_map(r, &n) < 0)
		return PROTO_ERR("HELLO result must be a map");
	while (n-- > 0) {
		const char *k;
		uint32_t kl;
		int rc = 0;

		if (mpr_str(r, &k, &kl) < 0)
			return PROTO_ERR("HELLO result keys must be str");
		if (key_is(k, kl, "version"))
			rc = mpr_uint(r, &h->version);
		else if (key_is(k, kl, "server"))
			rc = mpr_str(r, &h->server, &h->server_len);
		else if (key_is(k, kl, "max_frame"))
			rc = mpr_uint(r, &h->max_frame);
		else if (key_is(k, kl, "max_value"))
			rc = mpr_uint(r, &h->max_value);
		else if (key_is(k, kl, "max_pending"))
			rc = mpr_uint(r, &h->max_pending);
		else if (key_is(k, kl, "max_select_cases"))
			rc = mpr_uint(r, &h->max_select_cases);
		else if (key_is(k, kl, "max_stream_credit"))
			rc = mpr_uint(r, &h->max_stream_credit);
		else
			rc = mpr_skip(r);
		if (rc < 0)
			return PROTO_ERR("HELLO result has a value of the wrong type");
	}
	return STATUS_OK;
}

static int
dec_chan_info(struct mpr *r, struct proto_chan_info *i, const char **why)
{
	uint32_t n;

	if (mpr_map(r, &n) < 0)
		return PROTO_ERR("INFO result must be a map");
	while (n-- > 0) {
		const char *k;
		uint32_t kl;
		int rc;

		if (mpr_str(r, &k, &kl) < 0)
			return PROTO_ERR("INFO result keys must be str");
		if (key_is(k, kl, "name"))
			rc = mpr_str(r, &i->name, &i->name_len);
		else if (key_is(k, kl, "len"))
			rc = mpr_uint(r, &i->len);
		else if (key_is(k, kl, "cap"))
			rc = mpr_uint(r, &i->cap);
		else if (key_is(k, kl, "closed"))
			rc = mpr_bool(r, &i->closed);
		else if (key_is(k, kl, "anonymous"))
			rc = mpr_bool(r, &i->anonymous);
		else if (key_is(k, kl, "senders"))
			rc = mpr_uint(r, &i->senders);
		else if (key_is(k, kl, "receivers"))
			rc = mpr_uint(r, &i->receivers);
		else if (key_is(k, kl, "bytes"))
			rc = mpr_uint(r, &i->bytes);
		else
			rc = mpr_skip(r);
		if (rc < 0)
			return PROTO_ERR("INFO result has a value of the wrong type");
	}
	return STATUS_OK;
}

/* A STREAM's interim reply: [id, OK, index, value | nil, ok] (§14). */
static int
dec_stream_value(struct mpr *r, struct proto_reply *rep, const char **why)
{
	int64_t idx;

	if (mpr_int(r, &idx) < 0 || idx < 0 || dec_reply_value(r, &rep->value, why) != STATUS_OK ||
	    mpr_bool(r, &rep->ok) < 0)
		return PROTO_ERR("STREAM value must be [index, value, ok]");
	rep->index = idx;
	rep->interim = true;
	return STATUS_OK;
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
	};
	int64_t idx;

	if (op == 0 || op > OP_MAX || op_names[op] == NULL)
		return PROTO_ERR("reply to an unknown op");
	if (op == OP_STREAM && n == 3)
		return dec_stream_value(r, rep, why);
	if (n != nres[op])
		return PROTO_ERR("reply has the wrong number of results");
	switch (op) {
	case OP_HELLO:
		return dec_hello_info(r, &rep->hello, why);
	case OP_MAKE:
		if (mpr_str(r, &rep->name, &rep->name_len) < 0 || mpr_uint(r, &rep->n) < 0 ||
		    mpr_bool(r, &rep->created) < 0)
			return PROTO_ERR("MAKE result must be [name, cap, created]");
		return STATUS_OK;
	case OP_RECV:
		if (dec_reply_value(r, &rep->value, why) != STATUS_OK || mpr_bool(r, &rep->ok) < 0)
			return PROTO_ERR("RECV result must be [value, ok]");
		return STATUS_OK;
	case OP_SELECT:
		if (mpr_int(r, &idx) < 0 || idx < -1 || dec_reply_value(r, &rep->value, why) != STATUS_OK ||
		    mpr_bool(r, &rep->ok) < 0)
			return PROTO_ERR("SELECT result must be [index, value, ok]");
		rep->index = idx;
		return STATUS_OK;
	case OP_INFO:
		return dec_chan_info(r, &rep->info, why);
	case OP_STATS:
		if (mpr_map(r, &rep->list.left) < 0)
			return PROTO_ERR("STATS result must be a map");
		rep->list.p = r->p;
		rep->list.end = r->end;
		return STATUS_OK;
	case OP_CHANNELS: case OP_CLIENTS: case OP_WAITERS:
		if (mpr_array(r, &rep->list.left) < 0)
			return PROTO_ERR("result must be an array");
		rep->list.p = r->p;
		for (uint32_t i = 0; i < rep->list.left; i++)
			if (mpr_skip(r) < 0)
				return PROTO_ERR("result list is malformed");
		rep->list.end = r->p;
		if (op != OP_CLIENTS && mpr_uint(r, &rep->total) < 0)
			return PROTO_ERR("result total must be an unsigned integer");
		return STATUS_OK;
	case OP_UNBLOCK: case OP_STREAM:
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
	if (!proto_op_is_link(op) || n != 1 || mpr_array(r, &rep->list.left) < 0)
		return PROTO_ERR("STARTED must answer a link and be [id, STARTED, [name...]]");
	rep->list.p = r->p;
	for (uint32_t i = 0; i < rep->list.left; i++) {
		const char *name;
		uint32_t len;

		if (mpr_str(r, &name, &len) < 0)
			return PROTO_ERR("STARTED names must be str");
	}
	rep->list.end = r->p;
	rep->total = rep->list.left;
	rep->interim = true;
	return STATUS_OK;
}

int
proto_decode_reply(const uint8_t *body, size_t len, uint64_t op, struct proto_reply *rep,
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

static int
frame_begin(struct proto_out *o)
{
	static const char zero[PROTO_FRAME_HDR];

	o->frame = o->sb.size;
	return msgpack_sbuffer_write(&o->sb, zero, sizeof zero);
}

/* Patch the length in, or drop the partial frame when rc says it failed. */
static int
frame_end(struct proto_out *o, int rc)
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

static int
pack_str(msgpack_packer *pk, const char *s, size_t len)
{
	return msgpack_pack_str(pk, len) | msgpack_pack_str_body(pk, s, len);
}

static int
pack_cstr(msgpack_packer *pk, const char *s)
{
	return pack_str(pk, s, strlen(s));
}

static int
pack_name(msgpack_packer *pk, const char *name, size_t len)
{
	return name ? pack_str(pk, name, len) : msgpack_pack_nil(pk);
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
static int
req_head(struct proto_out *o, uint64_t op, uint64_t id, int64_t wait_us, size_t nargs)
{
	return frame_begin(o) | msgpack_pack_array(&o->pk, 3 + nargs) |
	    msgpack_pack_uint64(&o->pk, op) | msgpack_pack_uint64(&o->pk, id) |
	    pack_wait(&o->pk, wait_us);
}

int
proto_req_hello(struct proto_out *o, uint64_t id, uint64_t version, const char *client,
    const char *token)
{
	int rc = req_head(o, OP_HELLO, id, PROTO_WAIT_FOREVER, 3) |
	    msgpack_pack_uint64(&o->pk, version) | pack_cstr(&o->pk, client ? client : "");

	if (token)
		rc |= msgpack_pack_map(&o->pk, 1) | pack_cstr(&o->pk, "token") | pack_cstr(&o->pk, token);
	else
		rc |= msgpack_pack_nil(&o->pk);
	return frame_end(o, rc);
}

int
proto_req_ping(struct proto_out *o, uint64_t id)
{
	return frame_end(o, req_head(o, OP_PING, id, PROTO_WAIT_FOREVER, 0));
}

int
proto_req_make(struct proto_out *o, uint64_t id, const char *name, size_t len, uint64_t cap)
{
	return frame_end(o, req_head(o, OP_MAKE, id, PROTO_WAIT_FOREVER, 2) |
	    pack_name(&o->pk, name, len) | msgpack_pack_uint64(&o->pk, cap));
}

int
proto_req_name(struct proto_out *o, uint64_t op, uint64_t id, int64_t wait_us, const char *name,
    size_t len)
{
	return frame_end(o, req_head(o, op, id, wait_us, 1) | pack_name(&o->pk, name, len));
}

int
proto_req_send(struct proto_out *o, uint64_t id, int64_t wait_us, const char *name, size_t len,
    const struct proto_value *value)
{
	return frame_end(o, req_head(o, OP_SEND, id, wait_us, 2) | pack_name(&o->pk, name, len) |
	    pack_value(&o->pk, value));
}

int
proto_req_select(struct proto_out *o, uint64_t id, int64_t wait_us,
    const struct proto_case *cases, size_t ncases, bool has_default)
{
	int rc = req_head(o, OP_SELECT, id, wait_us, 2) | msgpack_pack_array(&o->pk, ncases);

	for (size_t i = 0; i < ncases; i++) {
		const struct proto_case *c = &cases[i];

		rc |= msgpack_pack_array(&o->pk, c->dir ? 3 : 2) | msgpack_pack_uint8(&o->pk, c->dir) |
		    pack_name(&o->pk, c->name, c->name_len);
		if (c->dir)
			rc |= pack_value(&o->pk, &c->value);
	}
	rc |= has_default ? msgpack_pack_true(&o->pk) : msgpack_pack_false(&o->pk);
	return frame_end(o, rc);
}

int
proto_req_cancel(struct proto_out *o, uint64_t id, uint64_t target)
{
	return frame_end(o, req_head(o, OP_CANCEL, id, PROTO_WAIT_FOREVER, 1) |
	    msgpack_pack_uint64(&o->pk, target));
}

/* [id, status, ...] with nres results to follow. */
static int
rep_head(struct proto_out *o, uint64_t id, int status, size_t nres)
{
	o->last_id = id;
	o->last_status = status;
	return frame_begin(o) | msgpack_pack_array(&o->pk, 2 + nres) |
	    msgpack_pack_uint64(&o->pk, id) | msgpack_pack_int(&o->pk, status);
}

int
proto_rep_ok(struct proto_out *o, uint64_t id)
{
	return frame_end(o, rep_head(o, id, STATUS_OK, 0));
}

int
proto_rep_error(struct proto_out *o, uint64_t id, int status, const char *msg)
{
	return frame_end(o, rep_head(o, id, status, 1) | pack_cstr(&o->pk, msg));
}

int
proto_rep_case_error(struct proto_out *o, uint64_t id, int status, const char *msg, int64_t index)
{
	return frame_end(o, rep_head(o, id, status, 2) | pack_cstr(&o->pk, msg) |
	    msgpack_pack_int64(&o->pk, index));
}

int
proto_rep_uint(struct proto_out *o, uint64_t id, uint64_t n)
{
	return frame_end(o, rep_head(o, id, STATUS_OK, 1) | msgpack_pack_uint64(&o->pk, n));
}

int
proto_rep_make(struct proto_out *o, uint64_t id, const char *name, size_t len, uint64_t cap,
    bool created)
{
	return frame_end(o, rep_head(o, id, STATUS_OK, 3) | pack_str(&o->pk, name, len) |
	    msgpack_pack_uint64(&o->pk, cap) |
	    (created ? msgpack_pack_true(&o->pk) : msgpack_pack_false(&o->pk)));
}

int
proto_rep_recv(struct proto_out *o, uint64_t id, const uint8_t *raw, size_t raw_len, bool ok)
{
	return frame_end(o, rep_head(o, id, STATUS_OK, 2) | pack_raw(&o->pk, raw, raw_len) |
	    (ok ? msgpack_pack_true(&o->pk) : msgpack_pack_false(&o->pk)));
}

int
proto_rep_select(struct proto_out *o, uint64_t id, int64_t index, const uint8_t *raw,
    size_t raw_len, bool ok)
{
	return frame_end(o, rep_head(o, id, STATUS_OK, 3) | msgpack_pack_int64(&o->pk, index) |
	    pack_raw(&o->pk, raw, raw_len) |
	    (ok ? msgpack_pack_true(&o->pk) : msgpack_pack_false(&o->pk)));
}

static int
pack_kv_uint(msgpack_packer *pk, const char *k, uint64_t v)
{
	return pack_cstr(pk, k) | msgpack_pack_uint64(pk, v);
}

static int
pack_kv_bool(msgpack_packer *pk, const char *k, bool v)
{
	return pack_cstr(pk, k) | (v ? msgpack_pack_true(pk) : msgpack_pack_false(pk));
}

int
proto_rep_hello(struct proto_out *o, uint64_t id, const struct proto_hello_info *h)
{
	msgpack_packer *pk = &o->pk;

	return frame_end(o, rep_head(o, id, STATUS_OK, 1) | msgpack_pack_map(pk, 7) |
	    pack_kv_uint(pk, "version", h->version) |
	    pack_cstr(pk, "server") | pack_str(pk, h->server, h->server_len) |
	    pack_kv_uint(pk, "max_frame", h->max_frame) |
	    pack_kv_uint(pk, "max_value", h->max_value) |
	    pack_kv_uint(pk, "max_pending", h->max_pending) |
	    pack_kv_uint(pk, "max_select_cases", h->max_select_cases) |
	    pack_kv_uint(pk, "max_stream_credit", h->max_stream_credit));
}

int
proto_rep_info(struct proto_out *o, uint64_t id, const struct proto_chan_info *i)
{
	return frame_end(o, rep_head(o, id, STATUS_OK, 1) | proto_pack_chan_info(o, i));
}

int
proto_pack_chan_info(struct proto_out *o, const struct proto_chan_info *i)
{
	msgpack_packer *pk = &o->pk;

	return msgpack_pack_map(pk, 8) |
	    pack_cstr(pk, "name") | pack_str(pk, i->name, i->name_len) |
	    pack_kv_uint(pk, "len", i->len) | pack_kv_uint(pk, "cap", i->cap) |
	    pack_kv_bool(pk, "closed", i->closed) | pack_kv_bool(pk, "anonymous", i->anonymous) |
	    pack_kv_uint(pk, "senders", i->senders) | pack_kv_uint(pk, "receivers", i->receivers) |
	    pack_kv_uint(pk, "bytes", i->bytes);
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

int
proto_list_client(struct proto_list *l, struct proto_client_info *out)
{
	struct mpr r;
	uint32_t n;
	int rc = list_map(l, &r, &n);

	if (rc <= 0)
		return rc;
	memset(out, 0, sizeof *out);
	while (n-- > 0) {
		const char *k;
		uint32_t kl;

		if (mpr_str(&r, &k, &kl) < 0)
			return -1;
		if (key_is(k, kl, "id"))
			rc = mpr_uint(&r, &out->id);
		else if (key_is(k, kl, "peer"))
			rc = mpr_str(&r, &out->peer, &out->peer_len);
		else if (key_is(k, kl, "name"))
			rc = mpr_str(&r, &out->name, &out->name_len);
		else if (key_is(k, kl, "pending"))
			rc = mpr_uint(&r, &out->pending);
		else if (key_is(k, kl, "age_ms"))
			rc = mpr_uint(&r, &out->age_ms);
		else if (key_is(k, kl, "unsent"))
			rc = mpr_uint(&r, &out->unsent);
		else
			rc = mpr_skip(&r);
		if (rc < 0)
			return -1;
	}
	list_advance(l, &r);
	return 1;
}

int
proto_list_waiter(struct proto_list *l, struct proto_waiter_info *out)
{
	struct mpr r;
	uint32_t n;
	int rc = list_map(l, &r, &n);

	if (rc <= 0)
		return rc;
	memset(out, 0, sizeof *out);
	while (n-- > 0) {
		const char *k;
		uint32_t kl;

		if (mpr_str(&r, &k, &kl) < 0)
			return -1;
		if (key_is(k, kl, "client"))
			rc = mpr_uint(&r, &out->client);
		else if (key_is(k, kl, "request"))
			rc = mpr_uint(&r, &out->request);
		else if (key_is(k, kl, "op"))
			rc = mpr_uint(&r, &out->op);
		else if (key_is(k, kl, "waited_ms"))
			rc = mpr_uint(&r, &out->waited_ms);
		else if (key_is(k, kl, "cases")) {
			struct mpr save = r;

			rc = mpr_array(&r, &out->ncases);
			r = save;
			if (rc == 0)
				rc = mpr_raw(&r, &out->cases, &out->cases_len);
		} else
			rc = mpr_skip(&r);
		if (rc < 0)
			return -1;
	}
	list_advance(l, &r);
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

/* ---- admin encoders ---------------------------------------------------------- */

int
proto_req_simple(struct proto_out *o, uint64_t op, uint64_t id)
{
	return frame_end(o, req_head(o, op, id, PROTO_WAIT_FOREVER, 0));
}

int
proto_req_channels(struct proto_out *o, uint64_t id, const char *pattern, uint64_t limit)
{
	return frame_end(o, req_head(o, OP_CHANNELS, id, PROTO_WAIT_FOREVER, 2) |
	    (pattern ? pack_cstr(&o->pk, pattern) : msgpack_pack_nil(&o->pk)) |
	    msgpack_pack_uint64(&o->pk, limit));
}

int
proto_req_waiters(struct proto_out *o, uint64_t id, uint64_t limit)
{
	return frame_end(o, req_head(o, OP_WAITERS, id, PROTO_WAIT_FOREVER, 1) |
	    msgpack_pack_uint64(&o->pk, limit));
}

int
proto_req_unblock(struct proto_out *o, uint64_t id, uint64_t client, uint64_t request)
{
	return frame_end(o, req_head(o, OP_UNBLOCK, id, PROTO_WAIT_FOREVER, 2) |
	    msgpack_pack_uint64(&o->pk, client) |
	    (request ? msgpack_pack_uint64(&o->pk, request) : msgpack_pack_nil(&o->pk)));
}

int
proto_rep_begin(struct proto_out *o, uint64_t id, size_t nresults)
{
	return rep_head(o, id, STATUS_OK, nresults);
}

int
proto_rep_end(struct proto_out *o, int rc)
{
	return frame_end(o, rc);
}

int
proto_pack_array(struct proto_out *o, size_t n)
{
	return msgpack_pack_array(&o->pk, n);
}

int
proto_pack_map(struct proto_out *o, size_t n)
{
	return msgpack_pack_map(&o->pk, n);
}

int
proto_pack_uint(struct proto_out *o, uint64_t v)
{
	return msgpack_pack_uint64(&o->pk, v);
}

int
proto_pack_kv_uint(struct proto_out *o, const char *key, uint64_t v)
{
	return pack_kv_uint(&o->pk, key, v);
}

int
proto_pack_client_info(struct proto_out *o, const struct proto_client_info *c)
{
	msgpack_packer *pk = &o->pk;

	return msgpack_pack_map(pk, 6) | pack_kv_uint(pk, "id", c->id) |
	    pack_cstr(pk, "peer") | pack_str(pk, c->peer, c->peer_len) |
	    pack_cstr(pk, "name") | pack_str(pk, c->name, c->name_len) |
	    pack_kv_uint(pk, "pending", c->pending) | pack_kv_uint(pk, "age_ms", c->age_ms) |
	    pack_kv_uint(pk, "unsent", c->unsent);
}

int
proto_pack_waiter_head(struct proto_out *o, const struct proto_waiter_info *w)
{
	msgpack_packer *pk = &o->pk;

	return msgpack_pack_map(pk, 5) | pack_kv_uint(pk, "client", w->client) |
	    pack_kv_uint(pk, "request", w->request) | pack_kv_uint(pk, "op", w->op) |
	    pack_kv_uint(pk, "waited_ms", w->waited_ms) |
	    pack_cstr(pk, "cases") | msgpack_pack_array(pk, w->ncases);
}

int
proto_pack_case(struct proto_out *o, uint8_t dir, const char *name, size_t len)
{
	return msgpack_pack_array(&o->pk, 2) | msgpack_pack_uint8(&o->pk, dir) |
	    pack_name(&o->pk, name, len);
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
		rc |= msgpack_pack_array(pk, 2) | pack_name(pk, l->outs[i].name, l->outs[i].name_len) |
		    msgpack_pack_uint64(pk, l->outs[i].cap);
	return rc;
}

static int
pack_link_list(msgpack_packer *pk, const struct proto_request *l)
{
	int rc = msgpack_pack_array(pk, l->ncases);

	for (uint32_t i = 0; i < l->ncases; i++)
		rc |= l->cases[i].dir ? pack_value(pk, &l->cases[i].value) :
		    pack_name(pk, l->cases[i].name, l->cases[i].name_len);
	return rc;
}

int
proto_req_link(struct proto_out *o, uint64_t id, int64_t wait_us, const struct proto_request *l)
{
	msgpack_packer *pk = &o->pk;
	int rc;

	if (!proto_op_is_link(l->op))
		return -1;
	rc = req_head(o, l->op, id, wait_us, op_arity[l->op]) | pack_name(pk, l->done, l->done_len) |
	    pack_link_outs(pk, l);
	if (l->op == OP_OR || l->op == OP_FAN_IN || l->op == OP_REPEAT)
		return frame_end(o, rc | pack_link_list(pk, l));
	rc |= pack_name(pk, l->name, l->name_len);
	if (l->op == OP_TAKE)
		rc |= msgpack_pack_uint64(pk, l->count);
	if (l->op == OP_FAN_OUT)
		rc |= pack_str(pk, l->stage, l->stage_len) | msgpack_pack_uint64(pk, l->count) |
		    (l->ordered ? msgpack_pack_true(pk) : msgpack_pack_false(pk));
	return frame_end(o, rc);
}

int
proto_rep_started(struct proto_out *o, uint64_t id, const char *const *names, const size_t *lens,
    size_t n)
{
	int rc = rep_head(o, id, STATUS_STARTED, 1) | msgpack_pack_array(&o->pk, n);

	for (size_t i = 0; i < n; i++)
		rc |= pack_str(&o->pk, names[i], lens[i]);
	return frame_end(o, rc);
}

/* ---- streams (§14) ------------------------------------------------------------- */

int
proto_req_stream(struct proto_out *o, uint64_t id, int64_t wait_us, const struct proto_case *names,
    size_t n, uint64_t credit)
{
	int rc = req_head(o, OP_STREAM, id, wait_us, 2) | msgpack_pack_array(&o->pk, n);

	for (size_t i = 0; i < n; i++)
		rc |= pack_name(&o->pk, names[i].name, names[i].name_len);
	return frame_end(o, rc | msgpack_pack_uint64(&o->pk, credit));
}

int
proto_req_credit(struct proto_out *o, uint64_t id, uint64_t stream_id, uint64_t n)
{
	return frame_end(o, req_head(o, OP_CREDIT, id, PROTO_WAIT_FOREVER, 2) |
	    msgpack_pack_uint64(&o->pk, stream_id) | msgpack_pack_uint64(&o->pk, n));
}
