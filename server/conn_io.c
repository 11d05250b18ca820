/*
 * conn_io.c: a connection's transport (conn_io.h).
 *
 * Plain sockets. A reply is appended to the connection's output and the
 * connection goes on the server's pending-write list; once per loop
 * iteration, after every ready callback ran, flush_cb writes each listed
 * connection's output straight to its socket (redis's beforeSleep and
 * handleClientsWithPendingWrites). Only a socket that would block gets
 * write interest, until it drains. A request answered at once so costs
 * one read and one write, with no epoll_ctl and no extra loop iteration;
 * bufferevent instead added write interest, polled again, wrote, and
 * removed the interest, for every reply.
 *
 * "After every ready callback": libevent 2.1 has no prepare hook, but an
 * event made active with event_active goes to the tail of the active queue
 * the loop is working through, behind every callback that was ready in
 * this iteration (the loop queues all ready I/O and expired timers before
 * it runs any), and runs in the same pass, before the loop polls again.
 * So a reply made by any callback (this connection's request, another
 * connection's SEND completing a waiter here, a deadline, a link, a pool
 * completion) is written before the loop sleeps. One that is made after
 * flush_cb ran activates it again, and it runs again in the same pass.
 *
 * Reads go to recv, into one scratch buffer of the server's: no
 * ioctl(FIONREAD) per read as evbuffer_read does. Whole frames are
 * dispatched where they lie; only an incomplete tail (or the bytes after a
 * pause) is copied into the connection's input buffer.
 *
 * TLS connections keep bufferevent_openssl, which reads, writes and times
 * out on its own; its callbacks land in the same conn.c functions. So do
 * those of the node's in-process connection to itself (peer.c): one half
 * of a bufferevent_pair, no socket at all.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "conn.h"
#include "conn_io.h"
#include "log.h"
#include "server.h"
#include "tls.h"

/* Most bytes one read takes; the loop comes back for the rest. */
#define READ_MAX 65536

static void flush_cb(evutil_socket_t fd, short what, void *arg);

/* The socket has no bytes or no room now: try again when the loop says so. */
static bool
retriable(int e)
{
	return e == EAGAIN || e == EWOULDBLOCK || e == EINTR;
}

int
io_server_init(struct server *s)
{
	TAILQ_INIT(&s->pending_writes);
	s->flush = event_new(s->base, -1, 0, flush_cb, s);
	s->rbuf = malloc(READ_MAX);
	return s->flush != NULL && s->rbuf != NULL ? 0 : -1;
}

void
io_server_free(struct server *s)
{
	if (s->flush != NULL)
		event_free(s->flush);
	free(s->rbuf);
}

/* ---- plain sockets ----------------------------------------------------------------- */

/* At most one whole frame buffered ahead of the dispatcher: an oversize frame costs nothing. */
static size_t
read_room(struct conn *c)
{
	size_t limit = c->srv->cfg.max_frame + PROTO_FRAME_HDR, have = evbuffer_get_length(c->in);

	if (have >= limit)
		return 0;
	return limit - have < READ_MAX ? limit - have : READ_MAX;
}

/* Bytes after the frames dispatched in place: kept for the next read. */
static bool
keep_tail(struct conn *c, const uint8_t *p, size_t len)
{
	if (len == 0 || c->closing)
		return true;
	if (evbuffer_add(c->in, p, len) == 0)
		return true;
	log_error("read-failed client=%" PRIu64 " reason=out-of-memory", c->id);
	conn_io_failed(c, BEV_EVENT_READING | BEV_EVENT_ERROR);
	return false;
}

static void
plain_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	uint8_t *buf = c->srv->rbuf;
	size_t room = read_room(c), used;
	bool buffered = evbuffer_get_length(c->in) > 0;
	ssize_t n;

	if (room == 0) {
		/* a reload lowered max_frame under the frame buffered: conn_input refuses it now */
		conn_input(c);
		if (!c->closing)
			io_read_enable(c, false);
		conn_input_done(c);
		return;
	}
	n = recv(fd, buf, room, 0);
	if (n == 0) {
		conn_io_failed(c, BEV_EVENT_READING | BEV_EVENT_EOF);
		return;
	}
	if (n < 0) {
		if (!retriable(errno))
			conn_io_failed(c, BEV_EVENT_READING | BEV_EVENT_ERROR);
		return;
	}
	if (buffered) {
		/* the head of a frame is buffered already: join it */
		if (!keep_tail(c, buf, (size_t)n))
			return;
		conn_input(c);
	} else {
		used = conn_input_bytes(c, buf, (size_t)n);
		if (!keep_tail(c, buf + used, (size_t)n - used))
			return;
	}
	conn_input_done(c);
}

/* Write interest while the socket would block; a closing conn's wait is bounded. */
static void
want_write(struct conn *c, bool on)
{
	struct timeval tv = { .tv_sec = c->close_timeout_sec };

	if (on && !c->writing) {
		event_add(&c->wev, c->closing ? &tv : NULL);
		c->writing = true;
	} else if (!on && c->writing) {
		event_del(&c->wev);
		c->writing = false;
	}
}

