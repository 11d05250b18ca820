/*
 * test_server_hostile.c: clients that try to hold a real chand's
 * connections or memory without doing anything (issue 16): a frame
 * trickled a byte at a time (idle_timeout, frame_timeout), big frames
 * announced before HELLO (max_hello_frame), and many half-sent frames
 * (max_input_buffer_bytes). A neighbour connection is served throughout.
 * Certificates for the TLS case are made by tests/gencerts.sh.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <unistd.h>

#include "chanclient.h"
#include "clock.h"
#include "srvtest.h"

/* ---- helpers ------------------------------------------------------------------------ */

static void
assert_ping_ok(struct test_conn *c)
{
	struct proto_reply r;

	st_ping(c);
	st_reply(c, OP_PING, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
}

/* The next frame on c, within ms, is a connection notice [0, status, msg]: its status, or -1. */
static int
notice(struct test_conn *c, int ms)
{
	const uint8_t *body;
	const char *why;
	uint64_t id = 1;
	int status = -1;
	long n = test_conn_frame(c, ms, &body);

	if (n <= 0 || proto_reply_header(body, (size_t)n, &id, &status, &why) != STATUS_OK || id != 0)
		return -1;
	return status;
}

/* Does chand close c within 5 s? EOF, or a reset when it left bytes of ours unread. */
static bool
await_closed(struct test_conn *c)
{
	struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
	char buf[4096];
	ssize_t n;

	while (poll(&pfd, 1, 5000) == 1) {
		if ((n = recv(c->fd, buf, sizeof buf, 0)) == 0)
			return true;
		if (n < 0 && errno != EINTR)
			return errno == ECONNRESET;
	}
	return false;
}

/* The send queue (tx) of the socket from lport to rport, or its receive queue (rx); -1 if none. */
static long
tcp_queue(int lport, int rport, bool rx)
{
	FILE *f = fopen("/proc/net/tcp", "r");
	char line[512];
	unsigned lp, rp;
	unsigned long tx, rxq;
	long q = -1;

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof line, f) != NULL) {
		if (sscanf(line, " %*d: %*x:%x %*x:%x %*x %lx:%lx", &lp, &rp, &tx, &rxq) == 4 &&
		    (int)lp == lport && (int)rp == rport) {
			q = (long)(rx ? rxq : tx);
			break;
		}
	}
	fclose(f);
	return q;
}

/*
 * Wait (up to 10 s) until chand has read every byte c sent: c's send queue
 * and chand's receive queue for c are both empty. Only then is it known
 * what chand holds for c.
 */
static bool
await_server_read(struct test_conn *c, int port)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof sa;
	int64_t end = clock_now_ns() + 10 * NSEC_PER_SEC;
	int me;

	if (getsockname(c->fd, (struct sockaddr *)&sa, &len) < 0)
		return false;
	me = ntohs(sa.sin_port);
	while (clock_now_ns() < end) {
		if (tcp_queue(me, port, false) == 0 && tcp_queue(port, me, true) == 0)
			return true;
		poll(NULL, 0, 10);
	}
	return false;
}

/*
 * Trickle a frame to t: a header announcing 1000 bytes, then one byte
 * every 200 ms, while the neighbour n PINGs, until chand sends t a notice
 * (or 10 s pass: 50 bytes, the frame is never whole). Returns the notice's
 * status (-1: none) and, in *ms, how long it took.
 */
static int
trickle(struct test_conn *t, struct test_conn *n, int64_t *ms)
{
	static const uint8_t hdr[PROTO_FRAME_HDR] = { 0, 0, 0x03, 0xe8 };
	static const uint8_t byte = 0x95;	/* a fixarray: a request could begin so */
	int64_t start = clock_now_ns();
	int status;

	CU_ASSERT_FATAL(test_conn_write(t, hdr, sizeof hdr) == 0);
	while ((status = notice(t, 200)) < 0 && clock_now_ns() - start < 10 * NSEC_PER_SEC) {
		/* the bytes are the behaviour under test; chand may have closed meanwhile */
		(void)test_conn_write(t, &byte, 1);
		assert_ping_ok(n);
	}
	*ms = (clock_now_ns() - start) / NSEC_PER_MSEC;
	return status;
}

/* ---- item 13: a frame trickled a byte at a time ------------------------------------------------ */

