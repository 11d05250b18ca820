/*
 * config_read.c: the configuration chand runs with: the file, then the
 * flags over it, then every check of what start-up will read (protected
 * mode among them: config_check).
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"
#include "sdnotify.h"

/* *cause = "ORIGIN: key 'KEY': WHAT[: DETAIL]", ORIGIN where key was set. */
static int
fail_key(char **cause, const struct config *c, const char *key, const char *what,
    const char *detail)
{
	if (asprintf(cause, "%s: key '%s': %s%s%s", config_origin(c, key), key, what,
	    detail ? ": " : "", detail ? detail : "") < 0)
		*cause = NULL;
	return -1;
}

static bool
addr_is_loopback(const struct sockaddr *sa)
{
	const struct in6_addr *a6 = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;

	if (sa->sa_family == AF_INET)
		return ntohl(((const struct sockaddr_in *)(const void *)sa)->sin_addr.s_addr) >> 24 == 127;
	if (sa->sa_family == AF_INET6)
		return IN6_IS_ADDR_LOOPBACK(a6) || (IN6_IS_ADDR_V4MAPPED(a6) && a6->s6_addr[12] == 127);
	return false;
}

/* Does every address host resolves to belong to loopback? */
static bool
host_is_loopback(const char *host)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE };
	struct addrinfo *res, *ai;
	bool lo = true;

	if (getaddrinfo(host, NULL, &hints, &res) != 0)
		return false;
	for (ai = res; ai != NULL && lo; ai = ai->ai_next)
		lo = addr_is_loopback(ai->ai_addr);
	freeaddrinfo(res);
	return lo;
}
/*
 * Socket activation's listeners are plaintext: one on a non-loopback address
 * is refused as `listen` would be. Unix sockets are local by nature.
 */
static int
check_inherited(const struct config *c, int n, char **cause)
{
	for (int fd = 3; fd < 3 + n; fd++) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof ss;
		char host[NI_MAXHOST], port[NI_MAXSERV], where[NI_MAXHOST + NI_MAXSERV + 32];

		if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0 || ss.ss_family == AF_UNIX ||
		    addr_is_loopback((struct sockaddr *)&ss))
			continue;
		if (getnameinfo((struct sockaddr *)&ss, len, host, sizeof host, port, sizeof port,
		    NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
			snprintf(host, sizeof host, "?");
			snprintf(port, sizeof port, "?");
		}
		snprintf(where, sizeof where, "fd %d, %s port %s", fd, host, port);
		return fail_key(cause, c, "protected_mode", "protected mode: socket activation "
		    "passed a plaintext listener on a non-loopback address; bind it to loopback, or set "
		    "protected_mode = no", where);
	}
	return 0;
}

/* /metrics on a non-loopback address answers anyone: it needs a token, or metrics_protected = no. */
static int
check_metrics(const struct config *c, char **cause)
{
	char host[256];
	uint16_t port;

	if (c->metrics_listen[0] == '\0')
		return 0;
	if (config_split_hostport(c->metrics_listen, host, sizeof host, &port) < 0)
		return fail_key(cause, c, "metrics_listen", "must be HOST:PORT", c->metrics_listen);
	if (config_yes(c->metrics_protected) && c->metrics_token[0] == '\0' && !host_is_loopback(host))
		return fail_key(cause, c, "metrics_listen", "protected mode: the metrics endpoint "
		    "on a non-loopback address without metrics_token; set metrics_token, or "
		    "metrics_protected = no (or protected_mode = no)", c->metrics_listen);
	return 0;
}

/*
 * Protected mode (like redis's): a listener on anything but loopback needs
 * authentication and TLS, unless protected_mode = no says so explicitly.
 * Under socket activation the inherited sockets replace listen and tls_listen.
 */
