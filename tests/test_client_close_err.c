/*
 * test_client_close_err.c: libchanclient's close errors (chan_close_err,
 * chan_err, chan_stream_err, chan_info_t's close error) against a real
 * chand: seen by a blocked receiver, after the buffer drained, by a select,
 * by a stream, and through or-done, tee, fan-in and bridge links; the plain
 * chan_close unchanged; bad messages refused with nothing changed.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clienttest.h"

static unsigned seq;

static chan_t *
make(const char *base, size_t cap)
{
	char name[64];
	chan_t *ch = NULL;

	snprintf(name, sizeof name, "cce.%s.%u", base, ++seq);
	CU_ASSERT_EQUAL_FATAL(chan_make(NULL, csuite.conn, name, cap, &ch), CHAN_OK);
	return ch;
}

static void
send_str(chan_t *ch, const char *s)
{
	CU_ASSERT_EQUAL(chan_send(NULL, ch, s, strlen(s)), CHAN_OK);
}

static void
expect_str(chan_t *ch, const char *s)
{
	chan_value_t v;
	bool ok = false;

	CU_ASSERT_EQUAL_FATAL(chan_recv(NULL, ch, &v, &ok), CHAN_OK);
	CU_ASSERT(ok);
	CU_ASSERT(v.kind == CHAN_VALUE_BYTES && strcmp(v.data, s) == 0);
	chan_value_clear(&v);
}

/* ch's handle recorded this close error (msg NULL: none). */
static void
expect_err(chan_t *ch, uint64_t code, const char *msg)
{
	char buf[CHAN_CLOSE_MSG_MAX + 1] = "unset";
	uint64_t got = 12345;

	CU_ASSERT_EQUAL(chan_err(ch, &got, buf, sizeof buf), msg != NULL);
	if (msg == NULL)
		return;
	CU_ASSERT_EQUAL(got, code);
	CU_ASSERT_STRING_EQUAL(buf, msg);
}

/* A receive on ch says ok false at once, and the handle then has this error. */
static void
expect_closed(chan_t *ch, uint64_t code, const char *msg)
{
	chan_value_t v;
	bool ok = true;
	chan_ctx_t *ctx;

	CU_ASSERT_EQUAL_FATAL(chan_with_timeout(&ctx, NULL, BOUND_MS * CHAN_MSEC), CHAN_OK);
	CU_ASSERT_EQUAL(chan_recv(ctx, ch, &v, &ok), CHAN_OK);
	CU_ASSERT_FALSE(ok);
	CU_ASSERT_EQUAL(v.kind, CHAN_VALUE_NIL);
	chan_ctx_free(ctx);
	expect_err(ch, code, msg);
}

struct receiver {
	chan_t *ch;
	int rc;
	bool ok;
};

static void *
receiver_main(void *arg)
{
	struct receiver *r = arg;
	chan_value_t v;

	r->rc = chan_recv(NULL, r->ch, &v, &r->ok);
	chan_value_clear(&v);
	return NULL;
}

/* A receiver blocked in chan_recv wakes with ok false; chan_err gives the error. */
static void
test_blocked_receiver(void)
{
	chan_t *ch = make("blocked", 0), *other;
	struct receiver r = { .ch = ch, .ok = true };
	pthread_t t;

	CU_ASSERT_EQUAL_FATAL(chan_handle_new(&other, csuite.conn, chan_name(ch)), CHAN_OK);
	CU_ASSERT_EQUAL_FATAL(pthread_create(&t, NULL, receiver_main, &r), 0);
	CU_ASSERT(wait_waiters(chan_name(ch), 0, 1));
	expect_err(ch, 0, NULL);	/* nothing seen yet */
	CU_ASSERT_EQUAL(chan_close_err(NULL, other, 17, "worker pool failed"), CHAN_OK);
	pthread_join(t, NULL);
	CU_ASSERT_EQUAL(r.rc, CHAN_OK);
	CU_ASSERT_FALSE(r.ok);
	expect_err(ch, 17, "worker pool failed");
	/* the closer's own handle saw no receive */
	expect_err(other, 0, NULL);
	chan_free(other);
	chan_free(ch);
}

