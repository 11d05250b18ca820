/*
 * tls.h: libchanclient's TLS (tls://host:port): one SSL object per
 * connection, on the connection's socket.
 *
 * Threads: one thread reads (the read token's holder, wire.c) while
 * others write, and an OpenSSL SSL object must not see SSL_read and
 * SSL_write at once. So every SSL call holds one mutex, the socket is
 * non-blocking, and the waiting (poll) happens outside the mutex, in the
 * caller for reads: a waiting reader never holds up a writer.
 * Renegotiation is off, so SSL_write never needs to read and SSL_read's
 * WANT_READ really means "nothing buffered" (but part of a record).
 * Reads read ahead: one recv takes as many records as the socket holds,
 * and one ctls_read decrypts them all.
 *
 * Ownership: ctls_free frees the SSL objects (not the fd: the connection
 * closes it). Errors: CHAN_E* codes (CHAN_ETLS for a failed handshake or
 * verification, with the reason in *why when given).
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef CHAN_CLIENT_TLS_H
#define CHAN_CLIENT_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "chanclient.h"

struct ctls;

/*
 * Handshake on the connected socket fd (left non-blocking) with host
 * (verified against the certificate unless opts->tls_server_name names
 * another), bounded by ctx. Returns CHAN_OK and *out, or an error.
 */
int ctls_connect(struct ctls **out, int fd, const char *host, const chan_dial_opts_t *opts,
    chan_ctx_t *ctx);
void ctls_free(struct ctls *t);
#define CTLS_AGAIN (-2)
/*
 * Up to n bytes without waiting, every whole record there is: > 0, 0 at
 * the end of the stream, CTLS_AGAIN when nothing is there yet, -1 on error.
 */
ssize_t ctls_read(struct ctls *t, void *buf, size_t n);
/* Records are buffered (a read filled its buffer): read them before polling the socket. */
bool ctls_pending(struct ctls *t);
/* All n bytes: 0, or -1 on error. */
int ctls_write(struct ctls *t, const void *p, size_t n);

#endif
