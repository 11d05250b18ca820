/*
 * metrics.c: GET /metrics in the Prometheus text exposition format: chand's
 * own series, chand_build_info and the standard process_* ones.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "clock.h"
#include "cluster.h"
#include "codec.h"
#include "conn.h"
#include "delivery.h"
#include "durable.h"
#include "etcd.h"
#include "log.h"
#include "loop.h"
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

/* Durable channels' journal (PROTOCOL.md §16), with data_dir. */
static void
journal_metrics(struct server *s, struct evbuffer *b)
{
	struct durable_stats ds;

	if (s->durable == NULL)
		return;
	durable_stats(s->durable, &ds);
	gauge(b, "chand_journal_bytes", "Size of the journal's segment files.", "gauge", ds.log_bytes);
	gauge(b, "chand_journal_channels", "Durable channels.", "gauge", ds.channels);
	gauge(b, "chand_journal_syncs_total", "fdatasync calls of the journal that succeeded.", "counter",
	    ds.syncs);
	evbuffer_add_printf(b, "# HELP chand_journal_fsync_seconds The last journal fdatasync's time.\n"
	    "# TYPE chand_journal_fsync_seconds gauge\nchand_journal_fsync_seconds %.9f\n"
	    "# HELP chand_journal_fsync_max_seconds The longest journal fdatasync's time.\n"
	    "# TYPE chand_journal_fsync_max_seconds gauge\nchand_journal_fsync_max_seconds %.9f\n",
	    (double)ds.last_sync_ns / 1e9, (double)ds.max_sync_ns / 1e9);
	gauge(b, "chand_journal_errors_total", "Journal commits and syncs that failed.", "counter",
	    ds.errors);
	gauge(b, "chand_journal_failing", "1 while the journal cannot be written (durable SENDs get "
	    "STORAGE).", "gauge", ds.failing);
	gauge(b, "chand_journal_compactions_total", "Journal compactions completed.", "counter",
	    ds.compactions);
}

static void sample(struct evbuffer *b, const char *name, const char *help, const char *type,
    double v);

/* The loop's busy polling (loop.h, config busy_poll_us). */
static void
loop_metrics(struct server *s, struct evbuffer *b)
{
	struct loop_stats st;

	loop_stats(s->loop, &st);
	gauge(b, "chand_loop_waits_total", "Event loop iterations that waited in the kernel for an event.",
	    "counter", st.waits);
	gauge(b, "chand_loop_poll_hits_total", "Busy polls that found work: wake-ups saved.", "counter",
	    st.poll_hits);
	gauge(b, "chand_loop_poll_preempted_total", "Polling the scheduler cut into (other threads "
	    "wanted the CPU): the window was halved.", "counter", st.poll_preempted);
	sample(b, "chand_loop_poll_seconds_total", "Time the loop busy-polled and found nothing.",
	    "counter", (double)st.poll_ns / 1e9);
	sample(b, "chand_loop_poll_window_seconds", "How long the loop polls now before it sleeps "
	    "(adaptive, at most busy_poll_us).", "gauge", (double)st.window_ns / 1e9);
}

/* The etcd calls' times (etcd.c, CLOCK_MONOTONIC), a histogram like the operations'. */
static void
etcd_latency(struct evbuffer *b, const struct etcd_stats *st)
{
	uint64_t cum = 0;

	evbuffer_add_printf(b, "# HELP chand_cluster_etcd_call_duration_seconds Time of an etcd call "
	    "from its first attempt to its end (failover included).\n"
	    "# TYPE chand_cluster_etcd_call_duration_seconds histogram\n");
	for (int i = 0; i < ETCD_BUCKETS; i++) {
		cum += st->bucket[i];
		if (i < ETCD_BUCKETS - 1)
			evbuffer_add_printf(b, "chand_cluster_etcd_call_duration_seconds_bucket{le=\"%g\"} %"
			    PRIu64 "\n", etcd_bucket_le(i), cum);
		else
			evbuffer_add_printf(b, "chand_cluster_etcd_call_duration_seconds_bucket{le=\"+Inf\"} %"
			    PRIu64 "\n", cum);
	}
	evbuffer_add_printf(b, "chand_cluster_etcd_call_duration_seconds_sum %.9f\n"
	    "chand_cluster_etcd_call_duration_seconds_count %" PRIu64 "\n",
	    (double)st->sum_ns / 1e9, st->calls);
	sample(b, "chand_cluster_etcd_call_last_seconds", "Time of the last etcd call.", "gauge",
	    (double)st->last_ns / 1e9);
	sample(b, "chand_cluster_etcd_call_max_seconds", "Time of the slowest etcd call since start.",
	    "gauge", (double)st->max_ns / 1e9);
}

