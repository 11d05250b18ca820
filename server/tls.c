/*
 * tls.c: the server's OpenSSL contexts, node-to-node bufferevents, and
 * what a handshake says of its peer.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/bufferevent_ssl.h>
#include <event2/util.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "log.h"
#include "tls.h"

/* TLS 1.2: ECDHE with AEAD only (Mozilla "intermediate"); TLS 1.3 keeps OpenSSL's suites. */
#define TLS12_CIPHERS \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:" \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:" \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

struct tls {
	SSL_CTX *ctx;
};

static int
ssl_fail(char **cause, const char *what, const char *file)
{
	char err[256] = "unknown error";
	unsigned long e = ERR_peek_last_error();

	if (e != 0)
		ERR_error_string_n(e, err, sizeof err);
	ERR_clear_error();
	if (asprintf(cause, "%s%s%s: %s", what, file ? " " : "", file ? file : "", err) < 0)
		*cause = NULL;
	return -1;
}

static int
load_ca(SSL_CTX *ctx, const struct config *cfg, char **cause)
{
	STACK_OF(X509_NAME) *names;
	int mode = SSL_VERIFY_NONE;

	if (cfg->tls_ca[0] == '\0')
		return 0;
	if (SSL_CTX_load_verify_locations(ctx, cfg->tls_ca, NULL) != 1)
		return ssl_fail(cause, "tls_ca: cannot load", cfg->tls_ca);
	/* the CAs a client certificate may come from, announced in the handshake */
	if ((names = SSL_load_client_CA_file(cfg->tls_ca)) == NULL)
		return ssl_fail(cause, "tls_ca: no certificate in", cfg->tls_ca);
	SSL_CTX_set_client_CA_list(ctx, names);
	if (strcmp(cfg->tls_verify_client, "optional") == 0)
		mode = SSL_VERIFY_PEER;
	else if (strcmp(cfg->tls_verify_client, "required") == 0)
		mode = SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
	SSL_CTX_set_verify(ctx, mode, NULL);
	return 0;
}

static SSL_CTX *
make_ctx(const struct config *cfg, char **cause)
{
	static const unsigned char sid[] = "chand";
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (ctx == NULL) {
		ssl_fail(cause, "SSL_CTX_new", NULL);
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
	    SSL_OP_CIPHER_SERVER_PREFERENCE);
#ifdef SSL_OP_IGNORE_UNEXPECTED_EOF
	/* a client that just closes its socket is a disconnect, not an attack */
	SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
#endif
	SSL_CTX_set_session_id_context(ctx, sid, sizeof sid - 1);
	if (SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS) != 1) {
		ssl_fail(cause, "tls ciphers", NULL);
		goto fail;
	}
	if (SSL_CTX_use_certificate_chain_file(ctx, cfg->tls_cert) != 1) {
		ssl_fail(cause, "tls_cert: cannot load", cfg->tls_cert);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, cfg->tls_key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		ssl_fail(cause, "tls_key: cannot load, or it does not match tls_cert:", cfg->tls_key);
		goto fail;
	}
	if (load_ca(ctx, cfg, cause) < 0)
		goto fail;
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

int
tls_new(struct tls **out, const struct config *cfg, char **cause)
{
	struct tls *t = calloc(1, sizeof *t);

	*cause = NULL;
	if (t == NULL || (t->ctx = make_ctx(cfg, cause)) == NULL) {
		if (*cause == NULL && asprintf(cause, "out of memory") < 0)
			*cause = NULL;
		free(t);
		return -1;
	}
	*out = t;
	return 0;
}

int
tls_reload(struct tls *t, const struct config *cfg, char **cause)
{
	SSL_CTX *ctx = make_ctx(cfg, cause);

	if (ctx == NULL)
		return -1;
	SSL_CTX_free(t->ctx);	/* open connections hold their own reference */
	t->ctx = ctx;
	return 0;
}

void
tls_free(struct tls *t)
{
	if (t == NULL)
		return;
	SSL_CTX_free(t->ctx);
	free(t);
}

