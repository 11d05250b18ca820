/*
 * cluster_mirror.c: read a prefix, watch it from there, read again when the
 * watch breaks.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <jansson.h>

#include "cluster_mirror.h"
#include "etcd.h"
#include "hmap.h"
#include "log.h"

#define RESYNC_MS 300			/* pause before reading again after a failure */

struct mentry {
	struct hmap_node node;
	char *key, *value;
	char *view;			/* hooks.view's of value */
	size_t klen;
	int64_t lease;
	bool stale;			/* not in the read being applied */
};

struct mirror {
	struct etcd *e;
	char *prefix;
	size_t plen;
	struct hmap map;
	struct mirror_hooks hooks;
	uint64_t *errors;
	struct etcd_watch *watch;
	struct event *retry;		/* the next read, after a pause */
	int64_t revision;		/* of the last read or event applied */
	uint64_t gen;			/* mirror_gen */
	bool synced, reading, broken;
	bool failing;			/* the last read failed: said once, not every retry */
};

static struct mentry *
find(const struct mirror *m, const char *key, size_t klen)
{
	uint64_t h = hmap_hash_bytes(m->map.seed, key, klen);
	struct hmap_node *n;

	HMAP_FOR_EACH_HASH(n, h, &m->map) {
		struct mentry *en = HMAP_ENTRY(n, struct mentry, node);

		if (en->klen == klen && memcmp(en->key, key, klen) == 0)
			return en;
	}
	return NULL;
}

static void
entry_free(struct mentry *en)
{
	free(en->key);
	free(en->value);
	free(en->view);
	free(en);
}

const char *
mirror_get(const struct mirror *m, const char *key, size_t klen, int64_t *lease)
{
	const struct mentry *en = find(m, key, klen);

	if (lease != NULL)
		*lease = en != NULL ? en->lease : 0;
	return en != NULL ? en->value : NULL;
}

const char *
mirror_key(const struct mirror *m, const char *key, size_t klen)
{
	const struct mentry *en = find(m, key, klen);

	return en != NULL ? en->key : NULL;
}

const char *
mirror_view(const struct mirror *m, const char *key, size_t klen)
{
	const struct mentry *en = find(m, key, klen);

	return en != NULL ? en->view : NULL;
}

int
mirror_set(struct mirror *m, const char *key, size_t klen, const char *value, int64_t lease)
{
	struct mentry *en = find(m, key, klen);
	bool changed = en == NULL || strcmp(en->value, value) != 0;
	char *v = strdup(value), *view = NULL;

	m->gen++;

	if (v == NULL || (m->hooks.view != NULL && m->hooks.view(value, &view) < 0)) {
		free(v);
		return -1;
	}
	if (en == NULL) {
		if ((en = calloc(1, sizeof *en)) == NULL || (en->key = malloc(klen + 1)) == NULL ||
		    hmap_insert(&m->map, &en->node, hmap_hash_bytes(m->map.seed, key, klen)) < 0) {
			if (en != NULL)
				free(en->key);
			free(en);
			free(v);
			free(view);
			return -1;
		}
		memcpy(en->key, key, klen);
		en->key[klen] = '\0';
		en->klen = klen;
	}
	free(en->value);
	en->value = v;
	free(en->view);
	en->view = view;
	en->lease = lease;
	en->stale = false;
	if (changed && m->hooks.changed != NULL)
		m->hooks.changed(m->hooks.arg, key, klen, value);
	return 0;
}

void
mirror_del(struct mirror *m, const char *key, size_t klen)
{
	struct mentry *en = find(m, key, klen);

	if (en == NULL)
		return;
	m->gen++;
	hmap_remove(&m->map, &en->node);
	if (m->hooks.changed != NULL)
		m->hooks.changed(m->hooks.arg, en->key, en->klen, NULL);
	entry_free(en);
}

uint64_t
mirror_gen(const struct mirror *m)
{
	return m->gen;
}

bool
mirror_synced(const struct mirror *m)
{
	return m->synced;
}

size_t
mirror_count(const struct mirror *m)
{
	return hmap_count(&m->map);
}

void
mirror_each(const struct mirror *m, void (*fn)(void *, const char *, size_t, const char *, int64_t),
    void *arg)
{
	struct hmap_node *n;
	size_t pos = 0;

	for (n = hmap_first(&m->map, &pos); n != NULL; n = hmap_next(&m->map, n, &pos)) {
		struct mentry *en = HMAP_ENTRY(n, struct mentry, node);

		fn(arg, en->key, en->klen, en->value, en->lease);
	}
}

/* One kv of a reply or event: key under our prefix; -1 when malformed. */
static int
apply_kv(struct mirror *m, const json_t *kv, bool deleted)
{
	char *key = NULL, *value = NULL;
	size_t klen, vlen;
	int64_t lease;
	int rc = -1;

	if (!json_is_object(kv) || etcd_bytes(kv, "key", &key, &klen) < 0 ||
	    etcd_bytes(kv, "value", &value, &vlen) < 0 || etcd_int(kv, "lease", &lease) < 0 ||
	    klen < m->plen || memcmp(key, m->prefix, m->plen) != 0 || strlen(value) != vlen)
		goto out;
	rc = 0;
	if (deleted)
		mirror_del(m, key + m->plen, klen - m->plen);
	else
		rc = mirror_set(m, key + m->plen, klen - m->plen, value, lease);
out:
	free(key);
	free(value);
	return rc;
}

