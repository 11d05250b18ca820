/*
 * primes_server.c: the notes' fan-out prime finder, run inside chand.
 *
 * Mirrors the notes' "Fan-Out, Fan-In" program:
 *
 *	randIntStream := toInt(done, repeatFn(done, rand))
 *	finders := make([]<-chan interface{}, numFinders)
 *	for i := 0; i < numFinders; i++ {
 *		finders[i] = primeFinder(done, randIntStream)
 *	}
 *	for prime := range take(done, fanIn(done, finders...), 10) {
 *		fmt.Printf("\t%d\n", prime)
 *	}
 *
 * The finders and their fan-in are one FAN_OUT job on the server's worker
 * pool with the built-in `isprime` stage (a filter: primes go on, other
 * numbers are dropped); `take` is a TAKE link. With `ordered` the results
 * leave in input order, which the notes' fan-in cannot promise, so the
 * output is fixed for a fixed random seed.
 *
 * Two runs. The first sends 2..999 and ranges over the job's output to its
 * end. The second has a client thread generate random numbers below
 * 50000000 (repeatFn(done, rand)) until done closes; take(10) ends after ten
 * primes, close(done) stops the generator and the job.
 *
 * Output:
 *	Spinning up 4 prime finders on the server.
 *	168 primes below 1000: 2 3 5 7 11 13 17 19 23 29 ... 997
 *	Primes:
 *		40425851
 *		38290519
 *		... (ten primes)
 *	took 10 primes, all prime, in input order; close(done) stopped the job
 *
 * Usage: primes_server tcp://127.0.0.1:7420
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include "example.h"

#define NFINDERS 4

struct gen {
	chan_t *done, *ints;
	long last[4096];		/* what was sent, to check the order */
	size_t n;
};

/* The job, with as many finders as the pool allows (at most NFINDERS). */
static int
prime_finders(chan_t *in, chan_t *done, chan_link_t **link, chan_t **out)
{
	chan_link_opts_t opts = { .done = done };
	int workers = NFINDERS, rc;

	while ((rc = chan_fan_out(NULL, in, "isprime", (size_t)workers, true, &opts, link, out)) ==
	    CHAN_ELIMIT && workers > 1)
		workers /= 2;		/* a smaller pool than NFINDERS */
	CHECK(rc);
	return workers;
}

static void
below_1000(chan_conn_t *conn)
{
	chan_t *in, *out;
	chan_link_t *job;
	long primes[200], v;
	size_t n = 0, i;
	bool ok;

	CHECK(chan_make(NULL, conn, NULL, 1000, &in));
	for (v = 2; v < 1000; v++)
		CHECK(send_int(NULL, in, v));
	CHECK(chan_close(NULL, in));
	printf("Spinning up %d prime finders on the server.\n", prime_finders(in, NULL, &job, &out));
	for (;;) {
		CHECK(recv_int(NULL, out, &v, &ok));
		if (!ok)
			break;
		if (n < 200)
			primes[n++] = v;
	}
	CHECK(chan_link_wait(job, NULL));
	printf("%zu primes below 1000:", n);
	for (i = 0; i < n && i < 10; i++)
		printf(" %ld", primes[i]);
	printf(" ... %ld\n", n ? primes[n - 1] : 0);
	if (n != 168)
		exit(1);
	chan_link_free(job);
	chan_free(in);
	chan_free(out);
}

static void *
rand_ints(void *arg)
{
	struct gen *g = arg;
	unsigned long seed = 1;

	do {		/* repeatFn(done, func() interface{} { return rand.Intn(50000000) }) */
		seed = (seed * 1103515245 + 12345) & 0x7fffffff;
		if (g->n < sizeof g->last / sizeof g->last[0])
			g->last[g->n++] = (long)(seed % 50000000);
	} while (send_or_done(g->done, g->ints, (long)(seed % 50000000)));
	return NULL;
}

/* Is p[0..n) a subsequence of the generated numbers? (input order) */
static bool
in_order(const struct gen *g, const long *p, size_t n)
{
	size_t j = 0;

	for (size_t i = 0; i < g->n && j < n; i++)
		if (g->last[i] == p[j])
			j++;
	return j == n;
}

static void
take_10(chan_conn_t *conn)
{
	static struct gen g;
	chan_link_t *job, *take;
	chan_t *found, *ten;
	pthread_t t;
	long primes[10], v;
	size_t n = 0;
	bool ok, all = true;

	CHECK(chan_make(NULL, conn, NULL, 0, &g.done));
	CHECK(chan_make(NULL, conn, NULL, 0, &g.ints));
	example_thread(&t, rand_ints, &g);
	prime_finders(g.ints, g.done, &job, &found);
	CHECK(chan_take(NULL, found, 10, NULL, &take, &ten));
	printf("Primes:\n");
	for (;;) {		/* range take(done, ..., 10) */
		CHECK(recv_int(NULL, ten, &v, &ok));
		if (!ok || n == 10)
			break;
		printf("\t%ld\n", v);
		primes[n++] = v;
		all = all && is_prime(v);
	}
	CHECK(chan_link_wait(take, NULL));
	CHECK(chan_close(NULL, g.done));
	pthread_join(t, NULL);
	if (chan_link_wait(job, NULL) != CHAN_ECANCELED)
		exit(1);
	printf("took %zu primes, %s, %s; close(done) stopped the job\n", n,
	    all ? "all prime" : "NOT ALL PRIME", in_order(&g, primes, n) ? "in input order" : "OUT OF ORDER");
	if (n != 10 || !all)
		exit(1);
	chan_link_free(take);
	chan_link_free(job);
	chan_free(ten);
	chan_free(found);
	chan_free(g.ints);
	chan_free(g.done);
}

int
main(int argc, char **argv)
{
	chan_conn_t *conn = example_dial(example_addr(argc, argv));

	below_1000(conn);
	take_10(conn);
	chan_conn_close(conn);
	return 0;
}
