/*
 * ctx.c: contexts, after Go's context package.
 *
 * Contexts form a tree. One global lock guards the whole forest (the
 * parent/child links, each context's done state, its watchers and the timer
 * list): cancellation walks down the tree and must see a consistent
 * snapshot, and contexts are cheap, rarely contended objects.
 *
 * Deadlines are fired by one lazily started timer thread that sleeps until
 * the earliest pending deadline, so a context's done fd becomes readable on
 * time even when nobody calls anything.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"

#include "chanclient.h"
#include "ctx_internal.h"

enum ctx_kind { CTX_BACKGROUND, CTX_CANCEL, CTX_VALUE };

struct chan_ctx {
	enum ctx_kind kind;
	unsigned refs;			/* atomic: asynchronous operations take one each */
	int err;			/* 0, CHAN_ECANCELED or CHAN_EDEADLINE */
	int64_t deadline;		/* effective (min with ancestors); 0: none */
	bool own_deadline;		/* on the timer list while not done */
	chan_ctx_t *parent;
	chan_ctx_t *children;		/* first child */
	chan_ctx_t *sib_prev, *sib_next;
	chan_ctx_t *tm_prev, *tm_next;	/* timer list, sorted by deadline */
	struct ctx_watch *watches;
	int done_fd;			/* eventfd, -1 until asked for */
	const void *key;
	void *val;
};

static pthread_mutex_t ctx_lock = PTHREAD_MUTEX_INITIALIZER;
static chan_ctx_t background = { .kind = CTX_BACKGROUND, .refs = 1, .done_fd = -1 };

/* timer thread state, all under ctx_lock */
static pthread_once_t timer_once = PTHREAD_ONCE_INIT;
static pthread_cond_t timer_cond;
static bool timer_ok;
static chan_ctx_t *timer_head;

int64_t
chan_now(void)
{
	return clock_now_ns();
}

chan_ctx_t *
chan_background(void)
{
	return &background;
}

chan_ctx_t *
ctx_or_background(chan_ctx_t *ctx)
{
	return ctx ? ctx : &background;
}

/* ---- timer ------------------------------------------------------------------- */

static void
timer_unlink(chan_ctx_t *c)
{
	if (!c->own_deadline)
		return;
	if (c->tm_prev)
		c->tm_prev->tm_next = c->tm_next;
	else
		timer_head = c->tm_next;
	if (c->tm_next)
		c->tm_next->tm_prev = c->tm_prev;
	c->tm_prev = c->tm_next = NULL;
	c->own_deadline = false;
}

static void
timer_link(chan_ctx_t *c)
{
	chan_ctx_t *p = NULL, *n = timer_head;

	while (n && n->deadline <= c->deadline) {
		p = n;
		n = n->tm_next;
	}
	c->tm_prev = p;
	c->tm_next = n;
	if (p)
		p->tm_next = c;
	else
		timer_head = c;
	if (n)
		n->tm_prev = c;
	c->own_deadline = true;
	if (timer_head == c)
		pthread_cond_signal(&timer_cond);
}

static void ctx_done_locked(chan_ctx_t *c, int err);

static void *
timer_main(void *arg)
{
	pthread_mutex_lock(&ctx_lock);
	for (;;) {
		struct timespec ts;
		int64_t now = clock_now_ns();

		if (timer_head == NULL) {
			pthread_cond_wait(&timer_cond, &ctx_lock);
			continue;
		}
		if (timer_head->deadline <= now) {
			ctx_done_locked(timer_head, CHAN_EDEADLINE);
			continue;
		}
		ts.tv_sec = timer_head->deadline / NSEC_PER_SEC;
		ts.tv_nsec = timer_head->deadline % NSEC_PER_SEC;
		pthread_cond_timedwait(&timer_cond, &ctx_lock, &ts);
	}
	return NULL;
}

static void
timer_start(void)
{
	pthread_condattr_t ca;
	pthread_attr_t ta;
	pthread_t t;

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&timer_cond, &ca);
	pthread_condattr_destroy(&ca);
	pthread_attr_init(&ta);
	pthread_attr_setdetachstate(&ta, PTHREAD_CREATE_DETACHED);
	timer_ok = pthread_create(&t, &ta, timer_main, NULL) == 0;
	pthread_attr_destroy(&ta);
}

/* ---- the tree ---------------------------------------------------------------- */

static void
signal_done_fd(int fd)
{
	uint64_t one = 1;

	if (fd >= 0 && write(fd, &one, sizeof one) < 0) {
		/* an eventfd only fails when its counter would overflow: already readable */
	}
}

