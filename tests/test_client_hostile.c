/*
 * test_client_hostile.c: libchanclient against a server that breaks the
 * protocol (PROTOCOL.md): frames that are not replies, notices, replies to
 * no request, and replies that decode but could not be true (a select's
 * case out of range or not asked for, a stream's channel it does not have,
 * a link's outputs other than asked). The library returns a clear code
 * (CHAN_EPROTO, or the notice's), never hands the caller an index it did
 * not pass, and the connection stays failed: the next call fails at once.
 * tests/fuzz/fuzz_client.c fuzzes the same ground.
 *
 * The server is a thread of this program on a unix socket in a temporary
 * directory. It answers HELLO, then each request with the next step of the
 * test's script, the request's id put in after the step's array header;
 * raw steps are written as they are. After the last step it hangs up.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "mpread.h"

#include "clienttest.h"

/* a step of a script: a reply body after its id, or raw bytes (framing included) */
struct step {
	const char *bytes;
	size_t len;
	bool raw;
	bool hangup;		/* close the sending side after it */
};
#define REPLY(s) { (s), sizeof(s) - 1, false, false }
#define RAW(s) { (s), sizeof(s) - 1, true, false }
#define RAW_HANGUP(s) { (s), sizeof(s) - 1, true, true }
#define MAX_STEPS 4

struct fake {
	char dir[32], path[64];
	int lfd;
	pthread_t th;
	struct step steps[MAX_STEPS];
	size_t nsteps;
};

/* HELLO's OK: {"version": 1, "server": "fake", "max_value": 64, "max_stream_credit": 64} after the id */
static const char hello_ok[] = "\x93\x00\x84\xa7version\x01\xa6server\xa4" "fake"
	"\xa9max_value\x40\xb1max_stream_credit\x40";

/* The next request's id, or 0 at the client's end (or after BOUND_MS). */
static uint64_t
read_request(struct test_conn *tc)
{
	const uint8_t *body;
	long len = test_conn_frame(tc, BOUND_MS, &body);
	uint64_t op, id;
	uint32_t n;
	struct mpr r;

	if (len <= 0)
		return 0;
	mpr_init(&r, body, (size_t)len);
	if (mpr_array(&r, &n) < 0 || mpr_uint(&r, &op) < 0 || mpr_uint(&r, &id) < 0)
		return 0;
	return id;
}

/* Write a reply body (bytes[0] an array header) with id put in after its header. */
static void
write_reply(struct test_conn *tc, const char *bytes, size_t len, uint64_t id)
{
	uint8_t frame[512];
	size_t n = 4;

	frame[n++] = (uint8_t)bytes[0];
	frame[n++] = 0xcf;	/* uint 64: any encoding that holds the id will do (§2) */
	for (int i = 0; i < 8; i++)
		frame[n++] = (uint8_t)(id >> (56 - 8 * i));
	memcpy(frame + n, bytes + 1, len - 1);
	n += len - 1;
	for (int i = 0; i < 4; i++)
		frame[i] = (uint8_t)((n - 4) >> (24 - 8 * i));
	test_conn_write(tc, frame, n);
}

static void *
fake_run(void *arg)
{
	struct fake *f = arg;
	struct test_conn tc = { .fd = accept(f->lfd, NULL, NULL) };
	const uint8_t *body;
	uint64_t id;

	if (tc.fd < 0)
		return NULL;
	if ((id = read_request(&tc)) != 0)
		write_reply(&tc, hello_ok, sizeof hello_ok - 1, id);
	for (size_t i = 0; id != 0 && i < f->nsteps; i++) {
		const struct step *s = &f->steps[i];

		if ((id = read_request(&tc)) == 0)
			break;
		if (s->raw)
			test_conn_write(&tc, s->bytes, s->len);
		else
			write_reply(&tc, s->bytes, s->len, id);
		if (s->hangup)
			shutdown(tc.fd, SHUT_WR);
	}
	/* nothing more to say: a call still waiting fails (CHAN_ECONNLOST) rather than hang */
	shutdown(tc.fd, SHUT_WR);
	/* until the client goes (it closes, or it broke the connection itself) */
	while (id != 0 && test_conn_frame(&tc, BOUND_MS, &body) > 0)
		;
	test_conn_close(&tc);
	return NULL;
}

