/*
 * pool.c: the worker pool. One mutex guards both queues; an idle worker
 * polls briefly, then sleeps on a semaphore; an eventfd wakes the loop
 * thread when results are waiting, unless the loop is polling them.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "pool.h"

struct queue {
	struct pool_item *head, *tail;
};

struct pool {
	pthread_mutex_t lock;
	sem_t wake;			/* posted once per sleeping worker picked */
	struct queue todo;		/* submitted, not yet taken by a worker */
	size_t ntodo;			/* items in todo, for /metrics */
	struct queue done;		/* finished, done callback not yet run */
	unsigned nsleeping;		/* workers waiting on wake, not yet posted */
	unsigned nspinning;		/* workers polling todo (see spin) */
	unsigned maxspin;		/* at most this many at once */
	bool notified;			/* efd written since the loop last took done */
	bool loop_polling;		/* the loop takes done in pool_poll: no efd write */
	size_t inflight;		/* the loop thread's: submitted, done not yet run */
	atomic_bool has_done;		/* done is not empty: the polling loop's unlocked peek */
	bool stop;
	pthread_t *threads;
	unsigned size, started;
	int efd;
	struct event *ev;
};

static void
queue_push(struct queue *q, struct pool_item *it)
{
	it->next = NULL;
	if (q->tail)
		q->tail->next = it;
	else
		q->head = it;
	q->tail = it;
}

static struct pool_item *
queue_pop(struct queue *q)
{
	struct pool_item *it = q->head;

	if (it != NULL && (q->head = it->next) == NULL)
		q->tail = NULL;
	return it;
}

/*
 * Lock held. File a finished item; true if the caller must wake the loop.
 * One write per drain is enough: until pool_results clears notified under
 * the lock, whatever is pushed here will be taken with what is already
 * waiting, so a second write would only cost a syscall and a wake-up. None
 * while the loop polls: it takes done before it stops (pool_poll).
 */
static bool
finish_item(struct pool *p, struct pool_item *it)
{
	bool wake = !p->notified && !p->loop_polling;

	it->ran = true;
	queue_push(&p->done, it);
	atomic_store_explicit(&p->has_done, true, memory_order_release);
	p->notified |= wake;
	return wake;
}

/* Lock held. Everything finished, for run_done once the lock is let go. */
static struct queue
take_done(struct pool *p)
{
	struct queue q = p->done;

	p->done.head = p->done.tail = NULL;
	atomic_store_explicit(&p->has_done, false, memory_order_relaxed);
	return q;
}

/* Loop thread, unlocked: the done callbacks, in the order the work finished. */
static bool
run_done(struct pool *p, struct queue *q)
{
	struct pool_item *it;
	bool any = q->head != NULL;

	while ((it = queue_pop(q)) != NULL) {
		p->inflight--;
		it->done(it, true);
	}
	return any;
}

/* Not under the lock: the loop thread wakes and wants it at once. */
static void
notify_loop(struct pool *p)
{
	uint64_t one = 1;

	/* a full counter (EAGAIN) still means "readable": nothing is lost */
	if (write(p->efd, &one, sizeof one) < 0 && errno != EAGAIN)
		log_error("pool-notify-failed errno=%d", errno);
}

/*
 * A worker that finds nothing to do polls for SPIN_NS before it sleeps. A
 * fan-out job holds at most `workers` values, so with few workers the next
 * item comes only after the loop thread has taken the last result: a
 * round trip of a few tens of microseconds. On a VM a futex wake-up costs
 * about as much as that, and far more than a cheap stage (sha256 of 4 KiB
 * is 3 us), so staying awake for it halves the wake-ups per value.
 */
#define SPIN_NS		50000
#define SPIN_PAUSES	64		/* between two looks at todo: about 1 us */

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000 + (uint64_t)ts.tv_nsec;
}

