/*
 * dispatch.h: decode one request frame and run it (one handler per
 * operation, in one table). Every request gets exactly one reply, now or
 * when its pending operation completes. Loop thread only.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef CHAND_DISPATCH_H
#define CHAND_DISPATCH_H

#include <stddef.h>
#include <stdint.h>

struct conn;

/*
 * Handle one frame body from c. Never frees c; may start closing it.
 * now (may be NULL): the clock read that ended the previous request of the
 * same read, taken as this one's start (0: read it); set to this one's end,
 * or 0, so one reading per request times a run of frames.
 */
void dispatch_frame(struct conn *c, const uint8_t *body, size_t len, int64_t *now);

#endif
