/*
 * budget.c: the waiter and value-byte budgets of pending requests.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <inttypes.h>

#include "budget.h"
#include "codec.h"
#include "conn.h"
#include "log.h"
#include "request.h"
#include "server.h"

/* Would used + n pass max? (max 0: no limit) */
static bool
over(uint64_t used, uint64_t n, uint64_t max)
{
	return max != 0 && (n > max || used > max - n);
}

static bool
refuse(struct conn *c, uint64_t id, const char *key, uint64_t max, const char *msg)
{
	log_warn("limit client=%" PRIu64 " peer=%s limit=%s value=%" PRIu64, c->id, c->peer, key, max);
	conn_reply_error(c, id, STATUS_LIMIT, msg);
	return false;
}

bool
budget_fits(const struct conn *c, uint64_t waiters, uint64_t bytes)
{
	const struct server *s = c->srv;
	const struct config *cfg = &s->cfg;

	return !over(c->waiters, waiters, cfg->max_waiters_per_connection) &&
	    !over(s->stats.waiters_held, waiters, cfg->max_waiters) &&
	    !over(c->held_bytes, bytes, cfg->max_held_bytes_per_connection) &&
	    !over(s->stats.held_bytes, bytes, cfg->max_held_bytes);
}

bool
budget_room(struct conn *c, uint64_t id, uint64_t waiters, uint64_t bytes)
{
	struct server *s = c->srv;
	const struct config *cfg = &s->cfg;

	if (over(c->waiters, waiters, cfg->max_waiters_per_connection))
		return refuse(c, id, "max_waiters_per_connection", cfg->max_waiters_per_connection,
		    "too many waiters for one connection (max_waiters_per_connection)");
	if (over(s->stats.waiters_held, waiters, cfg->max_waiters))
		return refuse(c, id, "max_waiters", cfg->max_waiters,
		    "too many waiters on the server (max_waiters)");
	if (over(c->held_bytes, bytes, cfg->max_held_bytes_per_connection))
		return refuse(c, id, "max_held_bytes_per_connection", cfg->max_held_bytes_per_connection,
		    "too many value bytes held for one connection (max_held_bytes_per_connection)");
	if (over(s->stats.held_bytes, bytes, cfg->max_held_bytes))
		return refuse(c, id, "max_held_bytes", cfg->max_held_bytes,
		    "too many value bytes held on the server (max_held_bytes)");
	return true;
}

void
budget_charge(struct request *r, uint64_t waiters, uint64_t bytes)
{
	struct conn *c = r->conn;

	r->waiters += waiters;
	r->bytes += bytes;
	c->waiters += waiters;
	c->held_bytes += bytes;
	c->srv->stats.waiters_held += waiters;
	c->srv->stats.held_bytes += bytes;
}

void
budget_release(struct request *r)
{
	struct conn *c = r->conn;

	c->waiters -= r->waiters;
	c->held_bytes -= r->bytes;
	c->srv->stats.waiters_held -= r->waiters;
	c->srv->stats.held_bytes -= r->bytes;
	r->waiters = r->bytes = 0;
}

uint64_t
budget_send_bytes(const struct proto_request *q)
{
	uint64_t n = 0;

	if (q->op == OP_SEND)
		return q->value.raw_len;
	for (uint32_t i = 0; q->op == OP_SELECT && i < q->ncases; i++)
		if (q->cases[i].dir)
			n += q->cases[i].value.raw_len;
	return n;
}

uint64_t
budget_link_waiters(const struct proto_request *q)
{
	uint64_t n;

	switch (q->op) {
	case OP_OR:
	case OP_FAN_IN:
		n = q->ncases;
		break;
	case OP_TEE:
	case OP_FAN_OUT:
		n = 2;		/* tee: both outputs; fan-out: a receive and a send at once */
		break;
	default:
		n = 1;
		break;
	}
	return n + (q->done != NULL);
}

uint64_t
budget_link_bytes(const struct server *s, const struct proto_request *q)
{
	uint64_t max = s->cfg.max_value, n = 0, big = 0;

	switch (q->op) {
	case OP_OR:
		return 0;	/* drops what it gets */
	case OP_TEE:
		return 3 * max;	/* the value and a copy for each output */
	case OP_FAN_OUT:
		return 2 * q->count * max;	/* each worker's input and result */
	case OP_REPEAT:
		/* its values, and a copy of one on its way to the output */
		for (uint32_t i = 0; i < q->ncases; i++) {
			n += q->cases[i].value.raw_len;
			if (q->cases[i].value.raw_len > big)
				big = q->cases[i].value.raw_len;
		}
		return n + big;
	default:
		return max;	/* the value in hand */
	}
}
