/*
 * config.c: a table of keys, each with a type, bounds and a default; one
 * parser for the file and the flags.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"

enum key_type { KEY_STRING, KEY_SIZE, KEY_COUNT, KEY_MODE, KEY_DURATION, KEY_LIST };

struct key {
	const char *name;
	enum key_type type;
	size_t offset;
	const char *def;
	uint64_t min, max;
	int (*check)(const char *value, const char **why);
	bool reload;			/* SIGHUP applies it to the running server */
};

static int
check_log_level(const char *v, const char **why)
{
	if (log_level_parse(v) < 0) {
		*why = "must be error, warn, info or debug";
		return -1;
	}
	return 0;
}

static int
check_log_target(const char *v, const char **why)
{
	if (strcmp(v, "stderr") != 0 && strcmp(v, "syslog") != 0) {
		*why = "must be stderr or syslog";
		return -1;
	}
	return 0;
}

static int
check_fsync(const char *v, const char **why)
{
	if (strcmp(v, "always") != 0 && strcmp(v, "everysec") != 0 && strcmp(v, "no") != 0) {
		*why = "must be always, everysec or no";
		return -1;
	}
	return 0;
}

static int
check_log_format(const char *v, const char **why)
{
	*why = "must be auto, journal or plain";
	return strcmp(v, "auto") == 0 || strcmp(v, "journal") == 0 || strcmp(v, "plain") == 0 ? 0 : -1;
}

/* NAME:PATH, NAME of letters, digits, '_', '-' and '.'; the module is loaded at start-up. */
static int
check_stage_module(const char *v, const char **why)
{
	const char *colon = strchr(v, ':');

	*why = "must be NAME:PATH (NAME of 1 to 64 letters, digits, '_', '-' or '.')";
	if (colon == NULL || colon == v || colon - v > 64 || colon[1] == '\0')
		return -1;
	for (const char *p = v; p < colon; p++)
		if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-' && *p != '.')
			return -1;
	return 0;
}

static int
check_yes_no(const char *v, const char **why)
{
	*why = "must be yes or no";
	return strcmp(v, "yes") == 0 || strcmp(v, "no") == 0 ? 0 : -1;
}

bool
config_yes(const char *v)
{
	return v != NULL && strcmp(v, "yes") == 0;
}

static int
check_verify_client(const char *v, const char **why)
{
	*why = "must be none, optional or required";
	return strcmp(v, "none") == 0 || strcmp(v, "optional") == 0 || strcmp(v, "required") == 0 ?
	    0 : -1;
}

/* NAME:SHA256HEX (64 hex digits). */
static int
check_token(const char *v, const char **why)
{
	const char *colon = strrchr(v, ':');

	*why = "must be NAME:SHA256HEX (the hex SHA-256 digest of the token, 64 digits)";
	if (colon == NULL || colon == v || colon - v > 63 || strlen(colon + 1) != 64)
		return -1;
	for (const char *p = colon + 1; *p; p++)
		if (!isxdigit((unsigned char)*p))
			return -1;
	return 0;
}

/* SHA256HEX (64 hex digits), or "" for none. */
static int
check_digest(const char *v, const char **why)
{
	*why = "must be the hex SHA-256 digest of the token (64 digits), or \"\"";
	if (*v == '\0')
		return 0;
	if (strlen(v) != 64)
		return -1;
	for (const char *p = v; *p; p++)
		if (!isxdigit((unsigned char)*p))
			return -1;
	return 0;
}

/* NAME PATTERN RIGHT[,RIGHT...] or NAME admin; the rights are checked by auth.c when it builds the rules. */
static int
check_allow(const char *v, const char **why)
{
	char name[128], pattern[512], rights[256], extra[2];
	int n = sscanf(v, "%127s %511s %255s %1s", name, pattern, rights, extra);

	*why = "must be NAME PATTERN RIGHT[,RIGHT...] or NAME admin";
	if (n == 3 || (n == 2 && strcmp(pattern, "admin") == 0))
		return 0;
	return -1;
}

