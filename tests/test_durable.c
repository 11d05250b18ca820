/*
 * test_durable.c: durable channels (issue 18) against a real chand on a
 * data_dir of the test's own: the config keys, MAKE's durable option and
 * its refusals, a restart that keeps declarations, values in order and the
 * closed state with its error; a torn tail cut at every byte of the last
 * record (through chand), a flipped bit before the tail (chand refuses,
 * naming the file; --repair starts), and a full disk (a 2 MiB tmpfs:
 * STORAGE, plain channels unaffected, recovery once space returns), and the
 * commit rule whichever thread commits (a SEND's OK only once its record is
 * in the file, and synced with fsync = always).
 * Crashes under load are in test_durable_kill.c.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdint.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "durtest.h"


static int
run_chand(const char *const *args, char *out, size_t cap)
{
	return test_run(getenv("CHAND") ? getenv("CHAND") : "server/chand", args, out, cap);
}

/* The metrics port chand logged, or -1. */
static int
metrics_port(struct test_server *s)
{
	char path[128], line[1024];
	int port = -1;
	FILE *f;

	snprintf(path, sizeof path, "%s/chand.log", s->dir);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof line, f)) {
		char *p = strstr(line, "metrics address=");

		if (p != NULL && (p = strstr(p, "port=")) != NULL)
			port = atoi(p + 5);
	}
	fclose(f);
	return port;
}

