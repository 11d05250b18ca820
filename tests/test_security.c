/*
 * test_security.c: authentication, rights, protected mode and the abuse
 * limits, against real chand processes (PROTOCOL.md §13); TLS is in
 * test_security_tls.c, in the same program (sectest.h).
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "chanclient.h"
#include "clock.h"
#include "sectest.h"
#include "srvtest.h"

/* NAME:sha256(NAME-secret), computed at start */
char tok_alice[100];
static char tok_bob[100], tok_admin[100];

static struct test_server srv;		/* auth and rights, plain TCP */

/* ---- helpers ------------------------------------------------------------------------ */

static int
dial(int port, const char *token, chan_conn_t **c)
{
	chan_dial_opts_t o = { .token = token };
	char addr[64];

	snprintf(addr, sizeof addr, "tcp://127.0.0.1:%d", port);
	return chan_dial(NULL, addr, &o, c);
}

int
op_rc(chan_conn_t *c, const char *what, const char *name)
{
	chan_t *ch = NULL;
	int rc = chan_handle_new(&ch, c, name);
	size_t n;

	if (rc != CHAN_OK)
		return rc;
	if (strcmp(what, "send") == 0)
		rc = chan_try_send(NULL, ch, "v", 1);
	else if (strcmp(what, "recv") == 0) {
		chan_value_t v = { 0 };
		bool ok;

		rc = chan_try_recv(NULL, ch, &v, &ok);
		chan_value_clear(&v);
	} else if (strcmp(what, "close") == 0)
		rc = chan_close(NULL, ch);
	else if (strcmp(what, "delete") == 0)
		rc = chan_delete(NULL, ch, &n);
	chan_free(ch);
	return rc;
}

int
make_rc(chan_conn_t *c, const char *name, size_t cap)
{
	chan_t *ch = NULL;
	int rc = chan_make(NULL, c, name, cap, &ch);

	chan_free(ch);
	return rc;
}

/* ---- auth suite ---------------------------------------------------------------------- */

static char auth_conf[2048];

static void
write_auth_conf(char *buf, size_t cap, bool with_bob)
{
	snprintf(buf, cap,
	    "token = %s\n%s%s%s"
	    "token = %s\n"
	    "allow = alice a.* send,recv,make,close,delete\n"
	    "allow = alice shared.* make,send,recv,close\n"
	    "allow = bob a.* recv\n"
	    "allow = bob b.* make,send,recv,close\n"
	    "allow = bob shared.* send,recv,close\n"
	    "allow = admin * all,admin\n"
	    "owner_close = yes\n"
	    "identity_max_connections = 3\n"
	    "identity_max_channels = 20\n"
	    "identity_max_pending = 3\n",
	    tok_alice, with_bob ? "token = " : "", with_bob ? tok_bob : "", with_bob ? "\n" : "",
	    tok_admin);
}

int
tokens_init(void)
{
	char hex[80];

	test_token_digest("alice-secret", hex);
	snprintf(tok_alice, sizeof tok_alice, "alice:%s", hex);
	test_token_digest("bob-secret", hex);
	snprintf(tok_bob, sizeof tok_bob, "bob:%s", hex);
	test_token_digest("admin-secret", hex);
	snprintf(tok_admin, sizeof tok_admin, "admin:%s", hex);
	return strlen(tok_alice) == 70 ? 0 : -1;
}

static int
auth_init(void)
{
	if (tokens_init() < 0)
		return -1;
	write_auth_conf(auth_conf, sizeof auth_conf, true);
	return test_server_start(&srv, auth_conf);
}

static int
auth_clean(void)
{
	return test_server_stop(&srv) == 0 ? 0 : -1;
}

static void
test_no_token(void)
{
	chan_conn_t *c = NULL;

	CU_ASSERT_EQUAL(dial(srv.port, NULL, &c), CHAN_EPERM);
	CU_ASSERT(test_server_await_log(&srv, "hello-refused"));
}

