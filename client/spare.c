/*
 * spare.c: a thread's spare records (conn_priv.h), like Go's sync.Pool:
 * ended call records (an asynchronous operation's handle inside) and
 * small reply frames wait here for the thread's next ones, so that a
 * steady pipeline allocates nothing for them. Each
 * list is bounded; a thread's lists are freed when it exits. A thread that
 * is alone on its connection both reads its replies and ends its calls,
 * so what it frees is what it allocates next.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "conn_priv.h"

#define CALL_SPARE_MAX 1024	/* about 225 bytes each */
#define REPLY_SPARE_MAX 1024	/* REPLY_SPARE_BODY + 16 bytes each */

static __thread struct call *spare_calls;
static __thread unsigned nspare_calls;
static __thread struct reply *spare_replies;
static __thread unsigned nspare_replies;
static pthread_key_t spare_key;		/* its destructor empties an exiting thread's lists */
static pthread_once_t spare_once = PTHREAD_ONCE_INIT;
static bool spare_ok;

static void
spare_drop(void *unused)
{
	struct call *call, *cnext;
	struct reply *rp, *rnext;

	(void)unused;
	for (call = spare_calls; call != NULL; call = cnext) {
		cnext = call->spare_next;
		pthread_cond_destroy(&call->cond);
		free(call);
	}
	for (rp = spare_replies; rp != NULL; rp = rnext) {
		rnext = rp->next;
		free(rp);
	}
	spare_calls = NULL;
	spare_replies = NULL;
	nspare_calls = nspare_replies = 0;
}

static void
spare_init(void)
{
	spare_ok = pthread_key_create(&spare_key, spare_drop) == 0;
}

/* May this thread keep one more record (and will its lists be freed at exit)? */
static bool
spare_room(unsigned n, unsigned max)
{
	pthread_once(&spare_once, spare_init);
	if (!spare_ok || n >= max)
		return false;
	/* the key's value only makes its destructor run: the lists are in the __thread variables */
	return n > 0 || pthread_getspecific(spare_key) != NULL ||
	    pthread_setspecific(spare_key, &spare_calls) == 0;
}

struct call *
call_spare_get(chan_conn_t *c)
{
	struct call *call;

	if ((call = spare_calls) != NULL) {
		spare_calls = call->spare_next;
		nspare_calls--;
		return call;
	}
	if ((call = malloc(sizeof *call)) != NULL)
		pthread_cond_init(&call->cond, &c->cattr);
	return call;
}

void
call_spare_put(struct call *call)
{
	if (spare_room(nspare_calls, CALL_SPARE_MAX)) {
		call->spare_next = spare_calls;
		spare_calls = call;
		nspare_calls++;
		return;
	}
	pthread_cond_destroy(&call->cond);
	free(call);
}

struct reply *
reply_get(size_t len)
{
	struct reply *rp;

	if (len > REPLY_SPARE_BODY)
		return malloc(sizeof *rp + len);
	if ((rp = spare_replies) != NULL) {
		spare_replies = rp->next;
		nspare_replies--;
		return rp;
	}
	return malloc(sizeof *rp + REPLY_SPARE_BODY);
}

void
reply_put(struct reply *rp)
{
	if (rp != NULL && rp->len <= REPLY_SPARE_BODY && spare_room(nspare_replies, REPLY_SPARE_MAX)) {
		rp->next = spare_replies;
		spare_replies = rp;
		nspare_replies++;
		return;
	}
	free(rp);
}