/* Bytes of a frame that is never whole are not activity: idle_timeout closes the trickler. */
static void
test_idle_trickle(void)
{
	struct test_server s;
	struct test_conn t, n;
	int64_t ms;

	CU_ASSERT_FATAL(test_server_start(&s, "idle_timeout = 1s\n") == 0);
	CU_ASSERT_FATAL(test_conn_open(&t, s.port, true) == 0);
	CU_ASSERT_FATAL(test_conn_open(&n, s.port, true) == 0);
	/* a pending RECV: the neighbour is never idle, however slow this machine */
	CU_ASSERT_EQUAL(st_make(&n, "hostile.idle", 0), STATUS_OK);
	st_recv(&n, "hostile.idle", PROTO_WAIT_FOREVER);
	CU_ASSERT_EQUAL(trickle(&t, &n, &ms), STATUS_LIMIT);
	CU_ASSERT(ms < 5000);
	CU_ASSERT(await_closed(&t));
	CU_ASSERT(test_server_await_log(&s, "idle-timeout"));
	assert_ping_ok(&n);
	test_conn_close(&t);
	test_conn_close(&n);
	CU_ASSERT_EQUAL(test_server_stop(&s), 0);
}

/* With idle_timeout off, frame_timeout closes a frame that is not whole in time. */
static void
test_frame_timeout_trickle(void)
{
	struct test_server s;
	struct test_conn t, n;
	int64_t ms;

	CU_ASSERT_FATAL(test_server_start(&s, "frame_timeout = 1s\nidle_timeout = 0\n") == 0);
	CU_ASSERT_FATAL(test_conn_open(&t, s.port, true) == 0);
	CU_ASSERT_FATAL(test_conn_open(&n, s.port, true) == 0);
	CU_ASSERT_EQUAL(trickle(&t, &n, &ms), STATUS_LIMIT);
	CU_ASSERT(ms < 5000);
	CU_ASSERT(await_closed(&t));
	CU_ASSERT(test_server_await_log(&s, "frame-timeout"));
	assert_ping_ok(&n);
	test_conn_close(&t);
	test_conn_close(&n);
	CU_ASSERT_EQUAL(test_server_stop(&s), 0);
}

/*
 * frame_timeout times each frame from its own first bytes: a client whose
 * every frame arrives in two parts 250 ms apart goes on for longer than
 * frame_timeout in all, and is served.
 */
static void
test_frame_timeout_per_frame(void)
{
	enum { FRAMES = 16 };
	struct test_server s;
	struct test_conn c;
	struct proto_out o;
	struct proto_reply r;
	const uint8_t *body;
	int64_t start;

	CU_ASSERT_FATAL(test_server_start(&s, "frame_timeout = 3s\n") == 0);
	CU_ASSERT_FATAL(test_conn_open(&c, s.port, true) == 0);
	proto_out_init(&o);
	start = clock_now_ns();
	for (int i = 0; i < FRAMES; i++) {
		proto_req_ping(&o, c.next_id++);
		CU_ASSERT_FATAL(test_conn_write(&c, proto_out_data(&o), PROTO_FRAME_HDR + 1) == 0);
		/* the gap between the parts: nothing may come, least of all a notice */
		CU_ASSERT(test_conn_frame(&c, 250, &body) < 0);
		CU_ASSERT_FATAL(test_conn_write(&c, proto_out_data(&o) + PROTO_FRAME_HDR + 1,
		    proto_out_len(&o) - PROTO_FRAME_HDR - 1) == 0);
		proto_out_reset(&o);
		CU_ASSERT_FATAL(test_conn_reply(&c, OP_PING, REPLY_MS, &r) == 0);
		CU_ASSERT_EQUAL(r.status, STATUS_OK);
	}
	CU_ASSERT(clock_now_ns() - start > 3 * NSEC_PER_SEC);
	CU_ASSERT(!test_server_log_has(&s, "frame-timeout"));
	proto_out_destroy(&o);
	test_conn_close(&c);
	CU_ASSERT_EQUAL(test_server_stop(&s), 0);
}

/* ---- item 14: memory pinned by partial frames ------------------------------------------- */

/* HELLO from c with a token of len bytes (ignored: no authentication); the frame's length. */
static size_t
hello_with_token(struct test_conn *c, size_t len)
{
	struct proto_out o;
	char *token = malloc(len + 1);
	size_t flen;

	CU_ASSERT_FATAL(token != NULL);
	memset(token, 't', len);
	token[len] = '\0';
	proto_out_init(&o);
	CU_ASSERT_FATAL(proto_req_hello(&o, c->next_id++, PROTO_VERSION, "test", token) == 0);
	flen = proto_out_len(&o) - PROTO_FRAME_HDR;
	CU_ASSERT_FATAL(test_conn_write(c, proto_out_data(&o), proto_out_len(&o)) == 0);
	proto_out_destroy(&o);
	free(token);
	return flen;
}