/* Start a fake server with these steps and dial it: the connection, or NULL (the test failed). */
static chan_conn_t *
fake_dial(struct fake *f, const struct step *steps, size_t nsteps)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	chan_conn_t *conn = NULL;
	char addr[80];
	int rc;

	memset(f, 0, sizeof *f);
	snprintf(f->dir, sizeof f->dir, "/tmp/chand-hostile.XXXXXX");
	CU_ASSERT_FATAL(nsteps <= MAX_STEPS && mkdtemp(f->dir) != NULL);
	memcpy(f->steps, steps, nsteps * sizeof *steps);
	f->nsteps = nsteps;
	snprintf(f->path, sizeof f->path, "%s/s", f->dir);
	snprintf(sun.sun_path, sizeof sun.sun_path, "%s", f->path);
	CU_ASSERT_FATAL((f->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) >= 0);
	CU_ASSERT_FATAL(bind(f->lfd, (struct sockaddr *)&sun, sizeof sun) == 0 && listen(f->lfd, 1) == 0);
	CU_ASSERT_FATAL(pthread_create(&f->th, NULL, fake_run, f) == 0);
	snprintf(addr, sizeof addr, "unix:%s", f->path);
	rc = chan_dial(chan_background(), addr, NULL, &conn);
	CU_ASSERT_EQUAL(rc, CHAN_OK);
	return conn;
}

static void
fake_close(struct fake *f, chan_conn_t *conn)
{
	chan_conn_close(conn);
	pthread_join(f->th, NULL);
	close(f->lfd);
	unlink(f->path);
	rmdir(f->dir);
}

/* The connection failed with err for good: a later call fails with it at once. */
static void
assert_stays_failed(chan_conn_t *conn, int err)
{
	int64_t t0 = chan_now();

	CU_ASSERT_EQUAL(chan_ping(chan_background(), conn), err);
	CU_ASSERT(ms_since(t0) < BOUND_MS);
}

/* One PING answered by step: it fails with err, and so does the connection. */
static void
ping_fails(struct step step, int err)
{
	struct fake f;
	chan_conn_t *conn = fake_dial(&f, &step, 1);

	if (conn == NULL)
		return;
	CU_ASSERT_EQUAL(chan_ping(chan_background(), conn), err);
	assert_stays_failed(conn, err);
	fake_close(&f, conn);
}

static void
test_bad_frames(void)
{
	/* HELLO was request 1: the PING is 2 */
	ping_fails((struct step)RAW("\x00\x00\x00\x01\xc1"), CHAN_EPROTO);			/* not msgpack */
	ping_fails((struct step)RAW("\x00\x00\x00\x00"), CHAN_EPROTO);				/* length 0 */
	ping_fails((struct step)RAW("\x7f\xff\xff\xff"), CHAN_EPROTO);				/* over the limit */
	ping_fails((struct step)RAW("\x00\x00\x00\x05\x81\xa2id\x02"), CHAN_EPROTO);		/* not an array */
	ping_fails((struct step)RAW("\x00\x00\x00\x04\x92\x02\x00\xc0"), CHAN_EPROTO);		/* trailing bytes */
	ping_fails((struct step)REPLY("\x93\x00\x01"), CHAN_EPROTO);				/* a result PING has not */
	ping_fails((struct step)REPLY("\x93\x09\xa1x"), CHAN_EPROTO);			/* PROTOCOL, not closed after */
	ping_fails((struct step)RAW_HANGUP("\x00\x00\x00\x10\x94\x02"), CHAN_ECONNLOST);	/* cut short */
}

static void
test_notices(void)
{
	ping_fails((struct step)RAW("\x00\x00\x00\x14\x93\x00\x09\xb0you sent garbage"), CHAN_EPROTO);
	ping_fails((struct step)RAW("\x00\x00\x00\x17\x93\x00\x06\xb3" "credentials revoked"), CHAN_EPERM);
}

/* A reply to no pending request (a cancelled call's, say) is dropped; the call's own comes after. */
static void
test_reply_to_no_request(void)
{
	/* [999, 0], then the PING's [2, 0] */
	struct step step = RAW("\x00\x00\x00\x05\x92\xcd\x03\xe7\x00" "\x00\x00\x00\x03\x92\x02\x00");
	struct fake f;
	chan_conn_t *conn = fake_dial(&f, &step, 1);

	if (conn == NULL)
		return;
	CU_ASSERT_EQUAL(chan_ping(chan_background(), conn), CHAN_OK);
	fake_close(&f, conn);
}

