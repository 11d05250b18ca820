/*
 * fuzz_client.c: libFuzzer harness for libchanclient against a hostile
 * server: what the library does with replies chand would never send (bad
 * frames, wrong ids and arities, values and indexes out of range, interim
 * replies where none belong, notices, a server that hangs up), through its
 * public API only. See tests/fuzz/README.md.
 *
 * An input is a client script and a server script:
 *
 *   nops, then nops × (op, param), then records until the input ends
 *   op: the op's index in client_ops (low 6 bits), and its context (top 2)
 *   record: flags, length (2 bytes, big-endian), body
 *
 * The client (the harness's own thread) dials a unix socket, which HELLOs,
 * then runs the ops (below), each with a context of its own: the
 * background, one the server may cancel, one with a deadline an hour away
 * (sent on the wire) the server may cancel too, or one whose deadline has
 * passed. Only the server ends a wait, but for a cancelled call's grace
 * (GRACE_NS), which the server's prompt answers meet unless LATE holds
 * them back, so a run is the same each time.
 * The server is a thread that answers with the records in order. A record
 * goes when its trigger comes: the next whole request frame the client
 * wrote, or, when none comes, the client asleep with nothing left to send
 * (it waits for a reply: /proc's view of its thread is 'S'). Its flags:
 *
 *   RAW      the body is written as it is (framing included)
 *   ID       the id of a recent request is put after the body's first byte
 *            (an array header): [id, body...]; ID_BACK(k) picks the kth
 *            request back (0: the newest), so a stream's values can follow
 *            its CREDITs
 *   PUSH     no trigger: it goes right after the record before it
 *   HANGUP   the server closes its sending side after it
 *   CANCEL   at its trigger the server cancels the op's context first, as
 *            another thread of the client would; with an empty body, that
 *            is all the record does
 *   LATE     when the server cancelled the running op's context, the
 *            record goes LATE_NS after its trigger: twice the client's
 *            grace, so the call has given up on its reply meanwhile
 *
 * Without RAW the harness adds the 4-byte length. Once the records run out
 * the server closes its sending side, so every wait ends: a call that
 * still waits fails with the connection's loss, and the rest fail at once.
 *
 * Checks (a failed one traps): every call returns 0 or a CHAN_E* code
 * (chan_select: a case's index, or CHAN_DEFAULT only with a default);
 * what a call hands back is whole (a value's bytes NUL-terminated, indexes
 * inside their arrays, strings terminated inside their fields); a call
 * that found the connection unusable (CHAN_EPROTO, CHAN_ECONNLOST) leaves
 * it so, and PING then fails too. ASan, UBSan and LeakSanitizer see the
 * rest, and libFuzzer's -timeout a hang.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "codec.h"
#include "mpread.h"

#include "chanclient.h"

#define CHECK(cond) do { if (!(cond)) __builtin_trap(); } while (0)

enum rec_flag {
	REC_RAW = 1,
	REC_ID = 2,
	REC_PUSH = 16,
	REC_HANGUP = 32,
	REC_CANCEL = 64,
	REC_LATE = 128,
};
#define REC_ID_BACK(f) (((f) >> 2) & 3)
#define ID_HISTORY 4
#define IN_MAX (256u << 10)		/* request bytes kept: the ops' requests are far smaller */
#define GRACE_NS (20 * 1000000LL)	/* the client's cancel grace: short, so that LATE costs little */
#define LATE_NS (2 * GRACE_NS)

struct fake {
	int fd;
	pid_t client_tid;
	const uint8_t *rec, *end;	/* the records not sent yet */
	uint8_t *in;			/* request bytes read, not yet taken as frames */
	size_t inlen;
	uint64_t ids[ID_HISTORY];	/* the newest request ids, [0] the newest */
	pthread_mutex_t ctx_lock;	/* ctx is set and cleared by the client, cancelled by the server */
	chan_ctx_t *ctx;		/* the running op's context, or NULL */
	bool cancelled;			/* the server cancelled ctx */
};

static bool trace;		/* FUZZ_CLIENT_TRACE set: records, ops and results on stderr */
static char sock_path[108];
static int listen_fd = -1;

