/*
 * chan_internal.h: a channel handle's fields, for chan.c (which owns them)
 * and select.c (which reads a case's channel's name and connection). The
 * rest of libchanclient goes through chan_name, chan_conn and
 * chan_owner_conn.
 *
 * Thread-safety: conn, name and name_len are set once by chan.c when the
 * handle is made and only read after; the close error fields are read and
 * written under lock; route under the lock of conn's cluster (cluster.c).
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef CHAN_CHAN_INTERNAL_H
#define CHAN_CHAN_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chanclient.h"
#include "cluster.h"

struct chan {
	chan_conn_t *conn;		/* a reference */
	char *name;
	size_t name_len;
	pthread_mutex_t lock;		/* the close error below, the one mutable part */
	bool err_set;			/* the last ok=false receive found a close error */
	uint64_t err_code;
	char *err_msg;			/* malloc'd, NUL-terminated */
	struct cluster_route route;	/* on a front: the owner found last */
};

/*
 * The connection requests about ch's values go to (a reference, the
 * caller's): ch's own, or on a front its owner's node (cluster_conn_for).
 */
int chan_owner_conn(chan_ctx_t *ctx, chan_t *ch, chan_conn_t **out);

#endif
