/*
 * wire.c: a connection's bytes: the write queue with its group-commit
 * flush, and the read token's loop that splits replies off the socket and
 * hands them to their calls (conn_priv.h explains the scheme).
 *
 * Every send and every read but a recv leader's (wire_lead) passes
 * MSG_DONTWAIT: a plain socket blocks only for that one. A writer whose
 * send would block polls for room, and reads meanwhile when the read
 * token is free: a client that pipelines more than the socket buffers
 * hold must keep draining replies, or the server (which stops reading a
 * client that does not read) and the client would wait for each other
 * forever.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "codec.h"

#include "conn_priv.h"
#include "tls.h"

#define WIRE_READ_CHUNK 65536
#define WIRE_CORK_MAX (64u << 10)	/* a corked queue past this is flushed anyway */
#define WIRE_ACK_BATCH 512		/* tags ack_post keeps for one ACK frame, at most */

/* ---- reading ------------------------------------------------------------------- */

/* Split and deliver the whole frames in buf[0..len); returns bytes used, or a CHAN_E* code. */
static long
deliver_frames(chan_conn_t *c, const uint8_t *buf, size_t len)
{
	size_t used = 0, limit = __atomic_load_n(&c->read_limit, __ATOMIC_RELAXED);
	long rc = 0;

	pthread_mutex_lock(&c->lock);
	while (rc == 0 && c->dead == 0) {
		const uint8_t *body;
		size_t blen;
		const char *why;
		long n = proto_frame_split(buf + used, len - used, limit, &body, &blen, &why);

		if (n == 0)
			break;
		if (n < 0)
			rc = CHAN_EPROTO;
		else if ((rc = conn_deliver_locked(c, body, blen)) == 0)
			used += (size_t)n;
	}
	if (rc == 0 && c->dead != 0)
		rc = c->dead;		/* a notice ended the connection */
	pthread_mutex_unlock(&c->lock);
	return rc != 0 ? rc : (long)used;
}

/* Read once (waiting only if block) and deliver. 0, or the CHAN_E* code the stream broke with. */
static int
read_some(chan_conn_t *c, bool block)
{
	ssize_t got;
	long used;

	if (c->rcap - c->rlen < WIRE_READ_CHUNK) {
		uint8_t *nb = realloc(c->rbuf, c->rcap + 4 * WIRE_READ_CHUNK);

		if (nb == NULL)
			return CHAN_ENOMEM;
		c->rbuf = nb;
		c->rcap += 4 * WIRE_READ_CHUNK;
	}
	if (c->tls != NULL)
		got = ctls_read(c->tls, c->rbuf + c->rlen, c->rcap - c->rlen);
	else if ((got = recv(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen, block ? 0 : MSG_DONTWAIT)) < 0)
		got = errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? CTLS_AGAIN : -1;
	if (got == CTLS_AGAIN)
		return 0;
	if (got <= 0)
		return CHAN_ECONNLOST;
	c->rlen += (size_t)got;
	if ((used = deliver_frames(c, c->rbuf, c->rlen)) <= 0)
		return (int)used;	/* 0: a frame still partly read, kept where it is */
	memmove(c->rbuf, c->rbuf + used, c->rlen - (size_t)used);
	c->rlen -= (size_t)used;
	return 0;
}

void
wire_wake(chan_conn_t *c)
{
	uint64_t one = 1;

	if (write(c->wakefd, &one, sizeof one) < 0) {
		/* the counter is already non-zero: the leader wakes anyway */
	}
}

/*
 * Poll for events on the socket until deadline (0: none); 0 on timeout.
 * Only the read token's holder watches (and clears) the wake fd: a writer
 * that cleared it could swallow the wake meant for the reader.
 */
static int
wait_fd(chan_conn_t *c, short events, bool reader, int64_t deadline, short *revents)
{
	struct pollfd p[2] = { { c->fd, events, 0 }, { c->wakefd, POLLIN, 0 } };
	struct timespec ts, *tsp = NULL;
	uint64_t count;
	int n;

	*revents = 0;
	if (deadline != 0) {
		int64_t left = deadline - clock_now_ns();

		if (left <= 0)
			return 0;
		ts.tv_sec = left / NSEC_PER_SEC;
		ts.tv_nsec = left % NSEC_PER_SEC;
		tsp = &ts;
	}
	if ((n = ppoll(p, reader ? 2 : 1, tsp, NULL)) < 0)
		return errno == EINTR ? 0 : -1;
	if (reader && p[1].revents & POLLIN && read(c->wakefd, &count, sizeof count) < 0) {
		/* EAGAIN: already clear, as it must be for the next wait */
	}
	*revents = p[0].revents;
	return n;
}

