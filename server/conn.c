/*
 * conn.c: client connections.
 *
 * Reading: frames are split off the input as they complete; the length is
 * checked the moment its four bytes are in, so an oversize frame costs
 * nothing (before HELLO, "oversize" is max_hello_frame). What incomplete
 * frames hold is counted server-wide against max_input_buffer_bytes, and
 * each is timed against frame_timeout from its first bytes. Writing:
 * replies are queued on the transport (conn_io.c), which writes them all
 * before the loop sleeps. When a client does not read its
 * replies and the unsent output passes output_hwm, the server stops reading
 * that client's requests until the output drains to half: backpressure on
 * the one slow client, never on the loop or others.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "acl.h"
#include "clock.h"
#include "conn.h"
#include "conn_io.h"
#include "delivery.h"
#include "dispatch.h"
#include "durable.h"
#include "log.h"
#include "request.h"
#include "router.h"
#include "server.h"
#include "tls_session.h"
#include "xhold.h"

#define CLOSE_FLUSH_TIMEOUT_SEC 5

/*
 * A deferred reply (PROTOCOL.md §15) waits in c's output while the held
 * bytes stay small: at most this, and never enough to pause reading
 * (output_hwm), which only a write would undo. Small, so that a client with
 * hundreds of operations in flight gets its replies while it still sends
 * (at 1,024 in flight, holding up to WANT made the client and chand take
 * turns: 16 KiB held, 1.37 M msgs/s; 2 KiB, 2.06 M), and large enough that
 * a client is woken at most once per ~180 SEND replies it did not ask for.
 */
#define DEFER_HOLD_MAX (2 * 1024)

/*
 * The ids of the deferred replies held in c's output: the client has not
 * read them, so no request may reuse those ids yet. An open-addressed set
 * whose slots count only under the current generation, so that writing
 * every held reply empties it at once. Each held reply is at least 7
 * bytes, so DEFER_HOLD_MAX holds fewer than HELD_MAX / 2 of them.
 */
struct held_slot {
	uint64_t id;
	uint32_t gen;
};

#define HELD_MIN 16
#define HELD_MAX 1024

static struct held_slot *
held_find(struct held_slot *t, uint32_t cap, uint32_t gen, uint64_t seed, uint64_t id)
{
	uint32_t i = (uint32_t)hmap_hash_u64(seed, id) & (cap - 1);

	while (t[i].gen == gen && t[i].id != id)
		i = (i + 1) & (cap - 1);
	return &t[i];
}

static int
held_grow(struct conn *c)
{
	uint32_t cap = c->held_cap ? c->held_cap * 2 : HELD_MIN;
	struct held_slot *t;

	if (cap > HELD_MAX || (t = calloc(cap, sizeof *t)) == NULL)
		return -1;
	/* generation 0 marks the empty slots calloc made */
	if (c->held_gen == 0)
		c->held_gen = 1;
	for (uint32_t i = 0; i < c->held_cap; i++) {
		if (c->held[i].gen == c->held_gen)
			*held_find(t, cap, c->held_gen, c->pending.seed, c->held[i].id) = c->held[i];
	}
	free(c->held);
	c->held = t;
	c->held_cap = cap;
	return 0;
}

/*
 * A deferred reply to id is about to be held: note its id. On the
 * in-process pair, or when c's output is being written anyway, nothing
 * stays held. -1 when the id cannot be noted (then the reply must be
 * written, not held).
 */
static int
held_note(struct conn *c, uint64_t id)
{
	struct held_slot *sl;

	if (c->bev != NULL || c->wpending || c->writing)
		return 0;
	if ((c->nheld + 1) * 2 > c->held_cap && held_grow(c) < 0)
		return -1;
	sl = held_find(c->held, c->held_cap, c->held_gen, c->pending.seed, id);
	if (sl->gen != c->held_gen) {
		*sl = (struct held_slot){ .id = id, .gen = c->held_gen };
		c->nheld++;
	}
	return 0;
}

/* c's output is about to be written: nothing is held any more. */
static void
held_clear(struct conn *c)
{
	if (c->nheld == 0)
		return;
	c->nheld = 0;
	if (++c->held_gen == 0) {
		memset(c->held, 0, c->held_cap * sizeof *c->held);
		c->held_gen = 1;
	}
}

bool
conn_id_in_use(struct conn *c, uint64_t id)
{
	if (request_find(c, id) != NULL)
		return true;
	if (c->nheld == 0)
		return false;
	return held_find(c->held, c->held_cap, c->held_gen, c->pending.seed, id)->gen == c->held_gen;
}

void
conn_release(struct conn *c)
{
	held_clear(c);
	io_release(c);
}

