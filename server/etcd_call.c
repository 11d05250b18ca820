/*
 * etcd_call.c: etcd calls in order over a few kept HTTP/1.1 connections,
 * the session's first and on a connection of their own; failover between
 * endpoints; the stats of every call.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "clock.h"
#include "etcd_int.h"

/* Slot 0 is the session's: lookups never take it, so a keepalive never waits behind them. */
#define SESSION_SLOT 0
#define WORDS(n) #n
#define NUMBER(n) WORDS(n)

struct call {
	struct etcd *e;
	char *path, *body;
	size_t tries;			/* endpoints that could not be reached */
	int unwrap;			/* a stream's reply: {"result": ...} */
	int urgent;			/* the session's: ahead of the queue */
	int retried;			/* sent again once on a new connection: the kept one had gone */
	struct etcd_slot *slot;		/* on the wire there, or NULL */
	int64_t made_ns, sent_ns;	/* when it was made; its current attempt (CLOCK_MONOTONIC) */
	const char *failure;		/* how its attempt failed, as libevent said (call_error) */
	const char *why;		/* failing: what its callback is told */
	etcd_done *cb;
	void *arg;
	TAILQ_ENTRY(call) link;		/* in the queue or failing */
};

static void
call_free(struct call *c)
{
	free(c->path);
	free(c->body);
	free(c);
}

/* A call's time, from when it was made to its end, into the stats. */
static void
call_time(struct etcd_stats *st, int64_t ns, int ok)
{
	int i = 0;

	st->calls++;
	st->errors += !ok;
	st->last_ns = (uint64_t)ns;
	if ((uint64_t)ns > st->max_ns)
		st->max_ns = (uint64_t)ns;
	st->sum_ns += (uint64_t)ns;
	while (i < ETCD_BUCKETS - 1 && (double)ns > etcd_bucket_le(i) * 1e9)
		i++;
	st->bucket[i]++;
}

/* An error reply's words: etcd's "error"/"message", else the HTTP code. */
static void
error_words(const json_t *o, int code, char *buf, size_t cap)
{
	const json_t *err = json_object_get(o, "error");
	const char *msg = json_string_value(json_object_get(o, "message"));

	if (json_is_object(err))
		msg = json_string_value(json_object_get(err, "message"));
	else if (json_is_string(err))
		msg = json_string_value(err);
	snprintf(buf, cap, "etcd answered HTTP %d: %s", code, msg ? msg : "(no message)");
}

json_t *
etcd_parse_reply(const char *data, size_t len, int code, int unwrap, char *buf, size_t cap)
{
	json_error_t jerr;
	json_t *o = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr), *r;

	if (!json_is_object(o)) {
		snprintf(buf, cap, "etcd's reply is not a JSON object (HTTP %d): %s", code,
		    o == NULL ? jerr.text : "another JSON value");
		goto fail;
	}
	if (code != 200 || json_object_get(o, "error") != NULL) {
		error_words(o, code, buf, cap);
		goto fail;
	}
	if (!unwrap)
		return o;
	if (!json_is_object(r = json_object_get(o, "result"))) {
		snprintf(buf, cap, "etcd's stream reply has no result object");
		goto fail;
	}
	json_incref(r);
	json_decref(o);
	return r;
fail:
	json_decref(o);
	return NULL;
}

/* Why conn's TLS handshake failed (a certificate etcd's CA did not sign...), "" when it did not. */
static void
handshake_why(struct evhttp_connection *conn, char *buf, size_t cap)
{
	struct bufferevent *bev = evhttp_connection_get_bufferevent(conn);
	SSL *ssl = bev != NULL ? bufferevent_openssl_get_ssl(bev) : NULL;
	unsigned long err;
	long vr;

	buf[0] = '\0';
	if (ssl == NULL)
		return;
	if ((vr = SSL_get_verify_result(ssl)) != X509_V_OK)
		snprintf(buf, cap, "TLS: etcd's certificate: %s", X509_verify_cert_error_string(vr));
	else if ((err = bufferevent_get_openssl_error(bev)) == SSL_ERROR_SYSCALL)
		/* libevent's code for an EOF: what etcd does to a client without the certificate it wants */
		snprintf(buf, cap, "TLS: etcd closed the connection during the handshake (does it "
		    "want a client certificate? cluster_etcd_cert)");
	else if (err != 0) {
		char one[160];

		ERR_error_string_n(err, one, sizeof one);
		snprintf(buf, cap, "TLS: %s", one);
	}
	while (bufferevent_get_openssl_error(bev) != 0)
		continue;
}

