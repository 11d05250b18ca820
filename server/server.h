/*
 * server.h: the chand server object: one event loop, the engine, the
 * listeners and every connection.
 *
 * Ownership: the server owns the engine, the listeners and the
 * connections; server_free releases all of them. Thread-safety: none; all
 * of it belongs to the loop thread (DESIGN.md §3). The struct is shared by
 * the server's own modules (conn, request, dispatch, listener), never by
 * anything outside server/.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef CHAND_SERVER_H
#define CHAND_SERVER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

#include <event2/event.h>

#include "clock.h"
#include "codec.h"
#include "config.h"
#include "engine.h"
#include "hmap.h"
#include "stats.h"

struct auth;
struct cluster;
struct conn;
struct delivery;
struct durable;
struct listener;
struct loop;
struct metrics;
struct peers;
struct pool;
struct request;
struct router;
struct stages;
struct tls;

TAILQ_HEAD(conn_list, conn);

struct server_stats {
	uint64_t connections_total;
	uint64_t requests_total;
	uint64_t protocol_errors;
	uint64_t links_running;		/* links started and not yet stopped, jobs included */
	uint64_t jobs_running;		/* fan-out jobs among them */
	uint64_t waiters_held, held_bytes;	/* charged by every pending request (budget.h) */
};

/* The request being dispatched, so that its reply's status can be counted. */
struct current_request {
	struct conn *conn;		/* NULL outside dispatch */
	uint64_t id;
	int status;			/* of its reply, once written */
	bool deferred;			/* it asked for a deferred reply (§15) */
	bool counted;			/* parked and already ended: request_unpark counted it */
	int64_t start_ns;		/* when dispatch began (clock_now_ns) */
};

struct server {
	struct event_base *base;
	struct loop *loop;		/* drives base: dispatch with busy polling */
	struct engine *engine;
	struct delivery *delivery;	/* values in flight on ack channels */
	struct xhold *xhold;		/* values held for cross-node SELECTs (§17) */
	struct durable *durable;	/* the journal of durable channels; NULL without data_dir */
	struct config cfg;
	struct proto_limits limits;

	struct listener *listeners;
	struct conn_list conns;
	struct conn_list pending_writes;	/* replies to write before the loop sleeps (conn_io.c) */
	struct event *flush;		/* runs after every ready callback: writes them */
	uint8_t *rbuf;			/* scratch: what one read of a plain socket got */
	uint64_t nconns;
	uint64_t input_held;		/* bytes in the connections' input buffers: partial frames (conn.c) */
	uint64_t next_conn_id;

	struct proto_out out;		/* scratch: replies are encoded here, then moved */
	struct proto_case *cases;	/* scratch: decoded SELECT cases */
	struct engine_case *ecases;	/* scratch: SELECT cases for the engine */
	struct request *free_requests;	/* recycled pending-request records */
	struct pool *pool;		/* worker threads for fan-out stages */
	struct stages *stages;		/* built-in and module stages */

	struct event *sig_term, *sig_int, *sig_pipe, *sig_hup;
	const char *config_path;	/* for SIGHUP; NULL when started without one */
	const struct config_list *overrides;	/* the flags, applied again on SIGHUP (main's) */
	struct event *shutdown_timer;
	struct event *watchdog;		/* WATCHDOG=1 to systemd, when asked for */
	bool shutting_down;
	int64_t started_ns;
	struct server_stats stats;
	struct op_stats ops;		/* replies by op and status, latency */
	struct current_request current;
	struct metrics *metrics;	/* /metrics, when metrics_listen is set */
	uint16_t metrics_port;

	struct tls *tls;		/* the TLS context, when tls_listen is set */
	uint16_t tls_port;		/* the TLS listener's bound port */
	struct auth *auth;		/* tokens and rules; replaced on SIGHUP */
	struct hmap idents;		/* struct ident by name (acl.c) */
	struct event *sweep;		/* hello_timeout and idle_timeout */

	struct cluster *cluster;	/* the etcd session, when cluster_etcd is set (cluster.c) */
	struct router *router;		/* with it: local, forwarded, MOVED or UNAVAILABLE per request */
	struct peers *peers;		/* with it: the connections to other nodes (peer.c) */
};

/*
 * Everything start-up builds from cfg before it binds a socket: the stage
 * modules, the auth table (tokens_file, the rules' rights) and the TLS
 * context. --check-config runs it, then frees what it built. Returns 0, or
 * -1 with a malloc'd *cause naming the file, line and key.
 */
int server_check_config(const struct config *cfg, char **cause);
/*
 * Create a server from cfg (moved into the server: the caller must not free
 * it). On error returns -1 with a malloc'd *cause.
 */
int server_new(struct server **out, struct config *cfg, char **cause);
/*
 * Open every configured listener. The first TCP listener's bound port is
 * logged, written to port_file (if not NULL) and as "PORT\n" to ready_fd (if
 * >= 0, which is then closed): how tests learn an ephemeral port.
 */
int server_listen(struct server *s, const char *port_file, int ready_fd, char **cause);
/* Run until shut down; returns the process exit code. */
int server_run(struct server *s);
void server_free(struct server *s);

/* SIGHUP: re-read config_path, apply overrides again, and apply the keys that may change (config_reload). */
void server_reload(struct server *s);
/* Begin a graceful shutdown (PROTOCOL.md §10). */
void server_shutdown(struct server *s);
/* A connection finished closing; during shutdown the last one ends the loop. */
void server_conn_gone(struct server *s);

/* When a request made now began: inside a dispatch, its clock reading (no second one); else the clock. */
static inline int64_t
server_request_start(const struct server *s)
{
	return s->current.conn != NULL ? s->current.start_ns : clock_now_ns();
}

#endif