static void
test_wrong_token(void)
{
	chan_conn_t *c = NULL;

	CU_ASSERT_EQUAL(dial(srv.port, "alice-secreT", &c), CHAN_EPERM);
	CU_ASSERT(test_server_await_log(&srv, "invalid token"));
}

static void
test_rights(void)
{
	chan_conn_t *a = NULL, *b = NULL;

	CU_ASSERT_FATAL(dial(srv.port, "alice-secret", &a) == CHAN_OK);
	CU_ASSERT_FATAL(dial(srv.port, "bob-secret", &b) == CHAN_OK);
	/* make */
	CU_ASSERT_EQUAL(make_rc(a, "a.1", 4), CHAN_OK);
	CU_ASSERT_EQUAL(make_rc(b, "a.2", 4), CHAN_EPERM);
	CU_ASSERT_EQUAL(make_rc(b, "b.1", 4), CHAN_OK);
	CU_ASSERT_EQUAL(make_rc(b, NULL, 0), CHAN_EPERM);	/* anonymous is the name "~" */
	/* send */
	CU_ASSERT_EQUAL(op_rc(a, "send", "a.1"), CHAN_OK);
	CU_ASSERT_EQUAL(op_rc(b, "send", "a.1"), CHAN_EPERM);
	/* recv */
	CU_ASSERT_EQUAL(op_rc(b, "recv", "a.1"), CHAN_OK);
	CU_ASSERT_EQUAL(op_rc(a, "recv", "b.1"), CHAN_EPERM);
	/* the connection goes on after a denial */
	CU_ASSERT_EQUAL(chan_ping(NULL, b), CHAN_OK);
	/* close */
	CU_ASSERT_EQUAL(op_rc(b, "close", "a.1"), CHAN_EPERM);
	CU_ASSERT_EQUAL(op_rc(a, "close", "a.1"), CHAN_OK);
	/* delete */
	CU_ASSERT_EQUAL(op_rc(b, "delete", "a.1"), CHAN_EPERM);
	CU_ASSERT_EQUAL(op_rc(a, "delete", "a.1"), CHAN_OK);
	CU_ASSERT(test_server_await_log(&srv, "denied client="));
	chan_conn_close(a);
	chan_conn_close(b);
}

/* Ack channels (§16): a dead_letter needs send on it; tags are the connection's; INFLIGHT is admin. */
static void
test_ack_rights(void)
{
	chan_delivery_opts_t o = CHAN_DELIVERY_OPTS_INIT;
	chan_conn_t *a = NULL, *b = NULL, *adm = NULL;
	chan_t *ch = NULL, *bch = NULL;
	chan_inflight_t *list = NULL;
	chan_msg_t m;
	size_t n = 0;
	bool ok = false;

	CU_ASSERT_FATAL(dial(srv.port, "alice-secret", &a) == CHAN_OK);
	CU_ASSERT_FATAL(dial(srv.port, "bob-secret", &b) == CHAN_OK);
	CU_ASSERT_FATAL(dial(srv.port, "admin-secret", &adm) == CHAN_OK);
	o.dead_letter = "b.dl";		/* alice may not send on b.* */
	CU_ASSERT_EQUAL(chan_make_opts(NULL, a, "a.q", 4, &o, &ch), CHAN_EPERM);
	o.dead_letter = "a.dl";
	CU_ASSERT_EQUAL_FATAL(chan_make_opts(NULL, a, "a.q", 4, &o, &ch), CHAN_OK);
	CU_ASSERT_EQUAL(chan_send(NULL, ch, "v", 1), CHAN_OK);
	CU_ASSERT_EQUAL_FATAL(chan_handle_new(&bch, b, "a.q"), CHAN_OK);
	CU_ASSERT_EQUAL_FATAL(chan_recv_msg(NULL, bch, &m, &ok), CHAN_OK);
	CU_ASSERT(ok && m.tag != 0);
	CU_ASSERT_EQUAL(chan_ack_n(NULL, ch, &m.tag, 1), CHAN_EPERM);	/* bob's tag */
	CU_ASSERT_EQUAL(chan_admin_inflight(NULL, a, "a.q", 0, &list, &n, NULL), CHAN_EPERM);
	CU_ASSERT_EQUAL(chan_admin_inflight(NULL, adm, "a.q", 0, &list, &n, NULL), CHAN_OK);
	CU_ASSERT_EQUAL(n, 1);
	free(list);
	CU_ASSERT_EQUAL(chan_ack_n(NULL, bch, &m.tag, 1), CHAN_OK);
	chan_msg_clear(&m);
	CU_ASSERT_EQUAL(op_rc(a, "delete", "a.q"), CHAN_OK);
	chan_free(bch);
	chan_free(ch);
	chan_conn_close(a);
	chan_conn_close(b);
	chan_conn_close(adm);
}

