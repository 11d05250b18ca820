/*
 * metrics.h: the Prometheus text endpoint (GET /metrics) on its own address
 * (the metrics_listen key; off when empty), served on the loop thread.
 *
 * metrics_http.c is the endpoint: one request per connection, then close;
 * at most metrics_max_connections at once (and never more than a sixteenth
 * of RLIMIT_NOFILE, so that protocol clients keep their descriptors), each
 * closed metrics_timeout after it was accepted, and, with metrics_token set,
 * only for "Authorization: Bearer TOKEN". metrics.c renders the text.
 * Loop thread only.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef CHAND_METRICS_H
#define CHAND_METRICS_H

struct evbuffer;
struct server;

/* Listen on "HOST:PORT" (s->metrics_port gets the port). Returns 0, or -1 with a malloc'd *cause. */
int metrics_start(struct server *s, const char *addr, char **cause);
/* Close the listener and every open connection; safe when not started. */
void metrics_stop(struct server *s);
/* Append the exposition text of s's metrics to b. */
void metrics_render(struct server *s, struct evbuffer *b);

#endif
