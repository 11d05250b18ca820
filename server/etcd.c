/*
 * etcd.c: etcd v3 calls over its HTTP/JSON gateway, one connection per
 * call, failover between endpoints.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#include "clock.h"
#include "etcd.h"
#include "tls.h"

#define WATCH_TIMEOUT_S 60		/* an idle watch is cut and made again: cheap, and finds a stopped etcd */
#define WATCH_MAX_PENDING (16u << 20)	/* bytes of one unfinished watch message */

struct endpoint {
	char *host;
	uint16_t port;
	char *url;
	int tls;			/* https:// */
};

struct call {
	struct etcd *e;
	char *path, *body;
	size_t tries;
	int unwrap;			/* a stream's reply: {"result": ...} */
	struct evhttp_connection *conn;
	int64_t sent_ns;		/* the current attempt's start (CLOCK_MONOTONIC) */
	etcd_done *cb;
	void *arg;
	TAILQ_ENTRY(call) link;
};

struct etcd_watch {
	struct etcd *e;
	struct evhttp_connection *conn;
	struct evbuffer *acc;		/* watch messages not yet whole */
	etcd_event *cb;
	void *arg;
	int over;			/* cb was told it ended */
	int freed;			/* etcd_watch_free'd: the reaper frees it */
	TAILQ_ENTRY(etcd_watch) link;
};

/* A connection whose request is done: freed from the loop, never inside its own callback. */
struct grave {
	struct evhttp_connection *conn;
	struct etcd_watch *watch;
	struct grave *next;
};

struct etcd {
	struct event_base *base;
	struct endpoint *eps;
	size_t neps, cur;
	unsigned timeout_ms;
	SSL_CTX *ssl;			/* for https:// endpoints; NULL without */
	struct etcd_stats stats;
	TAILQ_HEAD(, call) calls;
	TAILQ_HEAD(, etcd_watch) watches;
	struct grave *graves;
	struct event *reap;
};

static void
reap_cb(evutil_socket_t fd, short what, void *arg)
{
	struct etcd *e = arg;
	struct grave *g;

	while ((g = e->graves) != NULL) {
		e->graves = g->next;
		if (g->conn != NULL)
			evhttp_connection_free(g->conn);
		if (g->watch != NULL) {
			evbuffer_free(g->watch->acc);
			free(g->watch);
		}
		free(g);
	}
}

/* Free conn (and w) once the loop is out of their callbacks. */
static void
bury(struct etcd *e, struct evhttp_connection *conn, struct etcd_watch *w)
{
	struct grave *g = calloc(1, sizeof *g);

	if (g == NULL) {
		/* out of memory: leaking one connection beats freeing it under its own callback */
		return;
	}
	g->conn = conn;
	g->watch = w;
	g->next = e->graves;
	e->graves = g;
	event_active(e->reap, EV_TIMEOUT, 0);
}

/* "http://HOST:PORT" (or https:// with a TLS context) into ep; -1 with why. */
static int
endpoint_parse(struct endpoint *ep, const char *url, int have_tls, const char **why)
{
	struct evhttp_uri *u = evhttp_uri_parse(url);
	const char *scheme, *host, *path;
	int port;

	*why = "must be http://HOST:PORT or https://HOST:PORT";
	if (u == NULL)
		return -1;
	scheme = evhttp_uri_get_scheme(u);
	host = evhttp_uri_get_host(u);
	port = evhttp_uri_get_port(u);
	path = evhttp_uri_get_path(u);
	ep->tls = scheme != NULL && strcmp(scheme, "https") == 0;
	if (ep->tls && !have_tls)
		*why = "https:// needs the TLS settings (cluster_etcd_ca, cluster_etcd_cert/key)";
	if (scheme == NULL || (strcmp(scheme, "http") != 0 && !(ep->tls && have_tls)) ||
	    host == NULL || host[0] == '\0' ||
	    (path != NULL && path[0] != '\0' && strcmp(path, "/") != 0)) {
		evhttp_uri_free(u);
		return -1;
	}
	ep->host = strdup(host);
	ep->url = strdup(url);
	ep->port = (uint16_t)(port > 0 ? port : 2379);
	evhttp_uri_free(u);
	*why = "out of memory";
	return ep->host == NULL || ep->url == NULL ? -1 : 0;
}