static void
test_admin_right(void)
{
	chan_conn_t *a = NULL, *adm = NULL;
	chan_stat_t *st = NULL;
	size_t n = 0;

	CU_ASSERT_FATAL(dial(srv.port, "alice-secret", &a) == CHAN_OK);
	CU_ASSERT_FATAL(dial(srv.port, "admin-secret", &adm) == CHAN_OK);
	CU_ASSERT_EQUAL(chan_admin_stats(NULL, a, &st, &n), CHAN_EPERM);
	CU_ASSERT_EQUAL(chan_admin_stats(NULL, adm, &st, &n), CHAN_OK);
	free(st);
	chan_conn_close(a);
	chan_conn_close(adm);
}

static void
test_select_rights(void)
{
	chan_conn_t *b = NULL;
	chan_t *x = NULL, *y = NULL;
	chan_case_t cs[2] = { { 0 } };

	CU_ASSERT_FATAL(dial(srv.port, "bob-secret", &b) == CHAN_OK);
	CU_ASSERT_EQUAL(make_rc(b, "b.sel", 1), CHAN_OK);
	chan_handle_new(&x, b, "b.sel");
	chan_handle_new(&y, b, "a.nosend");
	cs[0] = (chan_case_t){ .dir = CHAN_DIR_RECV, .ch = x };
	cs[1] = (chan_case_t){ .dir = CHAN_DIR_SEND, .ch = y, .data = "v", .len = 1 };
	CU_ASSERT_EQUAL(chan_select(NULL, cs, 2, true), CHAN_EPERM);
	CU_ASSERT_EQUAL(cs[1].err, CHAN_EPERM);
	cs[1].dir = CHAN_DIR_RECV;	/* recv on a.* is allowed: past the rights, no such channel */
	CU_ASSERT_EQUAL(chan_select(NULL, cs, 2, true), CHAN_ENOTFOUND);
	chan_free(x);
	chan_free(y);
	chan_conn_close(b);
}

/* A link request over the raw protocol: OR_DONE from input to output. */
static int
raw_link(struct test_conn *t, const char *in, const char *out)
{
	struct proto_request q = { .op = OP_OR_DONE, .name = in, .name_len = (uint32_t)strlen(in),
	    .nouts = 1 };
	struct proto_out o;
	struct proto_reply r;

	q.outs[0] = (struct proto_link_out){ out, (uint32_t)strlen(out), 0 };
	proto_out_init(&o);
	proto_req_link(&o, t->next_id++, PROTO_WAIT_FOREVER, &q);
	st_write(t, &o);
	proto_out_destroy(&o);
	if (test_conn_reply(t, OP_OR_DONE, REPLY_MS, &r) < 0)
		return -1;
	return r.status;
}

static int
raw_hello(struct test_conn *t, int port, const char *token)
{
	struct proto_out o;
	struct proto_reply r;

	if (test_conn_open(t, port, false) < 0)
		return -1;
	proto_out_init(&o);
	proto_req_hello(&o, t->next_id++, PROTO_VERSION, "test", token);
	st_write(t, &o);
	proto_out_destroy(&o);
	if (test_conn_reply(t, OP_HELLO, REPLY_MS, &r) < 0)
		return -1;
	return r.status;
}