static void
relax(void)
{
	for (int i = 0; i < SPIN_PAUSES; i++) {
#if defined(__x86_64__) || defined(__i386__)
		__builtin_ia32_pause();
#elif defined(__aarch64__)
		__asm__ __volatile__("yield");
#else
		__asm__ __volatile__("" ::: "memory");
#endif
	}
}

/*
 * Retake the lock, spinning rather than sleeping on it until end: holders
 * keep it for a few instructions. Past end, sleep on it: a holder that was
 * preempted needs the CPU more than we do.
 */
static void
relock(struct pool *p, uint64_t end)
{
	while (pthread_mutex_trylock(&p->lock) != 0) {
		if (now_ns() >= end) {
			pthread_mutex_lock(&p->lock);
			return;
		}
		relax();
	}
}

/*
 * Lock held, and held again on return. Looks at todo about once a
 * microsecond until end, under the lock: an unlocked peek would be a data
 * race to helgrind.
 */
static void
spin(struct pool *p)
{
	uint64_t end = now_ns() + SPIN_NS;

	p->nspinning++;
	while (p->todo.head == NULL && !p->stop && now_ns() < end) {
		pthread_mutex_unlock(&p->lock);
		relax();
		relock(p, end);
	}
	p->nspinning--;
}

/*
 * Lock held, and held again on return. Sleep until a submit (or pool_free)
 * picks this worker: it takes us off nsleeping and posts once for us.
 */
static void
sleep_worker(struct pool *p)
{
	p->nsleeping++;
	pthread_mutex_unlock(&p->lock);
	while (sem_wait(&p->wake) < 0 && errno == EINTR)
		;
	pthread_mutex_lock(&p->lock);
}

/* Lock held. The next item to run, waiting for one; NULL when the pool stops. */
static struct pool_item *
take_item(struct pool *p)
{
	if (p->todo.head == NULL && p->nspinning < p->maxspin)
		spin(p);
	while (!p->stop && p->todo.head == NULL)
		sleep_worker(p);
	if (p->stop)
		return NULL;
	p->ntodo--;
	return queue_pop(&p->todo);
}

static void *
worker_main(void *arg)
{
	struct pool *p = arg;
	struct pool_item *it;
	bool wake_loop;

	for (;;) {
		pthread_mutex_lock(&p->lock);
		it = take_item(p);
		pthread_mutex_unlock(&p->lock);
		if (it == NULL)
			return NULL;
		it->work(it);
		pthread_mutex_lock(&p->lock);
		wake_loop = finish_item(p, it);
		pthread_mutex_unlock(&p->lock);
		if (wake_loop)
			notify_loop(p);
	}
}

/* Loop thread: take every finished item at once, then run their callbacks unlocked. */
static void
pool_results(evutil_socket_t fd, short what, void *arg)
{
	struct pool *p = arg;
	struct queue q;
	uint64_t n;

	/* read before taking: a write landing after the read wakes us again, at worst for nothing */
	if (read(p->efd, &n, sizeof n) < 0 && errno != EAGAIN)
		log_error("pool-read-failed errno=%d", errno);
	pthread_mutex_lock(&p->lock);
	p->notified = false;
	q = take_done(p);
	pthread_mutex_unlock(&p->lock);
	run_done(p, &q);
}

/*
 * pool_poll's look without the lock: true when the call has nothing to
 * change. Only the loop thread writes loop_polling, so it may read it
 * unlocked; has_done is the workers', hence atomic.
 */
static bool
poll_unchanged(struct pool *p, bool polling)
{
	if (!polling)
		return !p->loop_polling;	/* never taken over: the eventfd is on */
	if (p->inflight == 0)
		return true;			/* nothing can finish */
	return p->loop_polling && !atomic_load_explicit(&p->has_done, memory_order_acquire);
}

/*
 * The lock is taken only when something finished, or when polling starts
 * with work in flight or ends after it started: a pass that finds nothing
 * reads one atomic, and a loop with nothing in the pool takes no lock. A
 * worker that files an item after the peek is seen by the next pass, or
 * by the last call, which takes the lock: past it, loop_polling is false
 * and the worker writes the eventfd.
 */
