/*
 * wakebench: workload 8 of tests/bench/run.sh (issue 22), the connection
 * scale: N connections, each blocked in one receive on one shared key, then
 * all woken at once. chand and Redis alike, the same way, on raw sockets:
 *
 *	wakebench -s chand|redis -p PORT -P PID -c N [-k TAG]
 *
 *   chand  each connection: HELLO, then RECV on an unbuffered channel with
 *          no deadline; woken by N SENDs pipelined in one write on a
 *          control connection (each meets the next waiting receiver).
 *   redis  each connection: BRPOP key 0; woken by one RPUSH of N values
 *          (Redis serves its blocked clients in arrival order).
 *
 * Figures (RESULT w8 ...): bytes_per_receiver (the server's VmRSS, from
 * /proc/PID/status, after the N are blocked minus before they connected,
 * over N: the connection and its pending receive together), wake_all_ms
 * (from the wake's write to the last receiver's whole reply), p50_us and
 * p99_us of the receivers' wake-up times over the same interval.
 * One thread, epoll; every wait is bounded (60 s).
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench.h"
#include "codec.h"
#include "rawchan.h"
#include "status.h"

#define VALUE "wake-up!"		/* 8 bytes */
#define BOUND_NS (60 * 1000000000LL)

struct opts {
	bool redis;
	int port, pid;
	size_t conns;
	const char *tag;
};

/* A receiver: its socket and how much of its one reply has come. */
struct receiver {
	int fd;
	size_t got, want;		/* want: 0 until known (chand: from the frame header) */
	uint8_t hdr[PROTO_FRAME_HDR];
	int64_t woke;
};

static char g_key[64];

/* ---- chand ------------------------------------------------------------------------ */

/* N SENDs of VALUE in one buffer (written by the caller). */
static void
chand_queue_wake(struct rconn *ctl, size_t n)
{
	struct proto_value v = { .kind = VALUE_BIN, .data = (const uint8_t *)VALUE,
	    .len = sizeof VALUE - 1 };

	for (size_t i = 0; i < n; i++)
		proto_req_send(&ctl->o, ctl->next_id++, PROTO_WAIT_FOREVER, g_key, strlen(g_key), &v);
}

/* ---- redis (RESP by hand: two commands and one reply shape) ------------------------ */

static int
redis_block(int port)
{
	char cmd[160];
	int fd = tcp_connect(port), len;

	if (fd < 0)
		bench_die("wakebench: cannot connect to port %d: %s", port, strerror(errno));
	len = snprintf(cmd, sizeof cmd, "*3\r\n$5\r\nBRPOP\r\n$%zu\r\n%s\r\n$1\r\n0\r\n",
	    strlen(g_key), g_key);
	if (tcp_write_all(fd, cmd, (size_t)len) < 0)
		bench_die("wakebench: write failed");
	return fd;
}

/* The length of BRPOP's reply: [key, VALUE]. */
static size_t
redis_reply_len(void)
{
	char r[160];

	return (size_t)snprintf(r, sizeof r, "*2\r\n$%zu\r\n%s\r\n$%zu\r\n%s\r\n", strlen(g_key),
	    g_key, sizeof VALUE - 1, VALUE);
}

/* INFO clients' blocked_clients, one round trip on ctl. */
static long
redis_blocked(int ctl)
{
	static const char cmd[] = "*2\r\n$4\r\nINFO\r\n$7\r\nclients\r\n";
	char buf[4096], *p;
	size_t have = 0, want = 0;
	ssize_t k;

	if (tcp_write_all(ctl, cmd, sizeof cmd - 1) < 0)
		bench_die("wakebench: write failed");
	/* "$LEN\r\n" then LEN bytes and "\r\n" */
	while (want == 0 || have < want) {
		if ((k = read(ctl, buf + have, sizeof buf - 1 - have)) <= 0)
			bench_die("wakebench: INFO: connection lost");
		have += (size_t)k;
		buf[have] = '\0';
		if (want == 0 && (p = strstr(buf, "\r\n")) != NULL)
			want = (size_t)(p - buf) + 2 + strtoul(buf + 1, NULL, 10) + 2;
	}
	p = strstr(buf, "blocked_clients:");
	return p != NULL ? strtol(p + 16, NULL, 10) : -1;
}

