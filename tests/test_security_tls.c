/*
 * test_security_tls.c: TLS and client certificates against a real chand
 * (PROTOCOL.md §13), a part of test_security (sectest.h).
 *
 * Certificates are made at test time by tests/gencerts.sh (the openssl
 * CLI) in a private directory.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "chanclient.h"
#include "sectest.h"
#include "srvtest.h"

static char certs[64];
static struct test_server tsrv;
static int tls_port;

static void
cert_path(char *buf, size_t cap, const char *name)
{
	snprintf(buf, cap, "%s/%s", certs, name);
}

static int
dial_tls(const char *ca, const char *cert, const char *name, const char *token, chan_conn_t **c)
{
	char addr[64], cap[160], certp[160], keyp[160];
	chan_dial_opts_t o = { .token = token, .tls_server_name = name };
	chan_ctx_t *ctx;
	int rc;

	snprintf(addr, sizeof addr, "tls://127.0.0.1:%d", tls_port);
	cert_path(cap, sizeof cap, ca);
	o.tls_ca = cap;
	if (cert) {
		snprintf(certp, sizeof certp, "%s/%s.pem", certs, cert);
		snprintf(keyp, sizeof keyp, "%s/%s.key", certs, cert);
		o.tls_cert = certp;
		o.tls_key = keyp;
	}
	chan_with_timeout(&ctx, NULL, 5 * CHAN_SEC);
	rc = chan_dial(ctx, addr, &o, c);
	if (rc == CHAN_OK)
		rc = chan_ping(ctx, *c);	/* a refused client certificate shows up here under TLS 1.3 */
	chan_ctx_free(ctx);
	return rc;
}

/* ---- TLS --------------------------------------------------------------------------------- */

static int
tls_init(void)
{
	char conf[2048], cmd[256];
	const char *src = getenv("CHAND_SRCDIR") ? getenv("CHAND_SRCDIR") : ".";

	if (tokens_init() < 0)
		return -1;
	snprintf(certs, sizeof certs, "/tmp/chand-certs.XXXXXX");
	if (mkdtemp(certs) == NULL)
		return -1;
	snprintf(cmd, sizeof cmd, "sh %s/tests/gencerts.sh %s", src, certs);
	if (system(cmd) != 0) {
		fprintf(stderr, "gencerts.sh failed (is the openssl CLI installed?)\n");
		return -1;
	}
	snprintf(conf, sizeof conf,
	    "tls_listen = 127.0.0.1:0\ntls_cert = %s/server.pem\ntls_key = %s/server.key\n"
	    "tls_ca = %s/ca.pem\ntls_verify_client = optional\n"
	    "token = %s\nallow = alice t.* all\n",
	    certs, certs, certs, tok_alice);
	if (test_server_start(&tsrv, conf) < 0)
		return -1;
	tls_port = test_server_tls_port(&tsrv);
	return tls_port > 0 ? 0 : -1;
}

static int
tls_clean(void)
{
	char cmd[128];

	snprintf(cmd, sizeof cmd, "rm -rf %s", certs);
	if (system(cmd) != 0)
		return -1;
	return test_server_stop(&tsrv) == 0 ? 0 : -1;
}

static void
test_tls_token(void)
{
	chan_conn_t *c = NULL;

	CU_ASSERT_EQUAL_FATAL(dial_tls("ca.pem", NULL, NULL, "alice-secret", &c), CHAN_OK);
	CU_ASSERT_EQUAL(make_rc(c, "t.1", 1), CHAN_OK);
	CU_ASSERT_EQUAL(op_rc(c, "send", "t.1"), CHAN_OK);
	CU_ASSERT_EQUAL(op_rc(c, "recv", "t.1"), CHAN_OK);
	chan_conn_close(c);
	/* no token, no certificate: authentication required */
	c = NULL;
	CU_ASSERT_EQUAL(dial_tls("ca.pem", NULL, NULL, NULL, &c), CHAN_EPERM);
}

/*
 * Pipelining over TLS: chand holds deferred replies there as over TCP
 * (PROTOCOL.md §15) until a WANT or a reply not deferred; 64 asynchronous
 * sends then 64 receives, and a stream (CREDIT deferred), all in order.
 */
