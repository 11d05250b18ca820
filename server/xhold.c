/*
 * xhold.c: values received by SELECTs with `hold`, until XSETTLE or their
 * connection's end (xhold.h).
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <stdbool.h>
#include <stdlib.h>

#include "delivery.h"
#include "engine.h"
#include "hmap.h"
#include "log.h"
#include "xhold.h"

struct held_value {
	struct hmap_node node;
	const void *owner;
	uint64_t id;
	struct chan *ch;
	struct value *v;		/* NULL for a tagged one: the delivery holds it */
	uint64_t tag;			/* an ack channel's, in flight for owner (xhold_take_tagged); or 0 */
	bool send;			/* a send case's own value, not yet sent (xhold_take_send) */
	bool kept_at_end;		/* owner's end keeps it (hold 2: taken unless given back) */
};

struct xhold {
	struct engine *e;
	struct delivery *d;
	struct hmap map;		/* struct held_value by (owner, id) */
	xhold_change_fn *changed;	/* durable.c's, or NULL */
	void *changed_arg;
};

static uint64_t
key(const struct xhold *h, const void *owner, uint64_t id)
{
	return hmap_hash_u64(h->map.seed, (uint64_t)(uintptr_t)owner * 0x9e3779b97f4a7c15ULL ^ id);
}

struct xhold *
xhold_new(struct engine *e, struct delivery *d)
{
	struct xhold *h = calloc(1, sizeof *h);

	if (h == NULL)
		return NULL;
	h->e = e;
	h->d = d;
	hmap_init(&h->map, (uint64_t)(uintptr_t)h ^ 0x6a09e667f3bcc908ULL);
	return h;
}

void
xhold_set_change_hook(struct xhold *h, xhold_change_fn *fn, void *arg)
{
	h->changed = fn;
	h->changed_arg = arg;
}

static void
changed(struct xhold *h, struct chan *ch, enum xhold_change what, const struct value *v)
{
	if (h->changed != NULL)
		h->changed(h->changed_arg, ch, what, v);
}

/* v leaves ch for good (keep), or goes back ahead of its buffered values; ch's hold goes. */
static void
settle(struct xhold *h, struct chan *ch, struct value *v, bool keep)
{
	size_t len;
	const char *name;

	changed(h, ch, keep ? XHOLD_KEEP : XHOLD_BACK, v);
	if (!keep && engine_requeue(h->e, ch, v) == STATUS_OK) {
		v = NULL;
	} else {
		if (!keep) {
			name = chan_name(ch, &len);
			log_warn("xselect-dropped channel=%.*s note=\"channel deleted or out of memory\"",
			    (int)len, name);
		}
		value_free(v);
		engine_settle(h->e, ch);
	}
	engine_release(h->e, ch);
}

/* A held send granted (keep): sent now if it can be, without waiting; else dropped. */
static int
settle_send(struct xhold *h, struct chan *ch, struct value *v, bool keep)
{
	int st = STATUS_OK;

	if (!keep) {
		value_free(v);
		engine_claim_next(h->e, ch);	/* another waiting sender may take the chance */
	} else {
		st = engine_send_claimed(h->e, ch, v);
	}
	engine_release(h->e, ch);
	return st;
}

static int
remove_one(struct xhold *h, struct held_value *hv, bool keep)
{
	int st = STATUS_OK;

	hmap_remove(&h->map, &hv->node);
	/*
	 * a tagged value kept stays in flight for its owner, which ACKs it
	 * (§16), with a fresh ack_wait; NOT_FOUND if ack_wait already gave it back
	 */
	if (hv->tag != 0 && keep)
		st = delivery_touch(h->d, (struct conn *)hv->owner, hv->tag);
	else if (hv->tag != 0)
		(void)delivery_untake(h->d, (struct conn *)hv->owner, hv->tag);
	else if (hv->send)
		st = settle_send(h, hv->ch, hv->v, keep);
	else
		settle(h, hv->ch, hv->v, keep);
	free(hv);
	return st;
}

void
xhold_free(struct xhold *h)
{
	struct hmap_node *n, *nx;
	size_t pos;

	if (h == NULL)
		return;
	HMAP_FOR_EACH_SAFE(n, nx, pos, &h->map)
		remove_one(h, HMAP_ENTRY(n, struct held_value, node), false);
	hmap_destroy(&h->map);
	free(h);
}

/* A copy of what in the map under (what->owner, what->id); false when out of memory. */
static bool
keep(struct xhold *h, const struct held_value *what)
{
	struct held_value *hv = malloc(sizeof *hv);

	if (hv == NULL)
		return false;
	*hv = *what;
	if (hmap_insert(&h->map, &hv->node, key(h, what->owner, what->id)) < 0) {
		free(hv);
		return false;
	}
	return true;
}

/*
 * Keep v for (owner, id): a value received (lent), or a send case's own
 * (send). One kept at owner's end has left its channel as far as the
 * journal knows, as for any receiver: only its return is reported.
 */
static int
take(struct xhold *h, const void *owner, uint64_t id, struct chan *ch, struct value *v, bool send,
    bool kept_at_end)
{
	engine_hold(ch);
	if (!send) {
		engine_lend(ch);
		if (!kept_at_end)
			changed(h, ch, XHOLD_TAKE, v);
	}
	if (keep(h, &(struct held_value){ .owner = owner, .id = id, .ch = ch, .v = v, .send = send,
	    .kept_at_end = kept_at_end }))
		return STATUS_OK;
	if (send)
		settle_send(h, ch, v, false);
	else
		settle(h, ch, v, false);
	return STATUS_LIMIT;
}

int
xhold_take(struct xhold *h, const void *owner, uint64_t id, struct chan *ch, struct value *v,
    bool kept_at_end)
{
	return take(h, owner, id, ch, v, false, kept_at_end);
}

int
xhold_take_send(struct xhold *h, const void *owner, uint64_t id, struct chan *ch,
    struct value *v)
{
	return take(h, owner, id, ch, v, true, false);
}

int
xhold_take_tagged(struct xhold *h, struct conn *owner, uint64_t id, struct chan *ch, uint64_t tag,
    bool kept_at_end)
{
	if (keep(h, &(struct held_value){ .owner = owner, .id = id, .ch = ch, .tag = tag,
	    .kept_at_end = kept_at_end }))
		return STATUS_OK;
	delivery_untake(h->d, owner, tag);
	return STATUS_LIMIT;
}

static struct held_value *
find(const struct xhold *h, const void *owner, uint64_t id)
{
	struct hmap_node *n;

	HMAP_FOR_EACH_HASH(n, key(h, owner, id), &h->map) {
		struct held_value *hv = HMAP_ENTRY(n, struct held_value, node);

		if (hv->owner == owner && hv->id == id)
			return hv;
	}
	return NULL;
}

int
xhold_settle(struct xhold *h, const void *owner, uint64_t id, bool keep)
{
	struct held_value *hv = find(h, owner, id);

	if (hv == NULL)
		return XHOLD_NONE;
	return remove_one(h, hv, keep);
}

void
xhold_owner_gone(struct xhold *h, const void *owner)
{
	struct hmap_node *n, *nx;
	size_t pos;

	if (hmap_count(&h->map) == 0)
		return;
	HMAP_FOR_EACH_SAFE(n, nx, pos, &h->map) {
		struct held_value *hv = HMAP_ENTRY(n, struct held_value, node);

		if (hv->owner == owner)
			remove_one(h, hv, hv->kept_at_end);
	}
}

size_t
xhold_count(const struct xhold *h)
{
	return hmap_count(&h->map);
}
