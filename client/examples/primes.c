/*
 * primes.c: fan-out, fan-in: several prime finders read one channel.
 *
 * Mirrors the notes' "Fan-Out, Fan-In" program:
 *
 *	randIntStream := toInt(done, repeatFn(done, rand))
 *	finders := make([]<-chan interface{}, numFinders)
 *	for i := 0; i < numFinders; i++ {
 *		finders[i] = primeFinder(done, randIntStream)	// fan out
 *	}
 *	for prime := range take(done, fanIn(done, finders...), 10) {
 *		fmt.Printf("\t%d\n", prime)
 *	}
 *
 * with fanIn's multiplex goroutine per finder and a closer that waits for
 * them (a WaitGroup: here, pthread_join) and closes the merged stream.
 * Every stage is a thread, every stream an unbuffered chand channel; the
 * finders compete for the generator's values, so each number is tested by
 * exactly one of them.
 *
 * Two runs. The first generates 2..999 and ranges over the merged stream
 * to its end; the order of arrival varies, so the primes are sorted before
 * printing. The second generates without end from 1000000, takes 10
 * primes and closes done, which stops the whole tree of threads.
 *
 * Output:
 *	Spinning up 4 prime finders.
 *	168 primes below 1000: 2 3 5 7 11 13 17 19 23 29 ... 997
 *	took 10 primes >= 1000000, all prime; close(done) stopped 10 threads
 *
 * Usage: primes tcp://127.0.0.1:7420
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include "example.h"

#define NFINDERS 4
#define NTHREADS (2 + 2 * NFINDERS)	/* generator, finders, multiplexers, closer */

struct fan {
	chan_t *done, *ints, *found[NFINDERS], *merged;
	long from, to;			/* to 0: no end */
	pthread_t gen, finder[NFINDERS], mux[NFINDERS], closer;
};

struct worker {
	struct fan *f;
	int i;
};

static void *
generator(void *arg)
{
	struct fan *f = arg;
	long v;

	for (v = f->from; f->to == 0 || v < f->to; v++)
		if (!send_or_done(f->done, f->ints, v))
			break;
	CHECK(chan_close(NULL, f->ints));
	return NULL;
}

/* Forward the values of in that pass test to out, until in closes or done. */
static void
forward(struct fan *f, chan_t *in, chan_t *out, bool (*test)(long))
{
	long v;
	bool ok;

	for (;;) {
		CHECK(recv_int(NULL, in, &v, &ok));
		if (!ok || ((test == NULL || test(v)) && !send_or_done(f->done, out, v)))
			break;
	}
}

static void *
prime_finder(void *arg)
{
	struct worker *w = arg;

	forward(w->f, w->f->ints, w->f->found[w->i], is_prime);
	CHECK(chan_close(NULL, w->f->found[w->i]));
	return NULL;
}

static void *
multiplex(void *arg)
{
	struct worker *w = arg;

	forward(w->f, w->f->found[w->i], w->f->merged, NULL);
	return NULL;
}

static void *
closer(void *arg)
{
	struct fan *f = arg;
	int i;

	for (i = 0; i < NFINDERS; i++)		/* wg.Wait() */
		pthread_join(f->mux[i], NULL);
	CHECK(chan_close(NULL, f->merged));
	return NULL;
}

static void
fan_start(struct fan *f, struct worker *w, chan_conn_t *conn)
{
	int i;

	CHECK(chan_make(NULL, conn, NULL, 0, &f->done));
	CHECK(chan_make(NULL, conn, NULL, 0, &f->ints));
	CHECK(chan_make(NULL, conn, NULL, 0, &f->merged));
	example_thread(&f->gen, generator, f);
	for (i = 0; i < NFINDERS; i++) {
		w[i] = (struct worker){ f, i };
		CHECK(chan_make(NULL, conn, NULL, 0, &f->found[i]));
		example_thread(&f->finder[i], prime_finder, &w[i]);
		example_thread(&f->mux[i], multiplex, &w[i]);
	}
	example_thread(&f->closer, closer, f);
}

/* close(done), wait for every thread, free the handles; returns the thread count. */
static int
fan_stop(struct fan *f)
{
	int i;

	CHECK(chan_close(NULL, f->done));
	pthread_join(f->gen, NULL);
	for (i = 0; i < NFINDERS; i++)
		pthread_join(f->finder[i], NULL);
	/* the closer joins the multiplexers, which read found[]: free only after it */
	pthread_join(f->closer, NULL);
	for (i = 0; i < NFINDERS; i++)
		chan_free(f->found[i]);
	chan_free(f->done);
	chan_free(f->ints);
	chan_free(f->merged);
	return NTHREADS;
}

static int
cmp_long(const void *a, const void *b)
{
	long x = *(const long *)a, y = *(const long *)b;

	return (x > y) - (x < y);
}

static void
below_1000(chan_conn_t *conn)
{
	struct fan f = { .from = 2, .to = 1000 };
	struct worker w[NFINDERS];
	long primes[1000], v;
	size_t n = 0, i;
	bool ok;

	fan_start(&f, w, conn);
	for (;;) {
		CHECK(recv_int(NULL, f.merged, &v, &ok));
		if (!ok)
			break;
		if (n < 1000)
			primes[n++] = v;
	}
	fan_stop(&f);
	qsort(primes, n, sizeof primes[0], cmp_long);
	printf("%zu primes below 1000:", n);
	for (i = 0; i < n && i < 10; i++)
		printf(" %ld", primes[i]);
	printf(" ... %ld\n", n ? primes[n - 1] : 0);
	if (n != 168)
		exit(1);
}

static void
take_10(chan_conn_t *conn)
{
	struct fan f = { .from = 1000000, .to = 0 };
	struct worker w[NFINDERS];
	long v;
	bool ok, all = true;
	int i, threads;

	fan_start(&f, w, conn);
	for (i = 0; i < 10; i++) {		/* take(done, fanIn(...), 10) */
		CHECK(recv_int(NULL, f.merged, &v, &ok));
		all = all && ok && v >= 1000000 && is_prime(v);
	}
	threads = fan_stop(&f);
	printf("took 10 primes >= 1000000, %s; close(done) stopped %d threads\n",
	    all ? "all prime" : "NOT ALL PRIME", threads);
	if (!all)
		exit(1);
}

int
main(int argc, char **argv)
{
	chan_conn_t *conn = example_dial(example_addr(argc, argv));

	printf("Spinning up %d prime finders.\n", NFINDERS);
	below_1000(conn);
	take_10(conn);
	chan_conn_close(conn);
	return 0;
}