/* A RECV answered by step: CHAN_EPROTO for good, and no value handed back. */
static void
recv_fails(struct step step)
{
	struct fake f;
	chan_conn_t *conn = fake_dial(&f, &step, 1);
	chan_value_t v = { .kind = CHAN_VALUE_NIL };
	chan_t *a = NULL;
	bool ok = true;

	if (conn == NULL)
		return;
	CU_ASSERT_FATAL(chan_handle_new(&a, conn, "a") == CHAN_OK);
	CU_ASSERT_EQUAL(chan_recv(chan_background(), a, &v, &ok), CHAN_EPROTO);
	CU_ASSERT_EQUAL(v.kind, CHAN_VALUE_NIL);
	assert_stays_failed(conn, CHAN_EPROTO);
	chan_value_clear(&v);
	chan_free(a);
	fake_close(&f, conn);
}

static void
test_recv_value_and_ok_disagree(void)
{
	recv_fails((struct step)REPLY("\x94\x00\xc4\x01x\xc2"));	/* a value, ok false */
	recv_fails((struct step)REPLY("\x94\x00\xc0\xc3"));		/* nil, ok true */
}

/* A SELECT over recv a, send b and a nil channel, answered by step: CHAN_EPROTO for good. */
static void
select_fails(struct step step, bool has_default)
{
	struct fake f;
	chan_conn_t *conn = fake_dial(&f, &step, 1);
	chan_t *a = NULL, *b = NULL;
	chan_case_t cases[3];

	if (conn == NULL)
		return;
	CU_ASSERT_FATAL(chan_handle_new(&a, conn, "a") == CHAN_OK && chan_handle_new(&b, conn, "b") == CHAN_OK);
	memset(cases, 0, sizeof cases);
	cases[0] = (chan_case_t){ .dir = CHAN_DIR_RECV, .ch = a };
	cases[1] = (chan_case_t){ .dir = CHAN_DIR_SEND, .ch = b, .data = "v", .len = 1 };
	cases[2] = (chan_case_t){ .dir = CHAN_DIR_RECV, .ch = NULL };
	CU_ASSERT_EQUAL(chan_select(chan_background(), cases, 3, has_default), CHAN_EPROTO);
	for (int i = 0; i < 3; i++)
		CU_ASSERT_EQUAL(cases[i].value.kind, CHAN_VALUE_NIL);
	assert_stays_failed(conn, CHAN_EPROTO);
	chan_free(a);
	chan_free(b);
	fake_close(&f, conn);
}

static void
test_select_case_not_asked(void)
{
	select_fails((struct step)REPLY("\x95\x00\x05\xc4\x01x\xc3"), true);	/* case 5 of 3 */
	select_fails((struct step)REPLY("\x95\x00\x02\xc4\x01x\xc3"), true);	/* the nil channel's */
	select_fails((struct step)REPLY("\x95\x00\xff\xc0\xc2"), false);		/* default, not asked for */
	select_fails((struct step)REPLY("\x94\x07\xa3" "bad\x05"), false);	/* an error about case 5 */
}

/* A stream over one channel gets a value from names[3]: no index 3 reaches the caller. */
static void
test_stream_channel_not_asked(void)
{
	struct fake f;
	chan_conn_t *conn = fake_dial(&f, (struct step[]){ REPLY("\x95\x00\x03\xc4\x01x\xc3") }, 1);
	chan_stream_t *s = NULL;
	chan_value_t v = { .kind = CHAN_VALUE_NIL };
	chan_t *a = NULL;
	size_t index = 99;
	bool ok = true;

	if (conn == NULL)
		return;
	CU_ASSERT_FATAL(chan_handle_new(&a, conn, "a") == CHAN_OK);
	CU_ASSERT_FATAL(chan_stream_open(chan_background(), &a, 1, 1, &s) == CHAN_OK);
	CU_ASSERT_EQUAL(chan_stream_recv(s, &v, &ok, &index), CHAN_EPROTO);
	CU_ASSERT_EQUAL(v.kind, CHAN_VALUE_NIL);
	CU_ASSERT_EQUAL(index, 99);
	CU_ASSERT_EQUAL(chan_stream_recv(s, &v, &ok, &index), CHAN_EPROTO);
	assert_stays_failed(conn, CHAN_EPROTO);
	chan_stream_free(s);
	chan_free(a);
	fake_close(&f, conn);
}