static void
test_link_rights(void)
{
	struct test_conn t;
	chan_conn_t *b = NULL;

	CU_ASSERT_FATAL(dial(srv.port, "bob-secret", &b) == CHAN_OK);
	CU_ASSERT_EQUAL(make_rc(b, "b.lin", 0), CHAN_OK);
	CU_ASSERT_FATAL(raw_hello(&t, srv.port, "bob-secret") == STATUS_OK);
	/* the link acts with bob's rights: no send on a.* */
	CU_ASSERT_EQUAL(raw_link(&t, "b.lin", "a.lout"), STATUS_PERMISSION_DENIED);
	/* an input bob cannot receive from */
	CU_ASSERT_EQUAL(raw_link(&t, "shared.nope", "b.lout"), STATUS_NOT_FOUND);
	CU_ASSERT_EQUAL(raw_link(&t, "b.lin", "b.lout"), 11 /* STARTED */);
	test_conn_close(&t);
	chan_conn_close(b);
}

static void
test_owner_close(void)
{
	chan_conn_t *a = NULL, *b = NULL;

	CU_ASSERT_FATAL(dial(srv.port, "alice-secret", &a) == CHAN_OK);
	CU_ASSERT_FATAL(dial(srv.port, "bob-secret", &b) == CHAN_OK);
	CU_ASSERT_EQUAL(make_rc(a, "shared.own", 1), CHAN_OK);
	/* bob has the close right on shared.*, but alice made it */
	CU_ASSERT_EQUAL(op_rc(b, "close", "shared.own"), CHAN_EPERM);
	CU_ASSERT_EQUAL(op_rc(b, "send", "shared.own"), CHAN_OK);
	CU_ASSERT_EQUAL(op_rc(a, "close", "shared.own"), CHAN_OK);
	CU_ASSERT(test_server_await_log(&srv, "owner_close"));
	chan_conn_close(a);
	chan_conn_close(b);
}

static void
test_identity_limits(void)
{
	chan_conn_t *c[4] = { NULL };
	chan_t *ch = NULL;
	struct test_conn t;
	uint64_t ids[3];
	struct proto_reply r;

	/* connections: 3 per identity */
	for (int i = 0; i < 3; i++)
		CU_ASSERT_EQUAL(dial(srv.port, "bob-secret", &c[i]), CHAN_OK);
	CU_ASSERT_EQUAL(dial(srv.port, "bob-secret", &c[3]), CHAN_ELIMIT);
	CU_ASSERT(test_server_await_log(&srv, "limit=identity_max_connections"));
	for (int i = 0; i < 3; i++)
		chan_conn_close(c[i]);
	/* pending: 3 per identity */
	CU_ASSERT_FATAL(dial(srv.port, "bob-secret", &c[0]) == CHAN_OK);
	CU_ASSERT_EQUAL(make_rc(c[0], "b.pend", 0), CHAN_OK);
	chan_free(ch);
	CU_ASSERT_FATAL(raw_hello(&t, srv.port, "bob-secret") == STATUS_OK);
	for (int i = 0; i < 3; i++)
		ids[i] = st_recv(&t, "b.pend", PROTO_WAIT_FOREVER);
	st_recv(&t, "b.pend", PROTO_WAIT_FOREVER);
	st_reply(&t, OP_RECV, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_LIMIT);
	CU_ASSERT(test_server_await_log(&srv, "limit=identity_max_pending"));
	(void)ids;
	test_conn_close(&t);
	chan_conn_close(c[0]);
}

