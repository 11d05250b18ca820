/*
 * bench.h: what the load generators of tests/bench/ share (chanbench,
 * redis_bench, relay): a clock, latency samples with percentiles, the
 * RESULT lines run.sh collects, TCP helpers, and a closed-loop driver of
 * many non-blocking connections on one epoll thread (mconn).
 *
 * Output contract: every figure is one line on stdout,
 *	RESULT <workload> <metric> <value>
 * e.g. "RESULT w2 p50_us 41.2"; everything else goes to stderr.
 * Nothing here depends on chand: redis_bench and relay build without the tree.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef CHAND_BENCH_H
#define CHAND_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* CLOCK_MONOTONIC in ns. */
int64_t bench_now(void);
/* Print "RESULT w metric value" on stdout (flushed). */
void bench_result(const char *w, const char *metric, double value);
/* Print an error and exit 1: load generators have no recovery. */
void bench_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* Wait up to timeout_ms for child pid: its exit status, or -1 (then it is SIGKILLed). */
int bench_wait_child(int pid, int timeout_ms);
/* Raise RLIMIT_NOFILE to at least want (soft and, as root, hard). */
void bench_raise_nofile(unsigned long want);
/* VmRSS of pid in KiB, from /proc/PID/status. Dies when unreadable. */
long bench_vmrss_kb(int pid);

/* ---- latency samples ------------------------------------------------------------ */

struct bench_lat {
	int64_t *ns;
	size_t n, cap;
};

/* cap samples at most; later ones are dropped (counted by nothing). */
void lat_init(struct bench_lat *l, size_t cap);
void lat_free(struct bench_lat *l);
static inline void
lat_add(struct bench_lat *l, int64_t ns)
{
	if (l->n < l->cap)
		l->ns[l->n++] = ns;
}
/* Append every sample of src to dst (dst grows as needed). */
void lat_merge(struct bench_lat *dst, const struct bench_lat *src);
/* Sort, then print RESULT w p50_us / p99_us / mean_us (and write the samples, in µs, to path if set). */
void lat_report(struct bench_lat *l, const char *w, const char *samples_path);
/* The q-quantile (0..1) in µs of sorted samples. */
double lat_quantile_us(const struct bench_lat *l, double q);

/* ---- TCP ------------------------------------------------------------------------ */

/* A blocking TCP connection to 127.0.0.1:port with TCP_NODELAY, or -1. */
int tcp_connect(int port);
/* Write all of buf (blocking fd), 0 or -1. */
int tcp_write_all(int fd, const void *buf, size_t len);
/* Read exactly len bytes (blocking fd), 0 or -1 (EOF too). */
int tcp_read_full(int fd, void *buf, size_t len);
/* A listening socket on 127.0.0.1:port (0 = any; *bound gets the port), or -1. */
int tcp_listen(int port, int *bound);

/* ---- many connections on one thread (workload 4) ---------------------------------- */

/*
 * The protocol-specific half of the driver. Connection i does pairs of
 * steps 0 (a send) and 1 (a receive) in a closed loop. With `pipelined`
 * both requests of a pair go out in one write and the pair is done when
 * both replies are in, as a client of an asynchronous API submits a send
 * and a receive and waits for both; without, one request is in flight at a
 * time, like a client calling a synchronous API.
 */
struct mconn_proto {
	void *arg;
	bool pipelined;
	/* Connect and prepare connection i (blocking), return its fd or -1. */
	int (*open)(void *arg, size_t i);
	/*
	 * Append the request of step (0 send, 1 receive) of connection i to
	 * buf; its length. `pipelined`: the receive follows in the same write.
	 */
	size_t (*request)(void *arg, size_t i, unsigned step, bool pipelined, uint8_t *buf,
	    size_t cap);
	/*
	 * Bytes in[0..len) arrived on connection i: return 1 when a whole
	 * reply is there (and OK), 0 to wait for more, -1 on an error; *used
	 * (0 on entry) is what the driver drops from in: the reply's bytes,
	 * or what a protocol that buffers by itself has taken.
	 */
	int (*reply)(void *arg, size_t i, const uint8_t *in, size_t len, size_t *used);
};

struct mconn_stats {
	uint64_t ops;			/* completed requests (two a pair) */
	double seconds;			/* from the first request to the last reply */
	struct bench_lat lat;		/* per request (pipelined: from the pair's write), ns */
};

/*
 * Open nconns connections through p->open, then drive them for `seconds`
 * (issuing no new request after that, and waiting at most 10 s more for
 * the replies in flight). Returns 0 or -1.
 */
int mconn_run(const struct mconn_proto *p, size_t nconns, double seconds, struct mconn_stats *out);

#endif
