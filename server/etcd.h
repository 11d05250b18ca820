/*
 * etcd.h: an etcd v3 client over etcd's HTTP/JSON gateway, on chand's own
 * event loop (libevent's evhttp; no thread, no blocking call).
 *
 * Every call is asynchronous: it returns at once and its completion
 * callback runs later, from the loop, exactly once, with the parsed reply
 * or an error. A call that cannot reach an endpoint (refused, reset, timed
 * out) is sent again to the next endpoint, each endpoint tried once per
 * call; an endpoint that answers, even with an error, is kept for the next
 * calls. A reply that is not what etcd sends (not JSON, not an object, an
 * HTTP error) is an error, never a crash.
 *
 * Calls go in the order they are made over at most ETCD_CONNS kept
 * HTTP/1.1 connections, one call at a time on each; the others wait, at
 * most ETCD_MAX_QUEUED of them (past that a call fails, "too many etcd
 * calls are waiting"). The session's calls (the lease's, and puts: the
 * node key) go ahead of the waiting ones and have a connection kept for
 * them alone, so a burst of lookups never delays a keepalive past the
 * lease's time to live, and never opens a connection per lookup.
 *
 * Keys and values are bytes; etcd's JSON carries them in base64 (OpenSSL's
 * EVP_EncodeBlock and EVP_DecodeBlock). int64 fields come as JSON strings.
 *
 * Ownership: the caller owns struct etcd and each struct etcd_watch;
 * etcd_free ends every call and watch still running without calling their
 * callbacks (free the watches first, or let etcd_free do it). A reply passed
 * to a callback is borrowed for the callback's duration.
 * Thread-safety: none; loop thread only.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef CHAND_ETCD_H
#define CHAND_ETCD_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct event_base;
struct ssl_ctx_st;		/* OpenSSL's SSL_CTX */
struct etcd;
struct etcd_watch;

#define ETCD_CONNS 8
#define ETCD_MAX_QUEUED 65536

/* One call's end: reply (an object) on success, or NULL and why. */
typedef void etcd_done(void *arg, json_t *reply, const char *why);
/*
 * A watch's news: one "result" object of the stream (events, or the
 * creation notice); or result NULL and why, once, when the stream ended or
 * failed. The watch is then over: free it (not from inside this callback).
 */
typedef void etcd_event(void *arg, json_t *result, const char *why);

/*
 * endpoints: comma-separated http:// URLs (host:port, no path). timeout_ms
 * bounds each attempt of a call. Returns 0, or -1 with a malloc'd *cause.
 */
int etcd_new(struct etcd **out, struct event_base *base, const char *endpoints,
    unsigned timeout_ms, char **cause);
/*
 * The same, and https:// URLs too, spoken with ssl (a client SSL_CTX that
 * verifies etcd's certificate; etcd_new_tls takes a reference of its own):
 * etcd's certificate must name the URL's host or address (sent as SNI).
 */
int etcd_new_tls(struct etcd **out, struct event_base *base, const char *endpoints,
    unsigned timeout_ms, struct ssl_ctx_st *ssl, char **cause);
void etcd_free(struct etcd *e);

/* POST body (taken, even on error) to path ("/v3/kv/range"). Returns 0, or -1 when out of memory. */
int etcd_call(struct etcd *e, const char *path, json_t *body, etcd_done *cb, void *arg);

/* The key range [key, end) with end NULL for key alone; prefix: every key starting with key. */
int etcd_range(struct etcd *e, const char *key, int prefix, etcd_done *cb, void *arg);
/* Put key = value under lease (0: none): a session's call (the node key), ahead of the queue. */
int etcd_put(struct etcd *e, const char *key, const char *value, int64_t lease, etcd_done *cb,
    void *arg);
int etcd_delete(struct etcd *e, const char *key, etcd_done *cb, void *arg);
/* A txn: put key = value under lease if key does not exist (create_revision == 0), else range it. */
int etcd_create(struct etcd *e, const char *key, const char *value, int64_t lease, etcd_done *cb,
    void *arg);
int etcd_lease_grant(struct etcd *e, int64_t ttl_s, etcd_done *cb, void *arg);
/* The reply is the stream's one "result" object (no TTL in it: the lease is gone). */
int etcd_lease_keepalive(struct etcd *e, int64_t id, etcd_done *cb, void *arg);
int etcd_lease_revoke(struct etcd *e, int64_t id, etcd_done *cb, void *arg);

/* Watch every key under prefix from revision start_rev on. Returns 0, or -1 when out of memory. */
int etcd_watch_new(struct etcd_watch **out, struct etcd *e, const char *prefix, int64_t start_rev,
    etcd_event *cb, void *arg);
void etcd_watch_free(struct etcd_watch *w);

/* ---- reading replies ---------------------------------------------------------- */

/* An int64 field of o (a JSON string or integer); absent is 0 (etcd omits zeroes). -1 when malformed. */
int etcd_int(const json_t *o, const char *field, int64_t *out);
/* A base64 field of o, decoded to a malloc'd NUL-terminated string; absent is "". -1 when malformed. */
int etcd_bytes(const json_t *o, const char *field, char **out, size_t *len);
/* The last etcd endpoint that answered, for log lines. */
const char *etcd_endpoint(const struct etcd *e);

/*
 * Every call's time from when it was made to its callback (its wait for a
 * connection and failover included; watches are not calls), on
 * CLOCK_MONOTONIC, for metrics.c.
 */
#define ETCD_BUCKETS 12			/* the last is +Inf */
struct etcd_stats {
	uint64_t calls, errors;		/* calls ended; those that ended in an error */
	uint64_t last_ns, max_ns, sum_ns;
	uint64_t bucket[ETCD_BUCKETS];	/* calls by time, not cumulative */
};
const struct etcd_stats *etcd_stats(const struct etcd *e);
/* Bucket i's upper bound in seconds, i < ETCD_BUCKETS - 1. */
double etcd_bucket_le(int i);

#endif