static void
test_tls_pipelined(void)
{
	chan_op_t *sends[64], *recvs[64];
	chan_stream_t *st = NULL;
	chan_conn_t *c = NULL;
	chan_t *ch = NULL;
	chan_value_t v;
	bool ok;

	CU_ASSERT_EQUAL_FATAL(dial_tls("ca.pem", NULL, NULL, "alice-secret", &c), CHAN_OK);
	CU_ASSERT_EQUAL_FATAL(chan_make(NULL, c, "t.pipe", 64, &ch), CHAN_OK);
	for (uint8_t i = 0; i < 64; i++)
		CU_ASSERT_EQUAL_FATAL(chan_send_async(NULL, ch, &i, 1, &sends[i]), CHAN_OK);
	for (int i = 0; i < 64; i++)
		CU_ASSERT_EQUAL_FATAL(chan_recv_async(NULL, ch, &recvs[i]), CHAN_OK);
	for (int i = 0; i < 64; i++)
		CU_ASSERT_EQUAL(chan_op_wait(sends[i], NULL, NULL), CHAN_OK);
	for (int i = 0; i < 64; i++) {
		CU_ASSERT_EQUAL(chan_op_wait(recvs[i], &v, &ok), CHAN_OK);
		CU_ASSERT(ok && v.len == 1 && ((uint8_t *)v.data)[0] == i);
		chan_value_clear(&v);
	}
	CU_ASSERT_EQUAL_FATAL(chan_stream_open(NULL, &ch, 1, 2, &st), CHAN_OK);
	for (uint8_t i = 0; i < 10; i++) {
		CU_ASSERT_EQUAL(chan_send(NULL, ch, &i, 1), CHAN_OK);
		CU_ASSERT_EQUAL(chan_stream_recv(st, &v, &ok, NULL), CHAN_OK);
		CU_ASSERT(ok && v.len == 1 && ((uint8_t *)v.data)[0] == i);
		chan_value_clear(&v);
	}
	chan_stream_free(st);
	CU_ASSERT_EQUAL(chan_delete(NULL, ch, NULL), CHAN_OK);
	chan_free(ch);
	chan_conn_close(c);
}

struct tls_recv {
	chan_ctx_t *ctx;
	chan_t *ch;
	int rc;
	int64_t end;
};

static void *
tls_recv_main(void *arg)
{
	struct tls_recv *r = arg;

	r->rc = chan_recv(r->ctx, r->ch, NULL, NULL);
	r->end = chan_now();
	return NULL;
}

/*
 * A blocked receive over TLS ends at once when its context is cancelled.
 * Over TLS the waiting thread polls, so the canceller wakes it rather than
 * writing the CANCEL itself (a TLS write may have to wait).
 */
static void
test_tls_cancel(void)
{
	const struct timespec ms = { 0, 1000000 };
	struct tls_recv r = { .rc = -1 };
	chan_conn_t *c = NULL;
	chan_info_t info = { 0 };
	struct timespec bound;
	pthread_t t;
	int64_t t0;

	CU_ASSERT_EQUAL_FATAL(dial_tls("ca.pem", NULL, NULL, "alice-secret", &c), CHAN_OK);
	CU_ASSERT_EQUAL_FATAL(chan_make(NULL, c, "t.cancel", 0, &r.ch), CHAN_OK);
	CU_ASSERT_EQUAL_FATAL(chan_with_cancel(&r.ctx, NULL), CHAN_OK);
	CU_ASSERT_FATAL(pthread_create(&t, NULL, tls_recv_main, &r) == 0);
	for (int i = 0; i < 5000 && info.receivers == 0; i++) {
		CU_ASSERT_EQUAL_FATAL(chan_info(NULL, r.ch, &info), CHAN_OK);
		nanosleep(&ms, NULL);	/* until the server holds the receiver */
	}
	CU_ASSERT_EQUAL_FATAL(info.receivers, 1);
	t0 = chan_now();
	CU_ASSERT_EQUAL(chan_cancel(r.ctx), CHAN_OK);
	clock_gettime(CLOCK_REALTIME, &bound);
	bound.tv_sec += 5;
	CU_ASSERT_FATAL(pthread_timedjoin_np(t, NULL, &bound) == 0);
	CU_ASSERT_EQUAL(r.rc, CHAN_ECANCELED);
	CU_ASSERT((r.end - t0) / CHAN_MSEC < 500);	/* at once, not after the 1 s grace */
	CU_ASSERT_EQUAL(chan_info(NULL, r.ch, &info), CHAN_OK);
	CU_ASSERT_EQUAL(info.receivers, 0);
	chan_ctx_free(r.ctx);
	CU_ASSERT_EQUAL(chan_delete(NULL, r.ch, NULL), CHAN_OK);
	chan_free(r.ch);
	chan_conn_close(c);
}

