/* SPDX-License-Identifier: BSD-2-Clause */
#include <poll.h>
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "srvtest.h"

void
st_write(struct test_conn *c, struct proto_out *o)
{
	CU_ASSERT_EQUAL_FATAL(test_conn_write(c, proto_out_data(o), proto_out_len(o)), 0);
	proto_out_reset(o);
}

static struct proto_out *
out(void)
{
	static struct proto_out o;
	static bool init;

	if (!init) {
		proto_out_init(&o);
		init = true;
	}
	return &o;
}

uint64_t
st_send(struct test_conn *c, const char *name, const void *v, size_t len, int64_t wait_us)
{
	struct proto_value val = { .kind = VALUE_BIN, .data = v, .len = len };
	uint64_t id = c->next_id++;

	proto_req_send(out(), id, wait_us, name, strlen(name), &val);
	st_write(c, out());
	return id;
}

uint64_t
st_recv(struct test_conn *c, const char *name, int64_t wait_us)
{
	uint64_t id = c->next_id++;

	proto_req_name(out(), OP_RECV, id, wait_us, name, strlen(name));
	st_write(c, out());
	return id;
}

uint64_t
st_send_deferred(struct test_conn *c, const char *name, const void *v, size_t len)
{
	struct proto_value val = { .kind = VALUE_BIN, .data = v, .len = len };
	uint64_t id = c->next_id++;

	proto_req_send(out(), id, PROTO_WAIT_FOREVER, name, strlen(name), &val);
	CU_ASSERT_EQUAL_FATAL(proto_req_defer_last(out()), 0);
	st_write(c, out());
	return id;
}

uint64_t
st_recv_deferred(struct test_conn *c, const char *name)
{
	uint64_t id = c->next_id++;

	proto_req_name(out(), OP_RECV, id, PROTO_WAIT_FOREVER, name, strlen(name));
	CU_ASSERT_EQUAL_FATAL(proto_req_defer_last(out()), 0);
	st_write(c, out());
	return id;
}

uint64_t
st_want(struct test_conn *c, uint64_t target)
{
	uint64_t id = c->next_id++;

	proto_req_want(out(), id, target);
	st_write(c, out());
	return id;
}

void
st_pair_open(struct test_conn *a, struct test_conn *b, int port)
{
	if (test_conn_open(a, port, true) < 0 || test_conn_open(b, port, true) < 0)
		CU_FAIL("cannot connect to chand");
}

void
st_pair_close(struct test_conn *a, struct test_conn *b)
{
	test_conn_close(a);
	test_conn_close(b);
}

uint64_t
st_ping(struct test_conn *c)
{
	uint64_t id = c->next_id++;

	proto_req_ping(out(), id);
	st_write(c, out());
	return id;
}

uint64_t
st_name_op(struct test_conn *c, uint64_t op, const char *name)
{
	uint64_t id = c->next_id++;

	proto_req_name(out(), op, id, PROTO_WAIT_FOREVER, name, strlen(name));
	st_write(c, out());
	return id;
}

uint64_t
st_select(struct test_conn *c, const struct proto_case *cases, size_t n, bool dflt, int64_t wait_us)
{
	uint64_t id = c->next_id++;

	proto_req_select(out(), id, wait_us, cases, n, dflt);
	st_write(c, out());
	return id;
}

void
st_reply(struct test_conn *c, uint64_t op, struct proto_reply *r)
{
	CU_ASSERT_EQUAL_FATAL(test_conn_reply(c, op, REPLY_MS, r), 0);
}

void
st_next(struct test_conn *c, uint64_t sid, uint64_t op, struct proto_reply *r)
{
	const uint8_t *body;
	const char *why;
	uint64_t id;
	int status;
	long n = test_conn_frame(c, REPLY_MS, &body);

	CU_ASSERT_FATAL(n > 0);
	CU_ASSERT_EQUAL_FATAL(proto_reply_header(body, (size_t)n, &id, &status, &why), STATUS_OK);
	CU_ASSERT_EQUAL_FATAL(proto_decode_reply(body, (size_t)n, id == sid ? OP_STREAM : op, r, &why),
	    STATUS_OK);
}

int
st_make(struct test_conn *c, const char *name, uint64_t cap)
{
	struct proto_reply r;
	uint64_t id = c->next_id++;

	proto_req_make(out(), id, name, name ? strlen(name) : 0, cap);
	st_write(c, out());
	st_reply(c, OP_MAKE, &r);
	CU_ASSERT_EQUAL(r.id, id);
	return r.status;
}

int
st_send_wait(struct test_conn *c, const char *name, const char *v, int64_t wait_us)
{
	struct proto_reply r;
	uint64_t id = st_send(c, name, v, strlen(v), wait_us);

	st_reply(c, OP_SEND, &r);
	CU_ASSERT_EQUAL(r.id, id);
	return r.status;
}

int
st_recv_wait(struct test_conn *c, const char *name, int64_t wait_us, char *buf, size_t cap, bool *ok)
{
	struct proto_reply r;
	uint64_t id = st_recv(c, name, wait_us);

	st_reply(c, OP_RECV, &r);
	CU_ASSERT_EQUAL(r.id, id);
	buf[0] = '\0';
	if (r.status == STATUS_OK && r.value.kind == VALUE_BIN && r.value.len < cap) {
		memcpy(buf, r.value.data, r.value.len);
		buf[r.value.len] = '\0';
	}
	*ok = r.ok;
	return r.status;
}

int
st_close(struct test_conn *c, const char *name)
{
	struct proto_reply r;

	st_name_op(c, OP_CLOSE, name);
	st_reply(c, OP_CLOSE, &r);
	return r.status;
}

int
st_info(struct test_conn *c, const char *name, struct proto_chan_info *info)
{
	struct proto_reply r;

	st_name_op(c, OP_INFO, name);
	st_reply(c, OP_INFO, &r);
	if (info)
		*info = r.info;
	return r.status;
}

bool
st_await_waiters(struct test_conn *c, const char *name, int64_t senders, int64_t receivers)
{
	int64_t end = clock_now_ns() + 10 * NSEC_PER_SEC;

	while (clock_now_ns() < end) {
		struct proto_chan_info i;

		if (st_info(c, name, &i) == STATUS_OK &&
		    (senders < 0 || i.senders == (uint64_t)senders) &&
		    (receivers < 0 || i.receivers == (uint64_t)receivers))
			return true;
		/* the waiters belong to other connections: give their frames a moment */
		poll(NULL, 0, 1);
	}
	return false;
}

uint64_t
st_stat(struct test_conn *c, const char *key)
{
	struct proto_reply r;
	const char *k;
	uint32_t kl;
	uint64_t v, found = UINT64_MAX;

	proto_req_simple(out(), OP_STATS, c->next_id++);
	st_write(c, out());
	st_reply(c, OP_STATS, &r);
	CU_ASSERT_EQUAL_FATAL(r.status, STATUS_OK);
	while (proto_list_stat(&r.list, &k, &kl, &v) == 1)
		if (kl == strlen(key) && memcmp(k, key, kl) == 0)
			found = v;
	return found;
}

const char *
st_name(const char *base)
{
	static char buf[8][64];
	static unsigned n, k;

	k = (k + 1) % 8;
	snprintf(buf[k], sizeof buf[k], "%s.%u", base, ++n);
	return buf[k];
}