/* A path segment of the cluster's etcd keys: 1 to 64 letters, digits, '_', '-' or '.'; "" is the default's. */
static int
check_cluster_name(const char *v, const char **why)
{
	size_t n = strlen(v);

	*why = "must be 1 to 64 letters, digits, '_', '-' or '.'";
	if (n > 64 || strcmp(v, ".") == 0 || strcmp(v, "..") == 0)
		return -1;
	for (const char *p = v; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-' && *p != '.')
			return -1;
	return 0;
}

#define DURATION(n, key, d, hi, r) { key, KEY_DURATION, offsetof(struct config, n), d, 0, hi, NULL, r }
#define LIST(n, key, chk, r) { key, KEY_LIST, offsetof(struct config, n), "", 0, 0, chk, r }

/* K: a number (R: one SIGHUP reloads); KS: a string. */
#define K(n, t, d, lo, hi) { #n, t, offsetof(struct config, n), d, lo, hi, NULL, false }
#define R(n, t, d, lo, hi) { #n, t, offsetof(struct config, n), d, lo, hi, NULL, true }
#define KS(n, d, chk, r) { #n, KEY_STRING, offsetof(struct config, n), d, 0, 0, chk, r }
static const struct key keys[] = {
	KS(listen, "127.0.0.1", NULL, false),
	K(port, KEY_COUNT, "7420", 0, 65535),
	KS(unix_socket, "", NULL, false),
	K(unix_mode, KEY_MODE, "0660", 0, 0777),
	KS(log_level, "info", check_log_level, true),
	KS(log_target, "stderr", check_log_target, false),
	{ "log", KEY_STRING, offsetof(struct config, log_format), "auto", 0, 0, check_log_format, true },
	R(max_frame, KEY_SIZE, "2M", 64, 1ULL << 30),
	R(max_hello_frame, KEY_SIZE, "4096", 512, 1ULL << 30),
	R(max_value, KEY_SIZE, "1M", 0, 1ULL << 30),
	R(max_cap, KEY_COUNT, "1048576", 0, UINT32_MAX),
	K(max_select_cases, KEY_COUNT, "1024", 1, 65536),
	R(max_stream_credit, KEY_COUNT, "1024", 1, 1ULL << 20),
	R(max_pending, KEY_COUNT, "4096", 1, 1ULL << 24),
	R(max_waiters_per_connection, KEY_COUNT, "65536", 0, 1ULL << 40),
	R(max_waiters, KEY_COUNT, "4194304", 0, 1ULL << 40),
	R(max_held_bytes_per_connection, KEY_SIZE, "64M", 0, 1ULL << 50),
	R(max_held_bytes, KEY_SIZE, "1G", 0, 1ULL << 50),
	R(max_connections, KEY_COUNT, "10000", 1, 1ULL << 24),
	R(max_channels, KEY_COUNT, "1048576", 1, 1ULL << 32),
	R(max_buffered_bytes, KEY_SIZE, "1G", 0, 1ULL << 50),
	R(max_input_buffer_bytes, KEY_SIZE, "256M", 0, 1ULL << 50),
	R(output_hwm, KEY_SIZE, "4M", 4096, 1ULL << 32),
	R(max_output_bytes, KEY_SIZE, "64M", 0, 1ULL << 40),
	{ "shutdown_timeout", KEY_DURATION, offsetof(struct config, shutdown_timeout_ms), "5s",
	  0, 3600 * 1000, NULL, true },
	K(workers, KEY_COUNT, "0", 0, 1024),
	R(busy_poll_us, KEY_COUNT, "100", 0, 1000),
	{ "stage_module", KEY_LIST, offsetof(struct config, stage_modules), "", 0, 0,
	  check_stage_module, false },
	KS(metrics_listen, "", NULL, false),
	KS(metrics_protected, "yes", check_yes_no, false),
	KS(metrics_token, "", check_digest, true),
	R(metrics_max_connections, KEY_COUNT, "64", 1, 65536),
	{ "metrics_timeout", KEY_DURATION, offsetof(struct config, metrics_timeout_ms), "10s",
	  1, 3600 * 1000, NULL, true },
	KS(tls_listen, "", NULL, false),
	KS(tls_cert, "", NULL, true),
	KS(tls_key, "", NULL, true),
	KS(tls_ca, "", NULL, true),
	KS(tls_verify_client, "none", check_verify_client, true),
	LIST(tokens, "token", check_token, true),
	KS(tokens_file, "", NULL, true),
	LIST(allow, "allow", check_allow, true),
	KS(owner_close, "no", check_yes_no, true),
	KS(protected_mode, "yes", check_yes_no, false),
	DURATION(hello_timeout_ms, "hello_timeout", "10s", 3600 * 1000, true),
	DURATION(idle_timeout_ms, "idle_timeout", "0", 7 * 24 * 3600 * 1000ULL, true),
	DURATION(frame_timeout_ms, "frame_timeout", "30s", 3600 * 1000, true),
	DURATION(tcp_keepalive_ms, "tcp_keepalive", "60s", 3600 * 1000, false),
	R(identity_max_connections, KEY_COUNT, "0", 0, 1ULL << 24),
	R(identity_max_channels, KEY_COUNT, "0", 0, 1ULL << 32),
	R(identity_max_pending, KEY_COUNT, "0", 0, 1ULL << 32),
	KS(cluster_etcd, "", NULL, false),
	KS(cluster_etcd_ca, "", NULL, false),
	KS(cluster_etcd_cert, "", NULL, false),
	KS(cluster_etcd_key, "", NULL, false),
	KS(cluster_name, "chand", check_cluster_name, false),
	KS(node_name, "", check_cluster_name, false),
	KS(advertise, "", NULL, false),
	KS(cluster_token, "", NULL, false),
	{ "node_ttl", KEY_DURATION, offsetof(struct config, node_ttl_ms), "5s", 1000, 3600 * 1000, NULL,
	  false },
	KS(data_dir, "", NULL, false),
	KS(fsync, "always", check_fsync, false),
	K(journal_compact_min, KEY_SIZE, "64M", 4096, 1ULL << 50),
};
#define NKEYS (sizeof keys / sizeof keys[0])

static void list_free(struct config_list *l);

static const struct key *
key_find(const char *name)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (strcmp(keys[i].name, name) == 0)
			return &keys[i];
	return NULL;
}

