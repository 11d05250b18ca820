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

/* errors counts failed etcd calls. Returns 0, or -1 when out of memory. */
int mirror_new(struct mirror **out, struct etcd *e, struct event_base *base, const char *prefix,
    mirror_changed *cb, void *arg, uint64_t *errors);
void mirror_free(struct mirror *m);

/* The value of key, and its lease in *lease (may be NULL); NULL when absent. */
const char *mirror_get(const struct mirror *m, const char *key, size_t klen, int64_t *lease);
/* Record key = value under lease. Returns 0, or -1 when out of memory. */
int mirror_set(struct mirror *m, const char *key, size_t klen, const char *value, int64_t lease);
void mirror_del(struct mirror *m, const char *key, size_t klen);
/* Has a first read finished (the copy means something)? */
bool mirror_synced(const struct mirror *m);
size_t mirror_count(const struct mirror *m);
/* Call fn for every entry. fn must not change the mirror. */
void mirror_each(const struct mirror *m, void (*fn)(void *arg, const char *key, size_t klen,
    const char *value, int64_t lease), void *arg);

#endif
