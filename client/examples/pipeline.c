/*
 * pipeline.c: generator -> multiply -> add -> multiply, stopped by done.
 *
 * Mirrors the notes' "Best Practices for Constructing Pipelines":
 *
 *	generator := func(done <-chan interface{}, integers ...int) <-chan int
 *	multiply := func(done <-chan interface{}, intStream <-chan int, multiplier int) <-chan int
 *	add := func(done <-chan interface{}, intStream <-chan int, additive int) <-chan int
 *	// each stage: go func() { defer close(out); for i := range in {
 *	//	select { case <-done: return; case out <- f(i): } } }()
 *	done := make(chan interface{})
 *	defer close(done)
 *	intStream := generator(done, 1, 2, 3, 4)
 *	pipeline := multiply(done, add(done, multiply(done, intStream, 2), 1), 2)
 *	for v := range pipeline { fmt.Println(v) }
 *
 * Each stage is a thread; stages pass values through unbuffered anonymous
 * channels on one shared connection (the connection multiplexes every
 * thread's blocking calls). The first run ranges to the end; the second
 * takes two values and closes done: every stage leaves, the ones blocked
 * on a send through their select's done case, the others because their
 * input was closed, and each closes its output on the way out.
 *
 * Output:
 *	6
 *	10
 *	14
 *	18
 *	4 stages exited after the pipeline drained
 *	6
 *	10
 *	4 stages exited after close(done) with 2 values taken
 *
 * Usage: pipeline tcp://127.0.0.1:7420
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include "example.h"

#define NSTAGES 4

struct stage {
	chan_t *in, *out, *done;	/* in is NULL for the generator */
	char op;			/* 'g'enerate, '*' or '+' */
	long k;
	pthread_t thread;
};

static void *
stage_main(void *arg)
{
	struct stage *s = arg;
	long v, i;
	bool ok;

	if (s->op == 'g') {
		for (i = 1; i <= s->k && send_or_done(s->done, s->out, i); i++)
			;
	} else {
		for (;;) {			/* for v := range in */
			CHECK(recv_int(NULL, s->in, &v, &ok));
			if (!ok || !send_or_done(s->done, s->out, s->op == '*' ? v * s->k : v + s->k))
				break;
		}
	}
	CHECK(chan_close(NULL, s->out));	/* defer close(out) */
	return NULL;
}

/* generator(done, 1..4) |> multiply 2 |> add 1 |> multiply 2; take 0 = all */
static void
run(chan_conn_t *conn, int take)
{
	static const struct { char op; long k; } plan[NSTAGES] =
	    { { 'g', 4 }, { '*', 2 }, { '+', 1 }, { '*', 2 } };
	struct stage st[NSTAGES];
	chan_t *done;
	int i, taken = 0;
	long v;
	bool ok;

	CHECK(chan_make(NULL, conn, NULL, 0, &done));
	for (i = 0; i < NSTAGES; i++) {
		st[i] = (struct stage){ .in = i ? st[i - 1].out : NULL, .done = done,
		    .op = plan[i].op, .k = plan[i].k };
		CHECK(chan_make(NULL, conn, NULL, 0, &st[i].out));
		example_thread(&st[i].thread, stage_main, &st[i]);
	}
	while (take == 0 || taken < take) {	/* for v := range pipeline */
		CHECK(recv_int(NULL, st[NSTAGES - 1].out, &v, &ok));
		if (!ok)
			break;
		printf("%ld\n", v);
		taken++;
	}
	CHECK(chan_close(NULL, done));		/* defer close(done) */
	for (i = 0; i < NSTAGES; i++)
		pthread_join(st[i].thread, NULL);
	if (take == 0)
		printf("%d stages exited after the pipeline drained\n", NSTAGES);
	else
		printf("%d stages exited after close(done) with %d values taken\n", NSTAGES, taken);
	for (i = 0; i < NSTAGES; i++)
		chan_free(st[i].out);
	chan_free(done);
}

int
main(int argc, char **argv)
{
	chan_conn_t *conn = example_dial(example_addr(argc, argv));

	run(conn, 0);
	run(conn, 2);
	chan_conn_close(conn);
	return 0;
}