/* max_output_bytes, but never below output_hwm + max_frame: backpressure and the largest reply need room. */
static bool
output_over_max(const struct conn *c)
{
	const struct config *cfg = &c->srv->cfg;
	uint64_t max = cfg->max_output_bytes, floor = cfg->output_hwm + cfg->max_frame;

	return max != 0 && io_unsent(c) > (max > floor ? max : floor);
}

void
conn_queue_out(struct conn *c, bool deferred)
{
	struct server *s = c->srv;
	struct proto_out *o = &s->out;
	size_t len = proto_out_len(o);
	int rc;

	if (len == 0)
		return;
	if (c->dead) {
		proto_out_reset(o);
		return;
	}
	/* each flush carries the reply just encoded: note it if it answers the request in dispatch */
	if (c == s->current.conn && o->last_id == s->current.id) {
		s->current.status = o->last_status;
		deferred |= s->current.deferred;
	}
	if (c->gate != NULL && durable_gated(c)) {
		/* behind a reply that waits for the journal: replies keep their order */
		durable_hold(s->durable, c, false, false);
		return;
	}
	if (deferred && io_unsent(c) + len <= DEFER_HOLD_MAX && io_unsent(c) + len <= s->cfg.output_hwm &&
	    held_note(c, o->last_id) == 0) {
		rc = io_hold(c, proto_out_data(o), len);
	} else {
		held_clear(c);
		rc = io_write(c, proto_out_data(o), len);
	}
	if (rc < 0)
		log_error("write-failed client=%" PRIu64 " reason=out-of-memory", c->id);
	proto_out_reset(o);
	conn_output_check(c);
}

void
conn_output_check(struct conn *c)
{
	struct server *s = c->srv;

	if (!c->output_full && output_over_max(c)) {
		/* replies already owed (RECVs in flight, stream credit) outgrow backpressure: a slow consumer */
		c->output_full = true;
		log_warn("limit client=%" PRIu64 " peer=%s limit=max_output_bytes value=%" PRIu64
		    " unsent=%zu action=close", c->id, c->peer, s->cfg.max_output_bytes, io_unsent(c));
		conn_close_after_flush(c, 0, STATUS_LIMIT,
		    "slow consumer: unsent replies passed max_output_bytes");
		return;
	}
	if (!c->read_paused && !c->closing && io_unsent(c) > s->cfg.output_hwm) {
		c->read_paused = true;
		io_read_enable(c, false);
		log_info("slow-client client=%" PRIu64 " peer=%s unsent=%zu action=pause-reading",
		    c->id, c->peer, io_unsent(c));
	}
}

void
conn_flush_out(struct conn *c)
{
	conn_queue_out(c, false);
}

/* Below this, the work costs less than the write syscalls it could add. */
#define LONG_WORK_CASES 16

void
conn_before_long_work(struct conn *c, size_t ncases)
{
	if (ncases >= LONG_WORK_CASES)
		io_write_others(c->srv, c);
}

void
conn_reply_error(struct conn *c, uint64_t id, int status, const char *msg)
{
	if (proto_rep_error(&c->srv->out, id, status, msg) < 0)
		log_error("reply-failed client=%" PRIu64 " reason=out-of-memory", c->id);
	conn_flush_out(c);
}

/* c's transport is open: number it, list it, and start reading unless it must be refused. */
static void
conn_start(struct conn *c, const char *peer)
{
	struct server *s = c->srv;

	c->id = ++s->next_conn_id;
	c->connected_ns = c->active_ns = clock_now_ns();
	snprintf(c->peer, sizeof c->peer, "%s", peer);
	hmap_init(&c->pending, (uint64_t)(uintptr_t)c ^ (uint64_t)c->connected_ns);
	TAILQ_INIT(&c->fwds);
	TAILQ_INIT(&c->ftags);
	TAILQ_INIT(&c->for_etcd);
	TAILQ_INSERT_TAIL(&s->conns, c, link);
	s->nconns++;
	s->stats.connections_total++;
	log_info("connect client=%" PRIu64 " peer=%s%s", c->id, c->peer, c->tls ? " tls=yes" : "");
	if (s->shutting_down) {
		conn_close_after_flush(c, 0, STATUS_SHUTTING_DOWN, "server is shutting down");
		return;
	}
	if (s->nconns > s->cfg.max_connections) {
		log_warn("limit client=%" PRIu64 " peer=%s limit=max_connections value=%" PRIu64,
		    c->id, c->peer, s->cfg.max_connections);
		conn_close_after_flush(c, 0, STATUS_LIMIT, "too many connections (max_connections)");
		return;
	}
	io_read_enable(c, true);
}

