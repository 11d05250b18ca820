/*
 * bench.c: the shared helpers of bench.h.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

int64_t
bench_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void
bench_result(const char *w, const char *metric, double value)
{
	printf("RESULT %s %s %.6g\n", w, metric, value);
	fflush(stdout);
}

void
bench_die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

int
bench_wait_child(int pid, int timeout_ms)
{
	struct pollfd pfd = { .events = POLLIN };
	int status;

	/* a pidfd becomes readable when the child exits: a bounded wait */
	pfd.fd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pfd.fd < 0 || poll(&pfd, 1, timeout_ms) != 1) {
		if (pfd.fd >= 0)
			close(pfd.fd);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return -1;
	}
	close(pfd.fd);
	waitpid(pid, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

void
bench_raise_nofile(unsigned long want)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= want)
		return;
	if (rl.rlim_max < want)
		rl.rlim_max = want;		/* works as root */
	rl.rlim_cur = want;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		bench_die("setrlimit(RLIMIT_NOFILE, %lu): %s", want, strerror(errno));
}

/* ---- latency samples ------------------------------------------------------------ */

void
lat_init(struct bench_lat *l, size_t cap)
{
	l->n = 0;
	l->cap = cap;
	l->ns = malloc(cap * sizeof *l->ns);
	if (l->ns == NULL)
		bench_die("out of memory (%zu samples)", cap);
}

void
lat_free(struct bench_lat *l)
{
	free(l->ns);
	l->ns = NULL;
	l->n = l->cap = 0;
}

void
lat_merge(struct bench_lat *dst, const struct bench_lat *src)
{
	if (dst->n + src->n > dst->cap) {
		dst->cap = dst->n + src->n;
		dst->ns = realloc(dst->ns, dst->cap * sizeof *dst->ns);
		if (dst->ns == NULL)
			bench_die("out of memory (merge)");
	}
	memcpy(dst->ns + dst->n, src->ns, src->n * sizeof *src->ns);
	dst->n += src->n;
}

static int
cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

double
lat_quantile_us(const struct bench_lat *l, double q)
{
	size_t k;

	if (l->n == 0)
		return 0;
	k = (size_t)(q * (double)(l->n - 1) + 0.5);
	return (double)l->ns[k] / 1e3;
}

/* Write every sample in µs, one a line (the plot's input). */
static void
lat_write(const struct bench_lat *l, const char *path)
{
	FILE *f = fopen(path, "w");

	if (f == NULL) {
		perror(path);
		return;
	}
	for (size_t i = 0; i < l->n; i++)
		fprintf(f, "%.3f\n", (double)l->ns[i] / 1e3);
	fclose(f);
}

void
lat_report(struct bench_lat *l, const char *w, const char *samples_path)
{
	double sum = 0;

	qsort(l->ns, l->n, sizeof *l->ns, cmp_i64);
	for (size_t i = 0; i < l->n; i++)
		sum += (double)l->ns[i];
	bench_result(w, "p50_us", lat_quantile_us(l, 0.50));
	bench_result(w, "p99_us", lat_quantile_us(l, 0.99));
	bench_result(w, "mean_us", l->n ? sum / (double)l->n / 1e3 : 0);
	if (samples_path != NULL)
		lat_write(l, samples_path);
}

/* ---- TCP ------------------------------------------------------------------------ */

static struct sockaddr_in
loopback(int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return sa;
}

int
tcp_connect(int port)
{
	struct sockaddr_in sa = loopback(port);
	struct timeval tv = { .tv_sec = 60 };	/* blocking reads are bounded */
	int one = 1;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		close(fd);
		return -1;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	return fd;
}

int
tcp_listen(int port, int *bound)
{
	struct sockaddr_in sa = loopback(port);
	socklen_t len = sizeof sa;
	int one = 1;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 1024) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) < 0) {
		close(fd);
		return -1;
	}
	if (bound != NULL)
		*bound = ntohs(sa.sin_port);
	return fd;
}

