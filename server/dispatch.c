/*
 * dispatch.c: the operations of PROTOCOL.md §5, one handler each.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <inttypes.h>
#include <string.h>

#include "acl.h"
#include "admin.h"
#include "budget.h"
#include "clock.h"
#include "codec.h"
#include "conn.h"
#include "delivery.h"
#include "dispatch.h"
#include "durable.h"
#include "link.h"
#include "log.h"
#include "request.h"
#include "router.h"
#include "server.h"
#include "stream.h"
#include "value.h"
#include "xhold.h"

typedef void op_handler(struct conn *c, const struct proto_request *q);

/*
 * The channel a request names, or NULL after replying NOT_FOUND or
 * PERMISSION_DENIED (right 0: any right on it will do). Rights come first,
 * so that a client without them cannot probe which names exist.
 */
static struct chan *
find_chan(struct conn *c, const struct proto_request *q, unsigned right)
{
	struct chan *ch;

	if (!acl_allow(c, q->id, right, q->name, q->name_len))
		return NULL;
	ch = engine_lookup(c->srv->engine, q->name, q->name_len);
	if (ch == NULL)
		conn_reply_error(c, q->id, STATUS_NOT_FOUND, "no such channel");
	return ch;
}

static unsigned
wait_flags(const struct proto_request *q)
{
	unsigned wait = q->wait_us != 0 ? ENGINE_WAIT : 0;

	/*
	 * one that may not wait (wait 0, default) can still take the value of
	 * a cross-node select's send case waiting here, if its home grants it (§17)
	 */
	return wait | (!q->hold && (q->wait_us == 0 || q->has_default) ? ENGINE_CLAIM_WAIT : 0);
}

static void
op_hello(struct conn *c, const struct proto_request *q)
{
	struct server *s = c->srv;
	struct proto_hello_info h = {
		.version = q->version < PROTO_VERSION ? q->version : PROTO_VERSION,
		.server = PACKAGE_NAME " " PACKAGE_VERSION,
		.server_len = strlen(PACKAGE_NAME " " PACKAGE_VERSION),
		.max_frame = s->cfg.max_frame,
		.max_value = s->cfg.max_value,
		.max_pending = s->cfg.max_pending,
		.max_select_cases = s->cfg.max_select_cases,
		.max_stream_credit = s->cfg.max_stream_credit,
		.max_waiters_per_connection = s->cfg.max_waiters_per_connection,
	};
	const char *why;
	int st;

	if (c->hello) {
		conn_reply_error(c, q->id, STATUS_BAD_REQUEST, "HELLO was already done");
		return;
	}
	if (h.version < PROTO_VERSION_MIN) {
		conn_close_after_flush(c, q->id, STATUS_PROTOCOL, "unsupported protocol version");
		return;
	}
	if ((st = acl_hello(c, q, &why)) != STATUS_OK) {
		log_warn("hello-refused client=%" PRIu64 " peer=%s reason=\"%s\"", c->id, c->peer, why);
		conn_close_after_flush(c, q->id, st, why);
		return;
	}
	c->hello = true;
	snprintf(c->client, sizeof c->client, "%.*s", (int)q->client_len, q->client);
	/* its waiters are a cross-node select's, whose home is that node (WAITERS' home) */
	snprintf(c->node, sizeof c->node, "%.*s", (int)q->node_len, q->node_len ? q->node : "");
	log_debug("hello client=%" PRIu64 " name=\"%s\" version=%" PRIu64, c->id, c->client, h.version);
	if (proto_rep_hello(&s->out, q->id, &h) == 0)
		conn_flush_out(c);
}

static void
op_ping(struct conn *c, const struct proto_request *q)
{
	if (proto_rep_ok(&c->srv->out, q->id) == 0)
		conn_flush_out(c);
}

