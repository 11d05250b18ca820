/*
 * fuzz_metrics.c: libFuzzer harness for the /metrics HTTP server
 * (server/metrics_http.c): the request reader, the request-line and header
 * parser, the bearer token check and the replies. See tests/fuzz/README.md.
 *
 * metrics_http.c is included, so its static accept callback can be handed
 * one end of a socketpair as if the listener had accepted it (the listener
 * itself is a disabled one on an unconnected socket: it never accepts).
 * Each input is what a scraper sends; the harness writes it in chunks,
 * running the loop without blocking and draining the reply, closes its end
 * and runs the loop until the connection is freed. metrics_token is set
 * (the token "fuzz"), so the 401 and 200 paths are both reachable.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* in place of server/metrics_http.o: a static archive member is then never pulled in */
#include "metrics_http.c"

#include "config.h"

#define CHUNK 1024
#define CHECK(cond) do { if (!(cond)) __builtin_trap(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* sha256("fuzz") */
#define TOKEN_DIGEST "93850b707585e404e4951a3ddc1f05a34b3d4f5fc081d616f46d8a2e8f1c8e68"

static const char *const settings[][2] = {
	{ "listen", "" }, { "unix_socket", "/nonexistent/fuzz.sock" }, { "workers", "1" },
	{ "metrics_token", TOKEN_DIGEST }, { "shutdown_timeout", "0" },
};

static struct server *
server_make(void)
{
	struct config cfg;
	struct server *s = NULL;
	char *cause = NULL;

	CHECK(config_init(&cfg) == 0);
	for (size_t i = 0; i < sizeof settings / sizeof settings[0]; i++)
		CHECK(config_set(&cfg, settings[i][0], settings[i][1], "fuzz", &cause) == 0);
	CHECK(server_new(&s, &cfg, &cause) == 0);
	return s;
}

/* Read and drop the reply; false once the server closed its end. */
static bool
drain(int fd)
{
	char buf[4096];
	ssize_t n;

	while ((n = read(fd, buf, sizeof buf)) > 0)
		;
	return n != 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct server *s;
	struct metrics m = { 0 };
	int sv[2], lfd;
	size_t off = 0;

	if (s == NULL) {
		log_init("fuzz", LOG_LEVEL_ERROR, LOG_TARGET_STDERR);
		signal(SIGPIPE, SIG_IGN);
		s = server_make();
	}
	m.srv = s;
	TAILQ_INIT(&m.conns);
	m.fd_cap = UINT64_MAX;
	CHECK((lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) >= 0);
	CHECK((m.evl = evconnlistener_new(s->base, accept_cb, &m, LEV_OPT_DISABLED |
	    LEV_OPT_CLOSE_ON_FREE, 0, lfd)) != NULL);
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
	accept_cb(m.evl, sv[0], NULL, 0, &m);
	CHECK(m.nconns == 1);
	for (int spins = 0; off < size && spins < 1000 && m.nconns > 0; spins++) {
		ssize_t n = write(sv[1], data + off, size - off < CHUNK ? size - off : CHUNK);

		if (n > 0)
			off += (size_t)n;
		event_base_loop(s->base, EVLOOP_NONBLOCK);
		if (!drain(sv[1]))
			break;
	}
	for (int i = 0; i < 8 && m.nconns > 0; i++) {
		event_base_loop(s->base, EVLOOP_NONBLOCK);
		drain(sv[1]);
	}
	/* the scraper goes away: the connection is freed by its event callback */
	close(sv[1]);
	for (int i = 0; i < 100 && m.nconns > 0; i++)
		event_base_loop(s->base, EVLOOP_NONBLOCK);
	CHECK(m.nconns == 0);
	evconnlistener_free(m.evl);
	return 0;
}