int
tcp_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int
tcp_read_full(int fd, void *buf, size_t len)
{
	char *p = buf;

	while (len > 0) {
		ssize_t n = recv(fd, p, len, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* ---- many connections on one thread ------------------------------------------------ */

#define MC_OUT 4096
#define MC_IN 4096

struct mc {
	int fd;
	unsigned step;			/* of the next reply: 0 send, 1 receive */
	unsigned pending;		/* replies awaited */
	int64_t t0;
	size_t ilen;
	uint8_t in[MC_IN];
};

struct mc_loop {
	const struct mconn_proto *p;
	struct mc *c;
	size_t n, active;
	int ep;
	int64_t stop_at;
	struct mconn_stats *st;
};

/* Send connection i's next request, or pair (whole: a few KiB always fit the socket buffer). */
static int
mc_issue(struct mc_loop *L, size_t i)
{
	uint8_t out[MC_OUT];
	struct mc *c = &L->c[i];
	bool pipelined = L->p->pipelined;
	size_t len = L->p->request(L->p->arg, i, c->step, pipelined, out, sizeof out);

	if (pipelined)
		len += L->p->request(L->p->arg, i, 1, pipelined, out + len, sizeof out - len);
	c->t0 = bench_now();
	c->pending = pipelined ? 2 : 1;
	if (send(c->fd, out, len, MSG_NOSIGNAL) != (ssize_t)len) {
		fprintf(stderr, "mconn: short send on connection %zu\n", i);
		return -1;
	}
	return 0;
}

/* One reply finished on connection i: count it and go on (or retire the connection). */
static int
mc_done(struct mc_loop *L, size_t i)
{
	struct mc *c = &L->c[i];
	int64_t now = bench_now();

	lat_add(&L->st->lat, now - c->t0);
	L->st->ops++;
	c->step ^= 1;
	if (--c->pending > 0)
		return 0;
	if (now < L->stop_at || c->step == 1)	/* a pair is never left half done */
		return mc_issue(L, i);
	L->active--;
	return 0;
}

/* Read what connection i has and consume every whole reply. */
static int
mc_readable(struct mc_loop *L, size_t i)
{
	struct mc *c = &L->c[i];
	ssize_t got = recv(c->fd, c->in + c->ilen, MC_IN - c->ilen, 0);

	if (got <= 0)
		return got < 0 && errno == EAGAIN ? 0 : -1;
	c->ilen += (size_t)got;
	while (c->pending > 0) {
		size_t used = 0;
		int rc = L->p->reply(L->p->arg, i, c->in, c->ilen, &used);

		if (rc < 0)
			return -1;
		memmove(c->in, c->in + used, c->ilen - used);
		c->ilen -= used;
		if (rc == 0)
			break;
		if (mc_done(L, i) < 0)
			return -1;
	}
	return 0;
}

static int
mc_open_all(struct mc_loop *L)
{
	for (size_t i = 0; i < L->n; i++) {
		struct epoll_event ev = { .events = EPOLLIN, .data.u64 = i };
		int fd = L->p->open(L->p->arg, i);

		if (fd < 0) {
			fprintf(stderr, "mconn: cannot open connection %zu\n", i);
			return -1;
		}
		L->c[i].fd = fd;
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
		if (epoll_ctl(L->ep, EPOLL_CTL_ADD, fd, &ev) < 0)
			return -1;
	}
	return 0;
}

static int
mc_loop(struct mc_loop *L, int64_t give_up)
{
	struct epoll_event ev[256];

	while (L->active > 0 && bench_now() < give_up) {
		int n = epoll_wait(L->ep, ev, 256, 100);

		if (n < 0 && errno != EINTR)
			return -1;
		for (int k = 0; k < n; k++)
			if (mc_readable(L, (size_t)ev[k].data.u64) < 0) {
				fprintf(stderr, "mconn: connection %llu failed\n",
				    (unsigned long long)ev[k].data.u64);
				return -1;
			}
	}
	return L->active == 0 ? 0 : -1;
}

int
mconn_run(const struct mconn_proto *p, size_t nconns, double seconds, struct mconn_stats *out)
{
	struct mc_loop L = { .p = p, .n = nconns, .st = out };
	int64_t t0;
	int rc = -1;

	memset(out, 0, sizeof *out);
	lat_init(&out->lat, 8u << 20);
	L.c = calloc(nconns, sizeof *L.c);
	L.ep = epoll_create1(EPOLL_CLOEXEC);
	if (L.c == NULL || L.ep < 0 || mc_open_all(&L) < 0)
		goto out;
	t0 = bench_now();
	L.stop_at = t0 + (int64_t)(seconds * 1e9);
	for (size_t i = 0; i < nconns; i++, L.active++)
		if (mc_issue(&L, i) < 0)
			goto out;
	rc = mc_loop(&L, L.stop_at + 10 * 1000000000LL);
	out->seconds = (double)(bench_now() - t0) / 1e9;
out:
	for (size_t i = 0; L.c != NULL && i < nconns; i++)
		if (L.c[i].fd > 0)
			close(L.c[i].fd);
	free(L.c);
	if (L.ep >= 0)
		close(L.ep);
	return rc;
}

long
bench_vmrss_kb(int pid)
{
	char path[64], line[256];
	long kb = -1;
	FILE *f;

	snprintf(path, sizeof path, "/proc/%d/status", pid);
	if ((f = fopen(path, "r")) == NULL)
		bench_die("%s: %s", path, strerror(errno));
	while (kb < 0 && fgets(line, sizeof line, f) != NULL)
		if (sscanf(line, "VmRSS: %ld kB", &kb) != 1)
			kb = -1;
	fclose(f);
	return kb;
}
