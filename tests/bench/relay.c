/*
 * relay: the physical floor of workload 2 on this machine. A minimal TCP
 * relay with no broker logic does the same hops as a broker ping-pong
 * (pinger -> relay -> echo -> relay -> pinger) on one thread, as chand's
 * event loop does.
 *
 *	relay serve -p PORT [-S US]
 *	                        relay pairs of connections (each says a one-byte
 *	                        hello first; the pair's bytes go both ways)
 *	                        until SIGTERM. -S: poll without blocking for up to
 *	                        US microseconds after the last bytes before it
 *	                        sleeps, as chand's loop does (busy_poll_us), so
 *	                        that the floor pays the same wake-ups as chand
 *	relay ping -p PORT [-r] [-n N] [-s SIZE] [-o SAMPLES] [-k TAG]
 *	                        two processes bounce SIZE bytes N times (plus
 *	                        N/10 warm-up) through the relay; prints
 *	                        RESULT TAG p50_us/p99_us/mean_us of a round trip
 *	                        -r: the floor of workload 2 with a blocking call
 *	                        each (chanbench -m plain, -m ops): the same four requests and
 *	                        four replies a round trip, matched by the relay as
 *	                        an unbuffered channel's rendezvous would be (below)
 *	relay port              print a free TCP port of 127.0.0.1 (run.sh's
 *	                        helper: servers without "-p 0" need one)
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <getopt.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench.h"

/* -h: to stdout, 0; a bad command line: to stderr, 2. */
static int
usage(int code)
{
	fprintf(code ? stderr : stdout, "usage: relay serve -p PORT [-S US] | relay ping -p PORT [-r] [-n N] [-s SIZE] "
	    "[-o FILE] [-k TAG] | relay port\n");
	return code;
}

static int64_t g_spin_ns;		/* serve -S */

/* poll(2) for ever, but first without blocking while the last bytes came less than -S ago. */
static int
relay_poll(struct pollfd *p, nfds_t n, int64_t *last)
{
	int r;

	while (bench_now() - *last < g_spin_ns)
		if ((r = poll(p, n, 0)) != 0)
			goto out;
	r = poll(p, n, -1);
out:
	*last = bench_now();
	return r;
}

/* Move what fd `from` has to `to`; -1 when either side is done. */
static int
forward(int from, int to)
{
	char buf[65536];
	ssize_t n = recv(from, buf, sizeof buf, 0);

	if (n <= 0)
		return -1;
	return tcp_write_all(to, buf, (size_t)n);
}

/*
 * The rendezvous relay (hello 'P' and 'E'): each side sends requests, SEND
 * ('S', a 4-byte length, the value) or RECV ('R'), and gets a reply to
 * each: 'K' to a SEND once the other side's RECV took its value, 'V' (a
 * 4-byte length, the value) to a RECV. A request waits until the other
 * side's matching one comes, as on an unbuffered channel; at the match the
 * reply to the request just read goes out first, as chand writes it.
 * Messages are parsed where they lie in one read, one write a reply.
 */
struct rdv_side {
	int fd;
	uint8_t in[65536 + 8], val[65536 + 5];
	size_t have, vlen;		/* bytes in in[]; a waiting SEND's reply in val[] */
	char waits;			/* 0, 'S' or 'R': the request that waits */
};

/* x's request op matched y's waiting one: answer x's first, then y's. */
static int
rdv_match(struct rdv_side *x, struct rdv_side *y, char op)
{
	static const uint8_t ok = 'K';
	const struct rdv_side *snd = op == 'S' ? x : y;
	const void *to_x = op == 'S' ? &ok : snd->val, *to_y = op == 'S' ? snd->val : &ok;
	size_t x_len = op == 'S' ? 1 : snd->vlen, y_len = op == 'S' ? snd->vlen : 1;

	return tcp_write_all(x->fd, to_x, x_len) < 0 || tcp_write_all(y->fd, to_y, y_len) < 0 ? -1 : 0;
}

