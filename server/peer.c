/*
 * peer.c: one bufferevent per peer node on the loop: HELLO first, requests
 * pipelined behind it, replies split into frames and handed to the router.
 * A socket's for the other nodes; for this node itself, one half of a
 * bufferevent pair whose other half is served as an accepted connection.
 * Under TLS the bufferevent connects and holds records only: a connecting
 * tls_session seals what flush_cb writes and opens what direct_read_cb
 * reads, as conn_io.c does for clients.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>
#include <openssl/ssl.h>

#include "clock.h"
#include "codec.h"
#include "log.h"
#include "peer.h"
#include "tls.h"
#include "tls_session.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000

struct peer {
	struct peers *ps;
	char *node, *addr;
	struct bufferevent *bev;	/* NULL: not connected */
	uint64_t hello_id;
	bool up;			/* its HELLO was accepted */
	bool direct;			/* written by flush_cb, not the bufferevent: TCP once up, TLS from the connect */
	bool wpending;			/* ... and has bytes for flush_cb */
	struct event *rd;		/* ... read by direct_read_cb, not the bufferevent (NULL: by it) */
	bool self;			/* this node itself: an in-process bufferevent pair, no socket */
	struct evbuffer *clear;		/* TLS: requests not yet sealed, the HELLO first (NULL: TCP) */
	struct tls_session *tsess;	/* TLS: the session, from the connect on (NULL before) */
	bool tls_ready;			/* ... its handshake is done */
	int64_t retry_ns;		/* no dialling before this (monotonic) */
	int64_t backoff_ms;
	TAILQ_ENTRY(peer) link;
};

struct peers {
	struct event_base *base;
	struct evdns_base *dns;		/* made on the first advertise that is a host name */
	SSL_CTX *tls;			/* NULL: plain TCP */
	char *self, *token;
	size_t max_frame;
	uint64_t next_id;
	uint64_t *errors, *connected;
	peer_reply *reply;
	peer_lost *lost;
	void *arg;
	peer_self_accept *accept;	/* NULL: this node is dialled over TCP like the others */
	void *accept_arg;
	struct proto_out out;
	char why[512];
	struct event *flush;		/* flush_cb, made active by peer_write */
	TAILQ_HEAD(, peer) list;
};

static void flush_cb(evutil_socket_t fd, short what, void *arg);
static void direct_read_cb(evutil_socket_t fd, short what, void *arg);

/* What direct_read_cb asks one recv for: the bufferevent's own most. */
#define PEER_READ 16384
/* ... and one TLS read for: what a read-ahead of records (tls_session.c) may open into. */
#define PEER_TLS_READ 65536
/* What one SSL_write seals: four full records. */
#define SEAL_MAX 65536

int
peers_new(struct peers **out, struct event_base *base, const char *self, const char *token,
    struct ssl_ctx_st *tls, size_t max_frame, uint64_t *errors, uint64_t *connected)
{
	struct peers *ps = calloc(1, sizeof *ps);

	if (ps == NULL)
		return -1;
	if ((ps->self = strdup(self)) == NULL || (ps->token = strdup(token)) == NULL) {
		free(ps->self);
		free(ps);
		return -1;
	}
	if ((ps->flush = event_new(base, -1, 0, flush_cb, ps)) == NULL) {
		free(ps->token);
		free(ps->self);
		free(ps);
		return -1;
	}
	ps->base = base;
	ps->tls = tls;
	ps->max_frame = max_frame;
	ps->errors = errors;
	ps->connected = connected;
	ps->next_id = 1;
	proto_out_init(&ps->out);
	TAILQ_INIT(&ps->list);
	*out = ps;
	return 0;
}

void
peers_on(struct peers *ps, peer_reply *reply, peer_lost *lost, void *arg)
{
	ps->reply = reply;
	ps->lost = lost;
	ps->arg = arg;
}

void
peers_on_self(struct peers *ps, peer_self_accept *accept, void *arg)
{
	ps->accept = accept;
	ps->accept_arg = arg;
}

