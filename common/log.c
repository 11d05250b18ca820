/* SPDX-License-Identifier: BSD-2-Clause */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static const char *log_ident = "chand";
static _Atomic int log_level = LOG_LEVEL_INFO;
static enum log_target log_target = LOG_TARGET_STDERR;
static _Atomic int log_format = LOG_FORMAT_PLAIN;

static const char *const level_names[] = { "error", "warn", "info", "debug" };

void
log_init(const char *ident, enum log_level level, enum log_target target)
{
	log_ident = ident;
	log_level = level;
	log_target = target;
	if (target == LOG_TARGET_SYSLOG)
		openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

void
log_set_level(enum log_level level)
{
	log_level = level;
}

enum log_level
log_get_level(void)
{
	return log_level;
}

int
log_level_parse(const char *s)
{
	for (int i = 0; i <= LOG_LEVEL_DEBUG; i++)
		if (strcmp(s, level_names[i]) == 0)
			return i;
	return -1;
}

const char *
log_level_name(enum log_level level)
{
	return level <= LOG_LEVEL_DEBUG ? level_names[level] : "?";
}

void
log_set_format(enum log_format format)
{
	log_format = format;
}

bool
log_stderr_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (js == NULL || sscanf(js, "%llu:%llu", &dev, &ino) != 2 || fstat(STDERR_FILENO, &st) < 0)
		return false;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

int
log_format_parse(const char *s)
{
	if (strcmp(s, "plain") == 0)
		return LOG_FORMAT_PLAIN;
	if (strcmp(s, "journal") == 0)
		return LOG_FORMAT_JOURNAL;
	if (strcmp(s, "auto") == 0)
		return log_stderr_is_journal() ? LOG_FORMAT_JOURNAL : LOG_FORMAT_PLAIN;
	return -1;
}

void
log_msg(enum log_level level, const char *fmt, ...)
{
	static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
	char line[1024];
	int n = 0;
	va_list ap;

	if ((int)level > log_level)
		return;
	if (log_target == LOG_TARGET_STDERR && log_format == LOG_FORMAT_JOURNAL) {
		/* journalctl -p filters on this; the journal stamps the time */
		n = snprintf(line, sizeof line, "<%d>", prio[level]);
	} else if (log_target == LOG_TARGET_STDERR) {
		struct timespec ts;
		struct tm tm;

		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s %s ",
		    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		    ts.tv_nsec / 1000000, log_ident, level_names[level]);
	}
	va_start(ap, fmt);
	n += vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
	va_end(ap);
	if (n >= (int)sizeof line - 1)
		n = (int)sizeof line - 2;
	if (log_target == LOG_TARGET_SYSLOG) {
		syslog(prio[level], "%s", line);
		return;
	}
	line[n++] = '\n';
	/* one write per line so lines from threads never interleave */
	if (write(STDERR_FILENO, line, (size_t)n) < 0)
		return;
}