static void mirror_read(struct mirror *m);

static void
retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct mirror *m = arg;

	etcd_watch_free(m->watch);
	m->watch = NULL;
	mirror_read(m);
}

/*
 * Something broke: read again soon (the watch is freed from the timer, not
 * inside its callback). A watch that ended (an idle cut every minute, etcd
 * going) is routine; a failed read is an etcd error, said once until a read
 * succeeds.
 */
static void
resync_later(struct mirror *m, const char *why, bool routine)
{
	struct timeval tv = { 0, RESYNC_MS * 1000 };

	if (m->broken)
		return;
	m->broken = true;
	if (!routine)
		(*m->errors)++;
	log_msg(routine || m->failing ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO,
	    "cluster-resync prefix=%s reason=\"%s\"", m->prefix, why);
	if (!routine)
		m->failing = true;
	evtimer_add(m->retry, &tv);
}

static void
watch_cb(void *arg, json_t *result, const char *why)
{
	struct mirror *m = arg;
	const json_t *events, *ev;
	size_t i;

	if (result == NULL) {
		resync_later(m, why, true);
		return;
	}
	events = json_object_get(result, "events");
	json_array_foreach(events, i, ev) {
		const char *type = json_string_value(json_object_get(ev, "type"));

		if (apply_kv(m, json_object_get(ev, "kv"), type != NULL && strcmp(type, "DELETE") == 0) < 0) {
			resync_later(m, "a watch event etcd sent is malformed", false);
			return;
		}
	}
	if (events != NULL && !json_is_array(events))
		resync_later(m, "a watch message's events are not an array", false);
}

static void
drop_stale(struct mirror *m)
{
	struct hmap_node *n, *nx;
	size_t pos;

	HMAP_FOR_EACH_SAFE(n, nx, pos, &m->map) {
		struct mentry *en = HMAP_ENTRY(n, struct mentry, node);

		if (en->stale)
			mirror_del(m, en->key, en->klen);
	}
}

static void
read_done(void *arg, json_t *reply, const char *why)
{
	struct mirror *m = arg;
	const json_t *kvs, *kv, *hdr;
	struct hmap_node *n;
	size_t i, pos = 0;

	m->reading = false;
	if (reply == NULL) {
		resync_later(m, why, false);
		return;
	}
	kvs = json_object_get(reply, "kvs");
	hdr = json_object_get(reply, "header");
	if ((kvs != NULL && !json_is_array(kvs)) || etcd_int(hdr, "revision", &m->revision) < 0 ||
	    m->revision <= 0) {
		resync_later(m, "etcd's range reply is malformed", false);
		return;
	}
	for (n = hmap_first(&m->map, &pos); n != NULL; n = hmap_next(&m->map, n, &pos))
		HMAP_ENTRY(n, struct mentry, node)->stale = true;
	json_array_foreach(kvs, i, kv) {
		if (apply_kv(m, kv, false) < 0) {
			resync_later(m, "a key etcd sent is malformed", false);
			return;
		}
	}
	drop_stale(m);
	m->failing = false;
	if (etcd_watch_new(&m->watch, m->e, m->prefix, m->revision + 1, watch_cb, m) < 0) {
		resync_later(m, "out of memory", false);
		return;
	}
	m->synced = true;
}

static void
mirror_read(struct mirror *m)
{
	m->broken = false;
	m->reading = true;
	if (etcd_range(m->e, m->prefix, 1, read_done, m) < 0) {
		m->reading = false;
		resync_later(m, "out of memory", false);
	}
}

int
mirror_new(struct mirror **out, struct etcd *e, struct event_base *base, const char *prefix,
    const struct mirror_hooks *hooks, uint64_t *errors)
{
	struct mirror *m = calloc(1, sizeof *m);

	if (m == NULL)
		return -1;
	m->e = e;
	m->hooks = *hooks;
	m->errors = errors;
	hmap_init(&m->map, (uint64_t)(uintptr_t)m ^ 0x9e3779b97f4a7c15ULL);
	if ((m->prefix = strdup(prefix)) == NULL ||
	    (m->retry = evtimer_new(base, retry_cb, m)) == NULL) {
		mirror_free(m);
		return -1;
	}
	m->plen = strlen(prefix);
	mirror_read(m);
	*out = m;
	return 0;
}

void
mirror_free(struct mirror *m)
{
	struct hmap_node *n, *nx;
	size_t pos;

	if (m == NULL)
		return;
	HMAP_FOR_EACH_SAFE(n, nx, pos, &m->map) {
		hmap_remove(&m->map, n);
		entry_free(HMAP_ENTRY(n, struct mentry, node));
	}
	hmap_destroy(&m->map);
	etcd_watch_free(m->watch);
	if (m->retry != NULL)
		event_free(m->retry);
	free(m->prefix);
	free(m);
}