static int
endpoints_parse(struct etcd *e, const char *list, char **cause)
{
	char *copy = strdup(list), *tok, *save = NULL;
	const char *why = "out of memory";

	if (copy == NULL)
		goto fail;
	for (tok = strtok_r(copy, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
		struct endpoint *eps = realloc(e->eps, (e->neps + 1) * sizeof *eps);

		if (eps == NULL)
			goto fail;
		e->eps = eps;
		memset(&eps[e->neps], 0, sizeof eps[0]);
		e->neps++;
		if (endpoint_parse(&eps[e->neps - 1], tok, e->ssl != NULL, &why) < 0) {
			if (asprintf(cause, "etcd endpoint '%s': %s", tok, why) < 0)
				*cause = NULL;
			free(copy);
			return -1;
		}
	}
	free(copy);
	if (e->neps == 0 && asprintf(cause, "no etcd endpoint") < 0)
		*cause = NULL;
	return e->neps == 0 ? -1 : 0;
fail:
	free(copy);
	if (asprintf(cause, "%s", why) < 0)
		*cause = NULL;
	return -1;
}

int
etcd_new(struct etcd **out, struct event_base *base, const char *endpoints, unsigned timeout_ms,
    char **cause)
{
	return etcd_new_tls(out, base, endpoints, timeout_ms, NULL, cause);
}

int
etcd_new_tls(struct etcd **out, struct event_base *base, const char *endpoints,
    unsigned timeout_ms, struct ssl_ctx_st *ssl, char **cause)
{
	struct etcd *e = calloc(1, sizeof *e);

	*cause = NULL;
	if (e == NULL)
		goto fail;
	if (ssl != NULL && SSL_CTX_up_ref(ssl) == 1)
		e->ssl = ssl;
	e->base = base;
	e->timeout_ms = timeout_ms;
	TAILQ_INIT(&e->calls);
	TAILQ_INIT(&e->watches);
	if (endpoints_parse(e, endpoints, cause) < 0)
		goto fail;
	if ((e->reap = event_new(base, -1, 0, reap_cb, e)) == NULL)
		goto fail;
	*out = e;
	return 0;
fail:
	if (*cause == NULL && asprintf(cause, "out of memory") < 0)
		*cause = NULL;
	etcd_free(e);
	return -1;
}

static void
call_free(struct call *c)
{
	free(c->path);
	free(c->body);
	free(c);
}

void
etcd_free(struct etcd *e)
{
	struct call *c;
	struct etcd_watch *w;

	if (e == NULL)
		return;
	/* freeing a connection drops its request without calling back */
	while ((c = TAILQ_FIRST(&e->calls)) != NULL) {
		TAILQ_REMOVE(&e->calls, c, link);
		if (c->conn != NULL)
			evhttp_connection_free(c->conn);
		call_free(c);
	}
	while ((w = TAILQ_FIRST(&e->watches)) != NULL)
		etcd_watch_free(w);
	if (e->reap != NULL) {
		reap_cb(-1, 0, e);
		event_free(e->reap);
	}
	for (size_t i = 0; i < e->neps; i++) {
		free(e->eps[i].host);
		free(e->eps[i].url);
	}
	free(e->eps);
	SSL_CTX_free(e->ssl);
	free(e);
}

const char *
etcd_endpoint(const struct etcd *e)
{
	return e->eps[e->cur].url;
}

const struct etcd_stats *
etcd_stats(const struct etcd *e)
{
	return &e->stats;
}

double
etcd_bucket_le(int i)
{
	static const double le[ETCD_BUCKETS - 1] = { 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
	    0.25, 0.5, 1, 2.5 };

	return le[i];
}

/* A connection to the current endpoint and a POST of body to path on it. */
static struct evhttp_connection *
post(struct etcd *e, const char *path, const char *body, int timeout_s,
    void (*done)(struct evhttp_request *, void *), void *arg, struct evhttp_request **reqp)
{
	const struct endpoint *ep = &e->eps[e->cur];
	struct evhttp_connection *conn;
	struct evhttp_request *req;
	struct timeval tv = { .tv_sec = timeout_s, .tv_usec = 0 };
	struct bufferevent *bev;
	char hostport[300];

	if (!ep->tls)
		conn = evhttp_connection_base_new(e->base, NULL, ep->host, ep->port);
	else if ((bev = tls_client_bufferevent(e->ssl, e->base, ep->host)) == NULL)
		return NULL;
	/* evhttp connects it, and the handshake runs before the request goes */
	else if ((conn = evhttp_connection_base_bufferevent_new(e->base, NULL, bev, ep->host,
	    ep->port)) == NULL)
		bufferevent_free(bev);
	if (conn == NULL)
		return NULL;
	if (timeout_s == 0) {
		tv.tv_sec = e->timeout_ms / 1000;
		tv.tv_usec = (suseconds_t)(e->timeout_ms % 1000) * 1000;
	}
	evhttp_connection_set_timeout_tv(conn, &tv);
	evhttp_connection_set_retries(conn, 0);
	if ((req = evhttp_request_new(done, arg)) == NULL)
		goto fail;
	snprintf(hostport, sizeof hostport, "%s:%u", ep->host, ep->port);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Host", hostport);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
	if (evbuffer_add(evhttp_request_get_output_buffer(req), body, strlen(body)) < 0) {
		evhttp_request_free(req);
		goto fail;
	}
	*reqp = req;
	/* on failure evhttp_make_request has freed req */
	if (evhttp_make_request(conn, req, EVHTTP_REQ_POST, path) < 0)
		goto fail;
	return conn;
fail:
	evhttp_connection_free(conn);
	return NULL;
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

/* Parse one reply body into an object; NULL with the words in buf. */
static json_t *
parse_reply(const char *data, size_t len, int code, int unwrap, char *buf, size_t cap)
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

static void call_send(struct call *c);

/* A call's time, from its first attempt to its end, into the stats. */
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

static void
call_finish(struct call *c, json_t *reply, const char *why)
{
	struct etcd *e = c->e;

	call_time(&e->stats, clock_now_ns() - c->sent_ns, reply != NULL);
	TAILQ_REMOVE(&e->calls, c, link);
	if (c->conn != NULL)
		bury(e, c->conn, NULL);
	c->cb(c->arg, reply, why);
	json_decref(reply);
	call_free(c);
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
call_done(struct evhttp_request *req, void *arg)
{
	struct call *c = arg;
	struct etcd *e = c->e;
	int code = req != NULL ? evhttp_request_get_response_code(req) : 0;
	char why[512], tls_why[256];
	struct evbuffer *in;
	json_t *reply;

	if (code == 0) {
		/* never reached etcd: the next endpoint, each one once */
		handshake_why(c->conn, tls_why, sizeof tls_why);
		bury(e, c->conn, NULL);
		c->conn = NULL;
		if (++c->tries < e->neps) {
			e->cur = (e->cur + 1) % e->neps;
			call_send(c);
			return;
		}
		e->cur = (e->cur + 1) % e->neps;
		snprintf(why, sizeof why, "cannot reach etcd (%zu endpoint%s tried, last %s%s%s)",
		    e->neps, e->neps == 1 ? "" : "s", e->eps[(e->cur + e->neps - 1) % e->neps].url,
		    tls_why[0] ? ": " : "", tls_why);
		call_finish(c, NULL, why);
		return;
	}
	in = evhttp_request_get_input_buffer(req);
	reply = parse_reply((const char *)evbuffer_pullup(in, -1), evbuffer_get_length(in), code,
	    c->unwrap, why, sizeof why);
	call_finish(c, reply, reply != NULL ? NULL : why);
}

static void
fail_later_cb(evutil_socket_t fd, short what, void *arg)
{
	call_finish(arg, NULL, "cannot open an HTTP connection to etcd");
}

static void
call_send(struct call *c)
{
	struct evhttp_request *req;
	struct timeval zero = { 0, 0 };

	c->conn = post(c->e, c->path, c->body, 0, call_done, c, &req);
	/* the callback must not run inside the caller's call: later, from the loop */
	if (c->conn == NULL && event_base_once(c->e->base, -1, EV_TIMEOUT, fail_later_cb, c, &zero) < 0)
		c->tries = SIZE_MAX;	/* not even that: leave it to etcd_free */
}

static int
call_new(struct etcd *e, const char *path, json_t *body, int unwrap, etcd_done *cb, void *arg)
{
	struct call *c = calloc(1, sizeof *c);

	if (c == NULL || body == NULL)
		goto fail;
	c->e = e;
	c->cb = cb;
	c->arg = arg;
	c->unwrap = unwrap;
	c->sent_ns = clock_now_ns();
	c->path = strdup(path);
	c->body = json_dumps(body, JSON_COMPACT);
	if (c->path == NULL || c->body == NULL)
		goto fail;
	json_decref(body);
	TAILQ_INSERT_TAIL(&e->calls, c, link);
	call_send(c);
	return 0;
fail:
	json_decref(body);
	if (c != NULL)
		call_free(c);
	return -1;
}

int
etcd_call(struct etcd *e, const char *path, json_t *body, etcd_done *cb, void *arg)
{
	return call_new(e, path, body, 0, cb, arg);
}

/* ---- requests ------------------------------------------------------------------- */

static json_t *
b64(const char *p, size_t n)
{
	size_t cap = 4 * ((n + 2) / 3) + 1;
	unsigned char *out = malloc(cap);
	json_t *s;

	if (out == NULL)
		return NULL;
	EVP_EncodeBlock(out, (const unsigned char *)p, (int)n);
	s = json_string((const char *)out);
	free(out);
	return s;
}

static json_t *
i64(int64_t v)
{
	char buf[24];

	snprintf(buf, sizeof buf, "%lld", (long long)v);
	return json_string(buf);
}

/* The first key after every key that starts with prefix (etcd's prefix range_end). */
static json_t *
prefix_end(const char *prefix)
{
	size_t n = strlen(prefix);
	char *end = strdup(prefix);
	json_t *s;

	if (end == NULL)
		return NULL;
	while (n > 0 && (unsigned char)end[n - 1] == 0xff)
		n--;
	if (n == 0) {
		free(end);
		return b64("\0", 1);	/* every key */
	}
	end[n - 1]++;
	s = b64(end, n);
	free(end);
	return s;
}

int
etcd_range(struct etcd *e, const char *key, int prefix, etcd_done *cb, void *arg)
{
	json_t *body = json_pack("{s:o}", "key", b64(key, strlen(key)));

	if (body != NULL && prefix && json_object_set_new(body, "range_end", prefix_end(key)) < 0) {
		json_decref(body);
		body = NULL;
	}
	return call_new(e, "/v3/kv/range", body, 0, cb, arg);
}

int
etcd_put(struct etcd *e, const char *key, const char *value, int64_t lease, etcd_done *cb,
    void *arg)
{
	return call_new(e, "/v3/kv/put", json_pack("{s:o, s:o, s:o}", "key", b64(key, strlen(key)),
	    "value", b64(value, strlen(value)), "lease", i64(lease)), 0, cb, arg);
}

int
etcd_delete(struct etcd *e, const char *key, etcd_done *cb, void *arg)
{
	return call_new(e, "/v3/kv/deleterange", json_pack("{s:o}", "key", b64(key, strlen(key))), 0,
	    cb, arg);
}

int
etcd_create(struct etcd *e, const char *key, const char *value, int64_t lease, etcd_done *cb,
    void *arg)
{
	json_t *body = json_pack("{s:[{s:o, s:s, s:s}], s:[{s:{s:o, s:o, s:o}}], s:[{s:{s:o}}]}",
	    "compare", "key", b64(key, strlen(key)), "target", "CREATE", "create_revision", "0",
	    "success", "request_put", "key", b64(key, strlen(key)), "value", b64(value, strlen(value)),
	    "lease", i64(lease),
	    "failure", "request_range", "key", b64(key, strlen(key)));

	return call_new(e, "/v3/kv/txn", body, 0, cb, arg);
}

int
etcd_lease_grant(struct etcd *e, int64_t ttl_s, etcd_done *cb, void *arg)
{
	return call_new(e, "/v3/lease/grant", json_pack("{s:o}", "TTL", i64(ttl_s)), 0, cb, arg);
}

int
etcd_lease_keepalive(struct etcd *e, int64_t id, etcd_done *cb, void *arg)
{
	return call_new(e, "/v3/lease/keepalive", json_pack("{s:o}", "ID", i64(id)), 1, cb, arg);
}

int
etcd_lease_revoke(struct etcd *e, int64_t id, etcd_done *cb, void *arg)
{
	return call_new(e, "/v3/lease/revoke", json_pack("{s:o}", "ID", i64(id)), 0, cb, arg);
}

/* ---- watches -------------------------------------------------------------------- */

static void
watch_end(struct etcd_watch *w, const char *why)
{
	if (w->over || w->freed)
		return;
	w->over = 1;
	w->cb(w->arg, NULL, why);
}

/* One line of the stream: {"result": {...}} or {"error": {...}}; -1 ends the watch. */
static int
watch_line(struct etcd_watch *w, const char *line, size_t len)
{
	char why[512];
	json_t *r = parse_reply(line, len, 200, 1, why, sizeof why);

	if (r == NULL) {
		watch_end(w, why);
		return -1;
	}
	if (json_is_true(json_object_get(r, "canceled"))) {
		json_decref(r);
		watch_end(w, "etcd canceled the watch (compacted, or the server is going)");
		return -1;
	}
	w->cb(w->arg, r, NULL);
	json_decref(r);
	return 0;
}

static void
watch_chunk(struct evhttp_request *req, void *arg)
{
	struct etcd_watch *w = arg;
	char *line;
	size_t n;

	if (w->over || w->freed)
		return;
	evbuffer_add_buffer(w->acc, evhttp_request_get_input_buffer(req));
	while (!w->over && !w->freed &&
	    (line = evbuffer_readln(w->acc, &n, EVBUFFER_EOL_LF)) != NULL) {
		if (n > 0)
			watch_line(w, line, n);
		free(line);
	}
	if (evbuffer_get_length(w->acc) > WATCH_MAX_PENDING)
		watch_end(w, "etcd's watch message is too long");
}

static void
watch_done(struct evhttp_request *req, void *arg)
{
	struct etcd_watch *w = arg;
	int code = req != NULL ? evhttp_request_get_response_code(req) : 0;
	char why[128];

	if (w->freed || w->over)
		return;
	/* whatever is left without a newline is a last message */
	if (code == 200 && evbuffer_get_length(w->acc) > 0) {
		size_t n = evbuffer_get_length(w->acc);

		if (watch_line(w, (const char *)evbuffer_pullup(w->acc, -1), n) < 0)
			return;
	}
	if (code == 0)
		w->e->cur = (w->e->cur + 1) % w->e->neps;
	snprintf(why, sizeof why, code == 0 ? "watch: cannot reach etcd, or the stream broke" :
	    "watch: the stream ended (HTTP %d)", code);
	watch_end(w, why);
}

int
etcd_watch_new(struct etcd_watch **out, struct etcd *e, const char *prefix, int64_t start_rev,
    etcd_event *cb, void *arg)
{
	struct etcd_watch *w = calloc(1, sizeof *w);
	struct evhttp_request *req;
	json_t *body;
	char *text;

	if (w == NULL || (w->acc = evbuffer_new()) == NULL)
		goto fail;
	w->e = e;
	w->cb = cb;
	w->arg = arg;
	body = json_pack("{s:{s:o, s:o, s:o}}", "create_request", "key", b64(prefix, strlen(prefix)),
	    "range_end", prefix_end(prefix), "start_revision", i64(start_rev));
	text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
	json_decref(body);
	if (text == NULL)
		goto fail;
	w->conn = post(e, "/v3/watch", text, WATCH_TIMEOUT_S, watch_done, w, &req);
	free(text);
	if (w->conn == NULL)
		goto fail;
	evhttp_request_set_chunked_cb(req, watch_chunk);
	TAILQ_INSERT_TAIL(&e->watches, w, link);
	*out = w;
	return 0;
fail:
	if (w != NULL && w->acc != NULL)
		evbuffer_free(w->acc);
	free(w);
	return -1;
}

void
etcd_watch_free(struct etcd_watch *w)
{
	if (w == NULL)
		return;
	TAILQ_REMOVE(&w->e->watches, w, link);
	w->freed = 1;
	bury(w->e, w->conn, w);
}

/* ---- reading replies -------------------------------------------------------------- */

int
etcd_int(const json_t *o, const char *field, int64_t *out)
{
	const json_t *v = json_object_get(o, field);
	const char *s;
	char *end;

	*out = 0;
	if (v == NULL)
		return 0;
	if (json_is_integer(v)) {
		*out = json_integer_value(v);
		return 0;
	}
	if ((s = json_string_value(v)) == NULL || *s == '\0')
		return -1;
	*out = strtoll(s, &end, 10);
	return *end == '\0' ? 0 : -1;
}

int
etcd_bytes(const json_t *o, const char *field, char **out, size_t *len)
{
	const char *s = json_string_value(json_object_get(o, field));
	size_t n = s != NULL ? strlen(s) : 0;
	int got;

	*out = NULL;
	if (json_object_get(o, field) != NULL && s == NULL)
		return -1;
	if (n % 4 != 0 || (*out = malloc(n / 4 * 3 + 1)) == NULL)
		return -1;
	got = n > 0 ? EVP_DecodeBlock((unsigned char *)*out, (const unsigned char *)s, (int)n) : 0;
	if (got < 0) {
		free(*out);
		*out = NULL;
		return -1;
	}
	/* DecodeBlock counts the padding as bytes */
	for (size_t i = n; i > 0 && s[i - 1] == '=' && got > 0; i--)
		got--;
	(*out)[got] = '\0';
	*len = (size_t)got;
	return 0;
}
