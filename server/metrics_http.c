/*
 * metrics_http.c: the HTTP side of GET /metrics. A deliberately small
 * HTTP/1.x server: one request a connection, answered with Connection:
 * close. libevent 2.1's evhttp has no connection cap and no hook at accept,
 * and both are what keeps a flood of idle scrapers from taking the
 * descriptors protocol clients need.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "listener.h"
#include "log.h"
#include "metrics.h"
#include "server.h"

#define REQUEST_MAX 8192		/* request line and headers */
#define FD_SHARE 16			/* at most 1/16 of RLIMIT_NOFILE */
#define DIGEST_LEN 32

struct metrics_conn {
	TAILQ_ENTRY(metrics_conn) link;
	struct metrics *m;
	struct bufferevent *bev;
	struct event *deadline;		/* metrics_timeout after accept */
};

struct metrics {
	struct server *srv;
	struct evconnlistener *evl;
	TAILQ_HEAD(, metrics_conn) conns;
	uint64_t nconns;
	uint64_t fd_cap;		/* the share of RLIMIT_NOFILE */
	bool refusing;			/* at the cap: logged once until under it again */
};

static void
conn_free(struct metrics_conn *c)
{
	struct metrics *m = c->m;

	TAILQ_REMOVE(&m->conns, c, link);
	m->nconns--;
	bufferevent_free(c->bev);
	event_free(c->deadline);
	free(c);
}

static uint64_t
conn_cap(const struct metrics *m)
{
	uint64_t cfg = m->srv->cfg.metrics_max_connections;

	return cfg < m->fd_cap ? cfg : m->fd_cap;
}

static void
deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	log_debug("metrics-timeout");
	conn_free(arg);
}

static void
event_cb(struct bufferevent *bev, short what, void *arg)
{
	conn_free(arg);
}

/* The reply is out: close (the deadline still bounds a peer that does not read it). */
static void
written_cb(struct bufferevent *bev, void *arg)
{
	conn_free(arg);
}

static void
reply(struct metrics_conn *c, int code, const char *reason, const char *header,
    struct evbuffer *body)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	size_t len = body ? evbuffer_get_length(body) : strlen(reason) + 1;

	evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
	    "Connection: close\r\n%s\r\n", code, reason, body ?
	    "text/plain; version=0.0.4; charset=utf-8" : "text/plain; charset=utf-8", len, header);
	if (body)
		evbuffer_add_buffer(out, body);
	else
		evbuffer_add_printf(out, "%s\n", reason);
	bufferevent_disable(c->bev, EV_READ);
	bufferevent_setcb(c->bev, NULL, written_cb, event_cb, c);
}

static int
nibble(int ch)
{
	return isdigit(ch) ? ch - '0' : tolower(ch) - 'a' + 10;
}

/* Does the request carry "Authorization: Bearer TOKEN" whose SHA-256 is hex? */
static bool
authorized(char *headers, const char *hex)
{
	uint8_t want[DIGEST_LEN], got[DIGEST_LEN];
	unsigned int len = 0;
	char *line, *save, *v;

	for (int i = 0; i < DIGEST_LEN; i++)
		want[i] = (uint8_t)(nibble((unsigned char)hex[2 * i]) << 4 |
		    nibble((unsigned char)hex[2 * i + 1]));
	for (line = strtok_r(headers, "\r\n", &save); line; line = strtok_r(NULL, "\r\n", &save)) {
		if (strncasecmp(line, "Authorization:", 14) != 0)
			continue;
		for (v = line + 14; *v == ' ' || *v == '\t'; v++)
			;
		if (strncasecmp(v, "Bearer ", 7) != 0)
			return false;
		for (v += 7; *v == ' '; v++)
			;
		for (size_t n = strlen(v); n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'); n--)
			v[n - 1] = '\0';
		if (EVP_Digest(v, strlen(v), got, &len, EVP_sha256(), NULL) != 1)
			return false;
		return CRYPTO_memcmp(got, want, DIGEST_LEN) == 0;
	}
	return false;
}

/* head: the request line and headers, NUL-terminated. */
static void
handle(struct metrics_conn *c, char *head)
{
	struct server *s = c->m->srv;
	char *target, *version, *headers = strstr(head, "\r\n");
	struct evbuffer *body;

	*headers = '\0';
	headers += 2;
	if ((target = strchr(head, ' ')) == NULL || (version = strchr(target + 1, ' ')) == NULL ||
	    strncmp(version + 1, "HTTP/1.", 7) != 0) {
		reply(c, 400, "Bad Request", "", NULL);
		return;
	}
	*target++ = '\0';
	target[strcspn(target, " ?")] = '\0';
	if (strcmp(head, "GET") != 0)
		reply(c, 405, "Method Not Allowed", "Allow: GET\r\n", NULL);
	else if (strcmp(target, "/metrics") != 0)
		reply(c, 404, "Not Found", "", NULL);
	/* read at every request: SIGHUP may change the token */
	else if (s->cfg.metrics_token[0] != '\0' && !authorized(headers, s->cfg.metrics_token))
		reply(c, 401, "Unauthorized", "WWW-Authenticate: Bearer realm=\"chand\"\r\n", NULL);
	else if ((body = evbuffer_new()) == NULL)
		reply(c, 500, "Internal Server Error", "", NULL);
	else {
		metrics_render(s, body);
		reply(c, 200, "OK", "", body);
		evbuffer_free(body);
	}
}

static void
read_cb(struct bufferevent *bev, void *arg)
{
	struct metrics_conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct evbuffer_ptr end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
	char head[REQUEST_MAX + 1];

	if (end.pos < 0 || end.pos + 4 > REQUEST_MAX) {
		if (evbuffer_get_length(in) >= REQUEST_MAX)
			reply(c, 431, "Request Header Fields Too Large", "", NULL);
		return;
	}
	evbuffer_remove(in, head, (size_t)end.pos + 4);
	head[end.pos + 4] = '\0';
	/* handle() parses C strings: a NUL would end the request line before its CRLF */
	if (memchr(head, '\0', (size_t)end.pos) != NULL)
		reply(c, 400, "Bad Request", "", NULL);
	else
		handle(c, head);
}

/* Over the cap: a best-effort 503, then close; nothing of the connection is kept. */
static void
refuse(struct metrics *m, evutil_socket_t fd)
{
	static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
	    "Connection: close\r\n\r\n";
	char drain[4096];

	/* a request already there, left unread, would turn the close into a reset */
	recv(fd, drain, sizeof drain, MSG_DONTWAIT);
	if (send(fd, busy, sizeof busy - 1, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
		/* best effort: the close says the same */
	}
	evutil_closesocket(fd);
	if (!m->refusing)
		log_warn("limit metrics-connections=%llu limit=%s", (unsigned long long)m->nconns,
		    m->nconns >= m->srv->cfg.metrics_max_connections ? "metrics_max_connections" :
		    "RLIMIT_NOFILE/16");
	m->refusing = true;
}

static void
accept_cb(struct evconnlistener *evl, evutil_socket_t fd, struct sockaddr *sa, int salen,
    void *arg)
{
	struct metrics *m = arg;
	struct event_base *base = evconnlistener_get_base(evl);
	uint64_t ms = m->srv->cfg.metrics_timeout_ms;
	struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000 * 1000) };
	struct metrics_conn *c;

	if (m->nconns >= conn_cap(m)) {
		refuse(m, fd);
		return;
	}
	m->refusing = false;
	if ((c = calloc(1, sizeof *c)) == NULL)
		goto fail;
	c->m = m;
	if ((c->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE)) == NULL)
		goto fail;
	fd = -1;
	if ((c->deadline = evtimer_new(base, deadline_cb, c)) == NULL)
		goto fail;
	evtimer_add(c->deadline, &tv);
	bufferevent_setwatermark(c->bev, EV_READ, 0, REQUEST_MAX);
	bufferevent_setcb(c->bev, read_cb, NULL, event_cb, c);
	bufferevent_enable(c->bev, EV_READ);
	TAILQ_INSERT_TAIL(&m->conns, c, link);
	m->nconns++;
	return;
