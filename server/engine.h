/*
 * engine.h: the channel engine. Named channels with Go's semantics
 * (runtime/chan.go, runtime/select.go): ring buffer, FIFO send and receive
 * queues of waiters, close-then-drain, handoff, and select with uniform
 * random choice among ready cases.
 *
 * The engine knows nothing of sockets, libevent or msgpack: it is driven by
 * calls and reports completions through callbacks, so it is unit-tested with
 * no network (tests/test_engine.c). Deadlines are the caller's business: the
 * caller arms a timer and calls engine_op_cancel(op, STATUS_DEADLINE_EXCEEDED).
 *
 * Thread-safety: none. One thread (the server's loop thread) owns an engine
 * and everything in it.
 *
 * Errors: functions that can fail return an enum status (common/status.h);
 * STATUS_OK is success.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef CHAND_ENGINE_H
#define CHAND_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"
#include "value.h"

struct engine;
struct chan;
struct engine_op;

/*
 * An anonymous channel's name: '~' and 32 hex digits (PROTOCOL.md §6); in a
 * cluster then '@' and its maker's node name, at most ENGINE_MAKER_MAX bytes
 * (§17), so that every node can tell where the channel lives.
 */
#define ENGINE_ANON_NAME_LEN	33
#define ENGINE_MAKER_MAX	64

struct engine_limits {
	uint64_t max_channels;		/* MAKE beyond this: STATUS_LIMIT */
	uint64_t max_buffered_bytes;	/* a send that would buffer past this: STATUS_LIMIT */
};

/* Create an engine; *out owns nothing yet. STATUS_LIMIT on allocation failure. */
int engine_new(struct engine **out, const struct engine_limits *limits);
/*
 * Free the engine, every channel and every buffered value. Every pending
 * operation must have completed or been cancelled first. Accepts NULL.
 */
void engine_free(struct engine *e);
/* Reseed select's random choice (tests use a fixed seed). */
void engine_seed(struct engine *e, uint64_t seed);
/* Replace the limits (config reload); never fails existing state. */
void engine_set_limits(struct engine *e, const struct engine_limits *limits);
/*
 * A cluster node's name, which every anonymous name made from now on ends
 * with ("@" node). STATUS_BAD_REQUEST when node is empty or longer than
 * ENGINE_MAKER_MAX bytes.
 */
int engine_set_maker(struct engine *e, const char *node);
/*
 * The maker node named by an anonymous name (a pointer into name, *len
 * bytes, not NUL-terminated), or NULL when name is not an anonymous name
 * that names one (a single node's, or not anonymous at all).
 */
const char *engine_anon_maker(const char *name, size_t name_len, size_t *len);

/* ---- channels ----------------------------------------------------------- */

/*
 * Make or open a channel. name == NULL makes an anonymous channel with a
 * fresh unique name: '~' and 32 lowercase hex digits, 128 bits from the
 * kernel's CSPRNG (getrandom(2)), so that the name is a capability nobody
 * can guess, then the maker's suffix if one is set (engine_set_maker).
 * Name validation (length, UTF-8, the reserved '~' prefix) is the
 * caller's job. An existing channel with the same cap is opened
 * (*created = false); a different cap is STATUS_EXISTS. STATUS_LIMIT past
 * max_channels, out of memory, or when the kernel gives no random bytes.
 * On success the caller owns one hold on *out (see engine_release); for a
 * named channel the hold only keeps the memory valid, it does not keep the
 * channel from DELETE.
 */
int engine_make(struct engine *e, const char *name, size_t name_len, uint32_t cap,
    struct chan **out, bool *created);
/* The live channel with this name, or NULL. No hold is taken. */
struct chan *engine_lookup(struct engine *e, const char *name, size_t name_len);
/*
 * Close: STATUS_CLOSED if closed already. Waiting receivers complete with
 * ok=false, waiting senders with STATUS_CLOSED; buffered values stay and are
 * drained first.
 */
