/*
 * link_fanout.c: fan-out jobs. Read the input, apply a stage to each value
 * on the worker pool with up to `workers` values at once, send the results
 * to the output.
 *
 * Slot 0 receives, slot 1 sends. `inflight` counts values taken from the
 * input and not yet sent (or dropped by a filter stage); slot 0 receives
 * only while it is below `workers`, so a full output stops the job from
 * taking input: backpressure end to end, at most `workers` values held.
 * With `ordered`, results wait in a window of `workers` slots indexed by
 * sequence number and leave strictly in input order; the window cannot
 * overflow because a sequence number is taken only when inflight < workers.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <stdlib.h>

#include "link_int.h"
#include "pool.h"
#include "server.h"
#include "stage.h"
#include "value.h"

struct job_item {
	struct pool_item pi;		/* first: the pool hands this back */
	struct link *l;
	uint64_t seq;
	const struct stage *stage;
	size_t max_value;
	struct value *in;		/* read by the worker */
	struct value *out;		/* written by the worker; NULL: no result */
	int rc;				/* stage_apply's */
	struct job_item *next;		/* unordered: the ready list */
};

struct fanout {
	const struct stage *stage;
	unsigned workers;
	bool ordered;
	bool in_closed;
	unsigned inflight;
	uint64_t next_seq, emit_seq;
	struct job_item **window;	/* ordered: workers slots */
	struct job_item *ready, *ready_tail;	/* unordered: in finishing order */
};

static void
item_free(struct job_item *it)
{
	value_free(it->in);
	value_free(it->out);
	free(it);
}

static int
fanout_init(struct link *l, const struct proto_request *q, const char **why)
{
	struct server *s = l->srv;
	struct fanout *j;
	const struct stage *st = stages_find(s->stages, q->stage, q->stage_len);

	if (st == NULL) {
		*why = "no such stage";
		return STATUS_NOT_FOUND;
	}
	if (q->count > pool_size(s->pool)) {
		*why = "workers is larger than the worker pool";
		return STATUS_LIMIT;
	}
	*why = "out of memory";
	if ((j = calloc(1, sizeof *j)) == NULL)
		return STATUS_LIMIT;
	l->job = j;
	j->stage = st;
	j->workers = (unsigned)q->count;
	j->ordered = q->ordered;
	if (j->ordered && (j->window = calloc(j->workers, sizeof *j->window)) == NULL)
		return STATUS_LIMIT;
	return STATUS_OK;
}

static void
fanout_free(struct link *l)
{
	struct fanout *j = l->job;
	struct job_item *it;

	if (j == NULL)
		return;
	for (unsigned i = 0; j->window && i < j->workers; i++)
		if (j->window[i])
			item_free(j->window[i]);
	while ((it = j->ready) != NULL) {
		j->ready = it->next;
		item_free(it);
	}
	free(j->window);
	free(j);
}

/* ---- the pool side ---------------------------------------------------------------- */

/* Worker thread: sees only its item. */
static void
item_work(struct pool_item *pi)
{
	struct job_item *it = (struct job_item *)pi;

	it->rc = stage_apply(it->stage, value_data(it->in), value_len(it->in), it->max_value, &it->out);
}

/* Loop thread: file the result where slot 1 will find it. */
static void
item_done(struct pool_item *pi, bool ran)
{
	struct job_item *it = (struct job_item *)pi;
	struct link *l = it->l;
	struct fanout *j = l->job;

	if (!ran || l->stopped) {
		item_free(it);
	} else {
		if (it->rc < 0 && it->out == NULL)
			it->out = link_error_value("out of memory in the stage");
		value_free(it->in);
		it->in = NULL;
		if (j->ordered) {
			j->window[it->seq % j->workers] = it;
		} else {
			it->next = NULL;
			if (j->ready_tail)
				j->ready_tail->next = it;
			else
				j->ready = it;
			j->ready_tail = it;
		}
		link_pump(l);
	}
	link_unref(l);
}

static void
submit_item(struct link *l, struct value *v)
{
	struct fanout *j = l->job;
	struct job_item *it = calloc(1, sizeof *it);

	if (it == NULL) {
		value_free(v);
		link_stop(l, STATUS_LIMIT, "out of memory");
		return;
	}
	*it = (struct job_item){ .pi = { .work = item_work, .done = item_done }, .l = l,
	    .seq = j->next_seq, .stage = j->stage, .max_value = l->srv->cfg.max_value, .in = v };
	if (pool_submit(l->srv->pool, &it->pi) < 0) {
		item_free(it);
		link_stop(l, STATUS_LIMIT, "no worker thread could be started");
		return;
	}
	link_ref(l);
	j->next_seq++;
	j->inflight++;
}

/* ---- the slots ----------------------------------------------------------------------- */

/* The next result due out, taken off the window or list; NULL if none is ready. */
static struct job_item *
next_result(struct fanout *j)
{
	struct job_item *it;

	if (j->ordered) {
		if ((it = j->window[j->emit_seq % j->workers]) == NULL)
			return NULL;
		j->window[j->emit_seq % j->workers] = NULL;
		j->emit_seq++;
		return it;
	}
	if ((it = j->ready) != NULL && (j->ready = it->next) == NULL)
		j->ready_tail = NULL;
	return it;
}

static enum link_step
fanout_step(struct link *l, unsigned slot, struct engine_case *cases, size_t *n)
{
	struct fanout *j = l->job;
	struct job_item *it;
	struct value *v;

	*n = 1;
	if (slot == 0) {
		if (j->in_closed || j->inflight >= j->workers)
			return STEP_IDLE;
		link_case_recv(cases, l->in[0]);
		return STEP_SUBMIT;
	}
	while ((it = next_result(j)) != NULL) {
		v = it->out;
		it->out = NULL;
		item_free(it);
		if (v != NULL) {
			link_case_send(cases, l->out[0], v);
			return STEP_SUBMIT;
		}
		/* the stage filtered it out: room for one more input */
		j->inflight--;
		l->repump = true;
	}
	return j->in_closed && j->inflight == 0 ? STEP_END : STEP_IDLE;
}

static void
fanout_result(struct link *l, unsigned slot, struct engine_result *res)
{
	struct fanout *j = l->job;

	if (!link_check(l, res))
		return;
	if (slot == 1) {
		l->sent++;
		j->inflight--;
	} else if (!res->ok) {
		link_input_closed(l, res);
		j->in_closed = true;
		l->repump = true;	/* slot 1 may be idle with nothing left: it must see the end */
	} else {
		submit_item(l, res->value);
	}
}

const struct link_kind link_fan_out = {
	OP_FAN_OUT, 2, fanout_init, fanout_step, fanout_result, fanout_free,
};