/*
 * The unsent output of a plain socket: one malloc'd run of bytes, written
 * from ooff. An evbuffer cost a 1 KiB chain (too big for glibc's tcache)
 * plus its bookkeeping per reply; this costs a small malloc and a memcpy,
 * and nothing at all once the output is written.
 */
#define OBUF_MIN 256

static int
obuf_add(struct conn *c, const void *p, size_t len)
{
	size_t need = c->olen + len, cap;
	uint8_t *np;

	/* reuse the written head only when that moves fewer bytes than it frees */
	if (need > c->ocap && c->ooff > 0 && c->ooff >= c->olen - c->ooff) {
		memmove(c->obuf, c->obuf + c->ooff, c->olen - c->ooff);
		c->olen -= c->ooff;
		c->ooff = 0;
		need = c->olen + len;
	}
	if (need > c->ocap) {
		for (cap = c->ocap ? c->ocap : OBUF_MIN; cap < need; cap *= 2)
			;
		if ((np = realloc(c->obuf, cap)) == NULL)
			return -1;
		c->obuf = np;
		c->ocap = cap;
	}
	memcpy(c->obuf + c->olen, p, len);
	c->olen += len;
	return 0;
}

/* All written: give the memory back, an idle connection holds none. */
static void
obuf_written(struct conn *c, size_t n)
{
	c->ooff += n;
	if (c->ooff < c->olen)
		return;
	free(c->obuf);
	c->obuf = NULL;
	c->ooff = c->olen = c->ocap = 0;
}

/* Write what is queued, as much as the socket takes; tell conn.c what is left. */
static void
plain_write(struct conn *c)
{
	ssize_t n;

	if (c->olen > c->ooff) {
		n = send(c->fd, c->obuf + c->ooff, c->olen - c->ooff, MSG_NOSIGNAL);
		if (n < 0 && !retriable(errno)) {
			conn_io_failed(c, BEV_EVENT_WRITING | BEV_EVENT_ERROR);
			return;
		}
		if (n > 0)
			obuf_written(c, (size_t)n);
	}
	want_write(c, c->olen > c->ooff);
	conn_wrote(c, c->olen - c->ooff);
}

static void
plain_write_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	if (what & EV_TIMEOUT)
		conn_io_failed(c, BEV_EVENT_WRITING | BEV_EVENT_TIMEOUT);
	else
		plain_write(c);
}

/* Put c on the pending-write list; a socket waiting for room is written by its event instead. */
static void
mark_pending(struct conn *c)
{
	struct server *s = c->srv;

	if (c->wpending || c->writing)
		return;
	if (TAILQ_EMPTY(&s->pending_writes))
		event_active(s->flush, EV_WRITE, 0);
	c->wpending = true;
	/*
	 * At the head, like redis's clients_pending_write: the reply made last
	 * (usually to the request just read) goes out first. Measured: written
	 * in FIFO order, a handoff woke the waiting receiver before the sender,
	 * and ping-pong's median round trip was ~20% longer.
	 */
	TAILQ_INSERT_HEAD(&s->pending_writes, c, wlink);
}

static void
flush_cb(evutil_socket_t fd, short what, void *arg)
{
	struct server *s = arg;
	struct conn *c;

	/* a write may resume a paused reader, whose replies put it back: it is written again */
	while ((c = TAILQ_FIRST(&s->pending_writes)) != NULL) {
		TAILQ_REMOVE(&s->pending_writes, c, wlink);
		c->wpending = false;
		plain_write(c);
	}
}

static int
plain_open(struct conn *c, int fd)
{
	struct event_base *base = c->srv->base;

	if ((c->in = evbuffer_new()) == NULL)
		goto fail;
	if (event_assign(&c->rev, base, fd, EV_READ | EV_PERSIST, plain_read_cb, c) < 0 ||
	    event_assign(&c->wev, base, fd, EV_WRITE | EV_PERSIST, plain_write_cb, c) < 0)
		goto fail;
	c->fd = fd;
	return 0;
fail:
	if (c->in)
		evbuffer_free(c->in);
	close(fd);
	return -1;
}

/* ---- TLS (bufferevent_openssl) and in-process (bufferevent_pair) --------------------- */

static void
tls_read_cb(struct bufferevent *bev, void *arg)
{
	conn_input(arg);
	conn_input_done(arg);
}

static void
tls_write_cb(struct bufferevent *bev, void *arg)
{
	conn_wrote(arg, evbuffer_get_length(bufferevent_get_output(bev)));
}

static void
tls_event_cb(struct bufferevent *bev, short what, void *arg)
{
	if (what & BEV_EVENT_CONNECTED)
		conn_tls_ready(arg);
	else
		conn_io_failed(arg, what);
}

static int
tls_open(struct conn *c, int fd)
{
	/* tls_bufferevent closes fd when it fails */
	if ((c->bev = tls_bufferevent(c->srv->tls, c->srv->base, fd)) == NULL)
		return -1;
	c->fd = fd;
	c->in = bufferevent_get_input(c->bev);
	bufferevent_setcb(c->bev, tls_read_cb, tls_write_cb, tls_event_cb, c);
	io_limits_changed(c);
	bufferevent_enable(c->bev, EV_WRITE);
	return 0;
}

