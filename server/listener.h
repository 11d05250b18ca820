/*
 * listener.h: listening sockets (TCP and unix) that hand accepted
 * connections to conn_accept. Owned by the server (a list); loop thread only.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef CHAND_LISTENER_H
#define CHAND_LISTENER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct server;

/*
 * Listen on TCP addr:port (port 0 picks one; *bound gets the real port);
 * with tls, its connections speak TLS (tls.h).
 * Returns 0, or -1 with a malloc'd *cause naming the address and the error.
 */
int listener_tcp(struct server *s, const char *addr, uint16_t port, bool tls, uint16_t *bound,
    char **cause);
/* Listen on a unix socket at path (a stale socket file is replaced) with mode. */
int listener_unix(struct server *s, const char *path, mode_t mode, char **cause);
/*
 * Adopt a listening socket passed by socket activation (systemd's
 * chand.socket). *bound gets its TCP port (0 for a unix socket).
 */
int listener_fd(struct server *s, int fd, uint16_t *bound, char **cause);
/*
 * The local port of the listening socket fd into *port: its TCP port, 0 for
 * a unix socket. Returns 0, or -1 with errno (getsockname's) set.
 */
int listener_port(int fd, uint16_t *port);
/* Close every listener of s (unix socket files are removed). */
void listener_free_all(struct server *s);

#endif
