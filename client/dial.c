/*
 * dial.c: from an address to a connected socket, for chan_dial.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "clock.h"

#include "chanclient.h"
#include "ctx_internal.h"
#include "dial.h"
#include "tls.h"

/* Wait for a non-blocking connect; CHAN_OK or an error. */
static int
connect_wait(int fd, chan_ctx_t *ctx)
{
	int dfd = chan_ctx_done_fd(ctx), err = 0;
	int64_t deadline = ctx_deadline_ns(ctx);
	socklen_t elen = sizeof err;

	for (;;) {
		struct pollfd p[2] = { { .fd = fd, .events = POLLOUT }, { .fd = dfd, .events = POLLIN } };
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
			break;
	}
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

/* "host:port" or "[v6]:port" into host and port buffers. */
static int
split_hostport(const char *hp, char *host, size_t hcap, const char **port)
{
	const char *colon, *h = hp;
	size_t hl;

	if (*hp == '[') {
		const char *end = strchr(hp, ']');

		if (end == NULL || end[1] != ':')
			return CHAN_EINVAL;
		h = hp + 1;
		hl = (size_t)(end - h);
		colon = end + 1;
	} else {
		if ((colon = strrchr(hp, ':')) == NULL)
			return CHAN_EINVAL;
		hl = (size_t)(colon - hp);
	}
	if (hl == 0 || hl >= hcap || colon[1] == '\0')
		return CHAN_EINVAL;
	memcpy(host, h, hl);
	host[hl] = '\0';
	*port = colon + 1;
	return CHAN_OK;
}

static int
dial_tcp(const char *hostport, chan_ctx_t *ctx, int *fdp)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
	struct addrinfo *res, *ai;
	char host[256];
	const char *port;
	int rc;

	if ((rc = split_hostport(hostport, host, sizeof host, &port)) != CHAN_OK)
		return rc;
	if (getaddrinfo(host, port, &hints, &res) != 0) {
		errno = EHOSTUNREACH;	/* no such host (or no resolver): say it like a connect error */
		return CHAN_ECONNECT;
	}
	rc = CHAN_ECONNECT;
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		rc = connect_addr(ai->ai_family, ai->ai_addr, ai->ai_addrlen, ctx, fdp);
		if (rc == CHAN_OK || rc == CHAN_EDEADLINE || rc == CHAN_ECANCELED)
			break;
	}
	freeaddrinfo(res);
	return rc;
}

int
dial_addr(const char *addr, chan_ctx_t *ctx, int *fdp)
{
	if (addr == NULL)
		return CHAN_EINVAL;
	if (strncmp(addr, "tcp://", 6) == 0)
		return dial_tcp(addr + 6, ctx, fdp);
	if (strncmp(addr, "unix:", 5) == 0)
		return dial_unix(addr + 5, ctx, fdp);
	if (strncmp(addr, "tls://", 6) == 0)
		return dial_tcp(addr + 6, ctx, fdp);
	return CHAN_EINVAL;
}

/* The TLS handshake on a connected socket, verifying the host of "host:port". */
int
dial_tls(const char *hostport, int fd, chan_ctx_t *ctx, const chan_dial_opts_t *opts,
    struct ctls **out)
{
	char host[256];
	const char *port;
	int rc;

	if ((rc = split_hostport(hostport, host, sizeof host, &port)) != CHAN_OK)
		return rc;
	return ctls_connect(out, fd, host, opts, ctx);
}

