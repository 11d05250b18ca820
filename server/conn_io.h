/*
 * conn_io.h: the transport under a connection (conn.c): how its bytes are
 * read and written, for plain sockets (TCP, unix) and for TLS.
 *
 * Sockets use two raw events, an evbuffer for input that is not yet a
 * whole frame and a byte run for unsent output: reads go straight to recv
 * (under TLS, to the session, which reads the socket itself), and replies
 * are written once per loop iteration, after every ready callback ran (see
 * conn_io.c); under TLS they become records just before, a few records
 * for all of them (tls_session.h). The node's in-process connection to
 * itself is a bufferevent_pair's half. conn.c sees one interface for all.
 *
 * Ownership: the transport belongs to its conn; io_close frees it and
 * closes the socket. The calls back into conn.c are conn_input (or
 * conn_input_bytes) then conn_input_done after each read, conn_wrote,
 * conn_io_failed and conn_tls_ready (conn.h); conn_io_failed
 * and conn_wrote may free the conn. Thread-safety: loop thread only.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef CHAND_CONN_IO_H
#define CHAND_CONN_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bufferevent;
struct conn;
struct evbuffer;
struct server;

/* Bytes to write: p[off, len) is unsent; p is NULL once all is written. */
struct io_run {
	uint8_t *p;
	size_t off, len, cap;
};

/* The server's pending-write list and its flush event. -1 when out of memory. */
int io_server_init(struct server *s);
void io_server_free(struct server *s);

/* Take over fd for c (c->srv set). Returns 0, or -1 with fd closed. */
int io_open(struct conn *c, int fd, bool tls);
/*
 * Take over bev, one half of a bufferevent_pair (the node's in-process
 * connection to itself, peer.c), for c: no socket. -1 when it cannot be
 * enabled (the caller frees bev).
 */
int io_open_pair(struct conn *c, struct bufferevent *bev);
/*
 * Free the transport and close the socket; c is off the pending-write
 * list after. A pair's other half gets EOF (from the loop, not here).
 */
void io_close(struct conn *c);

/* Bytes read and not yet consumed by conn_input. */
struct evbuffer *io_input(struct conn *c);
/* Queue bytes to c's peer; they go out before the loop sleeps. -1 when out of memory. */
int io_write(struct conn *c, const void *p, size_t len);
/*
 * Queue bytes to c's peer without writing them yet (a deferred reply,
 * PROTOCOL.md §15): they go out with the next io_write or io_release.
 * The in-process pair writes them like io_write. -1 when out of memory.
 */
int io_hold(struct conn *c, const void *p, size_t len);
/* Write what io_hold queued, before the loop sleeps. */
void io_release(struct conn *c);
/*
 * Write the replies already queued for connections other than c now, in
 * the middle of c's input, before work that takes long (a select over many
 * channels). Only sockets that are neither closing nor paused: the rest
 * wait for the usual flush.
 */
void io_write_others(struct server *s, struct conn *c);
/* Bytes queued and not yet written. */
size_t io_unsent(const struct conn *c);
/* Start or stop reading from c's peer (backpressure). */
void io_read_enable(struct conn *c, bool on);
/*
 * c is closing: stop reading, write what is queued within a timeout, then
 * call conn_wrote with 0 left (or conn_io_failed). Never synchronously.
 */
void io_close_after_flush(struct conn *c, int timeout_sec);
/* max_frame, max_hello_frame or output_hwm changed (SIGHUP), or HELLO was accepted. */
void io_limits_changed(struct conn *c);

#endif
