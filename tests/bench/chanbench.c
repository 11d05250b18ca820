/*
 * chanbench: the load generator of issue 8, on libchanclient.
 *
 *	chanbench -p PORT [options] WORKLOAD
 *	chanbench -A ADDRESS [options] WORKLOAD
 *
 * WORKLOAD (figures are "RESULT <tag> <metric> <value>" lines on stdout):
 *   throughput  (1) one producer and one consumer connection on a channel of
 *               cap 1024; one thread on each keeps -t requests in flight:
 *               the producer with the asynchronous API (chan_send_async,
 *               chan_op_wait), the consumer with a stream of credit -t
 *               (-m ops: asynchronous receives too). -n values of -s bytes.
 *               Metric msgs_s; -l: also p50_us, p99_us of each send,
 *               from its submission to its reply.
 *   pingpong    (2) two processes, each with its own connection, bounce a
 *               value over two unbuffered channels; -n round trips (after
 *               n/10 warm-up ones). p50_us, p99_us, mean_us of a round trip.
 *               Each side pipelines its receive with its send (asynchronous
 *               operations, deferred replies); -m ops: a blocking call each;
 *               -m plain: a blocking call each with no context (NULL, as
 *               Go's plain `ch <- v`: no deadline, nothing can cancel it).
 *   select      (3) as pingpong, but the echo process receives with a
 *               select over -C channels (default 1000) and the pinger
 *               sends on a random one of them (-K I: on channel I
 *               only): a streaming select of credit 1 (-m ops: a SELECT
 *               request per ping).
 *   many        (4) -c connections (default 1000), each sending to and
 *               receiving from its own channel (cap 1), for -d seconds:
 *               the send (deferred) and the receive in one write, the next
 *               pair when both replies are in (-m ops: one request in
 *               flight per connection). ops_s (a pair is two), ops (the
 *               count, for a server's CPU per operation) and the
 *               latency of each request. Raw protocol on one epoll thread,
 *               the same driver as the Redis peer's, so that both measure
 *               the server: a libchanclient thread waits on one
 *               connection at a time.
 *   memory      (5) against the chand of pid -P (alone on its port): RSS
 *               per idle channel (-C channels, default 1,000,000, cap 0,
 *               pipelined MAKE) and per blocked receiver with its
 *               connection (-R connections, default 10,000, each with one
 *               RECV pending on a shared unbuffered channel).
 *   fanout      (6) a FAN_OUT job (stage sha256) with 1, 2, 2, then 1
 *               worker: -n values of -s bytes (default 4096) in, digests
 *               out, -t requests in flight per connection. jobs_s_1w and
 *               jobs_s_2w (over both runs of each), speedup.
 *   fill        (9) -n values (default 1,000,000) of -s bytes round-robin
 *               into -C durable channels (default 1,000), -t sends in
 *               flight, left there for a restart of chand to replay
 *               (run.sh times it). fill_msgs_s.
 *
 * Options: -n count, -t requests in flight, -s value size, -c connections, -d seconds,
 * -a (throughput: an ack channel, each value received with chan_stream_recv_msg
 * and acked with chan_ack, PROTOCOL.md §16), -w depth (throughput: the
 * producer's requests in flight, default -t; workload 7 uses 256), -D
 * (throughput: a durable channel, PROTOCOL.md §16; workload 9),
 * -C channels, -R receivers, -P pid, -o file (latency samples in µs, one a
 * line), -k tag (the <tag> of RESULT lines; default w1..w6), -A address
 * (dial it instead of tcp://127.0.0.1:PORT: a cluster://, or one node of
 * a cluster), -T cafile (the CA of a tls:// or cluster+tls:// server's
 * certificate), -N stem (throughput and pingpong: name the channels with it,
 * tp.STEM, pp.STEM.ping.0 and pp.STEM.pong, instead of the pid, so that a
 * caller can place them on a node of a cluster beforehand), -E address
 * (pingpong and select: the echo dials it instead: workload 11's select
 * coordinated by one node while the pinger's sends go to each owner).
 * Every blocking call runs under a context of at most 300 s.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "chanclient.h"
#include "rawchan.h"

#define CALL_BUDGET (300 * CHAN_SEC)

struct opts {
	int port;
	size_t n, threads, size, conns, channels, receivers;
	double seconds;
	bool latency;			/* -l: throughput also times each send */
	pid_t pid;
	const char *samples, *tag, *workload;
};