/* Make c and its descendants done with err (first error wins). */
static void
ctx_done_locked(chan_ctx_t *c, int err)
{
	struct ctx_watch *w, *wn;
	chan_ctx_t *ch;

	if (c->err != 0)
		return;
	__atomic_store_n(&c->err, err, __ATOMIC_RELEASE);	/* chan_ctx_err reads it unlocked */
	timer_unlink(c);
	signal_done_fd(c->done_fd);
	for (w = c->watches; w != NULL; w = wn) {
		wn = w->next;
		w->prev = w->next = NULL;
		w->fn(w, err);
	}
	c->watches = NULL;
	for (ch = c->children; ch != NULL; ch = ch->sib_next)
		ctx_done_locked(ch, err);
}

static void
child_unlink(chan_ctx_t *c)
{
	if (c->parent == NULL)
		return;
	if (c->sib_prev)
		c->sib_prev->sib_next = c->sib_next;
	else if (c->parent->children == c)
		c->parent->children = c->sib_next;
	if (c->sib_next)
		c->sib_next->sib_prev = c->sib_prev;
	c->sib_prev = c->sib_next = NULL;
}

/* A new child of parent; its deadline is min(parent's, deadline). */
static int
ctx_new(chan_ctx_t **out, chan_ctx_t *parent, enum ctx_kind kind, int64_t deadline)
{
	chan_ctx_t *c;

	if (out == NULL)
		return CHAN_EINVAL;
	if ((c = calloc(1, sizeof *c)) == NULL)
		return CHAN_ENOMEM;
	parent = ctx_or_background(parent);
	c->kind = kind;
	c->refs = 1;
	c->done_fd = -1;
	if (deadline != 0)
		pthread_once(&timer_once, timer_start);
	if (deadline != 0 && !timer_ok) {
		free(c);
		return CHAN_ENOMEM;	/* no timer thread: the deadline could not fire */
	}
	pthread_mutex_lock(&ctx_lock);
	__atomic_add_fetch(&parent->refs, 1, __ATOMIC_RELAXED);
	c->parent = parent;
	c->deadline = parent->deadline;
	if (deadline != 0 && (c->deadline == 0 || deadline < c->deadline))
		c->deadline = deadline;
	if (parent->err != 0) {
		c->err = parent->err;
	} else {
		c->sib_next = parent->children;
		if (parent->children)
			parent->children->sib_prev = c;
		parent->children = c;
		if (deadline != 0 && c->deadline == deadline) {
			if (deadline <= clock_now_ns())
				ctx_done_locked(c, CHAN_EDEADLINE);
			else
				timer_link(c);
		}
	}
	pthread_mutex_unlock(&ctx_lock);
	*out = c;
	return CHAN_OK;
}

int
chan_with_cancel(chan_ctx_t **out, chan_ctx_t *parent)
{
	return ctx_new(out, parent, CTX_CANCEL, 0);
}

int
chan_with_deadline(chan_ctx_t **out, chan_ctx_t *parent, int64_t deadline_ns)
{
	if (deadline_ns <= 0)
		deadline_ns = 1;	/* 0 means "none" inside: keep it in the past */
	return ctx_new(out, parent, CTX_CANCEL, deadline_ns);
}

int
chan_with_timeout(chan_ctx_t **out, chan_ctx_t *parent, int64_t timeout_ns)
{
	int64_t now = clock_now_ns();

	if (timeout_ns > INT64_MAX - now)
		timeout_ns = INT64_MAX - now;	/* "forever", without overflow */
	return chan_with_deadline(out, parent, now + timeout_ns);
}

int
chan_with_value(chan_ctx_t **out, chan_ctx_t *parent, const void *key, void *val)
{
	int rc;

	if (key == NULL)
		return CHAN_EINVAL;
	if ((rc = ctx_new(out, parent, CTX_VALUE, 0)) == CHAN_OK) {
		(*out)->key = key;
		(*out)->val = val;
	}
	return rc;
}

void *
chan_ctx_value(chan_ctx_t *ctx, const void *key)
{
	/* keys and values never change after creation, parents outlive children */
	for (ctx = ctx_or_background(ctx); ctx != NULL; ctx = ctx->parent) {
		if (ctx->kind == CTX_VALUE && ctx->key == key)
			return ctx->val;
	}
	return NULL;
}

void
ctx_ref(chan_ctx_t *ctx)
{
	if (ctx == NULL || ctx == &background)
		return;
	/* no lock: a reference is taken per asynchronous operation, by many threads */
	__atomic_add_fetch(&ctx->refs, 1, __ATOMIC_RELAXED);
}

