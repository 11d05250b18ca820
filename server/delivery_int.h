/*
 * delivery_int.h: what delivery.c (values in flight) and delivery_limits.c
 * (max_unacked, max_ack_pending and the receives waiting at them) share:
 * the records and two calls. Private to those two files.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef CHAND_DELIVERY_INT_H
#define CHAND_DELIVERY_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

#include <event2/event_struct.h>

#include "delivery.h"
#include "hmap.h"
#include "request.h"

TAILQ_HEAD(inflight_list, inflight);

/* A channel's options and counters: its chan_ext block. */
struct dlv_chan {
	struct delivery *d;		/* set with the timer, at the first value taken */
	struct inflight_list due;	/* values waiting for ACK, by deadline */
	struct inflight_list all;	/* every value in flight, as taken (a NACK's delay: last) */
	struct event timer;		/* pending only while due is not empty */
	bool timer_set;
	uint64_t ack_wait_us;
	uint32_t max_deliver;		/* 0: unlimited */
	uint32_t max_unacked;		/* per connection; 0: unlimited */
	uint32_t max_ack_pending;	/* the whole channel; 0: unlimited */
	uint32_t inflight;
	uint32_t unacked;		/* of inflight, those held by a connection (a live tag) */
	uint32_t claims;		/* receives waiting in the engine, every connection */
	struct request_waitq held;	/* receives made at a limit, oldest first */
	struct request_list streams;	/* STREAMs over ch alone, some credit maybe owed */
	struct request_waitq gates;	/* STREAMs over ch and others */
	uint64_t redelivered;
	uint64_t dead_lettered;
	uint32_t dl_len;		/* 0: no dead_letter */
	char dead_letter[PROTO_NAME_MAX + 1];
};

struct inflight {
	struct hmap_node node;		/* in d->tags, while its tag is live */
	struct inflight *spare_next;	/* in d->spare once over */
	TAILQ_ENTRY(inflight) clink;	/* on its connection's list, or d->delayed */
	TAILQ_ENTRY(inflight) alink;	/* on its channel's all */
	TAILQ_ENTRY(inflight) dlink;	/* on its channel's due list, while its tag is live */
	struct delivery *d;
	struct conn *conn;		/* NULL once NACKed with a delay */
	struct dlv_slot *slot;		/* its connection's slot on a channel with max_unacked */
	struct chan *ch;		/* held */
	struct value *v;
	uint64_t tag;
	uint32_t count;			/* deliveries so far, this one included */
	int64_t since_ns;		/* delivered at */
	int64_t deadline_ns;		/* ack_wait's end, or the NACK delay's */
	struct event timer;		/* NACKed with a delay: its own */
};

/*
 * One connection on one channel with a limit: its values in flight and
 * its receives waiting in the engine (claims). A slot holds its channel
 * and lives as long as its connection.
 */
struct dlv_slot {
	TAILQ_ENTRY(dlv_slot) link;
	struct chan *ch;
	uint32_t inflight;
	uint32_t claims;
};

/* A connection's values in flight and slots: c->dlv, made on its first. */
struct delivery_conn {
	struct inflight_list list;
	TAILQ_HEAD(, dlv_slot) slots;
};

struct delivery {
	struct engine *e;
	struct event_base *base;
	struct hmap tags;		/* tag -> struct inflight */
	struct inflight_list delayed;	/* NACKed, waiting out their delay */
	uint64_t next_tag;
	struct delivery_counters n;
	delivery_change_fn *hook;	/* durable channels' changes (durable.c) */
	void *hook_arg;
	struct inflight *spare;		/* records to reuse, DLV_SPARE_MAX at most */
	size_t nspare;
};

#define DLV_SPARE_MAX 4096

/* c's slot on ch, made if need be; NULL when out of memory. */
struct dlv_slot *dlv_slot_get(struct conn *c, struct chan *ch);
/*
 * Room again on ch (an ACK, a NACK, an expiry, a claim's end): let the
 * receives waiting at its limits go, as their connections have room.
 */
void dlv_chan_check(struct chan *ch);

#endif