static chan_ctx_t *g_ctx;		/* the budget of every call */
static char g_addr[256];
static char g_echo_addr[256];		/* -E: the echo process dials this instead (workload 11) */
static chan_dial_opts_t g_dial_opts;	/* -T: tls_ca */
static const char *g_stem;		/* -N: the channels' names (NULL: the pid) */
static bool g_stream = true;		/* -m: receive with streams, or with single operations */
static bool g_plain;			/* -m plain: ping-pong's blocking calls take no context */
static bool g_ack;			/* -a: throughput on an ack channel */
static bool g_durable;			/* -D: throughput on a durable channel (chand needs a data_dir) */
static size_t g_send_depth;		/* -w: the producer's requests in flight (0: -t) */
static long g_ping_only = -1;		/* -K: select's pinger pings this channel only (-1: any) */

/* -h: to stdout, exit 0; a bad command line: to stderr, exit 2. */
static void
usage(int code)
{
	fprintf(code ? stderr : stdout, "usage: chanbench -p PORT|-A ADDRESS [-T CAFILE] [-E ADDRESS] [-N STEM] [-n N] [-t T] [-s SIZE] [-c CONNS] [-d SEC]\n"
	    "       [-C CHANNELS] [-R RECEIVERS] [-P PID] [-o SAMPLES] [-k TAG] [-m stream|ops|plain] [-a] [-D] [-w DEPTH]\n"
	    "       [-K INDEX]\n"
	    "       [-l] throughput|pingpong|select|many|memory|fanout|fill\n"
	    "(the workloads and options: the comment at the top of tests/bench/chanbench.c)\n");
	exit(code);
}

static void
check(int rc, const char *what)
{
	if (rc != CHAN_OK)
		bench_die("chanbench: %s: %s", what, chan_strerror(rc));
}

static chan_conn_t *
dial(void)
{
	chan_conn_t *c;

	check(chan_dial(g_ctx, g_addr, &g_dial_opts, &c), "dial");
	return c;
}

static chan_t *
make(chan_conn_t *c, const char *name, size_t cap)
{
	chan_t *ch;

	check(chan_make(g_ctx, c, name, cap, &ch), name);
	return ch;
}

/* Delete a benchmark channel and free its handle. */
static void
drop(chan_t *ch)
{
	check(chan_delete(g_ctx, ch, NULL), "delete");
	chan_free(ch);
}

/* ---- (1) and (6): pipelined producer and consumer ------------------------------------ */

struct pump {
	chan_t *ch;
	size_t n, size, depth;
	bool recv, stream;
	size_t expect_len;		/* receivers: 0 = any */
	struct bench_lat *lat;		/* each operation's time from submit to completion, or NULL */
};

static void
pump_submit(struct pump *p, uint8_t *buf, size_t i, chan_op_t **op)
{
	if (p->recv) {
		check(chan_recv_async(g_ctx, p->ch, op), "recv");
		return;
	}
	buf[0] = (uint8_t)i;
	check(chan_send_async(g_ctx, p->ch, buf, p->size, op), "send");
}

static void
pump_complete(struct pump *p, chan_op_t *op)
{
	chan_value_t v;
	bool ok;

	check(chan_op_wait(op, &v, &ok), p->recv ? "recv" : "send");
	if (p->recv && (!ok || v.kind != CHAN_VALUE_BYTES || (p->expect_len && v.len != p->expect_len)))
		bench_die("chanbench: unexpected value (ok %d, len %zu)", ok, v.len);
	chan_value_clear(&v);
}