static void
sock_cleanup(void)
{
	char dir[sizeof sock_path];
	char *slash;

	if (listen_fd < 0)
		return;
	close(listen_fd);
	unlink(sock_path);
	snprintf(dir, sizeof dir, "%s", sock_path);
	if ((slash = strrchr(dir, '/')) != NULL) {
		*slash = '\0';
		rmdir(dir);
	}
}

/* The listening socket, made once per process in a directory of its own. */
static void
sock_listen(void)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	char dir[] = "/tmp/fuzz_client.XXXXXX";

	CHECK(mkdtemp(dir) != NULL);
	snprintf(sock_path, sizeof sock_path, "%s/s", dir);
	snprintf(sun.sun_path, sizeof sun.sun_path, "%s", sock_path);
	CHECK((listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) >= 0);
	CHECK(bind(listen_fd, (struct sockaddr *)&sun, sizeof sun) == 0);
	CHECK(listen(listen_fd, 4) == 0);
	atexit(sock_cleanup);
	signal(SIGPIPE, SIG_IGN);
}

/* Is the client's thread asleep in the kernel ('S': a recv, a poll)? */
static bool
client_asleep(pid_t tid)
{
	char path[64], buf[256], *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int)tid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return false;
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	/* "tid (comm) S ...": comm may hold anything, so look after its last ')' */
	return (p = strrchr(buf, ')')) != NULL && p[1] == ' ' && p[2] == 'S';
}

/* Read what the client wrote so far, without waiting: bytes read, or -1 at its end. */
static ssize_t
fake_drain(struct fake *f)
{
	ssize_t got, total = 0;

	for (;;) {
		CHECK(f->inlen < IN_MAX);
		got = recv(f->fd, f->in + f->inlen, IN_MAX - f->inlen, MSG_DONTWAIT);
		if (got > 0) {
			f->inlen += (size_t)got;
			total += got;
			continue;
		}
		if (got < 0 && (errno == EAGAIN || errno == EINTR))
			return total;
		return -1;
	}
}

/* Take the first whole request frame, if any, and keep its id. */
static bool
fake_take_request(struct fake *f)
{
	const uint8_t *body;
	const char *why;
	size_t blen;
	struct mpr r;
	uint32_t n;
	uint64_t op, id;
	/* the library's own frames: a bad length is its bug too */
	long used = proto_frame_split(f->in, f->inlen, IN_MAX, &body, &blen, &why);

	CHECK(used >= 0);
	if (used == 0)
		return false;
	mpr_init(&r, body, blen);
	/* the library's own encoder wrote it: [op, id, wait, ...], or it broke the protocol */
	CHECK(mpr_array(&r, &n) == 0 && n >= 3 && mpr_uint(&r, &op) == 0 && mpr_uint(&r, &id) == 0);
	memmove(f->ids + 1, f->ids, (ID_HISTORY - 1) * sizeof f->ids[0]);
	f->ids[0] = id;
	f->inlen -= (size_t)used;
	memmove(f->in, f->in + used, f->inlen);
	return true;
}

/* Wait for a record's trigger: 0, or -1 when the client has gone. */
static int
fake_trigger(struct fake *f)
{
	for (;;) {
		bool asleep = client_asleep(f->client_tid);
		ssize_t got = fake_drain(f);
		struct pollfd p = { .fd = f->fd, .events = POLLIN };

		if (got < 0)
			return -1;
		if (fake_take_request(f))
			return 0;
		/* asleep before a read that found nothing: it waits for us, not for its own write */
		if (asleep && got == 0 && f->inlen == 0)
			return 0;
		poll(&p, 1, 1);
	}
}

