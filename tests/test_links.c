/*
 * test_links.c: links and fan-out jobs (PROTOCOL.md §12) against a real
 * chand, over the raw protocol.
 *
 * Connections: `ctl` creates links and reads their STARTED and final
 * replies; `d` sends and receives data; `adm` polls INFO, STATS and
 * WAITERS. Waiting is on conditions (a reply, INFO showing waiters).
 *
 * This file holds the suites' chand and connections, the helpers, the
 * links and the ways they stop, and start-up and shutdown; fan-out jobs
 * are in test_links_fanout.c.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "srvtest.h"
#include "linkstest.h"

static struct test_server srv;
struct test_conn ctl, d, adm;
struct proto_out o;
static char module_path[PATH_MAX];

/* tests/stages/.libs/teststage.so beside $CHAND's build tree, or $CHAND_TEST_STAGE (chand under valgrind) */
static void
find_module(void)
{
	const char *chand = getenv("CHAND"), *mod = getenv("CHAND_TEST_STAGE");
	char buf[PATH_MAX];

	if (mod != NULL) {
		snprintf(module_path, sizeof module_path, "%s", mod);
		return;
	}

	snprintf(buf, sizeof buf, "%s", chand ? chand : "server/chand");
	snprintf(module_path, sizeof module_path, "%s/../tests/stages/.libs/teststage.so",
	    dirname(buf));
}

static int
suite_init(void)
{
	char conf[PATH_MAX + 128];

	find_module();
	if (access(module_path, R_OK) != 0) {
		fprintf(stderr, "test stage module %s is missing (make tests/stages/teststage.la)\n",
		    module_path);
		return -1;
	}
	snprintf(conf, sizeof conf, "workers = 4\nstage_module = test:%s\n", module_path);
	if (test_server_start(&srv, conf) < 0)
		return -1;
	if (test_conn_open(&ctl, srv.port, true) < 0 || test_conn_open(&d, srv.port, true) < 0)
		return -1;
	return test_conn_open(&adm, srv.port, true);
}

static int
suite_clean(void)
{
	test_conn_close(&ctl);
	test_conn_close(&d);
	test_conn_close(&adm);
	return test_server_stop(&srv) == 0 ? 0 : -1;
}

/* ---- helpers -------------------------------------------------------------------- */

static void
copy_name(char *dst, const char *src, size_t len)
{
	CU_ASSERT_FATAL(len < NAME_CAP);
	memcpy(dst, src, len);
	dst[len] = '\0';
}

/*
 * Send a link request on c; read its first reply. Returns the status
 * (STATUS_STARTED on success, names copied into outs) and the id in *id.
 */
int
link_start(struct test_conn *c, const struct proto_request *l, int64_t wait_us, uint64_t *id,
    char outs[][NAME_CAP])
{
	struct proto_reply r;
	const char *name;
	uint32_t len;
	int i = 0;

	*id = c->next_id++;
	CU_ASSERT_FATAL(proto_req_link(&o, *id, wait_us, l) == 0);
	st_write(c, &o);
	st_reply(c, l->op, &r);
	CU_ASSERT_EQUAL(r.id, *id);
	if (r.status != STATUS_STARTED)
		return r.status;
	while (proto_list_name(&r.list, &name, &len) == 1)
		copy_name(outs[i++], name, len);
	CU_ASSERT_EQUAL(i, l->op == OP_TEE ? 2 : 1);
	return r.status;
}

/* The final reply of a link on c: its status; *sent on OK. */
int
link_end(struct test_conn *c, uint64_t op, uint64_t id, uint64_t *sent)
{
	struct proto_reply r;

	st_reply(c, op, &r);
	CU_ASSERT_EQUAL(r.id, id);
	if (sent)
		*sent = r.status == STATUS_OK ? r.n : UINT64_MAX;
	return r.status;
}

/* RECV into buf; returns the status; *kind is the value's kind (VALUE_NONE for nil). */
int
recv_value(struct test_conn *c, const char *name, char *buf, size_t cap, bool *ok,
    enum proto_value_kind *kind)
{
	struct proto_reply r;
	uint64_t id = st_recv(c, name, 10 * 1000000);

	st_reply(c, OP_RECV, &r);
	CU_ASSERT_EQUAL(r.id, id);
	buf[0] = '\0';
	*ok = r.ok;
	*kind = r.value.kind;
	if (r.status == STATUS_OK && r.value.len > 0 && r.value.len < cap) {
		memcpy(buf, r.value.data, r.value.len);
		buf[r.value.len] = '\0';
	}
	return r.status;
}

