/*
 * select_timeout.c: select, with a timeout and with default.
 *
 * Mirrors the notes' select programs:
 *
 *	// uniform random choice among ready cases
 *	c1 := make(chan interface{}); close(c1)
 *	c2 := make(chan interface{}); close(c2)
 *	for i := 1000; i >= 0; i-- {
 *		select { case <-c1: c1Count++; case <-c2: c2Count++ }
 *	}
 *	// a timeout: the context's deadline plays time.After
 *	var c <-chan int
 *	select { case <-c: case <-time.After(1 * time.Second): fmt.Println("Timed out.") }
 *	// default: nothing ready, do not wait
 *	select { case <-c1: case <-c2: default: fmt.Printf("In default after %v\n", ...) }
 *	// for-select with default: work until done is closed
 *	for { select { case <-done: break loop; default: }; workCounter++ ... }
 *
 * The timeout is the context's: chan_select(ctx with a 100 ms timeout)
 * returns CHAN_EDEADLINE, and the server ends the wait by itself. A NULL
 * channel, like Go's nil channel, is never ready. In the for-select loop,
 * another thread closes done when its own 50 ms context expires.
 *
 * Output (the counts vary):
 *	c1Count + c2Count = 1001, both chosen (c1 ..., c2 ...)
 *	Timed out.
 *	In default.
 *	Achieved N cycles of work before signalled to stop.
 *
 * Usage: select_timeout tcp://127.0.0.1:7420
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <time.h>

#include "example.h"

static void
random_choice(chan_conn_t *conn)
{
	chan_t *c1, *c2;
	int counts[2] = { 0, 0 }, i;

	CHECK(chan_make(NULL, conn, NULL, 0, &c1));
	CHECK(chan_make(NULL, conn, NULL, 0, &c2));
	CHECK(chan_close(NULL, c1));
	CHECK(chan_close(NULL, c2));
	for (i = 1000; i >= 0; i--) {
		chan_case_t cases[2] = { case_recv(c1), case_recv(c2) };
		int idx = chan_select(NULL, cases, 2, false);

		CHECK(idx);
		counts[idx]++;
	}
	printf("c1Count + c2Count = %d, %s (c1 %d, c2 %d)\n", counts[0] + counts[1],
	    counts[0] > 0 && counts[1] > 0 ? "both chosen" : "ONE STARVED", counts[0], counts[1]);
	if (counts[0] == 0 || counts[1] == 0)
		exit(1);
	chan_free(c1);
	chan_free(c2);
}

static void
timeout(chan_conn_t *conn)
{
	chan_ctx_t *ctx;
	chan_t *never;
	int64_t start = chan_now();
	int rc;

	CHECK(chan_make(NULL, conn, NULL, 0, &never));
	CHECK(chan_with_timeout(&ctx, NULL, 100 * CHAN_MSEC));
	{
		chan_case_t cases[2] = { case_recv(NULL), case_recv(never) };

		rc = chan_select(ctx, cases, 2, false);
	}
	if (rc != CHAN_EDEADLINE || chan_now() - start < 100 * CHAN_MSEC)
		die("select with a timeout", rc);
	printf("Timed out.\n");
	chan_cancel(ctx);			/* defer cancel() */
	chan_ctx_free(ctx);
	chan_free(never);
}

static void
with_default(chan_conn_t *conn)
{
	chan_t *c1, *c2;
	chan_case_t cases[2];

	CHECK(chan_make(NULL, conn, NULL, 0, &c1));
	CHECK(chan_make(NULL, conn, NULL, 0, &c2));
	cases[0] = case_recv(c1);
	cases[1] = case_recv(c2);
	if (chan_select(NULL, cases, 2, true) != CHAN_DEFAULT)
		die("select with default", CHAN_EUNKNOWN);
	printf("In default.\n");
	chan_free(c1);
	chan_free(c2);
}

/* go func() { time.Sleep(...); close(done) }(), the sleep being a context. */
static void *
closer_main(void *arg)
{
	chan_t *done = arg, *never;
	chan_ctx_t *ctx;

	CHECK(chan_make(NULL, chan_conn(done), NULL, 0, &never));
	CHECK(chan_with_timeout(&ctx, NULL, 50 * CHAN_MSEC));
	if (chan_recv(ctx, never, NULL, NULL) != CHAN_EDEADLINE)
		die("closer's timer", CHAN_EUNKNOWN);
	CHECK(chan_close(NULL, done));
	chan_ctx_free(ctx);
	chan_free(never);
	return NULL;
}

static void
for_select_default(chan_conn_t *conn)
{
	struct timespec work = { 0, 1000000 };
	chan_t *done;
	pthread_t t;
	int workCounter = 0;

	CHECK(chan_make(NULL, conn, NULL, 0, &done));
	example_thread(&t, closer_main, done);
	for (;;) {
		chan_case_t c = case_recv(done);
		int idx = chan_select(NULL, &c, 1, true);

		CHECK(idx);
		if (idx == 0)
			break;			/* case <-done: break loop */
		workCounter++;			/* default: simulate work */
		nanosleep(&work, NULL);
	}
	pthread_join(t, NULL);
	printf("Achieved %d cycles of work before signalled to stop.\n", workCounter);
	chan_free(done);
}

int
main(int argc, char **argv)
{
	chan_conn_t *conn = example_dial(example_addr(argc, argv));

	random_choice(conn);
	timeout(conn);
	with_default(conn);
	for_select_default(conn);
	chan_conn_close(conn);
	return 0;
}