/* A durable channel is named, buffered, and needs a data_dir (PROTOCOL.md §16). */
static bool
make_durable_refused(struct conn *c, const struct proto_request *q)
{
	const char *why = NULL;
	int st = STATUS_BAD_REQUEST;

	if (q->name == NULL)
		why = "an anonymous channel cannot be durable";
	else if (q->cap == 0)
		why = "a durable channel must be buffered (cap >= 1): an unbuffered one holds no value to keep";
	else if (c->srv->durable == NULL) {
		st = STATUS_STORAGE;
		why = "this server keeps no data: durable channels need data_dir (chand.conf(5))";
	} else if (durable_failing(c->srv->durable)) {
		st = STATUS_STORAGE;
		why = "the journal cannot be written (disk full or I/O error); retried every second";
	}
	if (why == NULL)
		return false;
	conn_reply_error(c, q->id, st, why);
	return true;
}

static void
op_make(struct conn *c, const struct proto_request *q)
{
	struct server *s = c->srv;
	struct chan *ch;
	bool created;
	size_t nlen;
	const char *name;
	int st;

	if (!acl_allow(c, q->id, RIGHT_MAKE, q->name, q->name_len))
		return;
	/* dead letters are sent for the maker: it must be allowed to send them (§13, §16) */
	if (q->dlv.dead_letter != NULL &&
	    !acl_allow(c, q->id, RIGHT_SEND, q->dlv.dead_letter, q->dlv.dead_letter_len))
		return;
	if (q->cap > s->cfg.max_cap) {
		conn_reply_error(c, q->id, STATUS_LIMIT, "cap is larger than max_cap");
		return;
	}
	if (q->dlv.durable && make_durable_refused(c, q))
		return;
	if (!acl_can_create(c, q->id, q->name, q->name_len))
		return;
	st = engine_make(s->engine, q->name, q->name_len, (uint32_t)q->cap, &ch, &created);
	if (st == STATUS_EXISTS) {
		conn_reply_error(c, q->id, st, "channel exists with a different cap");
		return;
	}
	if (st == STATUS_OK && !created && !delivery_same(ch, &q->dlv)) {
		engine_release(s->engine, ch);
		conn_reply_error(c, q->id, STATUS_EXISTS, "channel exists with other delivery options");
		return;
	}
	if (st == STATUS_OK && !created && chan_durable(ch) != q->dlv.durable) {
		engine_release(s->engine, ch);
		conn_reply_error(c, q->id, STATUS_EXISTS, chan_durable(ch) ?
		    "channel exists and is durable" : "channel exists and is not durable");
		return;
	}
	if (st == STATUS_OK && created && delivery_attach(ch, &q->dlv) != STATUS_OK) {
		/* a channel without the options asked for must not stay */
		engine_delete(s->engine, ch, NULL);
		engine_release(s->engine, ch);
		conn_reply_error(c, q->id, STATUS_LIMIT, "out of memory");
		return;
	}
	if (st != STATUS_OK) {
		/* below max_channels only memory or (anonymous) the kernel's random bytes fail */
		conn_reply_error(c, q->id, st, engine_nchannels(s->engine) >= s->cfg.max_channels ?
		    "max_channels reached" : q->name == NULL ?
		    "out of memory or of random bytes for an anonymous name" : "out of memory");
		return;
	}
	if (created)
		acl_created(c, ch);
	if (created && q->dlv.durable)
		durable_declare(s->durable, ch);
	/* engine_make gave us a hold: an anonymous channel keeps it for this connection */
	if (chan_anonymous(ch) && conn_hold(c, ch) < 0) {
		engine_release(s->engine, ch);
		conn_reply_error(c, q->id, STATUS_LIMIT, "out of memory");
		return;
	}
	name = chan_name(ch, &nlen);
	if (proto_rep_make(&s->out, q->id, name, nlen, chan_cap(ch), created) == 0) {
		if (created && q->dlv.durable)
			durable_hold(s->durable, c, true, false);	/* made once its declaration is written */
		else
			conn_flush_out(c);
	}
	engine_release(s->engine, ch);
}

static void
op_open(struct conn *c, const struct proto_request *q)
{
	struct chan *ch = find_chan(c, q, 0);

	if (ch == NULL)
		return;
	/*
	 * Not for another node, forwarding its client's OPEN (§17): the hold
	 * would last as long as the nodes stay connected, not the client.
	 */
	if (chan_anonymous(ch) && c->node[0] == '\0' && conn_hold(c, ch) < 0) {
		conn_reply_error(c, q->id, STATUS_LIMIT, "out of memory");
		return;
	}
	if (proto_rep_uint(&c->srv->out, q->id, chan_cap(ch)) == 0)
		conn_flush_out(c);
}

