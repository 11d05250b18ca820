/*
 * log.h: leveled logging to stderr or syslog.
 *
 * Messages are one line, structured as an event name followed by key=value
 * pairs, e.g. log_info("connect client=%u peer=%s", id, peer). Thread-safe:
 * each line is written with one write(2) (stderr) or syslog(3) call.
 */
#ifndef CHAND_LOG_H
#define CHAND_LOG_H

enum log_level { LOG_LEVEL_ERROR, LOG_LEVEL_WARN, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };
enum log_target { LOG_TARGET_STDERR, LOG_TARGET_SYSLOG };

/* ident names the program in syslog and on stderr. */
void log_init(const char *ident, enum log_level level, enum log_target target);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* "error", "warn", "info", "debug" -> level; -1 if none of them. */
int log_level_parse(const char *s);
const char *log_level_name(enum log_level level);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)

#endif
