/*
 * redis_bench: the Redis peer of chanbench (hiredis), same workloads, same
 * output ("RESULT <tag> <metric> <value>").
 *
 *	redis_bench -p PORT [-n N] [-t DEPTH] [-s SIZE] [-c CONNS] [-d SEC]
 *	            [-o SAMPLES] [-k TAG] [-m ops] [-l] throughput|pingpong|many|streams
 *
 *   throughput  (1) one producer connection LPUSHes, one consumer
 *               connection BRPOPs, each with DEPTH commands pipelined
 *               (chanbench's -t: the same number of requests in flight on
 *               each connection). No cap: a Redis list never pushes
 *               back, which only favours Redis. -l: the latency of each LPUSH
 *               too, from its write to its reply (p50_us, p99_us: the
 *               durable workload 9, against a server with appendonly).
 *   pingpong    (2) two processes: LPUSH ping / BLPOP pong against
 *               BLPOP ping / LPUSH pong.
 *   many        (4) CONNS connections, each LPUSH then BRPOP on its own
 *               key, the two pipelined in one write (-m ops: one command
 *               in flight each), for SEC seconds, on chanbench's epoll
 *               driver (bench.c), hiredis parsing replies. ops_s,
 *               ops (the count) and the latency of each command.
 *
 *   streams     (7) Redis Streams with a consumer group: one producer
 *               connection XADDs (at most 256 unanswered), one consumer
 *               connection reads with XREADGROUP COUNT DEPTH BLOCK and
 *               acks each batch in one XACK pipelined in the same write as
 *               the next XREADGROUP, so DEPTH entries at most are
 *               delivered unacked; msgs_s counts acked entries per second.
 *
 * Built by run.sh: cc -O2 redis_bench.c bench.c -lhiredis -pthread.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <getopt.h>
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "bench.h"

struct opts {
	int port;
	size_t n, depth, size, conns;
	double seconds;
	bool one_at_a_time;		/* -m ops: workload 4 without pipelining */
	bool latency;			/* -l: throughput also times each LPUSH */
	const char *samples, *tag;
};

static char g_payload[65536];

static redisContext *
rconnect(int port)
{
	struct timeval tv = { .tv_sec = 60 };	/* every blocking read is bounded */
	redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);

	if (c == NULL || c->err)
		bench_die("redis: connect: %s", c ? c->errstr : "out of memory");
	redisSetTimeout(c, tv);
	return c;
}

/* Read one reply; dies on an error or an error reply. */
static void
expect_reply(redisContext *c, const char *what)
{
	redisReply *r;

	if (redisGetReply(c, (void **)&r) != REDIS_OK)
		bench_die("redis: %s: %s", what, c->errstr);
	if (r->type == REDIS_REPLY_ERROR || r->type == REDIS_REPLY_NIL)
		bench_die("redis: %s: %s", what, r->type == REDIS_REPLY_NIL ? "nil" : r->str);
	freeReplyObject(r);
}

static void
command(redisContext *c, const char *what, const char *key, size_t size)
{
	redisAppendCommand(c, "%s %s %b", what, key, g_payload, size);
}

/* ---- (1) throughput ----------------------------------------------------------------- */

struct side {
	const struct opts *o;
	const char *key;
	bool pop;
	struct bench_lat *lat;		/* each command's time from its write to its reply, or NULL */
};

/* DEPTH commands in flight: send one more for each reply, n in all. */
static void *
side_run(void *arg)
{
	struct side *s = arg;
	redisContext *c = rconnect(s->o->port);
	int64_t *start = calloc(s->o->depth, sizeof *start);
	size_t sent = 0, done = 0;

	if (start == NULL)
		bench_die("out of memory");
	while (done < s->o->n) {
		while (sent < s->o->n && sent - done < s->o->depth) {
			if (s->pop)
				redisAppendCommand(c, "BRPOP %s 0", s->key);
			else
				command(c, "LPUSH", s->key, s->o->size);
			/* hiredis writes what was appended on the next read, now */
			start[sent % s->o->depth] = bench_now();
			sent++;
		}
		expect_reply(c, s->pop ? "BRPOP" : "LPUSH");
		if (s->lat != NULL)
			lat_add(s->lat, bench_now() - start[done % s->o->depth]);
		done++;
	}
	free(start);
	redisFree(c);
	return NULL;
}