static void
test_tls_client_cert(void)
{
	chan_conn_t *c = NULL;

	/* CN alice: alice's rights, no token */
	CU_ASSERT_EQUAL_FATAL(dial_tls("ca.pem", "client", NULL, NULL, &c), CHAN_OK);
	CU_ASSERT_EQUAL(make_rc(c, "t.2", 0), CHAN_OK);
	chan_conn_close(c);
	CU_ASSERT(test_server_await_log(&tsrv, "certificate=alice"));
	/* expired, and signed by another CA: that connection fails, with a reason logged */
	c = NULL;
	CU_ASSERT_NOT_EQUAL(dial_tls("ca.pem", "expired", NULL, NULL, &c), CHAN_OK);
	chan_conn_close(c);
	CU_ASSERT(test_server_await_log(&tsrv, "certificate has expired"));
	c = NULL;
	CU_ASSERT_NOT_EQUAL(dial_tls("ca.pem", "otherclient", NULL, NULL, &c), CHAN_OK);
	chan_conn_close(c);
	CU_ASSERT(test_server_await_log(&tsrv, "tls-failed"));
	/* the server goes on */
	c = NULL;
	CU_ASSERT_EQUAL(dial_tls("ca.pem", NULL, NULL, "alice-secret", &c), CHAN_OK);
	chan_conn_close(c);
}

static void
test_tls_wrong_ca_and_name(void)
{
	chan_conn_t *c = NULL;

	CU_ASSERT_EQUAL(dial_tls("otherca.pem", NULL, NULL, "alice-secret", &c), CHAN_ETLS);
	CU_ASSERT_EQUAL(dial_tls("ca.pem", NULL, "wrong.example", "alice-secret", &c), CHAN_ETLS);
	CU_ASSERT_EQUAL(dial_tls("ca.pem", NULL, "localhost", "alice-secret", &c), CHAN_OK);
	chan_conn_close(c);
}

static void
test_plaintext_to_tls(void)
{
	struct test_conn t;
	const uint8_t *body;
	struct proto_out o;

	CU_ASSERT_FATAL(test_conn_open(&t, tls_port, false) == 0);
	proto_out_init(&o);
	proto_req_hello(&o, 1, PROTO_VERSION, "plain", NULL);
	test_conn_write(&t, proto_out_data(&o), proto_out_len(&o));
	proto_out_destroy(&o);
	/* the server drops it: no frame comes back, just the end */
	CU_ASSERT(test_conn_frame(&t, 5000, &body) <= 0);
	test_conn_close(&t);
	CU_ASSERT(test_server_await_log(&tsrv, "tls-failed"));
}

static void
test_tls_to_plaintext(void)
{
	chan_conn_t *c = NULL;
	int saved = tls_port;

	tls_port = tsrv.port;	/* the plain listener */
	CU_ASSERT_EQUAL(dial_tls("ca.pem", NULL, NULL, "alice-secret", &c), CHAN_ETLS);
	tls_port = saved;
}

static void
test_tls_reload(void)
{
	chan_conn_t *c = NULL;

	kill(tsrv.pid, SIGHUP);
	CU_ASSERT(test_server_await_log(&tsrv, "reload file="));
	CU_ASSERT_EQUAL(dial_tls("ca.pem", NULL, NULL, "alice-secret", &c), CHAN_OK);
	chan_conn_close(c);
}

/* Value i of test_tls_bulk: its size crosses record (16 KiB) and read (64 KiB) bounds. */
static size_t
bulk_size(int i)
{
	static const size_t sizes[] = { 1, 100, 16383, 16384, 16385, 65536, 70001, 200000 };

	return sizes[i % (sizeof sizes / sizeof sizes[0])];
}

static void
bulk_fill(uint8_t *buf, size_t len, int i)
{
	for (size_t k = 0; k < len; k++)
		buf[k] = (uint8_t)(i * 31 + k * 7);
}

#define BULK_N 400

struct bulk_sender {
	chan_t *ch;
	int rc;
};

static void *
bulk_send_main(void *arg)
{
	struct bulk_sender *b = arg;
	uint8_t *buf = malloc(200000);

	b->rc = buf ? CHAN_OK : CHAN_ENOMEM;
	for (int i = 0; i < BULK_N && b->rc == CHAN_OK; i++) {
		bulk_fill(buf, bulk_size(i), i);
		b->rc = chan_send(NULL, b->ch, buf, bulk_size(i));
	}
	free(buf);
	return NULL;
}

/*
 * Many values, small and large, one connection sending, another receiving
 * them 64 at a time (one burst of up to 64 replies), each value checked: a
 * read fills its buffer with records to spare, a large value spans several
 * reads, and nothing is lost or left waiting in the TLS layer's buffer
 * (that would hang: a context bounds each wait).
 */