/* Write all of buf, reading the client meanwhile: 0, or -1 when it has gone. */
static int
fake_write(struct fake *f, const uint8_t *buf, size_t len)
{
	while (len > 0) {
		struct pollfd p = { .fd = f->fd, .events = POLLOUT | POLLIN };
		ssize_t n = send(f->fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n > 0) {
			buf += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			return -1;
		poll(&p, 1, 100);
		if (fake_drain(f) < 0)
			return -1;
	}
	return 0;
}

/* An id in msgpack: a fixint, or uint 64 (any encoding that holds it will do, §2). */
static size_t
put_uint(uint8_t *p, uint64_t v)
{
	if (v < 128) {
		p[0] = (uint8_t)v;
		return 1;
	}
	p[0] = 0xcf;
	for (int i = 0; i < 8; i++)
		p[1 + i] = (uint8_t)(v >> (56 - 8 * i));
	return 9;
}

/* Send one record as its flags say: 0, or -1 when the client has gone. */
static int
fake_send(struct fake *f, unsigned flags, const uint8_t *body, size_t len)
{
	uint8_t frame[4 + 9 + 65536];
	size_t n = 4;

	if (trace)
		fprintf(stderr, "fuzz_client: record: flags %#x, %zu bytes, request %" PRIu64 "\n", flags,
		    len, f->ids[REC_ID_BACK(flags)]);

	if (flags & REC_RAW)
		return fake_write(f, body, len);
	if ((flags & REC_ID) && len > 0) {
		frame[n++] = body[0];
		n += put_uint(frame + n, f->ids[REC_ID_BACK(flags)]);
		body++;
		len--;
	}
	memcpy(frame + n, body, len);
	n += len;
	frame[0] = (uint8_t)((n - 4) >> 24);
	frame[1] = (uint8_t)((n - 4) >> 16);
	frame[2] = (uint8_t)((n - 4) >> 8);
	frame[3] = (uint8_t)(n - 4);
	return fake_write(f, frame, n);
}

/* Cancel the running op's context, if it is cancellable, as another thread of the client would. */
static void
fake_cancel(struct fake *f)
{
	pthread_mutex_lock(&f->ctx_lock);
	if (f->ctx != NULL && chan_cancel(f->ctx) == CHAN_OK) {
		f->cancelled = true;
		if (trace)
			fprintf(stderr, "fuzz_client: the op's context cancelled\n");
	}
	pthread_mutex_unlock(&f->ctx_lock);
}

/* LATE's wait, when the running op's call was cancelled: it outlasts the client's grace. */
static void
fake_late(struct fake *f)
{
	bool cancelled;

	pthread_mutex_lock(&f->ctx_lock);
	cancelled = f->cancelled;
	pthread_mutex_unlock(&f->ctx_lock);
	if (cancelled)
		nanosleep(&(struct timespec){ 0, LATE_NS }, NULL);
}

static void *
fake_run(void *arg)
{
	struct fake *f = arg;
	int cfd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);

	CHECK(cfd >= 0);
	f->fd = cfd;
	while (f->end - f->rec >= 3) {
		unsigned flags = f->rec[0];
		size_t len = (size_t)f->rec[1] << 8 | f->rec[2];
		const uint8_t *body = f->rec + 3;

		if (len > (size_t)(f->end - body))
			len = (size_t)(f->end - body);
		f->rec = body + len;
		if (!(flags & REC_PUSH) && fake_trigger(f) < 0)
			goto out;
		if (flags & REC_CANCEL)
			fake_cancel(f);
		if (flags & REC_LATE)
			fake_late(f);
		if (!((flags & REC_CANCEL) && len == 0) && fake_send(f, flags, body, len) < 0)
			goto out;
		if (flags & REC_HANGUP)
			break;
	}
	shutdown(cfd, SHUT_WR);
	/* read until the client closes, so that its writes never wait */
	for (;;) {
		struct pollfd p = { .fd = cfd, .events = POLLIN };

		if (fake_drain(f) < 0)
			break;
		f->inlen = 0;
		poll(&p, 1, -1);
	}
out:
	close(cfd);
	return NULL;
}

/* ---- the client: the library's calls, each checked -------------------------------- */

#define CLIENT_MAX_OPS 16

struct client {
	chan_conn_t *conn;
	chan_ctx_t *ctx;	/* the running op's */
	chan_t *a, *b;		/* handles on "a" and "b", made without a round trip */
	bool broken;		/* a call said the connection is unusable */
};

typedef void client_op_fn(struct client *c, unsigned param);

static const uint8_t payload[256] = "a value";

/* rc is 0 or a CHAN_E* code; the connection is broken once a call said so. */
static void
check_rc(struct client *c, int rc)
{
	if (trace)
		fprintf(stderr, "fuzz_client:   %d (%s)\n", rc, chan_strerror(rc));
	CHECK(rc == CHAN_OK || (rc <= CHAN_ECLOSED && rc >= CHAN_EUNAVAILABLE));
	if (rc == CHAN_EPROTO || rc == CHAN_ECONNLOST)
		c->broken = true;
}

