/*
 * test_security_links.c: a link acts for the identity that made it
 * (PROTOCOL.md §12, §13), against a real chand with tokens and rules, over
 * the raw protocol.
 *
 * Identity mal has rights on m.* (and on r.* until a test reloads the
 * rules without them); admin has every right. `secret` channels are
 * admin's: each test checks that mal cannot get their values through a
 * link of any kind, that they keep them (LEN from admin), and that the
 * permitted path still works. Connections: ctl (mal) makes links and reads
 * their replies, d (mal) moves data, adm (admin) makes secrets and looks.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "srvtest.h"

#define NAME_CAP 256
#define WAIT_10S (10 * 1000000)

static struct test_server srv;
static struct test_conn ctl, d, adm;
static struct proto_out o;
static char tok_mal[100], tok_admin[100];

/* ---- chand, tokens and rules ------------------------------------------------------ */

/* The rules; with_r: mal also has r.* (a reload without it takes those rights away). */
static void
conf_text(char *buf, size_t cap, bool with_r)
{
	snprintf(buf, cap,
	    "token = %s\n"
	    "token = %s\n"
	    "allow = mal m.* send,recv,make,close,delete\n"
	    "%s"
	    "allow = admin * all\n"
	    "owner_close = yes\n"
	    "workers = 2\n",
	    tok_mal, tok_admin, with_r ? "allow = mal r.* send,recv,make,close\n" : "");
}

static int
hello(struct test_conn *t, const char *token)
{
	struct proto_reply r;

	if (test_conn_open(t, srv.port, false) < 0)
		return -1;
	proto_req_hello(&o, t->next_id++, PROTO_VERSION, "test", token);
	/* no CUnit assertions here: it runs in the suite's set-up */
	if (test_conn_write(t, proto_out_data(&o), proto_out_len(&o)) < 0)
		return -1;
	proto_out_reset(&o);
	if (test_conn_reply(t, OP_HELLO, REPLY_MS, &r) < 0)
		return -1;
	return r.status == STATUS_OK ? 0 : -1;
}

static int
suite_init(void)
{
	char hex[80], conf[1024];

	proto_out_init(&o);
	test_token_digest("mal-secret", hex);
	snprintf(tok_mal, sizeof tok_mal, "mal:%s", hex);
	test_token_digest("admin-secret", hex);
	snprintf(tok_admin, sizeof tok_admin, "admin:%s", hex);
	if (strlen(tok_mal) != 68)
		return -1;
	conf_text(conf, sizeof conf, true);
	if (test_server_start(&srv, conf) < 0)
		return -1;
	if (hello(&ctl, "mal-secret") < 0 || hello(&d, "mal-secret") < 0)
		return -1;
	return hello(&adm, "admin-secret");
}

static int
suite_clean(void)
{
	test_conn_close(&ctl);
	test_conn_close(&d);
	test_conn_close(&adm);
	proto_out_destroy(&o);
	return test_server_stop(&srv) == 0 ? 0 : -1;
}

/* mal's status for LEN of a name under r.*: NOT_FOUND with the r.* rule, PERMISSION_DENIED without. */
static int
probe_r(void)
{
	struct proto_reply r;
	uint64_t id = st_name_op(&d, OP_LEN, "r.probe");

	st_reply(&d, OP_LEN, &r);
	CU_ASSERT_EQUAL(r.id, id);
	return r.status;
}

/* Rewrite the rules, SIGHUP, and wait (10 s) until mal's rights show them. */
static void
reload(bool with_r)
{
	int want = with_r ? STATUS_NOT_FOUND : STATUS_PERMISSION_DENIED;
	int64_t end = clock_now_ns() + 10 * NSEC_PER_SEC;
	char conf[1024];
	FILE *f;

	conf_text(conf, sizeof conf, with_r);
	CU_ASSERT_FATAL((f = fopen(srv.conf, "w")) != NULL);
	fputs(conf, f);
	fclose(f);
	kill(srv.pid, SIGHUP);
	while (probe_r() != want && clock_now_ns() < end)
		poll(NULL, 0, 10);
	CU_ASSERT_EQUAL_FATAL(probe_r(), want);
}

