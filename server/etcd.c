/*
 * etcd.c: etcd v3 requests over its HTTP/JSON gateway, the endpoints,
 * watches and reading replies; etcd_call.c sends the calls.
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
#include "etcd_int.h"
#include "tls.h"

#define WATCH_TIMEOUT_S 60		/* an idle watch is cut and made again: cheap, and finds a stopped etcd */
#define WATCH_MAX_PENDING (16u << 20)	/* bytes of one unfinished watch message */

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

void
etcd_bury(struct etcd *e, struct evhttp_connection *conn, struct etcd_watch *w)
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
	TAILQ_INIT(&e->watches);
	if (etcd_calls_init(e) < 0 || endpoints_parse(e, endpoints, cause) < 0)
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

void
etcd_free(struct etcd *e)
{
	struct etcd_watch *w;

	if (e == NULL)
		return;
	etcd_calls_free(e);
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

struct evhttp_connection *
etcd_connect(struct etcd *e, int timeout_s)
{
	const struct endpoint *ep = &e->eps[e->cur];
	struct evhttp_connection *conn;
	struct timeval tv = { .tv_sec = timeout_s, .tv_usec = 0 };
	struct bufferevent *bev;

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
	return conn;
}

int
etcd_post(struct etcd *e, struct evhttp_connection *conn, const char *path, const char *body,
    void (*done)(struct evhttp_request *, void *), void *arg, struct evhttp_request **reqp)
{
	const struct endpoint *ep = &e->eps[e->cur];
	struct evhttp_request *req;
	char hostport[300];

	if ((req = evhttp_request_new(done, arg)) == NULL)
		return -1;
	snprintf(hostport, sizeof hostport, "%s:%u", ep->host, ep->port);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Host", hostport);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
	if (evbuffer_add(evhttp_request_get_output_buffer(req), body, strlen(body)) < 0) {
		evhttp_request_free(req);
		return -1;
	}
	*reqp = req;
	/* on failure evhttp_make_request has freed req */
	return evhttp_make_request(conn, req, EVHTTP_REQ_POST, path) < 0 ? -1 : 0;
}

int
etcd_call(struct etcd *e, const char *path, json_t *body, etcd_done *cb, void *arg)
{
	return etcd_call_new(e, path, body, 0, cb, arg);
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
	return etcd_call_new(e, "/v3/kv/range", body, 0, cb, arg);
}

int
etcd_put(struct etcd *e, const char *key, const char *value, int64_t lease, etcd_done *cb,
    void *arg)
{
	return etcd_call_new(e, "/v3/kv/put", json_pack("{s:o, s:o, s:o}", "key", b64(key, strlen(key)),
	    "value", b64(value, strlen(value)), "lease", i64(lease)), ETCD_URGENT, cb, arg);
}

int
etcd_delete(struct etcd *e, const char *key, etcd_done *cb, void *arg)
{
	return etcd_call_new(e, "/v3/kv/deleterange", json_pack("{s:o}", "key", b64(key, strlen(key))),
	    0, cb, arg);
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

	return etcd_call_new(e, "/v3/kv/txn", body, 0, cb, arg);
}

int
etcd_lease_grant(struct etcd *e, int64_t ttl_s, etcd_done *cb, void *arg)
{
	return etcd_call_new(e, "/v3/lease/grant", json_pack("{s:o}", "TTL", i64(ttl_s)), ETCD_URGENT,
	    cb, arg);
}

int
etcd_lease_keepalive(struct etcd *e, int64_t id, etcd_done *cb, void *arg)
{
	return etcd_call_new(e, "/v3/lease/keepalive", json_pack("{s:o}", "ID", i64(id)),
	    ETCD_UNWRAP | ETCD_URGENT, cb, arg);
}

int
etcd_lease_revoke(struct etcd *e, int64_t id, etcd_done *cb, void *arg)
{
	return etcd_call_new(e, "/v3/lease/revoke", json_pack("{s:o}", "ID", i64(id)), ETCD_URGENT,
	    cb, arg);
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
	json_t *r = etcd_parse_reply(line, len, 200, 1, why, sizeof why);

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
	if ((w->conn = etcd_connect(e, WATCH_TIMEOUT_S)) != NULL &&
	    etcd_post(e, w->conn, "/v3/watch", text, watch_done, w, &req) < 0) {
		evhttp_connection_free(w->conn);
		w->conn = NULL;
	}
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
	etcd_bury(w->e, w->conn, w);
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
