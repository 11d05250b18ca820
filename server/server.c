/*
 * server.c: the server's life: create, listen, run, shut down, free.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/event_struct.h>
#include <openssl/ssl.h>

#include "acl.h"
#include "auth.h"
#include "clock.h"
#include "cluster.h"
#include "conn.h"
#include "conn_io.h"
#include "delivery.h"
#include "durable.h"
#include "listener.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "peer.h"
#include "pool.h"
#include "request.h"
#include "router.h"
#include "sdnotify.h"
#include "server.h"
#include "stage.h"
#include "tls.h"
#include "xhold.h"

static void
signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct server *s = arg;

	log_info("signal name=%s action=shutdown", sig == SIGTERM ? "SIGTERM" : "SIGINT");
	server_shutdown(s);
}

/*
 * A TLS error names the key whose file failed ("tls_cert: cannot load ...");
 * put where that key was set in front, as every other config error has it.
 */
static void
tls_cause(const struct config *cfg, char **cause)
{
	static const char *const keys[] = { "tls_cert", "tls_key", "tls_ca" };
	const char *key = "tls_listen", *rest;
	char *msg;

	if (*cause == NULL)
		return;
	rest = *cause;
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
		size_t len = strlen(keys[i]);

		if (strncmp(*cause, keys[i], len) == 0 && strncmp(*cause + len, ": ", 2) == 0) {
			key = keys[i];
			rest = *cause + len + 2;
		}
	}
	if (asprintf(&msg, "%s: key '%s': %s", config_origin(cfg, key), key, rest) < 0)
		return;
	free(*cause);
	*cause = msg;
}

/* New tokens and rules, and new certificates: built from fresh before anything changes. */
static int
reload_security(struct server *s, const struct config *fresh, struct auth **auth, char **cause)
{
	if (auth_new(auth, fresh, cause) < 0)
		return -1;
	if (s->tls != NULL && tls_reload(s->tls, fresh, cause) < 0) {
		tls_cause(fresh, cause);
		auth_free(*auth);
		*auth = NULL;
		return -1;
	}
	return 0;
}

static void
apply_security(struct server *s, struct auth *auth)
{
	auth_free(s->auth);
	s->auth = auth;
	acl_reload(s);		/* open connections: revoked tokens go */
}

/* Re-read the config file; apply what can change while running, say what changed. */
void
server_reload(struct server *s)
{
	struct config fresh;
	char *cause = NULL, changed[512], ignored[512];
	struct engine_limits el;
	struct auth *auth = NULL;
	struct conn *c;

	if (s->config_path == NULL) {
		log_warn("reload-skipped reason=\"started without a config file\"");
		return;
	}
	sd_send("RELOADING=1");
	/* the flags are applied again: they still win over the file */
	if (config_read(&fresh, s->config_path, s->overrides, &cause) < 0 ||
	    reload_security(s, &fresh, &auth, &cause) < 0 ||
	    config_reload(&s->cfg, &fresh, changed, sizeof changed, ignored, sizeof ignored) < 0) {
		auth_free(auth);
		log_error("reload-failed reason=\"%s\" note=\"the running configuration is kept\"",
		    cause ? cause : "out of memory");
		free(cause);
		config_free(&fresh);
		sd_send("READY=1");
		return;
	}
	config_free(&fresh);
	apply_security(s, auth);
	log_set_level((enum log_level)log_level_parse(s->cfg.log_level));
	log_set_format((enum log_format)log_format_parse(s->cfg.log_format));
	s->limits.max_value = s->cfg.max_value;
	el.max_channels = s->cfg.max_channels;
	el.max_buffered_bytes = s->cfg.max_buffered_bytes;
	engine_set_limits(s->engine, &el);
	loop_set_limit(s->loop, (int64_t)s->cfg.busy_poll_us * 1000);
	TAILQ_FOREACH(c, &s->conns, link) {
		io_limits_changed(c);
	}
	log_info("reload file=%s changed=%s", s->config_path, changed[0] ? changed : "nothing");
	if (ignored[0])
		log_warn("reload-ignored keys=%s reason=\"these need a restart\"", ignored);
	sd_send("READY=1");
	sd_status("ready; reloaded %s", s->config_path);
}

