/*
 * dial.h: turn an address into a connected socket, for chan_dial.
 *
 * "tcp://host:port" and "tls://host:port" (both resolved and connected
 * here; dial_tls then runs the handshake) or "unix:/path". Connecting is
 * non-blocking and bounded by the context; the socket stays non-blocking
 * (the connection polls it, wire.c). Thread-safe: no shared state.
 * Errors: CHAN_EINVAL (bad address), CHAN_ENOTSUP, CHAN_ECONNECT (errno
 * says why), the context's CHAN_EDEADLINE / CHAN_ECANCELED, CHAN_ETLS.
 */
#ifndef CHAN_DIAL_H
#define CHAN_DIAL_H

#include "chanclient.h"

struct ctls;

/* Resolve and connect addr; *fdp is the caller's on success. */
int dial_addr(const char *addr, chan_ctx_t *ctx, int *fdp);
/* The TLS handshake on connected fd, verifying the host of "host:port"; *out is the caller's. */
int dial_tls(const char *hostport, int fd, chan_ctx_t *ctx, const chan_dial_opts_t *opts,
    struct ctls **out);

#endif
