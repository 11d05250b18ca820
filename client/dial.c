/*
 * dial.c: from an address to a connected socket, for chan_dial.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "clock.h"

#include "chanclient.h"
#include "ctx_internal.h"
#include "dial.h"
#include "tls.h"

/* Wait until fd has events: CHAN_OK, or ctx's error when it is done first. */
static int
wait_fd(int fd, short events, chan_ctx_t *ctx)
{
	int dfd = chan_ctx_done_fd(ctx);
	int64_t deadline = ctx_deadline_ns(ctx);

	for (;;) {
		struct pollfd p[2] = { { .fd = fd, .events = events }, { .fd = dfd, .events = POLLIN } };
		int tmo = -1, n;

		if (deadline != 0)
			tmo = (int)((deadline - clock_now_ns() + NSEC_PER_MSEC - 1) / NSEC_PER_MSEC);
		if (deadline != 0 && tmo <= 0)
			return CHAN_EDEADLINE;
		n = poll(p, dfd >= 0 ? 2 : 1, tmo);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return CHAN_ECONNECT;
		if (dfd >= 0 && (p[1].revents & POLLIN))
			return chan_ctx_err(ctx) ? chan_ctx_err(ctx) : CHAN_ECANCELED;
		if (p[0].revents != 0)
			return CHAN_OK;
	}
}

/* Wait for a non-blocking connect; CHAN_OK or an error. */
static int
connect_wait(int fd, chan_ctx_t *ctx)
{
	int err = 0, rc;
	socklen_t elen = sizeof err;

	if ((rc = wait_fd(fd, POLLOUT, ctx)) != CHAN_OK)
		return rc;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0)
		return CHAN_ECONNECT;
	if (err != 0) {
		errno = err;	/* chan_dial's caller reads why from errno */
		return CHAN_ECONNECT;
	}
	return CHAN_OK;
}

/* Connect a new socket to sa; *fdp on success. */
static int
connect_addr(int family, const struct sockaddr *sa, socklen_t salen, chan_ctx_t *ctx, int *fdp)
{
	int fd, rc, one = 1;

	if ((fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) < 0)
		return CHAN_ECONNECT;
	if (connect(fd, sa, salen) == 0)
		rc = CHAN_OK;
	else if (errno == EINPROGRESS || errno == EAGAIN)
		rc = connect_wait(fd, ctx);
	else
		rc = CHAN_ECONNECT;
	if (rc != CHAN_OK) {
		int saved = errno;

		close(fd);
		errno = saved;
		return rc;
	}
	if (family != AF_UNIX)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	*fdp = fd;
	return CHAN_OK;
}

static int
dial_unix(const char *path, chan_ctx_t *ctx, int *fdp)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };

	if (*path == '\0' || strlen(path) >= sizeof sun.sun_path)
		return CHAN_EINVAL;
	strcpy(sun.sun_path, path);
	return connect_addr(AF_UNIX, (struct sockaddr *)&sun, sizeof sun, ctx, fdp);
}

/* A port: 1 to 65535, in decimal (a name from /etc/services would be a surprise). */
static bool
port_ok(const char *p)
{
	size_t n = strspn(p, "0123456789");

	return n > 0 && n <= 5 && p[n] == '\0' && atoi(p) >= 1 && atoi(p) <= 65535;
}

/*
 * "host:port", "[v6]:port", "host" or "[v6]" (DIAL_PORT) into host and
 * port buffers. An unbracketed IPv6 address is refused: in "::1:7420" no
 * one can tell where the address ends.
 */
/*
 * A host has no space, control character, '/' or '@': a name or address
 * never does, and a peer's MOVED must not smuggle a URL's parts into one.
 */
static bool
host_ok(const char *h, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)h[i] <= ' ' || h[i] == 0x7f || h[i] == '/' || h[i] == '@')
			return false;
	return true;
}

