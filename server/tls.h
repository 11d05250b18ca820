/*
 * tls.h: the server's TLS: one SSL_CTX made from the tls_* keys (TLS 1.2
 * at least, forward-secret AEAD ciphers only, no renegotiation), for the
 * sessions on accepted sockets (tls_session.h); the client side of
 * node-to-node (sessions too) and etcd connections; what a handshake says
 * of its peer.
 *
 * SIGHUP builds a new SSL_CTX (tls_reload): new connections use it, open
 * ones keep the one they started with (each SSL holds a reference on its
 * SSL_CTX). A failed reload keeps the old one.
 *
 * Ownership: the server owns its struct tls; tls_free releases it.
 * Thread-safety: loop thread only. Errors: -1 with a malloc'd *cause.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef CHAND_TLS_H
#define CHAND_TLS_H

#include <stddef.h>

#include <event2/bufferevent.h>

#include "config.h"

struct ssl_ctx_st;		/* OpenSSL's SSL_CTX */
struct ssl_st;			/* OpenSSL's SSL */
struct tls;

int tls_new(struct tls **out, const struct config *cfg, char **cause);
/* Rebuild from cfg (new certificates, CA, verify mode); the old context stays on error. */
int tls_reload(struct tls *t, const struct config *cfg, char **cause);
void tls_free(struct tls *t);

/*
 * The client side, for the node-to-node connections of a cluster (peer.c,
 * through a connecting tls_session): an SSL_CTX that presents
 * tls_cert/tls_key and verifies the other node's certificate against
 * tls_ca (the system's CAs when it is empty). NULL on error.
 */
struct ssl_ctx_st *tls_client_ctx(const struct config *cfg, char **cause);
/*
 * The client side to etcd (etcd.c, https:// in cluster_etcd): the same,
 * from cluster_etcd_ca (the system's CAs when empty) and the optional
 * cluster_etcd_cert/cluster_etcd_key.
 */
struct ssl_ctx_st *tls_etcd_ctx(const struct config *cfg, char **cause);
/*
 * An SSL of ctx for dialling host, whose peer's certificate must name host
 * (a DNS name, also sent as SNI, or an IP address); the caller owns it.
 * NULL on error.
 */
struct ssl_st *tls_client_ssl(struct ssl_ctx_st *ctx, const char *host);
/* The same in a bufferevent to be connected (bufferevent_socket_connect), for etcd.c. */
struct bufferevent *tls_client_bufferevent(struct ssl_ctx_st *ctx, struct event_base *base,
    const char *host);

/* The context new sessions on accepted sockets use (the current one: tls_reload replaces it). */
struct ssl_ctx_st *tls_server_ctx(struct tls *t);
/*
 * After the handshake on ssl: the common name of the verified client
 * certificate into buf (cap bytes), "" when the client sent none.
 */
void tls_peer_name(struct ssl_st *ssl, char *buf, size_t cap);
/*
 * What tls_peer_name says of a connection from this server to itself: the
 * common name of tls_cert when client certificates are asked for (tls_ca)
 * and tls_cert verifies against tls_ca as a client's; else "". For the
 * node's in-process connection to itself (peer.c), which has no handshake.
 */
void tls_self_name(struct tls *t, char *buf, size_t cap);
/*
 * Why a TLS connection on ssl failed (handshake, verification, plaintext
 * peer), for logs: this thread's OpenSSL error queue (which it empties),
 * then the certificate's verify result.
 */
void tls_ssl_error(struct ssl_st *ssl, char *buf, size_t cap);

#endif