static void
close_bev(struct peer *pe)
{
	if (pe->bev == NULL)
		return;
	/* a pair's other half hears nothing of a free: EOF first (its callback is deferred) */
	if (pe->self)
		bufferevent_flush(pe->bev, EV_WRITE, BEV_FINISHED);
	if (pe->rd != NULL)
		event_free(pe->rd);
	pe->rd = NULL;
	tls_session_free(pe->tsess);	/* before the socket it reads closes */
	pe->tsess = NULL;
	if (pe->clear != NULL)
		evbuffer_free(pe->clear);
	pe->clear = NULL;
	bufferevent_free(pe->bev);
	pe->bev = NULL;
	if (pe->up)
		(*pe->ps->connected)--;
	pe->up = pe->direct = pe->wpending = pe->tls_ready = false;
}

void
peers_free(struct peers *ps)
{
	struct peer *pe;

	if (ps == NULL)
		return;
	while ((pe = TAILQ_FIRST(&ps->list)) != NULL) {
		TAILQ_REMOVE(&ps->list, pe, link);
		close_bev(pe);
		free(pe->node);
		free(pe->addr);
		free(pe);
	}
	if (ps->dns != NULL)
		evdns_base_free(ps->dns, 0);
	if (ps->tls != NULL)
		SSL_CTX_free(ps->tls);
	proto_out_destroy(&ps->out);
	event_free(ps->flush);
	free(ps->self);
	free(ps->token);
	free(ps);
}

uint64_t
peers_next_id(struct peers *ps)
{
	return ps->next_id++;
}

const char *
peer_node(const struct peer *pe)
{
	return pe->node;
}

/* Where pe is reached, for logs. */
static const char *
where(const struct peer *pe)
{
	return pe->self ? "in-process" : pe->addr;
}

/* pe's connection is over: count it, back off, and let the router end what was on it. */
static void
drop(struct peer *pe, const char *why)
{
	struct peers *ps = pe->ps;

	log_warn("cluster-peer-lost node=%s addr=%s reason=\"%s\"", pe->node, where(pe), why);
	(*ps->errors)++;
	close_bev(pe);
	pe->backoff_ms = pe->backoff_ms == 0 ? BACKOFF_MIN_MS :
	    pe->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : pe->backoff_ms * 2;
	pe->retry_ns = clock_now_ns() + pe->backoff_ms * NSEC_PER_MSEC;
	if (ps->lost != NULL)
		ps->lost(ps->arg, pe, why);
}

/*
 * Read pe's socket with direct_read_cb from now on, not the bufferevent
 * (which would ask FIONREAD before each read: one more system call a
 * read). Without memory for the event, -1: over TCP the bufferevent goes
 * on reading.
 */
static int
read_directly(struct peer *pe)
{
	pe->rd = event_new(pe->ps->base, bufferevent_getfd(pe->bev), EV_READ | EV_PERSIST,
	    direct_read_cb, pe);
	if (pe->rd != NULL && event_add(pe->rd, NULL) == 0) {
		bufferevent_disable(pe->bev, EV_READ);
		return 0;
	}
	if (pe->rd != NULL)
		event_free(pe->rd);
	pe->rd = NULL;
	return -1;
}

/* Write what pe's bufferevent holds, as much as its socket takes now: evbuffer_write's result. */
static int
send_out(struct peer *pe)
{
	struct evbuffer *out = bufferevent_get_output(pe->bev);
	int n;

	/* a bufferevent keeps its output's start frozen but while its own write runs */
	evbuffer_unfreeze(out, 1);
	/* (-1 for an empty buffer) */
	n = evbuffer_get_length(out) > 0 ? evbuffer_write(out, bufferevent_getfd(pe->bev)) : 0;
	evbuffer_freeze(out, 1);
	return n;
}

