/*
 * test_links_fanout.c: fan-out jobs (PROTOCOL.md §12) against a real
 * chand, part of test_links: ordered and unordered fan-out through the
 * test stage module, backpressure from a full output, a stage error as a
 * value, the built-in stages sha256 and isprime, and bad link requests.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "srvtest.h"
#include "linkstest.h"

/* ---- fan-out jobs ---------------------------------------------------------------------- */

static struct proto_request
fan_out(const char *in, const char *stage, uint64_t workers, bool ordered)
{
	struct proto_request l = one_input(OP_FAN_OUT, in, NULL);

	l.stage = stage;
	l.stage_len = (uint32_t)strlen(stage);
	l.count = workers;
	l.ordered = ordered;
	return l;
}

static int
cmp_int(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

/* 200 values through the sleeping test stage with 4 workers. */
static void
run_fan_out(bool ordered)
{
	char in[64], outs[2][NAME_CAP], buf[64], v[16];
	struct proto_request l;
	int got[200], n = 0;
	bool ok, in_order = true;
	enum proto_value_kind kind;
	uint64_t id, sent;

	snprintf(in, sizeof in, "%s", st_name("fanout.in"));
	make(in, 200);
	for (int i = 0; i < 200; i++) {
		snprintf(v, sizeof v, "%d", i);
		send_ok(in, v);
	}
	close_ok(in);
	l = fan_out(in, "test", 4, ordered);
	CU_ASSERT_EQUAL_FATAL(link_start(&ctl, &l, PROTO_WAIT_FOREVER, &id, outs), STATUS_STARTED);
	for (;;) {
		CU_ASSERT_EQUAL_FATAL(recv_value(&d, outs[0], buf, sizeof buf, &ok, &kind), STATUS_OK);
		if (!ok)
			break;
		CU_ASSERT_FATAL(n < 200);
		got[n] = atoi(buf);
		if (got[n] != n)
			in_order = false;
		n++;
	}
	CU_ASSERT_EQUAL(n, 200);
	CU_ASSERT_EQUAL(link_end(&ctl, OP_FAN_OUT, id, &sent), STATUS_OK);
	CU_ASSERT_EQUAL(sent, 200);
	if (ordered) {
		CU_ASSERT(in_order);
	} else if (in_order) {
		fprintf(stderr, "(unordered fan-out happened to keep input order) ");
	}
	qsort(got, (size_t)n, sizeof got[0], cmp_int);
	for (int i = 0; i < n; i++)
		CU_ASSERT_EQUAL(got[i], i);
	CU_ASSERT_TRUE(await_no_waiters());
}

static void test_fan_out_ordered(void) { run_fan_out(true); }
static void test_fan_out_unordered(void) { run_fan_out(false); }

/* A full output stops the job from taking input: at most `workers` values held. */
static void
test_fan_out_backpressure(void)
{
	char in[64], outs[2][NAME_CAP], v[16];
	struct proto_request l;
	struct proto_chan_info info;
	int64_t end = clock_now_ns() + 10 * NSEC_PER_SEC;
	uint64_t id;

	snprintf(in, sizeof in, "%s", st_name("bp.in"));
	make(in, 50);
	for (int i = 0; i < 50; i++) {
		snprintf(v, sizeof v, "%d", i);
		send_ok(in, v);
	}
	l = fan_out(in, "identity", 2, true);
	CU_ASSERT_EQUAL_FATAL(link_start(&ctl, &l, PROTO_WAIT_FOREVER, &id, outs), STATUS_STARTED);
	/* two values taken: one blocked on the unbuffered output, one done and waiting behind it */
	CU_ASSERT(st_await_waiters(&adm, outs[0], 1, 0));
	do {
		CU_ASSERT_EQUAL_FATAL(st_info(&adm, in, &info), STATUS_OK);
	} while (info.len != 48 && clock_now_ns() < end);
	CU_ASSERT_EQUAL(info.len, 48);
	CU_ASSERT_EQUAL(st_info(&adm, in, &info), STATUS_OK);
	CU_ASSERT_EQUAL(info.len, 48);
	CU_ASSERT_EQUAL(info.receivers, 0);	/* not even waiting to take a third */
	expect_value(outs[0], "0");
	CU_ASSERT(st_await_waiters(&adm, outs[0], 1, 0));
	do {
		CU_ASSERT_EQUAL_FATAL(st_info(&adm, in, &info), STATUS_OK);
	} while (info.len != 47 && clock_now_ns() < end);
	CU_ASSERT_EQUAL(info.len, 47);
	proto_req_cancel(&o, ctl.next_id++, id);
	st_write(&ctl, &o);
	CU_ASSERT_EQUAL(link_end(&ctl, OP_FAN_OUT, id, NULL), STATUS_CANCELED);
	{
		struct proto_reply r;

		st_reply(&ctl, OP_CANCEL, &r);
	}
	CU_ASSERT(chan_is_closed(outs[0]));
	CU_ASSERT_TRUE(await_no_waiters());
}

/* The module refuses "err..." inputs: the receiver sees an error value and the job goes on. */
static void
test_stage_error(void)
{
	char in[64], outs[2][NAME_CAP], buf[256];
	struct proto_request l;
	enum proto_value_kind kind;
	bool ok;
	uint64_t id, sent;

	snprintf(in, sizeof in, "%s", st_name("err.in"));
	make(in, 4);
	send_ok(in, "a");
	send_ok(in, "err1");
	send_ok(in, "b");
	close_ok(in);
	l = fan_out(in, "test", 2, true);
	CU_ASSERT_EQUAL_FATAL(link_start(&ctl, &l, PROTO_WAIT_FOREVER, &id, outs), STATUS_STARTED);
	expect_value(outs[0], "a");
	CU_ASSERT_EQUAL(recv_value(&d, outs[0], buf, sizeof buf, &ok, &kind), STATUS_OK);
	CU_ASSERT(ok);
	CU_ASSERT_EQUAL(kind, VALUE_ERROR);
	CU_ASSERT_STRING_EQUAL(buf, "teststage: refused");
	expect_value(outs[0], "b");
	expect_closed(outs[0]);
	CU_ASSERT_EQUAL(link_end(&ctl, OP_FAN_OUT, id, &sent), STATUS_OK);
	CU_ASSERT_EQUAL(sent, 3);
}

static void
test_builtin_stages(void)
{
	static const uint8_t abc_sha256[32] = {
		0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23,
		0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad,
	};
	const char *nums[] = { "1", "2", "4", "7", "9", "11", "12", "7919", "x" };
	char in[64], in2[64], outs[2][NAME_CAP], buf[256];
	struct proto_request l;
	enum proto_value_kind kind;
	bool ok;
	uint64_t id, sent;

	snprintf(in, sizeof in, "%s", st_name("sha.in"));
	make(in, 1);
	send_ok(in, "abc");
	close_ok(in);
	l = fan_out(in, "sha256", 1, false);
	CU_ASSERT_EQUAL_FATAL(link_start(&ctl, &l, PROTO_WAIT_FOREVER, &id, outs), STATUS_STARTED);
	CU_ASSERT_EQUAL(recv_value(&d, outs[0], buf, sizeof buf, &ok, &kind), STATUS_OK);
	CU_ASSERT(ok && kind == VALUE_BIN && memcmp(buf, abc_sha256, 32) == 0);
	expect_closed(outs[0]);
	CU_ASSERT_EQUAL(link_end(&ctl, OP_FAN_OUT, id, &sent), STATUS_OK);

	/* isprime is a filter: primes go on, the rest are dropped, bad input is an error value */
	snprintf(in2, sizeof in2, "%s", st_name("prime.in"));
	make(in2, 16);
	for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++)
		send_ok(in2, nums[i]);
	close_ok(in2);
	l = fan_out(in2, "isprime", 3, true);
	CU_ASSERT_EQUAL_FATAL(link_start(&ctl, &l, PROTO_WAIT_FOREVER, &id, outs), STATUS_STARTED);
	expect_value(outs[0], "2");
	expect_value(outs[0], "7");
	expect_value(outs[0], "11");
	expect_value(outs[0], "7919");
	CU_ASSERT_EQUAL(recv_value(&d, outs[0], buf, sizeof buf, &ok, &kind), STATUS_OK);
	CU_ASSERT(ok && kind == VALUE_ERROR);
	expect_closed(outs[0]);
	CU_ASSERT_EQUAL(link_end(&ctl, OP_FAN_OUT, id, &sent), STATUS_OK);
	CU_ASSERT_EQUAL(sent, 5);
}

