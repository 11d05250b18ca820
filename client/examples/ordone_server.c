/*
 * ordone_server.c: the or-done channel, run inside chand.
 *
 * Mirrors the notes' "or-done channel" program:
 *
 *	for val := range orDone(done, myChan) {
 *		// Do something with val
 *	}
 *
 * myChan is a channel from "a disparate part of the system" that never
 * closes: here a REPEAT link cycling "a", "b", "c". orDone forwards its
 * values until done closes; the consumer ranges over orDone's output with
 * a plain receive loop, and no select on done is needed in the client:
 * after five values it closes done, which stops both links (they share
 * done, as in the notes), and the range ends because a stopped link closes
 * its output.
 *
 * Output:
 *	a b c a b
 *	close(done): the range over orDone ended
 *	orDone: context canceled; myChan's repeat: context canceled
 *
 * Usage: ordone_server tcp://127.0.0.1:7420
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include "example.h"

int
main(int argc, char **argv)
{
	chan_conn_t *conn = example_dial(example_addr(argc, argv));
	chan_value_t vals[3] = {
		{ .kind = CHAN_VALUE_BYTES, .data = (void *)"a", .len = 1 },
		{ .kind = CHAN_VALUE_BYTES, .data = (void *)"b", .len = 1 },
		{ .kind = CHAN_VALUE_BYTES, .data = (void *)"c", .len = 1 },
	};
	chan_link_opts_t opts = { 0 };
	chan_link_t *rep, *ord;
	chan_t *done, *my_chan, *vals_out;
	int n = 0;

	CHECK(chan_make(NULL, conn, NULL, 0, &done));
	opts.done = done;
	CHECK(chan_repeat(NULL, conn, vals, 3, &opts, &rep, &my_chan));
	CHECK(chan_or_done(NULL, my_chan, &opts, &ord, &vals_out));
	for (;;) {		/* for val := range orDone(done, myChan) */
		chan_value_t v;
		bool ok;

		CHECK(chan_recv(NULL, vals_out, &v, &ok));
		if (!ok)
			break;
		if (n < 5)
			printf("%s%s", n ? " " : "", (char *)v.data);
		chan_value_clear(&v);
		if (++n == 5) {
			printf("\n");
			CHECK(chan_close(NULL, done));
		}
	}
	if (n < 5 || n > 6)	/* at most the value in flight when done closed */
		exit(1);
	printf("close(done): the range over orDone ended\n");
	printf("orDone: %s; ", chan_strerror(chan_link_wait(ord, NULL)));
	printf("myChan's repeat: %s\n", chan_strerror(chan_link_wait(rep, NULL)));
	chan_link_free(ord);
	chan_link_free(rep);
	chan_free(vals_out);
	chan_free(my_chan);
	chan_free(done);
	chan_conn_close(conn);
	return 0;
}