/* SEND, RECV and SELECT: build engine cases and run them as one request. */
static int
make_case(struct conn *c, const struct proto_case *pc, struct engine_case *ec)
{
	ec->dir = pc->dir ? CASE_SEND : CASE_RECV;
	ec->value = NULL;
	ec->ch = NULL;
	if (pc->name != NULL) {
		ec->ch = engine_lookup(c->srv->engine, pc->name, pc->name_len);
		if (ec->ch == NULL)
			return STATUS_NOT_FOUND;
	}
	if (pc->dir && (ec->value = value_new(pc->value.raw, pc->value.raw_len)) == NULL)
		return STATUS_LIMIT;
	return STATUS_OK;
}

static void
free_case_values(struct engine_case *ec, size_t n)
{
	for (size_t i = 0; i < n; i++)
		value_free(ec[i].value);
}

static void
op_send_recv(struct conn *c, const struct proto_request *q)
{
	struct proto_case pc = {
		.dir = q->op == OP_SEND, .name = q->name, .name_len = q->name_len, .value = q->value,
	};
	struct engine_case ec;
	int st;

	if (!acl_allow(c, q->id, q->op == OP_SEND ? RIGHT_SEND : RIGHT_RECV, q->name, q->name_len))
		return;
	if ((st = make_case(c, &pc, &ec)) != STATUS_OK) {
		conn_reply_error(c, q->id, st, st == STATUS_NOT_FOUND ? "no such channel" : "out of memory");
		return;
	}
	request_run(c, q, &ec, 1, wait_flags(q));
}

static void
op_select(struct conn *c, const struct proto_request *q)
{
	struct engine_case *ec = c->srv->ecases;
	int st;

	if (!acl_allow_cases(c, q))
		return;
	conn_before_long_work(c, q->ncases);
	for (uint32_t i = 0; i < q->ncases; i++) {
		if ((st = make_case(c, &q->cases[i], &ec[i])) != STATUS_OK) {
			free_case_values(ec, i + 1);
			if (proto_rep_case_error(&c->srv->out, q->id, st,
			    st == STATUS_NOT_FOUND ? "no such channel" : "out of memory", i) == 0)
				conn_flush_out(c);
			return;
		}
	}
	/*
	 * held (§17): a cross-node select's group, its cases in its home's
	 * random order; its send cases wait for the home's grant (XSETTLE)
	 * before they send
	 */
	request_run(c, q, ec, q->ncases, wait_flags(q) | (q->has_default ? ENGINE_DEFAULT : 0) |
	    (q->hold ? ENGINE_CLAIM | ENGINE_ORDERED : 0));
}

/* The reply just encoded: after the journal has the change when it was to a durable channel. */
static void
reply_journaled(struct conn *c, bool durable)
{
	if (durable && c->srv->durable != NULL)
		durable_hold(c->srv->durable, c, true, false);
	else
		conn_flush_out(c);
}

static void
op_close(struct conn *c, const struct proto_request *q)
{
	const struct proto_close_err *qe = &q->close_err;
	struct chan *ch = find_chan(c, q, RIGHT_CLOSE);
	struct close_err *err = NULL;
	int st;

	if (ch == NULL || !acl_close(c, q->id, ch))
		return;
	if (chan_closed(ch)) {
		conn_reply_error(c, q->id, STATUS_CLOSED, "close of closed channel");
		return;
	}
	if (qe->set && (err = close_err_new(qe->code, qe->msg, qe->msg_len)) == NULL) {
		conn_reply_error(c, q->id, STATUS_LIMIT, "out of memory");
		return;
	}
	st = engine_close_err(c->srv->engine, ch, err);
	close_err_unref(err);
	if (st != STATUS_OK)
		conn_reply_error(c, q->id, STATUS_CLOSED, "close of closed channel");
	else if (proto_rep_ok(&c->srv->out, q->id) == 0)
		reply_journaled(c, chan_durable(ch));
}

