/*
 * test_durable_links.c: durable ack channels meet links, against a real
 * chand killed with SIGKILL and started again on its journal.
 *
 * A link takes a value of a durable ack channel for good (a POP with no
 * tag) and passes that very value on. When its output is another durable
 * ack channel with a receiver waiting, the value is delivered there under
 * a tag: the journal must say so of the output (PUSH, POP(tag)), and not
 * put the tag on the input's POP. A value given back (NACK) while a link
 * waits on its empty channel goes straight to the link, for good: the
 * journal must not keep it as given back. After kill -9 the values must be
 * exactly where they were: each one once, on the channel it was in.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <pthread.h>
#include <unistd.h>

#include "clock.h"
#include "durtest.h"

/* An ack channel (ack_wait long enough never to pass in a test), durable, cap 4. */
static chan_t *
make_ack(struct dur *d, const char *name)
{
	chan_delivery_opts_t o = CHAN_DELIVERY_OPTS_INIT;
	chan_t *ch;

	o.ack_wait_ns = 600 * CHAN_SEC;
	o.durable = true;
	CU_ASSERT_FATAL(chan_make_opts(chan_background(), d->conn, name, 4, &o, &ch) == CHAN_OK);
	return ch;
}

/* Wait (10 s at most) until name has `n` receivers waiting. */
static bool
await_receivers(chan_t *ch, size_t n)
{
	chan_info_t i;
	int64_t end = chan_now() + 10 * CHAN_SEC;

	do {
		if (chan_info(chan_background(), ch, &i) == CHAN_OK && i.receivers == n)
			return true;
		usleep(2000);
	} while (chan_now() < end);
	return false;
}

struct receiver {
	pthread_t th;
	chan_t *ch;
	chan_msg_t m;
	int rc;
};

static void *
receive(void *arg)
{
	struct receiver *r = arg;
	chan_ctx_t *ctx;
	bool ok;

	if ((r->rc = chan_with_timeout(&ctx, NULL, 30 * CHAN_SEC)) != CHAN_OK)
		return NULL;
	r->rc = chan_recv_msg(ctx, r->ch, &r->m, &ok);
	if (r->rc == CHAN_OK && !ok)
		r->rc = CHAN_ECLOSED;
	chan_ctx_free(ctx);
	return NULL;
}

/*
 * What name holds after a restart (LEN: nothing is in flight then), in the
 * order received (values given back by the kill first), as
 * "value/count,...", each one acked.
 */
static void
drain(struct dur *d, const char *name, char *out, size_t cap)
{
	size_t n = 0, len = dur_len(d, name);
	chan_t *ch = dur_open(d, name);
	chan_ctx_t *ctx;

	out[0] = '\0';
	CU_ASSERT_FATAL(len != SIZE_MAX);
	for (size_t i = 0; i < len; i++) {
		chan_msg_t m = { 0 };
		bool ok;

		CU_ASSERT_FATAL(chan_with_timeout(&ctx, NULL, 10 * CHAN_SEC) == CHAN_OK);
		CU_ASSERT_FATAL(chan_recv_msg(ctx, ch, &m, &ok) == CHAN_OK && ok);
		chan_ctx_free(ctx);
		n += (size_t)snprintf(out + n, cap - n, "%s%.*s/%u", n ? "," : "", (int)m.value.len,
		    (const char *)m.value.data, (unsigned)m.count);
		CU_ASSERT_FATAL(n < cap);
		CU_ASSERT_EQUAL(chan_ack_n(chan_background(), ch, &m.tag, 1), CHAN_OK);
		chan_msg_clear(&m);
	}
	chan_free(ch);
}

static void
expect_drain(struct dur *d, const char *name, const char *want)
{
	char got[256];

	drain(d, name, got, sizeof got);
	if (strcmp(got, want) != 0)
		printf("\n    %s: wanted {%s}, got {%s}\n", name, want, got);
	CU_ASSERT_STRING_EQUAL(got, want);
}

/* A durable SEND answered after everything before it: its batch, and every earlier one, is on disk. */
static void
flush(struct dur *d)
{
	char buf[4];
	chan_t *mark;
	bool ok;

	CU_ASSERT_FATAL(dur_make(d, "mark", 1, &mark) == CHAN_OK);
	CU_ASSERT_EQUAL(chan_send(chan_background(), mark, "m", 1), CHAN_OK);
	CU_ASSERT_EQUAL(dur_try_recv(mark, buf, sizeof buf, &ok), 1);
	chan_free(mark);
}

