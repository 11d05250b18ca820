/*
 * testutil.h: what every CUnit suite shares.
 *
 * test_main runs the suites that register() adds, in CUnit's basic mode, and
 * prints "#totals passed=N failed=M" so that tests/totals.sh can sum every
 * suite into the one closing line of the test command. Exit status: 0 when
 * every test passed.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef CHAND_TESTUTIL_H
#define CHAND_TESTUTIL_H

#include <CUnit/CUnit.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "codec.h"

int test_main(int argc, char **argv, void (*register_suites)(void));

/* Add a suite or die: tests register with these instead of checking NULL. */
CU_pSuite test_suite(const char *name, CU_InitializeFunc init, CU_CleanupFunc clean);
void test_add(CU_pSuite suite, const char *name, CU_TestFunc fn);

/*
 * A host name that does not resolve, answered at once by the real resolver
 * and the same on every machine: its first label is 66 octets, over the 63
 * DNS allows (RFC 1035 2.3.4), so glibc refuses it without a query. A plain
 * "x.invalid" (RFC 6761) is sent to the name server, which may drop it: then
 * the lookup outlasts a 5 s deadline and the test sees a timeout instead.
 */
#define TEST_UNRESOLVABLE_HOST \
	"a-label-longer-than-the-63-octets-that-dns-allows-is-never-queried.invalid"

/* ---- a real chand for integration tests -------------------------------------- */

struct test_server {
	pid_t pid;
	int port;			/* the ephemeral port it bound on 127.0.0.1 */
	char dir[64];			/* private temp dir: config, unix socket */
	char conf[96];
};

/*
 * Start $CHAND (the built server) in the foreground on 127.0.0.1, port 0,
 * with a config file holding conf_lines (may be NULL), and wait (up to 10 s)
 * until it reports the port it bound through its --ready-fd pipe. Returns 0,
 * or -1 with a message on stderr.
 */
int test_server_start(struct test_server *s, const char *conf_lines);
/* The same with more arguments for chand (a NULL-terminated list) after the usual ones. */
int test_server_start_args(struct test_server *s, const char *conf_lines, const char *const *args);
/* SIGTERM, then wait up to 10 s; returns chand's exit status (0 is clean), -1 on timeout (then SIGKILLed). */
int test_server_stop(struct test_server *s);
/* Wait up to timeout_ms for child pid to exit: its exit status, or -1 (then it is SIGKILLed). */
int test_wait_exit(pid_t pid, int timeout_ms);
/*
 * Run prog with args (NULL-terminated, 14 at most) to its exit, within 10 s:
 * its exit status as test_wait_exit's, its stdout and stderr in out (cap bytes,
 * NUL-terminated).
 */
int test_run(const char *prog, const char *const *args, char *out, size_t cap);
/* test_run, with child(arg) called in the child just before exec (its environment, say). */
int test_run_child(const char *prog, const char *const *args, char *out, size_t cap,
    void (*child)(void *arg), void *arg);
/* Does chand's log (DIR/chand.log) have a line containing needle? How many? */
bool test_server_log_has(struct test_server *s, const char *needle);
int test_server_log_count(struct test_server *s, const char *needle);
/* Wait (up to 10 s) until chand's log has a line containing needle. */
bool test_server_await_log(struct test_server *s, const char *needle);
/* The TLS port chand logged ("listening ... port=N tls=yes"), or 0. */
int test_server_tls_port(struct test_server *s);
/* SIGKILL and reap: a crash, as far as the clients can tell. */
void test_server_kill(struct test_server *s);

/* The hex SHA-256 digest of token into out (65 bytes), as `token = NAME:DIGEST` wants; "" on failure. */
void test_token_digest(const char *token, char *out);
/*
 * A listener on ip:port (port 0: any) that never answers: the kernel accepts
 * for it, so a client that reaches it connects, says HELLO and waits. Its fd
 * (close it) with the port in *portp, or -1.
 */
int test_listen_silent(const char *ip, int port, int *portp);

/* ---- a raw protocol connection, for the server's own tests --------------------- */

struct test_conn {
	int fd;
	uint8_t *buf;			/* received bytes not yet returned */
	size_t len, cap, consumed;
	uint64_t next_id;
};

/* Connect to 127.0.0.1:port; with hello, send HELLO and check its OK. */
int test_conn_open(struct test_conn *c, int port, bool hello);
/* The same with SO_RCVBUF set to rcvbuf bytes before connecting (0: the default). */
int test_conn_open_rcvbuf(struct test_conn *c, int port, bool hello, int rcvbuf);
void test_conn_close(struct test_conn *c);
/* Write all bytes (blocking). */
int test_conn_write(struct test_conn *c, const void *p, size_t len);
/*
 * The next frame body, waiting up to timeout_ms. Returns its length (>0),
 * 0 when the server closed the connection, -1 on timeout or error. The body
 * stays valid until the next call.
 */
long test_conn_frame(struct test_conn *c, int timeout_ms, const uint8_t **body);
/* Read the next frame as a reply to op (decoded into *r). Returns 0 or -1. */
int test_conn_reply(struct test_conn *c, uint64_t op, int timeout_ms, struct proto_reply *r);

/* INFO of name over a fresh raw connection: the server's own view. 0 or -1. */
int test_chan_info(int port, const char *name, struct proto_chan_info *out);
/* Wait (up to timeout_ms) until INFO shows exactly these waiting senders and receivers. */
bool test_wait_waiters(int port, const char *name, size_t senders, size_t receivers,
    int timeout_ms);

#endif
