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
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "clock.h"
#include "ctx_internal.h"
#include "tls.h"

#define CTLS_READ_AHEAD 65536	/* ciphertext one recv may take: several records */

struct ctls {
	SSL_CTX *ctx;
	SSL *ssl;
	int fd;
	pthread_mutex_t lock;		/* every SSL_* call on ssl, and more */
	bool more;			/* the last read filled its buffer: records may wait in ssl */
	bool drained;			/* the last recv took all the socket had */
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
 * The socket under the SSL object, as a BIO of our own: OpenSSL's socket
 * BIO writes with write(2), which raises SIGPIPE on a closed socket and
 * would kill the program, and a library must not change signal handlers.
 * send(MSG_NOSIGNAL) does not raise it, and costs no sigmask syscalls
 * around every SSL call. The socket is non-blocking: a BIO that would
 * block says "retry", and SSL says WANT_READ or WANT_WRITE.
 */
static int
sock_bio_write(BIO *b, const char *p, int n)
{
	const struct ctls *t = BIO_get_data(b);
	ssize_t r = send(t->fd, p, (size_t)n, MSG_NOSIGNAL);

	BIO_clear_retry_flags(b);
	if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		BIO_set_retry_write(b);
	return (int)r;
}

static int
sock_bio_read(BIO *b, char *p, int n)
{
	struct ctls *t = BIO_get_data(b);
	ssize_t r = recv(t->fd, p, (size_t)n, 0);

	t->drained = r < n;
	BIO_clear_retry_flags(b);
	if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		BIO_set_retry_read(b);
	return (int)r;
}

static long
sock_bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	(void)b, (void)num, (void)ptr;
	return cmd == BIO_CTRL_FLUSH ? 1 : 0;	/* nothing is buffered here; nothing else is asked of it */
}

static int
sock_bio_create(BIO *b)
{
	BIO_set_init(b, 1);
	return 1;
}

static BIO_METHOD *sock_bio_method;
static pthread_once_t sock_bio_once = PTHREAD_ONCE_INIT;

/* Made once, for the process's life (a BIO_METHOD is shared by every BIO of its kind). */
static void
sock_bio_method_make(void)
{
	BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "chanclient socket");

	if (m == NULL || BIO_meth_set_write(m, sock_bio_write) != 1 ||
	    BIO_meth_set_read(m, sock_bio_read) != 1 || BIO_meth_set_ctrl(m, sock_bio_ctrl) != 1 ||
	    BIO_meth_set_create(m, sock_bio_create) != 1) {
		BIO_meth_free(m);
		return;
	}
	sock_bio_method = m;
}

/* A BIO on t->fd for t->ssl, which owns it after. -1 out of memory. */
static int
sock_bio_attach(struct ctls *t)
{
	BIO *b;

	pthread_once(&sock_bio_once, sock_bio_method_make);
	if (sock_bio_method == NULL || (b = BIO_new(sock_bio_method)) == NULL)
		return -1;
	BIO_set_data(b, t);
	SSL_set_bio(t->ssl, b, b);
	return 0;
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
	SSL_CTX_set_default_read_buffer_len(ctx, CTLS_READ_AHEAD);
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
		int rc = SSL_connect(t->ssl), err, ms = -1;

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
	    sock_bio_attach(t) < 0 ||
	    set_peer_name(t->ssl, opts && opts->tls_server_name ? opts->tls_server_name : host) < 0)
		goto fail;
	SSL_set_mode(t->ssl, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_set_read_ahead(t->ssl, 1);	/* as many records as the socket has, in one recv */
	if ((rc = handshake(t, ctx_or_background(ctx))) != CHAN_OK)
		goto fail;
	t->more = true;		/* the handshake's last recv may have read ahead past it */
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
	size_t got = 0, one;
	int err = SSL_ERROR_NONE;

	pthread_mutex_lock(&t->lock);
	/* a record at a time, until the socket has no more or buf is full: one poll for them all */
	while (got < n && err == SSL_ERROR_NONE) {
		/* all the socket had is opened: one more recv would only say EAGAIN */
		if (got > 0 && t->drained && !SSL_has_pending(t->ssl))
			break;
		if (SSL_read_ex(t->ssl, (char *)buf + got, n - got, &one) == 1)
			got += one;
		else
			err = SSL_get_error(t->ssl, 0);
	}
	t->more = got == n;	/* buf is full: whole records may wait in SSL's buffer */
	if (err != SSL_ERROR_NONE)
		ERR_clear_error();
	pthread_mutex_unlock(&t->lock);
	if (got > 0)
		return (ssize_t)got;	/* an end or an error is seen again by the next call */
	if (err == SSL_ERROR_ZERO_RETURN)
		return 0;
	if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE)
		return CTLS_AGAIN;
	return -1;
}

bool
ctls_pending(struct ctls *t)
{
	bool more;

	pthread_mutex_lock(&t->lock);
	more = t->more || SSL_pending(t->ssl) > 0;
	pthread_mutex_unlock(&t->lock);
	return more;
}

int
ctls_write(struct ctls *t, const void *p, size_t n)
{
	const char *q = p;

	while (n > 0) {
		int rc, err;

		pthread_mutex_lock(&t->lock);
		rc = SSL_write(t->ssl, q, n > INT32_MAX ? INT32_MAX : (int)n);
		err = rc > 0 ? SSL_ERROR_NONE : SSL_get_error(t->ssl, rc);
		if (rc <= 0)
			ERR_clear_error();
		pthread_mutex_unlock(&t->lock);
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
