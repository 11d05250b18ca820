/*
 * metrics.c: GET /metrics in the Prometheus text exposition format.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>

#include "clock.h"
#include "codec.h"
#include "conn.h"
#include "delivery.h"
#include "log.h"
#include "metrics.h"
#include "pool.h"
#include "server.h"

static void
gauge(struct evbuffer *b, const char *name, const char *help, const char *type, uint64_t v)
{
	evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n%s %" PRIu64 "\n", name, help, name,
	    type, name, v);
}

static void
operations(struct evbuffer *b, const struct op_stats *st)
{
	evbuffer_add_printf(b, "# HELP chand_operations_total Requests answered, by operation and status.\n"
	    "# TYPE chand_operations_total counter\n");
	for (uint64_t op = 1; op < STATS_OPS; op++) {
		const char *name = proto_op_name(op);

		for (int status = 0; name && status <= STATUS_MAX; status++)
			if (st->count[op][status])
				evbuffer_add_printf(b, "chand_operations_total{op=\"%s\",status=\"%s\"} %" PRIu64 "\n",
				    name, status_name(status), st->count[op][status]);
	}
}

static void
latency(struct evbuffer *b, const struct op_stats *st)
{
	uint64_t cum = 0;

	evbuffer_add_printf(b, "# HELP chand_operation_duration_seconds Time from a request's arrival to its reply.\n"
	    "# TYPE chand_operation_duration_seconds histogram\n");
	for (int i = 0; i < STATS_BUCKETS; i++) {
		cum += st->bucket[i];
		if (i < STATS_BUCKETS - 1)
			evbuffer_add_printf(b, "chand_operation_duration_seconds_bucket{le=\"%g\"} %" PRIu64 "\n",
			    stats_bucket_le(i), cum);
		else
			evbuffer_add_printf(b, "chand_operation_duration_seconds_bucket{le=\"+Inf\"} %" PRIu64 "\n", cum);
	}
	evbuffer_add_printf(b, "chand_operation_duration_seconds_sum %.9f\n"
	    "chand_operation_duration_seconds_count %" PRIu64 "\n", st->sum_seconds, st->n);
}

/* Ack channels (PROTOCOL.md §16). */
static void
delivery_metrics(struct server *s, struct evbuffer *b)
{
	struct delivery_counters dc;

	delivery_counters(s->delivery, &dc);
	gauge(b, "chand_inflight_values", "Values delivered from ack channels and not yet acked.",
	    "gauge", dc.inflight);
	gauge(b, "chand_acked_total", "Values acked.", "counter", dc.acked);
	gauge(b, "chand_redelivered_total", "Values given back to their ack channel (NACK, ack_wait, "
	    "disconnect).", "counter", dc.redelivered);
	gauge(b, "chand_dead_lettered_total", "Values sent to a dead_letter channel after max_deliver.",
	    "counter", dc.dead_lettered);
	gauge(b, "chand_delivery_dropped_total", "Values dropped after max_deliver (no dead_letter "
	    "took them) or because their channel was deleted.", "counter", dc.dropped);
}

static void
render(struct server *s, struct evbuffer *b)
{
	struct engine *e = s->engine;
	uint64_t pending = 0, senders = engine_nsend_waiters(e);
	struct conn *c;

	TAILQ_FOREACH(c, &s->conns, link)
		pending += hmap_count(&c->pending);
	gauge(b, "chand_uptime_seconds", "Seconds since chand started.", "gauge",
	    (uint64_t)((clock_now_ns() - s->started_ns) / NSEC_PER_SEC));
	gauge(b, "chand_connections", "Open client connections.", "gauge", s->nconns);
	gauge(b, "chand_connections_total", "Client connections accepted.", "counter",
	    s->stats.connections_total);
	gauge(b, "chand_channels", "Live channels.", "gauge", engine_nchannels(e));
	gauge(b, "chand_buffered_values", "Values held in channel buffers.", "gauge",
	    engine_buffered_values(e));
	gauge(b, "chand_buffered_bytes", "Bytes held in channel buffers.", "gauge",
	    engine_buffered_bytes(e));
	evbuffer_add_printf(b, "# HELP chand_waiters Queued waiters by kind (a select counts once per case).\n"
	    "# TYPE chand_waiters gauge\nchand_waiters{kind=\"send\"} %" PRIu64 "\n"
	    "chand_waiters{kind=\"recv\"} %" PRIu64 "\n", senders, engine_nwaiters(e) - senders);
	gauge(b, "chand_pending_requests", "Requests waiting for their reply.", "gauge", pending);
	gauge(b, "chand_requests_total", "Request frames received.", "counter", s->stats.requests_total);
	gauge(b, "chand_protocol_errors_total", "Connections closed for malformed frames.", "counter",
	    s->stats.protocol_errors);
	gauge(b, "chand_links", "Running links (or, or-done, tee, bridge, fan-in, repeat, take, jobs).",
	    "gauge", s->stats.links_running);
	gauge(b, "chand_jobs", "Running fan-out jobs.", "gauge", s->stats.jobs_running);
	gauge(b, "chand_pool_workers", "Worker pool threads.", "gauge", pool_size(s->pool));
	gauge(b, "chand_pool_queue_depth", "Stage calls waiting for a worker.", "gauge",
	    pool_queued(s->pool));
	delivery_metrics(s, b);
	operations(b, &s->ops);
	latency(b, &s->ops);
}

static void
metrics_cb(struct evhttp_request *req, void *arg)
{
	struct server *s = arg;
	struct evbuffer *b;

	if (evhttp_request_get_command(req) != EVHTTP_REQ_GET) {
		evhttp_send_error(req, 405, "only GET");
		return;
	}
	if ((b = evbuffer_new()) == NULL) {
		evhttp_send_error(req, 500, "out of memory");
		return;
	}
	render(s, b);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
	    "text/plain; version=0.0.4; charset=utf-8");
	evhttp_send_reply(req, 200, "OK", b);
	evbuffer_free(b);
}

int
metrics_start(struct server *s, const char *addr, char **cause)
{
	char host[256];
	const char *colon = strrchr(addr, ':');
	char *end;
	long port;
	struct evhttp_bound_socket *bs;

	if (colon == NULL || (size_t)(colon - addr) >= sizeof host ||
	    (port = strtol(colon + 1, &end, 10)) < 0 || port > 65535 || *end != '\0') {
		if (asprintf(cause, "metrics_listen %s: must be HOST:PORT", addr) < 0)
			*cause = NULL;
		return -1;
	}
	snprintf(host, sizeof host, "%.*s", (int)(colon - addr), addr);
	if ((s->http = evhttp_new(s->base)) == NULL)
		goto fail;
	evhttp_set_allowed_methods(s->http, EVHTTP_REQ_GET);
	evhttp_set_cb(s->http, "/metrics", metrics_cb, s);
	if ((bs = evhttp_bind_socket_with_handle(s->http, host, (uint16_t)port)) == NULL)
		goto fail;
	{
		struct sockaddr_storage ss;
		socklen_t len = sizeof ss;

		getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&ss, &len);
		s->metrics_port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	}
	log_info("metrics address=%s port=%u path=/metrics", host, s->metrics_port);
	return 0;
fail:
	if (asprintf(cause, "metrics_listen %s: cannot listen", addr) < 0)
		*cause = NULL;
	metrics_stop(s);
	return -1;
}

void
metrics_stop(struct server *s)
{
	if (s->http) {
		evhttp_free(s->http);
		s->http = NULL;
	}
}
