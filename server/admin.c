/*
 * admin.c: operator views of the broker: its counters, its channels, its
 * clients, and every blocked operation (the broker's goroutine dump).
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <fnmatch.h>
#include <inttypes.h>
#include <string.h>

#include <event2/buffer.h>

#include "admin.h"
#include "clock.h"
#include "cluster.h"
#include "codec.h"
#include "conn.h"
#include "conn_io.h"
#include "delivery.h"
#include "durable.h"
#include "log.h"
#include "request.h"
#include "server.h"

#define LIST_DEFAULT_LIMIT 1000

static void
finish(struct conn *c, uint64_t id, int rc)
{
	if (proto_rep_end(&c->srv->out, rc) < 0)	/* the request still gets its one reply */
		conn_reply_error(c, id, STATUS_LIMIT, "out of memory");
	else
		conn_flush_out(c);
}

/* PROTOCOL.md §17's STATS keys: 11 of them. */
static int
pack_cluster(struct proto_out *o, const struct cluster_stats *cs)
{
	return proto_pack_kv_uint(o, "cluster_serving", cs->serving) |
	    proto_pack_kv_uint(o, "cluster_nodes", cs->nodes) |
	    proto_pack_kv_uint(o, "cluster_owned", cs->owned) |
	    proto_pack_kv_uint(o, "cluster_moved", cs->moved) |
	    proto_pack_kv_uint(o, "cluster_unavailable", cs->unavailable) |
	    proto_pack_kv_uint(o, "cluster_etcd_errors", cs->etcd_errors) |
	    proto_pack_kv_uint(o, "cluster_sessions", cs->sessions) |
	    proto_pack_kv_uint(o, "cluster_forwarded", cs->forwarded) |
	    proto_pack_kv_uint(o, "cluster_peer_errors", cs->peer_errors) |
	    proto_pack_kv_uint(o, "cluster_peers", cs->peers) |
	    proto_pack_kv_uint(o, "cluster_xselect_retries", cs->xselect_retries) |
	    proto_pack_kv_uint(o, "cluster_xselect_firm", cs->xselect_firm);
}

/* With data_dir: the journal's eight keys (PROTOCOL.md §11, §16). */
static int
pack_journal(struct proto_out *o, const struct durable *d)
{
	struct durable_stats ds;

	durable_stats(d, &ds);
	return proto_pack_kv_uint(o, "journal_bytes", ds.log_bytes) |
	    proto_pack_kv_uint(o, "journal_channels", ds.channels) |
	    proto_pack_kv_uint(o, "journal_syncs", ds.syncs) |
	    proto_pack_kv_uint(o, "journal_last_fsync_us", ds.last_sync_ns / 1000) |
	    proto_pack_kv_uint(o, "journal_max_fsync_us", ds.max_sync_ns / 1000) |
	    proto_pack_kv_uint(o, "journal_errors", ds.errors) |
	    proto_pack_kv_uint(o, "journal_failing", ds.failing) |
	    proto_pack_kv_uint(o, "journal_compactions", ds.compactions);
}

void
admin_stats(struct conn *c, const struct proto_request *q)
{
	struct server *s = c->srv;
	struct proto_out *o = &s->out;
	uint64_t pending = 0;
	struct delivery_counters dc;
	struct conn *k;
	int rc;

	TAILQ_FOREACH(k, &s->conns, link)
		pending += hmap_count(&k->pending);
	delivery_counters(s->delivery, &dc);
	rc = proto_rep_begin(o, q->id, 1) |
	    proto_pack_map(o, 17 + (s->cluster != NULL ? 12 : 0) + (s->durable != NULL ? 8 : 0)) |
	    proto_pack_kv_uint(o, "uptime_ms", (uint64_t)(clock_now_ns() - s->started_ns) / NSEC_PER_MSEC) |
	    proto_pack_kv_uint(o, "connections", s->nconns) |
	    proto_pack_kv_uint(o, "connections_total", s->stats.connections_total) |
	    proto_pack_kv_uint(o, "channels", engine_nchannels(s->engine)) |
	    proto_pack_kv_uint(o, "waiters", engine_nwaiters(s->engine)) |
	    proto_pack_kv_uint(o, "waiters_held", s->stats.waiters_held) |
	    proto_pack_kv_uint(o, "held_bytes", s->stats.held_bytes) |
	    proto_pack_kv_uint(o, "input_buffer_bytes", s->input_held) |
	    proto_pack_kv_uint(o, "pending_requests", pending) |
	    proto_pack_kv_uint(o, "buffered_bytes", engine_buffered_bytes(s->engine)) |
	    proto_pack_kv_uint(o, "requests_total", s->stats.requests_total) |
	    proto_pack_kv_uint(o, "protocol_errors", s->stats.protocol_errors) |
	    proto_pack_kv_uint(o, "inflight", dc.inflight) |
	    proto_pack_kv_uint(o, "acked", dc.acked) |
	    proto_pack_kv_uint(o, "redelivered", dc.redelivered) |
	    proto_pack_kv_uint(o, "dead_lettered", dc.dead_lettered) |
	    proto_pack_kv_uint(o, "delivery_dropped", dc.dropped);
	if (s->cluster != NULL)
		rc |= pack_cluster(o, cluster_stats(s->cluster));
	if (s->durable != NULL)
		rc |= pack_journal(o, s->durable);
	finish(c, q->id, rc);
}

