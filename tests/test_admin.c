/*
 * test_admin.c: the admin operations (PROTOCOL.md §11) against a real chand.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <stdio.h>
#include <string.h>

#include "srvtest.h"

static struct test_server srv;
static struct test_conn adm;
static struct proto_out o;

static int
suite_init(void)
{
	proto_out_init(&o);
	if (test_server_start(&srv, NULL) < 0)
		return -1;
	return test_conn_open(&adm, srv.port, true);
}

static int
suite_clean(void)
{
	test_conn_close(&adm);
	proto_out_destroy(&o);
	return test_server_stop(&srv) == 0 ? 0 : -1;
}

static void
test_stats(void)
{
	struct test_conn c;
	uint64_t conns = st_stat(&adm, "connections"), chans = st_stat(&adm, "channels");
	const char *n = st_name("stat");

	CU_ASSERT_FATAL(test_conn_open(&c, srv.port, true) == 0);
	CU_ASSERT_EQUAL(st_make(&c, n, 0), STATUS_OK);
	st_recv(&c, n, PROTO_WAIT_FOREVER);
	CU_ASSERT(st_await_waiters(&adm, n, 0, 1));
	CU_ASSERT_EQUAL(st_stat(&adm, "connections"), conns + 1);
	CU_ASSERT_EQUAL(st_stat(&adm, "channels"), chans + 1);
	CU_ASSERT_EQUAL(st_stat(&adm, "waiters"), 1);
	CU_ASSERT_EQUAL(st_stat(&adm, "pending_requests"), 1);
	CU_ASSERT(st_stat(&adm, "requests_total") >= 4);
	test_conn_close(&c);
	CU_ASSERT(st_await_waiters(&adm, n, 0, 0));
	CU_ASSERT_EQUAL(st_stat(&adm, "waiters"), 0);
}

static void
test_channels(void)
{
	struct proto_reply r;
	struct proto_chan_info i;
	int seen = 0;

	for (int k = 0; k < 5; k++) {
		char n[32];

		snprintf(n, sizeof n, "ls.match.%d", k);
		CU_ASSERT_EQUAL(st_make(&adm, n, (uint64_t)k), STATUS_OK);
	}
	CU_ASSERT_EQUAL(st_make(&adm, "ls.other", 0), STATUS_OK);
	CU_ASSERT_EQUAL(st_send_wait(&adm, "ls.match.3", "v", 0), STATUS_OK);
	proto_req_channels(&o, adm.next_id++, "ls.match.*", 0);
	st_write(&adm, &o);
	st_reply(&adm, OP_CHANNELS, &r);
	CU_ASSERT_EQUAL_FATAL(r.status, STATUS_OK);
	CU_ASSERT_EQUAL(r.total, 5);
	while (proto_list_chan(&r.list, &i) == 1) {
		CU_ASSERT(i.name_len > 9 && memcmp(i.name, "ls.match.", 9) == 0);
		if (i.name_len == 10 && i.name[9] == '3') {
			CU_ASSERT_EQUAL(i.len, 1);
			CU_ASSERT_EQUAL(i.cap, 3);
		}
		seen++;
	}
	CU_ASSERT_EQUAL(seen, 5);
	/* the limit bounds the list, not the count */
	proto_req_channels(&o, adm.next_id++, "ls.*", 2);
	st_write(&adm, &o);
	st_reply(&adm, OP_CHANNELS, &r);
	CU_ASSERT_EQUAL(r.total, 6);
	CU_ASSERT_EQUAL(r.list.left, 2);
}

static void
test_clients(void)
{
	struct test_conn c;
	struct proto_reply r;
	struct proto_client_info ci;
	int named = 0, total = 0;

	CU_ASSERT_FATAL(test_conn_open(&c, srv.port, false) == 0);
	proto_req_hello(&o, c.next_id++, PROTO_VERSION, "worker-7", NULL);
	st_write(&c, &o);
	st_reply(&c, OP_HELLO, &r);
	proto_req_simple(&o, OP_CLIENTS, adm.next_id++);
	st_write(&adm, &o);
	st_reply(&adm, OP_CLIENTS, &r);
	CU_ASSERT_EQUAL_FATAL(r.status, STATUS_OK);
	while (proto_list_client(&r.list, &ci) == 1) {
		total++;
		if (ci.name_len == 8 && memcmp(ci.name, "worker-7", 8) == 0) {
			named++;
			CU_ASSERT(ci.peer_len > 0 && memcmp(ci.peer, "127.0.0.1:", 10) == 0);
			CU_ASSERT(ci.id > 0);
		}
	}
	CU_ASSERT_EQUAL(named, 1);
	CU_ASSERT_EQUAL(total, 2);
	test_conn_close(&c);
}

