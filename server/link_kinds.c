/*
 * link_kinds.c: the one-slot links, each the notes' goroutine as a state
 * machine: or, or-done, tee, bridge, fan-in, repeat, take.
 *
 * The done channel, closing the outputs and answering the request are the
 * core's (link.c); a kind only says what to wait on next and what to do
 * with what it got.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "link_int.h"
#include "server.h"
#include "value.h"

enum { PH_RECV, PH_SEND, PH_SEND_BOTH, PH_INNER };

static int
init_none(struct link *l, const struct proto_request *q, const char **why)
{
	return STATUS_OK;
}

/* Out of memory in the middle of a link: stop it rather than drop a value silently. */
static void
stop_oom(struct link *l)
{
	link_stop(l, STATUS_LIMIT, "out of memory");
}

/* ---- or: the output closes as soon as any input fires -------------------------- */

static enum link_step
or_step(struct link *l, unsigned slot, struct engine_case *cases, size_t *n)
{
	if (l->finished)
		return STEP_END;
	/* one select over every input: no recursion, no limit but max_select_cases */
	for (size_t i = 0; i < l->nin; i++)
		link_case_recv(&cases[i], l->in[i]);
	*n = l->nin;
	return STEP_SUBMIT;
}

/* Like Go's `case <-ch:`, a value fires it as well as a close; the value is dropped. */
static void
or_result(struct link *l, unsigned slot, struct engine_result *res)
{
	if (!link_check(l, res))
		return;
	if (!res->ok)
		link_input_closed(l, res);
	value_free(res->value);
	l->finished = true;
}

const struct link_kind link_or = { OP_OR, 1, init_none, or_step, or_result, NULL };

/* ---- forwarding: or-done and take ------------------------------------------------- */

static enum link_step
fwd_step(struct link *l, unsigned slot, struct engine_case *cases, size_t *n)
{
	*n = 1;
	if (l->phase == PH_SEND) {
		link_case_send(cases, l->out[0], l->val);
		l->val = NULL;	/* the engine's now */
		return STEP_SUBMIT;
	}
	if (l->finished || (l->kind->op == OP_TAKE && l->count >= l->limit))
		return STEP_END;
	link_case_recv(cases, l->in[0]);
	return STEP_SUBMIT;
}

static void
fwd_result(struct link *l, unsigned slot, struct engine_result *res)
{
	if (!link_check(l, res))
		return;
	if (l->phase == PH_SEND) {
		l->sent++;
		l->count++;
		l->phase = PH_RECV;
	} else if (!res->ok) {
		link_input_closed(l, res);
		l->finished = true;	/* the input closed */
	} else {
		l->val = res->value;
		l->phase = PH_SEND;
	}
}

static int
take_init(struct link *l, const struct proto_request *q, const char **why)
{
	l->limit = q->count;
	return STATUS_OK;
}

const struct link_kind link_or_done = { OP_OR_DONE, 1, init_none, fwd_step, fwd_result, NULL };
const struct link_kind link_take = { OP_TAKE, 1, take_init, fwd_step, fwd_result, NULL };

/* ---- tee: each value to both outputs before the next is taken ----------------------- */

static enum link_step
tee_step(struct link *l, unsigned slot, struct engine_case *cases, size_t *n)
{
	struct value *a, *b;

	switch (l->phase) {
	case PH_SEND_BOTH:
		/* whichever output is ready first, as the notes' select with out1, out2 */
		a = link_value_dup(l->val);
		b = link_value_dup(l->val);
		if (a == NULL || b == NULL) {
			value_free(a);
			value_free(b);
			stop_oom(l);
			return STEP_IDLE;
		}
		link_case_send(&cases[0], l->out[0], a);
		link_case_send(&cases[1], l->out[1], b);
		*n = 2;
		return STEP_SUBMIT;
	case PH_SEND:
		link_case_send(cases, l->out[l->tee_left], l->val);
		l->val = NULL;
		*n = 1;
		return STEP_SUBMIT;
	default:
		if (l->finished)
			return STEP_END;
		link_case_recv(cases, l->in[0]);
		*n = 1;
		return STEP_SUBMIT;
	}
}

static void
tee_result(struct link *l, unsigned slot, struct engine_result *res)
{
	if (!link_check(l, res))
		return;
	switch (l->phase) {
	case PH_SEND_BOTH:
		l->sent++;
		l->tee_left = 1 - res->index;
		l->phase = PH_SEND;
		break;
	case PH_SEND:
		l->sent++;
		l->phase = PH_RECV;
		break;
	default:
		if (!res->ok) {
			link_input_closed(l, res);
			l->finished = true;
			break;
		}
		l->val = res->value;
		l->phase = PH_SEND_BOTH;
		break;
	}
}