static void
redis_await_blocked(int ctl, long want)
{
	int64_t end = bench_now() + BOUND_NS;

	while (redis_blocked(ctl) < want) {
		if (bench_now() > end)
			bench_die("wakebench: fewer than %ld clients blocked after 60 s", want);
		usleep(20000);
	}
}

/* RPUSH key VALUE × n, whole, into a buffer the caller frees. */
static char *
redis_wake_cmd(size_t n, size_t *len)
{
	size_t klen = strlen(g_key), cap = 64 + klen + n * (16 + sizeof VALUE), off;
	char *b = malloc(cap);

	if (b == NULL)
		bench_die("wakebench: out of memory");
	off = (size_t)snprintf(b, cap, "*%zu\r\n$5\r\nRPUSH\r\n$%zu\r\n%s\r\n", n + 2, klen, g_key);
	for (size_t i = 0; i < n; i++)
		off += (size_t)snprintf(b + off, cap - off, "$%zu\r\n%s\r\n", sizeof VALUE - 1, VALUE);
	*len = off;
	return b;
}

/* ---- the wake ----------------------------------------------------------------------- */

/* Read what has come for r; true once its whole reply is in. */
static bool
receiver_read(struct receiver *r, bool chand)
{
	uint8_t buf[512];
	ssize_t k;

	while ((k = read(r->fd, buf, sizeof buf)) > 0) {
		for (size_t i = 0; chand && i < (size_t)k && r->got + i < PROTO_FRAME_HDR; i++)
			r->hdr[r->got + i] = buf[i];
		r->got += (size_t)k;
		if (chand && r->want == 0 && r->got >= PROTO_FRAME_HDR)
			r->want = PROTO_FRAME_HDR + proto_frame_len(r->hdr);
	}
	if (k == 0)
		bench_die("wakebench: a receiver's connection was closed before its reply");
	if (k < 0 && errno != EAGAIN)
		bench_die("wakebench: read: %s", strerror(errno));
	return r->want > 0 && r->got >= r->want;
}

/* Wait (bounded) until every receiver has its reply; their times go to lat. */
static void
await_all(struct receiver *rs, size_t n, bool chand, int64_t t0, struct bench_lat *lat)
{
	int ep = epoll_create1(0);
	struct epoll_event ev[256];
	size_t done = 0;

	if (ep < 0)
		bench_die("wakebench: epoll: %s", strerror(errno));
	for (size_t i = 0; i < n; i++) {
		struct epoll_event e = { .events = EPOLLIN, .data.u64 = i };

		if (epoll_ctl(ep, EPOLL_CTL_ADD, rs[i].fd, &e) < 0)
			bench_die("wakebench: epoll_ctl: %s", strerror(errno));
	}
	while (done < n) {
		int k = epoll_wait(ep, ev, 256, 1000);

		if (k < 0 && errno != EINTR)
			bench_die("wakebench: epoll_wait: %s", strerror(errno));
		if (bench_now() - t0 > BOUND_NS)
			bench_die("wakebench: %zu of %zu receivers woken after 60 s", done, n);
		for (int j = 0; j < k; j++) {
			struct receiver *r = &rs[ev[j].data.u64];

			if (r->woke == 0 && receiver_read(r, chand)) {
				r->woke = bench_now();
				lat_add(lat, r->woke - t0);
				epoll_ctl(ep, EPOLL_CTL_DEL, r->fd, NULL);
				done++;
			}
		}
	}
	close(ep);
}