/* LEN: the buffer, values given back for redelivery, and those in flight (§16). */
static uint64_t
chan_length(const struct chan *ch)
{
	return (uint64_t)chan_len(ch) + chan_nback(ch) + delivery_inflight(ch);
}

static void
op_len_cap(struct conn *c, const struct proto_request *q)
{
	struct chan *ch = find_chan(c, q, 0);

	if (ch == NULL)
		return;
	if (proto_rep_uint(&c->srv->out, q->id, q->op == OP_LEN ? chan_length(ch) : chan_cap(ch)) == 0)
		conn_flush_out(c);
}

/*
 * ACK (§16): every tag in flight on c is acked. A tag that is not ends the
 * reply as an error naming the first such tag (the others were acked all
 * the same: a late ACK must not turn into a redelivery).
 */
static void
op_ack(struct conn *c, const struct proto_request *q)
{
	struct proto_list l = q->tags;
	uint64_t tag, bad = 0, acked = 0, n = q->tags.left;
	uint64_t staged = durable_staged(c->srv->durable);
	int st, bad_st = STATUS_OK;
	char why[128];

	while (proto_list_tag(&l, &tag) == 1) {
		if ((st = delivery_ack(c->srv->delivery, c, tag)) == STATUS_OK)
			acked++;
		else if (bad_st == STATUS_OK) {
			bad_st = st;
			bad = tag;
		}
	}
	if (bad_st == STATUS_OK) {
		/* an ACK on a durable channel is answered once its record is written */
		if (proto_rep_uint(&c->srv->out, q->id, acked) == 0)
			reply_journaled(c, durable_staged(c->srv->durable) != staged);
		return;
	}
	snprintf(why, sizeof why, "tag %" PRIu64 " %s (%" PRIu64 " of %" PRIu64 " acked)", bad,
	    bad_st == STATUS_NOT_FOUND ? "is not in flight" : "is held by another connection",
	    acked, n);
	conn_reply_error(c, q->id, bad_st, why);
}

/* NACK and TOUCH (§16). */
static void
op_nack_touch(struct conn *c, const struct proto_request *q)
{
	struct delivery *d = c->srv->delivery;
	uint64_t staged = durable_staged(c->srv->durable);
	int st = q->op == OP_NACK ? delivery_nack(d, c, q->tag, q->delay_us) :
	    delivery_touch(d, c, q->tag);

	if (st == STATUS_NOT_FOUND)
		conn_reply_error(c, q->id, st, "tag is not in flight");
	else if (st != STATUS_OK)
		conn_reply_error(c, q->id, st, "tag is held by another connection");
	else if (proto_rep_ok(&c->srv->out, q->id) == 0)
		reply_journaled(c, durable_staged(c->srv->durable) != staged);
}

/* XSETTLE (§17): a held SELECT value kept or given back. */
static void
op_xsettle(struct conn *c, const struct proto_request *q)
{
	uint64_t staged = durable_staged(c->srv->durable);
	int st = xhold_settle(c->srv->xhold, c, q->target, q->keep);

	if (st == XHOLD_NONE)
		conn_reply_error(c, q->id, STATUS_NOT_FOUND, "no value is held for that request");
	else if (st == STATUS_DEADLINE_EXCEEDED)
		conn_reply_error(c, q->id, st, "the send case is not ready any more (no receiver, no room)");
	else if (st != STATUS_OK)
		conn_reply_error(c, q->id, st, request_status_message(st));
	else if (proto_rep_ok(&c->srv->out, q->id) == 0)
		/* a send kept on a durable channel is answered once its record is written */
		reply_journaled(c, durable_staged(c->srv->durable) != staged);
}