static void
hup_cb(evutil_socket_t sig, short what, void *arg)
{
	server_reload(arg);
}

static void
ignore_cb(evutil_socket_t sig, short what, void *arg)
{
	/* SIGPIPE: a peer that went away is seen as a write error instead */
}

static int
server_signals(struct server *s)
{
	s->sig_term = evsignal_new(s->base, SIGTERM, signal_cb, s);
	s->sig_int = evsignal_new(s->base, SIGINT, signal_cb, s);
	s->sig_pipe = evsignal_new(s->base, SIGPIPE, ignore_cb, s);
	s->sig_hup = evsignal_new(s->base, SIGHUP, hup_cb, s);
	if (!s->sig_term || !s->sig_int || !s->sig_pipe || !s->sig_hup)
		return -1;
	return evsignal_add(s->sig_term, NULL) | evsignal_add(s->sig_int, NULL) |
	    evsignal_add(s->sig_pipe, NULL) | evsignal_add(s->sig_hup, NULL);
}

static void
sweep_cb(evutil_socket_t fd, short what, void *arg)
{
	conn_sweep(arg);
}

/* hello_timeout and idle_timeout are checked ten times a second (redis's clientsCron, hz 10). */
static int
server_sweep(struct server *s)
{
	struct timeval tv = { .tv_sec = 0, .tv_usec = 100000 };

	if ((s->sweep = event_new(s->base, -1, EV_PERSIST, sweep_cb, s)) == NULL)
		return -1;
	return event_add(s->sweep, &tv);
}

/* What start-up builds from a config before it binds anything. */
struct parts {
	struct stages *stages;
	struct auth *auth;
	struct tls *tls;
};

static void
parts_free(struct parts *p)
{
	stages_free(p->stages);
	auth_free(p->auth);
	tls_free(p->tls);
}

/* Load the stage modules, build the auth table and the TLS context. */
static int
parts_new(struct parts *p, const struct config *cfg, char **cause)
{
	memset(p, 0, sizeof *p);
	*cause = NULL;
	/* a stage module that cannot be loaded stops the start (PROTOCOL.md §12) */
	if (stages_new(&p->stages, &cfg->stage_modules, cause) < 0 ||
	    auth_new(&p->auth, cfg, cause) < 0)
		goto fail;
	if (cfg->tls_listen[0] != '\0' && tls_new(&p->tls, cfg, cause) < 0) {
		tls_cause(cfg, cause);
		goto fail;
	}
	return 0;
fail:
	parts_free(p);
	return -1;
}

int
server_check_config(const struct config *cfg, char **cause)
{
	struct parts p;

	if (parts_new(&p, cfg, cause) < 0)
		return -1;
	parts_free(&p);
	return 0;
}

