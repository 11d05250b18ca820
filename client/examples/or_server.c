/*
 * or_server.c: the or-channel, run inside chand.
 *
 * Mirrors the notes' "or-channel" program:
 *
 *	start := time.Now()
 *	<-or(
 *		sig(2*time.Hour),
 *		sig(5*time.Minute),
 *		sig(1*time.Second),
 *		sig(1*time.Hour),
 *		sig(1*time.Minute),
 *	)
 *	fmt.Printf("done after %v\n", time.Since(start))
 *
 * The notes build `or` by recursion, a goroutine per three channels; chand's
 * OR link is one select over every input. sig(after) is server-side too:
 * an or-done link over a channel nobody writes, whose context times out
 * after `after`, so the server closes its output then (a stopped link
 * closes its outputs). Time is scaled: one second of the notes is 100 ms.
 * At the end the other four signals are stopped (chan_link_free sends
 * CANCEL) and the server is asked how many requests are still pending.
 *
 * Output:
 *	sig(2h0m0s) sig(5m0s) sig(1s) sig(1h0m0s) sig(1m0s)
 *	done after the 1s signal (100 ms scaled)
 *	or: ended by itself; sig(1s): context deadline exceeded
 *	0 links left on the server
 *
 * Usage: or_server tcp://127.0.0.1:7420
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include "example.h"

#define SCALE_MS 100		/* one second of the notes */
#define NSIGS 5

static const struct {
	const char *label;
	int64_t after_s;
} sigs[NSIGS] = {
	{ "2h0m0s", 7200 }, { "5m0s", 300 }, { "1s", 1 }, { "1h0m0s", 3600 }, { "1m0s", 60 },
};

/* sig(after): a channel the server closes after `after` (scaled). */
static chan_t *
sig(chan_conn_t *conn, int64_t after_s, chan_link_t **link)
{
	chan_t *never, *out;
	chan_ctx_t *ctx;

	CHECK(chan_make(NULL, conn, NULL, 0, &never));
	CHECK(chan_with_timeout(&ctx, NULL, after_s * SCALE_MS * CHAN_MSEC));
	CHECK(chan_or_done(ctx, never, NULL, link, &out));
	chan_ctx_free(ctx);		/* the link keeps its own reference */
	chan_free(never);		/* the handle only: the channel stays held */
	return out;
}

static size_t
pending(chan_conn_t *conn)
{
	chan_waiter_t *w;
	size_t n, total;

	CHECK(chan_admin_waiters(NULL, conn, 0, &w, &n, &total));
	chan_admin_waiters_free(w, n);
	return total;
}

int
main(int argc, char **argv)
{
	chan_conn_t *conn = example_dial(example_addr(argc, argv));
	chan_link_t *links[NSIGS], *orl;
	chan_t *sigc[NSIGS], *done;
	int64_t start = chan_now(), took;
	int i, rc;
	bool ok = true;

	for (i = 0; i < NSIGS; i++) {
		printf("%ssig(%s)", i ? " " : "", sigs[i].label);
		sigc[i] = sig(conn, sigs[i].after_s, &links[i]);
	}
	printf("\n");
	CHECK(chan_or(NULL, sigc, NSIGS, NULL, &orl, &done));
	CHECK(chan_recv(NULL, done, NULL, &ok));		/* <-or(...) */
	took = (chan_now() - start) / CHAN_MSEC;
	if (ok || took < SCALE_MS || took >= 10 * SCALE_MS) {
		fprintf(stderr, "or fired after %lld ms\n", (long long)took);
		exit(1);
	}
	printf("done after the 1s signal (%d ms scaled)\n", SCALE_MS);
	rc = chan_link_wait(orl, NULL);
	printf("or: %s; sig(1s): %s\n", rc == CHAN_OK ? "ended by itself" : chan_strerror(rc),
	    chan_strerror(chan_link_wait(links[2], NULL)));
	chan_link_free(orl);
	for (i = 0; i < NSIGS; i++) {
		chan_link_free(links[i]);	/* stops the signals still running */
		chan_free(sigc[i]);
	}
	chan_free(done);
	for (i = 0; i < 1000 && pending(conn) > 0; i++)
		chan_ping(NULL, conn);		/* the CANCELs are on their way */
	printf("%zu links left on the server\n", pending(conn));
	chan_conn_close(conn);
	return 0;
}