int
conn_accept(struct server *s, int fd, const char *peer, bool tls)
{
	struct conn *c = calloc(1, sizeof *c);

	if (c == NULL) {
		close(fd);
		goto fail;
	}
	c->srv = s;
	if (io_open(c, fd, tls) < 0)	/* it closed fd */
		goto fail;
	conn_start(c, peer);
	return 0;
fail:
	log_error("accept-failed peer=%s reason=\"%s\"", peer,
	    tls && c != NULL ? "cannot set up TLS" : "out of memory");
	free(c);
	return -1;
}

int
conn_accept_pair(struct server *s, struct bufferevent *bev, const char *cert_name)
{
	struct conn *c = calloc(1, sizeof *c);

	if (c == NULL)
		goto fail;
	c->srv = s;
	if (io_open_pair(c, bev) < 0)
		goto fail;
	/* the name the TCP connection's certificate would have given it (acl_hello) */
	snprintf(c->cert_name, sizeof c->cert_name, "%s", cert_name);
	conn_start(c, CONN_PEER_IN_PROCESS);
	return 0;
fail:
	log_error("accept-failed peer=%s reason=\"out of memory\"", CONN_PEER_IN_PROCESS);
	bufferevent_free(bev);
	free(c);
	return -1;
}

/*
 * Cancel every pending request of c (their replies are written unless c is
 * dead). Ending one may complete others (a link closes its outputs), so
 * walk a snapshot of the ids and look each one up again.
 */
size_t
conn_cancel_all(struct conn *c, int status)
{
	size_t n = router_cancel_all(c, status), count = hmap_count(&c->pending), pos;
	uint64_t *ids = count ? malloc(count * sizeof *ids) : NULL;
	struct hmap_node *hn;
	struct request *r;

	if (ids == NULL) {
		/* out of memory: one at a time from the first, each gone once cancelled */
		while (n < count && (hn = hmap_first(&c->pending, &pos)) != NULL) {
			request_cancel(HMAP_ENTRY(hn, struct request, node), status);
			n++;
		}
		return n;
	}
	count = 0;
	for (hn = hmap_first(&c->pending, &pos); hn != NULL; hn = hmap_next(&c->pending, hn, &pos))
		ids[count++] = HMAP_ENTRY(hn, struct request, node)->id;
	for (size_t i = 0; i < count; i++) {
		if ((r = request_find(c, ids[i])) != NULL) {
			request_cancel(r, status);
			n++;
		}
	}
	free(ids);
	return n;
}

/* Count what c's input buffer holds in the server's input_held; a closing conn's counts nothing. */
static void
input_account(struct conn *c)
{
	struct server *s = c->srv;
	size_t held = c->closing || c->dead ? 0 : evbuffer_get_length(io_input(c));

	s->input_held = s->input_held - c->in_held + held;
	c->in_held = held;
}

void
conn_free(struct conn *c)
{
	struct server *s = c->srv;

	if (c->dead)
		return;
	c->dead = true;
	conn_cancel_all(c, STATUS_CANCELED);
	/* first: a held ack channel's value goes back never delivered, not as a failed delivery */
	xhold_owner_gone(s->xhold, c);
	delivery_conn_gone(s->delivery, c);
	durable_gate_free(c);
	acl_conn_gone(c);
	for (size_t i = 0; i < c->nholds; i++)
		engine_release(s->engine, c->holds[i]);
	free(c->holds);
	free(c->held);
	hmap_destroy(&c->pending);
	input_account(c);
	io_close(c);
	TAILQ_REMOVE(&s->conns, c, link);
	s->nconns--;
	log_info("disconnect client=%" PRIu64 " peer=%s seconds=%.3f", c->id, c->peer,
	    (double)(clock_now_ns() - c->connected_ns) / NSEC_PER_SEC);
	free(c);
	server_conn_gone(s);
}

void
conn_close_after_flush(struct conn *c, uint64_t id, int status, const char *msg)
{
	if (c->closing || c->dead)
		return;
	conn_cancel_all(c, status == STATUS_SHUTTING_DOWN ? STATUS_SHUTTING_DOWN : STATUS_CANCELED);
	if (msg != NULL)
		conn_reply_error(c, id, status, msg);
	c->closing = true;
	input_account(c);	/* it reads nothing more; its input goes when it does */
	/* a peer that never reads must not keep the connection forever */
	io_close_after_flush(c, CLOSE_FLUSH_TIMEOUT_SEC);
}