/* pe has bytes for flush_cb: it runs once this loop pass's callbacks are done. */
static void
want_flush(struct peer *pe)
{
	if (!pe->wpending) {
		pe->wpending = true;
		event_active(pe->ps->flush, EV_WRITE, 0);
	}
}

/* The reply to our HELLO: up, or dropped with the peer's words. */
static bool
hello_reply(struct peer *pe, const uint8_t *body, size_t len, int status)
{
	struct proto_reply rep;
	const char *why;
	char buf[400];

	if (status == STATUS_OK) {
		pe->up = true;
		pe->backoff_ms = 0;
		(*pe->ps->connected)++;
		log_info("cluster-peer-up node=%s addr=%s", pe->node, where(pe));
		if (pe->ps->tls == NULL && !pe->self) {
			/* from now on flush_cb writes it (what is queued too), direct_read_cb reads it */
			pe->direct = true;
			want_flush(pe);
			(void)read_directly(pe);
		}
		return true;
	}
	if (proto_decode_reply(body, len, OP_HELLO, &rep, &why) != STATUS_OK)
		rep.msg_len = 0;
	snprintf(buf, sizeof buf, "its HELLO was refused: %s: %.*s", status_name(status),
	    (int)rep.msg_len, rep.msg_len ? rep.msg : "");
	drop(pe, buf);
	return false;
}

/* One reply frame, read at now; false when pe was dropped. */
static bool
frame(struct peer *pe, const uint8_t *body, size_t len, int64_t now)
{
	uint64_t id;
	int status;
	const char *why;
	struct proto_reply rep;
	char buf[400];

	if (proto_reply_header(body, len, &id, &status, &why) != STATUS_OK) {
		snprintf(buf, sizeof buf, "malformed reply: %s", why);
		drop(pe, buf);
		return false;
	}
	if (id == pe->hello_id && !pe->up)
		return hello_reply(pe, body, len, status);
	if (id == pe->hello_id) {
		drop(pe, "a second reply to its HELLO");
		return false;
	}
	if (id == 0) {
		/* a notice: the peer closes this connection (PROTOCOL.md §9) */
		if (proto_decode_reply(body, len, OP_PING, &rep, &why) != STATUS_OK)
			rep.msg_len = 0;
		snprintf(buf, sizeof buf, "it closed the connection: %s: %.*s", status_name(status),
		    (int)rep.msg_len, rep.msg_len ? rep.msg : "");
		drop(pe, buf);
		return false;
	}
	if (pe->ps->reply != NULL)
		pe->ps->reply(pe->ps->arg, id, body, len, now);
	return true;
}

static void
read_cb(struct bufferevent *bev, void *arg)
{
	struct peer *pe = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	uint8_t hdr[PROTO_FRAME_HDR], *p;
	size_t flen;
	int64_t now = clock_now_ns();	/* the forwarded latencies of one read: one reading */

	while (evbuffer_get_length(in) >= PROTO_FRAME_HDR) {
		evbuffer_copyout(in, hdr, sizeof hdr);
		flen = proto_frame_len(hdr);
		/* checked before the body is buffered: a lying peer cannot make us hold gigabytes */
		if (flen == 0 || flen > pe->ps->max_frame) {
			drop(pe, "a reply frame is empty or longer than twice max_frame");
			return;
		}
		if (evbuffer_get_length(in) < PROTO_FRAME_HDR + flen)
			return;
		if ((p = evbuffer_pullup(in, (ev_ssize_t)(PROTO_FRAME_HDR + flen))) == NULL) {
			drop(pe, "out of memory");
			return;
		}
		if (!frame(pe, p + PROTO_FRAME_HDR, flen, now))
			return;
		evbuffer_drain(in, PROTO_FRAME_HDR + flen);
	}
}

/* TLS: on with the handshake; 1 done, 0 waiting for the peer, -1 failed (pe dropped). */
static int
handshake(struct peer *pe)
{
	char why[400];
	int rc = tls_session_handshake(pe->tsess);

	if (rc < 0) {
		snprintf(why, sizeof why, "%s", tls_session_why(pe->tsess));
		(void)send_out(pe);	/* best effort: the alert that tells the other node why */
		drop(pe, why);
		return -1;
	}
	if (rc == 1) {
		pe->tls_ready = true;
		want_flush(pe);		/* the HELLO and what queued behind it */
	}
	return rc;
}