/* A NUL inside a fixed-size string field. */
#define CHECK_TERMINATED(field) CHECK(memchr((field), '\0', sizeof(field)) != NULL)

/* A value handed back is whole, then cleared. */
static void
check_value(chan_value_t *v)
{
	switch (v->kind) {
	case CHAN_VALUE_NIL:
		CHECK(v->data == NULL && v->chan == NULL);
		break;
	case CHAN_VALUE_BYTES:
	case CHAN_VALUE_ERROR:
		CHECK(v->data != NULL && ((const char *)v->data)[v->len] == '\0');
		break;
	case CHAN_VALUE_CHAN:
		CHECK(v->chan != NULL && chan_name(v->chan)[0] != '\0');
		break;
	default:
		CHECK(!"a value kind the API does not have");
	}
	chan_value_clear(v);
}

/* A receive's result through ch (ok read after the call): ok false brings no value, and maybe a close error. */
static void
check_recv(struct client *c, chan_t *ch, int rc, chan_value_t *v, const bool *okp)
{
	bool ok = *okp;
	char msg[CHAN_CLOSE_MSG_MAX + 1];
	uint64_t code;

	check_rc(c, rc);
	if (trace)
		fprintf(stderr, "fuzz_client:   ok %d, a value of kind %d\n", ok, v->kind);
	if (rc == CHAN_OK && !ok) {
		CHECK(v->kind == CHAN_VALUE_NIL);
		if (chan_err(ch, &code, msg, sizeof msg))
			CHECK_TERMINATED(msg);
	}
	check_value(v);
}

static void
op_ping(struct client *c, unsigned p)
{
	check_rc(c, chan_ping(c->ctx, c->conn));
}

static void
op_make(struct client *c, unsigned p)
{
	chan_delivery_opts_t o = CHAN_DELIVERY_OPTS_INIT;
	chan_t *ch = NULL;
	int rc;

	o.durable = p & 2;
	if (p & 4)
		rc = chan_make_opts(c->ctx, c->conn, "q", p >> 3, &o, &ch);
	else
		rc = chan_make(c->ctx, c->conn, p & 1 ? NULL : "a", p >> 3, &ch);
	check_rc(c, rc);
	CHECK((rc == CHAN_OK) == (ch != NULL));
	if (ch != NULL)
		CHECK(chan_name(ch)[0] != '\0');
	chan_free(ch);
}

static void
op_open(struct client *c, unsigned p)
{
	chan_t *ch = NULL;
	int rc = chan_open(c->ctx, c->conn, p & 1 ? "b" : "~0123456789abcdef0123456789abcdef", &ch);

	check_rc(c, rc);
	CHECK((rc == CHAN_OK) == (ch != NULL));
	chan_free(ch);
}

static void
op_send(struct client *c, unsigned p)
{
	if (p == 255)
		check_rc(c, chan_send_chan(c->ctx, c->a, c->b));
	else
		check_rc(c, chan_send(c->ctx, c->a, payload, p));
}

static void
op_recv(struct client *c, unsigned p)
{
	chan_value_t v = { 0 };
	bool ok = false;
	chan_t *ch = p & 1 ? c->b : c->a;

	check_recv(c, ch, chan_recv(c->ctx, ch, &v, &ok), &v, &ok);
}

static void
op_try(struct client *c, unsigned p)
{
	chan_value_t v = { 0 };
	bool ok = false;

	if (p & 1)
		check_rc(c, chan_try_send(c->ctx, c->b, payload, p >> 1));
	else
		check_recv(c, c->b, chan_try_recv(c->ctx, c->b, &v, &ok), &v, &ok);
}

/* recv a, send b, and with p & 2 a nil channel's case; p & 1: a default case. */
static void
op_select(struct client *c, unsigned p)
{
	chan_case_t cases[3] = {
		{ .dir = CHAN_DIR_RECV, .ch = c->a },
		{ .dir = CHAN_DIR_SEND, .ch = c->b, .data = payload, .len = p >> 2 },
		{ .dir = CHAN_DIR_RECV, .ch = NULL },
	};
	size_t n = p & 2 ? 3 : 2;
	int rc = chan_select(c->ctx, cases, n, p & 1);

	if (rc >= 0)
		CHECK((size_t)rc < n);
	else if (rc == CHAN_DEFAULT)
		CHECK(p & 1);
	else
		check_rc(c, rc);
	for (size_t i = 0; i < n; i++) {
		if (rc != (int)i)
			CHECK(cases[i].value.kind == CHAN_VALUE_NIL);
		if (cases[i].err != 0)
			check_rc(c, cases[i].err);
		check_value(&cases[i].value);
	}
}