static int
split_hostport(const char *hp, char *host, size_t hcap, char *port, size_t pcap)
{
	const char *colon, *h = hp;
	size_t hl;

	if (*hp == '[') {
		const char *end = strchr(hp, ']');

		if (end == NULL || (end[1] != ':' && end[1] != '\0'))
			return CHAN_EINVAL;
		h = hp + 1;
		hl = (size_t)(end - h);
		colon = end[1] == ':' ? end + 1 : NULL;
	} else {
		if ((colon = strchr(hp, ':')) != NULL && strchr(colon + 1, ':') != NULL)
			return CHAN_EINVAL;
		hl = colon ? (size_t)(colon - hp) : strlen(hp);
	}
	if (hl == 0 || hl >= hcap || !host_ok(h, hl) || (colon && !port_ok(colon + 1)))
		return CHAN_EINVAL;
	memcpy(host, h, hl);
	host[hl] = '\0';
	snprintf(port, pcap, "%s", colon ? colon + 1 : DIAL_PORT);
	return CHAN_OK;
}

bool
dial_is_hostport(const char *addr, size_t len)
{
	char buf[300], host[256], port[8];
	const char *colon, *bracket;

	if (len == 0 || len >= sizeof buf || memchr(addr, '\0', len) != NULL)
		return false;
	memcpy(buf, addr, len);
	buf[len] = '\0';
	/* a '/' is a scheme's or a path's, and dial_addr takes "unix:…" for a path whatever follows */
	if (strchr(buf, '/') != NULL || strncmp(buf, "unix:", 5) == 0 ||
	    split_hostport(buf, host, sizeof host, port, sizeof port) != CHAN_OK)
		return false;
	colon = strrchr(buf, ':');
	bracket = strrchr(buf, ']');
	return colon != NULL && (bracket == NULL || colon > bracket);	/* the port given */
}

/* ---- name lookup that a context can stop ------------------------------------------ */

/*
 * getaddrinfo cannot be interrupted, and asking a DNS server can take
 * seconds; like Go's DialContext, chan_dial must give up at its context's
 * deadline or cancel. A host that is not a numeric address is therefore
 * looked up on a detached thread of its own while the dialer waits for it
 * or for the context. The dialer and the thread each hold a reference;
 * the last to let go frees the lookup, so an abandoned one ends on its own.
 */
struct lookup {
	atomic_int refs;
	atomic_bool done;		/* rc and res are set (release / acquire) */
	int efd;			/* readable once done */
	int rc;				/* getaddrinfo's */
	struct addrinfo *res;
	char host[256], port[64];
};

static const struct addrinfo lookup_hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };

static void
lookup_unref(struct lookup *l)
{
	if (atomic_fetch_sub(&l->refs, 1) != 1)
		return;
	if (l->res != NULL)
		freeaddrinfo(l->res);
	close(l->efd);
	free(l);
}

static void *
lookup_main(void *arg)
{
	struct lookup *l = arg;
	uint64_t one = 1;

	l->rc = getaddrinfo(l->host, l->port, &lookup_hints, &l->res);
	atomic_store_explicit(&l->done, true, memory_order_release);
	if (write(l->efd, &one, sizeof one) < 0) {
		/* a fresh eventfd's counter cannot overflow */
	}
	lookup_unref(l);
	return NULL;
}

/* Start l's thread with every signal blocked: they are the application's. */
static int
lookup_start(struct lookup *l)
{
	sigset_t all, old;
	pthread_attr_t ta;
	pthread_t t;
	int rc;

	sigfillset(&all);
	pthread_attr_init(&ta);
	pthread_attr_setdetachstate(&ta, PTHREAD_CREATE_DETACHED);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&t, &ta, lookup_main, l);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&ta);
	return rc;
}

/* getaddrinfo's code as chand's: a name that does not resolve is not a network that fails. */
static int
lookup_result(int gai)
{
	switch (gai) {
	case 0: return CHAN_OK;
	case EAI_MEMORY: return CHAN_ENOMEM;
	case EAI_SYSTEM: return CHAN_ECONNECT;	/* errno says why */
	default: return CHAN_ERESOLVE;
	}
}

