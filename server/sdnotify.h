/*
 * sdnotify.h: chand under systemd: readiness and status notifications
 * (Type=notify), the watchdog, and socket activation.
 *
 * With libsystemd (--with-systemd) these call sd_notify and sd_listen_fds;
 * without it, the same two small protocols are spoken directly ($NOTIFY_SOCKET
 * datagrams, $LISTEN_FDS/$LISTEN_PID), so chand behaves the same either way.
 * Everything is a no-op when not run by systemd (no $NOTIFY_SOCKET).
 * Thread-safety: loop thread only.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef CHAND_SDNOTIFY_H
#define CHAND_SDNOTIFY_H

#include <stdint.h>

/* Send one notification, e.g. "READY=1\nSTATUS=listening". Errors are ignored: best effort. */
void sd_send(const char *state);
/* Send "STATUS=..." formatted. */
void sd_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The watchdog interval in µs when WatchdogSec= is set for us, else 0. */
uint64_t sd_watchdog_usec(void);
/*
 * Descriptors passed by socket activation: returns how many (starting at
 * fd 3), 0 when none. Activation counts only when $LISTEN_PID is our pid and
 * each of the $LISTEN_FDS descriptors is a listening stream socket (else a
 * warning is logged and chand listens as configured). Decided on the first
 * call and remembered; the environment is cleared so children don't inherit it.
 */
int sd_inherited_fds(void);

#endif
