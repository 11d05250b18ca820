/*
 * owner.c: channel ownership, with a buffered channel.
 *
 * Mirrors the notes' chanOwner program:
 *
 *	chanOwner := func() <-chan int {
 *		resultStream := make(chan int, 5)
 *		go func() {
 *			defer close(resultStream)
 *			for i := 0; i <= 5; i++ {
 *				resultStream <- i
 *			}
 *		}()
 *		return resultStream
 *	}
 *	resultStream := chanOwner()
 *	for result := range resultStream {
 *		fmt.Printf("Received: %d\n", result)
 *	}
 *	fmt.Println("Done receiving!")
 *
 * The owner has its own connection: it makes an anonymous channel (cap 5),
 * hands the consumer only its name (the consumer opens it, which also keeps
 * it alive), writes 0..5 and closes it. The consumer ranges until ok is
 * false; the buffered values outlive the close and the owner's connection.
 * A send after the close fails with CHAN_ECLOSED: that is why only the
 * owner, who knows when it is done, closes.
 *
 * Output:
 *	Received: 0
 *	...
 *	Received: 5
 *	Done receiving!
 *	owner wrote 6 values and closed the channel
 *	a send now fails: channel closed
 *
 * Usage: owner tcp://127.0.0.1:7420
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include "example.h"

struct owner {
	chan_conn_t *conn;		/* the owner's own connection */
	chan_t *ch;
	pthread_t thread;
	int written;
};

static void *
owner_main(void *arg)
{
	struct owner *o = arg;
	int i;

	for (i = 0; i <= 5; i++) {
		CHECK(send_int(NULL, o->ch, i));
		o->written++;
	}
	CHECK(chan_close(NULL, o->ch));		/* defer close(resultStream) */
	chan_free(o->ch);
	chan_conn_close(o->conn);
	return NULL;
}

/* chanOwner(): make, start writing, return a read view on the consumer's connection. */
static chan_t *
chan_owner(struct owner *o, const char *addr, chan_conn_t *consumer)
{
	chan_t *view;

	o->conn = example_dial(addr);
	CHECK(chan_make(NULL, o->conn, NULL, 5, &o->ch));
	CHECK(chan_open(NULL, consumer, chan_name(o->ch), &view));
	example_thread(&o->thread, owner_main, o);
	return view;
}

int
main(int argc, char **argv)
{
	const char *addr = example_addr(argc, argv);
	chan_conn_t *conn = example_dial(addr);
	struct owner o = { 0 };
	chan_t *results = chan_owner(&o, addr, conn);
	long n;
	bool ok;
	int rc;

	for (;;) {				/* for result := range resultStream */
		CHECK(recv_int(NULL, results, &n, &ok));
		if (!ok)
			break;
		printf("Received: %ld\n", n);
	}
	printf("Done receiving!\n");

	pthread_join(o.thread, NULL);
	printf("owner wrote %d values and closed the channel\n", o.written);

	rc = send_int(NULL, results, 6);
	printf("a send now fails: %s\n", chan_strerror(rc));

	chan_free(results);
	chan_conn_close(conn);			/* drops the anonymous channel */
	return o.written == 6 && rc == CHAN_ECLOSED ? 0 : 1;
}
