/*
 * engine_close.c: the ends of a channel's receives: CLOSE (with or
 * without an error, PROTOCOL.md §5) and the values lent to ack-channel
 * receivers (§16) that may come back (engine_requeue) or not
 * (engine_settle). Both meet in close_receivers: a closed channel reports
 * ok=false, with its close error, only once it is drained and nothing
 * lent is outstanding. Same thread and rules as engine.c.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <stdlib.h>

#include "chan.h"
#include "engine.h"
#include "engine_int.h"
#include "value.h"

/*
 * Receivers wait only on an empty buffer: they all get ok=false and the
 * channel's close error (a stream's units but one only drop the channel),
 * unless a lent value may still come back to one of them.
 */
void
close_receivers(struct engine *e, struct chan *ch)
{
	struct engine_op *op;
	struct waiter *w;

	if (ch->lent > 0)
		return;
	while ((w = engine_first_receiver(e, ch)) != NULL) {
		if (w->op->stream != NULL) {
			stream_recv_closed(e, ch, w);
			continue;
		}
		op = w->op;
		op_finish(e, op, STATUS_OK, (int)w->index, NULL, false);
		op->res.err = ch->err;
	}
}

int
engine_close(struct engine *e, struct chan *ch)
{
	return engine_close_err(e, ch, NULL);
}

int
engine_close_err(struct engine *e, struct chan *ch, struct close_err *err)
{
	struct waiter *w;

	if (chan_deleted(ch))
		return STATUS_NOT_FOUND;
	if (chan_closed(ch))
		return STATUS_CLOSED;
	engine_enter(e);
	ch->flags |= CHAN_CLOSED;
	if ((ch->err = err) != NULL)
		close_err_ref(err);
	engine_changed(e, ch, ENGINE_CLOSE, NULL);
	close_receivers(e, ch);
	while ((w = chan_first_sender(ch)) != NULL)
		op_finish(e, w->op, STATUS_CLOSED, (int)w->index, NULL, false);
	engine_leave(e);
	return STATUS_OK;
}

void
engine_lend(struct chan *ch)
{
	ch->lent++;
}

int
engine_requeue(struct engine *e, struct chan *ch, struct value *v)
{
	struct waiter *w;

	if (chan_deleted(ch))
		return STATUS_NOT_FOUND;
	engine_enter(e);
	if ((w = engine_first_receiver(e, ch)) != NULL) {
		op_finish(e, w->op, STATUS_OK, (int)w->index, v, true);
	} else if (chan_back_push(ch, v) < 0) {
		engine_leave(e);
		return STATUS_LIMIT;
	} else {
		e->bytes += value_size(v);
		e->values++;
		engine_changed(e, ch, ENGINE_BACK, v);
	}
	ch->lent--;
	engine_leave(e);
	return STATUS_OK;
}

void
engine_settle(struct engine *e, struct chan *ch)
{
	ch->lent--;
	if (!chan_closed(ch) || chan_deleted(ch) || ch->len > 0 || ch->nback > 0)
		return;
	engine_enter(e);
	close_receivers(e, ch);
	engine_leave(e);
}