int engine_close(struct engine *e, struct chan *ch);
/*
 * A close error (PROTOCOL.md §5 CLOSE): the application's code and message
 * (msg: len bytes, not NUL-terminated; checking it is the caller's job).
 * Immutable once made, and counted, so that one error can close many
 * channels (a link passes its input's on to its outputs) and a result can
 * carry it after its channel has gone.
 */
struct close_err {
	uint64_t code;
	uint32_t len;
	uint32_t refs;
	char msg[];
};
/* A new error with one reference (the caller's); NULL when out of memory. */
struct close_err *close_err_new(uint64_t code, const char *msg, size_t len);
void close_err_ref(struct close_err *err);
/* Drop a reference; the last one frees it. Accepts NULL. */
void close_err_unref(struct close_err *err);
/*
 * engine_close, with err (NULL: none) kept by the channel (it takes its own
 * reference): every receive that finds the channel closed and drained gets
 * it in engine_result.err, from then on.
 */
int engine_close_err(struct engine *e, struct chan *ch, struct close_err *err);
/*
 * Delete: unlink the name, complete every waiter on the channel with
 * STATUS_NOT_FOUND, discard the buffer (*discarded = values dropped, may be
 * NULL). The memory lives on while holds remain; operations on a deleted
 * channel get STATUS_NOT_FOUND.
 */
int engine_delete(struct engine *e, struct chan *ch, size_t *discarded);
/*
 * Holds: a connection that made or opened an anonymous channel holds it. An
 * anonymous channel is deleted when its last hold is released and nothing
 * waits on it (waiters hold implicitly). Releasing the last hold of a
 * deleted channel frees it.
 */
void engine_hold(struct chan *ch);
void engine_release(struct engine *e, struct chan *ch);

/* Name (not NUL-terminated; *len set), and the INFO numbers. */
const char *chan_name(const struct chan *ch, size_t *len);
uint32_t chan_len(const struct chan *ch);	/* values in the buffer */
uint32_t chan_cap(const struct chan *ch);
bool chan_closed(const struct chan *ch);
/* The error the channel was closed with, or NULL (open, or closed without one). */
struct close_err *chan_close_error(const struct chan *ch);
bool chan_deleted(const struct chan *ch);
bool chan_anonymous(const struct chan *ch);
uint32_t chan_nsenders(const struct chan *ch);	/* waiting send waiters */
uint32_t chan_nreceivers(const struct chan *ch);	/* waiting receive waiters */
uint64_t chan_buffered_bytes(const struct chan *ch);	/* payloads (value_size) */
uint32_t chan_nback(const struct chan *ch);	/* values given back (engine_requeue), outside cap */
uint32_t chan_lent(const struct chan *ch);	/* values lent (engine_lend) and not back or settled */
/*
 * Another module's per-channel data (delivery's options), stored and never
 * read by the engine; one malloc'd block, freed with the channel.
 */
void chan_set_ext(struct chan *ch, void *ext);
void *chan_ext(const struct chan *ch);

/*
 * Owners: the server records who created a channel (an opaque pointer the
 * engine never reads). When a channel with an owner leaves the name table
 * (DELETE, or the last hold of an anonymous channel), gone(owner, arg) is
 * called once, so that per-owner counts stay exact. engine_free does not
 * call it.
 */
void chan_set_owner(struct chan *ch, void *owner);
void *chan_owner(const struct chan *ch);
void engine_set_owner_hook(struct engine *e, void (*gone)(void *owner, void *arg), void *arg);

/*
 * Durable channels (durable.h): the engine reports every change of a
 * channel marked durable to one hook, and does nothing else with it, each
 * just after the change: a value buffered (ENGINE_PUSH, v the value, now
 * the tail), the head value leaving the buffer (ENGINE_POP, v the value
 * that left, a value given back included: to a receiver, a stream or a
 * link), its close (v NULL;
 * chan_close_error tells the error) and its delete (just before: the
 * buffer is still there), and a value given back (engine_requeue) that
 * joins the buffer, behind those given back before it (ENGINE_BACK; one
 * handed straight to a waiting receiver is not reported). Called in the
 * order of the changes, inside the
 * engine call that makes them: it must not call back into the engine.
 * Channels not marked cost one flag test.
 */