/*
 * Before HELLO a frame may announce at most max_hello_frame (4096) bytes:
 * a header announcing 1 MiB is refused at once, and so is a HELLO over the
 * limit; one just under it is accepted.
 */
static void
test_hello_frame_limit(void)
{
	static const uint8_t mib[PROTO_FRAME_HDR] = { 0, 0x10, 0, 0 };
	struct test_server s;
	struct test_conn c, n;
	struct proto_reply r;

	CU_ASSERT_FATAL(test_server_start(&s, NULL) == 0);
	CU_ASSERT_FATAL(test_conn_open(&n, s.port, true) == 0);
	CU_ASSERT_FATAL(test_conn_open(&c, s.port, false) == 0);
	CU_ASSERT_FATAL(test_conn_write(&c, mib, sizeof mib) == 0);
	CU_ASSERT_EQUAL(notice(&c, REPLY_MS), STATUS_PROTOCOL);
	CU_ASSERT(await_closed(&c));
	CU_ASSERT(test_server_await_log(&s, "larger than max_hello_frame"));
	test_conn_close(&c);
	assert_ping_ok(&n);

	CU_ASSERT_FATAL(test_conn_open(&c, s.port, false) == 0);
	CU_ASSERT(hello_with_token(&c, 5000) > 4096);
	CU_ASSERT_EQUAL(notice(&c, REPLY_MS), STATUS_PROTOCOL);
	CU_ASSERT(await_closed(&c));
	test_conn_close(&c);

	CU_ASSERT_FATAL(test_conn_open(&c, s.port, false) == 0);
	CU_ASSERT(hello_with_token(&c, 4000) <= 4096);
	CU_ASSERT_FATAL(test_conn_reply(&c, OP_HELLO, REPLY_MS, &r) == 0);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
	/* past HELLO, max_frame is the limit again */
	assert_ping_ok(&c);
	test_conn_close(&c);
	assert_ping_ok(&n);
	test_conn_close(&n);
	CU_ASSERT_EQUAL(test_server_stop(&s), 0);
}

/*
 * max_input_buffer_bytes = 1 MiB. Four connections each send part of a
 * 512 KiB SEND frame: big three quarters, then a, b and c half each.
 * c's half passes 1 MiB: big, holding the most, is closed with LIMIT (not
 * c, whose read passed it); a, b and c finish their frames and are served,
 * and so is the neighbour.
 */
static void
test_input_budget(void)
{
	const char *name = "hostile.big";
	struct test_server s;
	struct test_conn n, big, p[3];
	struct proto_out f[4];
	struct proto_value v = { .kind = VALUE_BIN };
	struct proto_reply r;
	size_t len;
	uint8_t *value;

	CU_ASSERT_FATAL(test_server_start(&s, "max_input_buffer_bytes = 1M\n") == 0);
	CU_ASSERT_FATAL(test_conn_open(&n, s.port, true) == 0);
	CU_ASSERT_EQUAL(st_make(&n, name, 4), STATUS_OK);
	v.len = 512 * 1024 - 64;
	CU_ASSERT_FATAL((value = calloc(1, v.len)) != NULL);
	v.data = value;
	CU_ASSERT_FATAL(test_conn_open(&big, s.port, true) == 0);
	for (int i = 0; i < 3; i++)
		CU_ASSERT_FATAL(test_conn_open(&p[i], s.port, true) == 0);
	for (int i = 0; i < 4; i++) {
		struct test_conn *c = i < 3 ? &p[i] : &big;

		proto_out_init(&f[i]);
		CU_ASSERT_FATAL(proto_req_send(&f[i], c->next_id++, 0, name, strlen(name), &v) == 0);
	}
	len = proto_out_len(&f[0]);
	CU_ASSERT(len > 500 * 1024 && len <= 512 * 1024);
	/* 3/4 + 1/2 + 1/2 = 1.75 frames, 896 KiB: under the budget, nobody is closed */
	CU_ASSERT_FATAL(test_conn_write(&big, proto_out_data(&f[3]), len * 3 / 4) == 0);
	CU_ASSERT_FATAL(await_server_read(&big, s.port));
	for (int i = 0; i < 2; i++) {
		CU_ASSERT_FATAL(test_conn_write(&p[i], proto_out_data(&f[i]), len / 2) == 0);
		CU_ASSERT_FATAL(await_server_read(&p[i], s.port));
	}
	assert_ping_ok(&n);
	CU_ASSERT(!test_server_log_has(&s, "limit=max_input_buffer_bytes"));
	/* STATS shows what the budget counts: the three partial frames */
	CU_ASSERT_EQUAL(st_stat(&n, "input_buffer_bytes"), len * 3 / 4 + 2 * (len / 2));
	/* the third half passes 1 MiB */
	CU_ASSERT_FATAL(test_conn_write(&p[2], proto_out_data(&f[2]), len / 2) == 0);
	CU_ASSERT_EQUAL(notice(&big, REPLY_MS), STATUS_LIMIT);
	CU_ASSERT(await_closed(&big));
	CU_ASSERT(test_server_await_log(&s, "limit=max_input_buffer_bytes"));
	assert_ping_ok(&n);
	/* the others finish their frames: three values sent */
	for (int i = 0; i < 3; i++) {
		CU_ASSERT_FATAL(test_conn_write(&p[i], proto_out_data(&f[i]) + len / 2,
		    len - len / 2) == 0);
		CU_ASSERT_FATAL(test_conn_reply(&p[i], OP_SEND, REPLY_MS, &r) == 0);
		CU_ASSERT_EQUAL(r.status, STATUS_OK);
		assert_ping_ok(&p[i]);
	}
	assert_ping_ok(&n);
	CU_ASSERT_EQUAL(st_stat(&n, "input_buffer_bytes"), 0);
	for (int i = 0; i < 4; i++)
		proto_out_destroy(&f[i]);
	for (int i = 0; i < 3; i++)
		test_conn_close(&p[i]);
	free(value);
	test_conn_close(&big);
	test_conn_close(&n);
	CU_ASSERT_EQUAL(test_server_stop(&s), 0);
}