/*
 * or-done from "in" to "out", both durable ack channels. "in" holds x1 and
 * x2 when the link starts and a receiver waits on "out": x1 goes straight
 * to it (in flight under out's tag), x2 into out's buffer. kill -9 with x1
 * unacked: after the restart out gives x1 (count 2: the kill was a failed
 * delivery) then x2, and in is empty.
 */
static void
test_or_done_into_ack(void)
{
	struct receiver r = { 0 };
	chan_link_opts_t lo = { 0 };
	chan_link_t *link;
	struct dur d;
	chan_t *in, *out;

	dur_init(&d, "always");
	CU_ASSERT_FATAL(dur_start(&d) == 0);
	in = make_ack(&d, "in");
	out = make_ack(&d, "out");
	CU_ASSERT_EQUAL(chan_send(chan_background(), in, "x1", 2), CHAN_OK);
	CU_ASSERT_EQUAL(chan_send(chan_background(), in, "x2", 2), CHAN_OK);
	r.ch = out;
	CU_ASSERT_FATAL(pthread_create(&r.th, NULL, receive, &r) == 0);
	CU_ASSERT_FATAL(await_receivers(out, 1));

	lo.out_name[0] = "out";
	lo.out_cap[0] = 4;
	CU_ASSERT_FATAL(chan_or_done(chan_background(), in, &lo, &link, NULL) == CHAN_OK);
	pthread_join(r.th, NULL);
	CU_ASSERT_EQUAL_FATAL(r.rc, CHAN_OK);
	CU_ASSERT(r.m.value.len == 2 && memcmp(r.m.value.data, "x1", 2) == 0 && r.m.count == 1);
	chan_msg_clear(&r.m);
	/* the link waits on in again: x2 is in out's buffer */
	CU_ASSERT_FATAL(await_receivers(in, 1));
	flush(&d);
	chan_free(in);
	chan_free(out);

	dur_stop(&d, true);
	chan_link_free(link);
	CU_ASSERT_FATAL(dur_start(&d) == 0);
	expect_drain(&d, "out", "x1/2,x2/1");
	expect_drain(&d, "in", "");
	dur_free(&d);
}

/*
 * fan-in from "in" (durable ack, empty, the link waiting on it) to "out"
 * (durable ack, nobody receiving): y1, received from in and NACKed, goes
 * straight to the link and into out's buffer. kill -9: y1 is on out once,
 * and in is empty.
 */
static void
test_nack_into_link(void)
{
	chan_link_opts_t lo = { 0 };
	chan_msg_t m = { 0 };
	chan_link_t *link;
	struct dur d;
	chan_t *in;
	bool ok;

	dur_init(&d, "always");
	CU_ASSERT_FATAL(dur_start(&d) == 0);
	in = make_ack(&d, "in");
	chan_free(make_ack(&d, "out"));
	CU_ASSERT_EQUAL(chan_send(chan_background(), in, "y1", 2), CHAN_OK);
	CU_ASSERT_FATAL(chan_recv_msg(chan_background(), in, &m, &ok) == CHAN_OK && ok);
	lo.out_name[0] = "out";
	lo.out_cap[0] = 4;
	CU_ASSERT_FATAL(chan_fan_in(chan_background(), &in, 1, &lo, &link, NULL) == CHAN_OK);
	CU_ASSERT_FATAL(await_receivers(in, 1));
	CU_ASSERT_EQUAL(chan_nack(chan_background(), in, &m, 0), CHAN_OK);
	chan_msg_clear(&m);
	CU_ASSERT_EQUAL(dur_len(&d, "out"), 1);
	flush(&d);
	chan_free(in);

	dur_stop(&d, true);
	chan_link_free(link);
	CU_ASSERT_FATAL(dur_start(&d) == 0);
	/* the link forwarded y1 as a new value: out's journal has its PUSH, count 0 */
	expect_drain(&d, "out", "y1/1");
	expect_drain(&d, "in", "");
	dur_free(&d);
}

static void
register_suites(void)
{
	CU_pSuite s = test_suite("durable_links", NULL, NULL);

	test_add(s, "or-done from a durable ack channel into one with a receiver waiting, kill -9",
	    test_or_done_into_ack);
	test_add(s, "a value NACKed to a fan-in waiting on its durable ack channel, kill -9",
	    test_nack_into_link);
}

int
main(int argc, char **argv)
{
	return test_main(argc, argv, register_suites);
}