/* Buffered values come first; a small buffer gets the message cut; code and msg may be NULL. */
static void
test_values_then_error(void)
{
	chan_t *ch = make("drain", 2);
	char small[5];
	uint64_t code;
	bool ok = true;

	send_str(ch, "a");
	send_str(ch, "b");
	CU_ASSERT_EQUAL(chan_close_err(NULL, ch, 3, "disk full"), CHAN_OK);
	expect_str(ch, "a");
	expect_err(ch, 0, NULL);
	expect_str(ch, "b");
	expect_closed(ch, 3, "disk full");
	CU_ASSERT(chan_err(ch, &code, small, sizeof small));
	CU_ASSERT_STRING_EQUAL(small, "disk");
	CU_ASSERT(chan_err(ch, NULL, NULL, 0));
	/* try_recv records it too */
	CU_ASSERT_EQUAL(chan_try_recv(NULL, ch, NULL, &ok), CHAN_OK);
	CU_ASSERT_FALSE(ok);
	expect_err(ch, 3, "disk full");
	chan_free(ch);
}

/* The plain chan_close: ok false and no error, as before. */
static void
test_plain_close(void)
{
	chan_t *ch = make("plain", 1);
	chan_info_t i;

	send_str(ch, "x");
	CU_ASSERT_EQUAL(chan_close(NULL, ch), CHAN_OK);
	expect_str(ch, "x");
	expect_closed(ch, 0, NULL);
	CU_ASSERT_EQUAL(chan_info(NULL, ch, &i), CHAN_OK);
	CU_ASSERT(i.closed);
	CU_ASSERT_FALSE(i.has_close_error);
	/* a channel closed already: CHAN_ECLOSED, with or without an error */
	CU_ASSERT_EQUAL(chan_close_err(NULL, ch, 1, "late"), CHAN_ECLOSED);
	expect_closed(ch, 0, NULL);
	chan_free(ch);
}

struct selector {
	chan_case_t cases[2];
	int rc;
};

static void *
selector_main(void *arg)
{
	struct selector *s = arg;

	s->rc = chan_select(NULL, s->cases, 2, false);
	return NULL;
}

/* A blocked select's receive case, and one on a channel closed already. */
static void
test_select(void)
{
	chan_t *quiet = make("sel.quiet", 0), *ch = make("sel", 0);
	struct selector s = { .cases = { { .dir = CHAN_DIR_RECV, .ch = quiet },
	    { .dir = CHAN_DIR_RECV, .ch = ch } } };
	pthread_t t;

	CU_ASSERT_EQUAL_FATAL(pthread_create(&t, NULL, selector_main, &s), 0);
	CU_ASSERT(wait_waiters(chan_name(ch), 0, 1));
	CU_ASSERT_EQUAL(chan_close_err(NULL, ch, 5, "shard lost"), CHAN_OK);
	pthread_join(t, NULL);
	CU_ASSERT_EQUAL(s.rc, 1);
	CU_ASSERT_FALSE(s.cases[1].ok);
	CU_ASSERT_EQUAL(s.cases[1].err, 0);
	expect_err(ch, 5, "shard lost");
	expect_err(quiet, 0, NULL);
	/* at once, with a default */
	CU_ASSERT_EQUAL(chan_select(NULL, s.cases, 2, true), 1);
	CU_ASSERT_FALSE(s.cases[1].ok);
	expect_err(ch, 5, "shard lost");
	chan_free(quiet);
	chan_free(ch);
}