/*
 * A reload that lowers max_input_buffer_bytes under what a silent client
 * holds closes it: the holder need not send another byte.
 */
static void
test_input_budget_reload(void)
{
	static const uint8_t hdr[PROTO_FRAME_HDR] = { 0, 0x08, 0, 0 };	/* 512 KiB */
	struct test_server s;
	struct test_conn n, h;
	uint8_t *junk;
	FILE *f;

	CU_ASSERT_FATAL(test_server_start(&s, "max_input_buffer_bytes = 1M\n") == 0);
	CU_ASSERT_FATAL(test_conn_open(&n, s.port, true) == 0);
	CU_ASSERT_FATAL(test_conn_open(&h, s.port, true) == 0);
	CU_ASSERT_FATAL((junk = calloc(1, 300 * 1024)) != NULL);
	CU_ASSERT_FATAL(test_conn_write(&h, hdr, sizeof hdr) == 0);
	CU_ASSERT_FATAL(test_conn_write(&h, junk, 300 * 1024) == 0);
	CU_ASSERT_FATAL(await_server_read(&h, s.port));
	assert_ping_ok(&n);
	CU_ASSERT_FATAL((f = fopen(s.conf, "w")) != NULL);
	fputs("max_input_buffer_bytes = 256K\n", f);
	fclose(f);
	kill(s.pid, SIGHUP);
	CU_ASSERT_EQUAL(notice(&h, REPLY_MS), STATUS_LIMIT);
	CU_ASSERT(await_closed(&h));
	CU_ASSERT(test_server_await_log(&s, "limit=max_input_buffer_bytes"));
	assert_ping_ok(&n);
	free(junk);
	test_conn_close(&h);
	test_conn_close(&n);
	CU_ASSERT_EQUAL(test_server_stop(&s), 0);
}

/*
 * A reload that lowers max_frame under a frame already half read (more of
 * it buffered than the new max_frame): its next bytes get the PROTOCOL
 * notice a frame announced over max_frame gets, not a connection that
 * stops reading for good (frame_timeout is off here).
 */
static void
test_max_frame_reload(void)
{
	static const uint8_t hdr[PROTO_FRAME_HDR] = { 0, 0x08, 0, 0 };	/* 512 KiB */
	struct test_server s;
	struct test_conn n, h;
	uint8_t *junk;
	FILE *f;

	CU_ASSERT_FATAL(test_server_start(&s, "max_frame = 1M\nmax_value = 512K\nframe_timeout = 0\n") == 0);
	CU_ASSERT_FATAL(test_conn_open(&n, s.port, true) == 0);
	CU_ASSERT_FATAL(test_conn_open(&h, s.port, true) == 0);
	CU_ASSERT_FATAL((junk = calloc(1, 300 * 1024)) != NULL);
	CU_ASSERT_FATAL(test_conn_write(&h, hdr, sizeof hdr) == 0);
	CU_ASSERT_FATAL(test_conn_write(&h, junk, 300 * 1024) == 0);
	CU_ASSERT_FATAL(await_server_read(&h, s.port));
	CU_ASSERT_FATAL((f = fopen(s.conf, "w")) != NULL);
	fputs("max_frame = 128K\nmax_value = 64K\nframe_timeout = 0\n", f);
	fclose(f);
	kill(s.pid, SIGHUP);
	CU_ASSERT_FATAL(test_server_await_log(&s, "changed=max_frame"));
	CU_ASSERT_FATAL(test_conn_write(&h, junk, 1024) == 0);
	CU_ASSERT_EQUAL(notice(&h, REPLY_MS), STATUS_PROTOCOL);
	CU_ASSERT(await_closed(&h));
	assert_ping_ok(&n);
	free(junk);
	test_conn_close(&h);
	test_conn_close(&n);
	CU_ASSERT_EQUAL(test_server_stop(&s), 0);
}

