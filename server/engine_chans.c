/*
 * engine_chans.c: the engine's channel table: named and anonymous
 * channels made and looked up, the holds that keep a channel alive, and
 * deletion (its waiters end with NOT_FOUND). Kept apart from engine.c,
 * which matches operations on channels, because the table only names
 * channels and decides when they go; it never matches a value. Same
 * thread and rules as engine.c.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <string.h>

#include "chan.h"
#include "engine.h"
#include "engine_int.h"
#include "hmap.h"
#include "rand.h"

struct chan *
engine_lookup(struct engine *e, const char *name, size_t name_len)
{
	uint64_t hash = hmap_hash_bytes(e->chans.seed, name, name_len);
	struct hmap_node *n;
	struct chan *ch;

	HMAP_FOR_EACH_HASH(n, hash, &e->chans) {
		ch = HMAP_ENTRY(n, struct chan, node);
		if (ch->name_len == name_len && memcmp(ch->name, name, name_len) == 0)
			return ch;
	}
	return NULL;
}

/* Create and publish a channel with one hold. */
static int
engine_create(struct engine *e, const char *name, size_t name_len, uint32_t cap,
    uint8_t flags, struct chan **out)
{
	struct chan *ch;
	uint64_t hash;

	if (e->limits.max_channels != 0 && hmap_count(&e->chans) >= e->limits.max_channels)
		return STATUS_LIMIT;
	ch = chan_new(name, name_len, cap, flags);
	if (ch == NULL)
		return STATUS_LIMIT;
	hash = hmap_hash_bytes(e->chans.seed, name, name_len);
	if (hmap_insert(&e->chans, &ch->node, hash) != 0) {
		chan_free(ch);
		return STATUS_LIMIT;
	}
	ch->holds = 1;
	*out = ch;
	return STATUS_OK;
}

int
engine_set_maker(struct engine *e, const char *node)
{
	size_t len = strlen(node);

	if (len == 0 || len > ENGINE_MAKER_MAX)
		return STATUS_BAD_REQUEST;
	e->maker[0] = '@';
	memcpy(e->maker + 1, node, len);
	e->maker_len = 1 + len;
	return STATUS_OK;
}

const char *
engine_anon_maker(const char *name, size_t name_len, size_t *len)
{
	*len = 0;
	if (name_len < ENGINE_ANON_NAME_LEN + 2 || name_len > ENGINE_ANON_NAME_LEN + 1 + ENGINE_MAKER_MAX ||
	    name[0] != '~' || name[ENGINE_ANON_NAME_LEN] != '@')
		return NULL;
	*len = name_len - ENGINE_ANON_NAME_LEN - 1;
	return name + ENGINE_ANON_NAME_LEN + 1;
}

/*
 * "~" and 128 bits from the kernel's CSPRNG in hex: whoever knows the name
 * may use the channel, so it must not be guessable. '~' names are reserved
 * to the engine. A cluster node's end with "@" and the node, its maker.
 */
static int
engine_make_anonymous(struct engine *e, uint32_t cap, struct chan **out)
{
	static const char hex[] = "0123456789abcdef";
	uint8_t rnd[(ENGINE_ANON_NAME_LEN - 1) / 2];
	char name[ENGINE_ANON_NAME_LEN + sizeof e->maker];
	size_t i, len = ENGINE_ANON_NAME_LEN + e->maker_len;

	name[0] = '~';
	memcpy(name + ENGINE_ANON_NAME_LEN, e->maker, e->maker_len);
	do {
		if (rand_secure(rnd, sizeof rnd) < 0)
			return STATUS_LIMIT;
		for (i = 0; i < sizeof rnd; i++) {
			name[1 + 2 * i] = hex[rnd[i] >> 4];
			name[2 + 2 * i] = hex[rnd[i] & 0xf];
		}
	} while (engine_lookup(e, name, len) != NULL);
	return engine_create(e, name, len, cap, CHAN_ANONYMOUS, out);
}

int
engine_make(struct engine *e, const char *name, size_t name_len, uint32_t cap,
    struct chan **out, bool *created)
{
	struct chan *ch;
	int status;

	*out = NULL;
	if (created != NULL)
		*created = false;
	if (name == NULL)
		status = engine_make_anonymous(e, cap, out);
	else if ((ch = engine_lookup(e, name, name_len)) != NULL) {
		if (ch->cap != cap)
			return STATUS_EXISTS;
		ch->holds++;
		*out = ch;
		return STATUS_OK;
	} else
		status = engine_create(e, name, name_len, cap, 0, out);
	if (status == STATUS_OK && created != NULL)
		*created = true;
	return status;
}

/* Take the channel out of the table and drop its buffer. */
static size_t
engine_unpublish(struct engine *e, struct chan *ch)
{
	ch->flags |= CHAN_DELETED;
	hmap_remove(&e->chans, &ch->node);
	if (ch->owner != NULL && e->owner_gone != NULL)
		e->owner_gone(ch->owner, e->owner_arg);
	ch->owner = NULL;
	if (e->iterating == 0)
		hmap_shrink(&e->chans);
	e->bytes -= ch->bytes;
	e->values -= ch->len + ch->nback;
	return chan_buf_clear(ch);
}

int
engine_delete(struct engine *e, struct chan *ch, size_t *discarded)
{
	struct waiter *w;
	size_t n;

	if (discarded != NULL)
		*discarded = 0;
	if (chan_deleted(ch))
		return STATUS_NOT_FOUND;
	engine_changed(e, ch, ENGINE_DELETE, NULL);
	engine_enter(e);
	/* Our own hold keeps ch alive until the waiters' holds are gone. */
	ch->holds++;
	n = engine_unpublish(e, ch);
	while ((w = engine_first_receiver(e, ch)) != NULL) {
		if (w->op->stream != NULL)
			stream_chan_deleted(e, w);	/* withdraws all of the stream's units */
		else
			op_finish(e, w->op, STATUS_NOT_FOUND, (int)w->index, NULL, false);
	}
	while ((w = chan_first_sender(ch)) != NULL)
		op_finish(e, w->op, STATUS_NOT_FOUND, (int)w->index, NULL, false);
	engine_leave(e);
	if (discarded != NULL)
		*discarded = n;
	engine_release(e, ch);
	return STATUS_OK;
}

void
engine_hold(struct chan *ch)
{
	ch->holds++;
}

void
engine_release(struct engine *e, struct chan *ch)
{
	if (--ch->holds > 0)
		return;
	/* No holds means no waiters either: they hold while linked. */
	if (chan_deleted(ch))
		chan_free(ch);
	else if (chan_anonymous(ch)) {
		(void)engine_unpublish(e, ch);
		chan_free(ch);
	}
}

void
engine_foreach_chan(struct engine *e, int (*fn)(struct chan *, void *), void *arg)
{
	struct hmap_node *n, *nx;
	size_t pos;

	e->iterating++;
	HMAP_FOR_EACH_SAFE(n, nx, pos, &e->chans) {
		if (fn(HMAP_ENTRY(n, struct chan, node), arg) != 0)
			break;
	}
	e->iterating--;
}
