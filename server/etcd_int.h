/*
 * etcd_int.h: what etcd.c (the API: requests, watches, replies) and
 * etcd_call.c (the calls' queue and their kept connections) share.
 * Thread-safety: loop thread only.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef CHAND_ETCD_INT_H
#define CHAND_ETCD_INT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include <jansson.h>
#include <openssl/ssl.h>

#include "etcd.h"

struct evhttp_connection;
struct evhttp_request;
struct grave;
struct call;

struct endpoint {
	char *host;
	uint16_t port;
	char *url;
	int tls;			/* https:// */
};

/* One kept connection for calls, and the call on it (one at a time: HTTP/1.1, no pipelining). */
struct etcd_slot {
	struct evhttp_connection *conn;	/* NULL: none open */
	size_t ep;			/* ... to this endpoint */
	struct call *call;		/* NULL: free */
	int used;			/* a call has ended well on conn: it may since have gone idle-closed */
};

struct etcd {
	struct event_base *base;
	struct endpoint *eps;
	size_t neps, cur;
	unsigned timeout_ms;
	SSL_CTX *ssl;			/* for https:// endpoints; NULL without */
	struct etcd_stats stats;
	TAILQ_HEAD(, call) queue;	/* waiting for a slot, the session's calls first */
	TAILQ_HEAD(, call) failing;	/* to be told why from the loop, not inside their caller */
	size_t nqueued;
	struct etcd_slot slots[ETCD_CONNS];
	struct event *later;		/* ends the failing calls */
	TAILQ_HEAD(, etcd_watch) watches;
	struct grave *graves;
	struct event *reap;
};

/* A connection to the current endpoint, each attempt bounded by timeout_s (0: the client's). */
struct evhttp_connection *etcd_connect(struct etcd *e, int timeout_s);
/* POST body to path on conn; done(req, arg) ends it. 0, or -1 (conn is then unusable). */
int etcd_post(struct etcd *e, struct evhttp_connection *conn, const char *path, const char *body,
    void (*done)(struct evhttp_request *, void *), void *arg, struct evhttp_request **reqp);
/* Free conn (and w, a watch) once the loop is out of their callbacks. */
void etcd_bury(struct etcd *e, struct evhttp_connection *conn, struct etcd_watch *w);
/* Parse one reply body into an object (unwrap: a stream's {"result": ...}); NULL with the words in buf. */
json_t *etcd_parse_reply(const char *data, size_t len, int code, int unwrap, char *buf, size_t cap);

/* etcd_call_new's flags */
#define ETCD_UNWRAP 1			/* a stream's reply: {"result": ...} */
#define ETCD_URGENT 2			/* the session's: ahead of the queue, on a connection of its own */
/* etcd_call.c: a call of body (taken) to path. 0, or -1 when out of memory. */
int etcd_call_new(struct etcd *e, const char *path, json_t *body, unsigned flags, etcd_done *cb,
    void *arg);
/* etcd_call.c: set up e's queue (0, or -1 when out of memory); drop every call without a word. */
int etcd_calls_init(struct etcd *e);
void etcd_calls_free(struct etcd *e);

#endif
