/* SPDX-License-Identifier: BSD-2-Clause */
#include <stdlib.h>
#include <string.h>

#include "hmap.h"

#define HMAP_MIN_BUCKETS 16

void
hmap_init(struct hmap *h, uint64_t seed)
{
	h->buckets = NULL;
	h->mask = 0;
	h->count = 0;
	h->seed = seed;
}

void
hmap_destroy(struct hmap *h)
{
	free(h->buckets);
	h->buckets = NULL;
	h->mask = 0;
	h->count = 0;
}

/* Move every node into a fresh array of nbuckets; -1 leaves h untouched. */
static int
hmap_rehash(struct hmap *h, size_t nbuckets)
{
	struct hmap_node **nb, *n, *next;
	size_t i;

	nb = calloc(nbuckets, sizeof *nb);
	if (nb == NULL)
		return -1;
	for (i = 0; h->buckets != NULL && i <= h->mask; i++) {
		for (n = h->buckets[i]; n != NULL; n = next) {
			next = n->next;
			n->next = nb[n->hash & (nbuckets - 1)];
			nb[n->hash & (nbuckets - 1)] = n;
		}
	}
	free(h->buckets);
	h->buckets = nb;
	h->mask = nbuckets - 1;
	return 0;
}

int
hmap_insert(struct hmap *h, struct hmap_node *n, uint64_t hash)
{
	struct hmap_node **b;

	if (h->buckets == NULL && hmap_rehash(h, HMAP_MIN_BUCKETS) != 0)
		return -1;
	/* Load over 1: double. On failure carry on with longer chains. */
	if (h->count >= h->mask + 1 && h->mask < SIZE_MAX / 4)
		(void)hmap_rehash(h, (h->mask + 1) * 2);
	n->hash = hash;
	b = &h->buckets[hash & h->mask];
	n->next = *b;
	*b = n;
	h->count++;
	return 0;
}

void
hmap_remove(struct hmap *h, struct hmap_node *n)
{
	struct hmap_node **p = &h->buckets[n->hash & h->mask];

	while (*p != n)
		p = &(*p)->next;
	*p = n->next;
	n->next = NULL;
	h->count--;
}

void
hmap_shrink(struct hmap *h)
{
	size_t nbuckets = h->mask + 1;

	if (h->buckets == NULL)
		return;
	while (nbuckets > HMAP_MIN_BUCKETS && h->count < nbuckets / 4)
		nbuckets /= 2;
	if (nbuckets != h->mask + 1)
		(void)hmap_rehash(h, nbuckets);
}

struct hmap_node *
hmap_first_hash(const struct hmap *h, uint64_t hash)
{
	struct hmap_node *n;

	/*
	 * An empty map's buckets stay unread: chand looks up each request's
	 * id in its connection's pending map (twice), most often empty, and
	 * with a thousand connections taking turns each bucket array read is
	 * a cache miss.
	 */
	if (h->count == 0)
		return NULL;
	for (n = h->buckets[hash & h->mask]; n != NULL; n = n->next)
		if (n->hash == hash)
			return n;
	return NULL;
}

struct hmap_node *
hmap_next_hash(const struct hmap_node *n)
{
	uint64_t hash = n->hash;

	for (n = n->next; n != NULL; n = n->next)
		if (n->hash == hash)
			return (struct hmap_node *)n;
	return NULL;
}

/* The first node in bucket *pos or later; *pos is left on its bucket. */
static struct hmap_node *
hmap_scan(const struct hmap *h, size_t *pos)
{
	if (h->buckets == NULL)
		return NULL;
	for (; *pos <= h->mask; (*pos)++)
		if (h->buckets[*pos] != NULL)
			return h->buckets[*pos];
	return NULL;
}

struct hmap_node *
hmap_first(const struct hmap *h, size_t *pos)
{
	*pos = 0;
	return hmap_scan(h, pos);
}

struct hmap_node *
hmap_next(const struct hmap *h, const struct hmap_node *n, size_t *pos)
{
	if (n->next != NULL)
		return n->next;
	(*pos)++;
	return hmap_scan(h, pos);
}

/*
 * The hashes: a 64x64->128 multiply folded to 64 bits (the core of
 * wyhash), keyed by the seed at every step so that a zero product, the
 * one way to erase the state, cannot be aimed at without the seed.
 */
#define HMAP_P0 0xa0761d6478bd642fULL
#define HMAP_P1 0xe7037ed1a0b428dbULL
#define HMAP_P2 0x8ebc6af09c88c6e3ULL
#define HMAP_P3 0x589965cc75374cc3ULL

static inline uint64_t
hmap_mum(uint64_t a, uint64_t b)
{
	__uint128_t r = (__uint128_t)a * b;

	return (uint64_t)r ^ (uint64_t)(r >> 64);
}

uint64_t
hmap_hash_bytes(uint64_t seed, const void *data, size_t len)
{
	const uint8_t *p = data;
	uint64_t k1 = seed ^ HMAP_P1, k2 = ((seed << 32) | (seed >> 32)) ^ HMAP_P2;
	uint64_t h = seed ^ HMAP_P0, w;
	size_t left = len;

	for (; left >= 8; p += 8, left -= 8) {
		memcpy(&w, p, 8);
		h = hmap_mum(w ^ k1, h ^ k2);
	}
	w = 0;
	if (left > 0)
		memcpy(&w, p, left);
	/* The length goes in last, so "a" and "a\0" differ. */
	h = hmap_mum(w ^ k1, h ^ k2 ^ (uint64_t)len);
	return hmap_mum(h ^ HMAP_P3, k1 ^ HMAP_P0);
}

uint64_t
hmap_hash_u64(uint64_t seed, uint64_t key)
{
	return hmap_mum(key ^ seed ^ HMAP_P1, ((seed << 32) | (seed >> 32)) ^ HMAP_P2);
}