static void
run_throughput(const struct opts *o)
{
	char key[64];
	struct side push, pop;
	struct bench_lat lat;
	pthread_t a, b;
	int64_t t0;

	snprintf(key, sizeof key, "tp.%d", (int)getpid());
	push = (struct side){ .o = o, .key = key, .pop = false };
	pop = (struct side){ .o = o, .key = key, .pop = true };
	lat_init(&lat, o->latency ? o->n : 1);
	if (o->latency)
		push.lat = &lat;
	t0 = bench_now();
	if (pthread_create(&a, NULL, side_run, &push) || pthread_create(&b, NULL, side_run, &pop))
		bench_die("pthread_create failed");
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	bench_result(o->tag, "msgs_s", (double)o->n / ((double)(bench_now() - t0) / 1e9));
	if (o->latency)
		lat_report(&lat, o->tag, o->samples);
	lat_free(&lat);
}

/* ---- (7) Redis Streams: XADD, XREADGROUP + XACK -------------------------------------- */

struct xprod {
	const struct opts *o;
	const char *key;
};

static void *
xadd_run(void *arg)
{
	struct xprod *p = arg;
	redisContext *c = rconnect(p->o->port);
	size_t sent = 0, done = 0;

	while (done < p->o->n) {
		while (sent < p->o->n && sent - done < 256) {
			redisAppendCommand(c, "XADD %s * v %b", p->key, g_payload, p->o->size);
			sent++;
		}
		expect_reply(c, "XADD");
		done++;
	}
	redisFree(c);
	return NULL;
}

static void
run_streams(const struct opts *o)
{
	char key[64];
	struct xprod prod;
	redisContext *c = rconnect(o->port);
	redisReply *r;
	pthread_t a;
	size_t got = 0, nids = 0, i;
	char **ids = calloc(o->depth, sizeof *ids);
	size_t *idlen = calloc(o->depth, sizeof *idlen);
	const char **argv = calloc(o->depth + 3, sizeof *argv);
	size_t *argl = calloc(o->depth + 3, sizeof *argl);
	int64_t t0;

	if (ids == NULL || idlen == NULL || argv == NULL || argl == NULL)
		bench_die("out of memory");
	snprintf(key, sizeof key, "xs.%d", (int)getpid());
	redisAppendCommand(c, "DEL %s", key);
	redisAppendCommand(c, "XGROUP CREATE %s g $ MKSTREAM", key);
	if (redisGetReply(c, (void **)&r) != REDIS_OK)
		bench_die("redis: DEL: %s", c->errstr);
	freeReplyObject(r);
	expect_reply(c, "XGROUP CREATE");
	prod = (struct xprod){ .o = o, .key = key };
	t0 = bench_now();
	if (pthread_create(&a, NULL, xadd_run, &prod))
		bench_die("pthread_create failed");
	redisAppendCommand(c, "XREADGROUP GROUP g c COUNT %lu BLOCK 0 STREAMS %s >", (unsigned long)o->depth, key);
	while (got < o->n) {
		redisReply *s, *e;

		if (redisGetReply(c, (void **)&r) != REDIS_OK)
			bench_die("redis: XREADGROUP: %s", c->errstr);
		if (r->type != REDIS_REPLY_ARRAY || r->elements != 1)
			bench_die("redis: XREADGROUP: unexpected reply type %d", r->type);
		s = r->element[0];	/* [key, [[id, [field, value]], ...]] */
		if (s->type != REDIS_REPLY_ARRAY || s->elements != 2)
			bench_die("redis: XREADGROUP: unexpected stream reply");
		e = s->element[1];
		for (i = 0; i < e->elements && nids < o->depth; i++) {
			redisReply *id = e->element[i]->element[0];

			ids[nids] = id->str, idlen[nids] = id->len;	/* freed with r below */
			nids++;
		}
		got += nids;
		/* one XACK for the batch, the next read in the same write */
		argv[0] = "XACK", argl[0] = 4;
		argv[1] = key, argl[1] = strlen(key);
		argv[2] = "g", argl[2] = 1;
		for (i = 0; i < nids; i++)
			argv[3 + i] = ids[i], argl[3 + i] = idlen[i];
		if (nids > 0)
			redisAppendCommandArgv(c, (int)(3 + nids), argv, argl);
		if (got < o->n)
			redisAppendCommand(c, "XREADGROUP GROUP g c COUNT %lu BLOCK 0 STREAMS %s >", (unsigned long)o->depth,
			    key);
		freeReplyObject(r);
		if (nids > 0)
			expect_reply(c, "XACK");
		nids = 0;
	}
	bench_result(o->tag, "msgs_s", (double)got / ((double)(bench_now() - t0) / 1e9));
	pthread_join(a, NULL);
	redisAppendCommand(c, "DEL %s", key);
	expect_reply(c, "DEL");
	redisFree(c);
	free(ids);
	free(idlen);
	free(argv);
	free(argl);
}