/* Receive the next value from name and check it is the bin want. */
void
expect_value(const char *name, const char *want)
{
	char buf[256];
	bool ok;
	enum proto_value_kind kind;

	CU_ASSERT_EQUAL(recv_value(&d, name, buf, sizeof buf, &ok, &kind), STATUS_OK);
	CU_ASSERT(ok);
	CU_ASSERT_EQUAL(kind, VALUE_BIN);
	CU_ASSERT_STRING_EQUAL(buf, want);
}

void
expect_closed(const char *name)
{
	char buf[256];
	bool ok = true;
	enum proto_value_kind kind;

	CU_ASSERT_EQUAL(recv_value(&d, name, buf, sizeof buf, &ok, &kind), STATUS_OK);
	CU_ASSERT(!ok);
}

/* WAITERS: how many pending requests the server lists. */
static uint64_t
waiters_total(void)
{
	struct proto_reply r;

	proto_req_waiters(&o, adm.next_id++, 0);
	st_write(&adm, &o);
	st_reply(&adm, OP_WAITERS, &r);
	return r.total;
}

/* Nothing waits anywhere and no request is pending (other than those of this suite's conns). */
bool
await_no_waiters(void)
{
	int64_t end = clock_now_ns() + 10 * NSEC_PER_SEC;

	while (clock_now_ns() < end) {
		if (st_stat(&adm, "waiters") == 0 && waiters_total() == 0)
			return true;
		poll(NULL, 0, 1);
	}
	return false;
}

bool
chan_is_closed(const char *name)
{
	struct proto_chan_info i;

	return st_info(&adm, name, &i) == STATUS_OK && i.closed;
}

void
make(const char *name, uint64_t cap)
{
	CU_ASSERT_EQUAL_FATAL(st_make(&d, name, cap), STATUS_OK);
}

void
send_ok(const char *name, const char *v)
{
	CU_ASSERT_EQUAL(st_send_wait(&d, name, v, 10 * 1000000), STATUS_OK);
}

void
close_ok(const char *name)
{
	CU_ASSERT_EQUAL(st_close(&d, name), STATUS_OK);
}