/* p->n receives from a stream of credit p->depth. */
static void
pump_stream(struct pump *p)
{
	chan_stream_t *s;

	check(chan_stream_open(g_ctx, &p->ch, 1, p->depth, &s), "stream");
	for (size_t i = 0; i < p->n; i++) {
		chan_msg_t m = { 0 };
		const chan_value_t *v = &m.value;
		bool ok;

		if (g_ack) {	/* the value with its tag, acked as a consumer would once done with it */
			check(chan_stream_recv_msg(s, &m, &ok, NULL), "stream recv");
			check(chan_ack(p->ch, &m), "ack");
		} else {
			check(chan_stream_recv(s, &m.value, &ok, NULL), "stream recv");
		}
		if (!ok || v->kind != CHAN_VALUE_BYTES || (p->expect_len && v->len != p->expect_len))
			bench_die("chanbench: unexpected value (ok %d, len %zu)", ok, v->len);
		chan_msg_clear(&m);
	}
	chan_stream_free(s);
}

/* p->n operations, p->depth of them in flight (asynchronous API), completed in order. */
static void
pump_ops(struct pump *p)
{
	chan_op_t **ring = calloc(p->depth, sizeof *ring);
	int64_t *start = calloc(p->depth, sizeof *start);
	uint8_t *buf = calloc(1, p->size ? p->size : 1);
	size_t sent = 0, done = 0;

	if (ring == NULL || start == NULL || buf == NULL)
		bench_die("chanbench: out of memory");
	while (done < p->n) {
		if (sent < p->n && sent - done < p->depth) {
			start[sent % p->depth] = bench_now();
			pump_submit(p, buf, sent, &ring[sent % p->depth]);
			sent++;
		} else {
			pump_complete(p, ring[done % p->depth]);
			if (p->lat != NULL)
				lat_add(p->lat, bench_now() - start[done % p->depth]);
			done++;
		}
	}
	free(buf);
	free(start);
	free(ring);
}

static void *
pump_run(void *arg)
{
	struct pump *p = arg;

	if (p->recv && p->stream)
		pump_stream(p);
	else
		pump_ops(p);
	return NULL;
}

/*
 * n values from `in` (a sender thread on one connection) to `out` (a
 * receiver thread on another), each keeping depth requests in flight:
 * in == out for a plain channel. Returns seconds.
 */
static double
pump_all(chan_t *in, chan_t *out, size_t n, size_t size, size_t depth, size_t expect_len,
    struct bench_lat *send_lat)
{
	struct pump pp[2] = {
		{ .ch = in, .n = n, .size = size, .depth = g_send_depth ? g_send_depth : depth,
		    .lat = send_lat },
		{ .ch = out, .n = n, .size = size, .depth = depth, .recv = true, .stream = g_stream,
		    .expect_len = expect_len },
	};
	pthread_t tid[2];
	int64_t t0 = bench_now();

	for (size_t i = 0; i < 2; i++)
		if (pthread_create(&tid[i], NULL, pump_run, &pp[i]) != 0)
			bench_die("pthread_create failed");
	for (size_t i = 0; i < 2; i++)
		pthread_join(tid[i], NULL);
	return (double)(bench_now() - t0) / 1e9;
}

static void
run_throughput(const struct opts *o)
{
	chan_conn_t *pc = dial(), *cc = dial();
	char name[64];
	chan_t *tx, *rx;
	struct bench_lat lat;
	double secs;

	if (g_stem != NULL)
		snprintf(name, sizeof name, "tp.%s", g_stem);
	else
		snprintf(name, sizeof name, "tp.%d", (int)getpid());
	if (g_ack || g_durable) {
		chan_delivery_opts_t d = CHAN_DELIVERY_OPTS_INIT;

		d.max_unacked = 0;	/* as streambench's: the stream's credit bounds what is unacked */
		d.durable = g_durable;
		if (!g_ack)
			d.ack_wait_ns = 0;	/* a durable plain channel */
		check(chan_make_opts(g_ctx, pc, name, 1024, &d, &tx), name);
		check(chan_make_opts(g_ctx, cc, name, 1024, &d, &rx), name);
	} else {
		tx = make(pc, name, 1024);
		rx = make(cc, name, 1024);
	}
	lat_init(&lat, o->latency ? o->n : 1);
	secs = pump_all(tx, rx, o->n, o->size, o->threads, o->size, o->latency ? &lat : NULL);
	bench_result(o->tag, "msgs_s", (double)o->n / secs);
	if (o->latency)
		lat_report(&lat, o->tag, o->samples);
	lat_free(&lat);
	drop(tx);
	chan_free(rx);
	chan_conn_close(pc);
	chan_conn_close(cc);
}

