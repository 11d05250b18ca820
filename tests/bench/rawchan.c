/*
 * rawchan.c: chand's protocol without libchanclient (see rawchan.h).
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "rawchan.h"

#define RAW_MAX_FRAME (64u << 20)

void
rconn_open(struct rconn *c, int port)
{
	struct timeval tv = { .tv_sec = 60 };	/* every read is bounded */
	struct proto_reply r;

	memset(c, 0, sizeof *c);
	c->next_id = 1;
	if ((c->fd = tcp_connect(port)) < 0)
		bench_die("rconn: cannot connect to port %d: %s", port, strerror(errno));
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	proto_out_init(&c->o);
	proto_req_hello(&c->o, c->next_id++, PROTO_VERSION, "chanbench", NULL);
	rconn_flush(c);
	rconn_reply(c, OP_HELLO, &r);
	if (r.status != STATUS_OK)
		bench_die("rconn: HELLO refused (status %d)", r.status);
}

void
rconn_close(struct rconn *c)
{
	close(c->fd);
	proto_out_destroy(&c->o);
	free(c->body);
}

void
rconn_flush(struct rconn *c)
{
	if (tcp_write_all(c->fd, proto_out_data(&c->o), proto_out_len(&c->o)) < 0)
		bench_die("rconn: write failed");
	proto_out_reset(&c->o);
}

void
rconn_reply(struct rconn *c, uint64_t op, struct proto_reply *r)
{
	uint8_t hdr[PROTO_FRAME_HDR];
	uint32_t len;
	const char *why;

	if (tcp_read_full(c->fd, hdr, sizeof hdr) < 0)
		bench_die("rconn: connection lost (or 60 s without a reply)");
	len = proto_frame_len(hdr);
	if (len == 0 || len > RAW_MAX_FRAME)
		bench_die("rconn: bad frame length %u", len);
	if (len > c->cap) {
		c->cap = len;
		if ((c->body = realloc(c->body, len)) == NULL)
			bench_die("out of memory");
	}
	if (tcp_read_full(c->fd, c->body, len) < 0)
		bench_die("rconn: connection lost");
	if (proto_decode_reply(c->body, len, op, r, &why) != STATUS_OK)
		bench_die("rconn: bad reply: %s", why);
}

uint64_t
rconn_stat(struct rconn *c, const char *key)
{
	struct proto_reply r;
	const char *k;
	uint32_t klen;
	uint64_t v, found = 0;

	proto_req_simple(&c->o, OP_STATS, c->next_id++);
	rconn_flush(c);
	rconn_reply(c, OP_STATS, &r);
	if (r.status != STATUS_OK)
		bench_die("rconn: STATS failed (status %d)", r.status);
	while (proto_list_stat(&r.list, &k, &klen, &v) == 1)
		if (klen == strlen(key) && memcmp(k, key, klen) == 0)
			found = v;
	return found;
}

/* ---- workload 4 ------------------------------------------------------------------ */

/* Connect, HELLO and MAKE the connection's own channel (cap 1), blocking. */
static int
many_open(void *arg, size_t i)
{
	struct chand_many *m = arg;
	struct rconn c;
	struct proto_reply r;
	int fd;

	rconn_open(&c, m->port);
	proto_req_make(&c.o, c.next_id++, m->names[i], strlen(m->names[i]), 1);
	rconn_flush(&c);
	rconn_reply(&c, OP_MAKE, &r);
	if (r.status != STATUS_OK)
		bench_die("many: MAKE %s failed (status %d)", m->names[i], r.status);
	fd = c.fd;
	c.fd = dup(fd);			/* rconn_close closes the copy */
	rconn_close(&c);
	return fd;
}

/*
 * Encode one frame with a throw-away proto_out and copy it out. A send
 * pipelined with its receive is deferred (PROTOCOL.md §15), as
 * libchanclient sends an asynchronous one: both replies come in one write.
 */
static size_t
many_request(void *arg, size_t i, unsigned step, bool pipelined, uint8_t *buf, size_t cap)
{
	static const uint8_t payload[1024];
	struct chand_many *m = arg;
	struct proto_value v = { .kind = VALUE_BIN, .data = payload, .len = m->value_size };
	struct proto_out o;
	size_t len;

	proto_out_init(&o);
	if (step == 0) {
		proto_req_send(&o, ++m->next_id, PROTO_WAIT_FOREVER, m->names[i],
		    strlen(m->names[i]), &v);
		if (pipelined)
			proto_req_defer_last(&o);
	} else {
		proto_req_name(&o, OP_RECV, ++m->next_id, PROTO_WAIT_FOREVER, m->names[i],
		    strlen(m->names[i]));
	}
	len = proto_out_len(&o);
	if (len > cap)
		bench_die("many: request of %zu bytes", len);
	memcpy(buf, proto_out_data(&o), len);
	proto_out_destroy(&o);
	return len;
}

static int
many_reply(void *arg, size_t i, const uint8_t *in, size_t len, size_t *used)
{
	const uint8_t *body;
	size_t blen;
	const char *why;
	uint64_t id;
	int status;
	long n = proto_frame_split(in, len, RAW_MAX_FRAME, &body, &blen, &why);

	if (n <= 0)
		return (int)n;
	if (proto_reply_header(body, blen, &id, &status, &why) != STATUS_OK || status != STATUS_OK) {
		fprintf(stderr, "many: connection %zu: status %d\n", i, status);
		return -1;
	}
	*used = (size_t)n;
	return 1;
}

void
chand_many_init(struct chand_many *m, struct mconn_proto *p, int port, size_t nconns,
    size_t value_size, bool pipelined)
{
	m->port = port;
	m->value_size = value_size > 1024 ? 1024 : value_size;
	m->next_id = 1000;
	if ((m->names = calloc(nconns, sizeof *m->names)) == NULL)
		bench_die("out of memory");
	for (size_t i = 0; i < nconns; i++)
		snprintf(m->names[i], sizeof m->names[i], "many.%d.%zu", (int)getpid(), i);
	p->arg = m;
	p->pipelined = pipelined;
	p->open = many_open;
	p->request = many_request;
	p->reply = many_reply;
}

void
chand_many_free(struct chand_many *m)
{
	free(m->names);
}

void
rconn_await_stat(struct rconn *c, const char *key, uint64_t want)
{
	int64_t end = bench_now() + 60 * 1000000000LL;

	while (rconn_stat(c, key) < want) {
		if (bench_now() > end)
			bench_die("%s is %llu, not %llu, after 60 s", key,
			    (unsigned long long)rconn_stat(c, key), (unsigned long long)want);
		usleep(20000);
	}
}

int
rconn_blocked_receiver(int port, const char *name)
{
	struct rconn c;
	int fd;

	rconn_open(&c, port);
	proto_req_name(&c.o, OP_RECV, c.next_id++, PROTO_WAIT_FOREVER, name, strlen(name));
	rconn_flush(&c);
	fd = c.fd;
	c.fd = -1;
	rconn_close(&c);
	return fd;
}