/* The goroutine dump: who waits, on what, for how long; then UNBLOCK them. */
static void
test_waiters_and_unblock(void)
{
	struct test_conn c;
	struct proto_reply r;
	struct proto_waiter_info w;
	struct proto_case cs[2] = {
		{ .dir = 0, .name = "wt.a", .name_len = 4 },
		{ .dir = 1, .name = "wt.b", .name_len = 4,
		  .value = { .kind = VALUE_BIN, .data = (const uint8_t *)"x", .len = 1 } },
	};
	uint64_t client = 0, rid, sid;
	int found = 0;

	CU_ASSERT_EQUAL(st_make(&adm, "wt.a", 0), STATUS_OK);
	CU_ASSERT_EQUAL(st_make(&adm, "wt.b", 0), STATUS_OK);
	CU_ASSERT_FATAL(test_conn_open(&c, srv.port, true) == 0);
	rid = st_recv(&c, "wt.a", PROTO_WAIT_FOREVER);
	sid = st_select(&c, cs, 2, false, PROTO_WAIT_FOREVER);
	CU_ASSERT(st_await_waiters(&adm, "wt.b", 1, 0));
	proto_req_waiters(&o, adm.next_id++, 0);
	st_write(&adm, &o);
	st_reply(&adm, OP_WAITERS, &r);
	CU_ASSERT_EQUAL_FATAL(r.status, STATUS_OK);
	CU_ASSERT_EQUAL(r.total, 2);
	while (proto_list_waiter(&r.list, &w) == 1) {
		struct proto_list cl;
		uint8_t dir;
		const char *name;
		uint32_t nl;

		client = w.client;
		proto_case_list(&w, &cl);
		if (w.request == sid) {
			CU_ASSERT_EQUAL(w.op, OP_SELECT);
			CU_ASSERT_EQUAL(w.ncases, 2);
			CU_ASSERT_EQUAL(proto_list_case(&cl, &dir, &name, &nl), 1);
			CU_ASSERT(dir == 0 && nl == 4 && memcmp(name, "wt.a", 4) == 0);
			CU_ASSERT_EQUAL(proto_list_case(&cl, &dir, &name, &nl), 1);
			CU_ASSERT(dir == 1 && nl == 4 && memcmp(name, "wt.b", 4) == 0);
			found++;
		} else if (w.request == rid) {
			CU_ASSERT_EQUAL(w.op, OP_RECV);
			CU_ASSERT_EQUAL(w.ncases, 1);
			found++;
		}
	}
	CU_ASSERT_EQUAL(found, 2);
	/* unblock one request, then the rest */
	proto_req_unblock(&o, adm.next_id++, client, rid);
	st_write(&adm, &o);
	st_reply(&adm, OP_UNBLOCK, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
	CU_ASSERT_EQUAL(r.n, 1);
	st_reply(&c, OP_RECV, &r);
	CU_ASSERT_EQUAL(r.id, rid);
	CU_ASSERT_EQUAL(r.status, STATUS_CANCELED);
	proto_req_unblock(&o, adm.next_id++, client, 0);
	st_write(&adm, &o);
	st_reply(&adm, OP_UNBLOCK, &r);
	CU_ASSERT_EQUAL(r.n, 1);
	st_reply(&c, OP_SELECT, &r);
	CU_ASSERT_EQUAL(r.id, sid);
	CU_ASSERT_EQUAL(r.status, STATUS_CANCELED);
	CU_ASSERT(st_await_waiters(&adm, "wt.a", 0, 0));
	CU_ASSERT(st_await_waiters(&adm, "wt.b", 0, 0));
	/* unknown client and request */
	proto_req_unblock(&o, adm.next_id++, 999999, 0);
	st_write(&adm, &o);
	st_reply(&adm, OP_UNBLOCK, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_NOT_FOUND);
	proto_req_unblock(&o, adm.next_id++, client, 424242);
	st_write(&adm, &o);
	st_reply(&adm, OP_UNBLOCK, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_NOT_FOUND);
	test_conn_close(&c);
}

static void
test_shutdown_op(void)
{
	struct test_server s2;
	struct test_conn c;
	struct proto_reply r;
	const uint8_t *body;

	CU_ASSERT_FATAL(test_server_start(&s2, NULL) == 0);
	CU_ASSERT_FATAL(test_conn_open(&c, s2.port, true) == 0);
	proto_req_simple(&o, OP_SHUTDOWN, c.next_id++);
	st_write(&c, &o);
	st_reply(&c, OP_SHUTDOWN, &r);
	CU_ASSERT_EQUAL(r.status, STATUS_OK);
	/* the notice, then the connection closes as the server exits */
	st_reply(&c, OP_PING, &r);
	CU_ASSERT_EQUAL(r.id, 0);
	CU_ASSERT_EQUAL(r.status, STATUS_SHUTTING_DOWN);
	CU_ASSERT_EQUAL(test_conn_frame(&c, REPLY_MS, &body), 0);
	test_conn_close(&c);
	/* it exits by itself, cleanly: no signal needed */
	CU_ASSERT_EQUAL(test_wait_exit(s2.pid, 10000), 0);
	s2.pid = 0;
	test_server_kill(&s2);	/* only removes its directory now */
}

static void
register_suites(void)
{
	CU_pSuite s = test_suite("admin", suite_init, suite_clean);

	test_add(s, "STATS counts connections, channels, waiters", test_stats);
	test_add(s, "CHANNELS with a pattern and a limit", test_channels);
	test_add(s, "CLIENTS lists names and peers", test_clients);
	test_add(s, "WAITERS shows every blocked op; UNBLOCK ends them", test_waiters_and_unblock);
	test_add(s, "SHUTDOWN stops the server cleanly", test_shutdown_op);
}

int
main(int argc, char **argv)
{
	return test_main(argc, argv, register_suites);
}