/* A stream reports each close once; chan_stream_err gives the error of the one closed with one. */
static void
test_stream(void)
{
	chan_t *chans[2] = { make("st.a", 1), make("st.b", 0) };
	chan_stream_t *s;
	chan_value_t v;
	char msg[64];
	uint64_t code = 0;
	size_t index = 9;
	bool ok = false;

	send_str(chans[0], "v");
	CU_ASSERT_EQUAL(chan_close_err(NULL, chans[0], 77, "producer crashed"), CHAN_OK);
	CU_ASSERT_EQUAL_FATAL(chan_stream_open(NULL, chans, 2, 4, &s), CHAN_OK);
	CU_ASSERT_EQUAL(chan_stream_recv(s, &v, &ok, &index), CHAN_OK);
	CU_ASSERT(ok && index == 0 && v.kind == CHAN_VALUE_BYTES && strcmp(v.data, "v") == 0);
	chan_value_clear(&v);
	CU_ASSERT_FALSE(chan_stream_err(s, 0, &code, msg, sizeof msg));
	CU_ASSERT_EQUAL(chan_stream_recv(s, &v, &ok, &index), CHAN_OK);
	CU_ASSERT_FALSE(ok);
	CU_ASSERT_EQUAL(index, 0);
	CU_ASSERT(chan_stream_err(s, 0, &code, msg, sizeof msg));
	CU_ASSERT_EQUAL(code, 77);
	CU_ASSERT_STRING_EQUAL(msg, "producer crashed");
	CU_ASSERT(wait_waiters(chan_name(chans[1]), 0, 2));
	CU_ASSERT_EQUAL(chan_close(NULL, chans[1]), CHAN_OK);
	CU_ASSERT_EQUAL(chan_stream_recv(s, &v, &ok, &index), CHAN_OK);
	CU_ASSERT_FALSE(ok);
	CU_ASSERT_EQUAL(index, 1);
	CU_ASSERT_FALSE(chan_stream_err(s, 1, &code, msg, sizeof msg));
	CU_ASSERT_FALSE(chan_stream_err(s, 2, &code, msg, sizeof msg));
	CU_ASSERT_EQUAL(chan_stream_recv(s, &v, &ok, &index), CHAN_ECLOSED);
	chan_stream_free(s);
	chan_free(chans[0]);
	chan_free(chans[1]);
}