static void
test_tls_bulk(void)
{
	struct bulk_sender b = { .rc = -1 };
	chan_conn_t *cs = NULL, *cr = NULL;
	chan_ctx_t *ctx = NULL;
	chan_op_t *ops[64];
	chan_t *rch = NULL;
	chan_value_t v;
	uint8_t *want = malloc(200000);
	pthread_t t;
	bool ok;
	int bad = 0, failed = 0;

	CU_ASSERT_FATAL(want != NULL);
	CU_ASSERT_EQUAL_FATAL(dial_tls("ca.pem", NULL, NULL, "alice-secret", &cs), CHAN_OK);
	CU_ASSERT_EQUAL_FATAL(dial_tls("ca.pem", NULL, NULL, "alice-secret", &cr), CHAN_OK);
	CU_ASSERT_EQUAL_FATAL(chan_make(NULL, cs, "t.bulk", 64, &b.ch), CHAN_OK);
	CU_ASSERT_EQUAL_FATAL(chan_open(NULL, cr, "t.bulk", &rch), CHAN_OK);
	CU_ASSERT_FATAL(pthread_create(&t, NULL, bulk_send_main, &b) == 0);
	chan_with_timeout(&ctx, NULL, 30 * CHAN_SEC);
	for (int i = 0; i < BULK_N; i += 64) {
		int n = BULK_N - i < 64 ? BULK_N - i : 64;

		for (int k = 0; k < n; k++)
			CU_ASSERT_EQUAL_FATAL(chan_recv_async(ctx, rch, &ops[k]), CHAN_OK);
		for (int k = 0; k < n; k++) {
			if (chan_op_wait(ops[k], &v, &ok) != CHAN_OK) {
				failed++;
				continue;
			}
			bulk_fill(want, bulk_size(i + k), i + k);
			if (!ok || v.len != bulk_size(i + k) || memcmp(v.data, want, v.len) != 0)
				bad++;
			chan_value_clear(&v);
		}
	}
	CU_ASSERT_EQUAL(failed, 0);
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT_FATAL(pthread_join(t, NULL) == 0);
	CU_ASSERT_EQUAL(b.rc, CHAN_OK);
	chan_ctx_free(ctx);
	CU_ASSERT_EQUAL(chan_delete(NULL, b.ch, NULL), CHAN_OK);
	chan_free(b.ch);
	chan_free(rch);
	chan_conn_close(cs);
	chan_conn_close(cr);
	free(want);
}

/*
 * A server that dies under a TLS client: the requests written to the dead
 * socket and those after end with CHAN_ECONNLOST, and the program lives
 * (it does not ignore SIGPIPE; the client's writes must not raise it).
 * Its own chand, killed.
 */
static void
test_tls_server_dies(void)
{
	char conf[1024], addr[64], ca[160];
	chan_dial_opts_t o = { .tls_ca = ca };
	struct test_server srv;
	chan_op_t *ops[64];
	uint8_t big[4096] = { 0 };
	chan_conn_t *c = NULL;
	chan_t *ch = NULL;
	int lost = 0;

	snprintf(conf, sizeof conf,
	    "tls_listen = 127.0.0.1:0\ntls_cert = %s/server.pem\ntls_key = %s/server.key\n"
	    "protected_mode = no\n", certs, certs);
	CU_ASSERT_FATAL(test_server_start(&srv, conf) == 0);
	snprintf(addr, sizeof addr, "tls://127.0.0.1:%d", test_server_tls_port(&srv));
	cert_path(ca, sizeof ca, "ca.pem");
	CU_ASSERT_EQUAL_FATAL(chan_dial(NULL, addr, &o, &c), CHAN_OK);
	CU_ASSERT_EQUAL_FATAL(chan_make(NULL, c, "t.dies", 1024, &ch), CHAN_OK);
	test_server_kill(&srv);
	/* nobody reads meanwhile: the writes find the socket closed, then reset */
	for (int i = 0; i < 64; i++)
		if (chan_send_async(NULL, ch, big, sizeof big, &ops[i]) != CHAN_OK)
			ops[i] = NULL;
	for (int i = 0; i < 64; i++)
		if (ops[i] == NULL || chan_op_wait(ops[i], NULL, NULL) == CHAN_ECONNLOST)
			lost++;
	CU_ASSERT_EQUAL(lost, 64);
	CU_ASSERT_EQUAL(chan_send(NULL, ch, big, 1), CHAN_ECONNLOST);
	chan_free(ch);
	chan_conn_close(c);
}

void
register_security_tls(void)
{
	CU_pSuite s = test_suite("tls", tls_init, tls_clean);

	test_add(s, "token over TLS; none", test_tls_token);
	test_add(s, "pipelining and a stream over TLS", test_tls_pipelined);
	test_add(s, "a cancel over TLS wakes the receive at once", test_tls_cancel);
	test_add(s, "client certificates: good, expired, wrong CA", test_tls_client_cert);
	test_add(s, "wrong CA, wrong name", test_tls_wrong_ca_and_name);
	test_add(s, "plaintext to the TLS port", test_plaintext_to_tls);
	test_add(s, "TLS to the plain port", test_tls_to_plaintext);
	test_add(s, "certificates reload on SIGHUP", test_tls_reload);
	test_add(s, "many values, small and large, over TLS", test_tls_bulk);
	test_add(s, "the server dies: CHAN_ECONNLOST", test_tls_server_dies);
}