static void
op_len(struct client *c, unsigned p)
{
	size_t n;

	check_rc(c, p & 1 ? chan_cap(c->ctx, c->a, &n) : chan_len(c->ctx, c->a, &n));
}

static void
op_info(struct client *c, unsigned p)
{
	chan_info_t info;
	int rc = chan_info(c->ctx, c->a, &info);

	check_rc(c, rc);
	if (rc == CHAN_OK) {
		CHECK_TERMINATED(info.name);
		CHECK_TERMINATED(info.close_message);
	}
}

static void
op_close(struct client *c, unsigned p)
{
	size_t n;

	switch (p % 3) {
	case 0:
		check_rc(c, chan_close(c->ctx, c->a));
		break;
	case 1:
		check_rc(c, chan_close_err(c->ctx, c->a, p, "why"));
		break;
	default:
		check_rc(c, chan_delete(c->ctx, c->a, &n));
	}
}

/* A stream over a (and b with p & 1), credit 1 + (p >> 1 & 3); up to 1 + (p >> 3 & 7) values. */
static void
op_stream(struct client *c, unsigned p)
{
	chan_t *chans[2] = { c->a, c->b };
	size_t n = 1 + (p & 1), idx;
	char msg[64];
	chan_stream_t *s = NULL;
	chan_value_t v = { 0 };
	chan_msg_t m = { .tag = 0 };
	int rc = chan_stream_open(c->ctx, chans, n, 1 + (p >> 1 & 3), &s);
	bool ok;

	check_rc(c, rc);
	CHECK((rc == CHAN_OK) == (s != NULL));
	for (unsigned i = 0; rc == CHAN_OK && i <= (p >> 3 & 7); i++) {
		idx = SIZE_MAX;
		if (p & 128) {
			rc = chan_stream_recv_msg(s, &m, &ok, &idx);
			v = m.value;
			m.value = (chan_value_t){ 0 };
			chan_msg_clear(&m);
		} else {
			rc = chan_stream_recv(s, &v, &ok, &idx);
		}
		check_rc(c, rc);
		if (rc == CHAN_OK) {
			CHECK(idx < n);
			if (!ok && chan_stream_err(s, idx, NULL, msg, sizeof msg))
				CHECK(memchr(msg, '\0', sizeof msg) != NULL);
		}
		check_value(&v);
	}
	chan_stream_free(s);
}

/* A link over a (p % 4: or-done, tee, take, or over a and b); p & 4 stops it; p & 8 receives one output value. */
static void
op_link(struct client *c, unsigned p)
{
	chan_t *ins[2] = { c->a, c->b }, *out = NULL, *out2 = NULL;
	chan_link_t *link = NULL;
	chan_value_t v = { 0 };
	uint64_t sent;
	bool ok;
	int rc;

	switch (p % 4) {
	case 0:
		rc = chan_or_done(c->ctx, c->a, NULL, &link, &out);
		break;
	case 1:
		rc = chan_tee(c->ctx, c->a, NULL, &link, &out, &out2);
		break;
	case 2:
		rc = chan_take(c->ctx, c->a, 3, NULL, &link, &out);
		break;
	default:
		rc = chan_or(c->ctx, ins, 2, NULL, &link, &out);
	}
	check_rc(c, rc);
	CHECK((rc == CHAN_OK) == (link != NULL) && (rc == CHAN_OK) == (out != NULL));
	CHECK((p % 4 == 1 && rc == CHAN_OK) == (out2 != NULL));
	if (rc == CHAN_OK && (p & 8))
		check_recv(c, out, chan_recv(c->ctx, out, &v, &ok), &v, &ok);
	if (rc == CHAN_OK && (p & 4))
		CHECK(chan_link_stop(link) == CHAN_OK);
	if (rc == CHAN_OK)
		check_rc(c, chan_link_wait(link, &sent));
	chan_link_free(link);
	chan_free(out);
	chan_free(out2);
}

