/*
 * stream.h: the STREAM and CREDIT operations (PROTOCOL.md §14), a
 * credit-based streaming receive: one request holds many pending receives
 * (engine.h, engine_stream_*), and each value it gets is an interim reply
 * on the request's id, written straight into the connection's output.
 *
 * The stream's request (request.h, REQUEST_STREAM) owns the engine stream
 * until the stream's end callback answers and recycles it; CANCEL, the
 * deadline, UNBLOCK, shutdown and the connection going away all end it
 * through request_cancel. Thread-safety: loop thread only.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef CHAND_STREAM_H
#define CHAND_STREAM_H

#include <stdbool.h>
#include <stdint.h>

struct conn;
struct proto_request;

/* STREAM: check rights, limits and channels, then start the stream (errors answered at once). */
void stream_request(struct conn *c, const struct proto_request *q);
/* CREDIT: grant more pending receives to one of c's streams; answers OK or the error. */
void stream_credit(struct conn *c, const struct proto_request *q);
/*
 * A STREAM over one ack channel with max_unacked (delivery.h) gets only the
 * credit there is room for; delivery calls this when there is room again:
 * the stream r gets what it is owed, as far as the room goes.
 */
struct request;
void stream_pay(struct request *r);
/*
 * A STREAM over several channels, one of them with a limit (gate w): does
 * it want more units there (fewer claimed than its credit)? stream_gate_fill
 * claims up to its credit plus extra, as far as there is room, and lets
 * the engine stream take that many; true when it claimed any (the request
 * may be gone after, its values taken at once).
 */
struct request_wait;
bool stream_gate_wants(const struct request_wait *w);
bool stream_gate_fill(struct request_wait *w, uint64_t extra);

#endif
