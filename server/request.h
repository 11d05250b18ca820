/*
 * request.h: one client request that waits in the engine (SEND, RECV,
 * SELECT that could not complete at once): its id, its deadline timer and
 * its engine operation.
 *
 * A request is owned by its connection's pending table until it completes;
 * completion (by a match, the deadline, CANCEL, disconnect or shutdown)
 * always comes through the engine's done callback, which writes the reply
 * (unless the connection is going away) and recycles the record.
 * Thread-safety: loop thread only.
 */
#ifndef CHAND_REQUEST_H
#define CHAND_REQUEST_H

#include <stdbool.h>
#include <stdint.h>

#include <event2/event.h>
#include <event2/event_struct.h>

#include "engine.h"
#include "hmap.h"

struct conn;

struct request {
	struct hmap_node node;		/* in conn->pending, keyed by id */
	struct conn *conn;
	uint64_t id;
	uint64_t op;			/* OP_SEND, OP_RECV, OP_SELECT */
	struct engine_op *eop;
	struct event timer;		/* the deadline, when wait > 0 */
	bool timed;			/* timer armed */
	bool linked;			/* in conn->pending */
	int64_t start_ns;
	struct request *next_free;
};

/*
 * Run one operation for connection c: cases go to the engine (send values
 * move into it). If it completes at once the reply is written now;
 * otherwise the request waits, with a deadline when wait_us > 0.
 * Returns 0, or -1 when out of memory (the reply is then written as LIMIT).
 */
int request_run(struct conn *c, uint64_t id, uint64_t op, const struct engine_case *cases,
    size_t ncases, unsigned flags, int64_t wait_us);
/* The pending request of c with this id, or NULL. */
struct request *request_find(struct conn *c, uint64_t id);
/* End a pending request with status (CANCELED, SHUTTING_DOWN...). */
void request_cancel(struct request *r, int status);
/* Free the recycled records of a server (at exit). */
void request_free_pool(struct request **pool);

#endif