/* GET /metrics into buf (headers and body); the bytes read. */
static size_t
scrape(int port, char *buf, size_t cap)
{
	static const char req[] = "GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n";
	struct test_conn c;
	size_t len = 0;
	ssize_t n;

	if (test_conn_open(&c, port, false) < 0 || test_conn_write(&c, req, strlen(req)) < 0)
		return 0;
	while (len < cap - 1) {
		struct pollfd p = { .fd = c.fd, .events = POLLIN };

		if (poll(&p, 1, 10000) != 1 || (n = read(c.fd, buf + len, cap - 1 - len)) <= 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	test_conn_close(&c);
	return len;
}

static void
test_config_keys(void)
{
	const char *missing[] = { "--check-config", "--set", "data_dir=/nonexistent/chand", NULL };
	const char *bad[] = { "--check-config", "--set", "fsync=sometimes", NULL };
	const char *good[] = { "--check-config", "--set", "data_dir=/tmp", "--set", "fsync=everysec", NULL };
	char out[1024];

	CU_ASSERT_NOT_EQUAL(run_chand(missing, out, sizeof out), 0);
	CU_ASSERT(strstr(out, "data_dir") != NULL && strstr(out, "directory") != NULL);
	CU_ASSERT_NOT_EQUAL(run_chand(bad, out, sizeof out), 0);
	CU_ASSERT(strstr(out, "fsync") != NULL && strstr(out, "always, everysec or no") != NULL);
	CU_ASSERT_EQUAL(run_chand(good, out, sizeof out), 0);
}

static void
test_make_rules(void)
{
	struct dur d;
	struct test_server plain;
	chan_delivery_opts_t o = CHAN_DELIVERY_OPTS_INIT;
	chan_conn_t *pc;
	chan_t *ch;
	chan_info_t i;
	char addr[64];

	dur_init(&d, "always");
	CU_ASSERT_FATAL(dur_start(&d) == 0);
	o.ack_wait_ns = 0;
	o.durable = true;
	/* anonymous, unbuffered: BAD_REQUEST; an ack channel may be durable */
	CU_ASSERT_EQUAL(chan_make_opts(chan_background(), d.conn, NULL, 4, &o, &ch), CHAN_EBADREQ);
	CU_ASSERT_EQUAL(chan_make_opts(chan_background(), d.conn, "unbuf", 0, &o, &ch), CHAN_EBADREQ);
	o.ack_wait_ns = CHAN_SEC;
	CU_ASSERT_EQUAL_FATAL(chan_make_opts(chan_background(), d.conn, "acked", 4, &o, &ch), CHAN_OK);
	chan_free(ch);
	/* made; again the same: opened; another durability: EXISTS */
	CU_ASSERT_EQUAL_FATAL(dur_make(&d, "jobs", 4, &ch), CHAN_OK);
	chan_free(ch);
	CU_ASSERT_EQUAL_FATAL(dur_make(&d, "jobs", 4, &ch), CHAN_OK);
	CU_ASSERT_EQUAL(chan_info(chan_background(), ch, &i), CHAN_OK);
	CU_ASSERT(i.durable);
	CU_ASSERT(i.journal_bytes > 0);
	chan_free(ch);
	CU_ASSERT_EQUAL(chan_make(chan_background(), d.conn, "jobs", 4, &ch), CHAN_EEXISTS);
	CU_ASSERT_EQUAL(chan_make(chan_background(), d.conn, "plain", 4, &ch), CHAN_OK);
	CU_ASSERT_EQUAL(chan_info(chan_background(), ch, &i), CHAN_OK);
	CU_ASSERT(!i.durable);
	chan_free(ch);
	CU_ASSERT_EQUAL(dur_make(&d, "plain", 4, &ch), CHAN_EEXISTS);
	dur_free(&d);

	/* without data_dir: STORAGE, with a message naming the key */
	CU_ASSERT_FATAL(test_server_start(&plain, NULL) == 0);
	snprintf(addr, sizeof addr, "tcp://127.0.0.1:%d", plain.port);
	CU_ASSERT_FATAL(chan_dial(chan_background(), addr, NULL, &pc) == CHAN_OK);
	o.ack_wait_ns = 0;
	CU_ASSERT_EQUAL(chan_make_opts(chan_background(), pc, "jobs", 4, &o, &ch), CHAN_ESTORAGE);
	chan_conn_close(pc);
	CU_ASSERT_EQUAL(test_server_stop(&plain), 0);
}

static void
send_str(chan_t *ch, const char *s)
{
	CU_ASSERT_EQUAL(chan_send(chan_background(), ch, s, strlen(s)), CHAN_OK);
}

static void
expect_str(chan_t *ch, const char *want)
{
	char buf[64];
	bool ok;

	CU_ASSERT_EQUAL(dur_try_recv(ch, buf, sizeof buf, &ok), 1);
	CU_ASSERT(ok);
	CU_ASSERT_STRING_EQUAL(buf, want);
}

static void
test_restart_keeps_state(void)
{
	struct dur d;
	chan_t *a, *b, *c, *gone;
	chan_info_t i;
	uint64_t code;
	char msg[64], buf[64];
	bool ok;

	dur_init(&d, "always");
	CU_ASSERT_FATAL(dur_start(&d) == 0);
	CU_ASSERT_FATAL(dur_make(&d, "a", 8, &a) == CHAN_OK);
	CU_ASSERT_FATAL(dur_make(&d, "b", 3, &b) == CHAN_OK);
	CU_ASSERT_FATAL(dur_make(&d, "gone", 3, &gone) == CHAN_OK);
	CU_ASSERT_FATAL(chan_make(chan_background(), d.conn, "plain", 8, &c) == CHAN_OK);
	for (int k = 0; k < 6; k++) {
		snprintf(buf, sizeof buf, "a%d", k);
		send_str(a, buf);
	}
	expect_str(a, "a0");	/* received before the restart: never again */
	send_str(b, "b0");
	send_str(b, "b1");
	CU_ASSERT_EQUAL(chan_close_err(chan_background(), b, 42, "upstream failed"), CHAN_OK);
	send_str(gone, "x");
	CU_ASSERT_EQUAL(chan_delete(chan_background(), gone, NULL), CHAN_OK);
	send_str(c, "lost");
	chan_free(a);
	chan_free(b);
	chan_free(c);
	chan_free(gone);
	dur_stop(&d, false);

	CU_ASSERT_FATAL(dur_start(&d) == 0);
	CU_ASSERT(test_server_log_has(&d.srv, "journal-replayed"));
	CU_ASSERT_FATAL(chan_open(chan_background(), d.conn, "a", &a) == CHAN_OK);
	CU_ASSERT_EQUAL(chan_info(chan_background(), a, &i), CHAN_OK);
	CU_ASSERT(i.durable && i.cap == 8 && i.len == 5 && !i.closed);
	for (int k = 1; k < 6; k++) {
		snprintf(buf, sizeof buf, "a%d", k);
		expect_str(a, buf);
	}
	CU_ASSERT_EQUAL(dur_try_recv(a, buf, sizeof buf, &ok), 0);
	/* b: closed with its error, its values drained first, then the error */
	CU_ASSERT_FATAL(chan_open(chan_background(), d.conn, "b", &b) == CHAN_OK);
	CU_ASSERT_EQUAL(chan_info(chan_background(), b, &i), CHAN_OK);
	CU_ASSERT(i.closed && i.len == 2 && i.cap == 3);
	CU_ASSERT(i.has_close_error && i.close_code == 42);
	CU_ASSERT_STRING_EQUAL(i.close_message, "upstream failed");
	expect_str(b, "b0");
	expect_str(b, "b1");
	CU_ASSERT_EQUAL(dur_try_recv(b, buf, sizeof buf, &ok), 1);
	CU_ASSERT(!ok);
	CU_ASSERT(chan_err(b, &code, msg, sizeof msg) && code == 42);
	/* deleted and plain channels are not kept */
	CU_ASSERT_EQUAL(chan_open(chan_background(), d.conn, "gone", &gone), CHAN_ENOTFOUND);
	CU_ASSERT_EQUAL(chan_open(chan_background(), d.conn, "plain", &c), CHAN_ENOTFOUND);
	chan_free(a);
	chan_free(b);
	dur_free(&d);
}

/* What CLOSE, DELETE and MAKE answered is in the journal: a kill -9 right after keeps it. */
static void
test_kill_after_replies(void)
{
	struct dur d;
	chan_t *a, *b, *c;
	chan_info_t i;

	dur_init(&d, "always");
	CU_ASSERT_FATAL(dur_start(&d) == 0);
	CU_ASSERT_FATAL(dur_make(&d, "a", 2, &a) == CHAN_OK);
	CU_ASSERT_FATAL(dur_make(&d, "b", 2, &b) == CHAN_OK);
	send_str(a, "v");
	CU_ASSERT_EQUAL(chan_close_err(chan_background(), a, 3, "bye"), CHAN_OK);
	CU_ASSERT_EQUAL(chan_delete(chan_background(), b, NULL), CHAN_OK);
	CU_ASSERT_FATAL(dur_make(&d, "c", 5, &c) == CHAN_OK);
	chan_free(a);
	chan_free(b);
	chan_free(c);
	dur_stop(&d, true);
	CU_ASSERT_FATAL(dur_start(&d) == 0);
	CU_ASSERT_FATAL(chan_open(chan_background(), d.conn, "a", &a) == CHAN_OK);
	CU_ASSERT_EQUAL(chan_info(chan_background(), a, &i), CHAN_OK);
	CU_ASSERT(i.closed && i.has_close_error && i.close_code == 3 && i.len == 1);
	CU_ASSERT_EQUAL(chan_open(chan_background(), d.conn, "b", &b), CHAN_ENOTFOUND);
	CU_ASSERT_FATAL(chan_open(chan_background(), d.conn, "c", &c) == CHAN_OK);
	CU_ASSERT_EQUAL(chan_info(chan_background(), c, &i), CHAN_OK);
	CU_ASSERT(i.durable && i.cap == 5);
	chan_free(a);
	chan_free(c);
	dur_free(&d);
}

/* STATS' journal_syncs. */
static uint64_t
journal_syncs(struct dur *d)
{
	chan_stat_t *st;
	uint64_t v = UINT64_MAX;
	size_t n;

	CU_ASSERT_EQUAL_FATAL(chan_admin_stats(chan_background(), d->conn, &st, &n), CHAN_OK);
	for (size_t i = 0; i < n; i++)
		if (strcmp(st[i].key, "journal_syncs") == 0)
			v = st[i].value;
	free(st);
	CU_ASSERT_FATAL(v != UINT64_MAX);
	return v;
}

/*
 * The commit rule, whichever thread commits: when a SEND's OK is back, its
 * record is in the segment file (its size grew by the record), and with
 * fsync = always an fdatasync ran after it (the journal's own count).
 * idle: connections dialed beside the test's (past 4, a worker commits).
 */
static void
commit_rule(const char *fsync, int idle)
{
	struct dur d;
	chan_t *ch;
	chan_conn_t *others[8];
	char path[4096], buf[16];
	struct stat st;
	off_t size;
	uint64_t syncs;

	dur_init(&d, fsync);
	CU_ASSERT_FATAL(dur_start(&d) == 0);
	for (int i = 0; i < idle; i++)
		CU_ASSERT_FATAL(chan_dial(chan_background(), d.addr, NULL, &others[i]) == CHAN_OK);
	CU_ASSERT_FATAL(dur_make(&d, "w", 1000, &ch) == CHAN_OK);
	CU_ASSERT_FATAL(dur_segment(&d, true, path, sizeof path));
	CU_ASSERT_FATAL(stat(path, &st) == 0);
	size = st.st_size;
	syncs = journal_syncs(&d);
	for (int k = 0; k < 50; k++) {
		snprintf(buf, sizeof buf, "v%03d", k);
		send_str(ch, buf);
		CU_ASSERT_FATAL(stat(path, &st) == 0);
		/* a PUSH: header 9, name length 2, the name, the value's msgpack (bin8: 2 + 4) */
		CU_ASSERT_EQUAL(st.st_size, size + 9 + 2 + 1 + 6);
		size = st.st_size;
		if (strcmp(fsync, "always") == 0) {
			uint64_t now = journal_syncs(&d);

			CU_ASSERT(now > syncs);
			syncs = now;
		}
	}
	chan_free(ch);
	for (int i = 0; i < idle; i++)
		chan_conn_close(others[i]);
	dur_free(&d);
}

static void
test_commit_rule_always(void)
{
	commit_rule("always", 0);
	commit_rule("always", 5);
}

static void
test_commit_rule_everysec(void)
{
	commit_rule("everysec", 0);
}

/* A STREAM's values from a durable channel leave it for good: a kill -9 does not bring them back. */
static void
test_stream_values(void)
{
	struct dur d;
	chan_stream_t *st;
	chan_value_t v;
	chan_t *ch;
	char buf[32], want[32];
	bool ok;

	dur_init(&d, "always");
	CU_ASSERT_FATAL(dur_start(&d) == 0);
	CU_ASSERT_FATAL(dur_make(&d, "s", 16, &ch) == CHAN_OK);
	for (int k = 0; k < 10; k++) {
		snprintf(buf, sizeof buf, "s%d", k);
		send_str(ch, buf);
	}
	CU_ASSERT_FATAL(chan_stream_open(chan_background(), &ch, 1, 4, &st) == CHAN_OK);
	for (int k = 0; k < 4; k++) {
		snprintf(want, sizeof want, "s%d", k);
		CU_ASSERT_EQUAL_FATAL(chan_stream_recv(st, &v, &ok, NULL), CHAN_OK);
		CU_ASSERT(ok && v.len == strlen(want) && memcmp(v.data, want, v.len) == 0);
		chan_value_clear(&v);
	}
	chan_free(ch);
	dur_stop(&d, true);	/* the stream and its connection die with chand */
	chan_stream_free(st);
	CU_ASSERT_FATAL(dur_start(&d) == 0);
	CU_ASSERT_FATAL(chan_open(chan_background(), d.conn, "s", &ch) == CHAN_OK);
	for (int k = 4; k < 10; k++) {
		snprintf(want, sizeof want, "s%d", k);
		expect_str(ch, want);
	}
	CU_ASSERT_EQUAL(dur_try_recv(ch, buf, sizeof buf, &ok), 0);
	chan_free(ch);
	dur_free(&d);
}

/* Walk d's last segment: the offset of its last record, and the file's size. */
static void
last_record(const char *path, off_t *start, off_t *size)
{
	uint8_t hdr[9];
	uint32_t len;
	off_t off = 28;	/* the segment header (docs/JOURNAL.md) */
	int fd = open(path, O_RDONLY);
	struct stat st;

	CU_ASSERT_FATAL(fd >= 0 && fstat(fd, &st) == 0);
	*start = off;
	while (off + 9 <= st.st_size && pread(fd, hdr, 9, off) == 9) {
		memcpy(&len, hdr, 4);
		*start = off;
		off += 9 + (off_t)len;
	}
	*size = st.st_size;
	close(fd);
}

/* A value pushed last, cut at every byte of its record: chand starts with the others. */
static void
test_torn_tail(void)
{
	struct dur d;
	char seg[160], buf[64], want[64];
	uint8_t orig[512];
	off_t start, size, whole;
	size_t len;
	chan_t *ch;
	bool ok;
	int fd;

	dur_init(&d, "always");
	CU_ASSERT_FATAL(dur_start(&d) == 0);
	CU_ASSERT_FATAL(dur_make(&d, "t", 8, &ch) == CHAN_OK);
	send_str(ch, "first");
	send_str(ch, "second");
	send_str(ch, "torn");
	chan_free(ch);
	test_server_kill(&d.srv);	/* no SEAL or flush: the log as a crash leaves it */
	d.up = false;
	chan_conn_close(d.conn);
	d.conn = NULL;
	CU_ASSERT_FATAL(dur_last_segment(&d, seg, sizeof seg));
	last_record(seg, &start, &size);
	CU_ASSERT_FATAL(start > 28 && size > start + 9 && size <= (off_t)sizeof orig);
	whole = size;
	/* chand truncates what it drops: each cut starts again from the whole file */
	CU_ASSERT_FATAL((fd = open(seg, O_RDONLY)) >= 0);
	CU_ASSERT_FATAL(pread(fd, orig, (size_t)size, 0) == size);
	close(fd);
	for (off_t cut = whole - 1; cut >= start; cut--) {
		CU_ASSERT_FATAL((fd = open(seg, O_WRONLY | O_TRUNC)) >= 0);
		CU_ASSERT_FATAL(write(fd, orig, (size_t)cut) == cut);
		close(fd);
		CU_ASSERT_FATAL(dur_start(&d) == 0);
		if (cut > start) {
			snprintf(want, sizeof want, "offset=%lld", (long long)start);
			CU_ASSERT(test_server_await_log(&d.srv, "torn tail"));
			CU_ASSERT(test_server_log_has(&d.srv, want));
		}
		CU_ASSERT_FATAL(chan_open(chan_background(), d.conn, "t", &ch) == CHAN_OK);
		CU_ASSERT_EQUAL(chan_len(chan_background(), ch, &len), CHAN_OK);
		CU_ASSERT_EQUAL(len, 2);
		chan_free(ch);
		dur_stop(&d, true);
	}
	CU_ASSERT_FATAL(dur_start(&d) == 0);
	CU_ASSERT_FATAL(chan_open(chan_background(), d.conn, "t", &ch) == CHAN_OK);
	CU_ASSERT_EQUAL(dur_try_recv(ch, buf, sizeof buf, &ok), 1);
	CU_ASSERT_STRING_EQUAL(buf, "first");
	CU_ASSERT_EQUAL(dur_try_recv(ch, buf, sizeof buf, &ok), 1);
	CU_ASSERT_STRING_EQUAL(buf, "second");
	CU_ASSERT_EQUAL(dur_try_recv(ch, buf, sizeof buf, &ok), 0);
	chan_free(ch);
	dur_free(&d);
}

/* A bit flipped in a record before the tail: refused, naming the file; --repair starts. */
static void
test_corruption_refused_then_repair(void)
{
	const char *repair[] = { "--repair", NULL };
	struct dur d;
	char seg[160], out[4096], conf[200], cpath[200], buf[32];
	const char *args[] = { "-f", "-p", "0", "-c", cpath, NULL };
	uint8_t byte;
	chan_t *ch;
	size_t len;
	int fd;
	FILE *f;

	dur_init(&d, "always");
	CU_ASSERT_FATAL(dur_start(&d) == 0);
	CU_ASSERT_FATAL(dur_make(&d, "c", 64, &ch) == CHAN_OK);
	for (int k = 0; k < 40; k++) {
		snprintf(buf, sizeof buf, "value-%02d", k);
		send_str(ch, buf);
	}
	chan_free(ch);
	dur_stop(&d, false);
	CU_ASSERT_FATAL(dur_last_segment(&d, seg, sizeof seg));
	/* the middle of the file: a record with many after it */
	CU_ASSERT_FATAL((fd = open(seg, O_RDWR)) >= 0);
	CU_ASSERT_FATAL(pread(fd, &byte, 1, 400) == 1);
	byte ^= 0x10;
	CU_ASSERT_FATAL(pwrite(fd, &byte, 1, 400) == 1);
	close(fd);

	snprintf(cpath, sizeof cpath, "%s/chand.conf", d.dir);
	snprintf(conf, sizeof conf, "data_dir = %s\nport = 0\n", d.dir);
	CU_ASSERT_FATAL((f = fopen(cpath, "w")) != NULL);
	fputs(conf, f);
	fclose(f);
	CU_ASSERT_EQUAL(run_chand(args, out, sizeof out), 1);
	CU_ASSERT(strstr(out, strrchr(seg, '/') + 1) != NULL);
	CU_ASSERT(strstr(out, "offset") != NULL);
	unlink(cpath);

	CU_ASSERT_FATAL(dur_start_args(&d, repair) == 0);
	CU_ASSERT(test_server_await_log(&d.srv, "repair"));
	CU_ASSERT_FATAL(chan_open(chan_background(), d.conn, "c", &ch) == CHAN_OK);
	CU_ASSERT_EQUAL(chan_len(chan_background(), ch, &len), CHAN_OK);
	CU_ASSERT(len < 40);	/* the valid prefix: the values before the flipped bit */
	for (size_t k = 0; k < len; k++) {
		char want[32];
		bool ok;

		snprintf(want, sizeof want, "value-%02zu", k);
		CU_ASSERT_EQUAL(dur_try_recv(ch, buf, sizeof buf, &ok), 1);
		CU_ASSERT_STRING_EQUAL(buf, want);
	}
	chan_free(ch);
	dur_stop(&d, false);
	/* repaired: a plain start works again */
	CU_ASSERT_FATAL(dur_start(&d) == 0);
	dur_free(&d);
}

/* A 2 MiB tmpfs: STORAGE once it is full, plain channels fine, recovery once space is back. */
static void
test_disk_full(void)
{
	struct dur d;
	char ballast[128], val[1024], buf[64];
	chan_t *ch, *plain, *other;
	uint64_t acked = 0, k;
	int rc = CHAN_OK, fd;
	int64_t end;
	bool ok;

	dur_init(&d, "always");
	if (mount("tmpfs", d.dir, "tmpfs", 0, "size=2m") != 0) {
		printf("\n    skipped: cannot mount a tmpfs here (%s)\n", strerror(errno));
		dur_free(&d);
		return;
	}
	/* a megabyte to free later */
	snprintf(ballast, sizeof ballast, "%s/ballast", d.dir);
	CU_ASSERT_FATAL((fd = open(ballast, O_WRONLY | O_CREAT, 0600)) >= 0);
	memset(val, 'b', sizeof val);
	for (int i = 0; i < 1024; i++)
		CU_ASSERT_FATAL(write(fd, val, sizeof val) == (ssize_t)sizeof val);
	close(fd);
	CU_ASSERT_FATAL(dur_start(&d) == 0);
	CU_ASSERT_FATAL(dur_make(&d, "big", 100000, &ch) == CHAN_OK);
	CU_ASSERT_FATAL(chan_make(chan_background(), d.conn, "plain", 4, &plain) == CHAN_OK);
	for (k = 0; k < 4000 && (rc = chan_send(chan_background(), ch, val,
	    (size_t)snprintf(val, sizeof val, "%06" PRIu64 "%0900d", k, 0))) == CHAN_OK; k++)
		acked++;
	CU_ASSERT_EQUAL(rc, CHAN_ESTORAGE);
	CU_ASSERT(acked > 100);
	/* the next durable send fails at once; plain channels go on */
	CU_ASSERT_EQUAL(chan_send(chan_background(), ch, "x", 1), CHAN_ESTORAGE);
	CU_ASSERT_EQUAL(dur_make(&d, "new", 4, &other), CHAN_ESTORAGE);
	CU_ASSERT_EQUAL(chan_send(chan_background(), plain, "p", 1), CHAN_OK);
	CU_ASSERT_EQUAL(dur_try_recv(plain, buf, sizeof buf, &ok), 1);
	CU_ASSERT(test_server_log_has(&d.srv, "journal-failed"));
	/* space comes back: within the retry period (1 s) durable sends work again */
	CU_ASSERT(unlink(ballast) == 0);
	end = clock_now_ns() + 10 * NSEC_PER_SEC;
	while ((rc = chan_send(chan_background(), ch, "after", 5)) == CHAN_ESTORAGE &&
	    clock_now_ns() < end)
		usleep(20000);	/* polls the condition, bounded */
	CU_ASSERT_EQUAL(rc, CHAN_OK);
	CU_ASSERT(test_server_await_log(&d.srv, "journal-recovered"));
	chan_free(ch);
	chan_free(plain);
	dur_stop(&d, false);
	/* every acknowledged value survived, in order */
	CU_ASSERT_FATAL(dur_start(&d) == 0);
	CU_ASSERT_FATAL(chan_open(chan_background(), d.conn, "big", &ch) == CHAN_OK);
	for (k = 0; k < acked; k++) {
		char want[8];

		snprintf(want, sizeof want, "%06" PRIu64, k);
		CU_ASSERT_EQUAL_FATAL(dur_try_recv(ch, buf, sizeof buf, &ok), 1);
		CU_ASSERT_FATAL(strncmp(buf, want, 6) == 0);
	}
	chan_free(ch);
	dur_stop(&d, false);
	CU_ASSERT(umount(d.dir) == 0);
	dur_free(&d);
}

/* A log of mostly removed values is compacted, while it changes; the state survives. */
static void
test_compaction(void)
{
	struct dur d;
	chan_t *a, *b;
	chan_stat_t *st;
	uint64_t compactions = 0, code;
	char buf[64], want[64], msg[32];
	size_t n;
	bool ok;

	dur_init(&d, "always");
	d.extra = "journal_compact_min = 16K";
	CU_ASSERT_FATAL(dur_start(&d) == 0);
	CU_ASSERT_FATAL(dur_make(&d, "a", 100000, &a) == CHAN_OK);
	CU_ASSERT_FATAL(dur_make(&d, "b", 10, &b) == CHAN_OK);
	send_str(b, "b0");
	CU_ASSERT_EQUAL(chan_close_err(chan_background(), b, 9, "done"), CHAN_OK);
	/* 3,000 in, 2,900 out: the log is many times its live data, so compactions run meanwhile */
	for (int k = 0; k < 3000; k++) {
		snprintf(buf, sizeof buf, "a%05d", k);
		send_str(a, buf);
		if (k >= 100) {
			snprintf(want, sizeof want, "a%05d", k - 100);
			expect_str(a, want);
		}
	}
	CU_ASSERT_EQUAL_FATAL(chan_admin_stats(chan_background(), d.conn, &st, &n), CHAN_OK);
	for (size_t i = 0; i < n; i++)
		if (strcmp(st[i].key, "journal_compactions") == 0)
			compactions = st[i].value;
	free(st);
	CU_ASSERT(compactions >= 1);
	CU_ASSERT(test_server_log_has(&d.srv, "journal compacted"));
	chan_free(a);
	chan_free(b);
	dur_stop(&d, true);

	CU_ASSERT_FATAL(dur_start(&d) == 0);
	CU_ASSERT_FATAL(chan_open(chan_background(), d.conn, "a", &a) == CHAN_OK);
	for (int k = 2900; k < 3000; k++) {
		snprintf(want, sizeof want, "a%05d", k);
		expect_str(a, want);
	}
	CU_ASSERT_EQUAL(dur_try_recv(a, buf, sizeof buf, &ok), 0);
	CU_ASSERT_FATAL(chan_open(chan_background(), d.conn, "b", &b) == CHAN_OK);
	expect_str(b, "b0");
	CU_ASSERT_EQUAL(dur_try_recv(b, buf, sizeof buf, &ok), 1);
	CU_ASSERT(!ok && chan_err(b, &code, msg, sizeof msg) && code == 9);
	chan_free(a);
	chan_free(b);
	printf("\n    %" PRIu64 " compactions\n", compactions);
	dur_free(&d);
}

/*
 * A client pipelining durable sends faster than the disk: its replies are
 * held in order, reading pauses while they pass output_hwm, and every one
 * comes back OK, in order with the values in the channel.
 */
static void
test_pipelined_held(void)
{
	enum { N = 20000, WINDOW = 4096 };
	static chan_op_t *ops[WINDOW];
	struct dur d;
	chan_t *ch;
	char buf[32], want[32];
	int64_t t0;
	bool ok;
	int n;

	dur_init(&d, "always");
	d.extra = "output_hwm = 4096";
	CU_ASSERT_FATAL(dur_start(&d) == 0);
	CU_ASSERT_FATAL(dur_make(&d, "pipe", N, &ch) == CHAN_OK);
	t0 = clock_now_ns();
	for (int k = 0; k < N; k++) {
		if (k >= WINDOW)
			CU_ASSERT_EQUAL_FATAL(chan_op_wait(ops[k % WINDOW], NULL, NULL), CHAN_OK);
		n = snprintf(buf, sizeof buf, "p%05d", k);
		CU_ASSERT_EQUAL_FATAL(chan_send_async(chan_background(), ch, buf, (size_t)n,
		    &ops[k % WINDOW]), CHAN_OK);
	}
	for (int k = N - WINDOW; k < N; k++)
		CU_ASSERT_EQUAL_FATAL(chan_op_wait(ops[k % WINDOW], NULL, NULL), CHAN_OK);
	t0 = clock_now_ns() - t0;
	printf("\n    %d pipelined durable sends (fsync always): %.0f/s; reading paused for held "
	    "replies: %s\n", N, N / ((double)t0 / 1e9),
	    test_server_log_has(&d.srv, "action=pause-reading") ? "yes" : "no");
	for (int k = 0; k < N; k++) {
		snprintf(want, sizeof want, "p%05d", k);
		CU_ASSERT_EQUAL_FATAL(dur_try_recv(ch, buf, sizeof buf, &ok), 1);
		CU_ASSERT_STRING_EQUAL_FATAL(buf, want);
	}
	chan_free(ch);
	dur_free(&d);
}

/* chanctl make --durable, info and stats; the journal's metrics. */
static void
test_chanctl_stats_metrics(void)
{
	const char *make[] = { "make", "--durable", "m", "4", NULL };
	const char *info[] = { "--json", "info", "m", NULL };
	const char *stats[] = { "stats", NULL };
	const char *unbuf[] = { "make", "--durable", "u", NULL };
	static char out[1 << 16];
	struct dur d;
	int port;

	dur_init(&d, "always");
	d.extra = "metrics_listen = 127.0.0.1:0";
	CU_ASSERT_FATAL(dur_start(&d) == 0);
	setenv("CHAND_ADDR", d.addr, 1);
	CU_ASSERT_EQUAL(test_run("client/chanctl", make, out, sizeof out), 0);
	CU_ASSERT_EQUAL(test_run("client/chanctl", info, out, sizeof out), 0);
	CU_ASSERT(strstr(out, "\"durable\":true") != NULL && strstr(out, "\"journal_bytes\":") != NULL);
	CU_ASSERT_NOT_EQUAL(test_run("client/chanctl", unbuf, out, sizeof out), 0);
	CU_ASSERT_EQUAL(test_run("client/chanctl", stats, out, sizeof out), 0);
	CU_ASSERT(strstr(out, "journal_bytes") != NULL && strstr(out, "journal_max_fsync_us") != NULL &&
	    strstr(out, "journal_compactions") != NULL && strstr(out, "journal_channels   1") != NULL);
	unsetenv("CHAND_ADDR");
	CU_ASSERT_FATAL((port = metrics_port(&d.srv)) > 0);
	CU_ASSERT(scrape(port, out, sizeof out) > 0);
	CU_ASSERT(strstr(out, "\nchand_journal_bytes ") != NULL);
	CU_ASSERT(strstr(out, "\nchand_journal_fsync_max_seconds ") != NULL);
	CU_ASSERT(strstr(out, "\nchand_journal_failing 0") != NULL);
	CU_ASSERT(strstr(out, "\nchand_journal_channels 1") != NULL);
	dur_free(&d);
}

static void
register_suites(void)
{
	CU_pSuite s = test_suite("durable", NULL, NULL);

	test_add(s, "config keys data_dir and fsync", test_config_keys);
	test_add(s, "MAKE durable: rules, EXISTS, INFO, STORAGE without data_dir", test_make_rules);
	test_add(s, "restart keeps declarations, values in order, close errors", test_restart_keeps_state);
	test_add(s, "CLOSE, DELETE and MAKE replies survive a kill -9 right after", test_kill_after_replies);
	test_add(s, "a STREAM's values do not come back after a kill -9", test_stream_values);
	test_add(s, "torn tail at every byte of the last record", test_torn_tail);
	test_add(s, "corruption before the tail refused; --repair starts", test_corruption_refused_then_repair);
	test_add(s, "disk full: STORAGE, plain channels fine, recovery", test_disk_full);
	test_add(s, "chanctl make --durable, info, stats; metrics", test_chanctl_stats_metrics);
	test_add(s, "compaction while the channels change; restart after kill -9", test_compaction);
	test_add(s, "pipelined durable sends: replies held in order, backpressure", test_pipelined_held);
	test_add(s, "fsync always: a SEND's OK after its record is written and synced (loop, worker)",
	    test_commit_rule_always);
	test_add(s, "fsync everysec: a SEND's OK after its record is written", test_commit_rule_everysec);
}

int
main(int argc, char **argv)
{
	return test_main(argc, argv, register_suites);
}