/* The socket's receive timeout as a recv leader of this kind needs it; false if it cannot be set. */
static bool
recv_timeout(chan_conn_t *c, enum call_lead lead)
{
	int64_t want = lead == LEAD_RECV_TICK ? c->tick_ns : 0;
	struct timeval tv = { want / NSEC_PER_SEC, want % NSEC_PER_SEC / 1000 };

	if (want == c->rcvtimeo_ns)
		return true;	/* one setsockopt when a connection's calls change kind, none per call */
	if (setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0)
		return false;
	c->rcvtimeo_ns = want;
	return true;
}

int
wire_lead(chan_conn_t *c, int64_t deadline, enum call_lead lead)
{
	short rev;

	if (c->tls != NULL && ctls_pending(c->tls))
		return read_some(c, false);	/* bytes already decrypted: the socket may stay silent */
	if (lead != LEAD_POLL && deadline == 0 && c->tls == NULL && recv_timeout(c, lead))
		return read_some(c, true);	/* one recv, no poll before it (conn_priv.h) */
	if (wait_fd(c, POLLIN, true, deadline, &rev) < 0)
		return CHAN_ECONNLOST;
	if (rev & (POLLIN | POLLHUP | POLLERR))
		return read_some(c, false);
	return 0;
}

static void flush_unlock(chan_conn_t *c);

/* ---- writing -------------------------------------------------------------------- */

/* Take the read token if it is free (conn->lock not held). */
static bool
token_try(chan_conn_t *c)
{
	bool got;

	pthread_mutex_lock(&c->lock);
	if ((got = !c->reading && c->dead == 0))
		c->reading = true;
	pthread_mutex_unlock(&c->lock);
	return got;
}

/* Give the token back and pass it to a follower if one sleeps. */
static void
token_put(chan_conn_t *c)
{
	struct call *f;

	pthread_mutex_lock(&c->lock);
	c->reading = false;
	if ((f = TAILQ_FIRST(&c->followers)) != NULL)
		pthread_cond_signal(&f->cond);
	pthread_mutex_unlock(&c->lock);
}

/* The socket is full: wait for room, reading replies meanwhile if nobody else does. */
static int
wait_writable(chan_conn_t *c)
{
	bool reader = token_try(c);
	short rev;
	int rc = 0;

	if (wait_fd(c, reader ? POLLOUT | POLLIN : POLLOUT, reader, 0, &rev) < 0)
		rc = -1;
	else if (reader && rev & POLLIN && read_some(c, false) != 0)
		rc = -1;
	if (reader)
		token_put(c);
	return rc;
}

static int
write_all(chan_conn_t *c, const uint8_t *p, size_t len)
{
	if (c->tls != NULL)
		return ctls_write(c->tls, p, len);
	while (len > 0) {
		ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n > 0) {
			p += n;
			len -= (size_t)n;
		} else if (n < 0 && errno == EINTR) {
			continue;
		} else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (wait_writable(c) < 0)
				return -1;
		} else {
			return -1;
		}
	}
	return 0;
}

/*
 * The tags ack_post collected, as one ACK frame at the queue's end, deferred
 * (wlock held). Out of memory they are not acked: they come back after
 * ack_wait, which at-least-once allows.
 */
static void
acks_queue_locked(chan_conn_t *c)
{
	size_t before = proto_out_len(c->wq);

	if (c->nacks == 0)
		return;
	if (proto_req_ack(c->wq, conn_new_id(c), c->acks, c->nacks) < 0)
		proto_out_truncate(c->wq, before);
	else
		(void)proto_req_defer_last(c->wq);
	c->nacks = 0;
}

/* Tags in one ACK frame: WIRE_ACK_BATCH, fewer if max_frame is small (9 bytes a tag, 32 the rest). */
static size_t
acks_batch(const chan_conn_t *c)
{
	size_t n = c->max_frame > 32 + 9 ? (c->max_frame - 32) / 9 : 1;

	return n < WIRE_ACK_BATCH ? n : WIRE_ACK_BATCH;
}

