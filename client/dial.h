/*
 * dial.h: turn an address into a connected socket, for chan_dial.
 *
 * The one address parser of libchanclient (chanctl passes its -s through
 * chan_dial, so both take the same forms): "host:port", "[v6]:port", a bare
 * "host" or "[v6]" (port DIAL_PORT), each optionally after "tcp://" or
 * "tls://" (resolved and connected here; dial_tls then runs the handshake),
 * and "unix:/path", "unix:///path" or a path starting with "/". Connecting
 * is non-blocking and bounded by the context; the socket stays non-blocking
 * (the connection polls it, wire.c). Thread-safe: no shared state.
 * Errors: CHAN_EINVAL (bad address), CHAN_ERESOLVE (the host did not
 * resolve), CHAN_ECONNECT (errno says why), the context's CHAN_EDEADLINE /
 * CHAN_ECANCELED, CHAN_ETLS, CHAN_ENOMEM.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef CHAN_DIAL_H
#define CHAN_DIAL_H

#include <stdbool.h>
#include <stddef.h>

#include "chanclient.h"

#define DIAL_PORT "7420"		/* chand's default port (chand.conf(5)) */

struct ctls;

/*
 * addr[0..len) is a cluster node's address: HOST:PORT or [V6]:PORT and
 * nothing else (no scheme, no unix path, no port left out, no NUL), as a
 * cluster's seeds and its MOVED replies name nodes (PROTOCOL.md §3, §17).
 */
bool dial_is_hostport(const char *addr, size_t len);
/* Resolve and connect addr; *fdp is the caller's on success. */
int dial_addr(const char *addr, chan_ctx_t *ctx, int *fdp);
/* The TLS handshake on connected fd, verifying the host of "host:port" or "host"; *out is the caller's. */
int dial_tls(const char *hostport, int fd, chan_ctx_t *ctx, const chan_dial_opts_t *opts,
    struct ctls **out);

#endif
