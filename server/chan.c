/* SPDX-License-Identifier: BSD-2-Clause */
#include <stdlib.h>
#include <string.h>

#include "chan.h"
#include "value.h"

/* First ring size, and the largest ring kept once the buffer drains. */
#define CHAN_RING_MIN	4
#define CHAN_RING_KEEP	8

struct chan *
chan_new(const char *name, size_t name_len, uint32_t cap, uint8_t flags)
{
	struct chan *ch;

	if (name_len > UINT32_MAX - 1)
		return NULL;
	ch = calloc(1, sizeof *ch + name_len + 1);
	if (ch == NULL)
		return NULL;
	memcpy(ch->name, name, name_len);
	ch->name[name_len] = '\0';
	ch->name_len = (uint32_t)name_len;
	ch->cap = cap;
	ch->flags = flags;
	TAILQ_INIT(&ch->recvq);
	TAILQ_INIT(&ch->sendq);
	return ch;
}

void
chan_free(struct chan *ch)
{
	if (ch == NULL)
		return;
	chan_buf_clear(ch);
	close_err_unref(ch->err);
	free(ch->ext);
	free(ch);
}

/* Grow the ring to the next power of two (at most cap), oldest first. */
static int
chan_ring_grow(struct chan *ch)
{
	struct value **ring;
	uint32_t size, i;

	size = ch->size == 0 ? CHAN_RING_MIN : ch->size * 2;
	if (size > ch->cap || size < ch->size)
		size = ch->cap;
	ring = malloc((size_t)size * sizeof *ring);
	if (ring == NULL)
		return -1;
	for (i = 0; i < ch->len; i++)
		ring[i] = ch->ring[(ch->head + i) % ch->size];
	free(ch->ring);
	ch->ring = ring;
	ch->size = size;
	ch->head = 0;
	return 0;
}

int
chan_buf_push(struct chan *ch, struct value *v)
{
	if (ch->len == ch->size && chan_ring_grow(ch) != 0)
		return -1;
	ch->ring[(ch->head + ch->len) % ch->size] = v;
	ch->len++;
	ch->bytes += value_size(v);
	return 0;
}

struct value *
chan_buf_pop(struct chan *ch)
{
	struct value *v = ch->ring[ch->head];

	ch->head = (ch->head + 1) % ch->size;
	ch->len--;
	ch->bytes -= value_size(v);
	/* A drained big ring goes back, so idle channels stay small. */
	if (ch->len == 0 && ch->size > CHAN_RING_KEEP) {
		free(ch->ring);
		ch->ring = NULL;
		ch->size = 0;
		ch->head = 0;
	}
	return v;
}

size_t
chan_buf_clear(struct chan *ch)
{
	size_t n = ch->len + ch->nback;

	while (ch->nback > 0)
		value_free(chan_back_pop(ch));
	while (ch->len > 0) {
		value_free(ch->ring[ch->head]);
		ch->head = (ch->head + 1) % ch->size;
		ch->len--;
	}
	free(ch->ring);
	ch->ring = NULL;
	ch->size = 0;
	ch->head = 0;
	ch->bytes = 0;
	return n;
}

int
chan_back_push(struct chan *ch, struct value *v)
{
	struct chan_back *b = malloc(sizeof *b);

	if (b == NULL)
		return -1;
	b->v = v;
	if (ch->back != NULL) {
		b->next = ch->back->next;
		ch->back->next = b;
	} else {
		b->next = b;
	}
	ch->back = b;
	ch->nback++;
	ch->bytes += value_size(v);
	return 0;
}

struct value *
chan_back_pop(struct chan *ch)
{
	struct chan_back *b = ch->back->next;	/* the oldest */
	struct value *v = b->v;

	if (b == ch->back)
		ch->back = NULL;
	else
		ch->back->next = b->next;
	ch->nback--;
	ch->bytes -= value_size(v);
	free(b);
	return v;
}

void
chan_link(struct chan *ch, struct waiter *w)
{
	if (w->dir == CASE_SEND) {
		TAILQ_INSERT_TAIL(&ch->sendq, w, link);
		ch->nsend++;
	} else {
		TAILQ_INSERT_TAIL(&ch->recvq, w, link);
		ch->nrecv++;
	}
}

void
chan_unlink(struct chan *ch, struct waiter *w)
{
	if (w->dir == CASE_SEND) {
		TAILQ_REMOVE(&ch->sendq, w, link);
		ch->nsend--;
	} else {
		TAILQ_REMOVE(&ch->recvq, w, link);
		ch->nrecv -= !w->parked;
		w->parked = false;
	}
}

void
chan_park(struct chan *ch, struct waiter *w)
{
	w->parked = true;
	ch->nrecv--;
}

void
chan_unpark(struct chan *ch, struct waiter *w)
{
	w->parked = false;
	ch->nrecv++;
}

/* ---- close errors (engine.h) ------------------------------------------------ */

struct close_err *
close_err_new(uint64_t code, const char *msg, size_t len)
{
	struct close_err *err;

	if (len > UINT32_MAX || (err = malloc(sizeof *err + len)) == NULL)
		return NULL;
	err->code = code;
	err->len = (uint32_t)len;
	err->refs = 1;
	if (len > 0)
		memcpy(err->msg, msg, len);
	return err;
}

void
close_err_ref(struct close_err *err)
{
	err->refs++;
}

void
close_err_unref(struct close_err *err)
{
	if (err != NULL && --err->refs == 0)
		free(err);
}

/* ---- the public accessors (engine.h) ------------------------------------ */

const char *
chan_name(const struct chan *ch, size_t *len)
{
	*len = ch->name_len;
	return ch->name;
}

uint32_t
chan_len(const struct chan *ch)
{
	return ch->len;
}

uint32_t
chan_nback(const struct chan *ch)
{
	return ch->nback;
}

uint32_t
chan_lent(const struct chan *ch)
{
	return ch->lent;
}

void
chan_set_ext(struct chan *ch, void *ext)
{
	ch->ext = ext;
}

void *
chan_ext(const struct chan *ch)
{
	return ch->ext;
}

uint32_t
chan_cap(const struct chan *ch)
{
	return ch->cap;
}

bool
chan_closed(const struct chan *ch)
{
	return (ch->flags & CHAN_CLOSED) != 0;
}

struct close_err *
chan_close_error(const struct chan *ch)
{
	return ch->err;
}

bool
chan_deleted(const struct chan *ch)
{
	return (ch->flags & CHAN_DELETED) != 0;
}

bool
chan_anonymous(const struct chan *ch)
{
	return (ch->flags & CHAN_ANONYMOUS) != 0;
}

void
chan_foreach_value(const struct chan *ch, void (*fn)(void *arg, const struct value *v), void *arg)
{
	const struct chan_back *b = ch->back;

	for (uint32_t i = 0; i < ch->nback; i++)
		fn(arg, (b = b->next)->v);
	for (uint32_t i = 0; i < ch->len; i++)
		fn(arg, ch->ring[(ch->head + i) % ch->size]);
}

void
chan_set_durable(struct chan *ch)
{
	ch->flags |= CHAN_DURABLE;
}

bool
chan_durable(const struct chan *ch)
{
	return (ch->flags & CHAN_DURABLE) != 0;
}

uint32_t
chan_nsenders(const struct chan *ch)
{
	return ch->nsend;
}

uint32_t
chan_nreceivers(const struct chan *ch)
{
	return ch->nrecv;
}

uint64_t
chan_buffered_bytes(const struct chan *ch)
{
	return ch->bytes;
}