static void
send_chanref(const char *cc, const char *target)
{
	struct proto_value v = { .kind = VALUE_CHANREF, .data = (const uint8_t *)target,
	    .len = strlen(target) };
	struct proto_reply r;

	proto_req_send(&o, d.next_id++, PROTO_WAIT_FOREVER, cc, strlen(cc), &v);
	st_write(&d, &o);
	st_reply(&d, OP_SEND, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
}

/* A link request with one input (name) and anonymous unbuffered outputs. */
struct proto_request
one_input(uint64_t op, const char *in, const char *done)
{
	struct proto_request l = { .op = op, .name = in, .name_len = (uint32_t)strlen(in) };

	if (done) {
		l.done = done;
		l.done_len = (uint32_t)strlen(done);
	}
	return l;
}

/* ---- the links -------------------------------------------------------------------- */

static void
test_or_done(void)
{
	char in[64], done[64], outs[2][NAME_CAP];
	struct proto_request l;
	uint64_t id, sent;

	snprintf(in, sizeof in, "%s", st_name("ordone.in"));
	snprintf(done, sizeof done, "%s", st_name("ordone.done"));
	make(in, 4);
	make(done, 0);
	l = one_input(OP_OR_DONE, in, done);
	CU_ASSERT_EQUAL_FATAL(link_start(&ctl, &l, PROTO_WAIT_FOREVER, &id, outs), STATUS_STARTED);
	CU_ASSERT(outs[0][0] == '~');
	send_ok(in, "a");
	send_ok(in, "b");
	expect_value(outs[0], "a");
	expect_value(outs[0], "b");
	close_ok(in);
	expect_closed(outs[0]);
	CU_ASSERT_EQUAL(link_end(&ctl, OP_OR_DONE, id, &sent), STATUS_OK);
	CU_ASSERT_EQUAL(sent, 2);
	CU_ASSERT_TRUE(await_no_waiters());
}

static void
test_or_done_done(void)
{
	char in[64], done[64], outs[2][NAME_CAP];
	struct proto_request l;
	uint64_t id;

	snprintf(in, sizeof in, "%s", st_name("ordone2.in"));
	snprintf(done, sizeof done, "%s", st_name("ordone2.done"));
	make(in, 0);
	make(done, 0);
	l = one_input(OP_OR_DONE, in, done);
	CU_ASSERT_EQUAL_FATAL(link_start(&ctl, &l, PROTO_WAIT_FOREVER, &id, outs), STATUS_STARTED);
	CU_ASSERT(st_await_waiters(&adm, in, 0, 1));
	CU_ASSERT(st_await_waiters(&adm, done, 0, 1));
	close_ok(done);
	CU_ASSERT_EQUAL(link_end(&ctl, OP_OR_DONE, id, NULL), STATUS_CANCELED);
	expect_closed(outs[0]);
	CU_ASSERT_TRUE(await_no_waiters());
}

static void
test_or_50(void)
{
	struct proto_case cases[50];
	char names[50][64], outs[2][NAME_CAP];
	struct proto_request l = { .op = OP_OR, .cases = cases, .ncases = 50 };
	struct proto_chan_info info;
	uint64_t id;

	for (int i = 0; i < 50; i++) {
		snprintf(names[i], sizeof names[i], "%s", st_name("or"));
		make(names[i], 0);
		cases[i] = (struct proto_case){ .name = names[i], .name_len = (uint32_t)strlen(names[i]) };
	}
	CU_ASSERT_EQUAL_FATAL(link_start(&ctl, &l, PROTO_WAIT_FOREVER, &id, outs), STATUS_STARTED);
	CU_ASSERT(st_await_waiters(&adm, names[49], 0, 1));
	CU_ASSERT(st_await_waiters(&adm, outs[0], 0, 0));
	CU_ASSERT(!chan_is_closed(outs[0]));
	close_ok(names[36]);
	expect_closed(outs[0]);
	CU_ASSERT_EQUAL(link_end(&ctl, OP_OR, id, NULL), STATUS_OK);
	/* every other input is left with no waiter */
	for (int i = 0; i < 50; i++) {
		CU_ASSERT_EQUAL(st_info(&adm, names[i], &info), STATUS_OK);
		CU_ASSERT_EQUAL(info.receivers, 0);
	}
	CU_ASSERT_TRUE(await_no_waiters());
}

static void
test_tee_slow_reader(void)
{
	char in[64], outs[2][NAME_CAP], v[8];
	struct proto_request l;
	struct proto_chan_info info;
	uint64_t id, sent;

	snprintf(in, sizeof in, "%s", st_name("tee.in"));
	make(in, 8);
	for (int i = 1; i <= 5; i++) {
		snprintf(v, sizeof v, "%d", i);
		send_ok(in, v);
	}
	l = one_input(OP_TEE, in, NULL);
	CU_ASSERT_EQUAL_FATAL(link_start(&ctl, &l, PROTO_WAIT_FOREVER, &id, outs), STATUS_STARTED);
	/* the fast reader gets 1; the tee then waits for the slow one before taking 2 */
	expect_value(outs[0], "1");
	CU_ASSERT(st_await_waiters(&adm, outs[1], 1, 0));
	CU_ASSERT_EQUAL(st_info(&adm, in, &info), STATUS_OK);
	CU_ASSERT_EQUAL(info.len, 4);
	CU_ASSERT_EQUAL(st_info(&adm, outs[0], &info), STATUS_OK);
	CU_ASSERT_EQUAL(info.senders, 0);
	for (int i = 1; i <= 5; i++) {
		snprintf(v, sizeof v, "%d", i);
		expect_value(outs[1], v);
		if (i < 5) {
			snprintf(v, sizeof v, "%d", i + 1);
			expect_value(outs[0], v);
		}
	}
	close_ok(in);
	expect_closed(outs[0]);
	expect_closed(outs[1]);
	CU_ASSERT_EQUAL(link_end(&ctl, OP_TEE, id, &sent), STATUS_OK);
	CU_ASSERT_EQUAL(sent, 10);
	CU_ASSERT_TRUE(await_no_waiters());
}

static void
test_bridge(void)
{
	char cc[64], i1[64], i2[64], i3[64], outs[2][NAME_CAP];
	struct proto_request l;
	uint64_t id, sent;

	snprintf(cc, sizeof cc, "%s", st_name("bridge.cc"));
	snprintf(i1, sizeof i1, "%s", st_name("bridge.i1"));
	snprintf(i2, sizeof i2, "%s", st_name("bridge.i2"));
	snprintf(i3, sizeof i3, "%s", st_name("bridge.i3"));
	make(cc, 4);
	make(i1, 2);
	make(i2, 0);
	make(i3, 1);
	send_ok(i1, "a");
	send_ok(i1, "b");
	close_ok(i1);
	send_ok(i3, "c");
	close_ok(i3);
	send_chanref(cc, i1);
	send_chanref(cc, i2);
	send_chanref(cc, i3);
	close_ok(cc);
	l = one_input(OP_BRIDGE, cc, NULL);
	CU_ASSERT_EQUAL_FATAL(link_start(&ctl, &l, PROTO_WAIT_FOREVER, &id, outs), STATUS_STARTED);
	expect_value(outs[0], "a");
	expect_value(outs[0], "b");
	/* i2 is empty: the bridge waits on it until it closes, then moves on */
	CU_ASSERT(st_await_waiters(&adm, i2, 0, 1));
	close_ok(i2);
	expect_value(outs[0], "c");
	expect_closed(outs[0]);
	CU_ASSERT_EQUAL(link_end(&ctl, OP_BRIDGE, id, &sent), STATUS_OK);
	CU_ASSERT_EQUAL(sent, 3);
	CU_ASSERT_TRUE(await_no_waiters());
}

static void
test_fan_in_100(void)
{
	static struct proto_case cases[100];
	static char names[100][64];
	struct proto_request l = { .op = OP_FAN_IN, .cases = cases, .ncases = 100 };
	char outs[2][NAME_CAP], buf[64], v[16];
	bool seen[100] = { false }, ok;
	enum proto_value_kind kind;
	uint64_t id, sent;
	int n = 0;

	for (int i = 0; i < 100; i++) {
		snprintf(names[i], sizeof names[i], "%s", st_name("fanin"));
		make(names[i], 1);
		snprintf(v, sizeof v, "%d", i);
		send_ok(names[i], v);
		if (i % 2 == 0)
			close_ok(names[i]);	/* half close before the link starts, half after */
		cases[i] = (struct proto_case){ .name = names[i], .name_len = (uint32_t)strlen(names[i]) };
	}
	CU_ASSERT_EQUAL_FATAL(link_start(&ctl, &l, PROTO_WAIT_FOREVER, &id, outs), STATUS_STARTED);
	for (int i = 1; i < 100; i += 2)
		close_ok(names[i]);
	for (;;) {
		CU_ASSERT_EQUAL_FATAL(recv_value(&d, outs[0], buf, sizeof buf, &ok, &kind), STATUS_OK);
		if (!ok)
			break;
		int k = atoi(buf);

		CU_ASSERT_FATAL(k >= 0 && k < 100 && !seen[k]);
		seen[k] = true;
		n++;
	}
	CU_ASSERT_EQUAL(n, 100);
	CU_ASSERT_EQUAL(link_end(&ctl, OP_FAN_IN, id, &sent), STATUS_OK);
	CU_ASSERT_EQUAL(sent, 100);
	CU_ASSERT_TRUE(await_no_waiters());
}

static void
test_repeat_take(void)
{
	struct proto_case vals[3];
	const char *words[] = { "x", "y", "z" };
	struct proto_request rep = { .op = OP_REPEAT, .cases = vals, .ncases = 3 };
	struct proto_request take;
	char rout[2][NAME_CAP], tout[2][NAME_CAP];
	uint64_t rid, tid, sent;

	for (int i = 0; i < 3; i++)
		vals[i] = (struct proto_case){ .dir = 1, .value = { .kind = VALUE_BIN,
		    .data = (const uint8_t *)words[i], .len = 1 } };
	CU_ASSERT_EQUAL_FATAL(link_start(&ctl, &rep, PROTO_WAIT_FOREVER, &rid, rout), STATUS_STARTED);
	take = one_input(OP_TAKE, rout[0], NULL);
	take.count = 7;
	CU_ASSERT_EQUAL_FATAL(link_start(&ctl, &take, PROTO_WAIT_FOREVER, &tid, tout), STATUS_STARTED);
	for (int i = 0; i < 7; i++)
		expect_value(tout[0], words[i % 3]);
	expect_closed(tout[0]);
	CU_ASSERT_EQUAL(link_end(&ctl, OP_TAKE, tid, &sent), STATUS_OK);
	CU_ASSERT_EQUAL(sent, 7);
	/* the generator runs until stopped: the repeat is still blocked on its output */
	CU_ASSERT(st_await_waiters(&adm, rout[0], 1, 0));
	proto_req_cancel(&o, ctl.next_id++, rid);
	st_write(&ctl, &o);
	CU_ASSERT_EQUAL(link_end(&ctl, OP_REPEAT, rid, NULL), STATUS_CANCELED);
	{
		struct proto_reply r;

		st_reply(&ctl, OP_CANCEL, &r);
		CU_ASSERT_EQUAL(r.status, STATUS_OK);
	}
	CU_ASSERT(chan_is_closed(rout[0]));
	CU_ASSERT_TRUE(await_no_waiters());
}

/* ---- lifetime: the four ways a link stops -------------------------------------------- */

enum stop_way { BY_CANCEL, BY_DEADLINE, BY_DISCONNECT, BY_DONE };

static void
stop_one_way(enum stop_way way)
{
	char in[64], done[64], out[64], outs[2][NAME_CAP];
	struct proto_request l;
	struct test_conn own, *c = &ctl;
	struct proto_reply r;
	uint64_t id;

	snprintf(in, sizeof in, "%s", st_name("life.in"));
	snprintf(done, sizeof done, "%s", st_name("life.done"));
	snprintf(out, sizeof out, "%s", st_name("life.out"));
	make(in, 0);
	make(done, 0);
	l = one_input(OP_OR_DONE, in, done);
	l.nouts = 1;
	l.outs[0] = (struct proto_link_out){ .name = out, .name_len = (uint32_t)strlen(out), .cap = 1 };
	if (way == BY_DISCONNECT) {
		CU_ASSERT_FATAL(test_conn_open(&own, srv.port, true) == 0);
		c = &own;
	}
	CU_ASSERT_EQUAL_FATAL(link_start(c, &l, way == BY_DEADLINE ? 300000 : PROTO_WAIT_FOREVER, &id,
	    outs), STATUS_STARTED);
	CU_ASSERT_STRING_EQUAL(outs[0], out);
	/* running: it waits on its input and its done channel, and WAITERS lists it */
	CU_ASSERT(st_await_waiters(&adm, in, 0, 1));
	CU_ASSERT(st_await_waiters(&adm, done, 0, 1));
	CU_ASSERT(way == BY_DEADLINE || waiters_total() >= 1);
	switch (way) {
	case BY_CANCEL:
		proto_req_cancel(&o, c->next_id++, id);
		st_write(c, &o);
		CU_ASSERT_EQUAL(link_end(c, OP_OR_DONE, id, NULL), STATUS_CANCELED);
		st_reply(c, OP_CANCEL, &r);
		CU_ASSERT_EQUAL(r.status, STATUS_OK);
		break;
	case BY_DEADLINE:
		CU_ASSERT_EQUAL(link_end(c, OP_OR_DONE, id, NULL), STATUS_DEADLINE_EXCEEDED);
		break;
	case BY_DISCONNECT:
		test_conn_close(&own);
		break;
	case BY_DONE:
		close_ok(done);
		CU_ASSERT_EQUAL(link_end(c, OP_OR_DONE, id, NULL), STATUS_CANCELED);
		break;
	}
	CU_ASSERT_TRUE(await_no_waiters());
	CU_ASSERT(chan_is_closed(out));
	CU_ASSERT(st_await_waiters(&adm, in, 0, 0));
	CU_ASSERT(st_await_waiters(&adm, done, 0, 0));
}

static void test_stop_cancel(void) { stop_one_way(BY_CANCEL); }
static void test_stop_deadline(void) { stop_one_way(BY_DEADLINE); }
static void test_stop_disconnect(void) { stop_one_way(BY_DISCONNECT); }
static void test_stop_done(void) { stop_one_way(BY_DONE); }

/* ---- start-up and shutdown, each with its own chand ------------------------------------- */

/* Run chand with conf; returns its exit status, its stderr in err. */
static int
run_chand(const char *conf_text, char *err, size_t cap)
{
	const char *chand = getenv("CHAND") ? getenv("CHAND") : "server/chand";
	char dir[] = "/tmp/chand-links.XXXXXX", conf[64], errf[64];
	int status = -1, fd;
	ssize_t n;
	FILE *f;
	pid_t pid;

	CU_ASSERT_FATAL(mkdtemp(dir) != NULL);
	snprintf(conf, sizeof conf, "%s/chand.conf", dir);
	snprintf(errf, sizeof errf, "%s/stderr", dir);
	CU_ASSERT_FATAL((f = fopen(conf, "w")) != NULL);
	fputs(conf_text, f);
	fclose(f);
	if ((pid = fork()) == 0) {
		fd = open(errf, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		dup2(fd, STDERR_FILENO);
		execl(chand, chand, "-f", "-c", conf, "-l", "127.0.0.1", "-p", "0", (char *)NULL);
		_exit(127);
	}
	{
		int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
		struct pollfd pfd = { .fd = pidfd, .events = POLLIN };

		if (pidfd < 0 || poll(&pfd, 1, 10000) != 1)
			kill(pid, SIGKILL);
		if (pidfd >= 0)
			close(pidfd);
	}
	waitpid(pid, &status, 0);
	err[0] = '\0';
	if ((fd = open(errf, O_RDONLY)) >= 0) {
		n = read(fd, err, cap - 1);
		err[n > 0 ? n : 0] = '\0';
		close(fd);
	}
	unlink(errf);
	unlink(conf);
	rmdir(dir);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

static void
test_missing_module(void)
{
	char err[2048];
	int rc = run_chand("# a module that is not there\nstage_module = gone:/nonexistent/gone.so\n",
	    err, sizeof err);

	CU_ASSERT_NOT_EQUAL(rc, 0);
	CU_ASSERT_NOT_EQUAL(rc, 128);	/* it exited, it did not hang or crash */
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "chand.conf:2: key 'stage_module': cannot load stage 'gone' "
	    "from '/nonexistent/gone.so'"));
	if (rc == 0 || strstr(err, "stage_module") == NULL)
		fprintf(stderr, "chand said: %s\n", err);
}

/* Shutdown is the fifth way out: the link's request gets SHUTTING_DOWN. */
static void
test_shutdown_stops_links(void)
{
	struct test_server s2;
	struct test_conn c;
	struct proto_request l;
	char outs[2][NAME_CAP], in[] = "sd.in";
	uint64_t id;

	CU_ASSERT_FATAL(test_server_start(&s2, NULL) == 0);
	CU_ASSERT_FATAL(test_conn_open(&c, s2.port, true) == 0);
	CU_ASSERT_EQUAL(st_make(&c, in, 0), STATUS_OK);
	l = one_input(OP_OR_DONE, in, NULL);
	CU_ASSERT_EQUAL_FATAL(link_start(&c, &l, PROTO_WAIT_FOREVER, &id, outs), STATUS_STARTED);
	kill(s2.pid, SIGTERM);
	CU_ASSERT_EQUAL(link_end(&c, OP_OR_DONE, id, NULL), STATUS_SHUTTING_DOWN);
	CU_ASSERT_EQUAL(test_server_stop(&s2), 0);
	test_conn_close(&c);
}

static void
register_suites(void)
{
	CU_pSuite s = test_suite("links", suite_init, suite_clean);

	test_add(s, "or-done forwards until its input closes", test_or_done);
	test_add(s, "or-done stops when done closes", test_or_done_done);
	test_add(s, "or of 50 channels closes when the 37th closes", test_or_50);
	test_add(s, "tee with one slow reader", test_tee_slow_reader);
	test_add(s, "bridge across inner channels, one empty then closed", test_bridge);
	test_add(s, "fan-in of 100 inputs", test_fan_in_100);
	test_add(s, "repeat into take", test_repeat_take);
	test_add(s, "stopped by CANCEL: no waiter, outputs closed", test_stop_cancel);
	test_add(s, "stopped by its deadline: no waiter, outputs closed", test_stop_deadline);
	test_add(s, "stopped by disconnect: no waiter, outputs closed", test_stop_disconnect);
	test_add(s, "stopped by its done channel: no waiter, outputs closed", test_stop_done);
	register_links_fanout(s);
	s = test_suite("links-lifecycle", NULL, NULL);
	test_add(s, "a missing stage module stops chand at start-up", test_missing_module);
	test_add(s, "shutdown stops links", test_shutdown_stops_links);
}

int
main(int argc, char **argv)
{
	int rc;

	signal(SIGPIPE, SIG_IGN);
	proto_out_init(&o);	/* both suites use it */
	rc = test_main(argc, argv, register_suites);
	proto_out_destroy(&o);
	return rc;
}
