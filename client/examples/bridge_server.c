/*
 * bridge_server.c: the bridge channel, run inside chand.
 *
 * Mirrors the notes' "bridge channel" program:
 *
 *	genVals := func() <-chan <-chan interface{} {
 *		chanStream := make(chan (<-chan interface{}))
 *		go func() {
 *			defer close(chanStream)
 *			for i := 0; i < 10; i++ {
 *				stream := make(chan interface{}, 1)
 *				stream <- i
 *				close(stream)
 *				chanStream <- stream
 *			}
 *		}()
 *		return chanStream
 *	}
 *	for v := range bridge(nil, genVals()) {
 *		fmt.Printf("%v ", v)
 *	}
 *
 * genVals runs in a client thread and sends each stream as a channel
 * reference (chan_send_chan); the BRIDGE link in the server drains the
 * referenced channels in order into one output, which main ranges over.
 * Then a second, smaller bridge shows a value that is not a channel
 * reference arriving as an error value (CHAN_VALUE_ERROR), the bridge going
 * on past it.
 *
 * Output:
 *	0 1 2 3 4 5 6 7 8 9
 *	bridge sent 10 values
 *	error value: bridge: a value of the channel of channels is not a channel reference
 *	then: after
 *
 * Usage: bridge_server tcp://127.0.0.1:7420
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include "example.h"

struct gen {
	chan_conn_t *conn;
	chan_t *chan_stream;
};

static void *
gen_vals(void *arg)
{
	struct gen *g = arg;
	chan_t *stream;
	long i;

	for (i = 0; i < 10; i++) {
		CHECK(chan_make(NULL, g->conn, NULL, 1, &stream));
		CHECK(send_int(NULL, stream, i));
		CHECK(chan_close(NULL, stream));
		CHECK(chan_send_chan(NULL, g->chan_stream, stream));
		chan_free(stream);	/* the channel lives on: this connection holds it */
	}
	CHECK(chan_close(NULL, g->chan_stream));	/* defer close(chanStream) */
	return NULL;
}

static void
bridge_ten(chan_conn_t *conn)
{
	struct gen g = { conn, NULL };
	chan_link_t *link;
	chan_t *vals;
	pthread_t t;
	uint64_t sent;
	long v;
	bool ok;
	int n = 0;

	CHECK(chan_make(NULL, conn, NULL, 0, &g.chan_stream));
	CHECK(chan_bridge(NULL, g.chan_stream, NULL, &link, &vals));
	example_thread(&t, gen_vals, &g);
	for (;;) {
		CHECK(recv_int(NULL, vals, &v, &ok));
		if (!ok)
			break;
		printf("%s%ld", n++ ? " " : "", v);
	}
	printf("\n");
	pthread_join(t, NULL);
	CHECK(chan_link_wait(link, &sent));
	printf("bridge sent %llu values\n", (unsigned long long)sent);
	chan_link_free(link);
	chan_free(vals);
	chan_free(g.chan_stream);
}

static void
bridge_error(chan_conn_t *conn)
{
	chan_t *cs, *inner, *out;
	chan_link_t *link;
	chan_value_t v;
	bool ok;

	CHECK(chan_make(NULL, conn, NULL, 2, &cs));
	CHECK(chan_make(NULL, conn, NULL, 1, &inner));
	CHECK(chan_send(NULL, cs, "oops", 4));		/* not a channel reference */
	CHECK(chan_send(NULL, inner, "after", 5));
	CHECK(chan_close(NULL, inner));
	CHECK(chan_send_chan(NULL, cs, inner));
	CHECK(chan_close(NULL, cs));
	CHECK(chan_bridge(NULL, cs, NULL, &link, &out));
	CHECK(chan_recv(NULL, out, &v, &ok));
	if (!ok || v.kind != CHAN_VALUE_ERROR)
		exit(1);
	printf("error value: %s\n", (char *)v.data);
	chan_value_clear(&v);
	CHECK(chan_recv(NULL, out, &v, &ok));
	if (!ok || v.kind != CHAN_VALUE_BYTES)
		exit(1);
	printf("then: %s\n", (char *)v.data);
	chan_value_clear(&v);
	CHECK(chan_link_wait(link, NULL));
	chan_link_free(link);
	chan_free(out);
	chan_free(inner);
	chan_free(cs);
}

int
main(int argc, char **argv)
{
	chan_conn_t *conn = example_dial(example_addr(argc, argv));

	bridge_ten(conn);
	bridge_error(conn);
	chan_conn_close(conn);
	return 0;
}