/* ---- (2) and (3): ping-pong between two processes ------------------------------ */

struct pingpong {
	size_t nping;			/* channels the pinger picks from (1: plain ping-pong) */
	chan_t **ping;
	chan_t *pong;
	chan_case_t *cases;		/* the echo's select (nping > 1) */
	size_t iters;
};

/* Both processes make every channel (MAKE of an existing name opens it). */
static void
pp_setup(struct pingpong *pp, chan_conn_t *c, const char *stem, size_t nping)
{
	char name[128];

	pp->nping = nping;
	pp->ping = calloc(nping, sizeof *pp->ping);
	pp->cases = calloc(nping, sizeof *pp->cases);
	for (size_t k = 0; k < nping; k++) {
		snprintf(name, sizeof name, "pp.%s.ping.%zu", stem, k);
		pp->ping[k] = make(c, name, 0);
		pp->cases[k] = (chan_case_t){ .dir = CHAN_DIR_RECV, .ch = pp->ping[k] };
	}
	snprintf(name, sizeof name, "pp.%s.pong", stem);
	pp->pong = make(c, name, 0);
}

static void
pp_teardown(struct pingpong *pp, bool delete)
{
	for (size_t k = 0; k < pp->nping; k++)
		delete ? drop(pp->ping[k]) : chan_free(pp->ping[k]);
	delete ? drop(pp->pong) : chan_free(pp->pong);
	free(pp->ping);
	free(pp->cases);
}

/*
 * The echo: receive a ping, send it back as the pong. By default it
 * pipelines (the libchanclient levers of issue 8): the next receive is in
 * flight while it waits, the pong is sent asynchronously and its OK taken
 * after the next ping, with which chand writes it (deferred replies,
 * PROTOCOL.md §15); over several channels it receives with a streaming
 * select of credit 1 (the case set sent once, re-armed by CREDIT). With
 * -m ops: one blocking call per step, a SELECT request per ping.
 */
static void
pp_echo(struct pingpong *pp)
{
	chan_stream_t *s = NULL;
	chan_op_t *r = NULL, *w = NULL;

	if (pp->nping > 1 && g_stream)
		check(chan_stream_open(g_ctx, pp->ping, pp->nping, 1, &s), "echo stream");
	else if (g_stream)
		check(chan_recv_async(g_ctx, pp->ping[0], &r), "echo recv");
	for (size_t i = 0; i < pp->iters; i++) {
		chan_value_t v;
		int k;

		if (s != NULL) {
			check(chan_stream_recv(s, &v, NULL, NULL), "echo stream recv");
		} else if (r != NULL) {
			check(chan_op_wait(r, &v, NULL), "echo recv");
			r = NULL;
			if (i + 1 < pp->iters)
				check(chan_recv_async(g_ctx, pp->ping[0], &r), "echo recv");
		} else if (pp->nping == 1) {
			check(chan_recv(g_plain ? NULL : g_ctx, pp->ping[0], &v, NULL), "echo recv");
		} else {
			if ((k = chan_select(g_ctx, pp->cases, pp->nping, false)) < 0)
				check(k, "echo select");
			v = pp->cases[k].value;
		}
		if (w != NULL)
			check(chan_op_wait(w, NULL, NULL), "echo send");
		w = NULL;
		if (g_stream)
			check(chan_send_async(g_ctx, pp->pong, v.data, v.len, &w), "echo send");
		else
			check(chan_send(g_plain ? NULL : g_ctx, pp->pong, v.data, v.len), "echo send");
		chan_value_clear(&v);
	}
	if (w != NULL)
		check(chan_op_wait(w, NULL, NULL), "echo send");
	chan_stream_free(s);
}

