/*
 * tee_server.c: the tee channel, run inside chand.
 *
 * Mirrors the notes' "tee channel" program:
 *
 *	done := make(chan interface{})
 *	defer close(done)
 *	out1, out2 := tee(done, take(done, repeat(done, 1, 2), 20))
 *	for val1 := range out1 {
 *		fmt.Printf("out1: %v, out2: %v\n", val1, <-out2)
 *	}
 *
 * All three stages are links in the server, chained by their anonymous
 * output channels and sharing done. The tee sends each value to both
 * outputs before it takes the next, so reading out1 then out2 in lock step
 * works on unbuffered channels, as in the notes.
 *
 * Output:
 *	out1: 1, out2: 1
 *	out1: 2, out2: 2
 *	... (20 lines)
 *	take sent 20, tee sent 40, both ended by themselves
 *	close(done) stopped repeat: context canceled
 *
 * Usage: tee_server tcp://127.0.0.1:7420
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include "example.h"

int
main(int argc, char **argv)
{
	chan_conn_t *conn = example_dial(example_addr(argc, argv));
	chan_value_t vals[2] = {
		{ .kind = CHAN_VALUE_BYTES, .data = (void *)"1", .len = 1 },
		{ .kind = CHAN_VALUE_BYTES, .data = (void *)"2", .len = 1 },
	};
	chan_link_opts_t opts = { 0 };
	chan_link_t *rep, *take, *tee;
	chan_t *done, *repeated, *taken, *out1, *out2;
	uint64_t take_sent, tee_sent;
	long v1, v2;
	bool ok1, ok2;

	CHECK(chan_make(NULL, conn, NULL, 0, &done));
	opts.done = done;
	CHECK(chan_repeat(NULL, conn, vals, 2, &opts, &rep, &repeated));
	CHECK(chan_take(NULL, repeated, 20, &opts, &take, &taken));
	CHECK(chan_tee(NULL, taken, &opts, &tee, &out1, &out2));
	for (;;) {
		CHECK(recv_int(NULL, out1, &v1, &ok1));
		if (!ok1)
			break;
		CHECK(recv_int(NULL, out2, &v2, &ok2));
		printf("out1: %ld, out2: %ld\n", v1, v2);
	}
	if (chan_link_wait(take, &take_sent) != CHAN_OK || chan_link_wait(tee, &tee_sent) != CHAN_OK)
		exit(1);
	printf("take sent %llu, tee sent %llu, both ended by themselves\n",
	    (unsigned long long)take_sent, (unsigned long long)tee_sent);
	CHECK(chan_close(NULL, done));		/* defer close(done) */
	printf("close(done) stopped repeat: %s\n", chan_strerror(chan_link_wait(rep, NULL)));
	chan_link_free(tee);
	chan_link_free(take);
	chan_link_free(rep);
	chan_free(out1);
	chan_free(out2);
	chan_free(taken);
	chan_free(repeated);
	chan_free(done);
	chan_conn_close(conn);
	return 0;
}