static void
test_channel_limit(void)
{
	chan_conn_t *a = NULL;
	char name[32];
	int rc = CHAN_OK, i;

	CU_ASSERT_FATAL(dial(srv.port, "alice-secret", &a) == CHAN_OK);
	for (i = 0; i < 30 && rc == CHAN_OK; i++) {
		snprintf(name, sizeof name, "a.lim%d", i);
		rc = make_rc(a, name, 0);
	}
	CU_ASSERT_EQUAL(rc, CHAN_ELIMIT);
	CU_ASSERT(i <= 21);
	CU_ASSERT(test_server_await_log(&srv, "limit=identity_max_channels"));
	/* deleting one makes room */
	CU_ASSERT_EQUAL(op_rc(a, "delete", "a.lim0"), CHAN_OK);
	CU_ASSERT_EQUAL(make_rc(a, "a.again", 0), CHAN_OK);
	chan_conn_close(a);
}

static void
test_revoke_by_reload(void)
{
	char conf[2048];
	chan_conn_t *b = NULL, *b2 = NULL;
	FILE *f;

	CU_ASSERT_FATAL(dial(srv.port, "bob-secret", &b) == CHAN_OK);
	write_auth_conf(conf, sizeof conf, false);
	f = fopen(srv.conf, "w");
	CU_ASSERT_FATAL(f != NULL);
	fputs(conf, f);
	fclose(f);
	kill(srv.pid, SIGHUP);
	CU_ASSERT(test_server_await_log(&srv, "credentials revoked"));
	/* the open connection was closed; a new one is refused */
	CU_ASSERT_NOT_EQUAL(chan_ping(NULL, b), CHAN_OK);
	CU_ASSERT_EQUAL(dial(srv.port, "bob-secret", &b2), CHAN_EPERM);
	chan_conn_close(b);
	/* put bob back for whatever runs later */
	f = fopen(srv.conf, "w");
	fputs(auth_conf, f);
	fclose(f);
	kill(srv.pid, SIGHUP);
}

/* ---- abuse limits without auth ----------------------------------------------------------- */

static void
test_hello_and_idle_timeout(void)
{
	struct test_server s;
	struct test_conn t, idle, busy;
	const uint8_t *body;
	struct proto_reply r;
	uint64_t id;

	CU_ASSERT_FATAL(test_server_start(&s, "hello_timeout = 200ms\nidle_timeout = 400ms\n") == 0);
	CU_ASSERT_FATAL(test_conn_open(&t, s.port, false) == 0);
	/* no HELLO: a notice, then EOF */
	CU_ASSERT(test_conn_frame(&t, 5000, &body) > 0);
	CU_ASSERT(test_conn_frame(&t, 5000, &body) == 0);
	CU_ASSERT(test_server_log_has(&s, "hello-timeout"));
	test_conn_close(&t);
	/* idle: closed; a client with a pending request is not idle */
	CU_ASSERT_FATAL(test_conn_open(&idle, s.port, true) == 0);
	CU_ASSERT_FATAL(test_conn_open(&busy, s.port, true) == 0);
	CU_ASSERT_EQUAL(st_make(&busy, "idle.q", 0), STATUS_OK);
	id = st_recv(&busy, "idle.q", PROTO_WAIT_FOREVER);
	CU_ASSERT(test_conn_frame(&idle, 5000, &body) > 0);	/* the notice */
	CU_ASSERT(test_conn_frame(&idle, 5000, &body) == 0);
	CU_ASSERT(test_server_await_log(&s, "idle-timeout"));
	poll(NULL, 0, 500);
	CU_ASSERT_FATAL(test_conn_open(&t, s.port, true) == 0);
	CU_ASSERT_EQUAL(st_send_wait(&t, "idle.q", "x", PROTO_WAIT_FOREVER), STATUS_OK);
	st_reply(&busy, OP_RECV, &r);
	CU_ASSERT_EQUAL(r.id, id);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
	test_conn_close(&t);
	test_conn_close(&idle);
	test_conn_close(&busy);
	CU_ASSERT_EQUAL(test_server_stop(&s), 0);
}

