/*
 * call_spare.c: a thread's spare call records (conn_priv.h).
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "conn_priv.h"

/*
 * Ended heap calls kept for reuse by the thread that ended them, like Go's
 * sync.Pool: once a thread has had as many asynchronous operations in
 * flight, the next ones cost no malloc, free or condition variable set-up.
 * At most CALL_SPARE_MAX a thread (about 200 bytes each), freed when the
 * thread exits. Every condition variable is CLOCK_MONOTONIC, so a spare
 * call serves any connection.
 */
#define CALL_SPARE_MAX 1024

static __thread struct call *spare_calls;
static __thread unsigned nspare_calls;
static pthread_key_t spare_key;		/* its destructor empties an exiting thread's list */
static pthread_once_t spare_once = PTHREAD_ONCE_INIT;
static bool spare_ok;

static void
spare_drop(void *unused)
{
	struct call *call, *next;

	(void)unused;
	for (call = spare_calls; call != NULL; call = next) {
		next = call->spare_next;
		pthread_cond_destroy(&call->cond);
		free(call);
	}
	spare_calls = NULL;
	nspare_calls = 0;
}

static void
spare_init(void)
{
	spare_ok = pthread_key_create(&spare_key, spare_drop) == 0;
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
	pthread_once(&spare_once, spare_init);
	/* the key's value only makes its destructor run: the list is in spare_calls */
	if (spare_ok && nspare_calls < CALL_SPARE_MAX &&
	    (nspare_calls > 0 || pthread_setspecific(spare_key, &spare_calls) == 0)) {
		call->spare_next = spare_calls;
		spare_calls = call;
		nspare_calls++;
		return;
	}
	pthread_cond_destroy(&call->cond);
	free(call);
}