bool
pool_poll(void *arg, bool polling)
{
	struct pool *p = arg;
	struct queue q;

	if (poll_unchanged(p, polling))
		return false;
	pthread_mutex_lock(&p->lock);
	p->loop_polling = polling;
	q = take_done(p);
	pthread_mutex_unlock(&p->lock);
	return run_done(p, &q);
}

int
pool_new(struct pool **out, struct event_base *base, unsigned nthreads)
{
	struct pool *p = calloc(1, sizeof *p);
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

	*out = NULL;
	if (p == NULL)
		return -1;
	if (nthreads == 0)
		nthreads = ncpu > 0 ? (unsigned)ncpu : 1;
	p->size = nthreads;
	/*
	 * One spinner: on 2 vCPUs a second one took the CPU from the loop
	 * thread and the clients. None on one CPU, where the spin would only
	 * delay the thread that submits.
	 */
	p->maxspin = ncpu > 1;
	p->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	p->threads = calloc(nthreads, sizeof *p->threads);
	if (p->efd < 0 || p->threads == NULL)
		goto fail;
	p->ev = event_new(base, p->efd, EV_READ | EV_PERSIST, pool_results, p);
	if (p->ev == NULL || event_add(p->ev, NULL) < 0)
		goto fail;
	pthread_mutex_init(&p->lock, NULL);
	sem_init(&p->wake, 0, 0);
	*out = p;
	return 0;
fail:
	if (p->ev)
		event_free(p->ev);
	if (p->efd >= 0)
		close(p->efd);
	free(p->threads);
	free(p);
	return -1;
}

unsigned
pool_size(const struct pool *p)
{
	return p->size;
}

/* Start every worker with the signals blocked: they belong to the loop thread. */
static int
pool_start(struct pool *p)
{
	sigset_t all, old;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	while (p->started < p->size &&
	    pthread_create(&p->threads[p->started], NULL, worker_main, p) == 0)
		p->started++;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (p->started < p->size)
		log_warn("pool-start threads=%u wanted=%u", p->started, p->size);
	else
		log_info("pool-start threads=%u", p->started);
	return p->started > 0 ? 0 : -1;
}

/*
 * Wake a worker only when one sleeps and the spinning ones will not take
 * everything queued: busy ones look at todo before they sleep. Post after
 * unlocking, so that it does not run into the lock we hold.
 */
int
pool_submit(struct pool *p, struct pool_item *it)
{
	bool wake;

	if (p->started == 0 && pool_start(p) < 0)
		return -1;
	it->ran = false;
	p->inflight++;
	pthread_mutex_lock(&p->lock);
	queue_push(&p->todo, it);
	p->ntodo++;
	if ((wake = p->nsleeping > 0 && p->ntodo > p->nspinning))
		p->nsleeping--;
	pthread_mutex_unlock(&p->lock);
	if (wake)
		sem_post(&p->wake);
	return 0;
}

size_t
pool_queued(struct pool *p)
{
	size_t n;

	pthread_mutex_lock(&p->lock);
	n = p->ntodo;
	pthread_mutex_unlock(&p->lock);
	return n;
}

void
pool_free(struct pool *p)
{
	struct pool_item *it;
	unsigned n;

	if (p == NULL)
		return;
	pthread_mutex_lock(&p->lock);
	p->stop = true;
	n = p->nsleeping;
	p->nsleeping = 0;
	pthread_mutex_unlock(&p->lock);
	while (n-- > 0)
		sem_post(&p->wake);
	for (unsigned i = 0; i < p->started; i++)
		pthread_join(p->threads[i], NULL);
	/* no worker is left: the queues are ours without the lock */
	run_done(p, &p->done);
	while ((it = queue_pop(&p->todo)) != NULL)
		it->done(it, false);
	event_free(p->ev);
	close(p->efd);
	sem_destroy(&p->wake);
	pthread_mutex_destroy(&p->lock);
	free(p->threads);
	free(p);
}