/* A stream of credit 1 gets two values at once: the first is taken, the second breaks the connection. */
static void
test_stream_past_its_credit(void)
{
	/* the STREAM is request 2: [2, 0, 0, bin "x", true], twice */
	struct fake f;
	chan_conn_t *conn = fake_dial(&f, (struct step[]){ RAW("\x00\x00\x00\x08\x95\x02\x00\x00\xc4\x01x\xc3"
	    "\x00\x00\x00\x08\x95\x02\x00\x00\xc4\x01x\xc3") }, 1);
	chan_stream_t *s = NULL;
	chan_value_t v = { .kind = CHAN_VALUE_NIL };
	chan_t *a = NULL;
	bool ok = false;

	if (conn == NULL)
		return;
	CU_ASSERT_FATAL(chan_handle_new(&a, conn, "a") == CHAN_OK);
	CU_ASSERT_FATAL(chan_stream_open(chan_background(), &a, 1, 1, &s) == CHAN_OK);
	CU_ASSERT_EQUAL(chan_stream_recv(s, &v, &ok, NULL), CHAN_OK);
	CU_ASSERT(ok && v.kind == CHAN_VALUE_BYTES && v.len == 1);
	chan_value_clear(&v);
	CU_ASSERT_EQUAL(chan_stream_recv(s, &v, &ok, NULL), CHAN_EPROTO);
	assert_stays_failed(conn, CHAN_EPROTO);
	chan_stream_free(s);
	chan_free(a);
	fake_close(&f, conn);
}

/* A tee STARTED with one output, and an or-done STARTED twice. */
static void
test_link_outputs_not_asked(void)
{
	struct fake f;
	chan_conn_t *conn = fake_dial(&f, (struct step[]){ REPLY("\x93\x0b\x91\xa1x") }, 1);
	chan_link_t *link = NULL;
	chan_t *a = NULL, *o1 = NULL, *o2 = NULL;

	if (conn == NULL)
		return;
	CU_ASSERT_FATAL(chan_handle_new(&a, conn, "a") == CHAN_OK);
	CU_ASSERT_EQUAL(chan_tee(chan_background(), a, NULL, &link, &o1, &o2), CHAN_EPROTO);
	CU_ASSERT(link == NULL && o1 == NULL && o2 == NULL);
	assert_stays_failed(conn, CHAN_EPROTO);
	chan_free(a);
	fake_close(&f, conn);

	/* [2, STARTED, ["x"]], then STARTED again where the final reply belongs */
	conn = fake_dial(&f, (struct step[]){ RAW("\x00\x00\x00\x06\x93\x02\x0b\x91\xa1x"
	    "\x00\x00\x00\x06\x93\x02\x0b\x91\xa1x") }, 1);
	if (conn == NULL)
		return;
	CU_ASSERT_FATAL(chan_handle_new(&a, conn, "a") == CHAN_OK);
	CU_ASSERT_EQUAL_FATAL(chan_or_done(chan_background(), a, NULL, &link, &o1), CHAN_OK);
	CU_ASSERT_EQUAL(chan_link_wait(link, NULL), CHAN_EPROTO);
	assert_stays_failed(conn, CHAN_EPROTO);
	chan_free(a);
	chan_link_free(link);
	chan_free(o1);
	fake_close(&f, conn);
}

static void
register_suites(void)
{
	CU_pSuite s = test_suite("hostile server", NULL, NULL);

	test_add(s, "frames that are not replies fail the connection", test_bad_frames);
	test_add(s, "a notice fails the connection with its status", test_notices);
	test_add(s, "a reply to no pending request is dropped", test_reply_to_no_request);
	test_add(s, "recv: a value and ok that disagree", test_recv_value_and_ok_disagree);
	test_add(s, "select: a case the server could not choose", test_select_case_not_asked);
	test_add(s, "stream: a value from a channel it does not have", test_stream_channel_not_asked);
	test_add(s, "stream: values past its credit", test_stream_past_its_credit);
	test_add(s, "link: outputs other than asked for", test_link_outputs_not_asked);
}

int
main(int argc, char **argv)
{
	return test_main(argc, argv, register_suites);
}