/* A client SSL_CTX: cert/key presented when set, the server's certificate verified against ca. */
static SSL_CTX *
client_ctx(const char *const files[3], const char *const keys[3], char **cause)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	char what[64];

	if (ctx == NULL) {
		ssl_fail(cause, "SSL_CTX_new", NULL);
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
	if (SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS) != 1) {
		ssl_fail(cause, "tls ciphers", NULL);
		goto fail;
	}
	/* the client's own certificate: the server may ask for it */
	snprintf(what, sizeof what, "%s: cannot load", keys[0]);
	if (files[0][0] != '\0' && SSL_CTX_use_certificate_chain_file(ctx, files[0]) != 1) {
		ssl_fail(cause, what, files[0]);
		goto fail;
	}
	snprintf(what, sizeof what, "%s: cannot load", keys[1]);
	if (files[1][0] != '\0' && SSL_CTX_use_PrivateKey_file(ctx, files[1], SSL_FILETYPE_PEM) != 1) {
		ssl_fail(cause, what, files[1]);
		goto fail;
	}
	snprintf(what, sizeof what, "%s: cannot load", keys[2]);
	if (files[2][0] != '\0' ? SSL_CTX_load_verify_locations(ctx, files[2], NULL) != 1 :
	    SSL_CTX_set_default_verify_paths(ctx) != 1) {
		ssl_fail(cause, what, files[2]);
		goto fail;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

SSL_CTX *
tls_client_ctx(const struct config *cfg, char **cause)
{
	const char *const files[3] = { cfg->tls_cert, cfg->tls_key, cfg->tls_ca };
	static const char *const keys[3] = { "tls_cert", "tls_key", "tls_ca" };

	return client_ctx(files, keys, cause);
}

SSL_CTX *
tls_etcd_ctx(const struct config *cfg, char **cause)
{
	const char *const files[3] = { cfg->cluster_etcd_cert, cfg->cluster_etcd_key,
	    cfg->cluster_etcd_ca };
	static const char *const keys[3] = { "cluster_etcd_cert", "cluster_etcd_key",
	    "cluster_etcd_ca" };

	return client_ctx(files, keys, cause);
}

SSL *
tls_client_ssl(SSL_CTX *ctx, const char *host)
{
	SSL *ssl = SSL_new(ctx);
	unsigned char ip[16];
	int ok;

	if (ssl == NULL)
		return NULL;
	/* the other end's certificate must name the host or address it is dialled at */
	if (evutil_inet_pton(AF_INET, host, ip) == 1 || evutil_inet_pton(AF_INET6, host, ip) == 1)
		ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host);
	else
		ok = SSL_set_tlsext_host_name(ssl, host) == 1 && SSL_set1_host(ssl, host) == 1;
	if (ok != 1) {
		SSL_free(ssl);
		return NULL;
	}
	return ssl;
}

struct bufferevent *
tls_client_bufferevent(SSL_CTX *ctx, struct event_base *base, const char *host)
{
	SSL *ssl = tls_client_ssl(ctx, host);
	struct bufferevent *bev;

	if (ssl == NULL)
		return NULL;
	bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
	    BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		SSL_free(ssl);
		return NULL;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	return bev;
}

SSL_CTX *
tls_server_ctx(struct tls *t)
{
	return t->ctx;
}

/* The common name of cert into buf: an identity name, printable, no NUL inside; "" if none fits. */
static void
cert_cn(X509 *cert, char *buf, size_t cap)
{
	X509_NAME *subject = X509_get_subject_name(cert);
	const ASN1_STRING *cn;
	int i;

	buf[0] = '\0';
	if ((i = X509_NAME_get_index_by_NID(subject, NID_commonName, -1)) >= 0 &&
	    (cn = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, i))) != NULL) {
		const unsigned char *p = ASN1_STRING_get0_data(cn);
		int len = ASN1_STRING_length(cn);

		if (len > 0 && (size_t)len < cap && memchr(p, '\0', (size_t)len) == NULL) {
			memcpy(buf, p, (size_t)len);
			buf[len] = '\0';
			for (char *q = buf; *q; q++)
				if ((unsigned char)*q < 0x21 || (unsigned char)*q == 0x7f)
					*q = '_';
		}
	}
}

void
tls_peer_name(SSL *ssl, char *buf, size_t cap)
{
	X509 *cert;

	buf[0] = '\0';
	if (ssl == NULL || (cert = SSL_get_peer_certificate(ssl)) == NULL)
		return;
	if (SSL_get_verify_result(ssl) == X509_V_OK)
		cert_cn(cert, buf, cap);
	X509_free(cert);
}

void
tls_self_name(struct tls *t, char *buf, size_t cap)
{
	X509 *cert;
	X509_STORE_CTX *sctx = NULL;
	STACK_OF(X509) *chain = NULL;

	buf[0] = '\0';
	if (t == NULL || !(SSL_CTX_get_verify_mode(t->ctx) & SSL_VERIFY_PEER) ||
	    (cert = SSL_CTX_get0_certificate(t->ctx)) == NULL)
		return;
	/* as the handshake would check it: against tls_ca, for a TLS client */
	if ((sctx = X509_STORE_CTX_new()) == NULL || SSL_CTX_get0_chain_certs(t->ctx, &chain) != 1 ||
	    X509_STORE_CTX_init(sctx, SSL_CTX_get_cert_store(t->ctx), cert, chain) != 1 ||
	    X509_STORE_CTX_set_purpose(sctx, X509_PURPOSE_SSL_CLIENT) != 1)
		goto done;
	if (X509_verify_cert(sctx) == 1)
		cert_cn(cert, buf, cap);
done:
	X509_STORE_CTX_free(sctx);
	ERR_clear_error();
}

void
tls_ssl_error(SSL *ssl, char *buf, size_t cap)
{
	unsigned long e;
	size_t len = 0;
	long vr;

	buf[0] = '\0';
	while ((e = ERR_get_error()) != 0 && len + 2 < cap) {
		char one[160];

		ERR_error_string_n(e, one, sizeof one);
		len += (size_t)snprintf(buf + len, cap - len, "%s%s", len ? "; " : "", one);
	}
	/* then the certificate's verify result */
	if (ssl != NULL && (vr = SSL_get_verify_result(ssl)) != X509_V_OK && len + 2 < cap)
		len += (size_t)snprintf(buf + len, cap - len, "%scertificate: %s", len ? "; " : "",
		    X509_verify_cert_error_string(vr));
	if (len == 0)
		snprintf(buf, cap, "%s", "connection closed during the TLS handshake");
}
