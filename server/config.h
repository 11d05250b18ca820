/*
 * config.h: chand's configuration: defaults, the config file, overrides.
 *
 * The file is lines of `key = value`; `#` starts a comment. Every key is
 * in the table in config.c and documented in etc/chand.conf and
 * chand.conf(5). Unknown keys, bad values, duplicates and an unterminated
 * quote are errors that name the file, line and key. Flags (-l, -p, -v,
 * --set KEY=VALUE) are overrides applied after the file, at start-up and on
 * every SIGHUP.
 *
 * Ownership: a struct config owns its strings; config_free releases them.
 * Not thread-safe: the loop thread owns the live config.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef CHAND_CONFIG_H
#define CHAND_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

/* A repeatable key's entries, in file order, each with where it was set. */
struct config_item {
	char *value;
	char *origin;			/* "FILE:LINE", or the flag that set it */
};
struct config_list {
	struct config_item *items;
	size_t n;
};

struct config {
	char **origins;			/* per key of config.c's table: "FILE:LINE", the flag, or NULL */
	char *listen;			/* TCP address, "" for none */
	uint64_t port;
	char *unix_socket;		/* path, "" for none */
	uint64_t unix_mode;		/* octal permission bits */
	char *log_level;		/* error, warn, info, debug */
	char *log_target;		/* stderr, syslog */
	char *log_format;		/* key 'log': auto, journal, plain (stderr's lines) */
	uint64_t max_frame;
	uint64_t max_hello_frame;	/* frames before HELLO is accepted */
	uint64_t max_value;
	uint64_t max_cap;
	uint64_t max_select_cases;
	uint64_t max_stream_credit;	/* pending receives one STREAM may hold */
	uint64_t max_pending;
	uint64_t max_waiters_per_connection;	/* waiters one connection's requests may hold (budget.h) */
	uint64_t max_waiters;		/* ... and all of them together */
	uint64_t max_held_bytes_per_connection;	/* value bytes one connection's requests may hold */
	uint64_t max_held_bytes;	/* ... and all of them together */
	uint64_t max_connections;
	uint64_t max_channels;
	uint64_t max_buffered_bytes;
	uint64_t max_input_buffer_bytes;	/* partial frames, all connections together; 0 = no limit */
	uint64_t output_hwm;
	uint64_t max_output_bytes;	/* unsent replies past which a connection is closed; 0 = never */
	uint64_t shutdown_timeout_ms;
	uint64_t busy_poll_us;		/* the loop polls this long at most before it sleeps (loop.h) */
	uint64_t workers;		/* worker pool threads; 0 = one per CPU */
	struct config_list stage_modules;	/* "NAME:PATH" of a stage module, repeatable */
	char *metrics_listen;		/* HOST:PORT of /metrics, "" for none */
	char *metrics_protected;	/* yes: protected mode covers metrics_listen */
	char *metrics_token;		/* SHA256HEX of the bearer token /metrics needs, "" for none */
	uint64_t metrics_max_connections;	/* open /metrics connections at once */
	uint64_t metrics_timeout_ms;	/* a /metrics connection's whole life */

	/* TLS (tls.c) */
	char *tls_listen;		/* HOST:PORT of the TLS listener, "" for none */
	char *tls_cert, *tls_key, *tls_ca;	/* PEM files; tls_ca verifies client certificates */
	char *tls_verify_client;	/* none, optional, required */

	/* authentication and rights (auth.c) */
	struct config_list tokens;	/* "NAME:SHA256HEX", repeatable */
	char *tokens_file;		/* more of them, one a line, "" for none */
	struct config_list allow;	/* "NAME PATTERN RIGHT[,RIGHT...]", repeatable */
	char *owner_close;		/* yes: only a channel's creator may close it */
	char *protected_mode;		/* yes: refuse non-loopback listeners without auth and TLS */

