/*
 * cluster_mirror.h: a local copy of every key under one etcd prefix, kept
 * by a read of the prefix and then a watch from the read's revision;
 * read again from scratch whenever the watch breaks (etcd restarted,
 * compacted, idle cut), after a short pause.
 *
 * Keys are held without the prefix. Each entry keeps the value and the
 * lease the key is bound to. Local writes (mirror_set, mirror_del) let the
 * owner record what it just learnt from a txn before the watch says it.
 *
 * Ownership: the caller owns the mirror; strings returned point into it and
 * stay valid until the next change. Thread-safety: loop thread only.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef CHAND_CLUSTER_MIRROR_H
#define CHAND_CLUSTER_MIRROR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct etcd;
struct event_base;
struct mirror;

/* A key is new, has a new value, or was deleted (value NULL). */
typedef void mirror_changed(void *arg, const char *key, size_t klen, const char *value);
/*
 * What a reader needs of a value, made once when the value is stored
 * rather than at every read: *view, malloc'd (NULL when the value has
 * none, say it is malformed). Returns 0, or -1 when out of memory.
 */
typedef int mirror_view_fn(const char *value, char **view);

struct mirror_hooks {
	mirror_changed *changed;	/* or NULL */
	mirror_view_fn *view;		/* or NULL: no views */
	void *arg;			/* changed's */
};

/* hooks is copied; errors counts failed etcd calls. Returns 0, or -1 when out of memory. */
int mirror_new(struct mirror **out, struct etcd *e, struct event_base *base, const char *prefix,
    const struct mirror_hooks *hooks, uint64_t *errors);
void mirror_free(struct mirror *m);

/* The value of key, and its lease in *lease (may be NULL); NULL when absent. */
const char *mirror_get(const struct mirror *m, const char *key, size_t klen, int64_t *lease);
/* The mirror's own copy of key (NUL-terminated), NULL when absent. */
const char *mirror_key(const struct mirror *m, const char *key, size_t klen);
/* The view of key's value (mirror_view_fn); NULL when absent or it has none. */
const char *mirror_view(const struct mirror *m, const char *key, size_t klen);
/* Record key = value under lease. Returns 0, or -1 when out of memory. */
int mirror_set(struct mirror *m, const char *key, size_t klen, const char *value, int64_t lease);
void mirror_del(struct mirror *m, const char *key, size_t klen);
/* Has a first read finished (the copy means something)? */
bool mirror_synced(const struct mirror *m);
size_t mirror_count(const struct mirror *m);
/* Counts every mirror_set and mirror_del (the watch's and reads' too): what was read before is stale. */
uint64_t mirror_gen(const struct mirror *m);
/* Call fn for every entry. fn must not change the mirror. */
void mirror_each(const struct mirror *m, void (*fn)(void *arg, const char *key, size_t klen,
    const char *value, int64_t lease), void *arg);

#endif