int
conn_hold(struct conn *c, struct chan *ch)
{
	if (c->nholds == c->holds_cap) {
		size_t cap = c->holds_cap ? c->holds_cap * 2 : 4;
		struct chan **h = realloc(c->holds, cap * sizeof *h);

		if (h == NULL)
			return -1;
		c->holds = h;
		c->holds_cap = cap;
	}
	engine_hold(ch);
	c->holds[c->nholds++] = ch;
	return 0;
}

void
conn_protocol_error(struct conn *c, uint64_t id, const char *why)
{
	c->srv->stats.protocol_errors++;
	log_warn("protocol-error client=%" PRIu64 " peer=%s reason=\"%s\"", c->id, c->peer, why);
	conn_close_after_flush(c, id, STATUS_PROTOCOL, why);
}

/*
 * The size of the frame at p (avail bytes read): header and body, or 0
 * while it is incomplete. A length over max_frame is refused the moment its
 * header is in, before its body is buffered: -1, and c is closing.
 */
static long
frame_at(struct conn *c, const uint8_t *p, size_t avail)
{
	const uint8_t *body;
	size_t body_len;
	const char *why;
	long n;

	if (avail < PROTO_FRAME_HDR)
		return 0;
	if (!c->hello && proto_frame_len(p) > c->srv->cfg.max_hello_frame) {
		/* a stranger may not make the server buffer much (PROTOCOL.md §13) */
		conn_protocol_error(c, 0, "frame before HELLO is larger than max_hello_frame");
		return -1;
	}
	n = proto_frame_split(p, avail, c->srv->cfg.max_frame, &body, &body_len, &why);
	if (n < 0)
		conn_protocol_error(c, 0, why);
	return n;
}

size_t
conn_input_bytes(struct conn *c, const uint8_t *p, size_t len)
{
	int64_t now = 0;
	size_t off = 0;
	long n;

	while (!c->closing && !c->read_paused && (n = frame_at(c, p + off, len - off)) > 0) {
		dispatch_frame(c, p + off + PROTO_FRAME_HDR, (size_t)n - PROTO_FRAME_HDR, &now);
		off += (size_t)n;
	}
	if (off > 0)
		c->got_frame = true;
	return off;
}

void
conn_input(struct conn *c)
{
	struct evbuffer *in = io_input(c);
	int64_t now = 0;
	size_t avail;
	bool hello;
	long n;

	while (!c->closing && !c->read_paused) {
		if ((avail = evbuffer_get_length(in)) < PROTO_FRAME_HDR)
			return;
		if ((n = frame_at(c, evbuffer_pullup(in, PROTO_FRAME_HDR), avail)) <= 0)
			return;
		hello = c->hello;
		dispatch_frame(c, evbuffer_pullup(in, n) + PROTO_FRAME_HDR, (size_t)n - PROTO_FRAME_HDR,
		    &now);
		evbuffer_drain(in, (size_t)n);
		c->got_frame = true;
		if (c->hello != hello)
			io_limits_changed(c);	/* TLS: read up to max_frame ahead from now on */
	}
}

/* Note the last whole frame, time the partial one left, count what the input buffer holds. */
static void
input_done(struct conn *c)
{
	int64_t now = 0;

	if (c->got_frame) {
		/* what is left, if anything, begins a new frame */
		c->got_frame = false;
		c->active_ns = now = clock_now_ns();
		c->frame_start_ns = 0;
	}
	input_account(c);
	if (c->in_held == 0)
		c->frame_start_ns = 0;
	else if (c->frame_start_ns == 0)
		c->frame_start_ns = now != 0 ? now : clock_now_ns();
}

/*
 * The partial frames of all connections hold more than
 * max_input_buffer_bytes: close the connections holding the most until they
 * fit (redis's client eviction). A closing conn's input counts nothing; it
 * is freed with the conn once its notice is written.
 */
static void
input_over_budget(struct server *s)
{
	struct conn *c, *big;

	if (s->cfg.max_input_buffer_bytes == 0)	/* no limit */
		return;
	while (s->input_held > s->cfg.max_input_buffer_bytes) {
		big = NULL;
		TAILQ_FOREACH(c, &s->conns, link) {
			if (!c->closing && c->in_held > 0 && (big == NULL || c->in_held > big->in_held))
				big = c;
		}
		if (big == NULL)
			return;
		log_warn("limit client=%" PRIu64 " peer=%s limit=max_input_buffer_bytes value=%" PRIu64
		    " held=%zu total=%" PRIu64, big->id, big->peer, s->cfg.max_input_buffer_bytes,
		    big->in_held, s->input_held);
		conn_close_after_flush(big, 0, STATUS_LIMIT,
		    "partial frames over max_input_buffer_bytes: this connection held the most");
	}
}

