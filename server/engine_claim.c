/*
 * engine_claim.c: a cross-node select's send cases at their channel's
 * owner (ENGINE_CLAIM, PROTOCOL.md §17): when a claiming sender is
 * reported ready, the reservation of the receiver or slot it found, and
 * a receive that may not wait waiting for a claim (ENGINE_CLAIM_WAIT).
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include "chan.h"
#include "engine.h"
#include "engine_int.h"

/*
 * Can ch take one more claim: is there a receiver waiting or a free slot
 * that no claim reported ready before has reserved? A claim holds its
 * receiver or slot until it is settled, so that claiming senders polling
 * at once are not all granted one slot and all but one then refused.
 */
bool
claim_room(const struct chan *ch)
{
	return ch->claims < ch->nrecv + (ch->len < ch->cap ? ch->cap - ch->len : 0);
}

/*
 * ch can take a send now (a receiver waits or is being queued, or a slot
 * was freed): its first claiming sender (ENGINE_CLAIM), not one of op's
 * own, is reported ready. One at a time: one receiver or slot wakes one
 * claim, not every select waiting to send on ch.
 */
void
claim_first(struct engine *e, struct chan *ch, const struct engine_op *op)
{
	struct waiter *w;
	struct value *v;

	if (TAILQ_EMPTY(&ch->sendq) || !claim_room(ch))
		return;
	TAILQ_FOREACH(w, &ch->sendq, link)
		if (w->op != op)
			break;
	if (w == NULL || !w->op->claim)
		return;
	v = w->value;
	w->value = NULL;
	ch->claims++;
	op_finish(e, w->op, STATUS_OK, (int)w->index, v, true);
	w->op->res.claimed = true;
}

void
engine_unclaim(struct chan *ch)
{
	if (ch->claims > 0)
		ch->claims--;
}

int
engine_send_claimed(struct engine *e, struct chan *ch, struct value *v)
{
	struct engine_case c = { .ch = ch, .dir = CASE_SEND, .value = v };
	struct engine_result now;
	struct engine_op *op;

	engine_unclaim(ch);
	/* without ENGINE_WAIT it completes now */
	return engine_submit(e, &c, 1, 0, NULL, NULL, &op, &now) == 0 ? now.status : STATUS_LIMIT;
}

void
engine_claim_next(struct engine *e, struct chan *ch)
{
	engine_unclaim(ch);
	engine_enter(e);
	if (!chan_closed(ch) && !chan_deleted(ch) && (engine_first_receiver(e, ch) != NULL ||
	    ch->len < ch->cap))
		claim_first(e, ch, NULL);
	engine_leave(e);
}

/* Has a receive case's channel a claiming sender waiting (ENGINE_CLAIM_WAIT)? */
bool
claimers_wait(const struct engine_case *cases, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct waiter *w;

		if (cases[i].ch == NULL || cases[i].dir != CASE_RECV || chan_closed(cases[i].ch))
			continue;
		/* a plain sender would have been taken by the poll: the first is a claiming one */
		if ((w = chan_first_sender(cases[i].ch)) != NULL && w->op->claim)
			return true;
	}
	return false;
}