static int
check_protected(const struct config *c, char **cause)
{
	char host[256];
	uint16_t port;
	int inherited = sd_inherited_fds();

	if (!config_yes(c->protected_mode))
		return 0;
	if (check_metrics(c, cause) < 0)
		return -1;
	if (inherited > 0)
		return check_inherited(c, inherited, cause);
	if (c->listen[0] != '\0' && !host_is_loopback(c->listen))
		return fail_key(cause, c, "listen", "protected mode: a plaintext listener on a "
		    "non-loopback address; use tls_listen with authentication, or set protected_mode = no",
		    c->listen);
	if (c->tls_listen[0] == '\0')
		return 0;
	if (config_split_hostport(c->tls_listen, host, sizeof host, &port) < 0)
		return fail_key(cause, c, "tls_listen", "must be HOST:PORT", c->tls_listen);
	if (!host_is_loopback(host) && !config_auth_enabled(c))
		return fail_key(cause, c, "tls_listen", "protected mode: a non-loopback listener "
		    "without authentication (token, tokens_file, allow or tls_verify_client = required); "
		    "configure it, or set protected_mode = no", c->tls_listen);
	return 0;
}

int
config_check(const struct config *c, char **cause)
{
	if (c->tls_listen[0] != '\0' && (c->tls_cert[0] == '\0' || c->tls_key[0] == '\0'))
		return fail_key(cause, c, "tls_listen", "needs tls_cert and tls_key", NULL);
	if (strcmp(c->tls_verify_client, "none") != 0 && c->tls_ca[0] == '\0')
		return fail_key(cause, c, "tls_verify_client", "needs tls_ca", NULL);
	if (check_protected(c, cause) < 0)
		return -1;
	/*
	 * a forwarded request acts at the owner as the forwarding node's
	 * cluster_token identity, so the owner rule would judge the node, not
	 * the client: a non-creator's CLOSE through another node would pass
	 * (checked here, so that a reload cannot turn it on either)
	 */
	if (c->cluster_etcd[0] != '\0' && config_yes(c->owner_close))
		return fail_key(cause, c, "owner_close", "is not enforced across the nodes of a "
		    "cluster yet (a forwarded request acts as the node's identity): leave it no "
		    "with cluster_etcd", NULL);
	/* a value must fit in a frame with its request around it */
	if (c->max_value + 512 > c->max_frame)
		return fail_key(cause, c, "max_value",
		    "must be at least 512 bytes below max_frame", NULL);
	/* under socket activation the listeners come from systemd */
	if (c->listen[0] == '\0' && c->unix_socket[0] == '\0' && sd_inherited_fds() == 0)
		return fail_key(cause, c, "listen",
		    "no listener: set listen or unix_socket", NULL);
	return 0;
}

/* An address key, when set, must be HOST:PORT. */
static int
check_hostport(const struct config *c, const char *key, const char *value, char **cause)
{
	char host[256];
	uint16_t port;

	if (value[0] != '\0' && config_split_hostport(value, host, sizeof host, &port) < 0)
		return fail_key(cause, c, key, "must be HOST:PORT (or [V6]:PORT)", value);
	return 0;
}

/* A file start-up reads (a certificate, a key, the tokens) must be readable now. */
static int
check_readable(const struct config *c, const char *key, const char *path, char **cause)
{
	char what[600];

	if (path[0] == '\0' || access(path, R_OK) == 0)
		return 0;
	snprintf(what, sizeof what, "cannot read '%s'", path);
	return fail_key(cause, c, key, what, strerror(errno));
}

/* The files the TLS listener and the token table load at start-up. */
static int
check_files(const struct config *c, char **cause)
{
	if (c->tls_listen[0] != '\0' && (check_readable(c, "tls_cert", c->tls_cert, cause) < 0 ||
	    check_readable(c, "tls_key", c->tls_key, cause) < 0 ||
	    check_readable(c, "tls_ca", c->tls_ca, cause) < 0))
		return -1;
	if (check_readable(c, "tokens_file", c->tokens_file, cause) < 0)
		return -1;
	/* the journal is created under it: a directory chand can write */
	if (c->data_dir[0] != '\0' && access(c->data_dir, W_OK | X_OK) != 0)
		return fail_key(cause, c, "data_dir", "must be a directory chand can write",
		    strerror(errno));
	return 0;
}