/* A receive that keeps its tag, then (p % 4) ACK posted, NACK, TOUCH or ACK waited for. */
static void
op_msg(struct client *c, unsigned p)
{
	chan_msg_t m = { .tag = 0 };
	bool ok = false;
	int rc = chan_recv_msg(c->ctx, c->a, &m, &ok);

	check_rc(c, rc);
	if (rc == CHAN_OK && m.tag != 0) {
		CHECK(ok && m.conn != NULL);
		switch (p % 4) {
		case 0:
			check_rc(c, chan_ack(c->a, &m));
			break;
		case 1:
			check_rc(c, chan_nack(c->ctx, c->a, &m, 0));
			break;
		case 2:
			check_rc(c, chan_touch(c->ctx, c->a, &m));
			break;
		default:
			check_rc(c, chan_ack_n(c->ctx, c->a, &m.tag, 1));
		}
	}
	check_value(&m.value);
	chan_msg_clear(&m);
}

/* A send and a receive in flight together; p & 1 flushes before waiting. */
static void
op_async(struct client *c, unsigned p)
{
	chan_op_t *ops[2] = { NULL, NULL };
	chan_value_t v = { 0 };
	bool ok = false;

	check_rc(c, chan_send_async(c->ctx, c->a, payload, p >> 1, &ops[0]));
	check_rc(c, chan_recv_async(c->ctx, c->b, &ops[1]));
	if (p & 1)
		check_rc(c, chan_conn_flush(c->conn));
	for (int i = 0; i < 2; i++) {
		if (ops[i] == NULL)
			continue;
		check_rc(c, chan_op_wait(ops[i], &v, &ok));
		check_value(&v);
	}
}

static void
admin_lists(struct client *c, unsigned p)
{
	chan_client_info_t *cl = NULL;
	chan_node_info_t *nodes = NULL;
	chan_inflight_t *inf = NULL;
	size_t n = 0, total;
	int rc;

	switch (p % 3) {
	case 0:
		check_rc(c, rc = chan_admin_clients(c->ctx, c->conn, &cl, &n));
		for (size_t i = 0; rc == CHAN_OK && i < n; i++) {
			CHECK_TERMINATED(cl[i].peer);
			CHECK_TERMINATED(cl[i].name);
		}
		break;
	case 1:
		check_rc(c, rc = chan_admin_cluster_nodes(c->ctx, c->conn, &nodes, &n));
		for (size_t i = 0; rc == CHAN_OK && i < n; i++) {
			CHECK_TERMINATED(nodes[i].name);
			CHECK_TERMINATED(nodes[i].addr);
		}
		break;
	default:
		check_rc(c, chan_admin_inflight(c->ctx, c->conn, "a", 0, &inf, &n, &total));
	}
	free(cl);
	free(nodes);
	free(inf);
}

static void
op_admin(struct client *c, unsigned p)
{
	chan_stat_t *st = NULL;
	chan_info_t *chs = NULL;
	chan_waiter_t *w = NULL;
	size_t n = 0, total;
	int rc;

	switch (p % 5) {
	case 0:
		check_rc(c, rc = chan_admin_stats(c->ctx, c->conn, &st, &n));
		for (size_t i = 0; rc == CHAN_OK && i < n; i++)
			CHECK_TERMINATED(st[i].key);
		break;
	case 1:
		check_rc(c, rc = chan_admin_channels(c->ctx, c->conn, NULL, 0, &chs, &n, &total));
		for (size_t i = 0; rc == CHAN_OK && i < n; i++) {
			CHECK_TERMINATED(chs[i].name);
			CHECK_TERMINATED(chs[i].close_message);
		}
		break;
	case 2:
		check_rc(c, rc = chan_admin_waiters(c->ctx, c->conn, 0, &w, &n, &total));
		for (size_t i = 0; rc == CHAN_OK && i < n; i++) {
			CHECK(w[i].op != NULL && (w[i].ncases == 0 || w[i].cases != NULL));
			CHECK_TERMINATED(w[i].home);
			for (size_t j = 0; j < w[i].ncases; j++)
				CHECK_TERMINATED(w[i].cases[j].channel);
		}
		if (rc == CHAN_OK)
			chan_admin_waiters_free(w, n);
		break;
	case 3:
		check_rc(c, chan_admin_unblock(c->ctx, c->conn, p, 0, &n));
		break;
	default:
		admin_lists(c, p / 5);
	}
	free(st);
	free(chs);
}

