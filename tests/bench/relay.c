/*
 * relay: the physical floor of workload 2 on this machine. A minimal TCP
 * relay with no broker logic does the same hops as a broker ping-pong
 * (pinger -> relay -> echo -> relay -> pinger) on one thread, as chand's
 * event loop does.
 *
 *	relay serve -p PORT     relay pairs of connections (each says a one-byte
 *	                        hello first; the pair's bytes go both ways)
 *	                        until SIGTERM
 *	relay ping -p PORT [-n N] [-s SIZE] [-o SAMPLES] [-k TAG]
 *	                        two processes bounce SIZE bytes N times (plus
 *	                        N/10 warm-up) through the relay; prints
 *	                        RESULT TAG p50_us/p99_us/mean_us of a round trip
 *	relay port              print a free TCP port of 127.0.0.1 (run.sh's
 *	                        helper: servers without "-p 0" need one)
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench.h"

static int
usage(void)
{
	fprintf(stderr, "usage: relay serve -p PORT | relay ping -p PORT [-n N] [-s SIZE] "
	    "[-o FILE] [-k TAG] | relay port\n");
	return 2;
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

/* Relay one pair until either end closes. */
static void
relay_pair(int a, int b)
{
	struct pollfd p[2] = { { .fd = a, .events = POLLIN }, { .fd = b, .events = POLLIN } };

	for (;;) {
		if (poll(p, 2, -1) < 0)
			return;
		if ((p[0].revents && forward(a, b) < 0) || (p[1].revents && forward(b, a) < 0))
			return;
	}
}

/*
 * The next connection that says hello (one byte: 'p' pinger, 'e' echo):
 * probes that connect and close (run.sh's wait for the port) are skipped.
 */
static int
accept_peer(int lfd)
{
	for (;;) {
		int fd = accept(lfd, NULL, NULL);
		struct pollfd p = { .fd = fd, .events = POLLIN };
		char hello;

		if (fd < 0)
			bench_die("relay: accept failed");
		if (poll(&p, 1, 10000) == 1 && recv(fd, &hello, 1, 0) == 1)
			return fd;
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
		int a = accept_peer(lfd), b = accept_peer(lfd);

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

/* The echo process: send back every SIZE-byte message. */
static void
echo(int port, size_t iters, size_t size)
{
	char buf[65536];
	int fd = join(port, 'e');

	if (fd < 0)
		_exit(1);
	for (size_t i = 0; i < iters; i++)
		if (tcp_read_full(fd, buf, size) < 0 || tcp_write_all(fd, buf, size) < 0)
			_exit(1);
	close(fd);
	_exit(0);
}

static int
ping(int port, size_t n, size_t size, const char *samples, const char *tag)
{
	char buf[65536] = { 0 };
	size_t warm = n / 10;
	struct bench_lat lat;
	int fd = join(port, 'p');
	pid_t child;

	if (fd < 0)
		bench_die("relay: cannot connect to %d", port);
	if ((child = fork()) == 0)
		echo(port, n + warm, size);
	lat_init(&lat, n);
	for (size_t i = 0; i < n + warm; i++) {
		int64_t t0 = bench_now();

		if (tcp_write_all(fd, buf, size) < 0 || tcp_read_full(fd, buf, size) < 0)
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

	optind = 2;
	while ((ch = getopt(argc, argv, "p:n:s:o:k:")) != -1) {
		switch (ch) {
		case 'p': port = atoi(optarg); break;
		case 'n': n = strtoul(optarg, NULL, 10); break;
		case 's': size = strtoul(optarg, NULL, 10); break;
		case 'o': samples = optarg; break;
		case 'k': tag = optarg; break;
		default: return usage();
		}
	}
	if (size == 0 || size > 65536)
		return usage();
	if (strcmp(mode, "port") == 0)
		return free_port();
	if (port <= 0)
		return usage();
	if (strcmp(mode, "serve") == 0)
		return serve(port);
	if (strcmp(mode, "ping") == 0)
		return ping(port, n, size, samples, tag);
	return usage();
}
