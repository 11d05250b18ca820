/*
 * main.c: chand's command line.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "server.h"

#define DEFAULT_CONFIG SYSCONFDIR "/chand.conf"

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: chand [-fv] [-c FILE] [-l ADDR] [-p PORT] [--set KEY=VALUE]...\n"
	    "             [--check-config] [--repair] [--port-file FILE] [--ready-fd FD]\n"
	    "\n"
	    "  -c, --config FILE   read FILE (default " DEFAULT_CONFIG " if it exists)\n"
	    "  -l, --listen ADDR   listen on ADDR (overrides 'listen')\n"
	    "  -p, --port PORT     TCP port, 0 picks a free one (overrides 'port')\n"
	    "      --set KEY=VALUE set any key of chand.conf(5), over the file and\n"
	    "                      on every SIGHUP; repeatable (--set max_connections=20000)\n"
	    "  -f, --foreground    stay in the foreground\n"
	    "  -v, --verbose       more logging (repeat for debug)\n"
	    "      --check-config  check the configuration and exit\n"
	    "      --repair        start from the valid part of a damaged journal (data_dir),\n"
	    "                      logging what is dropped\n"
	    "      --port-file F   write the bound TCP port to F\n"
	    "      --ready-fd FD   write the bound TCP port to FD once listening\n"
	    "      --version       print the version and exit\n"
	    "  -h, --help          print this help and exit\n");
}

struct options {
	const char *config;
	struct config_list overrides;	/* -l, -p, --set in their order, then -v */
	const char *port_file;
	int ready_fd;
	int verbose;
	bool foreground;
	bool check_only;
	bool repair;
};

static int
add_override(struct options *o, const char *key, const char *value, const char *origin)
{
	if (config_override(&o->overrides, key, value, origin) < 0) {
		fprintf(stderr, "chand: out of memory\n");
		return -1;
	}
	return 0;
}

/* --set KEY=VALUE: an override named --set:KEY. 0, or -1 (with a message) on error. */
static int
add_set(struct options *o, const char *arg)
{
	const char *eq = strchr(arg, '=');
	char key[128], origin[160];

	if (eq == NULL || eq == arg || eq - arg >= (int)sizeof key) {
		fprintf(stderr, "chand: --set: '%s' is not KEY=VALUE\n", arg);
		return -1;
	}
	snprintf(key, sizeof key, "%.*s", (int)(eq - arg), arg);
	snprintf(origin, sizeof origin, "--set:%s", key);
	return add_override(o, key, eq + 1, origin);
}