/* Parse an unsigned number with a unit suffix table; -1 on error. */
static int
parse_number(const char *s, int base, const char *const *units, const uint64_t *mult,
    uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtoull(s, &end, base);
	if (errno != 0)
		return -1;
	if (*end == '\0') {
		*out = v;
		return 0;
	}
	for (size_t i = 0; units && units[i]; i++) {
		if (strcmp(end, units[i]) == 0) {
			if (v > UINT64_MAX / mult[i])
				return -1;
			*out = v * mult[i];
			return 0;
		}
	}
	return -1;
}

static int
parse_value(const struct key *k, const char *v, uint64_t *out, const char **why)
{
	static const char *const size_units[] = { "K", "k", "M", "G", NULL };
	static const uint64_t size_mult[] = { 1ULL << 10, 1ULL << 10, 1ULL << 20, 1ULL << 30 };
	static const char *const time_units[] = { "ms", "s", "m", NULL };
	static const uint64_t time_mult[] = { 1, 1000, 60000 };
	int rc;

	switch (k->type) {
	case KEY_SIZE:
		rc = parse_number(v, 10, size_units, size_mult, out);
		*why = "must be a number of bytes, optionally with K, M or G";
		break;
	case KEY_COUNT:
		rc = parse_number(v, 10, NULL, NULL, out);
		*why = "must be a whole number";
		break;
	case KEY_MODE:
		rc = parse_number(v, 8, NULL, NULL, out);
		*why = "must be an octal mode such as 0660";
		break;
	case KEY_DURATION:
		rc = parse_number(v, 10, time_units, time_mult, out);
		*why = "must be a duration such as 500ms, 5s or 1m";
		break;
	default:
		return -1;
	}
	if (rc < 0)
		return -1;
	if (*out < k->min || *out > k->max) {
		*why = "is out of range";
		return -1;
	}
	return 0;
}

