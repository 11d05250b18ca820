/*
 * fuzz_conn.c: libFuzzer harness for a whole connection of an in-process
 * chand (server/libchand): the frame reader, HELLO, every request handler,
 * pipelined frames, links, admin ops, and the teardown path. See
 * tests/fuzz/README.md.
 *
 * Each input is the byte stream a client sends. A fresh server (its own
 * event_base, small limits) takes one end of a socketpair as an accepted
 * connection; the harness writes the input into the other end in chunks,
 * running the loop without blocking between chunks and draining the
 * replies, then closes its end and runs the loop until the connection is
 * gone. The server is freed after each input, so LeakSanitizer sees any
 * leak, and ASan/UBSan any bad access, as a crash.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <ftw.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "conn.h"
#include "config.h"
#include "log.h"
#include "server.h"

#define CHUNK 4096
#define CHECK(cond) do { if (!(cond)) __builtin_trap(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const settings[][2] = {
	{ "listen", "" }, { "unix_socket", "/nonexistent/fuzz.sock" }, { "workers", "1" },
	{ "max_frame", "65536" }, { "max_value", "1024" }, { "max_cap", "64" },
	{ "max_select_cases", "16" }, { "max_pending", "64" }, { "max_channels", "256" },
	{ "max_buffered_bytes", "1M" }, { "output_hwm", "8K" }, { "shutdown_timeout", "0" },
	{ "max_waiters_per_connection", "256" }, { "max_waiters", "1024" },
	{ "max_held_bytes_per_connection", "6K" }, { "max_held_bytes", "16K" },
	{ "max_hello_frame", "512" }, { "max_input_buffer_bytes", "8K" },
	{ "max_output_bytes", "16K" },
};

/*
 * FUZZ_CONN_AUTH=1: the identity fz (HELLO's token "tok", as in the auth-*
 * seeds) with rules that allow some names and deny others, so the rights
 * checks of requests and links, owner_close and the per-identity limits
 * are fuzzed too.
 */
static const char *const auth_settings[][2] = {
	{ "token", "fz:1a7674eb4ee78df7e1ac439a93c3fa8e3c945784d4dec9fd8e3011738b2f1d62" },
	{ "allow", "fz a* send,recv,make,close,delete" }, { "allow", "fz in send,recv,make,close" },
	{ "allow", "fz b* recv,make" }, { "allow", "fz ~* send,recv,make,close" },
	{ "allow", "fz admin" }, { "owner_close", "yes" },
	{ "identity_max_pending", "48" }, { "identity_max_channels", "24" },
};

/*
 * FUZZ_CONN_DURABLE=1: a data_dir (a directory of its own, emptied after
 * every input, so each input starts from an empty journal), fsync no and
 * the smallest journal_compact_min, so that durable channels, their
 * journal records, compaction and the stop's last writes are fuzzed too.
 */
static char data_dir[64];

static int
remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	return ftw->level == 0 ? 0 : remove(path);
}

static void
remove_data_dir(void)
{
	rmdir(data_dir);
}

static struct server *
server_make(void)
{
	struct config cfg;
	struct server *s = NULL;
	char *cause = NULL;
	const char *auth = getenv("FUZZ_CONN_AUTH");

	CHECK(config_init(&cfg) == 0);
	for (size_t i = 0; i < sizeof settings / sizeof settings[0]; i++)
		CHECK(config_set(&cfg, settings[i][0], settings[i][1], "fuzz", &cause) == 0);
	for (size_t i = 0; auth && *auth == '1' && i < sizeof auth_settings / sizeof auth_settings[0]; i++)
		CHECK(config_set(&cfg, auth_settings[i][0], auth_settings[i][1], "fuzz", &cause) == 0);
	if (data_dir[0] != '\0') {
		CHECK(config_set(&cfg, "data_dir", data_dir, "fuzz", &cause) == 0);
		CHECK(config_set(&cfg, "fsync", "no", "fuzz", &cause) == 0);
		CHECK(config_set(&cfg, "journal_compact_min", "4096", "fuzz", &cause) == 0);
	}
	CHECK(server_new(&s, &cfg, &cause) == 0);
	return s;
}

/* Read and drop whatever the server wrote; false once it closed its end. */
static bool
drain(int fd)
{
	uint8_t buf[CHUNK];
	ssize_t n;

	while ((n = read(fd, buf, sizeof buf)) > 0)
		;
	return n != 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool init;
	struct server *s;
	int sv[2];
	size_t off = 0;

	if (!init) {
		const char *durable = getenv("FUZZ_CONN_DURABLE");

		log_init("fuzz", LOG_LEVEL_ERROR, LOG_TARGET_STDERR);
		signal(SIGPIPE, SIG_IGN);
		if (durable != NULL && *durable == '1') {
			snprintf(data_dir, sizeof data_dir, "/tmp/fuzz_conn.XXXXXX");
			CHECK(mkdtemp(data_dir) != NULL);
			atexit(remove_data_dir);
		}
		init = true;
	}
	s = server_make();
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
	CHECK(conn_accept(s, sv[0], "fuzz", false) == 0);
	/* pipelined: as much as the socket takes, then let the server run */
	for (int spins = 0; off < size && spins < 10000; spins++) {
		ssize_t n = write(sv[1], data + off, size - off < CHUNK ? size - off : CHUNK);

		if (n > 0)
			off += (size_t)n;
		event_base_loop(s->base, EVLOOP_NONBLOCK);
		if (!drain(sv[1]))
			break;
	}
	for (int i = 0; i < 8; i++) {
		event_base_loop(s->base, EVLOOP_NONBLOCK);
		drain(sv[1]);
	}
	/* the client goes away: one teardown path frees everything it had */
	close(sv[1]);
	for (int i = 0; i < 100 && !TAILQ_EMPTY(&s->conns); i++)
		event_base_loop(s->base, EVLOOP_NONBLOCK);
	server_free(s);
	if (data_dir[0] != '\0')
		CHECK(nftw(data_dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS) == 0);
	return 0;
}
