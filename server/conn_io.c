/*
 * conn_io.c: a connection's transport (conn_io.h).
 *
 * Sockets, plain and TLS. A reply is appended to the connection's output
 * and the connection goes on the server's pending-write list; once per loop
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
 * TLS takes the same path (tls_session.h): the session reads the socket
 * ahead and decrypts into the same scratch buffer; replies queue clear and
 * become records in flush_cb, a few records and one send for all the
 * replies of an iteration. bufferevent_openssl wrote a record at a time
 * and switched write interest around its writes: 16,000 writes and 23,000
 * epoll_ctl for 100,000 values at 1,024 in flight, where a plain socket
 * made 360 writes and no epoll_ctl.
 *
 * The node's in-process connection to itself (peer.c) is one half of a
 * bufferevent_pair, no socket at all; its callbacks land in the same
 * conn.c functions.
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
#include "tls_session.h"

/* Most bytes one read takes; the loop comes back for the rest. */
#define READ_MAX 65536

static void flush_cb(evutil_socket_t fd, short what, void *arg);
static void mark_pending(struct conn *c);
static int send_some(struct conn *c);

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

/* ---- sockets, plain and TLS ---------------------------------------------------------- */

/*
 * A run of bytes to write: one malloc'd buffer, written from off. An
 * evbuffer cost a 1 KiB chain (too big for glibc's tcache) plus its
 * bookkeeping per reply; this costs a small malloc and a memcpy, and
 * nothing at all once the bytes are written.
 */
#define RUN_MIN 256

static size_t
run_unsent(const struct io_run *r)
{
	return r->len - r->off;
}

static int
run_add(struct io_run *r, const void *p, size_t len)
{
	size_t need = r->len + len, cap;
	uint8_t *np;

	/* reuse the written head only when that moves fewer bytes than it frees */
	if (need > r->cap && r->off > 0 && r->off >= r->len - r->off) {
		memmove(r->p, r->p + r->off, r->len - r->off);
		r->len -= r->off;
		r->off = 0;
		need = r->len + len;
	}
	if (need > r->cap) {
		for (cap = r->cap ? r->cap : RUN_MIN; cap < need; cap *= 2)
			;
		if ((np = realloc(r->p, cap)) == NULL)
			return -1;
		r->p = np;
		r->cap = cap;
	}
	memcpy(r->p + r->len, p, len);
	r->len += len;
	return 0;
}

static void
run_free(struct io_run *r)
{
	free(r->p);
	*r = (struct io_run){ 0 };
}

/* n more bytes written; all written: give the memory back, an idle connection holds none. */
static void
run_written(struct io_run *r, size_t n)
{
	r->off += n;
	if (r->off >= r->len)
		run_free(r);
}

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

/* The session's records (handshake, replies, alerts) queue for the socket with the rest. */
static int
tls_sink(void *arg, const void *p, size_t len)
{
	struct conn *c = arg;

	return run_add(&c->out, p, len);
}

/* TLS: on with the handshake. 1 done, 0 waiting for the client, -1 failed (c is freed). */
static int
handshake(struct conn *c)
{
	int rc = tls_session_handshake(c->tsess);

	if (rc < 0) {
		(void)send_some(c);	/* best effort: the alert that says why, then the end */
		conn_io_failed(c, BEV_EVENT_READING | BEV_EVENT_ERROR);
		return -1;
	}
	if (run_unsent(&c->out) > 0)
		mark_pending(c);
	if (rc == 1)
		conn_tls_ready(c);
	return rc;
}

#define IO_AGAIN (-2)

/* Up to room bytes from c's peer, decrypted under TLS: > 0, 0 at its end, IO_AGAIN, -1 error. */
static ssize_t
read_peer(struct conn *c, uint8_t *buf, size_t room)
{
	ssize_t n;

	if (c->tsess != NULL) {
		n = tls_session_read(c->tsess, buf, room);
		if (run_unsent(&c->out) > 0)
			mark_pending(c);	/* a read may make a record: a key update's answer, an alert */
		return n == TLS_AGAIN ? IO_AGAIN : n;
	}
	if ((n = recv(c->fd, buf, room, 0)) < 0 && retriable(errno))
		return IO_AGAIN;
	return n;
}

static void
read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	uint8_t *buf = c->srv->rbuf;
	size_t room, used;
	bool buffered;
	ssize_t n;

	if (c->tsess != NULL && !c->tls_ready && handshake(c) <= 0)
		return;
	if ((room = read_room(c)) == 0) {
		/* a reload lowered max_frame under the frame buffered: conn_input refuses it now */
		conn_input(c);
		if (!c->closing)
			io_read_enable(c, false);
		conn_input_done(c);
		return;
	}
	buffered = evbuffer_get_length(c->in) > 0;
	if ((n = read_peer(c, buf, room)) == IO_AGAIN)
		return;
	if (n <= 0) {
		conn_io_failed(c, BEV_EVENT_READING | (n == 0 ? BEV_EVENT_EOF : BEV_EVENT_ERROR));
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
	if (c->tsess != NULL && c->reading && !c->closing && tls_session_pending(c->tsess))
		event_active(&c->rev, EV_READ, 0);	/* records wait in the session: the socket may stay silent */
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
 * TLS: the replies queued become records once the records before them are
 * written, so a socket that takes nothing keeps them clear and counted,
 * and every reply of a loop iteration shares a few records. -1: the
 * session failed.
 */
static int
seal(struct conn *c)
{
	size_t n = run_unsent(&c->clear);

	if (n == 0 || run_unsent(&c->out) > 0 || !c->tls_ready)
		return 0;
	if (tls_session_write(c->tsess, c->clear.p + c->clear.off, n) < 0)
		return -1;
	run_written(&c->clear, n);
	return 0;
}

/* Send what the socket takes now, sealed first under TLS; no conn.c callback. -1: it failed. */
static int
send_some(struct conn *c)
{
	ssize_t n;

	for (;;) {
		if (c->tsess != NULL && seal(c) < 0)
			return -1;
		if (run_unsent(&c->out) == 0)
			return 0;
		if ((n = send(c->fd, c->out.p + c->out.off, run_unsent(&c->out), MSG_NOSIGNAL)) < 0)
			return retriable(errno) ? 0 : -1;
		run_written(&c->out, (size_t)n);
		if (run_unsent(&c->out) > 0)
			return 0;	/* the socket is full */
	}
}

/* Write what is queued, as much as the socket takes; tell conn.c what is left. */
static void
conn_send(struct conn *c)
{
	if (send_some(c) < 0) {
		conn_io_failed(c, BEV_EVENT_WRITING | BEV_EVENT_ERROR);
		return;
	}
	want_write(c, run_unsent(&c->out) > 0);
	conn_wrote(c, io_unsent(c));
}

static void
write_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	if (what & EV_TIMEOUT)
		conn_io_failed(c, BEV_EVENT_WRITING | BEV_EVENT_TIMEOUT);
	else
		conn_send(c);
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
		conn_send(c);
	}
}

