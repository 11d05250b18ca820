/*
 * config_read.c: the configuration chand runs with: the file, then the
 * flags over it, then every check of what start-up will read.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

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
	return check_readable(c, "tokens_file", c->tokens_file, cause);
}

/* Each of the comma-separated etcd URLs is http://HOST:PORT (etcd.c reads them so). */
static int
check_etcd_urls(const struct config *c, char **cause)
{
	const char *p = c->cluster_etcd, *end;
	char url[300], host[256];
	uint16_t port;
	size_t len;

	for (;; p = end + 1) {
		end = strchr(p, ',');
		if (end == NULL)
			end = p + strlen(p);
		snprintf(url, sizeof url, "%.*s", (int)(end - p), p);
		len = strlen(url);
		if (len > 0 && url[len - 1] == '/')
			url[len - 1] = '\0';
		if (strncmp(url, "http://", 7) != 0 ||
		    config_split_hostport(url + 7, host, sizeof host, &port) < 0 || port == 0)
			return fail_key(cause, c, "cluster_etcd", strncmp(url, "https://", 8) == 0 ?
			    "https:// (TLS to etcd) is not supported yet: use http://HOST:PORT" :
			    "each URL must be http://HOST:PORT", url);
		if (*end == '\0')
			return 0;
	}
}

/* A cluster node needs the address others dial; cluster_name "" is not a name. */
static int
check_cluster(const struct config *c, char **cause)
{
	if (c->cluster_etcd[0] == '\0')
		return 0;
	if (check_etcd_urls(c, cause) < 0)
		return -1;
	if (c->advertise[0] == '\0')
		return fail_key(cause, c, "advertise", "cluster_etcd needs advertise (the HOST:PORT "
		    "clients and the other nodes dial to reach this node)", NULL);
	if (c->cluster_name[0] == '\0')
		return fail_key(cause, c, "cluster_name", "must not be empty", NULL);
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