/*
 * A TLS peer's socket is readable: the handshake until it is done, then
 * every whole record the session reads ahead, opened into the
 * bufferevent's input, then its frames. When the session may hold more
 * records than one read opened, the callback comes again: the socket may
 * stay silent.
 */
static void
tls_read(struct peer *pe)
{
	struct evbuffer *in = bufferevent_get_input(pe->bev);
	struct evbuffer_iovec v;
	char why[400];
	ssize_t n;

	if (!pe->tls_ready && handshake(pe) <= 0)
		return;
	evbuffer_unfreeze(in, 0);
	if (evbuffer_reserve_space(in, PEER_TLS_READ, &v, 1) != 1) {
		evbuffer_freeze(in, 0);
		drop(pe, "out of memory");
		return;
	}
	n = tls_session_read(pe->tsess, v.iov_base, v.iov_len);
	v.iov_len = n > 0 ? (size_t)n : 0;
	evbuffer_commit_space(in, &v, 1);
	evbuffer_freeze(in, 0);
	if (n > 0) {
		read_cb(pe->bev, pe);
		if (pe->tsess != NULL && tls_session_pending(pe->tsess))
			event_active(pe->rd, EV_READ, 0);
	} else if (n == 0) {
		drop(pe, "the connection was closed");
	} else if (n != TLS_AGAIN) {
		snprintf(why, sizeof why, "a read failed: %s", tls_session_why(pe->tsess));
		drop(pe, why);
	}
}

/*
 * A direct peer's socket is readable: one recv into the bufferevent's
 * input (what it had read stays ahead), then its frames.
 */
static void
direct_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct peer *pe = arg;
	struct evbuffer *in = bufferevent_get_input(pe->bev);
	struct evbuffer_iovec v;
	char why[300];
	ssize_t n = -1;
	int err = ENOMEM;

	(void)what;
	if (pe->tsess != NULL) {
		tls_read(pe);
		return;
	}
	/* a bufferevent keeps its input's end frozen but while its own read runs */
	evbuffer_unfreeze(in, 0);
	if (evbuffer_reserve_space(in, PEER_READ, &v, 1) == 1) {
		n = recv(fd, v.iov_base, v.iov_len, 0);
		err = errno;
		v.iov_len = n > 0 ? (size_t)n : 0;
		evbuffer_commit_space(in, &v, 1);
	}
	evbuffer_freeze(in, 0);
	if (n > 0) {
		read_cb(pe->bev, pe);
	} else if (n == 0) {
		drop(pe, "the connection was closed");
	} else if (err != EAGAIN && err != EWOULDBLOCK && err != EINTR) {
		snprintf(why, sizeof why, "a read failed: %s", evutil_socket_error_to_string(err));
		drop(pe, why);
	}
}

/* The host of addr (HOST:PORT, [V6]:PORT) into host; its port, or -1 when addr is not HOST:PORT. */
static int
addr_host(const char *addr, char *host, size_t cap)
{
	const char *colon = strrchr(addr, ':');
	int port;

	if (colon == NULL || (size_t)(colon - addr) >= cap || (port = atoi(colon + 1)) <= 0 ||
	    port > 65535)
		return -1;
	/* [v6]:port: the brackets are not the host's */
	if (addr[0] == '[' && colon > addr + 1 && colon[-1] == ']')
		snprintf(host, cap, "%.*s", (int)(colon - addr - 2), addr + 1);
	else
		snprintf(host, cap, "%.*s", (int)(colon - addr), addr);
	return port;
}