/* Returns 0 to go on, 1 to exit 0 (help, version), -1 on a usage error. */
static int
parse_args(int argc, char **argv, struct options *o)
{
	enum { OPT_CHECK = 256, OPT_PORT_FILE, OPT_READY_FD, OPT_VERSION, OPT_SET, OPT_REPAIR };
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "listen", required_argument, NULL, 'l' },
		{ "port", required_argument, NULL, 'p' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "check-config", no_argument, NULL, OPT_CHECK },
		{ "port-file", required_argument, NULL, OPT_PORT_FILE },
		{ "ready-fd", required_argument, NULL, OPT_READY_FD },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ "set", required_argument, NULL, OPT_SET },
		{ "repair", no_argument, NULL, OPT_REPAIR },
		{ NULL, 0, NULL, 0 },
	};
	char *end;
	int ch;

	memset(o, 0, sizeof *o);
	o->ready_fd = -1;
	while ((ch = getopt_long(argc, argv, "c:l:p:fvh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c': o->config = optarg; break;
		case 'l':
			if (add_override(o, "listen", optarg, "-l") < 0)
				return -1;
			break;
		case 'p':
			if (add_override(o, "port", optarg, "-p") < 0)
				return -1;
			break;
		case OPT_SET:
			if (add_set(o, optarg) < 0)
				return -1;
			break;
		case 'f': o->foreground = true; break;
		case 'v': o->verbose++; break;
		case 'h': usage(stdout); return 1;
		case OPT_CHECK: o->check_only = true; break;
		case OPT_REPAIR: o->repair = true; break;
		case OPT_PORT_FILE: o->port_file = optarg; break;
		case OPT_READY_FD:
			o->ready_fd = (int)strtol(optarg, &end, 10);
			if (*end != '\0' || o->ready_fd < 0) {
				fprintf(stderr, "chand: --ready-fd: '%s' is not a file descriptor\n", optarg);
				return -1;
			}
			break;
		case OPT_VERSION: printf("%s %s\n", PACKAGE_NAME, PACKAGE_VERSION); return 1;
		default: usage(stderr); return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "chand: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return -1;
	}
	if (o->verbose && add_override(o, "log_level", o->verbose > 1 ? "debug" : "info", "-v") < 0)
		return -1;
	return 0;
}

/* Defaults, then the file, then the flags; SIGHUP reads them the same way. */
static int
load_config(struct config *cfg, struct options *o, char **cause)
{
	if (o->config == NULL && access(DEFAULT_CONFIG, R_OK) == 0)
		o->config = DEFAULT_CONFIG;
	return config_read(cfg, o->config, &o->overrides, cause);
}

/* --check-config: parse, then build what start-up builds, binding nothing. */
static int
check_config(const struct options *o, const struct config *cfg)
{
	char *cause = NULL;

	/* quiet: a stage module's load line would read like a running server's */
	log_init("chand", LOG_LEVEL_ERROR, LOG_TARGET_STDERR);
	if (server_check_config(cfg, &cause) < 0) {
		fprintf(stderr, "chand: %s\n", cause ? cause : "out of memory");
		free(cause);
		return 1;
	}
	printf("chand: configuration %s is valid\n", o->config ? o->config : "(defaults)");
	return 0;
}

/* Each connection (/metrics ones too) needs a descriptor: raise the soft limit as far as allowed. */
static void
raise_fd_limit(uint64_t want)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= want + 64)
		return;
	rl.rlim_cur = want + 64 < rl.rlim_max ? want + 64 : rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur < want + 64)
		log_warn("fd-limit soft=%llu wanted=%llu note=\"max_connections may not be reachable\"",
		    (unsigned long long)rl.rlim_cur, (unsigned long long)want + 64);
}

int
main(int argc, char **argv)
{
	struct options o;
	struct config cfg;
	struct server *s = NULL;
	char *cause = NULL;
	int rc;

	if ((rc = parse_args(argc, argv, &o)) != 0) {
		config_list_free(&o.overrides);
		return rc > 0 ? 0 : 2;
	}
	if (load_config(&cfg, &o, &cause) < 0) {
		fprintf(stderr, "chand: %s\n", cause ? cause : "out of memory");
		free(cause);
		config_free(&cfg);
		config_list_free(&o.overrides);
		return 1;
	}
	if (o.check_only) {
		rc = check_config(&o, &cfg);
		config_free(&cfg);
		config_list_free(&o.overrides);
		return rc;
	}
	log_init("chand", (enum log_level)log_level_parse(cfg.log_level),
	    strcmp(cfg.log_target, "syslog") == 0 ? LOG_TARGET_SYSLOG : LOG_TARGET_STDERR);
	log_set_format((enum log_format)log_format_parse(cfg.log_format));
	cfg.repair = o.repair;
	raise_fd_limit(cfg.max_connections +
	    (cfg.metrics_listen[0] != '\0' ? cfg.metrics_max_connections : 0));
	if (server_new(&s, &cfg, &cause) < 0 || server_listen(s, o.port_file, o.ready_fd, &cause) < 0) {
		log_error("start-failed reason=\"%s\"", cause ? cause : "out of memory");
		fprintf(stderr, "chand: %s\n", cause ? cause : "out of memory");
		free(cause);
		config_free(&cfg);
		server_free(s);
		config_list_free(&o.overrides);
		return 1;
	}
	s->config_path = o.config;
	s->overrides = &o.overrides;
	/* libevent's backend must be re-made in the child after daemon's fork */
	if (!o.foreground && (daemon(0, 0) < 0 || event_reinit(s->base) < 0)) {
		log_error("daemon-failed reason=\"%s\"", strerror(errno));
		rc = 1;
	} else {
		rc = server_run(s);
	}
	server_free(s);
	config_list_free(&o.overrides);
	return rc;
}
