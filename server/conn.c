/*
 * conn.c: client connections.
 *
 * Reading: frames are split off the bufferevent's input as they complete;
 * the length is checked the moment its four bytes are in, so an oversize
 * frame costs nothing. Writing: replies are appended to the output buffer
 * and libevent coalesces them into as few writes as it can. When a client
 * does not read its replies and the unsent output passes output_hwm, the
 * server stops reading that client's requests until the output drains to
 * half: backpressure on the one slow client, never on the loop or others.
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
#include "dispatch.h"
#include "log.h"
#include "request.h"
#include "server.h"
#include "tls.h"

#define CLOSE_FLUSH_TIMEOUT_SEC 5

static void conn_read_cb(struct bufferevent *bev, void *arg);
static void conn_write_cb(struct bufferevent *bev, void *arg);
static void conn_event_cb(struct bufferevent *bev, short what, void *arg);

void
conn_flush_out(struct conn *c)
{
	struct proto_out *o = &c->srv->out;
	struct evbuffer *output;

	if (proto_out_len(o) == 0)
		return;
	if (c->dead) {
		proto_out_reset(o);
		return;
	}
	/* each flush carries the reply just encoded: note it if it answers the request in dispatch */
	if (c == c->srv->current.conn && o->last_id == c->srv->current.id)
		c->srv->current.status = o->last_status;
	output = bufferevent_get_output(c->bev);
	if (evbuffer_add(output, proto_out_data(o), proto_out_len(o)) < 0)
		log_error("write-failed client=%" PRIu64 " reason=out-of-memory", c->id);
	proto_out_reset(o);
	if (!c->read_paused && !c->closing &&
	    evbuffer_get_length(output) > c->srv->cfg.output_hwm) {
		c->read_paused = true;
		bufferevent_disable(c->bev, EV_READ);
		log_info("slow-client client=%" PRIu64 " peer=%s unsent=%zu action=pause-reading",
		    c->id, c->peer, evbuffer_get_length(output));
	}
}

void
conn_reply_error(struct conn *c, uint64_t id, int status, const char *msg)
{
	if (proto_rep_error(&c->srv->out, id, status, msg) < 0)
		log_error("reply-failed client=%" PRIu64 " reason=out-of-memory", c->id);
	conn_flush_out(c);
}

int
conn_accept(struct server *s, int fd, const char *peer, bool tls)
{
	struct conn *c = calloc(1, sizeof *c);

	if (c == NULL)
		goto fail;
	if (tls) {
		c->tls = true;
		/* tls_bufferevent closes fd when it fails */
		if ((c->bev = tls_bufferevent(s->tls, s->base, fd)) == NULL) {
			log_error("accept-failed peer=%s reason=\"cannot set up TLS\"", peer);
			free(c);
			return -1;
		}
	} else if ((c->bev = bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE)) == NULL) {
		goto fail;
	}
	c->srv = s;
	c->id = ++s->next_conn_id;
	c->connected_ns = c->active_ns = clock_now_ns();
	snprintf(c->peer, sizeof c->peer, "%s", peer);
	hmap_init(&c->pending, (uint64_t)(uintptr_t)c ^ (uint64_t)c->connected_ns);
	TAILQ_INSERT_TAIL(&s->conns, c, link);
	s->nconns++;
	s->stats.connections_total++;
	bufferevent_setcb(c->bev, conn_read_cb, conn_write_cb, conn_event_cb, c);
	/* never buffer more than one whole frame ahead of the dispatcher */
	bufferevent_setwatermark(c->bev, EV_READ, 0, s->cfg.max_frame + PROTO_FRAME_HDR);
	bufferevent_setwatermark(c->bev, EV_WRITE, s->cfg.output_hwm / 2, 0);
	log_info("connect client=%" PRIu64 " peer=%s%s", c->id, c->peer, tls ? " tls=yes" : "");
	if (s->shutting_down) {
		conn_close_after_flush(c, 0, STATUS_SHUTTING_DOWN, "server is shutting down");
		return 0;
	}
	if (s->nconns > s->cfg.max_connections) {
		log_warn("limit client=%" PRIu64 " peer=%s limit=max_connections value=%" PRIu64,
		    c->id, c->peer, s->cfg.max_connections);
		conn_close_after_flush(c, 0, STATUS_LIMIT, "too many connections (max_connections)");
		return 0;
	}
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	return 0;
fail:
	log_error("accept-failed peer=%s reason=out-of-memory", peer);
	free(c);
	close(fd);
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
	size_t n = 0, count = hmap_count(&c->pending), pos;
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

