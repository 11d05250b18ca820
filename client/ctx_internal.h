/*
 * ctx_internal.h: what the rest of libchanclient needs from contexts.
 *
 * A pending call watches its context: when the context becomes done the
 * watch's callback runs (under the global context lock, so the callback
 * must only take locks that are never held while taking the context lock:
 * a connection's lock is fine, the context lock is not).
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef CHAN_CTX_INTERNAL_H
#define CHAN_CTX_INTERNAL_H

#include <stdint.h>

#include "chanclient.h"

struct ctx_watch {
	struct ctx_watch *prev, *next;
	void (*fn)(struct ctx_watch *w, int err);
	void *arg;
};

/*
 * Start watching ctx. Returns 0 (w is linked; unwatch it later), or the
 * context's error when it is already done (w is not linked).
 */
int ctx_watch(chan_ctx_t *ctx, struct ctx_watch *w);
/* Stop watching; after it returns, w's callback is not running and never will. */
void ctx_unwatch(chan_ctx_t *ctx, struct ctx_watch *w);
/*
 * chan_ctx_err with the clock already read (now: chan_now(), or 0 to read
 * it here if the deadline needs it), for a caller that also computes the
 * budget left from the same reading.
 */
int ctx_err_at(chan_ctx_t *ctx, int64_t now);
/* The effective deadline (ns, chan_now clock), or 0 for none. */
int64_t ctx_deadline_ns(chan_ctx_t *ctx);
/* Take a reference (released with chan_ctx_free); background: a no-op. */
void ctx_ref(chan_ctx_t *ctx);
/* ctx or chan_background() when NULL. */
chan_ctx_t *ctx_or_background(chan_ctx_t *ctx);

#endif