fail:
	log_warn("metrics-accept reason=\"out of memory\"");
	if (c != NULL && c->bev != NULL)
		bufferevent_free(c->bev);
	free(c);
	if (fd >= 0)
		evutil_closesocket(fd);
}

static void
accept_error_cb(struct evconnlistener *evl, void *arg)
{
	log_error("metrics-accept-error reason=\"%s\"",
	    evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
}

/* A sixteenth of the descriptor limit: the rest stays for protocol clients. */
static uint64_t
fd_share(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY)
		return UINT64_MAX;
	return rl.rlim_cur / FD_SHARE > 0 ? rl.rlim_cur / FD_SHARE : 1;
}

/* NULL with *why when host:port cannot be listened on. */
static struct evconnlistener *
bind_listener(struct metrics *m, const char *host, uint16_t port, const char **why)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
	    .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct addrinfo *res;
	struct evconnlistener *evl;
	char portstr[8];
	int rc;

	snprintf(portstr, sizeof portstr, "%u", port);
	if ((rc = getaddrinfo(host, portstr, &hints, &res)) != 0) {
		*why = gai_strerror(rc);
		return NULL;
	}
	evl = evconnlistener_new_bind(m->srv->base, accept_cb, m,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC, 128,
	    res->ai_addr, (int)res->ai_addrlen);
	*why = strerror(errno);
	freeaddrinfo(res);
	return evl;
}

int
metrics_start(struct server *s, const char *addr, char **cause)
{
	struct metrics *m = NULL;
	char host[256];
	const char *why;
	uint16_t port;

	if (config_split_hostport(addr, host, sizeof host, &port) < 0) {
		if (asprintf(cause, "metrics_listen %s: must be HOST:PORT", addr) < 0)
			*cause = NULL;
		return -1;
	}
	if ((m = calloc(1, sizeof *m)) == NULL)
		goto fail;
	m->srv = s;
	TAILQ_INIT(&m->conns);
	m->fd_cap = fd_share();
	s->metrics = m;
	if ((m->evl = bind_listener(m, host, port, &why)) == NULL) {
		if (asprintf(cause, "metrics_listen %s: %s", addr, why) < 0)
			*cause = NULL;
		metrics_stop(s);
		return -1;
	}
	evconnlistener_set_error_cb(m->evl, accept_error_cb);
	if (listener_port(evconnlistener_get_fd(m->evl), &s->metrics_port) < 0) {
		if (asprintf(cause, "metrics_listen %s: getsockname: %s", addr, strerror(errno)) < 0)
			*cause = NULL;
		metrics_stop(s);
		return -1;
	}
	log_info("metrics address=%s port=%u path=/metrics max_connections=%llu", host,
	    s->metrics_port, (unsigned long long)conn_cap(m));
	return 0;
fail:
	if (asprintf(cause, "out of memory") < 0)
		*cause = NULL;
	metrics_stop(s);
	return -1;
}

void
metrics_stop(struct server *s)
{
	struct metrics *m = s->metrics;

	if (m == NULL)
		return;
	while (!TAILQ_EMPTY(&m->conns))
		conn_free(TAILQ_FIRST(&m->conns));
	if (m->evl)
		evconnlistener_free(m->evl);
	free(m);
	s->metrics = NULL;
}
