/*
 * log.h: leveled logging to stderr or syslog.
 *
 * Messages are one line, structured as an event name followed by key=value
 * pairs, e.g. log_info("connect client=%u peer=%s", id, peer). Thread-safe:
 * each line is written with one write(2) (stderr) or syslog(3) call.
 *
 * On stderr a line is plain ("TIME IDENT LEVEL message") or, for systemd's
 * journal, "<N>message": N is the sd-daemon(3) priority (3 error, 4 warn,
 * 6 info, 7 debug), and the journal adds the time itself.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef CHAND_LOG_H
#define CHAND_LOG_H

#include <stdbool.h>

enum log_level { LOG_LEVEL_ERROR, LOG_LEVEL_WARN, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };
enum log_target { LOG_TARGET_STDERR, LOG_TARGET_SYSLOG };
enum log_format { LOG_FORMAT_PLAIN, LOG_FORMAT_JOURNAL };

/* ident names the program in syslog and on stderr. */
void log_init(const char *ident, enum log_level level, enum log_target target);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* "error", "warn", "info", "debug" -> level; -1 if none of them. */
int log_level_parse(const char *s);
const char *log_level_name(enum log_level level);
/* How stderr lines look (plain by default). */
void log_set_format(enum log_format format);
/*
 * Is stderr the journal? True when $JOURNAL_STREAM ("DEV:INO", set by
 * systemd) names stderr's device and inode, as sd_journal_stream_fd(3)
 * says to check: a program whose stderr was redirected is not.
 */
bool log_stderr_is_journal(void);
/* "plain", "journal", or "auto" (journal when log_stderr_is_journal) -> format; -1 if none. */
int log_format_parse(const char *s);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)

#endif
