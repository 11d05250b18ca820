/*
 * tls_session.h: a TLS session on a socket with no bufferevent: accepting,
 * for the connection layer's own I/O (conn_io.c), or connecting, for the
 * node-to-node connections (peer.c).
 *
 * The session reads its socket itself, ahead: one read takes as many
 * records as the socket holds, and one tls_session_read decrypts all the
 * whole ones that fit. It never writes to the socket: every record it
 * makes (its handshake, the caller's bytes, alerts, tickets) goes to the
 * sink it was given, which must take them all, and the caller sends the
 * sink's bytes with the rest of its output. So no call waits on the
 * socket's room, a read never has to write first, and the caller turns
 * the replies of a whole loop iteration into a few records and one send
 * (bufferevent_openssl wrote a record at a time, switching write interest
 * around its writes).
 *
 * Ownership: the caller owns the session and the socket
 * (tls_session_free does not close it). Thread-safety: loop thread only.
 * Errors: -1, the reason kept for tls_session_why; OpenSSL's error queue
 * is left empty after every call.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef CHAND_TLS_SESSION_H
#define CHAND_TLS_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct ssl_ctx_st;		/* OpenSSL's SSL_CTX */
struct tls_session;

/* Takes every record the session makes: 0, or -1 (out of memory: the session fails). */
typedef int (*tls_sink_fn)(void *arg, const void *p, size_t len);

#define TLS_AGAIN (-2)

/*
 * A session on fd (non-blocking), its records to sink(arg, ...): accepting
 * when host is NULL; else connecting, and the peer's certificate must name
 * host (tls_client_ssl). NULL out of memory (or host not usable).
 */
struct tls_session *tls_session_new(struct ssl_ctx_st *ctx, int fd, const char *host,
    tls_sink_fn sink, void *arg);
void tls_session_free(struct tls_session *s);
/*
 * Go on with the handshake (a connecting session's first call starts it):
 * 1 done, 0 waiting for the peer, -1 failed.
 */
int tls_session_handshake(struct tls_session *s);
/*
 * Decrypted bytes into buf, up to n, every whole record there is: > 0, 0
 * at the end of the stream, TLS_AGAIN when no whole record is there yet,
 * -1 on error. An end or error after some bytes is returned by the next call.
 */
ssize_t tls_session_read(struct tls_session *s, void *buf, size_t n);
/* The last read filled its buffer: records may wait in the session, and the socket stay silent. */
bool tls_session_pending(const struct tls_session *s);
/* Encrypt n bytes into records for the sink: 0, or -1. */
int tls_session_write(struct tls_session *s, const void *p, size_t n);
/* After the handshake: the verified client certificate's common name, "" if none (tls.h). */
void tls_session_peer_name(struct tls_session *s, char *buf, size_t cap);
/*
 * Why the last call failed (the handshake, verification, a plaintext
 * peer), for logs; before any failure, that the connection closed during
 * the handshake.
 */
const char *tls_session_why(const struct tls_session *s);

#endif