/* Run chand with conf and extra args; its exit status within 5 s (-1: still running, killed). */
static int
run_chand(const char *conf, const char *listen, char *err, size_t cap)
{
	char dir[] = "/tmp/chand-prot.XXXXXX", path[64], errp[64];
	const char *chand = getenv("CHAND") ? getenv("CHAND") : "server/chand";
	pid_t pid;
	FILE *f;
	int rc;

	if (mkdtemp(dir) == NULL)
		return -2;
	snprintf(path, sizeof path, "%s/c.conf", dir);
	snprintf(errp, sizeof errp, "%s/err", dir);
	f = fopen(path, "w");
	fputs(conf, f);
	fclose(f);
	if ((pid = fork()) == 0) {
		int fd = open(errp, O_WRONLY | O_CREAT, 0600);

		dup2(fd, 2);
		execl(chand, chand, "-f", "-c", path, "-l", listen, "-p", "0", (char *)NULL);
		_exit(127);
	}
	rc = test_wait_exit(pid, 3000);
	err[0] = '\0';
	if ((f = fopen(errp, "r")) != NULL) {
		size_t n = fread(err, 1, cap - 1, f);

		err[n] = '\0';
		fclose(f);
	}
	unlink(errp);
	unlink(path);
	rmdir(dir);
	return rc;
}

static void
test_protected_mode(void)
{
	char err[2048];

	CU_ASSERT_EQUAL(run_chand("", "0.0.0.0", err, sizeof err), 1);
	CU_ASSERT(strstr(err, "protected mode") != NULL);
	/* loopback is fine, and protected_mode = no lets it start (killed after 3 s: -1) */
	CU_ASSERT_EQUAL(run_chand("protected_mode = no\n", "0.0.0.0", err, sizeof err), -1);
	CU_ASSERT_EQUAL(run_chand("", "127.0.0.1", err, sizeof err), -1);
}

/* ---- admin is not a channel right --------------------------------------------------------- */

static struct test_server asrv;

/* A token line NAME:sha256(NAME-secret) into buf. */
static void
token_line(char *buf, size_t cap, const char *name)
{
	char secret[64], hex[80];

	snprintf(secret, sizeof secret, "%s-secret", name);
	test_token_digest(secret, hex);
	snprintf(buf, cap, "token = %s:%s\n", name, hex);
}

static int
admin_init(void)
{
	char conf[2048], mall[120], ops[120], root[120];

	token_line(mall, sizeof mall, "mall");
	token_line(ops, sizeof ops, "ops");
	token_line(root, sizeof root, "root");
	snprintf(conf, sizeof conf, "%s%s%s"
	    "allow = mall mm.* all\n"
	    "allow = ops admin\n"
	    "allow = root * all,admin\n", mall, ops, root);
	return test_server_start(&asrv, conf);
}

static int
admin_clean(void)
{
	return test_server_stop(&asrv) == 0 ? 0 : -1;
}

/* `all` on a pattern is every channel right there and nothing server-wide. */
static void
test_all_is_not_admin(void)
{
	chan_conn_t *m = NULL;
	chan_stat_t *st = NULL;
	chan_info_t *info = NULL;
	size_t n = 0;

	CU_ASSERT_FATAL(dial(asrv.port, "mall-secret", &m) == CHAN_OK);
	CU_ASSERT_EQUAL(make_rc(m, "mm.1", 2), CHAN_OK);
	CU_ASSERT_EQUAL(op_rc(m, "send", "mm.1"), CHAN_OK);
	CU_ASSERT_EQUAL(op_rc(m, "recv", "mm.1"), CHAN_OK);
	CU_ASSERT_EQUAL(op_rc(m, "close", "mm.1"), CHAN_OK);
	CU_ASSERT_EQUAL(op_rc(m, "delete", "mm.1"), CHAN_OK);
	CU_ASSERT_EQUAL(chan_admin_stats(NULL, m, &st, &n), CHAN_EPERM);
	CU_ASSERT_EQUAL(chan_admin_channels(NULL, m, NULL, 0, &info, &n, NULL), CHAN_EPERM);
	CU_ASSERT_EQUAL(chan_admin_shutdown(NULL, m), CHAN_EPERM);
	CU_ASSERT_EQUAL(chan_ping(NULL, m), CHAN_OK);	/* still up, still connected */
	CU_ASSERT(test_server_log_has(&asrv, "config-changed"));
	chan_conn_close(m);
}