/* A cluster node's series (PROTOCOL.md §17): the STATS cluster_* keys under the same names. */
static void
cluster_metrics(struct server *s, struct evbuffer *b)
{
	const struct cluster_stats *cs = cluster_stats(s->cluster);

	gauge(b, "chand_cluster_serving", "1 while this node's lease is sure to be alive (not fenced).",
	    "gauge", cs->serving);
	gauge(b, "chand_cluster_nodes", "Live nodes this node knows, itself included.", "gauge",
	    cs->nodes);
	gauge(b, "chand_cluster_owned", "Channels this node owns under its current lease.", "gauge",
	    cs->owned);
	gauge(b, "chand_cluster_forwarded_total", "Requests forwarded to their channel's owner.",
	    "counter", cs->forwarded);
	gauge(b, "chand_cluster_moved_total", "MOVED replies sent.", "counter", cs->moved);
	gauge(b, "chand_cluster_xselect_retries_total",
	    "Cross-node selects polled again: a granted send case was not ready any more.", "counter",
	    cs->xselect_retries);
	gauge(b, "chand_cluster_xselect_firm_total",
	    "Cross-node selects answered with a case its owner fired for good at the poll (no XSETTLE).",
	    "counter", cs->xselect_firm);
	gauge(b, "chand_cluster_unavailable_total", "UNAVAILABLE replies sent by the router.",
	    "counter", cs->unavailable);
	gauge(b, "chand_cluster_peers", "Node-to-node connections up.", "gauge", cs->peers);
	gauge(b, "chand_cluster_peer_errors_total", "Node-to-node connections that failed.", "counter",
	    cs->peer_errors);
	gauge(b, "chand_cluster_sessions_total", "Leases granted since start.", "counter",
	    cs->sessions);
	gauge(b, "chand_cluster_etcd_errors_total", "etcd calls that failed.", "counter",
	    cs->etcd_errors);
	etcd_latency(b, cluster_etcd_stats(s->cluster));
}

/* Seconds since the epoch at boot (/proc/stat's btime), or 0. */
static uint64_t
boot_time(void)
{
	static uint64_t btime;
	char line[256];
	FILE *f;

	if (btime != 0 || (f = fopen("/proc/stat", "r")) == NULL)
		return btime;
	while (fgets(line, sizeof line, f) != NULL)
		if (sscanf(line, "btime %" SCNu64, &btime) == 1)
			break;
	fclose(f);
	return btime;
}

static uint64_t
open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	uint64_t n = 0;

	if (d == NULL)
		return 0;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1;	/* not opendir's own */
}

static void
sample(struct evbuffer *b, const char *name, const char *help, const char *type, double v)
{
	evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n%s %.15g\n", name, help, name, type,
	    name, v);
}

/* The process_* series every Prometheus client library exports, from /proc/self/stat. */
static void
process(struct evbuffer *b)
{
	unsigned long long utime, stime, start, vsize, rss;
	double tick = (double)sysconf(_SC_CLK_TCK);
	struct rlimit rl;
	char buf[1024], *p;
	FILE *f = fopen("/proc/self/stat", "r");
	size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;

	if (f != NULL)
		fclose(f);
	buf[n] = '\0';
	/* fields 14, 15, 22, 23 and 24 (proc(5)), after the command's closing parenthesis */
	if ((p = strrchr(buf, ')')) == NULL || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u "
	    "%*u %*u %llu %llu %*d %*d %*d %*d %*d %*d %llu %llu %llu", &utime, &stime, &start,
	    &vsize, &rss) != 5)
		return;
	sample(b, "process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
	    "counter", (double)(utime + stime) / tick);
	sample(b, "process_resident_memory_bytes", "Resident memory size in bytes.", "gauge",
	    (double)rss * (double)sysconf(_SC_PAGESIZE));
	sample(b, "process_virtual_memory_bytes", "Virtual memory size in bytes.", "gauge",
	    (double)vsize);
	sample(b, "process_open_fds", "Number of open file descriptors.", "gauge",
	    (double)open_fds());
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
		sample(b, "process_max_fds", "Maximum number of open file descriptors.", "gauge",
		    (double)rl.rlim_cur);
	sample(b, "process_start_time_seconds", "Start time of the process since unix epoch in "
	    "seconds.", "gauge", (double)boot_time() + (double)start / tick);
}

void
metrics_render(struct server *s, struct evbuffer *b)
{
	struct engine *e = s->engine;
	uint64_t pending = 0, senders = engine_nsend_waiters(e);
	struct conn *c;

	TAILQ_FOREACH(c, &s->conns, link)
		pending += hmap_count(&c->pending);
	evbuffer_add_printf(b, "# HELP chand_build_info chand's version.\n# TYPE chand_build_info gauge\n"
	    "chand_build_info{version=\"%s\"} 1\n", PACKAGE_VERSION);
	gauge(b, "chand_uptime_seconds", "Seconds since chand started.", "gauge",
	    (uint64_t)((clock_now_ns() - s->started_ns) / NSEC_PER_SEC));
	gauge(b, "chand_connections_current", "Open client connections.", "gauge", s->nconns);
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
	gauge(b, "chand_waiters_held", "Waiters counted against max_waiters.", "gauge",
	    s->stats.waiters_held);
	gauge(b, "chand_held_bytes", "Value bytes counted against max_held_bytes.", "gauge",
	    s->stats.held_bytes);
	gauge(b, "chand_input_buffer_bytes", "Bytes of partly received frames, counted against "
	    "max_input_buffer_bytes.", "gauge", s->input_held);
	gauge(b, "chand_requests_total", "Request frames received.", "counter", s->stats.requests_total);
	gauge(b, "chand_protocol_errors_total", "Connections closed for malformed frames.", "counter",
	    s->stats.protocol_errors);
	gauge(b, "chand_links", "Running links (or, or-done, tee, bridge, fan-in, repeat, take, jobs).",
	    "gauge", s->stats.links_running);
	gauge(b, "chand_jobs", "Running fan-out jobs.", "gauge", s->stats.jobs_running);
	gauge(b, "chand_pool_workers", "Worker pool threads.", "gauge", pool_size(s->pool));
	gauge(b, "chand_pool_queue_depth", "Stage calls waiting for a worker.", "gauge",
	    pool_queued(s->pool));
	loop_metrics(s, b);
	delivery_metrics(s, b);
	journal_metrics(s, b);
	if (s->cluster != NULL)
		cluster_metrics(s, b);
	operations(b, &s->ops);
	latency(b, &s->ops);
	process(b);
}

