/*
 * hmap.h: a small intrusive hash map (separate chaining, power-of-two
 * bucket count, doubles when the load passes 1).
 *
 * The user embeds a struct hmap_node in its own struct and recovers the
 * container with container_of-style arithmetic (HMAP_ENTRY). The map never
 * allocates nodes and never frees them: it owns only its bucket array. Keys
 * are the user's business: lookups walk the nodes that carry a given hash
 * (HMAP_FOR_EACH_HASH) and the caller compares its own key, so one map type
 * serves string names and uint64 ids alike. Per entry it costs the 16-byte
 * node plus one to two bucket pointers.
 *
 * Hashes are seeded (hmap_hash_bytes, hmap_hash_u64) so that a client who
 * does not know the seed cannot pick keys that all land in one bucket.
 *
 * Thread-safety: none; one thread owns a map. Removing the node being
 * visited during HMAP_FOR_EACH_SAFE is allowed; inserting during any
 * iteration is not (it may rehash). The map only shrinks when
 * hmap_shrink is called, so removals never reorder an iteration.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef CHAND_HMAP_H
#define CHAND_HMAP_H

#include <stddef.h>
#include <stdint.h>

struct hmap_node {
	struct hmap_node *next;	/* chain within one bucket */
	uint64_t hash;
};

struct hmap {
	struct hmap_node **buckets;	/* NULL until the first insert */
	size_t mask;			/* bucket count - 1 */
	size_t count;
	uint64_t seed;
};

#define HMAP_ENTRY(node, type, member) \
	((type *)(void *)((char *)(node) - offsetof(type, member)))

/* An empty map; allocates nothing. seed feeds the hash helpers. */
void hmap_init(struct hmap *h, uint64_t seed);
/* Free the bucket array. The nodes stay the caller's. */
void hmap_destroy(struct hmap *h);

/*
 * Link n with this hash (the caller checked the key is not there yet).
 * Returns 0, or -1 only when the very first bucket array cannot be
 * allocated; a failed growth just leaves the load higher.
 */
int hmap_insert(struct hmap *h, struct hmap_node *n, uint64_t hash);
/* Unlink n, which must be in h. Never shrinks (see hmap_shrink). */
void hmap_remove(struct hmap *h, struct hmap_node *n);
/* Halve the bucket array while the load is under 1/4; may be a no-op. */
void hmap_shrink(struct hmap *h);

static inline size_t
hmap_count(const struct hmap *h)
{
	return h->count;
}

/* Nodes with exactly this hash, in bucket order: compare keys yourself. */
struct hmap_node *hmap_first_hash(const struct hmap *h, uint64_t hash);
struct hmap_node *hmap_next_hash(const struct hmap_node *n);
#define HMAP_FOR_EACH_HASH(n, hash, h) \
	for ((n) = hmap_first_hash((h), (hash)); (n) != NULL; (n) = hmap_next_hash(n))

/* Every node, in no particular order; *pos is the cursor (start at 0). */
struct hmap_node *hmap_first(const struct hmap *h, size_t *pos);
struct hmap_node *hmap_next(const struct hmap *h, const struct hmap_node *n, size_t *pos);
/* Visit every node; n may be removed from the map inside the body. */
#define HMAP_FOR_EACH_SAFE(n, nx, pos, h)					\
	for ((pos) = 0, (n) = hmap_first((h), &(pos)),				\
	    (nx) = (n) ? hmap_next((h), (n), &(pos)) : NULL;			\
	    (n) != NULL;							\
	    (n) = (nx), (nx) = (n) ? hmap_next((h), (n), &(pos)) : NULL)

/* Seeded hashes: a string (or any bytes) and a 64-bit integer key. */
uint64_t hmap_hash_bytes(uint64_t seed, const void *data, size_t len);
uint64_t hmap_hash_u64(uint64_t seed, uint64_t key);

#endif
