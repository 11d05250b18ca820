/*
 * budget.h: what pending requests may cost (PROTOCOL.md §8), so that no
 * request, no connection and no crowd of connections can make chand hold
 * more memory than its configuration allows, whatever the multipliers:
 *
 * - waiters (max_waiters_per_connection, max_waiters): SEND and RECV 1, a
 *   SELECT its cases, a STREAM its channels × the most credit it has had at
 *   once (its units are kept for reuse), a link the most waiters it queues
 *   at once (the inputs of OR and FAN_IN, 2 for TEE and FAN_OUT, else 1),
 *   plus 1 for a done channel;
 * - value bytes (max_held_bytes_per_connection, max_held_bytes): the values
 *   a request holds while it waits: its send values, REPEAT's values, and
 *   max_value for each value another link may hold at once.
 *
 * A request's cost is checked before anything of it exists (budget_room),
 * charged to its record (struct request) once it is pending, and given back
 * in one place, request_unpark, however it ends. Thread-safety: loop
 * thread only.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef CHAND_BUDGET_H
#define CHAND_BUDGET_H

#include <stdbool.h>
#include <stdint.h>

struct conn;
struct proto_request;
struct request;
struct server;

/*
 * Room on c and on the server for waiters and bytes more? When not, the
 * request id is answered [id, LIMIT, msg] naming the key, the hit is logged
 * (`limit ... limit=KEY`), and false is returned.
 */
bool budget_room(struct conn *c, uint64_t id, uint64_t waiters, uint64_t bytes);
/* The same question, with no reply and no log line. */
bool budget_fits(const struct conn *c, uint64_t waiters, uint64_t bytes);
/* r (pending on its connection) holds waiters and bytes more. */
void budget_charge(struct request *r, uint64_t waiters, uint64_t bytes);
/* r has ended: give back everything charged to it. */
void budget_release(struct request *r);

/* The value bytes of q's send cases (SEND, SELECT). */
uint64_t budget_send_bytes(const struct proto_request *q);
/* A link request's cost (see above). */
uint64_t budget_link_waiters(const struct proto_request *q);
uint64_t budget_link_bytes(const struct server *s, const struct proto_request *q);

#endif
