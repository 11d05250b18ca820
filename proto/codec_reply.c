/*
 * codec_reply.c: decoding replies and the admin lists they carry (see
 * codec.h), for clients and tests.
 */
#include <string.h>

#include "codec.h"
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

	if (op == 0 || op > OP_MAX || proto_op_name(op) == NULL)
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