int
server_new(struct server **out, struct config *cfg, char **cause)
{
	struct server *s = calloc(1, sizeof *s);
	struct engine_limits el;
	struct parts p;

	*cause = NULL;
	if (s == NULL)
		goto fail;
	/* first, and as --check-config does it, so both refuse the same configs */
	if (parts_new(&p, cfg, cause) < 0)
		goto fail;
	s->stages = p.stages;
	s->auth = p.auth;
	s->tls = p.tls;
	s->cfg = *cfg;
	memset(cfg, 0, sizeof *cfg);
	TAILQ_INIT(&s->conns);
	s->started_ns = clock_now_ns();
	proto_out_init(&s->out);
	s->limits.max_value = s->cfg.max_value;
	s->limits.max_select_cases = (uint32_t)s->cfg.max_select_cases;
	el.max_channels = s->cfg.max_channels;
	el.max_buffered_bytes = s->cfg.max_buffered_bytes;
	s->cases = calloc(s->cfg.max_select_cases, sizeof *s->cases);
	s->ecases = calloc(s->cfg.max_select_cases, sizeof *s->ecases);
	if (s->cases == NULL || s->ecases == NULL)
		goto fail;
	/*
	 * A default base: libevent's coarse clock, no timerfd. The precise one
	 * adds a timerfd_settime to every loop iteration; deadlines are made
	 * exact in request.c instead.
	 */
	if ((s->base = event_base_new()) == NULL) {
		if (asprintf(cause, "event_base_new failed") < 0)
			*cause = NULL;
		goto fail;
	}
	if (loop_new(&s->loop, s->base, (int64_t)s->cfg.busy_poll_us * 1000) < 0 ||
	    engine_new(&s->engine, &el) != STATUS_OK ||
	    delivery_new(&s->delivery, s->engine, s->base) != STATUS_OK ||
	    (s->xhold = xhold_new(s->engine, s->delivery)) == NULL || server_signals(s) < 0 ||
	    io_server_init(s) < 0)
		goto fail;
	if (pool_new(&s->pool, s->base, (unsigned)s->cfg.workers) < 0 || acl_init(s) < 0 ||
	    server_sweep(s) < 0)
		goto fail;
	loop_set_poller(s->loop, pool_poll, s->pool);
	/* the journal is replayed before any listener opens */
	if (s->cfg.data_dir[0] != '\0' && durable_open(s, s->cfg.repair, &s->durable, cause) < 0)
		goto fail;
	*out = s;
	return 0;
fail:
	if (*cause == NULL && asprintf(cause, "out of memory") < 0)
		*cause = NULL;
	server_free(s);
	return -1;
}

static void server_watchdog(struct server *s);

static int
report_port(uint16_t port, const char *port_file, int ready_fd, char **cause)
{
	char buf[16];
	int n = snprintf(buf, sizeof buf, "%u\n", port);

	if (port_file != NULL) {
		FILE *f = fopen(port_file, "w");
		bool written = f != NULL && fputs(buf, f) >= 0;

		if (f != NULL && fclose(f) != 0)
			written = false;
		if (!written) {
			if (asprintf(cause, "--port-file %s: %s", port_file, strerror(errno)) < 0)
				*cause = NULL;
			return -1;
		}
	}
	if (ready_fd >= 0) {
		if (write(ready_fd, buf, (size_t)n) != n)
			log_warn("ready-fd fd=%d reason=\"%s\"", ready_fd, strerror(errno));
		close(ready_fd);
	}
	return 0;
}

/* Socket activation: listen on what systemd passed, instead of the configured addresses. */
static int
listen_inherited(struct server *s, int n, uint16_t *bound, char **cause)
{
	log_info("socket-activation fds=%d note=\"listen, port and unix_socket are not used\"", n);
	for (int i = 0; i < n; i++) {
		uint16_t port = 0;

		if (listener_fd(s, 3 + i, &port, cause) < 0)
			return -1;
		if (*bound == 0)
			*bound = port;
	}
	return 0;
}

static int
listen_tls(struct server *s, char **cause)
{
	char host[256];
	uint16_t port;

	if (config_split_hostport(s->cfg.tls_listen, host, sizeof host, &port) < 0) {
		if (asprintf(cause, "tls_listen %s: must be HOST:PORT", s->cfg.tls_listen) < 0)
			*cause = NULL;
		return -1;
	}
	return listener_tcp(s, host, port, true, &s->tls_port, cause);
}

/* peer.c's in-process connection to this node: served as if accepted (PROTOCOL.md §17). */
static int
self_accept(void *arg, struct bufferevent *bev)
{
	struct server *s = arg;
	char name[AUTH_NAME_MAX];

	tls_self_name(s->tls, name, sizeof name);
	return conn_accept_pair(s, bev, name);
}