static void
test_bad_requests(void)
{
	char in[64], outs[2][NAME_CAP];
	struct proto_request l;
	uint64_t id;

	snprintf(in, sizeof in, "%s", st_name("bad.in"));
	make(in, 0);
	l = fan_out(in, "nosuchstage", 1, false);
	CU_ASSERT_EQUAL(link_start(&ctl, &l, PROTO_WAIT_FOREVER, &id, outs), STATUS_NOT_FOUND);
	l = fan_out(in, "identity", 1000, false);
	CU_ASSERT_EQUAL(link_start(&ctl, &l, PROTO_WAIT_FOREVER, &id, outs), STATUS_LIMIT);
	l = one_input(OP_OR_DONE, "no.such.channel", NULL);
	CU_ASSERT_EQUAL(link_start(&ctl, &l, PROTO_WAIT_FOREVER, &id, outs), STATUS_NOT_FOUND);
	l = one_input(OP_OR_DONE, in, NULL);
	CU_ASSERT_EQUAL(link_start(&ctl, &l, 0, &id, outs), STATUS_BAD_REQUEST);
	CU_ASSERT_TRUE(await_no_waiters());
	CU_ASSERT_EQUAL(st_stat(&adm, "pending_requests"), 0);
}

/* Adds its tests to test_links.c's "links" suite s, after the ways a link stops. */
void
register_links_fanout(CU_pSuite s)
{
	test_add(s, "ordered fan-out keeps input order", test_fan_out_ordered);
	test_add(s, "unordered fan-out returns the same multiset", test_fan_out_unordered);
	test_add(s, "fan-out backpressure: a full output stops the input", test_fan_out_backpressure);
	test_add(s, "a stage error is a value; the job goes on", test_stage_error);
	test_add(s, "built-in stages sha256 and isprime", test_builtin_stages);
	test_add(s, "bad link requests", test_bad_requests);
}