/* *cause = "ORIGIN[:LINE]: [key 'KEY': ]WHAT[: DETAIL]" */
static int
fail(char **cause, const char *origin, unsigned line, const char *key, const char *what,
    const char *detail)
{
	char where[512];

	if (line)
		snprintf(where, sizeof where, "%s:%u: ", origin, line);
	else
		snprintf(where, sizeof where, "%s: ", origin);
	if (asprintf(cause, "%s%s%s%s%s%s%s", where, key ? "key '" : "", key ? key : "",
	    key ? "': " : "", what, detail ? ": " : "", detail ? detail : "") < 0)
		*cause = NULL;
	return -1;
}

/* Append to a repeatable key; the empty default adds nothing. */
static int
list_add(struct config_list *l, const struct key *k, const char *value, const char *origin,
    const char **why)
{
	struct config_item *items;

	if (*value == '\0' && origin == NULL)
		return 0;
	if (k->check && k->check(value, why) < 0)
		return -1;
	*why = "out of memory";
	if ((items = realloc(l->items, (l->n + 1) * sizeof *items)) == NULL)
		return -1;
	l->items = items;
	items[l->n].value = strdup(value);
	items[l->n].origin = strdup(origin);
	if (items[l->n].value == NULL || items[l->n].origin == NULL) {
		free(items[l->n].value);
		free(items[l->n].origin);
		return -1;
	}
	l->n++;
	return 0;
}

/* Remember where key k was last set (the file's line or the flag); NULL leaves the default's. */
static int
set_origin(struct config *c, const struct key *k, const char *origin, const char **why)
{
	char **slot = &c->origins[k - keys], *dup;

	if (origin == NULL)
		return 0;
	if ((dup = strdup(origin)) == NULL) {
		*why = "out of memory";
		return -1;
	}
	free(*slot);
	*slot = dup;
	return 0;
}

static int
set_key(struct config *c, const struct key *k, const char *value, const char *origin,
    const char **why)
{
	void *field = (char *)c + k->offset;

	if (set_origin(c, k, origin, why) < 0)
		return -1;
	if (k->type == KEY_LIST)
		return list_add(field, k, value, origin, why);
	if (k->type == KEY_STRING) {
		char *dup;

		if (k->check && k->check(value, why) < 0)
			return -1;
		if ((dup = strdup(value)) == NULL) {
			*why = "out of memory";
			return -1;
		}
		free(*(char **)field);
		*(char **)field = dup;
		return 0;
	}
	return parse_value(k, value, (uint64_t *)field, why);
}

int
config_init(struct config *c)
{
	const char *why;

	memset(c, 0, sizeof *c);
	if ((c->origins = calloc(NKEYS, sizeof *c->origins)) == NULL)
		return -1;
	for (size_t i = 0; i < NKEYS; i++) {
		if (set_key(c, &keys[i], keys[i].def, NULL, &why) < 0) {
			config_free(c);
			return -1;
		}
	}
	return 0;
}

void
config_free(struct config *c)
{
	for (size_t i = 0; i < NKEYS; i++) {
		void *field = (char *)c + keys[i].offset;

		if (keys[i].type == KEY_STRING)
			free(*(char **)field);
		if (keys[i].type == KEY_LIST)
			list_free(field);
		if (c->origins != NULL)
			free(c->origins[i]);
	}
	free(c->origins);
	memset(c, 0, sizeof *c);
}

int
config_set(struct config *c, const char *key, const char *value, const char *origin, char **cause)
{
	const struct key *k = key_find(key);
	const char *why;

	if (k == NULL)
		return fail(cause, origin, 0, key, "unknown key", NULL);
	if (set_key(c, k, value, origin, &why) < 0)
		return fail(cause, origin, 0, key, why, NULL);
	return 0;
}

