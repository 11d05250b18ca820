/*
 * rawchan.h: chand's wire protocol spoken directly (proto/codec), for what
 * libchanclient cannot express cheaply in a load generator:
 *  - a blocking raw connection (rconn) to pipeline thousands of MAKEs, to
 *    start a FAN_OUT job (libchanclient has no link calls yet) and to read
 *    STATS;
 *  - the mconn protocol of workload 4 (1,000 connections on one thread:
 *    the client library starts a reader thread per connection and blocks a
 *    thread per call, so 1,000 connections would need 2,000 threads).
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef CHAND_BENCH_RAWCHAN_H
#define CHAND_BENCH_RAWCHAN_H

#include <stddef.h>
#include <stdint.h>

#include "bench.h"
#include "codec.h"

struct rconn {
	int fd;
	uint64_t next_id;
	struct proto_out o;		/* requests not yet flushed */
	uint8_t *body;			/* the last frame read */
	size_t cap;
};

/* Connect to 127.0.0.1:port and say HELLO. Dies on failure. */
void rconn_open(struct rconn *c, int port);
void rconn_close(struct rconn *c);
/* Write the queued requests. Dies on failure. */
void rconn_flush(struct rconn *c);
/* Read the next frame and decode it as a reply to op. Dies on failure. */
void rconn_reply(struct rconn *c, uint64_t op, struct proto_reply *r);
/* The value of a STATS key (one round trip), 0 if absent. */
uint64_t rconn_stat(struct rconn *c, const char *key);
/* Poll STATS until key reaches want; dies after 60 s. */
void rconn_await_stat(struct rconn *c, const char *key, uint64_t want);
/* A new connection whose one RECV on name stays pending: its fd (the caller closes it). */
int rconn_blocked_receiver(int port, const char *name);

/*
 * Workload 4's protocol: connection i sends to and receives from its own
 * channel (cap 1); pipelined: the two in one write, the send deferred.
 */
struct chand_many {
	int port;
	size_t value_size;
	char (*names)[32];
	uint64_t next_id;
};
void chand_many_init(struct chand_many *m, struct mconn_proto *p, int port, size_t nconns,
    size_t value_size, bool pipelined);
void chand_many_free(struct chand_many *m);

#endif