/* host and port into *res: CHAN_OK, CHAN_ERESOLVE (no such host), or ctx's error. */
static int
lookup_ctx(const char *host, const char *port, chan_ctx_t *ctx, struct addrinfo **res)
{
	struct addrinfo numeric = lookup_hints;
	struct lookup *l;
	int rc;

	numeric.ai_flags = AI_NUMERICHOST;	/* an address needs no server: answered at once */
	if ((rc = getaddrinfo(host, port, &numeric, res)) != EAI_NONAME)
		return lookup_result(rc);
	if (strlen(port) >= sizeof l->port || (l = calloc(1, sizeof *l)) == NULL)
		goto direct;
	strcpy(l->host, host);		/* split_hostport kept it under 256 */
	strcpy(l->port, port);
	atomic_init(&l->refs, 2);
	if ((l->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0 || lookup_start(l) != 0) {
		if (l->efd >= 0)
			close(l->efd);
		free(l);
		goto direct;
	}
	if ((rc = wait_fd(l->efd, POLLIN, ctx)) == CHAN_OK) {
		/* the eventfd is written only after done is set */
		bool done = atomic_load_explicit(&l->done, memory_order_acquire);

		if ((rc = lookup_result(done ? l->rc : EAI_FAIL)) == CHAN_OK) {
			*res = l->res;
			l->res = NULL;
		}
	}
	lookup_unref(l);	/* if ctx ended first, the thread frees l when it is done */
	return rc;
direct:	/* no thread: look it up here, without the context */
	return lookup_result(getaddrinfo(host, port, &lookup_hints, res));
}

static int
dial_tcp(const char *host, const char *port, chan_ctx_t *ctx, int *fdp)
{
	struct addrinfo *res, *ai;
	int rc;

	if ((rc = lookup_ctx(host, port, ctx, &res)) != CHAN_OK)
		return rc;
	rc = CHAN_ECONNECT;
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		rc = connect_addr(ai->ai_family, ai->ai_addr, ai->ai_addrlen, ctx, fdp);
		if (rc == CHAN_OK || rc == CHAN_EDEADLINE || rc == CHAN_ECANCELED)
			break;
	}
	freeaddrinfo(res);
	return rc;
}

/* The one address parser: the forms of dial.h, into a path or a host and port. */
static int
parse_addr(const char *addr, const char **path, char *host, size_t hcap, char *port, size_t pcap)
{
	*path = NULL;
	if (addr == NULL || *addr == '\0')
		return CHAN_EINVAL;
	if (strncmp(addr, "unix:", 5) == 0) {
		*path = addr + 5;
		if (strncmp(*path, "///", 3) == 0)	/* unix:///run/chand.sock, as docker writes it */
			*path += 2;
		return CHAN_OK;
	}
	if (*addr == '/') {
		*path = addr;
		return CHAN_OK;
	}
	if (strncmp(addr, "tcp://", 6) == 0 || strncmp(addr, "tls://", 6) == 0)
		addr += 6;
	else if (strstr(addr, "://") != NULL)	/* a scheme we do not speak */
		return CHAN_EINVAL;
	return split_hostport(addr, host, hcap, port, pcap);
}

int
dial_addr(const char *addr, chan_ctx_t *ctx, int *fdp)
{
	char host[256], port[8];
	const char *path;
	int rc;

	if ((rc = parse_addr(addr, &path, host, sizeof host, port, sizeof port)) != CHAN_OK)
		return rc;
	if (path != NULL)
		return dial_unix(path, ctx, fdp);
	return dial_tcp(host, port, ctx, fdp);
}

/* The TLS handshake on a connected socket, verifying the host of "host:port" or "host". */
int
dial_tls(const char *hostport, int fd, chan_ctx_t *ctx, const chan_dial_opts_t *opts,
    struct ctls **out)
{
	char host[256], port[8];
	int rc;

	if ((rc = split_hostport(hostport, host, sizeof host, port, sizeof port)) != CHAN_OK)
		return rc;
	return ctls_connect(out, fd, host, opts, ctx);
}