void
conn_free(struct conn *c)
{
	struct server *s = c->srv;

	if (c->dead)
		return;
	c->dead = true;
	conn_cancel_all(c, STATUS_CANCELED);
	acl_conn_gone(c);
	for (size_t i = 0; i < c->nholds; i++)
		engine_release(s->engine, c->holds[i]);
	free(c->holds);
	hmap_destroy(&c->pending);
	bufferevent_free(c->bev);
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
	struct timeval tv = { .tv_sec = CLOSE_FLUSH_TIMEOUT_SEC };

	if (c->closing || c->dead)
		return;
	conn_cancel_all(c, status == STATUS_SHUTTING_DOWN ? STATUS_SHUTTING_DOWN : STATUS_CANCELED);
	if (msg != NULL)
		conn_reply_error(c, id, status, msg);
	c->closing = true;
	bufferevent_disable(c->bev, EV_READ);
	bufferevent_enable(c->bev, EV_WRITE);
	/* a peer that never reads must not keep the connection forever */
	bufferevent_set_timeouts(c->bev, NULL, &tv);
	bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
	/* never free synchronously (a caller may be using c): the write callback frees it */
	bufferevent_trigger(c->bev, EV_WRITE, BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
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

/* A malformed frame: tell the client why, then close (PROTOCOL.md §9). */
static void
conn_protocol_error(struct conn *c, uint64_t id, const char *why)
{
	c->srv->stats.protocol_errors++;
	log_warn("protocol-error client=%" PRIu64 " peer=%s reason=\"%s\"", c->id, c->peer, why);
	conn_close_after_flush(c, id, STATUS_PROTOCOL, why);
}

/* Split and dispatch every complete frame in the input buffer. */
static void
conn_read_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct server *s = c->srv;

	while (!c->closing && !c->read_paused) {
		size_t avail = evbuffer_get_length(in);
		uint8_t hdr[PROTO_FRAME_HDR];
		const uint8_t *body;
		size_t body_len;
		const char *why;
		long n;

		if (avail < PROTO_FRAME_HDR)
			break;
		c->active_ns = clock_now_ns();
		evbuffer_copyout(in, hdr, sizeof hdr);
		n = proto_frame_split(hdr, sizeof hdr, s->cfg.max_frame, &body, &body_len, &why);
		if (n < 0) {
			conn_protocol_error(c, 0, why);
			return;
		}
		body_len = proto_frame_len(hdr);
		if (avail < PROTO_FRAME_HDR + body_len)
			break;
		body = evbuffer_pullup(in, (ssize_t)(PROTO_FRAME_HDR + body_len)) + PROTO_FRAME_HDR;
		dispatch_frame(c, body, body_len);
		evbuffer_drain(in, PROTO_FRAME_HDR + body_len);
	}
}

static void
conn_write_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	size_t left = evbuffer_get_length(bufferevent_get_output(bev));

	if (c->closing) {
		if (left == 0)
			conn_free(c);
		return;
	}
	if (c->read_paused && left <= c->srv->cfg.output_hwm / 2) {
		c->read_paused = false;
		bufferevent_enable(bev, EV_READ);
		log_info("slow-client client=%" PRIu64 " unsent=%zu action=resume-reading", c->id, left);
		/* frames may already be waiting in the input buffer */
		conn_read_cb(bev, c);
	}
}

/* The TLS handshake is done: note the client certificate's name for HELLO. */
static void
conn_tls_ready(struct conn *c)
{
	c->tls_ready = true;
	tls_peer_name(c->bev, c->cert_name, sizeof c->cert_name);
	log_info("tls-handshake client=%" PRIu64 " peer=%s certificate=%s", c->id, c->peer,
	    c->cert_name[0] ? c->cert_name : "-");
}

static void
conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;
	char why[512];

	if (what & BEV_EVENT_CONNECTED) {
		conn_tls_ready(c);
		return;
	}
	if (c->tls && !c->tls_ready && (what & (BEV_EVENT_ERROR | BEV_EVENT_EOF))) {
		/* plaintext on the TLS port, an untrusted or expired certificate, a bad handshake */
		tls_error(bev, why, sizeof why);
		log_warn("tls-failed client=%" PRIu64 " peer=%s reason=\"%s\"", c->id, c->peer, why);
	} else if (what & BEV_EVENT_TIMEOUT)
		log_warn("flush-timeout client=%" PRIu64 " peer=%s", c->id, c->peer);
	else if (what & BEV_EVENT_ERROR)
		log_debug("socket-error client=%" PRIu64 " reason=\"%s\"", c->id,
		    evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
	conn_free(c);
}

/* Sweep: HELLO deadline and idle connections (a client with pending requests is not idle). */
void
conn_sweep(struct server *s)
{
	int64_t now = clock_now_ns();
	int64_t hello_ns = (int64_t)s->cfg.hello_timeout_ms * NSEC_PER_MSEC;
	int64_t idle_ns = (int64_t)s->cfg.idle_timeout_ms * NSEC_PER_MSEC;
	struct conn *c, *next;

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
		} else if (c->hello && idle_ns > 0 && hmap_count(&c->pending) == 0 &&
		    now - c->active_ns > idle_ns) {
			log_info("idle-timeout client=%" PRIu64 " peer=%s timeout_ms=%" PRIu64
			    " action=close", c->id, c->peer, s->cfg.idle_timeout_ms);
			conn_close_after_flush(c, 0, STATUS_LIMIT, "idle for idle_timeout");
		}
	}
}