/* ---- helpers -------------------------------------------------------------------- */

/* Start link l on ctl: its first reply's status (STARTED, names into outs), its id in *id. */
static int
link_start(const struct proto_request *l, uint64_t *id, char outs[][NAME_CAP])
{
	struct proto_reply r;
	const char *name;
	uint32_t len;
	int i = 0;

	*id = ctl.next_id++;
	CU_ASSERT_FATAL(proto_req_link(&o, *id, PROTO_WAIT_FOREVER, l) == 0);
	st_write(&ctl, &o);
	st_reply(&ctl, l->op, &r);
	CU_ASSERT_EQUAL(r.id, *id);
	while (r.status == STATUS_STARTED && outs && proto_list_name(&r.list, &name, &len) == 1) {
		CU_ASSERT_FATAL(len < NAME_CAP);
		memcpy(outs[i], name, len);
		outs[i++][len] = '\0';
	}
	return r.status;
}

/* The final reply of link id: its status; the message (errors) must hold want if given. */
static int
link_end(uint64_t op, uint64_t id, const char *want)
{
	struct proto_reply r;
	char msg[512];

	st_reply(&ctl, op, &r);
	CU_ASSERT_EQUAL(r.id, id);
	snprintf(msg, sizeof msg, "%.*s", (int)r.msg_len, r.msg ? r.msg : "");
	if (want != NULL && strstr(msg, want) == NULL) {
		fprintf(stderr, "link message \"%s\" lacks \"%s\"\n", msg, want);
		CU_FAIL("the link's final message");
	}
	return r.status;
}

/* A link request with one input and one named output. */
static struct proto_request
one_in(uint64_t op, const char *in, const char *out)
{
	struct proto_request l = { .op = op, .nouts = 1 };

	if (in) {
		l.name = in;
		l.name_len = (uint32_t)strlen(in);
	}
	l.outs[0] = (struct proto_link_out){ out, (uint32_t)strlen(out), 0 };
	return l;
}

static void
set_done(struct proto_request *l, const char *done)
{
	l->done = done;
	l->done_len = (uint32_t)strlen(done);
}

/* A fresh name: base.N (the rules match on the base's first part). */
static void
name(char *buf, const char *base)
{
	snprintf(buf, NAME_CAP, "%s", st_name(base));
}

static void
make(struct test_conn *c, const char *n, uint64_t cap)
{
	CU_ASSERT_EQUAL_FATAL(st_make(c, n, cap), STATUS_OK);
}

static void
send_ok(struct test_conn *c, const char *n, const char *v)
{
	CU_ASSERT_EQUAL(st_send_wait(c, n, v, WAIT_10S), STATUS_OK);
}