	/* abuse limits */
	uint64_t hello_timeout_ms;	/* HELLO must arrive within this; 0 = forever */
	uint64_t idle_timeout_ms;	/* close connections idle this long; 0 = never */
	uint64_t frame_timeout_ms;	/* a started frame must be whole within this; 0 = forever */
	uint64_t tcp_keepalive_ms;	/* TCP keepalive idle time; 0 = off */
	uint64_t identity_max_connections;	/* per identity; 0 = unlimited */
	uint64_t identity_max_channels;
	uint64_t identity_max_pending;

	/* cluster (cluster.c, PROTOCOL.md §17); cluster_etcd "" is a single node */
	char *cluster_etcd;		/* comma-separated http:// or https:// URLs of etcd */
	char *cluster_etcd_ca;		/* PEM: verifies etcd's certificate ("" the system's CAs) */
	char *cluster_etcd_cert, *cluster_etcd_key;	/* PEM: this node's client certificate to etcd */
	char *cluster_name;
	char *node_name;		/* "" for the host name */
	char *advertise;		/* HOST:PORT clients and nodes dial */
	char *cluster_token;		/* the token a node's HELLO to another node carries, "" for none */
	uint64_t node_ttl_ms;

	/* durable channels (durable.c, issue 18); data_dir "" keeps nothing */
	char *data_dir;			/* the journal lives in DATA_DIR/journal */
	char *fsync;			/* always, everysec, no */
	uint64_t journal_compact_min;	/* never compact a smaller journal */
	bool repair;			/* chand --repair, not a key: keep the journal's valid prefix */
};

/* A yes/no key's value. */
bool config_yes(const char *v);
/* Is authentication configured (tokens, rules, or required client certificates)? */
bool config_auth_enabled(const struct config *c);
/* Split "HOST:PORT" / "[V6]:PORT"; -1 when malformed. */
int config_split_hostport(const char *hp, char *host, size_t cap, uint16_t *port);

/* Fill in every default. Returns 0, or -1 when out of memory. */
int config_init(struct config *c);
void config_free(struct config *c);

/*
 * Read path over c (which holds defaults). On error returns -1 and sets
 * *cause to a malloc'd message ("FILE:LINE: key 'k': why"); the caller
 * frees it.
 */
int config_load(struct config *c, const char *path, char **cause);

/* Set one key from a string (a flag override); errors as config_load, with origin as the "file". */
int config_set(struct config *c, const char *key, const char *value, const char *origin,
    char **cause);

/*
 * SIGHUP: copy into live the keys of fresh that may change while running
 * (limits, log_level, shutdown_timeout). changed and ignored get the
 * comma-separated names of the keys that changed and of those that differ
 * but need a restart. Returns 0, or -1 when out of memory.
 */
int config_reload(struct config *live, const struct config *fresh, char *changed, size_t changed_cap,
    char *ignored, size_t ignored_cap);

/* Cross-key checks (e.g. max_value must fit in max_frame); errors name where the key was set. */
int config_check(const struct config *c, char **cause);

/* Where key was last set ("FILE:LINE", or the flag); "config" for a default. */
const char *config_origin(const struct config *c, const char *key);

/*
 * Append the override KEY=VALUE, set by origin ("-p", "--set:KEY"), to l.
 * Returns 0, or -1 when out of memory. config_list_free releases l.
 */
int config_override(struct config_list *l, const char *key, const char *value, const char *origin);
void config_list_free(struct config_list *l);

/*
 * config_read.c: what chand reads at start-up and again on SIGHUP: the
 * defaults, then the file at path (NULL: none), then each override in
 * order (so a flag wins over the file), then config_check, then what
 * start-up will need: tls_listen and metrics_listen are HOST:PORT, and the
 * files it opens (TLS with tls_listen, tokens_file) are readable. c needs
 * no config_init first and must
 * be config_free'd even on error. On error returns -1 with a malloc'd *cause
 * naming the file and line, or the flag ("--set:KEY"), and the key.
 */
int config_read(struct config *c, const char *path, const struct config_list *overrides, char **cause);

#endif