/* ---- (2) ping-pong ------------------------------------------------------------------- */

static void
bounce(redisContext *c, const char *push, const char *pop, size_t size, bool push_first)
{
	if (push_first) {
		command(c, "LPUSH", push, size);
		expect_reply(c, "LPUSH");
	}
	redisAppendCommand(c, "BLPOP %s 0", pop);
	expect_reply(c, "BLPOP");
	if (!push_first) {
		command(c, "LPUSH", push, size);
		expect_reply(c, "LPUSH");
	}
}

static void
run_pingpong(const struct opts *o)
{
	char ping[64], pong[64];
	size_t warm = o->n / 10;
	struct bench_lat lat;
	redisContext *c;
	pid_t child;

	snprintf(ping, sizeof ping, "pp.%d.ping", (int)getpid());
	snprintf(pong, sizeof pong, "pp.%d.pong", (int)getpid());
	if ((child = fork()) == 0) {
		c = rconnect(o->port);
		for (size_t i = 0; i < o->n + warm; i++)
			bounce(c, pong, ping, o->size, false);
		redisFree(c);
		_exit(0);
	}
	c = rconnect(o->port);
	lat_init(&lat, o->n);
	for (size_t i = 0; i < o->n + warm; i++) {
		int64_t t0 = bench_now();

		bounce(c, ping, pong, o->size, true);
		if (i >= warm)
			lat_add(&lat, bench_now() - t0);
	}
	redisFree(c);
	if (bench_wait_child(child, 10000) != 0)
		bench_die("redis: the echo process failed");
	lat_report(&lat, o->tag, o->samples);
	lat_free(&lat);
}

/* ---- (4) many connections ---------------------------------------------------------------- */

struct many {
	const struct opts *o;
	redisReader **rd;
	char (*keys)[32];
};

static int
many_open(void *arg, size_t i)
{
	struct many *m = arg;
	int fd = tcp_connect(m->o->port);

	m->rd[i] = redisReaderCreate();
	snprintf(m->keys[i], sizeof m->keys[i], "many.%d.%zu", (int)getpid(), i);
	return fd;
}

static size_t
many_request(void *arg, size_t i, unsigned step, bool pipelined, uint8_t *buf, size_t cap)
{
	struct many *m = arg;
	char *cmd;
	(void)pipelined;		/* Redis needs nothing to pipeline */
	int len = step == 0 ?
	    redisFormatCommand(&cmd, "LPUSH %s %b", m->keys[i], g_payload, m->o->size) :
	    redisFormatCommand(&cmd, "BRPOP %s 0", m->keys[i]);

	if (len < 0 || (size_t)len > cap)
		bench_die("redis: cannot format a command");
	memcpy(buf, cmd, (size_t)len);
	redisFreeCommand(cmd);
	return (size_t)len;
}