void
conn_input_done(struct conn *c)
{
	input_done(c);
	input_over_budget(c->srv);
}

size_t
conn_max_frame(const struct conn *c)
{
	const struct config *cfg = &c->srv->cfg;

	if (!c->hello && cfg->max_hello_frame < cfg->max_frame)
		return cfg->max_hello_frame;
	return cfg->max_frame;
}

void
conn_wrote(struct conn *c, size_t left)
{
	if (c->closing) {
		if (left == 0)
			conn_free(c);
		return;
	}
	if (c->read_paused && left <= c->srv->cfg.output_hwm / 2) {
		c->read_paused = false;
		io_read_enable(c, true);
		log_info("slow-client client=%" PRIu64 " unsent=%zu action=resume-reading", c->id, left);
		/* frames may already be waiting in the input buffer; a partial one is timed from now */
		c->frame_start_ns = 0;
		conn_input(c);
		input_done(c);
	}
}

/* The TLS handshake is done: note the client certificate's name for HELLO. */
void
conn_tls_ready(struct conn *c)
{
	c->tls_ready = true;
	tls_session_peer_name(c->tsess, c->cert_name, sizeof c->cert_name);
	log_info("tls-handshake client=%" PRIu64 " peer=%s certificate=%s", c->id, c->peer,
	    c->cert_name[0] ? c->cert_name : "-");
}

void
conn_io_failed(struct conn *c, short what)
{
	if (c->tls && !c->tls_ready && (what & (BEV_EVENT_ERROR | BEV_EVENT_EOF)))
		/* plaintext on the TLS port, an untrusted or expired certificate, a bad handshake */
		log_warn("tls-failed client=%" PRIu64 " peer=%s reason=\"%s\"", c->id, c->peer,
		    tls_session_why(c->tsess));
	else if (what & BEV_EVENT_TIMEOUT)
		log_warn("flush-timeout client=%" PRIu64 " peer=%s", c->id, c->peer);
	else if (what & BEV_EVENT_ERROR)
		log_debug("socket-error client=%" PRIu64 " reason=\"%s\"", c->id,
		    evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
	conn_free(c);
}

/*
 * Sweep: HELLO deadline, frames that take too long, idle connections (a
 * client with pending requests is not idle). A paused reader's frame waits
 * for the server, not for its client.
 */
void
conn_sweep(struct server *s)
{
	int64_t now = clock_now_ns();
	int64_t hello_ns = (int64_t)s->cfg.hello_timeout_ms * NSEC_PER_MSEC;
	int64_t idle_ns = (int64_t)s->cfg.idle_timeout_ms * NSEC_PER_MSEC;
	int64_t frame_ns = (int64_t)s->cfg.frame_timeout_ms * NSEC_PER_MSEC;
	struct conn *c, *next;

	/* a reload may have lowered the budget while the holders stay silent */
	input_over_budget(s);
	for (c = TAILQ_FIRST(&s->conns); c != NULL; c = next) {
		next = TAILQ_NEXT(c, link);
		if (c->closing || c->dead)
			continue;
		if (!c->hello && hello_ns > 0 && now - c->connected_ns > hello_ns) {
			log_warn("hello-timeout client=%" PRIu64 " peer=%s timeout_ms=%" PRIu64
			    " action=close", c->id, c->peer, s->cfg.hello_timeout_ms);
			if (c->tls && !c->tls_ready)
				conn_free(c);	/* no TLS session to say why in */
			else
				conn_close_after_flush(c, 0, STATUS_LIMIT, "no HELLO within hello_timeout");
		} else if (frame_ns > 0 && c->frame_start_ns != 0 && !c->read_paused &&
		    now - c->frame_start_ns > frame_ns) {
			log_warn("frame-timeout client=%" PRIu64 " peer=%s timeout_ms=%" PRIu64
			    " held=%zu action=close", c->id, c->peer, s->cfg.frame_timeout_ms, c->in_held);
			conn_close_after_flush(c, 0, STATUS_LIMIT, "frame not whole within frame_timeout");
		} else if (c->hello && idle_ns > 0 && hmap_count(&c->pending) == 0 &&
		    c->node[0] == '\0' && now - c->active_ns > idle_ns) {
			/* a node's connection lives as long as the cluster: nodes leave through etcd */
			log_info("idle-timeout client=%" PRIu64 " peer=%s timeout_ms=%" PRIu64
			    " action=close", c->id, c->peer, s->cfg.idle_timeout_ms);
			conn_close_after_flush(c, 0, STATUS_LIMIT, "idle for idle_timeout");
		}
	}
}
