/*
 * durable.h: durable channels (issue 18, PROTOCOL.md §16, DESIGN.md §11):
 * the server's side of the journal (journal.h). It replays the journal
 * into the engine at start-up, appends every change of a durable channel
 * (the engine's change hook), commits once per event-loop turn on a worker
 * thread, and holds the replies that must wait for that commit.
 *
 * Group commit: the change hook only stages records in memory. At the end
 * of a loop turn (an event made active by the first record or held reply
 * of the turn, which runs after every callback ready in that pass) the
 * staged records go into the journal and are committed: one write, and
 * with fsync = always one fdatasync. With everysec and no the loop writes
 * them itself and the replies go out at once (the once-a-second sync is a
 * pool item); with always the loop writes and syncs itself while the
 * server has at most 4 connections (Redis's way: the hand-off costs more
 * than the sync blocks so few clients), else one pool item (pool.h) runs
 * the commit off the loop, and while it runs the loop goes on and stages
 * the next batch. The journal is touched by one thread at a time (the
 * loop between items, the worker during one). Batches are numbered: a
 * reply that must wait takes the number of the batch being staged
 * (durable_ticket) and is held in its connection's gate, with every reply
 * to that connection after it, so that replies keep their order; the gate
 * opens up to the last batch committed when its commit is done.
 *
 * Failure (ENOSPC, EIO): the journal keeps the records it could not write.
 * The replies held on the failed batches go out, but a SEND's OK becomes
 * STORAGE; until a retry (every second) succeeds, SENDs into durable
 * channels fail STORAGE at once (durable_failing), and receives go on.
 *
 * Ownership: the server owns its durable (s->durable, NULL without
 * data_dir); a connection's gate is freed with it (durable_gate_free).
 * Thread-safety: loop thread only, but for the pool item's work.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef CHAND_DURABLE_H
#define CHAND_DURABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct chan;
struct conn;
struct durable;
struct durable_gate;
struct proto_chan_info;
struct server;

struct durable_stats {
	uint64_t log_bytes;		/* the journal's segment files */
	uint64_t last_sync_ns, max_sync_ns;
	uint64_t syncs, errors, compactions;
	uint64_t channels;		/* durable channels now */
	bool failing;			/* the last commit failed: durable SENDs get STORAGE */
};

/*
 * Open s->cfg.data_dir's journal (repair: keep the valid prefix) and replay
 * it into s->engine, then hook the engine. Before the listeners open.
 * Returns 0, or -1 with a malloc'd *cause naming the file and offset.
 */
int durable_open(struct server *s, bool repair, struct durable **out, char **cause);
/* Shutdown: submit no more work to the pool (before pool_free). Accepts NULL. */
void durable_stop(struct durable *d);
/* Commit and sync what is staged, close the journal. After pool_free. Accepts NULL. */
void durable_free(struct durable *d);

/* ch was just made durable: mark it and stage its declaration. */
void durable_declare(struct durable *d, struct chan *ch);
/* The journal cannot be written now: durable SENDs fail STORAGE. */
bool durable_failing(const struct durable *d);
/*
 * Queue the reply just encoded in s->out to c: behind the commit of the
 * batch being staged when waits (send_ok: a SEND's OK, which becomes
 * STORAGE if that batch fails), else (a reply to c while its gate holds
 * one) only behind the replies held before it.
 */
void durable_hold(struct durable *d, struct conn *c, bool waits, bool send_ok);
/*
 * Records staged so far (a counter; d NULL: 0): a reply whose request
 * staged one (an ACK on a durable channel) is held (durable_hold) until
 * its batch is written.
 */
uint64_t durable_staged(const struct durable *d);
/* Does c have replies held? */
bool durable_gated(const struct conn *c);
/* c is being freed: drop its held replies. */
void durable_gate_free(struct conn *c);
void durable_stats(const struct durable *d, struct durable_stats *st);
/* INFO's durable and journal_bytes for a durable ch (d NULL or ch plain: nothing). */
void durable_chan_info(const struct durable *d, const struct chan *ch, struct proto_chan_info *i);

#endif