/* `allow = NAME admin` is the admin right alone: the operations of §11, no channel right. */
static void
test_admin_alone(void)
{
	chan_conn_t *o = NULL, *r = NULL;
	chan_stat_t *st = NULL;
	chan_info_t *info = NULL, one;
	chan_t *ch = NULL;
	size_t n = 0;

	CU_ASSERT_FATAL(dial(asrv.port, "ops-secret", &o) == CHAN_OK);
	CU_ASSERT_FATAL(dial(asrv.port, "root-secret", &r) == CHAN_OK);
	CU_ASSERT_EQUAL(make_rc(r, "rr.1", 1), CHAN_OK);
	CU_ASSERT_EQUAL(chan_admin_stats(NULL, o, &st, &n), CHAN_OK);
	free(st);
	CU_ASSERT_EQUAL(chan_admin_channels(NULL, o, NULL, 0, &info, &n, NULL), CHAN_OK);
	free(info);
	CU_ASSERT_EQUAL(make_rc(o, "rr.2", 1), CHAN_EPERM);
	CU_ASSERT_EQUAL(op_rc(o, "send", "rr.1"), CHAN_EPERM);
	CU_ASSERT_EQUAL(op_rc(o, "recv", "rr.1"), CHAN_EPERM);
	/* an administrator may look at a channel (INFO), as CHANNELS shows it anyway */
	CU_ASSERT_FATAL(chan_handle_new(&ch, o, "rr.1") == CHAN_OK);
	CU_ASSERT_EQUAL(chan_info(NULL, ch, &one), CHAN_OK);
	chan_free(ch);
	CU_ASSERT_EQUAL(chan_admin_stats(NULL, r, &st, &n), CHAN_OK);
	free(st);
	chan_conn_close(o);
	chan_conn_close(r);
}

/* admin scoped to a pattern would read narrower than it is: refused at start. */
static void
test_admin_on_pattern_refused(void)
{
	char err[2048];

	CU_ASSERT_EQUAL(run_chand("token = x:0000000000000000000000000000000000000000000000000000000000000000\n"
	    "allow = x m.* send,admin\n", "127.0.0.1", err, sizeof err), 1);
	CU_ASSERT(strstr(err, "admin is a server-wide right") != NULL);
}

static void
register_suites(void)
{
	CU_pSuite s = test_suite("auth", auth_init, auth_clean);

	test_add(s, "no token", test_no_token);
	test_add(s, "wrong token", test_wrong_token);
	test_add(s, "each right allowed and denied", test_rights);
	test_add(s, "admin needs the admin right", test_admin_right);
	test_add(s, "ack channels: dead_letter needs send, tags are the connection's", test_ack_rights);
	test_add(s, "select checks each case", test_select_rights);
	test_add(s, "links act with the creator's rights", test_link_rights);
	test_add(s, "owner_close", test_owner_close);
	test_add(s, "per-identity connections and pending", test_identity_limits);
	test_add(s, "per-identity channels", test_channel_limit);
	test_add(s, "a token revoked by reload", test_revoke_by_reload);
	s = test_suite("admin right", admin_init, admin_clean);
	test_add(s, "all grants no admin", test_all_is_not_admin);
	test_add(s, "allow = NAME admin", test_admin_alone);
	test_add(s, "admin on a pattern is refused", test_admin_on_pattern_refused);
	register_security_tls();
	s = test_suite("limits", NULL, NULL);
	test_add(s, "hello_timeout and idle_timeout", test_hello_and_idle_timeout);
	test_add(s, "protected mode", test_protected_mode);
}

int
main(int argc, char **argv)
{
	return test_main(argc, argv, register_suites);
}
