/*
 * listener.c: evconnlistener for TCP and unix sockets.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/listener.h>

#include "conn.h"
#include "listener.h"
#include "log.h"
#include "server.h"

struct listener {
	struct listener *next;
	struct server *srv;
	struct evconnlistener *evl;
	char *unix_path;		/* removed on close */
	bool tls;			/* connections speak TLS */
};

static void
peer_name(const struct sockaddr *sa, int salen, char *buf, size_t len)
{
	char host[NI_MAXHOST], port[NI_MAXSERV];

	if (sa->sa_family == AF_UNIX) {
		snprintf(buf, len, "unix");
		return;
	}
	if (getnameinfo(sa, (socklen_t)salen, host, sizeof host, port, sizeof port,
	    NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
		snprintf(buf, len, "?");
		return;
	}
	snprintf(buf, len, sa->sa_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host, port);
}

/* TCP keepalive: a peer that vanished (half-open) is noticed even while idle. */
static void
keepalive(int fd, uint64_t ms)
{
	int one = 1, idle = (int)(ms / 1000), intvl, cnt = 3;

	if (ms == 0)
		return;
	if (idle < 1)
		idle = 1;
	intvl = idle / 3 > 0 ? idle / 3 : 1;
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
}

static void
accept_cb(struct evconnlistener *evl, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
	struct listener *l = arg;
	char peer[80];
	int one = 1;

	if (sa->sa_family != AF_UNIX) {	/* replies are small: send them now */
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		keepalive(fd, l->srv->cfg.tcp_keepalive_ms);
	}
	peer_name(sa, salen, peer, sizeof peer);
	conn_accept(l->srv, fd, peer, l->tls);
}

static void
accept_error_cb(struct evconnlistener *evl, void *arg)
{
	int err = EVUTIL_SOCKET_ERROR();

	/* EMFILE and friends: log and go on; the listener retries on the next event */
	log_error("accept-error reason=\"%s\"", evutil_socket_error_to_string(err));
}

/* A listener record, before its socket exists (accept_cb's argument). */
static struct listener *
listener_new(struct server *s, bool tls, char **cause)
{
	struct listener *l = calloc(1, sizeof *l);

	if (l == NULL) {
		if (asprintf(cause, "out of memory") < 0)
			*cause = NULL;
		return NULL;
	}
	l->srv = s;
	l->tls = tls;
	return l;
}

static int
listener_add(struct server *s, struct listener *l, struct evconnlistener *evl, const char *unix_path)
{
	if (unix_path && (l->unix_path = strdup(unix_path)) == NULL) {
		free(l);
		evconnlistener_free(evl);
		return -1;
	}
	l->evl = evl;
	evconnlistener_set_error_cb(evl, accept_error_cb);
	l->next = s->listeners;
	s->listeners = l;
	return 0;
}

int
listener_port(int fd, uint16_t *port)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;

	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return -1;
	switch (ss.ss_family) {
	case AF_INET:
		*port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
		break;
	case AF_INET6:
		*port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
		break;
	default:
		*port = 0;
	}
	return 0;
}

int
listener_tcp(struct server *s, const char *addr, uint16_t port, bool tls, uint16_t *bound,
    char **cause)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
	    .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct addrinfo *res = NULL;
	struct evconnlistener *evl;
	struct listener *l;
	char portstr[8];
	int rc;

	snprintf(portstr, sizeof portstr, "%u", port);
	if ((rc = getaddrinfo(addr, portstr, &hints, &res)) != 0) {
		if (asprintf(cause, "listen %s:%u: %s", addr, port, gai_strerror(rc)) < 0)
			*cause = NULL;
		return -1;
	}
	if ((l = listener_new(s, tls, cause)) == NULL) {
		freeaddrinfo(res);
		return -1;
	}
	evl = evconnlistener_new_bind(s->base, accept_cb, l,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC, 1024,
	    res->ai_addr, (int)res->ai_addrlen);
	freeaddrinfo(res);
	if (evl == NULL) {
		free(l);
		if (asprintf(cause, "listen %s:%u: %s", addr, port, strerror(errno)) < 0)
			*cause = NULL;
		return -1;
	}
	if (listener_port(evconnlistener_get_fd(evl), bound) < 0) {
		if (asprintf(cause, "listen %s:%u: getsockname: %s", addr, port, strerror(errno)) < 0)
			*cause = NULL;
		evconnlistener_free(evl);
		free(l);
		return -1;
	}
	log_info("listening address=%s port=%u%s", addr, *bound, tls ? " tls=yes" : "");
	return listener_add(s, l, evl, NULL);
}

int
listener_unix(struct server *s, const char *path, mode_t mode, char **cause)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct evconnlistener *evl;
	struct listener *l;
	struct stat st;

	if (strlen(path) >= sizeof sun.sun_path) {
		if (asprintf(cause, "unix_socket %s: path is too long", path) < 0)
			*cause = NULL;
		return -1;
	}
	strcpy(sun.sun_path, path);
	/* replace a stale socket left by a crash, but never any other file */
	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(path);
	if ((l = listener_new(s, false, cause)) == NULL)
		return -1;
	evl = evconnlistener_new_bind(s->base, accept_cb, l,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 1024,
	    (struct sockaddr *)&sun, sizeof sun);
	if (evl == NULL || chmod(path, mode) < 0) {
		if (asprintf(cause, "unix_socket %s: %s", path, strerror(errno)) < 0)
			*cause = NULL;
		if (evl)
			evconnlistener_free(evl);
		free(l);
		return -1;
	}
	log_info("listening unix=%s mode=%04o", path, (unsigned)mode);
	return listener_add(s, l, evl, path);
}

int
listener_fd(struct server *s, int fd, uint16_t *bound, char **cause)
{
	struct evconnlistener *evl;
	struct listener *l;
	int type = 0, listening = 0;
	socklen_t len = sizeof type;

	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 || type != SOCK_STREAM ||
	    getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &(socklen_t){ sizeof listening }) < 0 ||
	    !listening) {
		if (asprintf(cause, "inherited fd %d is not a listening stream socket", fd) < 0)
			*cause = NULL;
		return -1;
	}
	evutil_make_socket_nonblocking(fd);
	evutil_make_socket_closeonexec(fd);
	if ((l = listener_new(s, false, cause)) == NULL)
		return -1;
	evl = evconnlistener_new(s->base, accept_cb, l, LEV_OPT_CLOSE_ON_FREE, -1, fd);
	if (evl == NULL) {
		if (asprintf(cause, "inherited fd %d: %s", fd, strerror(errno)) < 0)
			*cause = NULL;
		free(l);
		return -1;
	}
	if (listener_port(fd, bound) < 0) {
		if (asprintf(cause, "inherited fd %d: getsockname: %s", fd, strerror(errno)) < 0)
			*cause = NULL;
		evconnlistener_free(evl);
		free(l);
		return -1;
	}
	log_info("listening inherited-fd=%d port=%u", fd, *bound);
	return listener_add(s, l, evl, NULL);
}

void
listener_free_all(struct server *s)
{
	while (s->listeners != NULL) {
		struct listener *l = s->listeners;

		s->listeners = l->next;
		evconnlistener_free(l->evl);
		if (l->unix_path) {
			unlink(l->unix_path);
			free(l->unix_path);
		}
		free(l);
	}
}