void
admin_inflight(struct conn *c, const struct proto_request *q)
{
	struct server *s = c->srv;
	struct chan *ch = engine_lookup(s->engine, q->name, q->name_len);
	uint64_t total = 0;
	int rc;

	if (ch == NULL) {
		conn_reply_error(c, q->id, STATUS_NOT_FOUND, "no such channel");
		return;
	}
	if (!delivery_on(ch)) {
		conn_reply_error(c, q->id, STATUS_BAD_REQUEST, "not an ack channel");
		return;
	}
	rc = proto_rep_begin(&s->out, q->id, 2) |
	    delivery_list(ch, &s->out, q->limit ? q->limit : LIST_DEFAULT_LIMIT, &total);
	finish(c, q->id, rc | proto_pack_uint(&s->out, total));
}

struct chan_walk {
	struct proto_out *o;
	const struct proto_request *q;
	const struct durable *durable;
	char pattern[PROTO_NAME_MAX + 1];
	uint64_t limit, matched, packed;
	int rc;
};

static int
chan_visit(struct chan *ch, void *arg)
{
	struct chan_walk *w = arg;
	struct proto_chan_info i = { 0 };
	size_t nlen;

	i.name = chan_name(ch, &nlen);
	i.name_len = (uint32_t)nlen;
	/* names hold no NUL (UTF-8 without control characters), so fnmatch sees all of it */
	if (w->q->pattern && fnmatch(w->pattern, i.name, 0) != 0)
		return 0;
	w->matched++;
	if (w->packed >= w->limit)
		return 0;
	w->packed++;
	/* as INFO: an ack channel's len counts what is in flight, and its map has its counters */
	i.len = (uint64_t)chan_len(ch) + chan_nback(ch) + delivery_inflight(ch);
	i.cap = chan_cap(ch);
	i.closed = chan_closed(ch);
	i.anonymous = chan_anonymous(ch);
	i.senders = chan_nsenders(ch);
	i.receivers = chan_nreceivers(ch);
	i.bytes = chan_buffered_bytes(ch);
	request_close_err(chan_close_error(ch), &i.close_err);
	delivery_chan_info(ch, &i);
	durable_chan_info(w->durable, ch, &i);
	w->rc |= proto_pack_chan_info(w->o, &i);
	return 0;
}

/* Two passes: count what will be listed (the array header comes first), then pack it. */
void
admin_channels(struct conn *c, const struct proto_request *q)
{
	struct chan_walk w = { .o = &c->srv->out, .q = q, .durable = c->srv->durable };

	w.limit = q->limit ? q->limit : LIST_DEFAULT_LIMIT;
	if (q->pattern)
		snprintf(w.pattern, sizeof w.pattern, "%.*s", (int)q->pattern_len, q->pattern);
	w.packed = w.limit;	/* first pass: count only */
	engine_foreach_chan(c->srv->engine, chan_visit, &w);
	w.rc = proto_rep_begin(w.o, q->id, 2) |
	    proto_pack_array(w.o, w.matched < w.limit ? w.matched : w.limit);
	w.matched = w.packed = 0;
	engine_foreach_chan(c->srv->engine, chan_visit, &w);
	finish(c, q->id, w.rc | proto_pack_uint(w.o, w.matched));
}

void
admin_clients(struct conn *c, const struct proto_request *q)
{
	struct server *s = c->srv;
	struct proto_out *o = &s->out;
	int64_t now = clock_now_ns();
	struct conn *k;
	int rc = proto_rep_begin(o, q->id, 1) | proto_pack_array(o, s->nconns);

	TAILQ_FOREACH(k, &s->conns, link) {
		struct proto_client_info i = {
			.id = k->id, .peer = k->peer, .peer_len = (uint32_t)strlen(k->peer),
			.name = k->client, .name_len = (uint32_t)strlen(k->client),
			.pending = hmap_count(&k->pending),
			.age_ms = (uint64_t)(now - k->connected_ns) / NSEC_PER_MSEC,
			.unsent = io_unsent(k),
		};

		rc |= proto_pack_client_info(o, &i);
	}
	finish(c, q->id, rc);
}