static void
send_ref(const char *cc, const char *target)
{
	struct proto_value v = { .kind = VALUE_CHANREF, .data = (const uint8_t *)target,
	    .len = strlen(target) };
	struct proto_reply r;

	proto_req_send(&o, d.next_id++, WAIT_10S, cc, strlen(cc), &v);
	st_write(&d, &o);
	st_reply(&d, OP_SEND, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
}

/* RECV on d (10 s): the value must be of kind with data holding want (NULL: closed). */
static void
expect(const char *n, enum proto_value_kind kind, const char *want)
{
	struct proto_reply r;
	uint64_t id = st_recv(&d, n, WAIT_10S);
	char got[512];

	st_reply(&d, OP_RECV, &r);
	CU_ASSERT_EQUAL(r.id, id);
	CU_ASSERT_EQUAL_FATAL(r.status, STATUS_OK);
	if (want == NULL) {
		CU_ASSERT(!r.ok);
		return;
	}
	CU_ASSERT(r.ok);
	CU_ASSERT_EQUAL(r.value.kind, kind);
	snprintf(got, sizeof got, "%.*s", (int)r.value.len, r.value.data ? (const char *)r.value.data : "");
	if (kind == VALUE_BIN) {
		CU_ASSERT_STRING_EQUAL(got, want);
	} else if (strstr(got, want) == NULL) {
		fprintf(stderr, "error value \"%s\" lacks \"%s\"\n", got, want);
		CU_FAIL("the error value's message");
	}
}

/* LEN as admin: the values a channel still holds. */
static uint64_t
len_of(const char *n)
{
	struct proto_reply r;
	uint64_t id = st_name_op(&adm, OP_LEN, n);

	st_reply(&adm, OP_LEN, &r);
	CU_ASSERT_EQUAL(r.id, id);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
	return r.n;
}

static bool
closed(const char *n)
{
	struct proto_chan_info i;

	return st_info(&adm, n, &i) == STATUS_OK && i.closed;
}

/* admin's channel with two values mal must never see. */
static void
make_secret(char *s)
{
	name(s, "secret");
	make(&adm, s, 4);
	send_ok(&adm, s, "s1");
	send_ok(&adm, s, "s2");
}

/* "permission denied: RIGHT on NAME" */
static const char *
denied(const char *right, const char *n)
{
	static char buf[NAME_CAP + 64];

	snprintf(buf, sizeof buf, "permission denied: %s on %s", right, n);
	return buf;
}

/* ---- bridge ----------------------------------------------------------------------- */

/* The issue: a bridge of mal's sent a reference to secret drained it into mal's output. */
static void
test_bridge_forbidden_ref(void)
{
	char sec[NAME_CAP], in[NAME_CAP], ok[NAME_CAP], out[NAME_CAP], outs[1][NAME_CAP];
	char none[NAME_CAP], log[NAME_CAP + 32];
	struct proto_request l;
	struct proto_reply r;
	uint64_t id;

	make_secret(sec);
	name(none, "secret.none");
	name(in, "m.bin");
	name(ok, "m.bok");
	name(out, "m.bout");
	/* a direct RECV is denied */
	st_recv(&d, sec, 0);
	st_reply(&d, OP_RECV, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_PERMISSION_DENIED);
	make(&d, in, 4);
	make(&d, ok, 4);
	send_ok(&d, ok, "a");
	send_ok(&d, ok, "b");
	CU_ASSERT_EQUAL(st_close(&d, ok), STATUS_OK);
	send_ref(in, sec);
	send_ref(in, none);	/* denied before it is looked up: no probing which names exist */
	send_ref(in, ok);
	CU_ASSERT_EQUAL(st_close(&d, in), STATUS_OK);
	l = one_in(OP_BRIDGE, in, out);
	CU_ASSERT_EQUAL_FATAL(link_start(&l, &id, outs), STATUS_STARTED);
	expect(out, VALUE_ERROR, denied("recv", sec));
	expect(out, VALUE_ERROR, denied("recv", none));
	/* the permitted path still works: the bridge went on */
	expect(out, VALUE_BIN, "a");
	expect(out, VALUE_BIN, "b");
	expect(out, VALUE_BIN, NULL);
	CU_ASSERT_EQUAL(link_end(OP_BRIDGE, id, NULL), STATUS_OK);
	CU_ASSERT_EQUAL(len_of(sec), 2);
	snprintf(log, sizeof log, "link: recv on %s", sec);
	CU_ASSERT(test_server_await_log(&srv, log));
}

/* A reload that takes recv away ends the drain of the channel followed, even while it waits. */
static void
test_bridge_reload(void)
{
	char sub[NAME_CAP], in[NAME_CAP], ok[NAME_CAP], out[NAME_CAP], outs[1][NAME_CAP];
	struct proto_request l;
	uint64_t id;

	name(sub, "r.bsub");
	name(in, "m.brin");
	name(ok, "m.brok");
	name(out, "m.brout");
	make(&d, sub, 4);
	make(&d, in, 4);
	make(&d, ok, 1);
	send_ok(&d, ok, "c");
	CU_ASSERT_EQUAL(st_close(&d, ok), STATUS_OK);
	send_ref(in, sub);
	l = one_in(OP_BRIDGE, in, out);
	CU_ASSERT_EQUAL_FATAL(link_start(&l, &id, outs), STATUS_STARTED);
	send_ok(&adm, sub, "r1");
	expect(out, VALUE_BIN, "r1");
	CU_ASSERT(st_await_waiters(&adm, sub, -1, 1));
	reload(false);
	expect(out, VALUE_ERROR, denied("recv", sub));
	send_ok(&adm, sub, "r2");
	/* the next reference is followed as before; one to sub is now denied when taken */
	send_ref(in, ok);
	expect(out, VALUE_BIN, "c");
	send_ref(in, sub);
	expect(out, VALUE_ERROR, denied("recv", sub));
	CU_ASSERT_EQUAL(st_close(&d, in), STATUS_OK);
	expect(out, VALUE_BIN, NULL);
	CU_ASSERT_EQUAL(link_end(OP_BRIDGE, id, NULL), STATUS_OK);
	CU_ASSERT_EQUAL(len_of(sub), 1);
	reload(true);
}

/* A reload while the bridge holds a value: the next receive from the channel followed is denied. */
static void
test_bridge_reload_between_values(void)
{
	char sub[NAME_CAP], in[NAME_CAP], out[NAME_CAP], outs[1][NAME_CAP];
	struct proto_request l;
	uint64_t id;

	name(sub, "r.bvsub");
	name(in, "m.bvin");
	name(out, "m.bvout");
	make(&d, sub, 4);
	make(&d, in, 4);
	send_ok(&adm, sub, "v1");
	send_ok(&adm, sub, "v2");
	send_ref(in, sub);
	l = one_in(OP_BRIDGE, in, out);
	CU_ASSERT_EQUAL_FATAL(link_start(&l, &id, outs), STATUS_STARTED);
	/* v1 taken, the bridge waits to send it: nothing waits on sub */
	CU_ASSERT(st_await_waiters(&adm, out, 1, -1));
	reload(false);
	expect(out, VALUE_BIN, "v1");	/* taken before the reload, as a client's RECV would be */
	expect(out, VALUE_ERROR, denied("recv", sub));
	CU_ASSERT_EQUAL(len_of(sub), 1);
	CU_ASSERT_EQUAL(st_close(&d, in), STATUS_OK);
	expect(out, VALUE_BIN, NULL);
	CU_ASSERT_EQUAL(link_end(OP_BRIDGE, id, NULL), STATUS_OK);
	reload(true);
}

/* ---- or, or-done ------------------------------------------------------------------- */

static void
test_or(void)
{
	char sec[NAME_CAP], a[NAME_CAP], b[NAME_CAP], out[NAME_CAP], outs[1][NAME_CAP];
	struct proto_case cases[2];
	struct proto_request l;
	uint64_t id;

	make_secret(sec);
	name(a, "m.ora");
	name(b, "r.orb");
	name(out, "m.orout");
	make(&d, a, 0);
	make(&d, b, 1);
	cases[0] = (struct proto_case){ .name = a, .name_len = (uint32_t)strlen(a) };
	cases[1] = (struct proto_case){ .name = sec, .name_len = (uint32_t)strlen(sec) };
	l = one_in(OP_OR, NULL, out);
	l.cases = cases;
	l.ncases = 2;
	/* an OR would consume a value of secret's */
	CU_ASSERT_EQUAL(link_start(&l, &id, NULL), STATUS_PERMISSION_DENIED);
	CU_ASSERT_EQUAL(len_of(sec), 2);
	cases[1] = (struct proto_case){ .name = b, .name_len = (uint32_t)strlen(b) };
	CU_ASSERT_EQUAL_FATAL(link_start(&l, &id, outs), STATUS_STARTED);
	CU_ASSERT(st_await_waiters(&adm, b, -1, 1));
	reload(false);
	CU_ASSERT_EQUAL(link_end(OP_OR, id, denied("recv", b)), STATUS_PERMISSION_DENIED);
	CU_ASSERT(closed(out));		/* mal may still close m.* */
	send_ok(&adm, b, "kept");
	CU_ASSERT_EQUAL(len_of(b), 1);
	reload(true);
	/* the permitted path: a close of an input fires it */
	CU_ASSERT_EQUAL_FATAL(link_start(&l, &id, outs), STATUS_STARTED);
	CU_ASSERT_EQUAL(st_close(&d, a), STATUS_OK);
	CU_ASSERT_EQUAL(link_end(OP_OR, id, NULL), STATUS_OK);
}

static void
test_or_done(void)
{
	char sec[NAME_CAP], in[NAME_CAP], out[NAME_CAP], outs[1][NAME_CAP];
	struct proto_request l;
	uint64_t id;

	make_secret(sec);
	name(in, "r.odin");
	name(out, "m.odout");
	make(&d, in, 1);
	l = one_in(OP_OR_DONE, sec, out);
	CU_ASSERT_EQUAL(link_start(&l, &id, NULL), STATUS_PERMISSION_DENIED);
	l = one_in(OP_OR_DONE, in, out);
	set_done(&l, sec);	/* a done channel is received from too */
	CU_ASSERT_EQUAL(link_start(&l, &id, NULL), STATUS_PERMISSION_DENIED);
	CU_ASSERT_EQUAL(len_of(sec), 2);
	l = one_in(OP_OR_DONE, in, out);
	CU_ASSERT_EQUAL_FATAL(link_start(&l, &id, outs), STATUS_STARTED);
	send_ok(&d, in, "v");
	expect(out, VALUE_BIN, "v");
	CU_ASSERT(st_await_waiters(&adm, in, -1, 1));
	reload(false);
	CU_ASSERT_EQUAL(link_end(OP_OR_DONE, id, denied("recv", in)), STATUS_PERMISSION_DENIED);
	expect(out, VALUE_BIN, NULL);
	send_ok(&adm, in, "kept");
	CU_ASSERT_EQUAL(len_of(in), 1);
	reload(true);
}

/* An anonymous output the link makes is mal's own: sending to it needs no rule on ~*. */
static void
test_own_anonymous_output(void)
{
	char in[NAME_CAP], outs[1][NAME_CAP];
	struct proto_request l = { .op = OP_OR_DONE };
	struct proto_reply r;
	uint64_t id, rid;

	name(in, "m.anin");
	make(&d, in, 1);
	l.name = in;
	l.name_len = (uint32_t)strlen(in);
	CU_ASSERT_EQUAL_FATAL(link_start(&l, &id, outs), STATUS_STARTED);
	send_ok(&d, in, "w");
	rid = st_recv(&adm, outs[0], WAIT_10S);	/* mal has no rule on ~*: admin reads it */
	st_reply(&adm, OP_RECV, &r);
	CU_ASSERT_EQUAL(r.id, rid);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
	CU_ASSERT(ST_VALUE_IS(r, "w"));
	CU_ASSERT_EQUAL(st_close(&d, in), STATUS_OK);
	CU_ASSERT_EQUAL(link_end(OP_OR_DONE, id, NULL), STATUS_OK);
}

/* ---- tee ---------------------------------------------------------------------------- */

/* owner_close: a link closes its outputs, so it may not write into admin's channel either. */
static void
test_tee_owner(void)
{
	char in[NAME_CAP], mine[NAME_CAP], theirs[NAME_CAP], outs[2][NAME_CAP];
	struct proto_request l;
	struct proto_reply r;
	uint64_t id;

	name(in, "m.tin");
	name(mine, "m.tmine");
	name(theirs, "m.ttheirs");
	make(&d, in, 1);
	make(&adm, theirs, 1);
	/* mal's close right on m.* does not cover admin's channel */
	st_name_op(&d, OP_CLOSE, theirs);
	st_reply(&d, OP_CLOSE, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_PERMISSION_DENIED);
	l = one_in(OP_TEE, in, mine);
	l.nouts = 2;
	l.outs[1] = (struct proto_link_out){ theirs, (uint32_t)strlen(theirs), 1 };
	CU_ASSERT_EQUAL(link_start(&l, &id, NULL), STATUS_PERMISSION_DENIED);
	CU_ASSERT(!closed(theirs));
	CU_ASSERT(test_server_await_log(&srv, "a link closes its outputs"));
	/* the permitted path: both outputs mal's */
	name(theirs, "m.tsecond");
	l.outs[1] = (struct proto_link_out){ theirs, (uint32_t)strlen(theirs), 1 };
	l.outs[0].cap = 1;
	CU_ASSERT_EQUAL_FATAL(link_start(&l, &id, outs), STATUS_STARTED);
	send_ok(&d, in, "t");
	expect(mine, VALUE_BIN, "t");
	expect(theirs, VALUE_BIN, "t");
	CU_ASSERT_EQUAL(st_close(&d, in), STATUS_OK);
	CU_ASSERT_EQUAL(link_end(OP_TEE, id, NULL), STATUS_OK);
}

/* ---- fan-in ------------------------------------------------------------------------ */

/* A send right taken away: the next send is denied, and the output it may not close stays open. */
static void
test_fan_in_send_revoked(void)
{
	char a[NAME_CAP], b[NAME_CAP], out[NAME_CAP], outs[1][NAME_CAP], sec[NAME_CAP];
	struct proto_case cases[2];
	struct proto_request l;
	uint64_t id;

	make_secret(sec);
	name(a, "m.fia");
	name(b, "m.fib");
	name(out, "r.fiout");
	make(&d, a, 1);
	make(&d, b, 1);
	cases[0] = (struct proto_case){ .name = a, .name_len = (uint32_t)strlen(a) };
	cases[1] = (struct proto_case){ .name = sec, .name_len = (uint32_t)strlen(sec) };
	l = one_in(OP_FAN_IN, NULL, out);
	l.cases = cases;
	l.ncases = 2;
	CU_ASSERT_EQUAL(link_start(&l, &id, NULL), STATUS_PERMISSION_DENIED);
	cases[1] = (struct proto_case){ .name = b, .name_len = (uint32_t)strlen(b) };
	CU_ASSERT_EQUAL_FATAL(link_start(&l, &id, outs), STATUS_STARTED);
	send_ok(&d, a, "x");
	expect(out, VALUE_BIN, "x");
	reload(false);
	send_ok(&d, b, "y");
	CU_ASSERT_EQUAL(link_end(OP_FAN_IN, id, denied("send", out)), STATUS_PERMISSION_DENIED);
	CU_ASSERT(!closed(out));	/* mal lost close on r.* too */
	CU_ASSERT_EQUAL(len_of(out), 0);
	CU_ASSERT_EQUAL(len_of(sec), 2);
	reload(true);
}

/* ---- repeat, take ------------------------------------------------------------------- */

static void
test_repeat(void)
{
	char sec[NAME_CAP], out[NAME_CAP], outs[1][NAME_CAP];
	struct proto_case vals[1] = { { .dir = 1, .value = { .kind = VALUE_BIN,
	    .data = (const uint8_t *)"x", .len = 1 } } };
	struct proto_request l;
	uint64_t id;

	make_secret(sec);
	name(out, "r.rep");
	l = one_in(OP_REPEAT, NULL, sec);	/* into admin's channel: no send right */
	l.cases = vals;
	l.ncases = 1;
	CU_ASSERT_EQUAL(link_start(&l, &id, NULL), STATUS_PERMISSION_DENIED);
	CU_ASSERT_EQUAL(len_of(sec), 2);
	l.outs[0] = (struct proto_link_out){ out, (uint32_t)strlen(out), 0 };
	CU_ASSERT_EQUAL_FATAL(link_start(&l, &id, outs), STATUS_STARTED);
	expect(out, VALUE_BIN, "x");
	CU_ASSERT(st_await_waiters(&adm, out, 1, -1));
	reload(false);
	CU_ASSERT_EQUAL(link_end(OP_REPEAT, id, denied("send", out)), STATUS_PERMISSION_DENIED);
	CU_ASSERT(!closed(out));
	reload(true);
}

static void
test_take_done(void)
{
	char sec[NAME_CAP], in[NAME_CAP], done[NAME_CAP], out[NAME_CAP], outs[1][NAME_CAP];
	struct proto_request l;
	uint64_t id;

	make_secret(sec);
	name(in, "m.tkin");
	name(done, "r.tkdone");
	name(out, "m.tkout");
	make(&d, in, 1);
	make(&d, done, 1);
	l = one_in(OP_TAKE, sec, out);
	l.count = 1;
	CU_ASSERT_EQUAL(link_start(&l, &id, NULL), STATUS_PERMISSION_DENIED);
	CU_ASSERT_EQUAL(len_of(sec), 2);
	l = one_in(OP_TAKE, in, out);
	l.count = 5;
	set_done(&l, done);
	CU_ASSERT_EQUAL_FATAL(link_start(&l, &id, outs), STATUS_STARTED);
	send_ok(&d, in, "1");
	expect(out, VALUE_BIN, "1");
	CU_ASSERT(st_await_waiters(&adm, done, -1, 1));
	reload(false);
	/* the done channel's receive would take a value mal may no longer take */
	CU_ASSERT_EQUAL(link_end(OP_TAKE, id, denied("recv", done)), STATUS_PERMISSION_DENIED);
	expect(out, VALUE_BIN, NULL);
	send_ok(&adm, done, "kept");
	CU_ASSERT_EQUAL(len_of(done), 1);
	reload(true);
}

/* ---- fan-out ----------------------------------------------------------------------- */

/* A stage never follows a reference; a reload ends the job's waiting receive. */
static void
test_fan_out(void)
{
	char sec[NAME_CAP], in[NAME_CAP], out[NAME_CAP], outs[1][NAME_CAP];
	struct proto_request l;
	uint64_t id;

	make_secret(sec);
	name(in, "r.foin");
	name(out, "m.foout");
	make(&d, in, 4);
	l = one_in(OP_FAN_OUT, sec, out);
	l.stage = "identity";
	l.stage_len = 8;
	l.count = 1;
	CU_ASSERT_EQUAL(link_start(&l, &id, NULL), STATUS_PERMISSION_DENIED);
	l.name = in;
	l.name_len = (uint32_t)strlen(in);
	CU_ASSERT_EQUAL_FATAL(link_start(&l, &id, outs), STATUS_STARTED);
	send_ref(in, sec);
	send_ok(&d, in, "p");
	expect(out, VALUE_ERROR, "");
	expect(out, VALUE_BIN, "p");
	CU_ASSERT_EQUAL(len_of(sec), 2);
	CU_ASSERT(st_await_waiters(&adm, in, -1, 1));
	reload(false);
	CU_ASSERT_EQUAL(link_end(OP_FAN_OUT, id, denied("recv", in)), STATUS_PERMISSION_DENIED);
	expect(out, VALUE_BIN, NULL);
	reload(true);
}

/* ---- references in SELECT and STREAM ------------------------------------------------- */

/* A reference is only a name: receiving one gives no right on the channel it names. */
static void
test_refs_select_stream(void)
{
	char sec[NAME_CAP], cc[NAME_CAP];
	struct proto_case cases[2];
	struct proto_reply r;
	uint64_t id;

	make_secret(sec);
	name(cc, "m.refs");
	make(&d, cc, 1);
	send_ref(cc, sec);
	cases[0] = (struct proto_case){ .name = cc, .name_len = (uint32_t)strlen(cc) };
	id = st_select(&d, cases, 1, false, WAIT_10S);
	st_reply(&d, OP_SELECT, &r);
	CU_ASSERT_EQUAL(r.id, id);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
	CU_ASSERT_EQUAL(r.value.kind, VALUE_CHANREF);
	cases[1] = (struct proto_case){ .name = sec, .name_len = (uint32_t)strlen(sec) };
	id = st_select(&d, cases, 2, true, 0);
	st_reply(&d, OP_SELECT, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_PERMISSION_DENIED);
	CU_ASSERT_EQUAL(r.index, 1);
	id = d.next_id++;
	proto_req_stream(&o, id, WAIT_10S, cases, 2, 1);
	st_write(&d, &o);
	st_reply(&d, OP_STREAM, &r);
	CU_ASSERT_EQUAL(r.id, id);
	CU_ASSERT_EQUAL(r.status, STATUS_PERMISSION_DENIED);
	CU_ASSERT_EQUAL(r.index, 1);
	CU_ASSERT_EQUAL(len_of(sec), 2);
}

/* A client's own waiting RECV, STREAM and SELECT end at a reload that denies them, as a link's do. */
static void
test_client_waits_reload(void)
{
	char a[NAME_CAP], b[NAME_CAP], c[NAME_CAP];
	struct test_conn e, f, g;
	struct proto_case cs = { .dir = 1, .value = { .kind = VALUE_BIN, .data = (const uint8_t *)"x",
	    .len = 1 } };
	struct proto_reply r;
	uint64_t ids[3];

	CU_ASSERT_FATAL(hello(&e, "mal-secret") == 0 && hello(&f, "mal-secret") == 0 &&
	    hello(&g, "mal-secret") == 0);
	name(a, "r.wrecv");
	name(b, "r.wstream");
	name(c, "r.wselect");
	make(&adm, a, 1);
	make(&adm, b, 1);
	make(&adm, c, 0);
	ids[0] = st_recv(&e, a, WAIT_10S);
	cs.name = b;
	cs.name_len = (uint32_t)strlen(b);
	cs.dir = 0;
	ids[1] = f.next_id++;
	proto_req_stream(&o, ids[1], WAIT_10S, &cs, 1, 4);
	st_write(&f, &o);
	cs.name = c;
	cs.name_len = (uint32_t)strlen(c);
	cs.dir = 1;
	ids[2] = st_select(&g, &cs, 1, false, WAIT_10S);
	CU_ASSERT(st_await_waiters(&adm, a, 0, 1));
	CU_ASSERT(st_await_waiters(&adm, b, 0, 4));
	CU_ASSERT(st_await_waiters(&adm, c, 1, 0));
	reload(false);
	st_reply(&e, OP_RECV, &r);
	CU_ASSERT(r.id == ids[0] && r.status == STATUS_PERMISSION_DENIED);
	st_reply(&f, OP_STREAM, &r);
	CU_ASSERT(r.id == ids[1] && r.status == STATUS_PERMISSION_DENIED);
	st_reply(&g, OP_SELECT, &r);
	CU_ASSERT(r.id == ids[2] && r.status == STATUS_PERMISSION_DENIED);
	/* nothing of mal's waits any more: what is sent now stays in the channels */
	send_ok(&adm, a, "kept");
	send_ok(&adm, b, "kept");
	CU_ASSERT_EQUAL(len_of(a), 1);
	CU_ASSERT_EQUAL(len_of(b), 1);
	CU_ASSERT(st_await_waiters(&adm, c, 0, 0));
	reload(true);
	test_conn_close(&e);
	test_conn_close(&f);
	test_conn_close(&g);
}

static void
register_suites(void)
{
	CU_pSuite s = test_suite("security_links", suite_init, suite_clean);

	test_add(s, "bridge: a reference to a forbidden channel is an error value", test_bridge_forbidden_ref);
	test_add(s, "bridge: a reload ends the drain of a channel no longer allowed", test_bridge_reload);
	test_add(s, "bridge: a reload between two values of the channel followed",
	    test_bridge_reload_between_values);
	test_add(s, "or: a forbidden input; a reload ends its wait", test_or);
	test_add(s, "or-done: forbidden input and done; a reload ends its wait", test_or_done);
	test_add(s, "or-done: its own anonymous output needs no rule", test_own_anonymous_output);
	test_add(s, "tee: owner_close covers a link's outputs", test_tee_owner);
	test_add(s, "fan-in: a send right taken away stops it, output left open", test_fan_in_send_revoked);
	test_add(s, "repeat: forbidden output; a reload ends its waiting send", test_repeat);
	test_add(s, "take: forbidden input; a reload ends its done watch", test_take_done);
	test_add(s, "fan-out: references are not followed; a reload ends its wait", test_fan_out);
	test_add(s, "select, stream: a received reference gives no right", test_refs_select_stream);
	test_add(s, "a reload ends a client's waits it now denies", test_client_waits_reload);
}

int
main(int argc, char **argv)
{
	return test_main(argc, argv, register_suites);
}