/* The pinger: time each round trip after the warm-up (pipelined unless -m ops, as the echo). */
static void
pp_ping(struct pingpong *pp, size_t warmup, struct bench_lat *lat, size_t size)
{
	uint8_t buf[1024] = { 0 };
	uint64_t seed = (uint64_t)getpid() * 0x9E3779B97F4A7C15ull;

	if (size > sizeof buf)
		size = sizeof buf;
	for (size_t i = 0; i < pp->iters; i++) {
		chan_op_t *r, *w;
		size_t k = 0;
		int64_t t0;

		if (g_ping_only >= 0) {
			k = (size_t)g_ping_only;
		} else if (pp->nping > 1) {
			seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
			k = seed % pp->nping;
		}
		t0 = bench_now();
		if (g_stream) {
			check(chan_recv_async(g_ctx, pp->pong, &r), "pong");
			check(chan_send_async(g_ctx, pp->ping[k], buf, size, &w), "ping");
			check(chan_op_wait(r, NULL, NULL), "pong");
			check(chan_op_wait(w, NULL, NULL), "ping");
		} else {
			check(chan_send(g_plain ? NULL : g_ctx, pp->ping[k], buf, size), "ping");
			check(chan_recv(g_plain ? NULL : g_ctx, pp->pong, NULL, NULL), "pong");
		}
		if (i >= warmup)
			lat_add(lat, bench_now() - t0);
	}
}

static void
run_pingpong(const struct opts *o, size_t nping)
{
	struct pingpong pp = { .iters = o->n + o->n / 10 };
	struct bench_lat lat;
	pid_t child;
	chan_conn_t *c;
	char stem[32];

	if (g_ping_only >= (long)nping)
		bench_die("chanbench: -K %ld: there are %zu channels (0 to %zu)", g_ping_only, nping,
		    nping - 1);
	snprintf(stem, sizeof stem, "%s", g_stem ? g_stem : "");
	if (g_stem == NULL)
		snprintf(stem, sizeof stem, "%d", (int)getpid());
	fflush(NULL);
	if ((child = fork()) < 0)
		bench_die("fork: %s", strerror(errno));
	/* each process dials after the fork: libchanclient's threads do not survive one */
	check(chan_with_timeout(&g_ctx, chan_background(), CALL_BUDGET), "context");
	if (child == 0 && g_echo_addr[0] != '\0')
		snprintf(g_addr, sizeof g_addr, "%s", g_echo_addr);
	c = dial();
	pp_setup(&pp, c, stem, nping);
	if (child == 0) {
		pp_echo(&pp);
		pp_teardown(&pp, false);
		chan_conn_close(c);
		_exit(0);
	}
	lat_init(&lat, o->n);
	pp_ping(&pp, o->n / 10, &lat, o->size);
	if (bench_wait_child(child, 60000) != 0)
		bench_die("chanbench: the echo process failed");
	lat_report(&lat, o->tag, o->samples);
	lat_free(&lat);
	pp_teardown(&pp, true);
	chan_conn_close(c);
}

/* ---- (4): many connections ---------------------------------------------------------- */

static void
run_many(const struct opts *o)
{
	struct mconn_proto p;
	struct chand_many m;
	struct mconn_stats st;

	bench_raise_nofile(o->conns + 256);
	chand_many_init(&m, &p, o->port, o->conns, o->size, g_stream);
	if (mconn_run(&p, o->conns, o->seconds, &st) < 0)
		bench_die("chanbench: many: the run failed");
	bench_result(o->tag, "ops_s", (double)st.ops / st.seconds);
	bench_result(o->tag, "ops", (double)st.ops);
	lat_report(&st.lat, o->tag, o->samples);
	lat_free(&st.lat);
	chand_many_free(&m);
}

