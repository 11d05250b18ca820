/*
 * tls.c: OpenSSL on a client connection's socket; see tls.h for why one
 * mutex and non-blocking I/O.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "clock.h"
#include "ctx_internal.h"
#include "tls.h"


struct ctls {
	SSL_CTX *ctx;
	SSL *ssl;
	int fd;
	pthread_mutex_t lock;		/* every SSL_* call on ssl */
};

/* Wait until fd is ready for what SSL asked for; ms < 0: no bound. */
static int
wait_io(int fd, int err, int ms)
{
	struct pollfd p = { .fd = fd, .events = err == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN };
	int n;

	while ((n = poll(&p, 1, ms)) < 0 && errno == EINTR)
		;
	return n;
}

/*
 * OpenSSL writes with write(2), which raises SIGPIPE on a closed socket and
 * would kill the program; a library must not change signal handlers, so
 * SIGPIPE is blocked in this thread around each SSL call, and a SIGPIPE it
 * raised is taken off the thread's pending set before unblocking.
 */
struct nopipe {
	sigset_t old;
	bool was_pending;
};

static void
nopipe_begin(struct nopipe *np)
{
	sigset_t set, pending;

	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &set, &np->old);
	sigpending(&pending);
	np->was_pending = sigismember(&pending, SIGPIPE) == 1;
}

static void
nopipe_end(struct nopipe *np)
{
	sigset_t set, pending;
	struct timespec zero = { 0, 0 };

	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	sigpending(&pending);
	if (!np->was_pending && sigismember(&pending, SIGPIPE) == 1)
		while (sigtimedwait(&set, NULL, &zero) < 0 && errno == EINTR)
			;
	pthread_sigmask(SIG_SETMASK, &np->old, NULL);
}

static SSL_CTX *
make_ctx(const chan_dial_opts_t *opts)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (ctx == NULL)
		return NULL;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if ((opts && opts->tls_ca ? SSL_CTX_load_verify_locations(ctx, opts->tls_ca, NULL) :
	    SSL_CTX_set_default_verify_paths(ctx)) != 1)
		goto fail;
	if (opts && opts->tls_cert &&
	    (SSL_CTX_use_certificate_chain_file(ctx, opts->tls_cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, opts->tls_key ? opts->tls_key : opts->tls_cert,
	    SSL_FILETYPE_PEM) != 1 || SSL_CTX_check_private_key(ctx) != 1))
		goto fail;
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

/* The name the server's certificate must carry: a DNS name, or an IP address. */
static int
set_peer_name(SSL *ssl, const char *name)
{
	struct in6_addr a6;
	struct in_addr a4;

	if (inet_pton(AF_INET, name, &a4) == 1 || inet_pton(AF_INET6, name, &a6) == 1)
		return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name) == 1 ? 0 : -1;
	SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	if (SSL_set1_host(ssl, name) != 1 || SSL_set_tlsext_host_name(ssl, name) != 1)
		return -1;
	return 0;
}

static int
handshake(struct ctls *t, chan_ctx_t *ctx)
{
	int64_t deadline = ctx_deadline_ns(ctx);

	for (;;) {
		struct nopipe np;
		int rc, err, ms = -1;

		nopipe_begin(&np);
		rc = SSL_connect(t->ssl);
		nopipe_end(&np);
		if (rc == 1)
			return CHAN_OK;
		err = SSL_get_error(t->ssl, rc);
		if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE)
			return CHAN_ETLS;
		if (chan_ctx_err(ctx) != 0)
			return chan_ctx_err(ctx);
		if (deadline != 0 && (ms = (int)((deadline - clock_now_ns()) / NSEC_PER_MSEC)) <= 0)
			return CHAN_EDEADLINE;
		if (ms < 0 || ms > 100)
			ms = 100;	/* notice a cancelled context soon */
		if (wait_io(t->fd, err, ms) < 0)
			return CHAN_ECONNLOST;
	}
}

int
ctls_connect(struct ctls **out, int fd, const char *host, const chan_dial_opts_t *opts,
    chan_ctx_t *ctx)
{
	struct ctls *t = calloc(1, sizeof *t);
	int rc = CHAN_ENOMEM;

	if (t == NULL)
		return CHAN_ENOMEM;
	t->fd = fd;
	pthread_mutex_init(&t->lock, NULL);
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);	/* waiting is poll's, outside the lock */
	rc = CHAN_ETLS;		/* a CA or key file that cannot be loaded, too */
	if ((t->ctx = make_ctx(opts)) == NULL || (t->ssl = SSL_new(t->ctx)) == NULL ||
	    SSL_set_fd(t->ssl, fd) != 1 ||
	    set_peer_name(t->ssl, opts && opts->tls_server_name ? opts->tls_server_name : host) < 0)
		goto fail;
	SSL_set_mode(t->ssl, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	if ((rc = handshake(t, ctx_or_background(ctx))) != CHAN_OK)
		goto fail;
	*out = t;
	return CHAN_OK;
fail:
	ERR_clear_error();
	ctls_free(t);
	return rc;
}

void
ctls_free(struct ctls *t)
{
	if (t == NULL)
		return;
	SSL_free(t->ssl);
	SSL_CTX_free(t->ctx);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

ssize_t
ctls_read(struct ctls *t, void *buf, size_t n)
{
	struct nopipe np;
	int rc, err;

	nopipe_begin(&np);
	pthread_mutex_lock(&t->lock);
	rc = SSL_read(t->ssl, buf, n > INT32_MAX ? INT32_MAX : (int)n);
	err = rc > 0 ? SSL_ERROR_NONE : SSL_get_error(t->ssl, rc);
	if (rc <= 0)
		ERR_clear_error();
	pthread_mutex_unlock(&t->lock);
	nopipe_end(&np);
	if (rc > 0)
		return rc;
	if (err == SSL_ERROR_ZERO_RETURN)
		return 0;
	if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE)
		return CTLS_AGAIN;
	return -1;
}

bool
ctls_pending(struct ctls *t)
{
	int n;

	pthread_mutex_lock(&t->lock);
	n = SSL_pending(t->ssl);
	pthread_mutex_unlock(&t->lock);
	return n > 0;
}

int
ctls_write(struct ctls *t, const void *p, size_t n)
{
	const char *q = p;

	while (n > 0) {
		int rc, err;

		struct nopipe np;

		nopipe_begin(&np);
		pthread_mutex_lock(&t->lock);
		rc = SSL_write(t->ssl, q, n > INT32_MAX ? INT32_MAX : (int)n);
		err = rc > 0 ? SSL_ERROR_NONE : SSL_get_error(t->ssl, rc);
		if (rc <= 0)
			ERR_clear_error();
		pthread_mutex_unlock(&t->lock);
		nopipe_end(&np);
		if (rc > 0) {
			q += rc;
			n -= (size_t)rc;
			continue;
		}
		if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE)
			return -1;
		if (wait_io(t->fd, err, -1) < 0)
			return -1;
	}
	return 0;
}