/* The session's records: behind what the bufferevent holds to write. */
static int
tls_sink(void *arg, const void *p, size_t len)
{
	struct peer *pe = arg;

	if (evbuffer_add(bufferevent_get_output(pe->bev), p, len) != 0)
		return -1;
	want_flush(pe);
	return 0;
}

/*
 * A TLS peer is connected: its session on the socket, which checks the
 * peer's certificate names the host pe->addr dials, and the handshake's
 * first record. From now on flush_cb writes it and direct_read_cb reads
 * it. -1: out of memory.
 */
static int
tls_start(struct peer *pe)
{
	char host[256];

	if (addr_host(pe->addr, host, sizeof host) < 0 ||
	    (pe->tsess = tls_session_new(pe->ps->tls, bufferevent_getfd(pe->bev), host, tls_sink,
	    pe)) == NULL || read_directly(pe) < 0)
		return -1;
	pe->direct = true;
	(void)handshake(pe);	/* its failure dropped pe */
	return 0;
}

static void
event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct peer *pe = arg;
	char buf[300];
	int err = EVUTIL_SOCKET_ERROR();

	if (what & BEV_EVENT_CONNECTED) {
		int one = 1;

		/* small pipelined frames: Nagle would hold one back for the last one's ACK */
		setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		if (pe->clear != NULL && tls_start(pe) < 0)
			drop(pe, "its TLS session cannot be made: out of memory");
		return;
	}
	if (what & BEV_EVENT_EOF)
		snprintf(buf, sizeof buf, "the connection was closed");
	else if (what & BEV_EVENT_TIMEOUT)
		snprintf(buf, sizeof buf, "a write timed out");
	else
		snprintf(buf, sizeof buf, "%s", err ? evutil_socket_error_to_string(err) :
		    "connection failed");
	drop(pe, buf);
}

/*
 * Queue the HELLO on pe->bev and start reading (under TLS: queue it clear,
 * to be sealed after the handshake, read from the connect on). -1 when out
 * of memory.
 */
static int
send_hello(struct peer *pe)
{
	struct peers *ps = pe->ps;

	bufferevent_setcb(pe->bev, read_cb, NULL, event_cb, pe);
	pe->hello_id = peers_next_id(ps);
	proto_out_reset(&ps->out);
	if (proto_req_hello_node(&ps->out, pe->hello_id, "chand-node", ps->token[0] ? ps->token :
	    NULL, ps->self) < 0 || peer_write(pe, proto_out_data(&ps->out), proto_out_len(&ps->out)) < 0)
		return -1;
	return pe->clear != NULL ? 0 : bufferevent_enable(pe->bev, EV_READ);
}

/*
 * This node itself: one half of a bufferevent pair here, the other served
 * by ps->accept as an accepted connection. The same HELLO, requests and
 * replies as over TCP, and the same loss rules (either half's end is the
 * other's EOF), but no socket, no system call and no poll: the pair's
 * deferred callbacks run in the loop pass that wrote. -1 with ps->why.
 */
static int
dial_self(struct peer *pe)
{
	struct peers *ps = pe->ps;
	struct bufferevent *pair[2];

	if (bufferevent_pair_new(ps->base, BEV_OPT_DEFER_CALLBACKS, pair) < 0) {
		snprintf(ps->why, sizeof ps->why, "out of memory");
		goto fail;
	}
	pe->bev = pair[0];
	if (ps->accept(ps->accept_arg, pair[1]) < 0) {	/* it freed pair[1] */
		snprintf(ps->why, sizeof ps->why, "node %s: its in-process connection cannot be made",
		    pe->node);
		goto fail;
	}
	if (send_hello(pe) < 0) {
		snprintf(ps->why, sizeof ps->why, "out of memory");
		goto fail;
	}
	log_info("cluster-peer-dial node=%s addr=in-process", pe->node);
	return 0;
fail:
	(*ps->errors)++;
	if (pe->bev != NULL)
		close_bev(pe);	/* the served half (if any) ends at the EOF */
	pe->backoff_ms = pe->backoff_ms == 0 ? BACKOFF_MIN_MS : pe->backoff_ms;
	pe->retry_ns = clock_now_ns() + pe->backoff_ms * NSEC_PER_MSEC;
	return -1;
}