static int
socket_open(struct conn *c, int fd, bool tls)
{
	struct event_base *base = c->srv->base;

	if ((c->in = evbuffer_new()) == NULL)
		goto fail;
	if (event_assign(&c->rev, base, fd, EV_READ | EV_PERSIST, read_cb, c) < 0 ||
	    event_assign(&c->wev, base, fd, EV_WRITE | EV_PERSIST, write_cb, c) < 0)
		goto fail;
	if (tls && (c->tsess = tls_session_new(tls_server_ctx(c->srv->tls), fd, NULL, tls_sink, c)) == NULL)
		goto fail;
	c->fd = fd;
	return 0;
fail:
	if (c->in)
		evbuffer_free(c->in);
	close(fd);
	return -1;
}

/* ---- in-process (bufferevent_pair) ------------------------------------------------- */

static void
pair_read_cb(struct bufferevent *bev, void *arg)
{
	conn_input(arg);
	conn_input_done(arg);
}

static void
pair_write_cb(struct bufferevent *bev, void *arg)
{
	conn_wrote(arg, evbuffer_get_length(bufferevent_get_output(bev)));
}

static void
pair_event_cb(struct bufferevent *bev, short what, void *arg)
{
	conn_io_failed(arg, what);
}

/* ---- both ---------------------------------------------------------------------------- */

int
io_open(struct conn *c, int fd, bool tls)
{
	c->tls = tls;
	return socket_open(c, fd, tls);
}

int
io_open_pair(struct conn *c, struct bufferevent *bev)
{
	c->bev = bev;
	c->fd = -1;
	c->in = bufferevent_get_input(bev);
	bufferevent_setcb(bev, pair_read_cb, pair_write_cb, pair_event_cb, c);
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
		bufferevent_flush(c->bev, EV_WRITE, BEV_FINISHED);
		bufferevent_free(c->bev);
		return;
	}
	if (c->wpending) {
		TAILQ_REMOVE(&c->srv->pending_writes, c, wlink);
		c->wpending = false;
	}
	event_del(&c->rev);
	event_del(&c->wev);
	evbuffer_free(c->in);
	run_free(&c->out);
	run_free(&c->clear);
	tls_session_free(c->tsess);
	close(c->fd);
}

struct evbuffer *
io_input(struct conn *c)
{
	return c->in;
}

int
io_hold(struct conn *c, const void *p, size_t len)
{
	if (c->bev != NULL)
		return evbuffer_add(bufferevent_get_output(c->bev), p, len);
	return run_add(c->tsess != NULL ? &c->clear : &c->out, p, len);
}

int
io_write(struct conn *c, const void *p, size_t len)
{
	if (io_hold(c, p, len) < 0)
		return -1;
	if (c->bev == NULL)
		mark_pending(c);
	return 0;
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

	for (k = TAILQ_FIRST(&s->pending_writes); k != NULL; k = next) {
		next = TAILQ_NEXT(k, wlink);
		if (k == c || k->closing || k->read_paused)
			continue;
		if (send_some(k) == 0 && io_unsent(k) == 0) {
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
	return run_unsent(&c->out) + run_unsent(&c->clear);
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
	if (on && !c->reading) {
		event_add(&c->rev, NULL);
		if (c->tsess != NULL && tls_session_pending(c->tsess))
			event_active(&c->rev, EV_READ, 0);	/* read before the pause: the socket may stay silent */
	} else if (!on && c->reading) {
		event_del(&c->rev);
	}
	c->reading = on;
}

void
io_close_after_flush(struct conn *c, int timeout_sec)
{
	struct timeval tv = { .tv_sec = timeout_sec };

	c->close_timeout_sec = timeout_sec;
	io_read_enable(c, false);
	if (c->bev == NULL) {
		if (c->tsess != NULL && !c->tls_ready)
			run_free(&c->clear);	/* no session to say it in: the client meets the end */
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
		return;		/* sockets read the limits on every read */
	/* never buffer more than one whole frame ahead of the dispatcher (a small one before HELLO) */
	bufferevent_setwatermark(c->bev, EV_READ, 0, conn_max_frame(c) + PROTO_FRAME_HDR);
	bufferevent_setwatermark(c->bev, EV_WRITE, cfg->output_hwm / 2, 0);
}