/* ---- (5): memory --------------------------------------------------------------------- */

/* MAKE n idle unbuffered channels, pipelined 1,000 at a time. */
static void
make_idle(struct rconn *c, size_t n)
{
	char name[64];

	for (size_t i = 0; i < n; i += 1000) {
		size_t batch = n - i < 1000 ? n - i : 1000;
		struct proto_reply r;

		for (size_t k = 0; k < batch; k++) {
			int len = snprintf(name, sizeof name, "idle.%d.%zu", (int)getpid(), i + k);

			proto_req_make(&c->o, c->next_id++, name, (size_t)len, 0);
		}
		rconn_flush(c);
		for (size_t k = 0; k < batch; k++) {
			rconn_reply(c, OP_MAKE, &r);
			if (r.status != STATUS_OK)
				bench_die("chanbench: MAKE failed (status %d) after %zu", r.status, i + k);
		}
	}
}

static void
run_memory(const struct opts *o)
{
	struct rconn c;
	struct proto_reply r;
	char blk[64];
	long rss0, rss1, rss2;
	uint64_t w0;
	int *fds = calloc(o->receivers, sizeof *fds);

	if (o->pid <= 0 || fds == NULL)
		bench_die("chanbench: memory needs -P PID (chand's)");
	bench_raise_nofile(o->receivers + 256);
	rconn_open(&c, o->port);
	snprintf(blk, sizeof blk, "blk.%d", (int)getpid());
	proto_req_make(&c.o, c.next_id++, blk, strlen(blk), 0);
	rconn_flush(&c);
	rconn_reply(&c, OP_MAKE, &r);
	w0 = rconn_stat(&c, "waiters");
	usleep(100000);
	rss0 = bench_vmrss_kb(o->pid);
	make_idle(&c, o->channels);
	usleep(200000);
	rss1 = bench_vmrss_kb(o->pid);
	for (size_t i = 0; i < o->receivers; i++)
		fds[i] = rconn_blocked_receiver(o->port, blk);
	rconn_await_stat(&c, "waiters", w0 + o->receivers);
	usleep(200000);
	rss2 = bench_vmrss_kb(o->pid);
	bench_result(o->tag, "rss_start_kb", (double)rss0);
	bench_result(o->tag, "bytes_per_channel", (double)(rss1 - rss0) * 1024 / (double)o->channels);
	bench_result(o->tag, "bytes_per_receiver", (double)(rss2 - rss1) * 1024 / (double)o->receivers);
	for (size_t i = 0; i < o->receivers; i++)
		close(fds[i]);
	free(fds);
	rconn_close(&c);
}

/* ---- (6): fan-out job --------------------------------------------------------------- */

/* Start FAN_OUT(in -> out, sha256, workers) on c; dies unless it answers STARTED. */
static void
start_fanout(struct rconn *c, const char *in, const char *out, size_t workers)
{
	struct proto_request q = {
		.op = OP_FAN_OUT, .name = in, .name_len = (uint32_t)strlen(in),
		.nouts = 1, .count = workers, .stage = "sha256", .stage_len = 6, .ordered = false,
	};
	struct proto_reply r;

	q.outs[0] = (struct proto_link_out){ .name = out, .name_len = (uint32_t)strlen(out), .cap = 1024 };
	if (proto_req_link(&c->o, c->next_id++, PROTO_WAIT_FOREVER, &q) < 0)
		bench_die("out of memory");
	rconn_flush(c);
	rconn_reply(c, OP_FAN_OUT, &r);
	if (r.status != STATUS_STARTED)
		bench_die("chanbench: FAN_OUT did not start (status %d: %.*s)", r.status,
		    (int)r.msg_len, r.msg ? r.msg : "");
}