static char *
trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

/* Cut the comment: a '#' outside double quotes. false: a quote is left open. */
static bool
cut_comment(char *line)
{
	bool quoted = false;

	for (char *p = line; *p; p++) {
		if (*p == '"')
			quoted = !quoted;
		else if (*p == '#' && !quoted) {
			*p = '\0';
			break;
		}
	}
	return !quoted;
}

/* A value in double quotes loses them (it may hold '#' or spaces at its ends); -1 if malformed. */
static int
unquote(char **value, const char **why)
{
	char *v = *value, *close;

	if (v[0] != '"')
		return 0;
	close = strchr(v + 1, '"');
	if (close[1] != '\0') {
		*why = "text after the closing quote";
		return -1;
	}
	*close = '\0';
	*value = v + 1;
	return 0;
}

/* Parse one line; returns the key index set, NKEYS for a blank line, -1 on error. */
static int
parse_line(struct config *c, char *line, const char *origin, const char **why,
    const char **keyname)
{
	bool closed = cut_comment(line);
	char *eq, *key, *value;
	const struct key *k;

	*keyname = NULL;
	line = trim(line);
	if (*line == '\0')
		return (int)NKEYS;
	if ((eq = strchr(line, '=')) == NULL) {
		*why = closed ? "expected 'key = value'" : "unterminated quote";
		return -1;
	}
	*eq = '\0';
	key = trim(line);
	value = trim(eq + 1);
	*keyname = key;
	/* an open quote would swallow the rest of the line, comment included */
	if (!closed) {
		*why = "unterminated quote";
		return -1;
	}
	if ((k = key_find(key)) == NULL) {
		*why = "unknown key";
		return -1;
	}
	if (unquote(&value, why) < 0 || set_key(c, k, value, origin, why) < 0)
		return -1;
	return (int)(k - keys);
}

int
config_load(struct config *c, const char *path, char **cause)
{
	FILE *f = fopen(path, "r");
	bool seen[NKEYS] = { false };
	char line[4096];
	unsigned lineno = 0;
	int rc = -1;

	if (f == NULL)
		return fail(cause, path, 0, NULL, "cannot open", strerror(errno));
	while (fgets(line, sizeof line, f) != NULL) {
		const char *why = NULL, *key;
		char origin[512];
		int idx;

		lineno++;
		if (strchr(line, '\n') == NULL && !feof(f)) {
			fail(cause, path, lineno, NULL, "line is longer than 4095 bytes", NULL);
			goto out;
		}
		snprintf(origin, sizeof origin, "%s:%u", path, lineno);
		idx = parse_line(c, line, origin, &why, &key);
		if (idx < 0) {
			fail(cause, path, lineno, key, why, NULL);
			goto out;
		}
		if (idx < (int)NKEYS && keys[idx].type != KEY_LIST) {
			if (seen[idx]) {
				fail(cause, path, lineno, key, "set twice", NULL);
				goto out;
			}
			seen[idx] = true;
		}
	}
	if (ferror(f)) {
		fail(cause, path, lineno, NULL, "read error", strerror(errno));
		goto out;
	}
	rc = 0;
out:
	fclose(f);
	return rc;
}

static bool
key_equal(const struct key *k, const struct config *a, const struct config *b)
{
	const void *fa = (const char *)a + k->offset, *fb = (const char *)b + k->offset;

	if (k->type == KEY_STRING)
		return strcmp(*(char *const *)fa, *(char *const *)fb) == 0;
	if (k->type == KEY_LIST) {
		const struct config_list *la = fa, *lb = fb;

		if (la->n != lb->n)
			return false;
		for (size_t i = 0; i < la->n; i++)
			if (strcmp(la->items[i].value, lb->items[i].value) != 0)
				return false;
		return true;
	}
	return *(const uint64_t *)fa == *(const uint64_t *)fb;
}