enum engine_change { ENGINE_PUSH, ENGINE_POP, ENGINE_CLOSE, ENGINE_DELETE, ENGINE_BACK };
typedef void engine_change_fn(void *arg, struct chan *ch, enum engine_change what,
    const struct value *v);
void engine_set_change_hook(struct engine *e, engine_change_fn *fn, void *arg);
void chan_set_durable(struct chan *ch);
bool chan_durable(const struct chan *ch);
/* Visit ch's buffered values, oldest first (given back ones first), without changing them. */
void chan_foreach_value(const struct chan *ch, void (*fn)(void *arg, const struct value *v),
    void *arg);

uint64_t engine_nchannels(const struct engine *e);
uint64_t engine_buffered_bytes(const struct engine *e);
uint64_t engine_buffered_values(const struct engine *e);
uint64_t engine_nwaiters(const struct engine *e);
uint64_t engine_nsend_waiters(const struct engine *e);	/* of engine_nwaiters, the send cases */
/* Visit every live channel; stop early when fn returns non-zero. */
void engine_foreach_chan(struct engine *e, int (*fn)(struct chan *, void *), void *arg);

/*
 * Lending, for at-least-once delivery (delivery.h); the engine only counts.
 * engine_lend: a value received from ch is held outside and may come back.
 * While any is lent, a closed and drained ch does not report ok=false:
 * its receivers wait. engine_requeue gives one back: straight to the first
 * waiting receiver, else ahead of every buffered value (outside cap, after
 * those given back before it); STATUS_NOT_FOUND (deleted) or STATUS_LIMIT
 * (out of memory) leave v the caller's and it still lent. engine_settle: a
 * lent value will not come back (acked, dead-lettered, dropped); the last
 * one on a closed, drained ch completes its receivers with ok=false.
 * Callbacks may run in requeue and settle.
 */
void engine_lend(struct chan *ch);
int engine_requeue(struct engine *e, struct chan *ch, struct value *v);
void engine_settle(struct engine *e, struct chan *ch);

/* ---- operations: send, receive and select are one thing ------------------ */

enum case_dir { CASE_RECV = 0, CASE_SEND = 1 };

struct engine_case {
	struct chan *ch;	/* NULL: never ready (Go's nil channel) */
	enum case_dir dir;
	struct value *value;	/* CASE_SEND: moved into the engine by engine_submit */
};

struct engine_result {
	int status;		/* enum status */
	int index;		/* the case that fired; -1 for default or no case */
	struct value *value;	/* a received value, now the caller's; NULL if none */
	bool ok;		/* receive: false when the channel was closed and drained */
	/*
	 * ok false: the channel's close error, or NULL. Borrowed: valid until
	 * done returns (for an immediate result, while the channel lives);
	 * close_err_ref it to keep it longer.
	 */
	struct close_err *err;
	struct chan *ch;	/* with value: the channel it came from (no hold taken) */
	/*
	 * ENGINE_CLAIM: the send case `index` is ready and did not fire: value
	 * is its own value, given back to the caller, ch its channel.
	 */
	bool claimed;
};

/*
 * done is called exactly once per pending operation, with the final result.
 * It may call back into the engine (submit, cancel, close...): the engine
 * only calls it once its own state is consistent.
 */
typedef void engine_done_fn(void *arg, struct engine_result *res);

#define ENGINE_WAIT 0x1		/* may block (wait budget > 0 or forever) */
#define ENGINE_DEFAULT 0x2	/* select has a default case */
/*
 * Send cases only report that they are ready (a cross-node select's, whose
 * home must grant the case before the value may leave, PROTOCOL.md §17):
 * a send case that finds a receiver or room completes the operation with
 * res.claimed, its value given back, delivered nowhere. Waiting, the first
 * such sender of a channel is reported the same way when a receiver comes
 * to wait on it or a receive frees a slot of its buffer (one per receiver
 * or slot); a receive takes a plain sender's value ahead of claiming ones.
 * Each claim reported reserves its receiver or slot against other claims
 * (not against plain senders) until it is settled: the caller sends the
 * value later (engine_unclaim, then a plain send) if its home grants it,
 * else calls engine_claim_next.
 */