const struct link_kind link_tee = { OP_TEE, 1, init_none, tee_step, tee_result, NULL };

/* ---- bridge: drain each channel named by the chan-of-chans in turn ---------------------- */

/* Errors are values (the notes' error handling): a bad reference goes down the output. */
static void
bridge_error(struct link *l, const char *msg)
{
	if ((l->val = link_error_value(msg)) == NULL) {
		stop_oom(l);
		return;
	}
	l->phase = PH_SEND;
}

static void
bridge_leave_inner(struct link *l)
{
	if (l->hook.unfollow != NULL)
		l->hook.unfollow(l->hook.arg, l->inner);
	engine_release(l->srv->engine, l->inner);
	l->inner = NULL;
	free(l->inner_name);
	l->inner_name = NULL;
	l->phase = PH_RECV;
}

/*
 * The channel followed closed: the bridge takes the next one. Closed with an
 * error, it says so down the output first, as an error value: the bridge goes
 * on, as for its other errors (only the chan-of-chans' error closes the output).
 */
static void
bridge_inner_closed(struct link *l, const struct close_err *err)
{
	char msg[PROTO_NAME_MAX + PROTO_CLOSE_MSG_MAX + 64];

	if (err == NULL) {
		bridge_leave_inner(l);
		return;
	}
	snprintf(msg, sizeof msg, "bridge: %.*s closed with error %" PRIu64 ": %.*s",
	    (int)l->inner_len, l->inner_name, err->code, (int)err->len, err->msg);
	bridge_leave_inner(l);
	bridge_error(l, msg);
}

/* The creator may not receive from the channel followed (any more): say so down the output. */
static void
bridge_denied(struct link *l, const char *msg)
{
	bridge_leave_inner(l);
	bridge_error(l, msg);
}

/* Each receive from the channel followed is checked: a reload applies from the next value. */
static bool
bridge_may_drain(struct link *l)
{
	char msg[320];

	if (link_may(l, RIGHT_RECV, l->inner_name, l->inner_len, msg, sizeof msg))
		return true;
	bridge_denied(l, msg);
	return false;
}

static enum link_step
bridge_step(struct link *l, unsigned slot, struct engine_case *cases, size_t *n)
{
	*n = 1;
	if (l->phase == PH_INNER && bridge_may_drain(l)) {
		link_case_recv(cases, l->inner);
		return STEP_SUBMIT;
	}
	if (l->stopped)
		return STEP_IDLE;
	if (l->phase == PH_SEND) {
		link_case_send(cases, l->out[0], l->val);
		l->val = NULL;
		return STEP_SUBMIT;
	}
	if (l->finished)
		return STEP_END;
	link_case_recv(cases, l->in[0]);
	return STEP_SUBMIT;
}

/* The channel name names, held in l->inner: this node's, or (a cluster) a stand-in for another's. */
static bool
bridge_find(struct link *l, const char *name, size_t len)
{
	if ((l->inner = engine_lookup(l->srv->engine, name, len)) != NULL)
		engine_hold(l->inner);
	else if (l->hook.follow != NULL)
		l->inner = l->hook.follow(l->hook.arg, name, len);
	return l->inner != NULL;
}

/*
 * A channel reference from the chan-of-chans: start draining it. The link
 * acts for its creator, so the creator's recv right on the channel is
 * checked first, as for a RECV (before the name is looked up, so that a
 * bridge cannot probe which names exist either).
 */
static void
bridge_follow(struct link *l, struct value *v)
{
	struct proto_value pv;
	const char *why;
	char msg[320];

	if (proto_value_parse(value_data(v), value_len(v), &pv, &why) != STATUS_OK ||
	    pv.kind != VALUE_CHANREF) {
		bridge_error(l, "bridge: a value of the channel of channels is not a channel reference");
	} else if (!link_may(l, RIGHT_RECV, (const char *)pv.data, pv.len, msg, sizeof msg)) {
		bridge_error(l, msg);
	} else if ((l->inner_name = malloc(pv.len ? pv.len : 1)) == NULL) {
		stop_oom(l);
	} else if (!bridge_find(l, (const char *)pv.data, pv.len)) {
		free(l->inner_name);
		l->inner_name = NULL;
		bridge_error(l, "bridge: a referenced channel does not exist");
	} else {
		memcpy(l->inner_name, pv.data, pv.len);
		l->inner_len = pv.len;
		l->phase = PH_INNER;
	}
	value_free(v);
}