static int
many_reply(void *arg, size_t i, const uint8_t *in, size_t len, size_t *used)
{
	struct many *m = arg;
	redisReply *r = NULL;

	if (len > 0 && redisReaderFeed(m->rd[i], (const char *)in, len) != REDIS_OK)
		return -1;
	*used = len;
	if (redisReaderGetReply(m->rd[i], (void **)&r) != REDIS_OK)
		return -1;
	if (r == NULL)
		return 0;
	if (r->type == REDIS_REPLY_ERROR) {
		fprintf(stderr, "redis: %s\n", r->str);
		freeReplyObject(r);
		return -1;
	}
	freeReplyObject(r);
	return 1;
}

static void
run_many(const struct opts *o)
{
	struct many m = { .o = o };
	struct mconn_proto p = { .arg = &m, .pipelined = !o->one_at_a_time, .open = many_open,
	    .request = many_request, .reply = many_reply };
	struct mconn_stats st;

	bench_raise_nofile(o->conns + 256);
	m.rd = calloc(o->conns, sizeof *m.rd);
	m.keys = calloc(o->conns, sizeof *m.keys);
	if (m.rd == NULL || m.keys == NULL)
		bench_die("out of memory");
	if (mconn_run(&p, o->conns, o->seconds, &st) < 0)
		bench_die("redis: many: the run failed");
	bench_result(o->tag, "ops_s", (double)st.ops / st.seconds);
	bench_result(o->tag, "ops", (double)st.ops);
	lat_report(&st.lat, o->tag, o->samples);
	lat_free(&st.lat);
	for (size_t i = 0; i < o->conns; i++)
		redisReaderFree(m.rd[i]);
	free(m.rd);
	free(m.keys);
}

/* -h: to stdout, 0; a bad command line: to stderr, 2. */
static int
usage(int code)
{
	fprintf(code ? stderr : stdout, "usage: redis_bench -p PORT [-n N] [-t DEPTH] [-s SIZE] [-c CONNS] [-d SEC] "
	    "[-o FILE] [-k TAG] [-m ops] [-l] throughput|pingpong|many|streams\n");
	return code;
}

int
main(int argc, char **argv)
{
	struct opts o = { .n = 0, .depth = 8, .size = 64, .conns = 1000, .seconds = 5 };
	const char *w;
	int ch;

	while ((ch = getopt(argc, argv, "hp:n:t:s:c:d:o:k:m:l")) != -1) {
		switch (ch) {
		case 'p': o.port = atoi(optarg); break;
		case 'n': o.n = strtoul(optarg, NULL, 10); break;
		case 't': o.depth = strtoul(optarg, NULL, 10); break;
		case 's': o.size = strtoul(optarg, NULL, 10); break;
		case 'c': o.conns = strtoul(optarg, NULL, 10); break;
		case 'd': o.seconds = atof(optarg); break;
		case 'o': o.samples = optarg; break;
		case 'k': o.tag = optarg; break;
		case 'm': o.one_at_a_time = strcmp(optarg, "ops") == 0; break;
		case 'l': o.latency = true; break;
		case 'h': return usage(0);
		default: return usage(2);
		}
	}
	if (optind != argc - 1 || o.port <= 0 || o.depth == 0 || o.size > sizeof g_payload)
		return usage(2);
	w = argv[optind];
	if (strcmp(w, "throughput") == 0)
		o.tag = o.tag ? o.tag : "w1", o.n = o.n ? o.n : 200000, run_throughput(&o);
	else if (strcmp(w, "pingpong") == 0)
		o.tag = o.tag ? o.tag : "w2", o.n = o.n ? o.n : 20000, run_pingpong(&o);
	else if (strcmp(w, "many") == 0)
		o.tag = o.tag ? o.tag : "w4", run_many(&o);
	else if (strcmp(w, "streams") == 0)
		o.tag = o.tag ? o.tag : "w7_redis", o.n = o.n ? o.n : 100000, run_streams(&o);
	else
		bench_die("redis_bench: unknown workload %s", w);
	return 0;
}