static void
op_cancel(struct conn *c, const struct proto_request *q)
{
	struct request *r = request_find(c, q->target);

	/* never pending (it would have been a duplicate id): a client bug, not a race */
	if (q->target == q->id) {
		conn_reply_error(c, q->id, STATUS_BAD_REQUEST, "CANCEL cannot target its own id");
		return;
	}
	if (r == NULL) {
		conn_reply_error(c, q->id, STATUS_NOT_FOUND, "no pending request with that id");
		return;
	}
	/* a cross-node select's group canceled once its home answered: nobody waits (§17) */
	if (q->deferred && r->xhold == PROTO_HOLD_PARKED)
		r->deferred = true;
	request_cancel(r, STATUS_CANCELED);
	if (proto_rep_ok(&c->srv->out, q->id) == 0)
		conn_flush_out(c);
}

/*
 * WANT (§15): a thread waits for target's reply now. A pending target's
 * reply will not be held; a finished one's may be held: release it. The
 * client does not wait for WANT's own reply, so it is always held.
 */
static void
op_want(struct conn *c, const struct proto_request *q)
{
	struct request *r = request_find(c, q->target);

	if (r != NULL)
		r->deferred = false;
	if (proto_rep_ok(&c->srv->out, q->id) == 0)
		conn_queue_out(c, true);
	if (r == NULL)
		conn_release(c);
}

static void
op_delete(struct conn *c, const struct proto_request *q)
{
	struct chan *ch = find_chan(c, q, RIGHT_DELETE);
	size_t discarded = 0;
	bool durable;

	if (ch == NULL)
		return;
	durable = chan_durable(ch);	/* the delete may free ch */
	engine_delete(c->srv->engine, ch, &discarded);
	if (proto_rep_uint(&c->srv->out, q->id, discarded) == 0)
		reply_journaled(c, durable);
}

static void
op_info(struct conn *c, const struct proto_request *q)
{
	struct chan *ch = find_chan(c, q, 0);
	struct proto_chan_info i;
	size_t nlen;

	if (ch == NULL)
		return;
	i = (struct proto_chan_info){
		.len = chan_len(ch), .cap = chan_cap(ch), .closed = chan_closed(ch),
		.anonymous = chan_anonymous(ch), .senders = chan_nsenders(ch),
		.receivers = chan_nreceivers(ch), .bytes = chan_buffered_bytes(ch),
	};
	i.len = chan_length(ch);
	delivery_chan_info(ch, &i);
	durable_chan_info(c->srv->durable, ch, &i);
	i.name = chan_name(ch, &nlen);
	i.name_len = (uint32_t)nlen;
	request_close_err(chan_close_error(ch), &i.close_err);
	if (proto_rep_info(&c->srv->out, q->id, &i) == 0)
		conn_flush_out(c);
}

static op_handler *const handlers[OP_MAX + 1] = {
	[OP_HELLO] = op_hello,
	[OP_PING] = op_ping,
	[OP_MAKE] = op_make,
	[OP_OPEN] = op_open,
	[OP_SEND] = op_send_recv,
	[OP_RECV] = op_send_recv,
	[OP_CLOSE] = op_close,
	[OP_LEN] = op_len_cap,
	[OP_CAP] = op_len_cap,
	[OP_SELECT] = op_select,
	[OP_CANCEL] = op_cancel,
	[OP_DELETE] = op_delete,
	[OP_INFO] = op_info,
	[OP_STATS] = admin_stats,
	[OP_CHANNELS] = admin_channels,
	[OP_CLIENTS] = admin_clients,
	[OP_WAITERS] = admin_waiters,
	[OP_UNBLOCK] = admin_unblock,
	[OP_SHUTDOWN] = admin_shutdown,
	[OP_STREAM] = stream_request,
	[OP_CREDIT] = stream_credit,
	[OP_WANT] = op_want,
	[OP_ACK] = op_ack,
	[OP_NACK] = op_nack_touch,
	[OP_TOUCH] = op_nack_touch,
	[OP_INFLIGHT] = admin_inflight,
	[OP_CLUSTER_NODES] = admin_cluster_nodes,
	[OP_XSETTLE] = op_xsettle,
	[OP_OR] = link_request,
	[OP_OR_DONE] = link_request,
	[OP_TEE] = link_request,
	[OP_BRIDGE] = link_request,
	[OP_FAN_IN] = link_request,
	[OP_REPEAT] = link_request,
	[OP_TAKE] = link_request,
	[OP_FAN_OUT] = link_request,
};