static void
slot_close(struct etcd *e, struct etcd_slot *s)
{
	if (s->conn != NULL)
		etcd_bury(e, s->conn, NULL);
	s->conn = NULL;
	s->used = 0;
}

/* A free slot for a call: the session's own first, or any but it. */
static struct etcd_slot *
slot_for(struct etcd *e, int urgent)
{
	for (size_t i = urgent ? SESSION_SLOT : SESSION_SLOT + 1; i < ETCD_CONNS; i++) {
		if (e->slots[i].call == NULL)
			return &e->slots[i];
	}
	return NULL;
}

/* c's callback is told why from the loop, never inside the call that made or sent it. */
static void
fail_later(struct call *c, const char *why)
{
	c->why = why;
	TAILQ_INSERT_TAIL(&c->e->failing, c, link);
	event_active(c->e->later, EV_TIMEOUT, 0);
}

static void call_done(struct evhttp_request *req, void *arg);

/* libevent says how an attempt failed just before it calls call_done: kept for the words. */
static void
call_error(enum evhttp_request_error err, void *arg)
{
	struct call *c = arg;

	switch (err) {
	case EVREQ_HTTP_TIMEOUT: c->failure = "no answer in time"; break;
	case EVREQ_HTTP_EOF: c->failure = "etcd closed the connection"; break;
	case EVREQ_HTTP_INVALID_HEADER: c->failure = "a malformed HTTP header, or the connection failed"; break;
	case EVREQ_HTTP_BUFFER_ERROR: c->failure = "a read or write failed"; break;
	case EVREQ_HTTP_DATA_TOO_LONG: c->failure = "the reply is too long"; break;
	default: c->failure = "the request was canceled"; break;
	}
}

/* Put c on the wire in s, on its kept connection or a new one to the current endpoint. */
static void
call_send(struct call *c, struct etcd_slot *s)
{
	struct etcd *e = c->e;
	struct evhttp_request *req;

	if (s->conn != NULL && s->ep != e->cur)
		slot_close(e, s);	/* failed over since: the next call goes to the new one */
	if (s->conn == NULL) {
		s->conn = etcd_connect(e, 0);
		s->ep = e->cur;
	}
	c->slot = s;
	s->call = c;
	c->sent_ns = clock_now_ns();
	c->failure = NULL;
	if (s->conn == NULL || etcd_post(e, s->conn, c->path, c->body, call_done, c, &req) < 0) {
		slot_close(e, s);
		s->call = NULL;
		c->slot = NULL;
		fail_later(c, "cannot open an HTTP connection to etcd");
		return;
	}
	evhttp_request_set_error_cb(req, call_error);
}

/* Calls waiting, in order, into the slots free for them. */
static void
pump(struct etcd *e)
{
	struct call *c;
	struct etcd_slot *s;

	while ((c = TAILQ_FIRST(&e->queue)) != NULL && (s = slot_for(e, c->urgent)) != NULL) {
		TAILQ_REMOVE(&e->queue, c, link);
		e->nqueued--;
		call_send(c, s);
	}
}

/* c ended: its slot goes to the next call first, then its callback runs, then it is freed. */
static void
call_finish(struct call *c, json_t *reply, const char *why)
{
	struct etcd *e = c->e;

	call_time(&e->stats, clock_now_ns() - c->made_ns, reply != NULL);
	if (c->slot != NULL) {
		c->slot->call = NULL;
		c->slot = NULL;
		pump(e);
	}
	c->cb(c->arg, reply, why);
	json_decref(reply);
	call_free(c);
}

static void
later_cb(evutil_socket_t fd, short what, void *arg)
{
	struct etcd *e = arg;
	struct call *c;

	(void)fd;
	(void)what;
	while ((c = TAILQ_FIRST(&e->failing)) != NULL) {
		TAILQ_REMOVE(&e->failing, c, link);
		call_finish(c, NULL, c->why);
	}
}