static void
append_name(char *buf, size_t cap, const char *name)
{
	size_t len = strlen(buf);

	snprintf(buf + len, cap - len, "%s%s", len ? "," : "", name);
}

static void
list_free(struct config_list *l)
{
	for (size_t j = 0; j < l->n; j++) {
		free(l->items[j].value);
		free(l->items[j].origin);
	}
	free(l->items);
	l->items = NULL;
	l->n = 0;
}

/* Replace dst with a copy of src; dst is unchanged when out of memory. */
static int
list_copy(struct config_list *dst, const struct config_list *src)
{
	struct config_list l = { calloc(src->n ? src->n : 1, sizeof *l.items), 0 };

	if (l.items == NULL)
		return -1;
	for (; l.n < src->n; l.n++) {
		l.items[l.n].value = strdup(src->items[l.n].value);
		l.items[l.n].origin = strdup(src->items[l.n].origin);
		if (l.items[l.n].value == NULL || l.items[l.n].origin == NULL) {
			l.n++;
			list_free(&l);
			return -1;
		}
	}
	list_free(dst);
	*dst = l;
	return 0;
}

/* The running value of k now comes from where fresh set it (its line may have moved). */
static int
origin_copy(struct config *live, const struct config *fresh, const struct key *k)
{
	const char *src = fresh->origins[k - keys];
	char *dup = NULL;

	if (src != NULL && (dup = strdup(src)) == NULL)
		return -1;
	free(live->origins[k - keys]);
	live->origins[k - keys] = dup;
	return 0;
}

int
config_reload(struct config *live, const struct config *fresh, char *changed, size_t changed_cap,
    char *ignored, size_t ignored_cap)
{
	changed[0] = ignored[0] = '\0';
	for (size_t i = 0; i < NKEYS; i++) {
		const struct key *k = &keys[i];
		void *field = (char *)live + k->offset;
		const void *src = (const char *)fresh + k->offset;

		if (key_equal(k, live, fresh)) {
			if (origin_copy(live, fresh, k) < 0)
				return -1;
			continue;
		}
		if (!k->reload) {
			append_name(ignored, ignored_cap, k->name);
			continue;
		}
		if (origin_copy(live, fresh, k) < 0)
			return -1;
		if (k->type == KEY_LIST) {
			if (list_copy(field, src) < 0)
				return -1;
		} else if (k->type == KEY_STRING) {
			char *dup = strdup(*(char *const *)src);

			if (dup == NULL)
				return -1;
			free(*(char **)field);
			*(char **)field = dup;
		} else {
			*(uint64_t *)field = *(const uint64_t *)src;
		}
		append_name(changed, changed_cap, k->name);
	}
	return 0;
}

bool
config_auth_enabled(const struct config *c)
{
	return c->tokens.n > 0 || c->allow.n > 0 || c->tokens_file[0] != '\0' ||
	    strcmp(c->tls_verify_client, "required") == 0;
}

/* HOST of "HOST:PORT" or "[V6]:PORT" into buf; -1 when malformed. */
int
config_split_hostport(const char *hp, char *host, size_t cap, uint16_t *port)
{
	const char *colon = strrchr(hp, ':'), *h = hp;
	size_t len;
	char *end;
	unsigned long p;

	if (colon == NULL)
		return -1;
	len = (size_t)(colon - hp);
	if (*hp == '[' && len >= 2 && hp[len - 1] == ']') {
		h++;
		len -= 2;
	}
	if (len == 0 || len >= cap)
		return -1;
	p = strtoul(colon + 1, &end, 10);
	if (colon[1] == '\0' || *end != '\0' || p > 65535)
		return -1;
	memcpy(host, h, len);
	host[len] = '\0';
	*port = (uint16_t)p;
	return 0;
}

const char *
config_origin(const struct config *c, const char *key)
{
	const struct key *k = key_find(key);

	return k != NULL && c->origins[k - keys] != NULL ? c->origins[k - keys] : "config";
}


void
config_list_free(struct config_list *l)
{
	list_free(l);
}