/* Rights that belong to a whole family of ops: admin (§11) and links (§12, the creator's rights). */
static bool
allowed(struct conn *c, const struct proto_request *q)
{
	if ((q->op >= OP_STATS && q->op <= OP_SHUTDOWN) || q->op == OP_INFLIGHT || q->op == OP_CLUSTER_NODES)
		return acl_admin(c, q->id);
	if (q->op >= OP_LINK_MIN && q->op <= OP_FAN_OUT)
		return acl_link(c, q);
	return true;
}

/* A request answered before its handler ran: count it like any other. */
static void
early_reply(struct conn *c, const struct proto_request *q, int status, const char *why,
    int64_t start)
{
	stats_record(&c->srv->ops, q->op, status, clock_now_ns() - start);
	if (status == STATUS_PROTOCOL)
		conn_close_after_flush(c, q->id, status, why);
	else
		conn_reply_error(c, q->id, status, why);
}

/*
 * A request reuses an id that is still in use (PROTOCOL.md §9): a reply to
 * it could not be told from the other's, so it gets none; the notice goes
 * to id 0 and the connection closes, its pending requests CANCELED first.
 */
static void
duplicate_id(struct conn *c, const struct proto_request *q, int64_t start)
{
	char why[96];

	snprintf(why, sizeof why, "duplicate request id %" PRIu64 ": %s", q->id,
	    request_find(c, q->id) != NULL ? "a request with that id is pending" :
	    router_id_in_use(c, q->id) ? "a request with that id is waiting for etcd or its owner" :
	    "the deferred reply to that id has not been written yet");
	stats_record(&c->srv->ops, q->op, STATUS_PROTOCOL, clock_now_ns() - start);
	conn_protocol_error(c, 0, why);
}

void
dispatch_frame(struct conn *c, const uint8_t *body, size_t len, int64_t *now)
{
	struct server *s = c->srv;
	struct proto_request q;
	const char *why = NULL;
	int64_t start = now != NULL && *now != 0 ? *now : clock_now_ns();
	struct proto_limits lim;
	int st;

	if (now != NULL)
		*now = 0;	/* the paths that end early read the clock again: rare */

	s->stats.requests_total++;
	/* another node's connection may pass on error values (its links' pumps, PROTOCOL.md §17) */
	lim = s->limits;
	lim.error_values = c->node[0] != '\0';
	st = proto_decode_request(body, len, &lim, s->cases, (uint32_t)s->cfg.max_select_cases,
	    &q, &why);
	if (st == STATUS_PROTOCOL) {
		conn_protocol_error(c, 0, why);
		return;
	}
	if (!c->hello && q.op != OP_HELLO) {
		early_reply(c, &q, STATUS_PROTOCOL, "the first request must be HELLO", start);
		return;
	}
	if (conn_id_in_use(c, q.id) || router_id_in_use(c, q.id)) {
		duplicate_id(c, &q, start);
		return;
	}
	if (st != STATUS_OK) {
		early_reply(c, &q, st, why, start);
		return;
	}
	if (s->shutting_down) {
		early_reply(c, &q, STATUS_SHUTTING_DOWN, "server is shutting down", start);
		return;
	}
	if (handlers[q.op] == NULL) {
		early_reply(c, &q, STATUS_BAD_REQUEST, "unknown op", start);
		return;
	}
	/* conn_flush_out notes the status of the reply to this request, if it comes now */
	s->current = (struct current_request){ .conn = c, .id = q.id, .status = STATUS_OK,
	    .deferred = q.deferred, .start_ns = start };
	if (allowed(c, &q) && router_local(c, &q, body, len))
		handlers[q.op](c, &q);
	s->current.conn = NULL;
	/* a request still pending is counted when it ends, one that ended already was */
	if (request_find(c, q.id) == NULL && !s->current.counted) {
		int64_t end = clock_now_ns();

		stats_record(&s->ops, q.op, s->current.status, end - start);
		if (now != NULL)
			*now = end;
	}
}
