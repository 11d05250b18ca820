/*
 * pool.h: the worker pool: pthreads that run CPU work (fan-out job stages)
 * off the loop thread (DESIGN.md §3).
 *
 * Work goes in through a mutex-protected FIFO; finished items go back to
 * the loop thread through an eventfd watched by the event base (one write
 * per batch the loop takes), or, while the loop polls, through pool_poll
 * (no write, no read); their done callbacks run there, in the order the
 * workers finished. Only the loop thread touches channel state:
 * a work function sees nothing but its own item (memcached's thread.c
 * hand-off).
 *
 * Idle workers: one of them (none on a single CPU) polls the queue for
 * 50 us before it sleeps, so that a job that submits the next item as soon
 * as the last one is back finds it awake; the others sleep at once, and a
 * submit wakes one only when the spinner will not take the item. So an
 * idle pool costs nothing, and a busy one up to one CPU spinning.
 *
 * Ownership: the caller owns each struct pool_item (usually embedded in its
 * own record) from submit until its done callback has run; the pool writes
 * only next and ran. The threads are started on the first submit, so
 * a server that forks into the background after pool_new still gets them.
 *
 * Thread-safety: pool_new, pool_submit, pool_poll, pool_free and the done
 * callbacks belong to the loop thread; work functions run on workers, concurrently;
 * pool_size and pool_queued may be called from any thread.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef CHAND_POOL_H
#define CHAND_POOL_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/event.h>

struct pool;
struct pool_item;

/* Runs on a worker thread. */
typedef void pool_work_fn(struct pool_item *it);
/* Runs on the loop thread; ran is false when the pool was freed before the work ran. */
typedef void pool_done_fn(struct pool_item *it, bool ran);

struct pool_item {
	struct pool_item *next;		/* the pool's: queue link */
	pool_work_fn *work;
	pool_done_fn *done;
	bool ran;			/* the pool's */
};

/* nthreads 0 = one per online CPU. Returns 0, or -1 (out of memory, no eventfd). */
int pool_new(struct pool **out, struct event_base *base, unsigned nthreads);
unsigned pool_size(const struct pool *p);
/*
 * Queue it (work and done set by the caller). Returns 0, or -1 when no
 * worker thread could be started (nothing is queued then).
 */
int pool_submit(struct pool *p, struct pool_item *it);
/*
 * The loop's poller (loop.h's loop_poll_fn; arg is the pool): runs the
 * done callbacks of what finished. While polling is true the workers do
 * not write the eventfd. Returns true when it ran any.
 */
bool pool_poll(void *arg, bool polling);
/* Items submitted and not yet taken by a worker (the queue depth). */
size_t pool_queued(struct pool *p);
/*
 * Stop: workers finish the item in hand and exit, and are joined; then
 * every item still owned by the pool gets its done callback (ran = false
 * for work that never ran). Accepts NULL.
 */
void pool_free(struct pool *p);

#endif