/* One job with `workers` workers over o->n values: seconds. */
static double
fanout_once(const struct opts *o, size_t workers)
{
	chan_conn_t *pc = dial(), *cc = dial();
	char iname[64], oname[64];
	struct rconn link;
	struct proto_reply r;
	chan_t *in, *out;
	double secs;

	snprintf(iname, sizeof iname, "fo.%d.%zu.in", (int)getpid(), workers);
	snprintf(oname, sizeof oname, "fo.%d.%zu.out", (int)getpid(), workers);
	in = make(pc, iname, 1024);
	rconn_open(&link, o->port);
	start_fanout(&link, iname, oname, workers);
	out = make(cc, oname, 1024);
	secs = pump_all(in, out, o->n, o->size, o->threads, 32, NULL);
	check(chan_close(g_ctx, in), "close");
	rconn_reply(&link, OP_FAN_OUT, &r);
	if (r.status != STATUS_OK || r.n != o->n)
		bench_die("chanbench: FAN_OUT ended with status %d after %llu values", r.status,
		    (unsigned long long)r.n);
	rconn_close(&link);
	drop(in);
	drop(out);
	chan_conn_close(pc);
	chan_conn_close(cc);
	return secs;
}

/*
 * 1, 2, 2, then 1 worker: whatever drifts during the round (the host's
 * other guests, CPU clocks) weighs on both alike. Rates over both runs.
 */
static void
run_fanout(const struct opts *o)
{
	double s1 = fanout_once(o, 1), s2 = fanout_once(o, 2);
	double one, two;

	s2 += fanout_once(o, 2);
	s1 += fanout_once(o, 1);
	one = 2.0 * (double)o->n / s1;
	two = 2.0 * (double)o->n / s2;

	bench_result(o->tag, "jobs_s_1w", one);
	bench_result(o->tag, "jobs_s_2w", two);
	bench_result(o->tag, "speedup_2w", two / one);
}

/* ---- (9) fill: durable channels for a restart ---------------------------------------- */

/*
 * -n values of -s bytes, round-robin into -C durable channels (cap n/C,
 * named fill.STEM.K or fill.PID.K), -t sends in flight on one connection;
 * the channels are left full, for the caller to restart chand on them.
 */
static void
run_fill(const struct opts *o)
{
	chan_conn_t *c = dial();
	size_t nch = o->channels, depth = o->threads;
	chan_t **chans = calloc(nch, sizeof *chans);
	chan_op_t **ops = calloc(depth, sizeof *ops);
	uint8_t *buf = calloc(1, o->size ? o->size : 1);
	chan_delivery_opts_t d = CHAN_DELIVERY_OPTS_INIT;
	char name[96], pid[16];
	int64_t t0;

	if (chans == NULL || ops == NULL || buf == NULL)
		bench_die("chanbench: out of memory");
	snprintf(pid, sizeof pid, "%d", (int)getpid());
	d.durable = true;
	d.ack_wait_ns = 0;
	d.max_unacked = 0;
	for (size_t k = 0; k < nch; k++) {
		snprintf(name, sizeof name, "fill.%s.%zu", g_stem ? g_stem : pid, k);
		check(chan_make_opts(g_ctx, c, name, (o->n + nch - 1) / nch, &d, &chans[k]), name);
	}
	t0 = bench_now();
	for (size_t i = 0; i < o->n + depth; i++) {
		if (i >= depth)
			check(chan_op_wait(ops[i % depth], NULL, NULL), "send");
		if (i < o->n)
			check(chan_send_async(g_ctx, chans[i % nch], buf, o->size, &ops[i % depth]), "send");
	}
	bench_result(o->tag, "fill_msgs_s", (double)o->n / ((double)(bench_now() - t0) / 1e9));
	for (size_t k = 0; k < nch; k++)
		chan_free(chans[k]);
	chan_conn_close(c);
	free(buf);
	free(ops);
	free(chans);
}

/* ---- main ------------------------------------------------------------------------------ */

static const char *const workloads[] = { "throughput", "pingpong", "select", "many", "memory", "fanout",
    "fill" };