static client_op_fn *const client_ops[] = {
	op_ping, op_make, op_open, op_send, op_recv, op_try, op_select, op_len,
	op_info, op_close, op_stream, op_link, op_msg, op_async, op_admin,
};
#define N_OPS (sizeof client_ops / sizeof client_ops[0])

#define OP_INDEX(b) ((unsigned)(((b) & 63u) % N_OPS))
#define OP_CTX(b) ((b) >> 6)

/* An op's context: the background, cancellable, an hour's deadline, or a deadline passed. */
static chan_ctx_t *
op_ctx(unsigned kind)
{
	chan_ctx_t *ctx = chan_background();

	switch (kind) {
	case 1:
		CHECK(chan_with_cancel(&ctx, NULL) == CHAN_OK);
		break;
	case 2:
		CHECK(chan_with_timeout(&ctx, NULL, 3600 * CHAN_SEC) == CHAN_OK);
		break;
	case 3:
		CHECK(chan_with_deadline(&ctx, NULL, chan_now() - 1) == CHAN_OK);
		break;
	}
	return ctx;
}

/* Run one op under its context, which the server may cancel meanwhile. */
static void
client_op(struct client *c, struct fake *f, uint8_t op, uint8_t param)
{
	if (trace)
		fprintf(stderr, "fuzz_client: op %u context %u param %u\n", OP_INDEX(op), OP_CTX(op), param);
	c->ctx = op_ctx(OP_CTX(op));
	pthread_mutex_lock(&f->ctx_lock);
	f->ctx = c->ctx;
	f->cancelled = false;
	pthread_mutex_unlock(&f->ctx_lock);
	client_ops[OP_INDEX(op)](c, param);
	pthread_mutex_lock(&f->ctx_lock);
	f->ctx = NULL;
	pthread_mutex_unlock(&f->ctx_lock);
	chan_ctx_free(c->ctx);
	c->ctx = NULL;
}

/* Dial, run ops[0..nops) (op, param pairs), close. */
static void
client_run(struct fake *f, const uint8_t *ops, size_t nops)
{
	struct client c = { 0 };
	chan_dial_opts_t o = { .client_name = "fuzz", .cancel_grace_ns = GRACE_NS };
	chan_conn_info_t info;
	char addr[sizeof sock_path + 8];
	int rc;

	snprintf(addr, sizeof addr, "unix:%s", sock_path);
	rc = chan_dial(chan_background(), addr, &o, &c.conn);
	check_rc(&c, rc);
	if (rc != CHAN_OK)
		return;
	CHECK(chan_conn_info(c.conn, &info) == CHAN_OK);
	CHECK_TERMINATED(info.server);
	CHECK(chan_handle_new(&c.a, c.conn, "a") == CHAN_OK && chan_handle_new(&c.b, c.conn, "b") == CHAN_OK);
	for (size_t i = 0; i < nops; i++) {
		client_op(&c, f, ops[2 * i], ops[2 * i + 1]);
		/* the failure sticks: a broken connection answers nothing more */
		if (c.broken)
			CHECK(chan_ping(chan_background(), c.conn) != CHAN_OK);
	}
	chan_free(c.a);
	chan_free(c.b);
	chan_conn_close(c.conn);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fake f = { .client_tid = gettid(), .ctx_lock = PTHREAD_MUTEX_INITIALIZER };
	size_t nops;
	pthread_t th;

	if (listen_fd < 0) {
		sock_listen();
		trace = getenv("FUZZ_CLIENT_TRACE") != NULL;
	}
	if (size == 0)
		return 0;
	nops = data[0] % (CLIENT_MAX_OPS + 1);
	if (size < 1 + 2 * nops)
		return 0;
	CHECK((f.in = malloc(IN_MAX)) != NULL);
	f.rec = data + 1 + 2 * nops;
	f.end = data + size;
	CHECK(pthread_create(&th, NULL, fake_run, &f) == 0);
	client_run(&f, data + 1, nops);
	CHECK(pthread_join(th, NULL) == 0);
	free(f.in);
	return 0;
}