/* c never reached etcd on s: again on a new connection, the next endpoint, or the end. */
static void
call_unreached(struct call *c, struct etcd_slot *s)
{
	struct etcd *e = c->e;
	char why[512], tls_why[256];
	int reused = s->used;
	int64_t took = clock_now_ns() - c->sent_ns;

	handshake_why(s->conn, tls_why, sizeof tls_why);
	slot_close(e, s);
	/* a kept connection etcd closed while idle fails at once: that is not the endpoint's fault */
	if (reused && !c->retried && took < (int64_t)e->timeout_ms * 1000000 / 2) {
		c->retried = 1;
		call_send(c, s);
		return;
	}
	e->cur = (e->cur + 1) % e->neps;
	if (++c->tries < e->neps) {
		call_send(c, s);
		return;
	}
	snprintf(why, sizeof why, "cannot reach etcd (%zu endpoint%s tried, last %s: %s after %" PRId64
	    " ms%s%s%s)", e->neps, e->neps == 1 ? "" : "s", e->eps[(e->cur + e->neps - 1) % e->neps].url,
	    c->failure != NULL ? c->failure : "failed", took / 1000000, reused ? " on a kept connection" : "",
	    tls_why[0] ? "; " : "", tls_why);
	call_finish(c, NULL, why);
}

static void
call_done(struct evhttp_request *req, void *arg)
{
	struct call *c = arg;
	int code = req != NULL ? evhttp_request_get_response_code(req) : 0;
	char why[512];
	struct evbuffer *in;
	json_t *reply;

	if (code == 0) {
		call_unreached(c, c->slot);
		return;
	}
	c->slot->used = 1;
	in = evhttp_request_get_input_buffer(req);
	reply = etcd_parse_reply((const char *)evbuffer_pullup(in, -1), evbuffer_get_length(in), code,
	    c->unwrap, why, sizeof why);
	call_finish(c, reply, reply != NULL ? NULL : why);
}

int
etcd_call_new(struct etcd *e, const char *path, json_t *body, unsigned flags, etcd_done *cb,
    void *arg)
{
	struct call *c = calloc(1, sizeof *c), *q;

	if (c == NULL || body == NULL)
		goto fail;
	*c = (struct call){ .e = e, .cb = cb, .arg = arg, .unwrap = !!(flags & ETCD_UNWRAP),
	    .urgent = !!(flags & ETCD_URGENT),
	    .made_ns = clock_now_ns(), .path = strdup(path),
	    .body = json_dumps(body, JSON_COMPACT) };
	if (c->path == NULL || c->body == NULL)
		goto fail;
	json_decref(body);
	if (e->nqueued >= ETCD_MAX_QUEUED && !c->urgent) {
		fail_later(c, "too many etcd calls are waiting (" NUMBER(ETCD_MAX_QUEUED) "); try again");
		return 0;
	}
	/* the session's go behind the session's already waiting, ahead of the rest */
	for (q = TAILQ_FIRST(&e->queue); c->urgent && q != NULL && q->urgent; q = TAILQ_NEXT(q, link))
		continue;
	if (c->urgent && q != NULL)
		TAILQ_INSERT_BEFORE(q, c, link);
	else
		TAILQ_INSERT_TAIL(&e->queue, c, link);
	e->nqueued++;
	pump(e);
	return 0;
fail:
	json_decref(body);
	if (c != NULL)
		call_free(c);
	return -1;
}

int
etcd_calls_init(struct etcd *e)
{
	TAILQ_INIT(&e->queue);
	TAILQ_INIT(&e->failing);
	e->later = event_new(e->base, -1, 0, later_cb, e);
	return e->later != NULL ? 0 : -1;
}

void
etcd_calls_free(struct etcd *e)
{
	struct call *c;

	/* freeing a connection drops its request without calling back */
	for (size_t i = 0; i < ETCD_CONNS; i++) {
		if (e->slots[i].conn != NULL)
			evhttp_connection_free(e->slots[i].conn);
		if (e->slots[i].call != NULL)
			call_free(e->slots[i].call);
		e->slots[i] = (struct etcd_slot){ 0 };
	}
	while ((c = TAILQ_FIRST(&e->queue)) != NULL) {
		TAILQ_REMOVE(&e->queue, c, link);
		call_free(c);
	}
	while ((c = TAILQ_FIRST(&e->failing)) != NULL) {
		TAILQ_REMOVE(&e->failing, c, link);
		call_free(c);
	}
	if (e->later != NULL)
		event_free(e->later);
	e->later = NULL;
}