int
chan_cancel(chan_ctx_t *ctx)
{
	if (ctx == NULL || ctx->kind != CTX_CANCEL)
		return CHAN_EINVAL;
	pthread_mutex_lock(&ctx_lock);
	ctx_done_locked(ctx, CHAN_ECANCELED);
	pthread_mutex_unlock(&ctx_lock);
	return CHAN_OK;
}

int
chan_ctx_err(chan_ctx_t *ctx)
{
	return ctx_err_at(ctx, 0);
}

int
ctx_err_at(chan_ctx_t *ctx, int64_t now)
{
	int err;

	ctx = ctx_or_background(ctx);
	if (ctx == &background)
		return 0;
	/* err only ever goes from 0 to an error: while not done, every call asks without the lock */
	if ((err = __atomic_load_n(&ctx->err, __ATOMIC_ACQUIRE)) != 0)
		return err;
	if (ctx->deadline == 0)
		return 0;
	if (now == 0)
		now = clock_now_ns();
	if (ctx->deadline > now)
		return 0;
	pthread_mutex_lock(&ctx_lock);
	/* the deadline has passed: do not depend on the timer thread's punctuality */
	if (ctx->err == 0) {
		chan_ctx_t *c = ctx;

		while (c->parent && c->parent->deadline == ctx->deadline)
			c = c->parent;		/* the ancestor that owns this deadline */
		ctx_done_locked(c, CHAN_EDEADLINE);
	}
	err = ctx->err;
	pthread_mutex_unlock(&ctx_lock);
	return err;
}

bool
chan_ctx_deadline(chan_ctx_t *ctx, int64_t *deadline_ns)
{
	int64_t d = ctx_deadline_ns(ctx);

	if (d != 0 && deadline_ns)
		*deadline_ns = d;
	return d != 0;
}

int64_t
ctx_deadline_ns(chan_ctx_t *ctx)
{
	return ctx_or_background(ctx)->deadline;	/* immutable */
}

int
chan_ctx_done_fd(chan_ctx_t *ctx)
{
	int fd;

	ctx = ctx_or_background(ctx);
	pthread_mutex_lock(&ctx_lock);
	if (ctx->done_fd < 0) {
		ctx->done_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (ctx->err != 0)
			signal_done_fd(ctx->done_fd);
	}
	fd = ctx->done_fd;
	pthread_mutex_unlock(&ctx_lock);
	return fd >= 0 ? fd : CHAN_ENOMEM;
}

void
chan_ctx_free(chan_ctx_t *ctx)
{
	while (ctx != NULL && ctx != &background) {
		chan_ctx_t *parent;

		/* only the last reference's holder goes on: nobody else can reach it but the lists */
		if (__atomic_sub_fetch(&ctx->refs, 1, __ATOMIC_ACQ_REL) > 0)
			return;
		pthread_mutex_lock(&ctx_lock);
		child_unlink(ctx);
		timer_unlink(ctx);
		parent = ctx->parent;
		pthread_mutex_unlock(&ctx_lock);
		if (ctx->done_fd >= 0)
			close(ctx->done_fd);
		free(ctx);
		ctx = parent;	/* drop the child's reference on it */
	}
}

/* ---- watches --------------------------------------------------------------- */

int
ctx_watch(chan_ctx_t *ctx, struct ctx_watch *w)
{
	int err;

	ctx = ctx_or_background(ctx);
	if (ctx == &background)
		return 0;	/* never done: spare every call the global lock */
	pthread_mutex_lock(&ctx_lock);
	if (ctx->err == 0 && ctx->deadline != 0 && ctx->deadline <= clock_now_ns()) {
		pthread_mutex_unlock(&ctx_lock);
		chan_ctx_err(ctx);	/* fire the passed deadline now */
		pthread_mutex_lock(&ctx_lock);
	}
	if ((err = ctx->err) == 0) {
		w->prev = NULL;
		w->next = ctx->watches;
		if (ctx->watches)
			ctx->watches->prev = w;
		ctx->watches = w;
	}
	pthread_mutex_unlock(&ctx_lock);
	return err;
}

void
ctx_unwatch(chan_ctx_t *ctx, struct ctx_watch *w)
{
	ctx = ctx_or_background(ctx);
	if (ctx == &background)
		return;
	pthread_mutex_lock(&ctx_lock);
	/* a fired watch was already unlinked (prev = next = NULL, not the head) */
	if (w->prev)
		w->prev->next = w->next;
	else if (ctx->watches == w)
		ctx->watches = w->next;
	if (w->next)
		w->next->prev = w->prev;
	w->prev = w->next = NULL;
	pthread_mutex_unlock(&ctx_lock);
}