static void
bridge_result(struct link *l, unsigned slot, struct engine_result *res)
{
	char msg[320];

	if (l->phase == PH_INNER && res->status == STATUS_NOT_FOUND) {
		bridge_leave_inner(l);
		bridge_error(l, "bridge: a referenced channel was deleted");
		return;
	}
	if (l->phase == PH_INNER && res->status == STATUS_PERMISSION_DENIED) {
		/* a reload took the right away while the bridge waited (link_rules_changed) */
		snprintf(msg, sizeof msg, "permission denied: recv on %.*s", (int)l->inner_len,
		    l->inner_name);
		bridge_denied(l, msg);
		return;
	}
	if (!link_check(l, res))
		return;
	switch (l->phase) {
	case PH_SEND:
		l->sent++;
		l->phase = l->inner ? PH_INNER : PH_RECV;
		break;
	case PH_INNER:
		if (!res->ok) {
			bridge_inner_closed(l, res->err);
			break;
		}
		l->val = res->value;
		l->phase = PH_SEND;
		break;
	default:
		if (!res->ok) {
			link_input_closed(l, res);
			l->finished = true;
		} else {
			bridge_follow(l, res->value);
		}
		break;
	}
}

const struct link_kind link_bridge = { OP_BRIDGE, 1, init_none, bridge_step, bridge_result, NULL };

/* ---- fan-in: one select over the inputs still open ---------------------------------- */

static int
fan_in_init(struct link *l, const struct proto_request *q, const char **why)
{
	if ((l->in_closed = calloc(l->nin, 1)) == NULL) {
		*why = "out of memory";
		return STATUS_LIMIT;
	}
	l->nopen = l->nin;
	return STATUS_OK;
}

static enum link_step
fan_in_step(struct link *l, unsigned slot, struct engine_case *cases, size_t *n)
{
	if (l->phase == PH_SEND) {
		link_case_send(cases, l->out[0], l->val);
		l->val = NULL;
		*n = 1;
		return STEP_SUBMIT;
	}
	if (l->nopen == 0)
		return STEP_END;
	/* a closed input becomes Go's nil channel: never ready */
	for (size_t i = 0; i < l->nin; i++)
		link_case_recv(&cases[i], l->in_closed[i] ? NULL : l->in[i]);
	*n = l->nin;
	return STEP_SUBMIT;
}

static void
fan_in_result(struct link *l, unsigned slot, struct engine_result *res)
{
	if (!link_check(l, res))
		return;
	if (l->phase == PH_SEND) {
		l->sent++;
		l->phase = PH_RECV;
	} else if (!res->ok) {
		link_input_closed(l, res);
		l->in_closed[res->index] = 1;
		l->nopen--;
	} else {
		l->val = res->value;
		l->phase = PH_SEND;
	}
}

const struct link_kind link_fan_in = { OP_FAN_IN, 1, fan_in_init, fan_in_step, fan_in_result, NULL };

/* ---- repeat: cycle the values into the output until stopped ---------------------------- */

static int
repeat_init(struct link *l, const struct proto_request *q, const char **why)
{
	*why = "out of memory";
	if ((l->values = calloc(q->ncases, sizeof *l->values)) == NULL)
		return STATUS_LIMIT;
	for (uint32_t i = 0; i < q->ncases; i++) {
		l->values[i] = value_new(q->cases[i].value.raw, q->cases[i].value.raw_len);
		if (l->values[i] == NULL)
			return STATUS_LIMIT;
		l->nvalues++;
	}
	return STATUS_OK;
}

static enum link_step
repeat_step(struct link *l, unsigned slot, struct engine_case *cases, size_t *n)
{
	struct value *v = link_value_dup(l->values[l->count % l->nvalues]);

	if (v == NULL) {
		stop_oom(l);
		return STEP_IDLE;
	}
	link_case_send(cases, l->out[0], v);
	*n = 1;
	return STEP_SUBMIT;
}

static void
repeat_result(struct link *l, unsigned slot, struct engine_result *res)
{
	if (!link_check(l, res))
		return;
	l->sent++;
	l->count++;
}

const struct link_kind link_repeat = { OP_REPEAT, 1, repeat_init, repeat_step, repeat_result, NULL };