/* chan_info shows it; bad messages are refused and the channel stays open. */
static void
test_info_and_bad_input(void)
{
	chan_t *ch = make("info", 0);
	char big[CHAN_CLOSE_MSG_MAX + 2];
	chan_info_t i;

	memset(big, 'm', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	CU_ASSERT_EQUAL(chan_close_err(NULL, ch, 1, big), CHAN_EINVAL);
	CU_ASSERT_EQUAL(chan_close_err(NULL, ch, 1, "\xc3\x28"), CHAN_EBADREQ);
	CU_ASSERT_EQUAL(chan_close_err(NULL, NULL, 1, "x"), CHAN_EINVAL);
	CU_ASSERT_EQUAL(chan_info(NULL, ch, &i), CHAN_OK);
	CU_ASSERT_FALSE(i.closed);
	CU_ASSERT_FALSE(i.has_close_error);
	big[CHAN_CLOSE_MSG_MAX] = '\0';		/* 1024 bytes: the most */
	CU_ASSERT_EQUAL(chan_close_err(NULL, ch, 0, big), CHAN_OK);
	CU_ASSERT_EQUAL(chan_info(NULL, ch, &i), CHAN_OK);
	CU_ASSERT(i.closed);
	CU_ASSERT(i.has_close_error);
	CU_ASSERT_EQUAL(i.close_code, 0);
	CU_ASSERT_STRING_EQUAL(i.close_message, big);
	expect_closed(ch, 0, big);
	chan_free(ch);
	/* NULL msg: an empty message, still an error */
	ch = make("empty", 0);
	CU_ASSERT_EQUAL(chan_close_err(NULL, ch, 4, NULL), CHAN_OK);
	expect_closed(ch, 4, "");
	chan_free(ch);
}

/* or-done and tee pass their input's error on; the links end by themselves. */
static void
test_or_done_and_tee(void)
{
	chan_t *in = make("od.in", 1), *tin = make("tee.in", 0), *out, *o1, *o2;
	chan_link_t *od, *tee;

	CU_ASSERT_EQUAL_FATAL(chan_or_done(NULL, in, NULL, &od, &out), CHAN_OK);
	CU_ASSERT_EQUAL_FATAL(chan_tee(NULL, tin, NULL, &tee, &o1, &o2), CHAN_OK);
	send_str(in, "one");
	CU_ASSERT_EQUAL(chan_close_err(NULL, in, 6, "upstream failed"), CHAN_OK);
	expect_str(out, "one");
	expect_closed(out, 6, "upstream failed");
	CU_ASSERT_EQUAL(chan_link_wait(od, NULL), CHAN_OK);
	CU_ASSERT(wait_waiters(chan_name(tin), 0, 1));
	CU_ASSERT_EQUAL(chan_close_err(NULL, tin, 7, "tee source gone"), CHAN_OK);
	expect_closed(o1, 7, "tee source gone");
	expect_closed(o2, 7, "tee source gone");
	CU_ASSERT_EQUAL(chan_link_wait(tee, NULL), CHAN_OK);
	chan_link_free(od);
	chan_link_free(tee);
	chan_free(out);
	chan_free(o1);
	chan_free(o2);
	chan_free(in);
	chan_free(tin);
}

/* fan-in: the first input to close with an error gives it, once every input closed. */
static void
test_fan_in(void)
{
	chan_t *ins[3] = { make("fi.a", 0), make("fi.b", 0), make("fi.c", 0) }, *out;
	chan_link_t *l;

	CU_ASSERT_EQUAL_FATAL(chan_fan_in(NULL, ins, 3, NULL, &l, &out), CHAN_OK);
	CU_ASSERT(wait_waiters(chan_name(ins[2]), 0, 1));
	CU_ASSERT_EQUAL(chan_close_err(NULL, ins[2], 31, "c failed first"), CHAN_OK);
	CU_ASSERT(wait_waiters(chan_name(ins[2]), 0, 0));
	CU_ASSERT_EQUAL(chan_close(NULL, ins[0]), CHAN_OK);
	CU_ASSERT(wait_waiters(chan_name(ins[0]), 0, 0));
	CU_ASSERT_EQUAL(chan_close_err(NULL, ins[1], 32, "b failed later"), CHAN_OK);
	expect_closed(out, 31, "c failed first");
	CU_ASSERT_EQUAL(chan_link_wait(l, NULL), CHAN_OK);
	chan_link_free(l);
	chan_free(out);
	for (int i = 0; i < 3; i++)
		chan_free(ins[i]);
}

/* bridge: an inner channel's error arrives as an error value; the outer one's closes the output. */
static void
test_bridge(void)
{
	chan_t *in = make("br.in", 2), *inner = make("br.inner", 1), *out;
	chan_link_t *l;
	chan_value_t v;
	char want[128];
	bool ok = false;

	send_str(inner, "i");
	CU_ASSERT_EQUAL(chan_close_err(NULL, inner, 12, "inner broke"), CHAN_OK);
	CU_ASSERT_EQUAL(chan_send_chan(NULL, in, inner), CHAN_OK);
	CU_ASSERT_EQUAL(chan_close_err(NULL, in, 13, "no more streams"), CHAN_OK);
	CU_ASSERT_EQUAL_FATAL(chan_bridge(NULL, in, NULL, &l, &out), CHAN_OK);
	expect_str(out, "i");
	CU_ASSERT_EQUAL(chan_recv(NULL, out, &v, &ok), CHAN_OK);
	CU_ASSERT(ok);
	CU_ASSERT_EQUAL(v.kind, CHAN_VALUE_ERROR);
	snprintf(want, sizeof want, "bridge: %s closed with error 12: inner broke", chan_name(inner));
	CU_ASSERT(v.kind == CHAN_VALUE_ERROR && strcmp(v.data, want) == 0);
	chan_value_clear(&v);
	expect_closed(out, 13, "no more streams");
	CU_ASSERT_EQUAL(chan_link_wait(l, NULL), CHAN_OK);
	chan_link_free(l);
	chan_free(out);
	chan_free(inner);
	chan_free(in);
}

static void
register_suites(void)
{
	CU_pSuite s = test_suite("client close errors", cs_suite_init, cs_suite_clean);

	test_add(s, "a blocked chan_recv gets ok false; chan_err the error", test_blocked_receiver);
	test_add(s, "values first, then ok false and the error", test_values_then_error);
	test_add(s, "the plain chan_close has no error", test_plain_close);
	test_add(s, "a select's receive case records the error", test_select);
	test_add(s, "a stream's close report carries the error (chan_stream_err)", test_stream);
	test_add(s, "chan_info shows it; bad messages are refused", test_info_and_bad_input);
	test_add(s, "or-done and tee pass the error on", test_or_done_and_tee);
	test_add(s, "fan-in passes the first error on", test_fan_in);
	test_add(s, "bridge: inner errors as error values, the outer error closes", test_bridge);
}

int
main(int argc, char **argv)
{
	return test_main(argc, argv, register_suites);
}