/* A cluster node: the etcd session and the router; nothing is waited for. */
static int
cluster_start(struct server *s, char **cause)
{
	struct cluster_stats *cs;
	SSL_CTX *ctx = NULL;
	char *why = NULL;

	if (cluster_new(&s->cluster, s->base, &s->cfg, &why) < 0) {
		if (asprintf(cause, "%s: key 'cluster_etcd': %s", config_origin(&s->cfg, "cluster_etcd"),
		    why ? why : "out of memory") < 0)
			*cause = NULL;
		free(why);
		return -1;
	}
	/* anonymous names say where they live: "@" and this node (§17) */
	if (engine_set_maker(s->engine, cluster_self(s->cluster)) != STATUS_OK) {
		if (asprintf(cause, "node_name: '%s' is longer than %d bytes", cluster_self(s->cluster),
		    ENGINE_MAKER_MAX) < 0)
			*cause = NULL;
		return -1;
	}
	cs = cluster_counters(s->cluster);	/* peer.c bumps two of them */
	/* with tls_listen the nodes speak TLS to each other (PROTOCOL.md §17) */
	if (s->cfg.tls_listen[0] != '\0' && (ctx = tls_client_ctx(&s->cfg, &why)) == NULL) {
		if (asprintf(cause, "cluster: TLS to the other nodes: %s", why ? why : "out of memory") < 0)
			*cause = NULL;
		free(why);
		return -1;
	}
	/* a reply may be larger than any request: a max_frame of slack */
	if (peers_new(&s->peers, s->base, cluster_self(s->cluster), s->cfg.cluster_token, ctx,
	    2 * s->cfg.max_frame, &cs->peer_errors, &cs->peers) < 0) {
		SSL_CTX_free(ctx);
		*cause = NULL;
		return -1;
	}
	peers_on_self(s->peers, self_accept, s);
	if (router_new(&s->router, s, s->cluster) < 0) {
		*cause = NULL;
		return -1;
	}
	return 0;
}

int
server_listen(struct server *s, const char *port_file, int ready_fd, char **cause)
{
	uint16_t bound = 0;
	int inherited = sd_inherited_fds();

	if (inherited > 0) {
		if (listen_inherited(s, inherited, &bound, cause) < 0)
			return -1;
	} else {
		if (s->cfg.listen[0] != '\0' &&
		    listener_tcp(s, s->cfg.listen, (uint16_t)s->cfg.port, false, &bound, cause) < 0)
			return -1;
		if (s->cfg.tls_listen[0] != '\0' && listen_tls(s, cause) < 0)
			return -1;
		if (s->cfg.unix_socket[0] != '\0' &&
		    listener_unix(s, s->cfg.unix_socket, (mode_t)s->cfg.unix_mode, cause) < 0)
			return -1;
	}
	if (s->cfg.metrics_listen[0] != '\0' && metrics_start(s, s->cfg.metrics_listen, cause) < 0)
		return -1;
	if (s->cfg.cluster_etcd[0] != '\0' && cluster_start(s, cause) < 0)
		return -1;
	if (report_port(bound, port_file, ready_fd, cause) < 0)
		return -1;
	server_watchdog(s);
	sd_send("READY=1");
	sd_status("ready; listening on %s:%u", inherited ? "inherited sockets" : s->cfg.listen, bound);
	return 0;
}

static void
watchdog_cb(evutil_socket_t fd, short what, void *arg)
{
	sd_send("WATCHDOG=1");
}

/* WatchdogSec=: ping systemd at half the interval, from the loop, so a stuck loop is noticed. */
static void
server_watchdog(struct server *s)
{
	uint64_t usec = sd_watchdog_usec();
	struct timeval tv;

	if (usec == 0)
		return;
	tv.tv_sec = (time_t)(usec / 2 / 1000000);
	tv.tv_usec = (suseconds_t)(usec / 2 % 1000000);
	s->watchdog = event_new(s->base, -1, EV_PERSIST, watchdog_cb, s);
	if (s->watchdog)
		event_add(s->watchdog, &tv);
	log_info("watchdog interval_ms=%" PRIu64, usec / 1000);
}

int
server_run(struct server *s)
{
	if (loop_run(s->loop) < 0) {
		log_error("event-loop-failed");
		return 1;
	}
	/* the lease's revoke, so that the node's keys go now, not node_ttl later; the call's timeout bounds it */
	while (cluster_leaving(s->cluster) && event_base_loop(s->base, EVLOOP_ONCE) == 0)
		;
	log_info("exit connections=%" PRIu64 " requests=%" PRIu64, s->stats.connections_total,
	    s->stats.requests_total);
	return 0;
}

