/*
 * xlink.c: may a link run on this node, and does it reach other nodes (xlink.h)?
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <stdio.h>

#include "clock.h"
#include "cluster.h"
#include "status.h"
#include "xlink.h"

/* One channel of the link: STATUS_OK when a live node owns it (an anonymous one: made it). */
static int
check_one(struct cluster *cl, const char *what, const char *name, uint32_t len,
    struct xlink_found *f, char *why, size_t cap)
{
	const char *node, *addr;

	if (name == NULL)
		return STATUS_OK;
	f->names++;
	switch (cluster_owner(cl, name, len, &node, &addr)) {
	case CLUSTER_HERE:
		return STATUS_OK;
	case CLUSTER_THERE:
		if (addr[0] == '\0') {
			snprintf(why, cap, "the %s %.*s is owned by node %s, which is not live (its lease "
			    "is ending)", what, (int)len, name, node);
			return STATUS_UNAVAILABLE;
		}
		f->remote = true;
		return STATUS_OK;
	default:
		f->unknown = name;
		f->unknown_len = len;
		if (name[0] == '~')
			snprintf(why, cap, "no such %s %.*s: the node that made it is not live", what,
			    (int)len, name);
		else
			snprintf(why, cap, "no node owns the %s %.*s: in a cluster a link makes no named "
			    "channel; make it first on the node the link runs on", what, (int)len, name);
		return STATUS_NOT_FOUND;
	}
}

int
xlink_check(struct cluster *cl, const struct proto_request *q, struct xlink_found *f, char *why,
    size_t cap)
{
	int st = STATUS_OK;

	*f = (struct xlink_found){ 0 };
	if (!cluster_serving(cl, clock_now_ns())) {
		snprintf(why, cap, "this node is fenced: its etcd lease is not certain");
		return STATUS_UNAVAILABLE;
	}
	st = check_one(cl, "done channel", q->done, q->done_len, f, why, cap);
	if (q->op == OP_OR || q->op == OP_FAN_IN) {
		for (uint32_t i = 0; i < q->ncases && st == STATUS_OK; i++)
			st = check_one(cl, "input", q->cases[i].name, q->cases[i].name_len, f,
			    why, cap);
	} else if (q->op != OP_REPEAT && st == STATUS_OK) {
		st = check_one(cl, "input", q->name, q->name_len, f, why, cap);
	}
	for (uint32_t i = 0; i < q->nouts && st == STATUS_OK; i++)
		st = check_one(cl, "output", q->outs[i].name, q->outs[i].name_len, f,
		    why, cap);
	return st;
}
