/*
 * fuzz_config.c: libFuzzer harness for the configuration file parser
 * (server/config.c: config_load, its line parser, quotes and comments, the
 * value parsers and the key checks), and for config_split_hostport on every
 * address key the file set. See tests/fuzz/README.md.
 *
 * Each input is a whole chand.conf, read from a memfd through /proc/self/fd.
 * config_check is not called: it resolves host names. A config_load that
 * fails must say why; either way config_free must leave nothing behind.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "server.h"	/* for server/config.h: from here "config.h" is autoconf's */

#define CHECK(cond) do { if (!(cond)) __builtin_trap(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_hostport(const char *hp)
{
	char host[256];
	uint16_t port;

	if (config_split_hostport(hp, host, sizeof host, &port) == 0)
		CHECK(host[0] != '\0' && strlen(host) < sizeof host);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int fd = -1;
	static char path[64];
	struct config c;
	char *cause = NULL;
	int rc;

	if (fd < 0) {
		CHECK((fd = memfd_create("fuzz.conf", MFD_CLOEXEC)) >= 0);
		snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	}
	CHECK(ftruncate(fd, 0) == 0);
	CHECK(pwrite(fd, data, size, 0) == (ssize_t)size);
	CHECK(config_init(&c) == 0);
	rc = config_load(&c, path, &cause);
	CHECK(rc == 0 || rc == -1);
	CHECK((rc == 0) == (cause == NULL));
	if (rc == 0) {
		check_hostport(c.metrics_listen);
		check_hostport(c.tls_listen);
		CHECK(strcmp(config_origin(&c, "listen"), "") != 0);
	}
	free(cause);
	config_free(&c);
	return 0;
}