/* ---- both ---------------------------------------------------------------------------- */

int
io_open(struct conn *c, int fd, bool tls)
{
	c->tls = tls;
	return tls ? tls_open(c, fd) : plain_open(c, fd);
}

int
io_open_pair(struct conn *c, struct bufferevent *bev)
{
	c->bev = bev;
	c->fd = -1;
	c->in = bufferevent_get_input(bev);
	bufferevent_setcb(bev, tls_read_cb, tls_write_cb, tls_event_cb, c);
	io_limits_changed(c);
	return bufferevent_enable(bev, EV_WRITE);
}

void
io_close(struct conn *c)
{
	if (c->bev != NULL) {
		/*
		 * A pair's other half hears nothing of a free: tell it EOF
		 * first (deferred, so it runs from the loop, never from here).
		 */
		if (!c->tls)
			bufferevent_flush(c->bev, EV_WRITE, BEV_FINISHED);
		bufferevent_free(c->bev);	/* TLS: closes fd */
		return;
	}
	if (c->wpending) {
		TAILQ_REMOVE(&c->srv->pending_writes, c, wlink);
		c->wpending = false;
	}
	event_del(&c->rev);
	event_del(&c->wev);
	evbuffer_free(c->in);
	free(c->obuf);
	close(c->fd);
}

struct evbuffer *
io_input(struct conn *c)
{
	return c->in;
}

int
io_write(struct conn *c, const void *p, size_t len)
{
	if (c->bev != NULL)
		return evbuffer_add(bufferevent_get_output(c->bev), p, len);
	if (obuf_add(c, p, len) < 0)
		return -1;
	mark_pending(c);
	return 0;
}

int
io_hold(struct conn *c, const void *p, size_t len)
{
	if (c->bev != NULL)
		return evbuffer_add(bufferevent_get_output(c->bev), p, len);
	return obuf_add(c, p, len);
}

void
io_release(struct conn *c)
{
	if (c->bev == NULL && io_unsent(c) > 0)
		mark_pending(c);
}

/*
 * Unlike flush_cb, no conn.c callback runs here (it could free a
 * connection or dispatch more input under the caller): a connection that
 * needs one (closing, paused, a socket error, a short write) stays on the
 * list for flush_cb.
 */
void
io_write_others(struct server *s, struct conn *c)
{
	struct conn *k, *next;
	ssize_t n;

	for (k = TAILQ_FIRST(&s->pending_writes); k != NULL; k = next) {
		next = TAILQ_NEXT(k, wlink);
		if (k == c || k->closing || k->read_paused)
			continue;
		if ((n = send(k->fd, k->obuf + k->ooff, k->olen - k->ooff, MSG_NOSIGNAL)) <= 0)
			continue;
		obuf_written(k, (size_t)n);
		if (k->olen == k->ooff) {
			TAILQ_REMOVE(&s->pending_writes, k, wlink);
			k->wpending = false;
		}
	}
}

size_t
io_unsent(const struct conn *c)
{
	if (c->bev != NULL)
		return evbuffer_get_length(bufferevent_get_output(c->bev));
	return c->olen - c->ooff;
}

void
io_read_enable(struct conn *c, bool on)
{
	if (c->bev != NULL) {
		if (on)
			bufferevent_enable(c->bev, EV_READ);
		else
			bufferevent_disable(c->bev, EV_READ);
		return;
	}
	if (on && !c->reading)
		event_add(&c->rev, NULL);
	else if (!on && c->reading)
		event_del(&c->rev);
	c->reading = on;
}

void
io_close_after_flush(struct conn *c, int timeout_sec)
{
	struct timeval tv = { .tv_sec = timeout_sec };

	c->close_timeout_sec = timeout_sec;
	io_read_enable(c, false);
	if (c->bev == NULL) {
		if (c->writing)
			event_add(&c->wev, &tv);	/* now bounded */
		else
			mark_pending(c);	/* flush_cb writes, then conn_wrote frees */
		return;
	}
	bufferevent_enable(c->bev, EV_WRITE);
	/* a peer that never reads must not keep the connection forever */
	bufferevent_set_timeouts(c->bev, NULL, &tv);
	bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
	/* never free synchronously (a caller may be using c): the write callback frees it */
	bufferevent_trigger(c->bev, EV_WRITE, BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
}

void
io_limits_changed(struct conn *c)
{
	struct config *cfg = &c->srv->cfg;

	if (c->bev == NULL || c->closing)
		return;		/* plain sockets read the limits on every read */
	/* never buffer more than one whole frame ahead of the dispatcher (a small one before HELLO) */
	bufferevent_setwatermark(c->bev, EV_READ, 0, conn_max_frame(c) + PROTO_FRAME_HDR);
	bufferevent_setwatermark(c->bev, EV_WRITE, cfg->output_hwm / 2, 0);
}
