/*
 * streambench.c: values/s from one producer to one consumer over the raw
 * protocol, the consumer using plain RECV (one round trip per value) or a
 * STREAM with credit C (PROTOCOL.md §14), re-granting what it consumed each
 * time half of the credit is used, as libchanclient does: the CREDIT is
 * queued then and written when the consumer has nothing left to read.
 *
 *   streambench [-k TAG] PORT N recv
 *   streambench [-k TAG] PORT N stream C
 *   streambench [-k TAG] PORT N stream C ack
 *
 * The producer is a second connection on its own thread, pipelining SENDs
 * (at most 256 unanswered) into a channel of cap 1024, topping up in one
 * write after taking every reply already read (as hiredis and nats.go do). With "ack" the
 * channel is an ack channel (PROTOCOL.md §16) and the consumer acks what it
 * took in one deferred ACK riding in the same write as each CREDIT, so C
 * values at most are in flight. (Until 2026-12-04 the consumer wrote each
 * CREDIT at once; corked like the library's it measured faster, at credit
 * 16 on a CPU-bound machine: RESULTS.md.) Besides its line of prose it prints
 * "RESULT TAG msgs_s V" like the other drivers (run.sh's workload 7; TAG
 * defaults to w7_MODE_tC, MODE recv, plain or ack).
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "codec.h"

struct rconn {
	int fd;
	uint8_t *buf;
	size_t len, cap, off;
	struct proto_out o;
};

static const char *chname = "bench.stream";
static bool use_ack;
static int port;
static long nvalues;

static void
die(const char *what)
{
	perror(what);
	exit(1);
}

static void
flush(struct rconn *c)
{
	const uint8_t *p = proto_out_data(&c->o);
	size_t n = proto_out_len(&c->o);

	while (n > 0) {
		ssize_t k = write(c->fd, p, n);

		if (k <= 0)
			die("write");
		p += k;
		n -= (size_t)k;
	}
	proto_out_reset(&c->o);
}

/* The next frame body (valid until the next call). */
static const uint8_t *
frame(struct rconn *c, size_t *blen)
{
	for (;;) {
		const uint8_t *body;
		const char *why;
		long n = proto_frame_split(c->buf + c->off, c->len - c->off, 1 << 22, &body, blen, &why);

		if (n > 0) {
			c->off += (size_t)n;
			return body;
		}
		if (n < 0)
			die("frame");
		if (c->off > 0) {	/* the first call has no buffer yet: memmove(NULL...) is undefined */
			memmove(c->buf, c->buf + c->off, c->len - c->off);
			c->len -= c->off;
			c->off = 0;
		}
		if (c->cap - c->len < 65536) {
			c->cap = c->cap ? c->cap * 2 : 1 << 20;
			if ((c->buf = realloc(c->buf, c->cap)) == NULL)
				die("realloc");
		}
		if (proto_out_len(&c->o) > 0)
			flush(c);	/* about to wait: the queued ACK and CREDIT go now */
		ssize_t k = read(c->fd, c->buf + c->len, c->cap - c->len);

		if (k <= 0)
			die("read");
		c->len += (size_t)k;
	}
}

/* Whether a whole frame is already read and waiting. */
static bool
buffered(struct rconn *c)
{
	const uint8_t *body;
	size_t blen;
	const char *why;

	return proto_frame_split(c->buf + c->off, c->len - c->off, 1 << 22, &body, &blen, &why) > 0;
}

static void
reply(struct rconn *c, uint64_t op, struct proto_reply *r)
{
	size_t blen;
	const uint8_t *b = frame(c, &blen);
	const char *why;

	if (proto_decode_reply(b, blen, op, r, &why) != STATUS_OK) {
		fprintf(stderr, "bad reply: %s\n", why);
		exit(1);
	}
}

static void
dial(struct rconn *c)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	struct proto_reply r;
	int one = 1;

	memset(c, 0, sizeof *c);
	proto_out_init(&c->o);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((c->fd = socket(AF_INET, SOCK_STREAM, 0)) < 0 || connect(c->fd, (void *)&sa, sizeof sa) < 0)
		die("connect");
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	proto_req_hello(&c->o, 1, 1, "streambench", NULL);
	flush(c);
	reply(c, OP_HELLO, &r);
	if (r.status != STATUS_OK)
		die("hello");
}

static void
hang_up(struct rconn *c)
{
	close(c->fd);
	free(c->buf);
	proto_out_destroy(&c->o);
}