static void
parse(int argc, char **argv, struct opts *o)
{
	int ch;

	*o = (struct opts){ .n = 0, .threads = 8, .size = 64, .conns = 1000, .seconds = 5,
	    .channels = 0, .receivers = 10000 };
	while ((ch = getopt(argc, argv, "hp:A:T:E:N:n:t:s:c:d:C:R:P:o:k:m:law:DK:")) != -1) {
		switch (ch) {
		case 'h': usage(0); break;
		case 'p': o->port = atoi(optarg); break;
		case 'A': snprintf(g_addr, sizeof g_addr, "%s", optarg); break;
		case 'T': g_dial_opts.tls_ca = optarg; break;
		case 'E': snprintf(g_echo_addr, sizeof g_echo_addr, "%s", optarg); break;
		case 'N': g_stem = optarg; break;
		case 'n': o->n = strtoul(optarg, NULL, 10); break;
		case 't': o->threads = strtoul(optarg, NULL, 10); break;
		case 's': o->size = strtoul(optarg, NULL, 10); break;
		case 'c': o->conns = strtoul(optarg, NULL, 10); break;
		case 'd': o->seconds = atof(optarg); break;
		case 'C': o->channels = strtoul(optarg, NULL, 10); break;
		case 'R': o->receivers = strtoul(optarg, NULL, 10); break;
		case 'P': o->pid = (pid_t)atoi(optarg); break;
		case 'o': o->samples = optarg; break;
		case 'k': o->tag = optarg; break;
		case 'l': o->latency = true; break;
		case 'a': g_ack = true; break;
		case 'D': g_durable = true; break;
		case 'w': g_send_depth = strtoul(optarg, NULL, 10); break;
		case 'K': g_ping_only = strtol(optarg, NULL, 10); break;
		case 'm':
			if (strcmp(optarg, "stream") != 0 && strcmp(optarg, "ops") != 0 && strcmp(optarg, "plain") != 0)
				usage(2);
			g_stream = strcmp(optarg, "stream") == 0;
			g_plain = strcmp(optarg, "plain") == 0;
			break;
		default: usage(2);
		}
	}
	if (optind != argc - 1 || (o->port <= 0 && g_addr[0] == '\0') || o->threads == 0)
		usage(2);
	o->workload = argv[optind];
}

/* Per-workload defaults for what was not given; the tag defaults to w1..w6. */
static void
defaults(struct opts *o, size_t w)
{
	static const char *const tags[] = { "w1", "w2", "w3", "w4", "w5", "w6", "w9" };
	static const size_t counts[] = { 200000, 20000, 5000, 0, 0, 20000, 1000000 };

	if (o->tag == NULL)
		o->tag = tags[w];
	if (o->n == 0)
		o->n = counts[w];
	if (w == 2 && o->channels == 0)
		o->channels = 1000;
	if (w == 4 && o->channels == 0)
		o->channels = 1000000;
	if (w == 5 && o->size == 64)
		o->size = 4096;
	if (w == 6 && o->channels == 0)
		o->channels = 1000;
}

int
main(int argc, char **argv)
{
	struct opts o;
	size_t w;

	parse(argc, argv, &o);
	for (w = 0; w < 7 && strcmp(o.workload, workloads[w]) != 0; w++)
		continue;
	if (w == 7)
		usage(2);
	defaults(&o, w);
	if (g_addr[0] == '\0')
		snprintf(g_addr, sizeof g_addr, "tcp://127.0.0.1:%d", o.port);
	if (w != 1 && w != 2)	/* ping-pong forks first: no context thread before that */
		check(chan_with_timeout(&g_ctx, chan_background(), CALL_BUDGET), "context");
	switch (w) {
	case 0: run_throughput(&o); break;
	case 1: run_pingpong(&o, 1); break;
	case 2: run_pingpong(&o, o.channels); break;
	case 3: run_many(&o); break;
	case 4: run_memory(&o); break;
	case 5: run_fanout(&o); break;
	default: run_fill(&o); break;
	}
	chan_ctx_free(g_ctx);
	return 0;
}
