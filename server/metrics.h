/*
 * metrics.h: the Prometheus text endpoint (GET /metrics), served by
 * libevent's evhttp on the loop thread, on its own address (the
 * metrics_listen key; off when empty). Loop thread only.
 */
#ifndef CHAND_METRICS_H
#define CHAND_METRICS_H

struct server;

/* Listen on "HOST:PORT". Returns 0, or -1 with a malloc'd *cause. */
int metrics_start(struct server *s, const char *addr, char **cause);
void metrics_stop(struct server *s);

#endif
