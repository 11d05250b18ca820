/*
 * rendezvous.c: an unbuffered channel is a meeting point.
 *
 * Mirrors the notes' first channel program, with the goroutine replaced by
 * a thread that has its own connection (so the two sides could as well be
 * two processes on two machines):
 *
 *	stringStream := make(chan string)
 *	go func() {
 *		stringStream <- "Hello channels!"
 *	}()
 *	salutation, ok := <-stringStream
 *	fmt.Printf("(%v): %v\n", ok, salutation)
 *
 * It shows that the send blocks until a receiver comes: main waits until
 * the server reports the sender waiting (chan_info) before it receives, and
 * the sender's call returns only after that. The channel is named
 * "rendezvous.PID" so that both connections find it; main deletes it.
 *
 * Output:
 *	sender is blocked: 1 sender waiting, len 0, cap 0
 *	(true): Hello channels!
 *	sender's send returned after the receive
 *
 * Usage: rendezvous tcp://127.0.0.1:7420
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <time.h>
#include <unistd.h>

#include "example.h"

struct sender {
	const char *addr;
	const char *name;
	int rc;
};

/* go func() { stringStream <- "Hello channels!" }(), on a second connection */
static void *
sender_main(void *arg)
{
	struct sender *s = arg;
	chan_conn_t *conn = example_dial(s->addr);
	chan_t *ch;

	CHECK(chan_open(NULL, conn, s->name, &ch));
	s->rc = chan_send(NULL, ch, "Hello channels!", 15);
	chan_free(ch);
	chan_conn_close(conn);
	return NULL;
}

/* Poll the server's view until a sender waits on ch (at most 10 s). */
static void
await_sender(chan_t *ch, chan_info_t *info)
{
	struct timespec ms = { 0, 1000000 };
	int i;

	for (i = 0; i < 10000; i++) {
		CHECK(chan_info(NULL, ch, info));
		if (info->senders == 1)
			return;
		nanosleep(&ms, NULL);
	}
	fprintf(stderr, "the sender never blocked\n");
	exit(1);
}

int
main(int argc, char **argv)
{
	const char *addr = example_addr(argc, argv);
	chan_conn_t *conn = example_dial(addr);
	struct sender s = { .addr = addr, .rc = 1 };
	char name[64];
	chan_info_t info;
	chan_value_t v;
	chan_t *ch;
	pthread_t t;
	bool ok;

	snprintf(name, sizeof name, "rendezvous.%ld", (long)getpid());
	s.name = name;
	CHECK(chan_make(NULL, conn, name, 0, &ch));	/* make(chan string) */
	example_thread(&t, sender_main, &s);

	await_sender(ch, &info);
	printf("sender is blocked: %zu sender waiting, len %zu, cap %zu\n",
	    info.senders, info.len, info.cap);

	CHECK(chan_recv(NULL, ch, &v, &ok));		/* salutation, ok := <-ch */
	printf("(%s): %.*s\n", ok ? "true" : "false", (int)v.len, (char *)v.data);
	chan_value_clear(&v);

	pthread_join(t, NULL);
	CHECK(s.rc);
	printf("sender's send returned after the receive\n");

	CHECK(chan_delete(NULL, ch, NULL));
	chan_free(ch);
	chan_conn_close(conn);
	return ok ? 0 : 1;
}