struct node_pack {
	struct proto_out *o;
	const char *self;
	uint64_t left_ms;
	size_t n;
	int rc;
};

static void
pack_node(void *arg, const char *node, const char *addr, uint64_t owned)
{
	struct node_pack *p = arg;
	bool self = strcmp(node, p->self) == 0;
	struct proto_node_info i = {
		.name = node, .name_len = (uint32_t)strlen(node),
		.advertise = addr, .advertise_len = (uint32_t)strlen(addr),
		.owned = owned, .self = self, .lease_left_ms = self ? p->left_ms : 0,
	};

	if (p->n-- > 0)		/* exactly as many as the array announced */
		p->rc |= proto_pack_node_info(p->o, &i);
}

void
admin_cluster_nodes(struct conn *c, const struct proto_request *q)
{
	struct server *s = c->srv;
	struct node_pack p = { &s->out, NULL, 0, 0, 0 };

	if (s->cluster == NULL) {
		conn_reply_error(c, q->id, STATUS_BAD_REQUEST, "not a cluster node (no cluster_etcd)");
		return;
	}
	p.self = cluster_self(s->cluster);
	p.left_ms = cluster_lease_left_ms(s->cluster);
	p.n = cluster_stats(s->cluster)->nodes;
	p.rc = proto_rep_begin(p.o, q->id, 1) | proto_pack_array(p.o, p.n);
	cluster_each_node(s->cluster, pack_node, &p);
	finish(c, q->id, p.rc);
}

static int
pack_waiter(struct proto_out *o, struct request *r, int64_t now)
{
	struct proto_waiter_info w = {
		.client = r->conn->id, .request = r->id, .op = r->op,
		.waited_ms = (uint64_t)(now - r->start_ns) / NSEC_PER_MSEC,
		.ncases = (uint32_t)request_ncases(r),
		.home = r->conn->node, .home_len = (uint32_t)strlen(r->conn->node),
	};
	int rc = proto_pack_waiter_head(o, &w);

	for (uint32_t i = 0; i < w.ncases; i++) {
		enum case_dir dir;
		struct chan *ch = request_case(r, i, &dir);
		size_t nlen = 0;
		const char *name = ch ? chan_name(ch, &nlen) : NULL;

		rc |= proto_pack_case(o, (uint8_t)dir, name, nlen);
	}
	return rc;
}

void
admin_waiters(struct conn *c, const struct proto_request *q)
{
	struct server *s = c->srv;
	struct proto_out *o = &s->out;
	uint64_t limit = q->limit ? q->limit : LIST_DEFAULT_LIMIT, total = 0, n;
	int64_t now = clock_now_ns();
	struct hmap_node *hn, *nx;
	struct conn *k;
	size_t pos;
	int rc;

	TAILQ_FOREACH(k, &s->conns, link)
		total += hmap_count(&k->pending);
	n = total < limit ? total : limit;
	rc = proto_rep_begin(o, q->id, 2) | proto_pack_array(o, n);
	TAILQ_FOREACH(k, &s->conns, link) {
		HMAP_FOR_EACH_SAFE(hn, nx, pos, &k->pending) {
			if (n == 0)
				break;
			rc |= pack_waiter(o, HMAP_ENTRY(hn, struct request, node), now);
			n--;
		}
	}
	finish(c, q->id, rc | proto_pack_uint(o, total));
}

/* Like redis's CLIENT UNBLOCK: end another client's pending request(s) with CANCELED. */
void
admin_unblock(struct conn *c, const struct proto_request *q)
{
	struct conn *k;
	uint64_t n = 0;

	TAILQ_FOREACH(k, &c->srv->conns, link)
		if (k->id == q->target)
			break;
	if (k == NULL) {
		conn_reply_error(c, q->id, STATUS_NOT_FOUND, "no such client");
		return;
	}
	if (q->target_req != 0) {
		struct request *r = request_find(k, q->target_req);

		if (r == NULL) {
			conn_reply_error(c, q->id, STATUS_NOT_FOUND, "no such pending request");
			return;
		}
		request_cancel(r, STATUS_CANCELED);
		n = 1;
	} else {
		n = conn_cancel_all(k, STATUS_CANCELED);
	}
	log_info("unblock by=%" PRIu64 " client=%" PRIu64 " canceled=%" PRIu64, c->id, k->id, n);
	if (proto_rep_uint(&c->srv->out, q->id, n) == 0)
		conn_flush_out(c);
}

void
admin_shutdown(struct conn *c, const struct proto_request *q)
{
	log_info("shutdown by=%" PRIu64 " peer=%s", c->id, c->peer);
	if (proto_rep_ok(&c->srv->out, q->id) == 0)
		conn_flush_out(c);
	server_shutdown(c->srv);
}
