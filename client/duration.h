/*
 * duration.h: Go-style durations for chanctl's -t: "500ms", "2s", "1m30s",
 * "1.5h"; units ns, us (or µs), ms, s, m, h. Stateless, thread-safe.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef CHANCTL_DURATION_H
#define CHANCTL_DURATION_H

#include <stdint.h>

/* Parse s into nanoseconds. Returns 0, or -1 if s is not a duration or overflows. */
int parse_duration(const char *s, int64_t *ns);

#endif