/* Read what x sent and serve its whole requests; -1 when either side is done or breaks the rules. */
static int
rdv_serve(struct rdv_side *x, struct rdv_side *y)
{
	ssize_t n = recv(x->fd, x->in + x->have, sizeof x->in - x->have, 0);
	size_t off = 0;

	if (n <= 0)
		return -1;
	x->have += (size_t)n;
	while (off < x->have) {
		uint8_t *m = x->in + off;
		uint32_t len = 0;
		size_t need = 1;

		if (m[0] == 'S') {
			if (x->have - off < 5)
				break;
			memcpy(&len, m + 1, 4);
			if (len > 65536)
				return -1;
			need = 5 + len;
		} else if (m[0] != 'R') {
			return -1;
		}
		if (x->have - off < need)
			break;
		if (x->waits != 0)
			return -1;		/* one request at a time, as a blocking call */
		if (m[0] == 'S') {
			x->val[0] = 'V';
			memcpy(x->val + 1, m + 1, 4 + len);
			x->vlen = need;
		}
		if (y->waits != 0 && y->waits != (char)m[0]) {
			y->waits = 0;
			if (rdv_match(x, y, (char)m[0]) < 0)
				return -1;
		} else {
			x->waits = (char)m[0];
		}
		off += need;
	}
	memmove(x->in, x->in + off, x->have - off);
	x->have -= off;
	return 0;
}

static void
relay_rdv_pair(int a, int b)
{
	static struct rdv_side side[2];
	struct pollfd p[2] = { { .fd = a, .events = POLLIN }, { .fd = b, .events = POLLIN } };

	int64_t last = bench_now();

	memset(side, 0, sizeof side);
	side[0].fd = a, side[1].fd = b;
	for (;;) {
		if (relay_poll(p, 2, &last) < 0)
			return;
		if ((p[0].revents && rdv_serve(&side[0], &side[1]) < 0) ||
		    (p[1].revents && rdv_serve(&side[1], &side[0]) < 0))
			return;
	}
}

/* Relay one pair until either end closes. */
static void
relay_pair(int a, int b)
{
	struct pollfd p[2] = { { .fd = a, .events = POLLIN }, { .fd = b, .events = POLLIN } };
	int64_t last = bench_now();

	for (;;) {
		if (relay_poll(p, 2, &last) < 0)
			return;
		if ((p[0].revents && forward(a, b) < 0) || (p[1].revents && forward(b, a) < 0))
			return;
	}
}

/*
 * The next connection that says hello (one byte: 'p' pinger, 'e' echo;
 * 'P' and 'E' for the rendezvous relay, then *rdv is set): probes that
 * connect and close (run.sh's wait for the port) are skipped.
 */
static int
accept_peer(int lfd, bool *rdv)
{
	for (;;) {
		int fd = accept(lfd, NULL, NULL);
		struct pollfd p = { .fd = fd, .events = POLLIN };
		char hello;

		if (fd < 0)
			bench_die("relay: accept failed");
		if (poll(&p, 1, 10000) == 1 && recv(fd, &hello, 1, 0) == 1) {
			*rdv = hello == 'P' || hello == 'E';
			return fd;
		}
		close(fd);
	}
}

static int
serve(int port)
{
	int lfd = tcp_listen(port, NULL);

	if (lfd < 0)
		bench_die("relay: cannot listen on port %d", port);
	for (;;) {
		bool rdv;
		int a = accept_peer(lfd, &rdv), b = accept_peer(lfd, &rdv);

		if (rdv)
			relay_rdv_pair(a, b);
		else
			relay_pair(a, b);
		close(a);
		close(b);
	}
}

/* Connect to the relay and say hello as role. */
static int
join(int port, char role)
{
	int fd = tcp_connect(port);

	if (fd < 0 || tcp_write_all(fd, &role, 1) < 0)
		return -1;
	return fd;
}

