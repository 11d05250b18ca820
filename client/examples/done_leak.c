/*
 * done_leak.c: a done channel stops a worker that would block forever.
 *
 * Mirrors the notes' "Preventing Goroutine Leaks" programs:
 *
 *	doWork := func(done <-chan interface{}, strings <-chan string) <-chan interface{} {
 *		terminated := make(chan interface{})
 *		go func() {
 *			defer fmt.Println("doWork exited.")
 *			defer close(terminated)
 *			for {
 *				select {
 *				case s := <-strings: fmt.Println(s)
 *				case <-done: return
 *				}
 *			}
 *		}()
 *		return terminated
 *	}
 *	done := make(chan interface{})
 *	terminated := doWork(done, nil)
 *	... fmt.Println("Canceling doWork goroutine..."); close(done)
 *	<-terminated
 *	fmt.Println("Done.")
 *
 * and newRandStream, the worker blocked on a send: the consumer reads three
 * values, closes done, and the producer's select takes the done case.
 *
 * strings is NULL (Go's nil channel): without done, the worker would wait
 * forever. Main closes done once the server shows the worker waiting on it,
 * then waits for terminated to be closed (a receive with ok = false). The
 * random numbers come from a fixed-seed generator, so the output is fixed.
 *
 * Output:
 *	doWork is blocked on done (1 waiter)
 *	Canceling doWork goroutine...
 *	doWork exited.
 *	Done.
 *	3 random ints:
 *	1: 1103527590
 *	2: 377401575
 *	3: 662824084
 *	newRandStream closure exited.
 *
 * Usage: done_leak tcp://127.0.0.1:7420
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <time.h>

#include "example.h"

struct work {
	chan_t *done, *strings, *out;	/* out: terminated, or randStream */
};

static void *
do_work(void *arg)
{
	struct work *w = arg;

	for (;;) {
		chan_case_t cases[2] = { case_recv(w->strings), case_recv(w->done) };
		int idx = chan_select(NULL, cases, 2, false);

		CHECK(idx);
		if (idx == 1)
			break;			/* case <-done: return */
		printf("%.*s\n", (int)cases[0].value.len, (char *)cases[0].value.data);
		chan_value_clear(&cases[0].value);
	}
	printf("doWork exited.\n");
	CHECK(chan_close(NULL, w->out));	/* defer close(terminated) */
	return NULL;
}

static void *
rand_stream(void *arg)
{
	struct work *w = arg;
	unsigned long seed = 1;

	do		/* select { case randStream <- rand.Int(): case <-done: return } */
		seed = (seed * 1103515245 + 12345) & 0x7fffffff;
	while (send_or_done(w->done, w->out, (long)seed));
	printf("newRandStream closure exited.\n");
	return NULL;
}

/* Wait (at most 10 s) until the server shows a receiver waiting on ch. */
static void
await_receiver(chan_t *ch)
{
	struct timespec ms = { 0, 1000000 };
	chan_info_t info;
	int i;

	for (i = 0; i < 10000; i++) {
		CHECK(chan_info(NULL, ch, &info));
		if (info.receivers > 0) {
			printf("doWork is blocked on done (%zu waiter)\n", info.receivers);
			return;
		}
		nanosleep(&ms, NULL);
	}
	die("doWork never blocked", CHAN_EDEADLINE);
}

static void
leak_prevented(chan_conn_t *conn)
{
	struct work w = { .strings = NULL };
	pthread_t t;
	bool ok = true;

	CHECK(chan_make(NULL, conn, NULL, 0, &w.done));
	CHECK(chan_make(NULL, conn, NULL, 0, &w.out));
	example_thread(&t, do_work, &w);
	await_receiver(w.done);
	printf("Canceling doWork goroutine...\n");
	CHECK(chan_close(NULL, w.done));
	CHECK(chan_recv(NULL, w.out, NULL, &ok));	/* <-terminated */
	pthread_join(t, NULL);
	printf("Done.\n");
	if (ok)
		exit(1);
	chan_free(w.done);
	chan_free(w.out);
}

static void
blocked_sender(chan_conn_t *conn)
{
	struct work w;
	pthread_t t;
	long n;
	bool ok;
	int i;

	CHECK(chan_make(NULL, conn, NULL, 0, &w.done));
	CHECK(chan_make(NULL, conn, NULL, 0, &w.out));
	example_thread(&t, rand_stream, &w);
	printf("3 random ints:\n");
	for (i = 1; i <= 3; i++) {
		CHECK(recv_int(NULL, w.out, &n, &ok));
		printf("%d: %ld\n", i, n);
	}
	CHECK(chan_close(NULL, w.done));
	pthread_join(t, NULL);			/* instead of the notes' Sleep */
	chan_free(w.done);
	chan_free(w.out);
}

int
main(int argc, char **argv)
{
	chan_conn_t *conn = example_dial(example_addr(argc, argv));

	leak_prevented(conn);
	blocked_sender(conn);
	chan_conn_close(conn);
	return 0;
}