#define ENGINE_CLAIM 0x4
/*
 * Without ENGINE_WAIT: when no case is ready but a receive case's channel
 * has a claiming sender waiting (ENGINE_CLAIM, PROTOCOL.md §17), the
 * operation waits after all, as if it had come to wait: that sender is
 * reported ready (a claim on this receiver), and if its home grants it,
 * its value comes here. The caller bounds that wait (engine_op_cancel).
 */
#define ENGINE_CLAIM_WAIT 0x8
/*
 * Poll the cases in the order given, not a random one: a cross-node
 * select's home shuffled all its cases before grouping them by owner, and
 * takes the fired group whose case comes first in that order, so the
 * choice among ready cases on several nodes is uniform (PROTOCOL.md §17).
 */
#define ENGINE_ORDERED 0x10
/*
 * A send case reported ready on ch (ENGINE_CLAIM) will not send: if ch can
 * still take a value (a receiver waits, or there is room), its next
 * claiming sender is reported ready instead. Callbacks may run.
 */
void engine_claim_next(struct engine *e, struct chan *ch);
/*
 * A claim reported ready on ch is settled: the receiver or slot it
 * reserved is free again (engine_claim_next does this first). Call it
 * just before the granted value's plain send.
 */
void engine_unclaim(struct chan *ch);
/*
 * A claim reported ready on ch is granted: v (the engine's from the call
 * on) is sent now, on the receiver or slot the claim reserved, without
 * waiting. Returns the send's status: OK, CLOSED, NOT_FOUND, LIMIT, or
 * DEADLINE_EXCEEDED when a plain sender took that receiver or slot since.
 * Callbacks may run.
 */
int engine_send_claimed(struct engine *e, struct chan *ch, struct value *v);

/*
 * Submit one operation: a single send or receive is a select of one case.
 * Cases are polled in a uniformly random order; the first ready case fires.
 * With none ready: ENGINE_DEFAULT completes with index -1; else without
 * ENGINE_WAIT it completes with STATUS_DEADLINE_EXCEEDED; else a waiter is
 * queued on every case, in the random order polled (Go's selectgo: two
 * cases on one channel come first equally often), and the operation is
 * pending.
 *
 * Returns 0 when the operation completed now (*now filled, done not called),
 * or 1 when it is pending (*pending set; done will be called). Every send
 * value is the engine's from the call on, whatever happens. Immediate
 * errors (closed channel on a send case: STATUS_CLOSED with its index;
 * deleted channel: STATUS_NOT_FOUND; buffer bytes limit: STATUS_LIMIT) are
 * completions with that status.
 */
int engine_submit(struct engine *e, const struct engine_case *cases, size_t ncases,
    unsigned flags, engine_done_fn *done, void *arg,
    struct engine_op **pending, struct engine_result *now);

/*
 * End a pending operation with status (DEADLINE_EXCEEDED, CANCELED,
 * SHUTTING_DOWN): every waiter is unlinked, done is called. The handle is
 * invalid afterwards, as it is after done has been called any other way.
 */
void engine_op_cancel(struct engine *e, struct engine_op *op, int status);

/*
 * Case index of a pending operation, submitted as a receive from a nil
 * channel (the caller would not let it receive yet: delivery's limits),
 * receives from ch from now on: at once if ch is ready (the operation
 * completes, done is called before this returns), else its waiter joins
 * ch's queue, behind those already there. No-op on an operation already
 * resolved.
 */
void engine_op_enable(struct engine *e, struct engine_op *op, size_t index, struct chan *ch);

/*
 * The cases of a pending operation, for admin listings: how many, and case
 * i's channel (NULL for a nil channel) and direction. Valid until done.
 */
size_t engine_op_ncases(const struct engine_op *op);
struct chan *engine_op_chan(const struct engine_op *op, size_t i, enum case_dir *dir);

/* ---- streams: many pending receives at once (engine_stream.c) ------------- */