/* Dial pe->addr and queue the HELLO. -1 with ps->why. */
static int
dial(struct peer *pe)
{
	struct peers *ps = pe->ps;
	struct sockaddr_storage ss;
	int sslen = sizeof ss, port;
	char host[256];
	int rc;

	if ((port = addr_host(pe->addr, host, sizeof host)) < 0) {
		snprintf(ps->why, sizeof ps->why, "node %s: advertise address %s is not HOST:PORT",
		    pe->node, pe->addr);
		goto fail_quiet;
	}
	if ((pe->bev = bufferevent_socket_new(ps->base, -1, BEV_OPT_CLOSE_ON_FREE)) == NULL ||
	    (ps->tls != NULL && (pe->clear = evbuffer_new()) == NULL) || send_hello(pe) < 0)
		goto fail;
	if (evutil_parse_sockaddr_port(pe->addr, (struct sockaddr *)&ss, &sslen) == 0) {
		rc = bufferevent_socket_connect(pe->bev, (struct sockaddr *)&ss, sslen);
	} else {
		/* a host name: resolved on the loop, never by a blocking call */
		if (ps->dns == NULL &&
		    (ps->dns = evdns_base_new(ps->base, EVDNS_BASE_INITIALIZE_NAMESERVERS)) == NULL)
			goto fail;
		rc = bufferevent_socket_connect_hostname(pe->bev, ps->dns, AF_UNSPEC, host, port);
	}
	/* a connect that failed at once may have run event_cb already (pe->bev NULL then) */
	if (rc < 0 || pe->bev == NULL) {
		snprintf(ps->why, sizeof ps->why, "node %s at %s cannot be dialled", pe->node,
		    pe->addr);
		goto fail_quiet;
	}
	log_info("cluster-peer-dial node=%s addr=%s", pe->node, pe->addr);
	return 0;
fail:
	snprintf(ps->why, sizeof ps->why, "out of memory");
fail_quiet:
	(*ps->errors)++;
	close_bev(pe);
	pe->backoff_ms = pe->backoff_ms == 0 ? BACKOFF_MIN_MS : pe->backoff_ms;
	pe->retry_ns = clock_now_ns() + pe->backoff_ms * NSEC_PER_MSEC;
	return -1;
}

static struct peer *
find(struct peers *ps, const char *node)
{
	struct peer *pe;

	TAILQ_FOREACH(pe, &ps->list, link) {
		if (strcmp(pe->node, node) == 0)
			return pe;
	}
	return NULL;
}

struct peer *
peer_get(struct peers *ps, const char *node, const char *addr, const char **why)
{
	struct peer *pe = find(ps, node);
	int64_t now = clock_now_ns();

	*why = ps->why;
	if (pe == NULL) {
		if ((pe = calloc(1, sizeof *pe)) == NULL || (pe->node = strdup(node)) == NULL ||
		    (pe->addr = strdup(addr)) == NULL) {
			if (pe != NULL)
				free(pe->node);
			free(pe);
			*why = "out of memory";
			return NULL;
		}
		pe->ps = ps;
		pe->self = ps->accept != NULL && strcmp(node, ps->self) == 0;
		TAILQ_INSERT_TAIL(&ps->list, pe, link);
	}
	/* in-process: this node's own advertise address does not matter (it may change) */
	if (pe->bev != NULL && (pe->self || strcmp(pe->addr, addr) == 0))
		return pe;
	if (pe->bev != NULL)
		/* the node came back at another address: what was sent to the old one is lost */
		drop(pe, "its advertise address changed");
	if (now < pe->retry_ns) {
		snprintf(ps->why, sizeof ps->why, "node %s lost; dialling it again in %" PRId64 " ms",
		    node, (int64_t)((pe->retry_ns - now) / NSEC_PER_MSEC + 1));
		return NULL;
	}
	if (strcmp(pe->addr, addr) != 0) {
		char *a = strdup(addr);

		if (a == NULL) {
			*why = "out of memory";
			return NULL;
		}
		free(pe->addr);
		pe->addr = a;
	}
	if (pe->self)
		return dial_self(pe) == 0 ? pe : NULL;
	return dial(pe) == 0 ? pe : NULL;
}