/* A blocking SEND of the rendezvous relay: the request, then its 'K'. */
static int
rdv_send(int fd, const char *buf, size_t size)
{
	uint8_t m[65536 + 5], k;
	uint32_t len = (uint32_t)size;

	m[0] = 'S';
	memcpy(m + 1, &len, 4);
	memcpy(m + 5, buf, size);
	return tcp_write_all(fd, m, size + 5) < 0 || tcp_read_full(fd, &k, 1) < 0 || k != 'K' ? -1 : 0;
}

/* A blocking RECV of the rendezvous relay: the request, then the value. */
static int
rdv_recv(int fd, char *buf, size_t size)
{
	uint8_t m[65536 + 5], r = 'R';
	uint32_t len;

	if (tcp_write_all(fd, &r, 1) < 0 || tcp_read_full(fd, m, size + 5) < 0 || m[0] != 'V')
		return -1;
	memcpy(&len, m + 1, 4);
	if (len != size)
		return -1;
	memcpy(buf, m + 5, size);
	return 0;
}

/* One leg of a round trip: send buf (SIZE bytes), or receive into it. */
static int
leg(int fd, char *buf, size_t size, bool rdv, bool out)
{
	if (rdv)
		return out ? rdv_send(fd, buf, size) : rdv_recv(fd, buf, size);
	return out ? tcp_write_all(fd, buf, size) : tcp_read_full(fd, buf, size);
}

/* The echo process: send back every SIZE-byte message. */
static void
echo(int port, size_t iters, size_t size, bool rdv)
{
	char buf[65536];
	int fd = join(port, rdv ? 'E' : 'e');

	if (fd < 0)
		_exit(1);
	for (size_t i = 0; i < iters; i++)
		if (leg(fd, buf, size, rdv, false) < 0 || leg(fd, buf, size, rdv, true) < 0)
			_exit(1);
	close(fd);
	_exit(0);
}

static int
ping(int port, size_t n, size_t size, bool rdv, const char *samples, const char *tag)
{
	char buf[65536] = { 0 };
	size_t warm = n / 10;
	struct bench_lat lat;
	int fd = join(port, rdv ? 'P' : 'p');
	pid_t child;

	if (fd < 0)
		bench_die("relay: cannot connect to %d", port);
	if ((child = fork()) == 0)
		echo(port, n + warm, size, rdv);
	lat_init(&lat, n);
	for (size_t i = 0; i < n + warm; i++) {
		int64_t t0 = bench_now();

		if (leg(fd, buf, size, rdv, true) < 0 || leg(fd, buf, size, rdv, false) < 0)
			bench_die("relay: ping failed");
		if (i >= warm)
			lat_add(&lat, bench_now() - t0);
	}
	close(fd);
	if (bench_wait_child(child, 10000) != 0)
		bench_die("relay: the echo process failed");
	lat_report(&lat, tag, samples);
	lat_free(&lat);
	return 0;
}

static int
free_port(void)
{
	int port, fd = tcp_listen(0, &port);

	if (fd < 0)
		return 1;
	close(fd);
	printf("%d\n", port);
	return 0;
}

int
main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "", *samples = NULL, *tag = "w2";
	size_t n = 20000, size = 64;
	int port = 0, ch;
	bool rdv = false;

	if (strcmp(mode, "-h") == 0)
		return usage(0);
	optind = 2;
	while ((ch = getopt(argc, argv, "p:rn:s:o:k:S:")) != -1) {
		switch (ch) {
		case 'p': port = atoi(optarg); break;
		case 'r': rdv = true; break;
		case 'n': n = strtoul(optarg, NULL, 10); break;
		case 's': size = strtoul(optarg, NULL, 10); break;
		case 'o': samples = optarg; break;
		case 'k': tag = optarg; break;
		case 'S': g_spin_ns = (int64_t)strtoul(optarg, NULL, 10) * 1000; break;
		default: return usage(2);
		}
	}
	if (size == 0 || size > 65536)
		return usage(2);
	if (strcmp(mode, "port") == 0)
		return free_port();
	if (port <= 0)
		return usage(2);
	if (strcmp(mode, "serve") == 0)
		return serve(port);
	if (strcmp(mode, "ping") == 0)
		return ping(port, n, size, rdv, samples, tag);
	return usage(2);
}