/* ---- TLS: the read watermark follows HELLO -------------------------------------------- */

/*
 * Over TLS chand reads at most max_hello_frame ahead until HELLO is
 * accepted, then up to max_frame: a 256 KiB value goes through both ways
 * after HELLO (with the small watermark kept, its frame would never be
 * whole and the send would hang).
 */
static void
test_tls_after_hello(void)
{
	enum { BIG = 256 * 1024 };
	char certs[] = "/tmp/chand-certs.XXXXXX", cmd[256], conf[512], addr[64], ca[160];
	const char *src = getenv("CHAND_SRCDIR") ? getenv("CHAND_SRCDIR") : ".";
	struct test_server s;
	chan_dial_opts_t o = { 0 };
	chan_conn_t *c = NULL;
	chan_ctx_t *ctx;
	chan_t *ch = NULL;
	chan_value_t v;
	uint8_t *big;
	bool ok;

	CU_ASSERT_FATAL(mkdtemp(certs) != NULL);
	snprintf(cmd, sizeof cmd, "sh %s/tests/gencerts.sh %s", src, certs);
	CU_ASSERT_FATAL(system(cmd) == 0);
	snprintf(conf, sizeof conf, "tls_listen = 127.0.0.1:0\ntls_cert = %s/server.pem\n"
	    "tls_key = %s/server.key\n", certs, certs);
	CU_ASSERT_FATAL(test_server_start(&s, conf) == 0);
	snprintf(addr, sizeof addr, "tls://127.0.0.1:%d", test_server_tls_port(&s));
	snprintf(ca, sizeof ca, "%s/ca.pem", certs);
	o.tls_ca = ca;
	CU_ASSERT_FATAL((big = malloc(BIG)) != NULL);
	for (size_t i = 0; i < BIG; i++)
		big[i] = (uint8_t)(i * 7);
	chan_with_timeout(&ctx, NULL, 10 * CHAN_SEC);
	CU_ASSERT_EQUAL_FATAL(chan_dial(ctx, addr, &o, &c), CHAN_OK);
	CU_ASSERT_EQUAL_FATAL(chan_make(ctx, c, "hostile.tls", 1, &ch), CHAN_OK);
	CU_ASSERT_EQUAL(chan_send(ctx, ch, big, BIG), CHAN_OK);
	CU_ASSERT_EQUAL(chan_recv(ctx, ch, &v, &ok), CHAN_OK);
	CU_ASSERT(ok && v.len == BIG && memcmp(v.data, big, BIG) == 0);
	chan_value_clear(&v);
	chan_free(ch);
	chan_conn_close(c);
	chan_ctx_free(ctx);
	free(big);
	snprintf(cmd, sizeof cmd, "rm -rf %s", certs);
	CU_ASSERT(system(cmd) == 0);
	CU_ASSERT_EQUAL(test_server_stop(&s), 0);
}

static void
register_suites(void)
{
	CU_pSuite s = test_suite("trickle", NULL, NULL);

	test_add(s, "idle_timeout: a trickled frame is not activity", test_idle_trickle);
	test_add(s, "frame_timeout: a trickled frame is closed", test_frame_timeout_trickle);
	test_add(s, "frame_timeout times each frame", test_frame_timeout_per_frame);
	s = test_suite("pinning", NULL, NULL);
	test_add(s, "max_hello_frame", test_hello_frame_limit);
	test_add(s, "max_input_buffer_bytes closes the largest", test_input_budget);
	test_add(s, "max_input_buffer_bytes lowered by a reload", test_input_budget_reload);
	test_add(s, "max_frame lowered under a half-read frame", test_max_frame_reload);
	s = test_suite("tls", NULL, NULL);
	test_add(s, "frames up to max_frame after HELLO", test_tls_after_hello);
}

int
main(int argc, char **argv)
{
	return test_main(argc, argv, register_suites);
}
