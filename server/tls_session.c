/*
 * tls_session.c: a TLS session whose records go to a sink (tls_session.h).
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "tls.h"
#include "tls_session.h"

/*
 * Ciphertext one socket read may take: several records. The buffer is
 * OpenSSL's, and released whenever it is empty (SSL_MODE_RELEASE_BUFFERS):
 * an idle connection holds none.
 */
#define READ_AHEAD 65536

struct tls_session {
	SSL *ssl;
	int fd;
	tls_sink_fn sink;
	void *arg;
	bool more;		/* the last read filled its buffer */
	bool drained;		/* the last recv took all the socket had */
	char why[320];		/* the last failure */
};

/* ---- the BIO under the SSL: reads the socket, writes to the sink ------------------ */

static int
bio_write(BIO *b, const char *p, int n)
{
	struct tls_session *s = BIO_get_data(b);

	BIO_clear_retry_flags(b);
	return s->sink(s->arg, p, (size_t)n) == 0 ? n : -1;
}

static int
bio_read(BIO *b, char *p, int n)
{
	struct tls_session *s = BIO_get_data(b);
	ssize_t r = recv(s->fd, p, (size_t)n, 0);

	s->drained = r < n;
	BIO_clear_retry_flags(b);
	if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		BIO_set_retry_read(b);
	return (int)r;
}

static long
bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	(void)b, (void)num, (void)ptr;
	return cmd == BIO_CTRL_FLUSH ? 1 : 0;	/* the sink holds nothing back */
}

static int
bio_create(BIO *b)
{
	BIO_set_init(b, 1);
	return 1;
}

static BIO_METHOD *bio_method;
static pthread_once_t bio_once = PTHREAD_ONCE_INIT;

/* Made once, for the process's life: a BIO_METHOD is shared by every BIO of its kind. */
static void
bio_method_make(void)
{
	BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "chand session");

	if (m == NULL || BIO_meth_set_write(m, bio_write) != 1 || BIO_meth_set_read(m, bio_read) != 1 ||
	    BIO_meth_set_ctrl(m, bio_ctrl) != 1 || BIO_meth_set_create(m, bio_create) != 1) {
		BIO_meth_free(m);
		return;
	}
	bio_method = m;
}

/* ---- the session ----------------------------------------------------------------- */

struct tls_session *
tls_session_new(struct ssl_ctx_st *ctx, int fd, const char *host, tls_sink_fn sink, void *arg)
{
	struct tls_session *s = calloc(1, sizeof *s);
	BIO *b = NULL;

	pthread_once(&bio_once, bio_method_make);
	if (s == NULL || bio_method == NULL ||
	    (s->ssl = host != NULL ? tls_client_ssl(ctx, host) : SSL_new(ctx)) == NULL ||
	    (b = BIO_new(bio_method)) == NULL)
		goto fail;
	s->fd = fd;
	s->sink = sink;
	s->arg = arg;
	BIO_set_data(b, s);
	SSL_set_bio(s->ssl, b, b);	/* the SSL owns b now */
	if (host != NULL)
		SSL_set_connect_state(s->ssl);
	else
		SSL_set_accept_state(s->ssl);
	SSL_set_mode(s->ssl, SSL_MODE_RELEASE_BUFFERS);
	SSL_set_read_ahead(s->ssl, 1);
	SSL_set_default_read_buffer_len(s->ssl, READ_AHEAD);
	return s;
fail:
	ERR_clear_error();
	if (s != NULL)
		SSL_free(s->ssl);
	free(s);
	return NULL;
}

void
tls_session_free(struct tls_session *s)
{
	if (s == NULL)
		return;
	SSL_free(s->ssl);
	free(s);
}

/* The call failed: keep why (tls_ssl_error takes the queue's errors), empty the queue. */
static void
failed(struct tls_session *s)
{
	tls_ssl_error(s->ssl, s->why, sizeof s->why);
	ERR_clear_error();
}

int
tls_session_handshake(struct tls_session *s)
{
	int rc = SSL_do_handshake(s->ssl);

	if (rc == 1) {
		s->more = true;		/* its last read may have read ahead past it */
		return 1;
	}
	if (SSL_get_error(s->ssl, rc) == SSL_ERROR_WANT_READ) {
		ERR_clear_error();
		return 0;
	}
	failed(s);
	return -1;
}

ssize_t
tls_session_read(struct tls_session *s, void *buf, size_t n)
{
	size_t got = 0, one;
	int err = SSL_ERROR_NONE;

	while (got < n && err == SSL_ERROR_NONE) {
		/* all the socket had is opened: one more recv would only say EAGAIN */
		if (got > 0 && s->drained && !SSL_has_pending(s->ssl))
			break;
		if (SSL_read_ex(s->ssl, (char *)buf + got, n - got, &one) == 1)
			got += one;
		else
			err = SSL_get_error(s->ssl, 0);
	}
	s->more = got == n;
	if (got > 0) {
		ERR_clear_error();	/* the next call meets the end or error again */
		return (ssize_t)got;
	}
	if (err == SSL_ERROR_WANT_READ) {
		ERR_clear_error();
		return TLS_AGAIN;
	}
	if (err == SSL_ERROR_ZERO_RETURN || (err == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)) {
		ERR_clear_error();
		return 0;	/* close_notify, or the socket's end */
	}
	failed(s);
	return -1;
}

bool
tls_session_pending(const struct tls_session *s)
{
	return s->more || SSL_pending(s->ssl) > 0;
}

int
tls_session_write(struct tls_session *s, const void *p, size_t n)
{
	size_t done;

	if (n == 0)
		return 0;
	if (SSL_write_ex(s->ssl, p, n, &done) == 1 && done == n)
		return 0;	/* the sink never makes it wait: all or nothing */
	failed(s);
	return -1;
}

void
tls_session_peer_name(struct tls_session *s, char *buf, size_t cap)
{
	tls_peer_name(s->ssl, buf, cap);
}

const char *
tls_session_why(const struct tls_session *s)
{
	return s->why[0] != '\0' ? s->why : "connection closed during the TLS handshake";
}