int
peer_write(struct peer *pe, const void *frames, size_t len)
{
	if (pe->bev == NULL)
		return -1;
	if ((pe->clear != NULL ? evbuffer_add(pe->clear, frames, len) :
	    bufferevent_write(pe->bev, frames, len)) != 0)
		return -1;
	if (pe->direct)
		want_flush(pe);
	return 0;
}

/* TLS: the requests queued clear, sealed into records behind the rest. -1 with why. */
static int
seal(struct peer *pe, char *why, size_t cap)
{
	size_t n;
	unsigned char *p;

	while (pe->tls_ready && (n = evbuffer_get_length(pe->clear)) > 0) {
		n = n < SEAL_MAX ? n : SEAL_MAX;
		if ((p = evbuffer_pullup(pe->clear, (ev_ssize_t)n)) == NULL) {
			snprintf(why, cap, "out of memory");
			return -1;
		}
		if (tls_session_write(pe->tsess, p, n) < 0) {
			snprintf(why, cap, "a write failed: %s", tls_session_why(pe->tsess));
			return -1;
		}
		evbuffer_drain(pe->clear, n);
	}
	return 0;
}

/*
 * Once per loop pass, after the callbacks that were ready (conn_io.c's
 * flush_cb does the same for clients): write each direct peer's queued
 * requests straight to its socket (sealed first under TLS), all of this
 * pass's in one write. The bufferevent would first add write interest,
 * poll again and then write: one more loop turn and two epoll_ctl per
 * forwarded request. Only what the socket does not take is left to the
 * bufferevent's write event.
 */
static void
flush_cb(evutil_socket_t fd, short what, void *arg)
{
	struct peers *ps = arg;
	struct peer *pe;
	char why[400];

	(void)fd;
	(void)what;
	TAILQ_FOREACH(pe, &ps->list, link) {
		if (!pe->wpending || pe->bev == NULL)
			continue;
		/* (before wpending is cleared: the records it makes need no second pass) */
		if (pe->tsess != NULL && seal(pe, why, sizeof why) < 0) {
			drop(pe, why);
			continue;
		}
		pe->wpending = false;
		if (send_out(pe) < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
			snprintf(why, sizeof why, "a write failed: %s", evutil_socket_error_to_string(errno));
			drop(pe, why);
			continue;
		}
		if (evbuffer_get_length(bufferevent_get_output(pe->bev)) > 0)
			bufferevent_enable(pe->bev, EV_WRITE);
		else
			bufferevent_disable(pe->bev, EV_WRITE);
	}
}

size_t
peer_unsent(const struct peer *pe)
{
	if (pe->bev == NULL)
		return 0;
	return evbuffer_get_length(bufferevent_get_output(pe->bev)) +
	    (pe->clear != NULL ? evbuffer_get_length(pe->clear) : 0);
}

void
peers_node_down(struct peers *ps, const char *node)
{
	struct peer *pe = find(ps, node);
	char why[128];

	if (pe == NULL)
		return;
	if (pe->bev != NULL) {
		snprintf(why, sizeof why, "node %s left the cluster (its lease ended)", node);
		drop(pe, why);
	}
	/* a node that comes back is a new process: dial it at once */
	pe->backoff_ms = 0;
	pe->retry_ns = 0;
}

void
peers_node_up(struct peers *ps, const char *node)
{
	struct peer *pe = find(ps, node);

	/* a restart within its lease: a new process too, though the key never went */
	if (pe != NULL && pe->bev == NULL) {
		pe->backoff_ms = 0;
		pe->retry_ns = 0;
	}
}