static void
shutdown_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct server *s = arg;

	log_warn("shutdown-timeout connections=%" PRIu64 " action=close-now", s->nconns);
	while (!TAILQ_EMPTY(&s->conns))
		conn_free(TAILQ_FIRST(&s->conns));
	event_base_loopexit(s->base, NULL);
}

void
server_shutdown(struct server *s)
{
	struct conn *c, *next;
	struct timeval tv = {
		.tv_sec = (time_t)(s->cfg.shutdown_timeout_ms / 1000),
		.tv_usec = (suseconds_t)(s->cfg.shutdown_timeout_ms % 1000) * 1000,
	};

	if (s->shutting_down)
		return;
	s->shutting_down = true;
	metrics_stop(s);
	cluster_stop(s->cluster);	/* the lease goes now, and the node's keys with it */
	sd_send("STOPPING=1");
	sd_status("shutting down; %" PRIu64 " connections to flush", s->nconns);
	listener_free_all(s);
	/* every pending request gets SHUTTING_DOWN; connections flush and close */
	/* glibc's sys/queue.h has no TAILQ_FOREACH_SAFE */
	for (c = TAILQ_FIRST(&s->conns); c != NULL; c = next) {
		next = TAILQ_NEXT(c, link);
		conn_close_after_flush(c, 0, STATUS_SHUTTING_DOWN, "server is shutting down");
	}
	s->shutdown_timer = evtimer_new(s->base, shutdown_timeout_cb, s);
	if (s->shutdown_timer)
		evtimer_add(s->shutdown_timer, &tv);
	server_conn_gone(s);
}

void
server_conn_gone(struct server *s)
{
	if (s->shutting_down && TAILQ_EMPTY(&s->conns))
		event_base_loopexit(s->base, NULL);
}

void
server_free(struct server *s)
{
	sigset_t stop;

	if (s == NULL)
		return;
	while (!TAILQ_EMPTY(&s->conns))
		conn_free(TAILQ_FIRST(&s->conns));
	listener_free_all(s);
	request_free_pool(&s->free_requests);
	/*
	 * Already exiting: a late SIGTERM must not kill the teardown
	 * (libcrypto's atexit is slow). Freeing the signal events puts back
	 * the default action, so block the signals across that and ignore
	 * them before unblocking: one that came meanwhile is then discarded.
	 */
	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	sigprocmask(SIG_BLOCK, &stop, NULL);
	if (s->sig_term)
		event_free(s->sig_term);
	if (s->sig_int)
		event_free(s->sig_int);
	signal(SIGTERM, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	sigprocmask(SIG_UNBLOCK, &stop, NULL);
	if (s->sig_pipe)
		event_free(s->sig_pipe);
	if (s->sig_hup)
		event_free(s->sig_hup);
	metrics_stop(s);
	if (s->shutdown_timer)
		event_free(s->shutdown_timer);
	if (s->watchdog)
		event_free(s->watchdog);
	if (s->sweep)
		event_free(s->sweep);
	io_server_free(s);
	/* held requests first: the cluster's etcd calls end without calling back into them */
	router_free(s->router);
	peers_free(s->peers);
	cluster_free(s->cluster);
	/* after the connections (links are stopped), before the engine (their holds go) */
	durable_stop(s->durable);
	pool_free(s->pool);
	/* after the pool: its last commit is back; before the engine it hooks */
	durable_free(s->durable);
	stages_free(s->stages);
	delivery_free(s->delivery);
	xhold_free(s->xhold);
	engine_free(s->engine);
	acl_destroy(s);
	auth_free(s->auth);
	tls_free(s->tls);
	loop_free(s->loop);
	if (s->base)
		event_base_free(s->base);
	proto_out_destroy(&s->out);
	free(s->cases);
	free(s->ecases);
	config_free(&s->cfg);
	free(s);
}