static void
run(const struct opts *o)
{
	struct receiver *rs = calloc(o->conns, sizeof *rs);
	struct bench_lat lat;
	struct rconn ctl = { .fd = -1 };
	struct proto_reply r;
	int rctl = -1;
	uint64_t w0 = 0;
	long rss0, rss1;
	char *wake = NULL;
	size_t wake_len = 0;
	int64_t t0, t1;

	if (rs == NULL)
		bench_die("wakebench: out of memory");
	bench_raise_nofile(o->conns + 256);
	snprintf(g_key, sizeof g_key, "wake.%d", (int)getpid());
	if (o->redis) {
		if ((rctl = tcp_connect(o->port)) < 0)
			bench_die("wakebench: cannot connect to port %d", o->port);
	} else {
		rconn_open(&ctl, o->port);
		proto_req_make(&ctl.o, ctl.next_id++, g_key, strlen(g_key), 0);
		rconn_flush(&ctl);
		rconn_reply(&ctl, OP_MAKE, &r);
		if (r.status != STATUS_OK)
			bench_die("wakebench: MAKE failed (status %d)", r.status);
		w0 = rconn_stat(&ctl, "waiters");
	}
	rss0 = bench_vmrss_kb(o->pid);
	for (size_t i = 0; i < o->conns; i++) {
		rs[i].fd = o->redis ? redis_block(o->port) : rconn_blocked_receiver(o->port, g_key);
		rs[i].want = o->redis ? redis_reply_len() : 0;
	}
	if (o->redis)
		redis_await_blocked(rctl, (long)o->conns);
	else
		rconn_await_stat(&ctl, "waiters", w0 + o->conns);
	rss1 = bench_vmrss_kb(o->pid);
	for (size_t i = 0; i < o->conns; i++)
		fcntl(rs[i].fd, F_SETFL, fcntl(rs[i].fd, F_GETFL) | O_NONBLOCK);
	if (o->redis)
		wake = redis_wake_cmd(o->conns, &wake_len);
	else
		chand_queue_wake(&ctl, o->conns);
	lat_init(&lat, o->conns);
	t0 = bench_now();
	if (o->redis ? tcp_write_all(rctl, wake, wake_len) < 0 :
	    tcp_write_all(ctl.fd, proto_out_data(&ctl.o), proto_out_len(&ctl.o)) < 0)
		bench_die("wakebench: write failed");
	await_all(rs, o->conns, !o->redis, t0, &lat);
	t1 = bench_now();
	bench_result(o->tag, "bytes_per_receiver", (double)(rss1 - rss0) * 1024 / (double)o->conns);
	bench_result(o->tag, "wake_all_ms", (double)(t1 - t0) / 1e6);
	lat_report(&lat, o->tag, NULL);
	/* the SENDs' replies: every one OK, or a receiver got nothing it was sent */
	for (size_t i = 0; !o->redis && i < o->conns; i++) {
		rconn_reply(&ctl, OP_SEND, &r);
		if (r.status != STATUS_OK)
			bench_die("wakebench: SEND %zu failed (status %d)", i, r.status);
	}
	for (size_t i = 0; i < o->conns; i++)
		close(rs[i].fd);
	lat_free(&lat);
	free(rs);
	free(wake);
	if (o->redis)
		close(rctl);
	else
		rconn_close(&ctl);
}

int
main(int argc, char **argv)
{
	struct opts o = { .conns = 10000, .tag = "w8" };
	int ch;

	while ((ch = getopt(argc, argv, "s:p:P:c:k:")) != -1) {
		switch (ch) {
		case 's': o.redis = strcmp(optarg, "redis") == 0; break;
		case 'p': o.port = atoi(optarg); break;
		case 'P': o.pid = atoi(optarg); break;
		case 'c': o.conns = strtoul(optarg, NULL, 10); break;
		case 'k': o.tag = optarg; break;
		default: goto usage;
		}
	}
	if (o.port <= 0 || o.pid <= 0 || o.conns == 0)
		goto usage;
	run(&o);
	return 0;
usage:
	fprintf(stderr, "usage: wakebench -s chand|redis -p PORT -P PID -c N [-k TAG]\n");
	return 2;
}