/* Each of the comma-separated etcd URLs is http:// or https://HOST:PORT (etcd.c reads them so). */
static int
check_etcd_urls(const struct config *c, char **cause)
{
	const char *p = c->cluster_etcd, *end;
	char url[300], host[256];
	uint16_t port;
	size_t len, skip;

	for (;; p = end + 1) {
		end = strchr(p, ',');
		if (end == NULL)
			end = p + strlen(p);
		snprintf(url, sizeof url, "%.*s", (int)(end - p), p);
		len = strlen(url);
		if (len > 0 && url[len - 1] == '/')
			url[len - 1] = '\0';
		skip = strncmp(url, "https://", 8) == 0 ? 8 : 7;
		if ((skip == 7 && strncmp(url, "http://", 7) != 0) ||
		    config_split_hostport(url + skip, host, sizeof host, &port) < 0 || port == 0)
			return fail_key(cause, c, "cluster_etcd", "each URL must be http://HOST:PORT or "
			    "https://HOST:PORT", url);
		if (*end == '\0')
			return 0;
	}
}

/* The client certificate to etcd comes with its key; the files cluster.c loads can be read. */
static int
check_etcd_tls(const struct config *c, char **cause)
{
	if ((c->cluster_etcd_cert[0] == '\0') != (c->cluster_etcd_key[0] == '\0'))
		return fail_key(cause, c, c->cluster_etcd_cert[0] ? "cluster_etcd_key" :
		    "cluster_etcd_cert", "cluster_etcd_cert and cluster_etcd_key go together", NULL);
	if (check_readable(c, "cluster_etcd_ca", c->cluster_etcd_ca, cause) < 0 ||
	    check_readable(c, "cluster_etcd_cert", c->cluster_etcd_cert, cause) < 0)
		return -1;
	return check_readable(c, "cluster_etcd_key", c->cluster_etcd_key, cause);
}

/* A cluster node needs the address others dial; cluster_name "" is not a name. */
static int
check_cluster(const struct config *c, char **cause)
{
	if (c->cluster_etcd[0] == '\0')
		return 0;
	if (check_etcd_urls(c, cause) < 0 || check_etcd_tls(c, cause) < 0)
		return -1;
	if (c->advertise[0] == '\0')
		return fail_key(cause, c, "advertise", "cluster_etcd needs advertise (the HOST:PORT "
		    "clients and the other nodes dial to reach this node)", NULL);
	if (c->cluster_name[0] == '\0')
		return fail_key(cause, c, "cluster_name", "must not be empty", NULL);
	/* MOVED hands it to clients, which follow only a TCP HOST:PORT (PROTOCOL.md §17) */
	if (strncmp(c->advertise, "unix:", 5) == 0 || strchr(c->advertise, '/') != NULL)
		return fail_key(cause, c, "advertise", "must be a TCP HOST:PORT (or [V6]:PORT), "
		    "not a unix socket or a URL", c->advertise);
	return check_hostport(c, "advertise", c->advertise, cause);
}

/* What start-up reads beyond the keys themselves: addresses, and the files it opens. */
static int
check_start(const struct config *c, char **cause)
{
	if (check_hostport(c, "tls_listen", c->tls_listen, cause) < 0 ||
	    check_hostport(c, "metrics_listen", c->metrics_listen, cause) < 0 ||
	    check_cluster(c, cause) < 0)
		return -1;
	return check_files(c, cause);
}

int
config_override(struct config_list *l, const char *key, const char *value, const char *origin)
{
	struct config_item *items;
	char *kv;

	if (asprintf(&kv, "%s=%s", key, value) < 0)
		return -1;
	if ((items = realloc(l->items, (l->n + 1) * sizeof *items)) == NULL) {
		free(kv);
		return -1;
	}
	l->items = items;
	items[l->n].value = kv;
	if ((items[l->n].origin = strdup(origin)) == NULL) {
		free(kv);
		return -1;
	}
	l->n++;
	return 0;
}

int
config_read(struct config *c, const char *path, const struct config_list *overrides, char **cause)
{
	*cause = NULL;
	if (config_init(c) < 0) {
		*cause = strdup("out of memory");
		return -1;
	}
	if (path != NULL && config_load(c, path, cause) < 0)
		return -1;
	for (size_t i = 0; overrides != NULL && i < overrides->n; i++) {
		const struct config_item *it = &overrides->items[i];
		const char *eq = strchr(it->value, '=');
		char key[128];

		/* config_override made "KEY=VALUE"; a key too long for key is unknown anyway */
		snprintf(key, sizeof key, "%.*s", (int)(eq - it->value), it->value);
		if (config_set(c, key, eq + 1, it->origin, cause) < 0)
			return -1;
	}
	if (config_check(c, cause) < 0)
		return -1;
	return check_start(c, cause);
}
