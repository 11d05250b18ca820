/* SPDX-License-Identifier: BSD-2-Clause */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#ifdef HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "log.h"
#include "sdnotify.h"

static int activated = -1;	/* sd_inherited_fds's answer, once decided */

#ifdef HAVE_SYSTEMD

void
sd_send(const char *state)
{
	sd_notify(0, state);
}

uint64_t
sd_watchdog_usec(void)
{
	uint64_t usec = 0;

	return sd_watchdog_enabled(0, &usec) > 0 ? usec : 0;
}

/* How many fds $LISTEN_FDS and $LISTEN_PID pass us, 0 when they are not for us. */
static int
listen_fds(void)
{
	int n = sd_listen_fds(1);

	return n > 0 ? n : 0;
}

static bool
is_listening(int fd)
{
	return sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 1) > 0;
}

#else	/* the protocols by hand: see sd_notify(3) and sd_listen_fds(3) */

void
sd_send(const char *state)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	socklen_t len;
	int fd;

	if (path == NULL || (path[0] != '/' && path[0] != '@') || strlen(path) >= sizeof sun.sun_path)
		return;
	strcpy(sun.sun_path, path);
	if (path[0] == '@')	/* abstract namespace */
		sun.sun_path[0] = '\0';
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path));
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0)
		return;
	if (sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sun, len) < 0) {
		/* best effort, as sd_notify */
	}
	close(fd);
}

uint64_t
sd_watchdog_usec(void)
{
	const char *usec = getenv("WATCHDOG_USEC"), *pid = getenv("WATCHDOG_PID");

	if (usec == NULL || (pid != NULL && strtol(pid, NULL, 10) != getpid()))
		return 0;
	return strtoull(usec, NULL, 10);
}

static int
listen_fds(void)
{
	const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
	char *end;
	long n;

	if (pid == NULL || fds == NULL || strtol(pid, &end, 10) != getpid() || *end != '\0')
		return 0;
	n = strtol(fds, &end, 10);
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	return *end == '\0' && n > 0 && n < 65536 ? (int)n : 0;
}

static bool
is_listening(int fd)
{
	int type = 0, listening = 0;

	return getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &(socklen_t){ sizeof type }) == 0 &&
	    type == SOCK_STREAM && getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening,
	    &(socklen_t){ sizeof listening }) == 0 && listening;
}

#endif

/*
 * Activation counts only when every passed fd really is a listening stream
 * socket: variables leaked from elsewhere must not switch protected mode's
 * checks of listen and tls_listen off (config.c).
 */
int
sd_inherited_fds(void)
{
	int n;

	if (activated >= 0)
		return activated;
	n = listen_fds();
	for (int fd = 3; fd < 3 + n; fd++) {
		if (!is_listening(fd)) {
			log_warn("socket-activation-ignored fd=%d reason=\"not a listening stream socket\"", fd);
			n = 0;
		}
	}
	activated = n;
	return activated;
}

void
sd_status(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n = snprintf(buf, sizeof buf, "STATUS=");

	va_start(ap, fmt);
	vsnprintf(buf + n, sizeof buf - (size_t)n, fmt, ap);
	va_end(ap);
	sd_send(buf);
}