static void *
producer(void *arg)
{
	struct rconn c;
	struct proto_value v = { .kind = VALUE_BIN, .data = (const uint8_t *)"0123456789abcdef", .len = 16 };
	struct proto_reply r;
	long sent = 0, acked = 0;

	(void)arg;
	dial(&c);
	while (acked < nvalues) {
		while (sent < nvalues && sent - acked < 256)
			proto_req_send(&c.o, (uint64_t)(100 + sent++), PROTO_WAIT_FOREVER, chname,
			    strlen(chname), &v);
		flush(&c);
		do {	/* every reply already read, then one write of as many SENDs */
			reply(&c, OP_SEND, &r);
			if (r.status != STATUS_OK)
				die("send");
			acked++;
		} while (acked < sent && buffered(&c));
	}
	hang_up(&c);
	return NULL;
}

int
main(int argc, char **argv)
{
	struct rconn c;
	struct proto_reply r;
	pthread_t t;
	long got = 0, credit = 0, ntags = 0;
	uint64_t *tags = NULL;
	uint64_t id = 10, sid = 5;
	bool use_stream;
	int64_t t0;
	double secs;
	const char *tag = NULL;
	char deftag[64];

	if (argc > 2 && strcmp(argv[1], "-k") == 0) {
		tag = argv[2];
		argv[2] = argv[0];
		argv += 2;
		argc -= 2;
	}
	if (argc < 4 || ((use_stream = strcmp(argv[3], "stream") == 0) && argc < 5)) {
		fprintf(stderr, "usage: streambench [-k TAG] PORT N recv | stream CREDIT [ack]\n");
		return 2;
	}
	port = atoi(argv[1]);
	nvalues = atol(argv[2]);
	credit = use_stream ? atol(argv[4]) : 0;
	use_ack = use_stream && argc > 5 && strcmp(argv[5], "ack") == 0;
	dial(&c);
	if (use_ack) {
		struct proto_delivery d = { .on = true, .ack_wait_us = 30000000, .max_deliver = 5 };

		chname = "bench.ack";
		if ((tags = malloc((size_t)credit * sizeof *tags)) == NULL)
			die("malloc");
		proto_req_make_opts(&c.o, 2, chname, strlen(chname), 1024, &d);
	} else {
		proto_req_make(&c.o, 2, chname, strlen(chname), 1024);
	}
	flush(&c);
	reply(&c, OP_MAKE, &r);
	t0 = clock_now_ns();
	pthread_create(&t, NULL, producer, NULL);
	if (use_stream) {
		struct proto_case pc = { .name = chname, .name_len = (uint32_t)strlen(chname) };
		long used = 0;

		proto_req_stream(&c.o, sid, PROTO_WAIT_FOREVER, &pc, 1, (uint64_t)credit);
		flush(&c);
		while (got < nvalues) {
			size_t blen;
			const uint8_t *b = frame(&c, &blen);
			uint64_t rid;
			int st;
			const char *why;

			proto_reply_header(b, blen, &rid, &st, &why);
			if (rid != sid)
				continue;	/* CREDIT's OK, ACK's */
			if (use_ack) {
				if (proto_decode_reply(b, blen, OP_STREAM, &r, &why) != STATUS_OK || r.tag == 0)
					die("stream value without a tag");
				tags[ntags++] = r.tag;
			}
			got++;
			/* re-grant what was used once half the credit is gone, acked in the same write */
			if (++used * 2 >= credit && got + (credit - used) < nvalues) {
				if (ntags > 0) {
					proto_req_ack(&c.o, id++, tags, (size_t)ntags);
					proto_req_defer_last(&c.o);
					ntags = 0;
				}
				proto_req_credit(&c.o, id++, sid, (uint64_t)used);
				used = 0;
			}
		}
		if (ntags > 0) {
			proto_req_ack(&c.o, id++, tags, (size_t)ntags);
			flush(&c);
		}
	} else {
		while (got < nvalues) {
			proto_req_name(&c.o, OP_RECV, id++, PROTO_WAIT_FOREVER, chname, strlen(chname));
			flush(&c);
			reply(&c, OP_RECV, &r);
			got++;
		}
	}
	secs = (double)(clock_now_ns() - t0) / 1e9;
	pthread_join(t, NULL);
	printf("%s%s%s%s: %ld values in %.3f s: %.0f values/s\n", argv[3], use_stream ? " credit " : "",
	    use_stream ? argv[4] : "", use_ack ? " ack" : "", got, secs, (double)got / secs);
	if (tag == NULL) {
		snprintf(deftag, sizeof deftag, "w7_%s_t%ld", use_ack ? "ack" : use_stream ? "plain" : "recv",
		    use_stream ? credit : 1L);
		tag = deftag;
	}
	printf("RESULT %s msgs_s %.6g\n", tag, (double)got / secs);
	hang_up(&c);
	free(tags);
	return 0;
}
