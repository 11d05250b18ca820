/*
 * durable_pend.c: which value a tag is (JOURNAL.md): the values whose POP
 * was staged in this batch, found by value and channel until their
 * delivery's tag (or a give-back) comes, or the batch goes to the journal.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <stdint.h>
#include <stdlib.h>

#include "durable_int.h"
#include "hmap.h"
#include "value.h"

static uint64_t
pend_hash(const struct durable *d, const struct value *v)
{
	return hmap_hash_u64(d->pendmap.seed, (uint64_t)(uintptr_t)v);
}

/* The entry of v on ch; none for a value that left ch for good, or that only has its address. */
static struct pend *
pend_find(const struct durable *d, const struct chan *ch, const struct value *v)
{
	struct hmap_node *n;

	HMAP_FOR_EACH_HASH(n, pend_hash(d, v), &d->pendmap) {
		struct pend *p = HMAP_ENTRY(n, struct pend, node);

		if (p->v == v && p->serial == value_serial(v) && p->ch == ch)
			return p;
	}
	return NULL;
}

/* The array moved: its entries go into a map of their own again. */
static void
pend_reindex(struct durable *d)
{
	uint64_t seed = d->pendmap.seed;

	hmap_destroy(&d->pendmap);
	hmap_init(&d->pendmap, seed);
	for (size_t i = 0; i < d->npend; i++)
		if (hmap_insert(&d->pendmap, &d->pend[i].node, d->pend[i].node.hash) < 0)
			d->stage_failed = true;	/* the batch fails: nothing is answered wrongly */
}

/* v's entry on ch (its latest: an older one is replaced). */
void
durable_pend_add(struct durable *d, struct chan *ch, const struct value *v, size_t off)
{
	size_t cap = d->pend_cap ? d->pend_cap * 2 : 16;
	struct pend *p = pend_find(d, ch, v);

	if (p != NULL) {
		p->off = off;
		return;
	}
	if (d->npend == d->pend_cap) {
		if ((p = realloc(d->pend, cap * sizeof *p)) == NULL) {
			d->stage_failed = true;
			return;
		}
		d->pend = p;
		d->pend_cap = cap;
		pend_reindex(d);
	}
	p = &d->pend[d->npend++];
	*p = (struct pend){ .v = v, .serial = value_serial(v), .ch = ch, .off = off };
	if (hmap_insert(&d->pendmap, &p->node, pend_hash(d, v)) < 0)
		d->stage_failed = true;
}

/* Take p off: the last entry moves into its place. */
static void
pend_remove(struct durable *d, struct pend *p)
{
	struct pend *last = &d->pend[d->npend - 1];

	hmap_remove(&d->pendmap, &p->node);
	if (p != last) {
		hmap_remove(&d->pendmap, &last->node);
		*p = *last;
		(void)hmap_insert(&d->pendmap, &p->node, p->node.hash);	/* buckets exist: cannot fail */
	}
	d->npend--;
}

/* The pending entry of v on ch, taken off; false if there is none. */
bool
durable_pend_take(struct durable *d, const struct chan *ch, const struct value *v, struct pend *out)
{
	struct pend *p = pend_find(d, ch, v);

	if (p == NULL)
		return false;
	*out = *p;
	pend_remove(d, p);
	return true;
}

void
durable_pend_drop_chan(struct durable *d, const struct chan *ch)
{
	for (size_t i = d->npend; i-- > 0;)
		if (d->pend[i].ch == ch)
			pend_remove(d, &d->pend[i]);
}

/* The batch went into the journal: no value waits for its tag any more. */
void
durable_pend_clear(struct durable *d)
{
	for (size_t i = 0; i < d->npend; i++)
		hmap_remove(&d->pendmap, &d->pend[i].node);
	d->npend = 0;
}