/*
 * A stream holds `credit` pending receives over one or more channels, each
 * one exactly like a blocked receive (one channel) or a blocked select over
 * receive cases (several): queued FIFO among the channels' other receivers,
 * uniformly random among ready channels, a value handed to exactly one of
 * them. Each pending receive is a *unit*: an engine operation the stream
 * owns and reuses, so delivering a value and granting credit again
 * allocate nothing once the stream has had that much credit.
 *
 * A close is reported once per channel (a result with ok=false and the
 * channel's index), after which the stream no longer receives from that
 * channel, like Go's idiom of setting a closed select case to nil; units
 * that were queued on it stay queued on the others.
 *
 * Callbacks, run like done callbacks (from the outermost engine call, on a
 * consistent engine; they may call back into it):
 * - value(arg, res): one received value (res->value is now the caller's,
 *   res->ok true) or a close report (value NULL, ok false), res->index the
 *   channel's position; one call per unit of credit used.
 * - end(arg, status, index): exactly once, after every value already taken
 *   has gone to value(): STATUS_OK when every channel was closed and
 *   reported, STATUS_NOT_FOUND (index: the channel) when one was deleted,
 *   STATUS_DEADLINE_EXCEEDED for a stream started without ENGINE_WAIT, or
 *   the status given to engine_stream_end. The stream is freed after end
 *   returns: the handle is invalid from then on.
 */
struct engine_stream;
typedef void engine_stream_value_fn(void *arg, struct engine_result *res);
typedef void engine_stream_end_fn(void *arg, int status, int index);

/*
 * A stream over chans[0..n) (1 ≤ n; live channels, held by the stream until
 * it is freed), with no credit yet; no callback runs. `reserve` units are
 * allocated now (the expected credit). STATUS_LIMIT when out of memory.
 */
int engine_stream_new(struct engine *e, struct chan *const *chans, size_t n, uint32_t reserve,
    engine_stream_value_fn *value, engine_stream_end_fn *end, void *arg,
    struct engine_stream **out);
/*
 * Grant the first `credit` units. Values ready now are taken at once (in
 * FIFO and random-poll order, as `credit` receives one after the other);
 * the rest wait, with ENGINE_WAIT; without it the stream takes what is
 * ready and ends with STATUS_DEADLINE_EXCEEDED. Callbacks may run, end
 * included. STATUS_LIMIT (nothing granted) when out of memory.
 */
int engine_stream_start(struct engine *e, struct engine_stream *s, uint32_t credit,
    unsigned flags);
/*
 * Grant n more units, each queued behind the receivers already waiting.
 * STATUS_LIMIT (nothing granted) when out of memory. Callbacks may run.
 */
int engine_stream_credit(struct engine *e, struct engine_stream *s, uint32_t n);
/*
 * Limits per channel (delivery's, for ack channels): engine_stream_limit
 * makes channel i of a new stream (before its first credit) give nothing
 * until allowed; engine_stream_allow changes what it may still give by
 * delta (the result must not be negative). Each value a unit takes from
 * it counts one down; at 0 no unit receives from it (their waiters leave
 * its queue, the other channels flow); allowed again, the waiting units,
 * oldest first, take what it has ready and the rest queue on it, behind
 * its receivers. A close is reported as ever, once allowed. Callbacks may
 * run in engine_stream_allow.
 */
#define ENGINE_STREAM_ANY UINT32_MAX	/* a channel without a limit */
void engine_stream_limit(struct engine_stream *s, size_t i);
void engine_stream_allow(struct engine *e, struct engine_stream *s, size_t i, int64_t delta);
/* Units granted and not yet given to value(): the stream's credit. */
uint64_t engine_stream_outstanding(const struct engine_stream *s);
/*
 * End the stream with status (CANCELED, DEADLINE_EXCEEDED, SHUTTING_DOWN):
 * every waiting unit is withdrawn at once; values already taken still go to
 * value(), then end() runs. No-op on a stream already ending.
 */
void engine_stream_end(struct engine *e, struct engine_stream *s, int status);
/* For admin listings: the channels, i-th one NULL once its close was reported. */
size_t engine_stream_nchans(const struct engine_stream *s);
struct chan *engine_stream_chan(const struct engine_stream *s, size_t i);

#endif