int
ack_post(chan_conn_t *c, const uint64_t *tags, size_t n)
{
	size_t max = acks_batch(c);

	pthread_mutex_lock(&c->wlock);
	if (c->acks == NULL && (c->acks = malloc(WIRE_ACK_BATCH * sizeof *c->acks)) == NULL) {
		pthread_mutex_unlock(&c->wlock);
		return CHAN_ENOMEM;	/* not acked: redelivered after ack_wait */
	}
	for (size_t i = 0; i < n; i++) {
		if (c->nacks == max)
			acks_queue_locked(c);
		c->acks[c->nacks++] = tags[i];
	}
	if (proto_out_len(c->wq) >= WIRE_CORK_MAX)
		flush_unlock(c);
	else
		pthread_mutex_unlock(&c->wlock);
	return CHAN_OK;
}

/*
 * Write what the socket takes now and leave the rest queued (wlock held:
 * released here). Never waits: a canceller calls it under the context
 * lock. With a thread writing now it writes nothing: that thread loops
 * until the queue is empty, and bytes written beside it would interleave.
 */
static void
flush_nowait_unlock(chan_conn_t *c)
{
	ssize_t n = 0;
	int err = 0;

	acks_queue_locked(c);
	if (!c->flushing && c->tls == NULL && proto_out_len(c->wq) > 0) {
		n = send(c->fd, proto_out_data(c->wq), proto_out_len(c->wq), MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0)
			proto_out_consume(c->wq, (size_t)n);
		else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			err = CHAN_ECONNLOST;
	}
	pthread_mutex_unlock(&c->wlock);
	if (err != 0)
		conn_break(c, err);
}

/* Write everything queued, or leave it to the thread writing now (wlock held: released here). */
static void
flush_unlock(chan_conn_t *c)
{
	int rc = 0;

	acks_queue_locked(c);	/* before the check: a thread writing now takes them too */
	if (c->flushing) {
		pthread_mutex_unlock(&c->wlock);
		return;		/* the thread writing now loops until the queue is empty */
	}
	c->flushing = true;
	while (rc == 0 && proto_out_len(c->wq) > 0) {
		struct proto_out *o = c->wq;

		c->wq = o == &c->wbuf[0] ? &c->wbuf[1] : &c->wbuf[0];
		pthread_mutex_unlock(&c->wlock);
		rc = write_all(c, proto_out_data(o), proto_out_len(o));
		proto_out_reset(o);
		pthread_mutex_lock(&c->wlock);
	}
	if (rc < 0)
		proto_out_reset(c->wq);	/* the stream is broken: nothing more goes out */
	c->flushing = false;
	pthread_mutex_unlock(&c->wlock);
	if (rc < 0)
		conn_break(c, CHAN_ECONNLOST);
}

void
wire_flush(chan_conn_t *c)
{
	pthread_mutex_lock(&c->wlock);
	flush_unlock(c);
}

int
wire_submit(chan_conn_t *c, uint64_t id, int64_t wait_us, call_encode_fn enc, void *arg,
    unsigned flags)
{
	size_t before, len;
	bool flush;
	int rc = CHAN_OK;

	pthread_mutex_lock(&c->wlock);
	acks_queue_locked(c);	/* the acks posted before this request go before it */
	before = proto_out_len(c->wq);
	if (enc(c->wq, id, wait_us, arg) < 0) {
		rc = CHAN_ENOMEM;
	} else if ((len = proto_out_len(c->wq) - before) - PROTO_FRAME_HDR > c->max_frame) {
		proto_out_truncate(c->wq, before);	/* the server would drop the whole connection */
		rc = CHAN_ELIMIT;
	} else if (flags & WIRE_DEFER) {
		(void)proto_req_defer_last(c->wq);	/* every op the library defers can be */
		__atomic_store_n(&c->deferred_last, id, __ATOMIC_RELEASE);
	}
	flush = rc == CHAN_OK && (!(flags & WIRE_CORK) || proto_out_len(c->wq) >= WIRE_CORK_MAX);
	if (flush && flags & WIRE_NOWAIT)
		flush_nowait_unlock(c);
	else if (flush)
		flush_unlock(c);	/* in the same lock round */
	else
		pthread_mutex_unlock(&c->wlock);
	return rc;
}
