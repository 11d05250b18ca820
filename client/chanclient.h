/*
 * chanclient.h: libchanclient, the C client of chand (Go channels over the
 * network).
 *
 * The API mirrors Go:
 *
 *	Go				libchanclient
 *	ch := make(chan T, n)		chan_make(ctx, conn, "name", n, &ch)
 *	ch <- v				chan_send(ctx, ch, buf, len)
 *	v, ok := <-ch			chan_recv(ctx, ch, &v, &ok)
 *	close(ch)			chan_close(ctx, ch)
 *	cancel(cause), then close(ch)	chan_close_err(ctx, ch, code, msg)
 *	context.Cause(ctx)		chan_err(ch, &code, msg, cap)
 *	len(ch), cap(ch)		chan_len(ctx, ch, &n), chan_cap(ctx, ch, &n)
 *	select { ... default: }		chan_select(ctx, cases, n, true)
 *	context.WithTimeout(...)	chan_with_timeout(&ctx, parent, ns)
 *
 * Conventions
 * - Every call that talks to the server takes a context first. NULL means
 *   chan_background(). The context's remaining budget travels with the
 *   request (the server enforces it too); a context that is already done
 *   fails the call before anything is sent.
 * - Functions return 0 (CHAN_OK) or a negative CHAN_E* code; chan_strerror
 *   names it. Every error code is <= CHAN_EBASE (-100), so that
 *   chan_select's CHAN_DEFAULT (-1) is never mistaken for one.
 * - Constructors are `int x_new(x **out, ...)`-shaped and set *out only on
 *   success; every free function accepts NULL.
 * - Time is in nanoseconds of CLOCK_MONOTONIC (chan_now()).
 *
 * Thread-safety
 * - A connection (chan_conn_t) is thread-safe: any number of threads may
 *   make calls on it at once; a blocked call blocks only its own thread.
 * - A channel handle (chan_t) is immutable after creation (but for the close
 *   error its receives record, under a lock of its own: chan_err) and may be
 *   used by many threads at once; free it once, after every call using it
 *   returned.
 * - Contexts are thread-safe: cancel from any thread.
 *
 * Delivery: a value changes hands when the server matches it. If a
 * receiver's connection breaks after the match but before the reply arrives,
 * the value is lost (at-most-once; PROTOCOL.md §4). An ack channel
 * (chan_make_opts) gives at-least-once delivery instead: see "ack channels".
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef CHANCLIENT_H
#define CHANCLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CHAN_API __attribute__((visibility("default")))

/* ---- errors ------------------------------------------------------------- */

enum chan_error {
	CHAN_OK = 0,
	CHAN_EBASE = -100,		/* every error is <= this */
	/* wire statuses (PROTOCOL.md §3), one code each */
	CHAN_ECLOSED = -101,		/* send on / close of a closed channel */
	CHAN_EDEADLINE = -102,		/* the context's deadline passed */
	CHAN_ECANCELED = -103,		/* the context was cancelled (or an admin cancelled) */
	CHAN_ENOTFOUND = -104,		/* no such channel (or deleted while waiting) */
	CHAN_EEXISTS = -105,		/* make of an existing name with another cap */
	CHAN_EPERM = -106,		/* permission denied */
	CHAN_EBADREQ = -107,		/* the server rejected the request (bad name, ...) */
	CHAN_ELIMIT = -108,		/* a server limit was hit (value size, cap, ...) */
	CHAN_EPROTO = -109,		/* protocol error (PROTOCOL.md §9, bad replies): the connection
					   is unusable, every later call on it fails with this */
	CHAN_ESHUTDOWN = -110,		/* the server is shutting down */
	/* client side */
	CHAN_EWOULDBLOCK = -111,	/* try_send/try_recv/select(wait 0): not ready */
	CHAN_ECONNLOST = -112,		/* the connection broke; pending calls fail with this */
	CHAN_ENOTCONN = -113,		/* the connection was closed by chan_conn_close */
	CHAN_ECONNECT = -114,		/* dial: could not connect (errno says why) */
	CHAN_ENOTSUP = -115,		/* not supported (yet): tls:// */
	CHAN_EINVAL = -116,		/* invalid argument */
	CHAN_ENOMEM = -117,		/* out of memory */
	CHAN_EUNKNOWN = -118,		/* the server sent a status this client does not know */
	CHAN_ETLS = -119,		/* dial: TLS handshake or certificate verification failed */
	CHAN_ERESOLVE = -120,		/* dial: the host name did not resolve */
	/* wire statuses, numbered after the client's own */
	CHAN_ESTORAGE = -121,		/* durable channel: the server's journal cannot be written */
	CHAN_EUNAVAILABLE = -122,	/* cluster: the channel cannot be served now (§17) */
};

/* A static, never-NULL description of a CHAN_E* code (or of CHAN_DEFAULT). */
CHAN_API const char *chan_strerror(int err);

/* ---- time ------------------------------------------------------------------ */

#define CHAN_USEC 1000LL
#define CHAN_MSEC 1000000LL
#define CHAN_SEC 1000000000LL

/* CLOCK_MONOTONIC now, in ns: the clock of chan_with_deadline. Thread-safe. */
CHAN_API int64_t chan_now(void);

/* ---- contexts (Go's context package) ----------------------------------------- */

/*
 * A context carries a cancellation signal, an optional deadline and values,
 * down a tree: a child is done when its parent is. Ownership: every
 * chan_with_* constructor returns a reference the caller must release with
 * chan_ctx_free. A child holds a reference on its parent, so the parent may
 * be freed first. Freeing does NOT cancel (call chan_cancel for that, like
 * Go's `defer cancel()`). A context must stay referenced while calls use it.
 */
typedef struct chan_ctx chan_ctx_t;

/* The root context: never done, no deadline, no values. Static; free is a no-op. */
CHAN_API chan_ctx_t *chan_background(void);

/* A child that chan_cancel can cancel. Errors: CHAN_ENOMEM. NULL parent = background. */
CHAN_API int chan_with_cancel(chan_ctx_t **out, chan_ctx_t *parent);
/*
 * A cancellable child done at the absolute deadline (chan_now() clock), or
 * earlier if the parent's deadline is earlier. A timer thread makes it done
 * on time even if nobody calls anything. Errors: CHAN_ENOMEM.
 */
CHAN_API int chan_with_deadline(chan_ctx_t **out, chan_ctx_t *parent, int64_t deadline_ns);
/* chan_with_deadline(out, parent, chan_now() + timeout_ns). */
CHAN_API int chan_with_timeout(chan_ctx_t **out, chan_ctx_t *parent, int64_t timeout_ns);
/*
 * A child carrying key -> val. Keys compare by address (use the address of a
 * static variable); the value is not owned and must outlive the context.
 * It is not cancellable itself but is done with its parent.
 * Errors: CHAN_ENOMEM, CHAN_EINVAL (NULL key).
 */
CHAN_API int chan_with_value(chan_ctx_t **out, chan_ctx_t *parent, const void *key, void *val);
/* The value of the nearest context (ctx or an ancestor) holding key, or NULL. */
CHAN_API void *chan_ctx_value(chan_ctx_t *ctx, const void *key);

/*
 * Cancel ctx and all its descendants: their blocked calls wake at once,
 * send CANCEL for their pending requests and return CHAN_ECANCELED as soon
 * as the server confirms (one round trip; if it does not answer, at most
 * the dial option cancel_grace_ns and a quarter of it). When the server had already
 * completed the operation before the CANCEL reached it, the call returns
 * that result instead, so a matched value is never lost (like Go's select
 * picking a ready case over ctx.Done()). Idempotent. Thread-safe.
 * Returns 0, or CHAN_EINVAL when ctx is not cancellable (background or a
 * value context).
 */
CHAN_API int chan_cancel(chan_ctx_t *ctx);
/* 0 while not done; CHAN_ECANCELED or CHAN_EDEADLINE once done. */
CHAN_API int chan_ctx_err(chan_ctx_t *ctx);
/* true and *deadline_ns (chan_now() clock) if ctx has a deadline. */
CHAN_API bool chan_ctx_deadline(chan_ctx_t *ctx, int64_t *deadline_ns);
/*
 * A descriptor that becomes readable (POLLIN) once ctx is done, like Go's
 * ctx.Done(). Owned by ctx (closed by its last free); poll it, do not read
 * or close it. Returns the fd, or CHAN_ENOMEM.
 */
CHAN_API int chan_ctx_done_fd(chan_ctx_t *ctx);
/* Release a reference. NULL and chan_background() are no-ops. */
CHAN_API void chan_ctx_free(chan_ctx_t *ctx);

/* ---- connections -------------------------------------------------------------- */

typedef struct chan_conn chan_conn_t;

/* Dial options; zero-initialise and set what you need (NULL = defaults). */
typedef struct chan_dial_opts {
	const char *client_name;	/* sent in HELLO; default "libchanclient" */
	const char *token;		/* auth token, or NULL */
	/*
	 * After a call's context is done, how long to wait for the server to
	 * confirm (the CANCELED / DEADLINE_EXCEEDED reply, which guarantees
	 * the server holds no waiter for it) before giving up on the reply.
	 * A call waiting in the socket notices a server that stopped
	 * answering within a quarter of it (its receive timeout), so a
	 * silent server ends it at most 1.25 times this late.
	 * 0 = default 1 s.
	 */
	int64_t cancel_grace_ns;
	/*
	 * tls:// and cluster+tls:// only (with cluster://, CHAN_EINVAL).
	 * tls_ca: PEM file of the CAs that may sign the server's certificate
	 * (NULL: the system's). tls_cert, tls_key: a client certificate and
	 * its key for mutual TLS (NULL: none; tls_key NULL: the key is in
	 * tls_cert). tls_server_name: the name the server's certificate must
	 * carry (NULL: the host of the address, in a cluster each node's; an
	 * IP address is checked against the certificate's IP entries).
	 */
	const char *tls_ca, *tls_cert, *tls_key, *tls_server_name;
} chan_dial_opts_t;

/*
 * Connect to addr, say HELLO and keep the server's limits. addr is
 * "host:port", "[v6addr]:port" or a bare "host" (port 7420), each
 * optionally after "tcp://", or after "tls://" (TLS 1.2 or later, the
 * server's certificate verified against opts' tls_ca and host); or
 * "unix:/path" or a path starting with "/" (a unix socket); or a cluster's
 * "cluster://h1:p1,h2:p2", its nodes spoken to over TLS with
 * "cluster+tls://" (chanclient(3), CLUSTERS). ctx bounds the
 * name lookup, connecting, the TLS handshake and
 * HELLO: a host that is not a numeric address is looked up on a thread of
 * its own, so that chan_dial can return at ctx's deadline or cancel while a
 * DNS server keeps it waiting (an abandoned lookup ends on its own). No
 * other thread is started: replies are read by the threads that wait for them.
 * Errors: CHAN_EINVAL (bad address, or tls_* options with cluster://),
 * CHAN_ERESOLVE (the host name did not resolve), CHAN_ETLS (handshake or
 * certificate verification failed, or a tls_* file could not be loaded),
 * CHAN_ECONNECT (errno says why: ECONNREFUSED, ENOENT, ...),
 * CHAN_ECONNLOST (closed before HELLO's reply), CHAN_EDEADLINE /
 * CHAN_ECANCELED, CHAN_EPERM (authentication on, and the token or client
 * certificate refused), CHAN_EPROTO (HELLO refused otherwise), CHAN_ENOMEM.
 */
CHAN_API int chan_dial(chan_ctx_t *ctx, const char *addr, const chan_dial_opts_t *opts,
    chan_conn_t **out);
/*
 * Close the connection: calls still pending on it fail with CHAN_ENOTCONN,
 * later calls too. Channel handles stay valid (as memory) until freed; the
 * connection's memory goes with the last of them. NULL is a no-op. Call once.
 */
CHAN_API void chan_conn_close(chan_conn_t *conn);

typedef struct chan_conn_info {
	uint64_t version;		/* negotiated protocol version */
	char server[64];		/* "chand 0.1.0" */
	uint64_t max_frame, max_value, max_pending, max_select_cases;
	uint64_t max_stream_credit;	/* 0: the server has no streams */
	uint64_t max_waiters_per_connection;	/* streams' channels × credit, selects' cases...; 0: none said */
} chan_conn_info_t;

/* What HELLO said. Thread-safe. Errors: CHAN_EINVAL. */
CHAN_API int chan_conn_info(chan_conn_t *conn, chan_conn_info_t *out);
/* One round trip. Errors: transport and context errors. */
CHAN_API int chan_ping(chan_ctx_t *ctx, chan_conn_t *conn);
/*
 * For a connection dialed with a cluster address (PROTOCOL.md §17): the
 * "host:port" of the node that owns the named channel name, found as any
 * operation on it is (the owner cache, following MOVED), into addr (cap
 * bytes). Thread-safe. Errors: CHAN_ENOTSUP (conn is not a cluster's),
 * CHAN_ENOTFOUND (no such channel), CHAN_EUNAVAILABLE, CHAN_EINVAL,
 * transport and context errors.
 */
CHAN_API int chan_cluster_where(chan_ctx_t *ctx, chan_conn_t *conn, const char *name, char *addr,
    size_t cap);

/* ---- channels --------------------------------------------------------------------- */

/* A handle: a connection plus a channel name. Immutable, thread-safe. */
typedef struct chan chan_t;

/*
 * MAKE: name NULL makes an anonymous channel (its name starts with '~'; it
 * lives while this connection, or any that opened it, holds it). Making an
 * existing name with the same cap opens it. *out is a new handle to free.
 * Errors: CHAN_EEXISTS, CHAN_EBADREQ (bad name), CHAN_ELIMIT, transport/ctx.
 */
CHAN_API int chan_make(chan_ctx_t *ctx, chan_conn_t *conn, const char *name, size_t cap,
    chan_t **out);
/* OPEN an existing channel (takes a hold on anonymous ones). Errors: CHAN_ENOTFOUND, ... */
CHAN_API int chan_open(chan_ctx_t *ctx, chan_conn_t *conn, const char *name, chan_t **out);
/* A handle to a name without any round trip (not checked, like a Go nil-able ref). */
CHAN_API int chan_handle_new(chan_t **out, chan_conn_t *conn, const char *name);
/* The channel's name (owned by ch, NUL-terminated). */
CHAN_API const char *chan_name(const chan_t *ch);
/* The handle's connection (not a new reference). */
CHAN_API chan_conn_t *chan_conn(const chan_t *ch);
/* Free a handle. NULL is a no-op. Does not close or delete the channel. */
CHAN_API void chan_free(chan_t *ch);

/* A received value. */
enum chan_value_kind {
	CHAN_VALUE_NIL = 0,		/* nothing (closed channel, send case, default) */
	CHAN_VALUE_BYTES = 1,		/* data/len: malloc'd, NUL-terminated beyond len */
	CHAN_VALUE_CHAN = 2,		/* chan: a new handle on the receiving connection */
	/*
	 * An error value (PROTOCOL.md §7, ext type 2), made by the server when a
	 * fan-out stage fails or a bridge meets a bad reference: data/len is the
	 * UTF-8 message (malloc'd, NUL-terminated). It is an error travelling as
	 * a value: the receive itself succeeded (ok is true) and the stream goes
	 * on; it is not data. Clients cannot send one (CHAN_EBADREQ).
	 */
	CHAN_VALUE_ERROR = 3,
};
typedef struct chan_value {
	enum chan_value_kind kind;
	void *data;
	size_t len;
	chan_t *chan;
} chan_value_t;

/* Free what a value owns and make it NIL. NULL is a no-op. */
CHAN_API void chan_value_clear(chan_value_t *v);

/*
 * ch <- data[0..len) (copied; the caller keeps data). Blocks until a
 * receiver takes it or the buffer has room, or the context ends. The
 * context's remaining budget is sent as the request's wait, so the server
 * ends the wait on time by itself; the call then returns CHAN_EDEADLINE
 * once the server confirmed (a silent server: at most 1.25 times
 * cancel_grace_ns late).
 * Errors: CHAN_ECLOSED, CHAN_EDEADLINE, CHAN_ECANCELED, CHAN_ENOTFOUND,
 * CHAN_ELIMIT (len > max_value), CHAN_ECONNLOST / CHAN_ENOTCONN.
 */
CHAN_API int chan_send(chan_ctx_t *ctx, chan_t *ch, const void *data, size_t len);
/* ch <- ref: send a channel reference (the name of ref). Errors as chan_send. */
CHAN_API int chan_send_chan(chan_ctx_t *ctx, chan_t *ch, const chan_t *ref);
/*
 * v, ok := <-ch. On success *v holds the value (free with chan_value_clear)
 * and *ok is true, or *v is NIL and *ok false when ch is closed and drained.
 * v and ok may be NULL (value discarded). Errors as chan_send (no CLOSED).
 */
CHAN_API int chan_recv(chan_ctx_t *ctx, chan_t *ch, chan_value_t *v, bool *ok);
/*
 * Non-blocking forms (wait 0 on the wire): CHAN_EWOULDBLOCK when not ready,
 * never CHAN_EDEADLINE for that (the context still bounds the round trip).
 */
CHAN_API int chan_try_send(chan_ctx_t *ctx, chan_t *ch, const void *data, size_t len);
CHAN_API int chan_try_recv(chan_ctx_t *ctx, chan_t *ch, chan_value_t *v, bool *ok);
/*
 * Asynchronous operations: pipelining. chan_send_async / chan_recv_async
 * queue the request and return at once with *out, an operation still in
 * flight (like `go func() { ch <- v }()` with a way to join it). Requests
 * queued by any thread leave together, in one write, when a thread waits
 * (chan_op_wait or any blocking call on the connection), when the queue
 * passes 64 KiB, or on chan_conn_flush; on a cluster connection a wait
 * sends what is queued for every node. The server runs them in the order
 * sent (each one still waits like chan_send / chan_recv), so a producer can
 * keep many sends in flight and a consumer many receives, without a round
 * trip each. ctx's budget at submission travels as the request's wait; a
 * cancel of ctx is acted on while chan_op_wait waits.
 * chan_op_wait waits for op's result, which is what chan_send / chan_recv
 * would have returned (for a send, v and ok are left NIL/false), and frees
 * op: wait for every operation exactly once, from one thread. Memory: the
 * thread that ends an operation keeps its record and small reply frame for
 * the next one (at most 1,024 of each a thread, freed at thread exit).
 * Errors (submission): CHAN_EINVAL, CHAN_ELIMIT (len > max_value),
 * CHAN_ENOMEM, the connection's failure, the context's error.
 */
typedef struct chan_op chan_op_t;
CHAN_API int chan_send_async(chan_ctx_t *ctx, chan_t *ch, const void *data, size_t len,
    chan_op_t **out);
CHAN_API int chan_recv_async(chan_ctx_t *ctx, chan_t *ch, chan_op_t **out);
CHAN_API int chan_op_wait(chan_op_t *op, chan_value_t *v, bool *ok);
/* Send every queued request now. Returns 0, or the connection's failure. */
CHAN_API int chan_conn_flush(chan_conn_t *conn);

/* close(ch). Errors: CHAN_ECLOSED (already closed), CHAN_ENOTFOUND, ... */
CHAN_API int chan_close(chan_ctx_t *ctx, chan_t *ch);

/* ---- close errors: why a stream ended (Go's context.Cause, errgroup) ------------------ */

/* The longest close error message, in bytes. */
#define CHAN_CLOSE_MSG_MAX 1024

/*
 * close(ch) with an error: code (the application's) and msg (NUL-terminated
 * UTF-8, at most CHAN_CLOSE_MSG_MAX bytes; NULL is ""). Once the channel is
 * drained, every receiver gets ok false and can read this error (chan_err,
 * chan_stream_err); links pass it on to their outputs (PROTOCOL.md §12).
 * Errors: CHAN_EINVAL (msg too long), CHAN_EBADREQ (msg not UTF-8), as
 * chan_close otherwise.
 */
CHAN_API int chan_close_err(chan_ctx_t *ctx, chan_t *ch, uint64_t code, const char *msg);
/*
 * The error ch's channel was closed with, as the last receive through this
 * handle that returned ok false found it: chan_recv, chan_try_recv, or a
 * chan_select receive case on ch (not chan_op_wait: after an asynchronous
 * receive returned ok false, chan_try_recv returns it again, with the
 * error). true with *code and msg (the message, NUL-terminated, cut to
 * cap - 1 bytes; msg may be NULL) when the channel was closed with an
 * error; false when it was closed without one, or no receive through ch
 * has returned ok false yet. code and msg may be NULL. Thread-safe.
 */
CHAN_API bool chan_err(chan_t *ch, uint64_t *code, char *msg, size_t cap);
/* len(ch), cap(ch). */
CHAN_API int chan_len(chan_ctx_t *ctx, chan_t *ch, size_t *out);
CHAN_API int chan_cap(chan_ctx_t *ctx, chan_t *ch, size_t *out);
/* DELETE: remove the channel; *discarded (may be NULL) counts dropped values. */
CHAN_API int chan_delete(chan_ctx_t *ctx, chan_t *ch, size_t *discarded);

typedef struct chan_info {
	char name[256];
	size_t len, cap;
	bool closed, anonymous;
	size_t senders, receivers;	/* waiting, select cases included */
	size_t bytes;			/* buffered bytes */
	/* closed with an error (chan_close_err): its code and message (NUL-terminated) */
	bool has_close_error;
	uint64_t close_code;
	char close_message[CHAN_CLOSE_MSG_MAX + 1];
	/* ack channels (PROTOCOL.md §16); all 0 on a plain channel */
	int64_t ack_wait_ns;
	size_t inflight;		/* delivered, not acked (len counts them too) */
	uint64_t redelivered, dead_lettered;
	uint32_t max_unacked, max_ack_pending;	/* its limits; 0: none */
	/* durable channels (PROTOCOL.md §16): the server's journal size on disk */
	bool durable;
	uint64_t journal_bytes;
} chan_info_t;

/* INFO. Errors: CHAN_ENOTFOUND, ... */
CHAN_API int chan_info(chan_ctx_t *ctx, chan_t *ch, chan_info_t *out);

/* ---- select ----------------------------------------------------------------------- */

enum chan_dir { CHAN_DIR_RECV = 0, CHAN_DIR_SEND = 1 };

/* chan_select's result when the default case was taken (not an error). */
#define CHAN_DEFAULT (-1)

typedef struct chan_case {
	enum chan_dir dir;
	chan_t *ch;			/* NULL: Go's nil channel, never ready */
	/* send cases: ref != NULL sends that channel reference, else data/len */
	const void *data;
	size_t len;
	const chan_t *ref;
	/* receive cases, out: set on the chosen case (free value with chan_value_clear) */
	chan_value_t value;
	bool ok;
	/* out: the error this case caused, e.g. CHAN_ECLOSED on a send case; else 0 */
	int err;
} chan_case_t;

/*
 * select over cases[0..n). All channels must be on one connection; every
 * case's value, ok and err are outputs, reset on entry (the chosen receive
 * case's value is the caller's to clear). With every channel NULL it
 * returns CHAN_DEFAULT, or blocks until the context ends (Go's `select {}`).
 * Returns
 * the chosen case's index (>= 0), CHAN_DEFAULT when has_default and no case
 * was ready, or an error: CHAN_ECLOSED (a send case on a closed channel) and
 * CHAN_ENOTFOUND set that case's err; CHAN_EDEADLINE, CHAN_ECANCELED,
 * CHAN_EINVAL (n == 0, channels on several connections), CHAN_ELIMIT, ...
 */
CHAN_API int chan_select(chan_ctx_t *ctx, chan_case_t *cases, size_t n, bool has_default);

/* ---- streams: many pending receives at once (PROTOCOL.md §14) ---------------------- */

/*
 * A receive stream keeps `credit` receives pending on the server over
 * chans[0..n) (all on one connection): over one channel, like `credit`
 * goroutines blocked in `<-ch`, queued FIFO with the channel's other
 * receivers; over several, like `credit` blocked selects over those
 * receive cases (uniformly random among ready ones). The server sends each
 * value as it takes it, with no request per value, and the library grants
 * the credit of the values taken back when chan_stream_recv has to wait
 * (or once half the credit was taken), so the stream is `credit` receives
 * deep whenever the program waits on it. A value taken by the stream went
 * to nobody else.
 *
 * chan_stream_open: ctx bounds the stream's whole life (its budget is the
 * stream's wait on the server; cancelling it ends the stream). credit is
 * 1 to the server's max_stream_credit (chan_conn_info). Errors: CHAN_EINVAL
 * (n == 0, a NULL channel, channels on several connections, credit 0),
 * CHAN_ELIMIT (too many channels or too much credit), CHAN_ENOTFOUND,
 * CHAN_EPERM, CHAN_EBADREQ (a channel named twice), transport/ctx.
 *
 * chan_stream_recv takes the next value: 0 with *v (free it with
 * chan_value_clear), *ok true and *index the channel it came from; or 0
 * with *ok false when chans[*index] is closed and drained (reported once;
 * the stream goes on with the others, Go's idiom of setting a closed case
 * to nil). v, ok, index may be NULL. Once every channel was reported
 * closed it returns CHAN_ECLOSED; a stream ended otherwise returns why
 * (CHAN_ECANCELED / CHAN_EDEADLINE from ctx, CHAN_ENOTFOUND with *index
 * when a channel was deleted, CHAN_ESHUTDOWN, connection failures), and
 * so does every later call. Values taken before the end are returned
 * first. One thread at a time per stream.
 *
 * chan_stream_free ends the stream (CANCEL, if it still runs) and frees
 * it. Values the server already sent that were not taken with
 * chan_stream_recv are dropped: they had left their channels (the
 * at-most-once commit point of PROTOCOL.md §4); on an ack channel they stay
 * in flight, unacked, and go back to it after its ack_wait or when the
 * connection ends (PROTOCOL.md §16). NULL is a no-op.
 */
typedef struct chan_stream chan_stream_t;
CHAN_API int chan_stream_open(chan_ctx_t *ctx, chan_t *const *chans, size_t n, size_t credit,
    chan_stream_t **out);
CHAN_API int chan_stream_recv(chan_stream_t *s, chan_value_t *v, bool *ok, size_t *index);
/*
 * After chan_stream_recv reported chans[index] closed (ok false): true with
 * its close error (*code, msg as chan_err) when it was closed with one,
 * false otherwise (or before its close was reported, or index >= n).
 */
CHAN_API bool chan_stream_err(const chan_stream_t *s, size_t index, uint64_t *code, char *msg,
    size_t cap);
CHAN_API void chan_stream_free(chan_stream_t *s);

/* ---- ack channels: at-least-once delivery (PROTOCOL.md §16) ------------------------ */

/*
 * An ack channel holds each value it delivers *in flight* for the
 * receiving connection until the receiver acks it. A value not acked
 * within ack_wait (renewed by chan_touch), NACKed, or held by a connection
 * that ends goes back to the head of the channel (before every value never
 * delivered) and is delivered again with its count + 1; after max_deliver
 * deliveries it goes to the dead_letter channel as a msgpack map
 * {channel, count, reason, value} in a bin, or is dropped and logged.
 * Start from CHAN_DELIVERY_OPTS_INIT: max_deliver 0 means unlimited.
 */
typedef struct chan_delivery_opts {
	int64_t ack_wait_ns;		/* > 0, at most 2^48 µs */
	uint32_t max_deliver;		/* deliveries before the dead letter; 0: unlimited */
	uint32_t max_unacked;		/* per connection: at this many in flight, its receives and
					   one-channel streams wait; 0: unlimited */
	const char *dead_letter;	/* a channel name, or NULL */
	uint32_t max_ack_pending;	/* the whole channel, every connection: at this many in
					   flight, all its receives wait; 0: unlimited */
	/* kept in the server's journal across restarts (PROTOCOL.md §16); with
	   ack_wait_ns 0 a durable plain channel (then the fields above are unused) */
	bool durable;
} chan_delivery_opts_t;
#define CHAN_DELIVERY_OPTS_INIT { .ack_wait_ns = 30 * CHAN_SEC, .max_deliver = 5, \
	.max_unacked = 1000, .dead_letter = NULL, .max_ack_pending = 0 }

/*
 * MAKE with delivery options (opts NULL: chan_make). Making an existing
 * name needs the same cap and the same options. Errors: CHAN_EEXISTS,
 * CHAN_EBADREQ (bad options, name NULL with options, durable with cap
 * 0), CHAN_ESTORAGE (durable on a server without data_dir), CHAN_EINVAL
 * (ack_wait_ns < 0 or too large, or 0 without durable), as chan_make.
 */
CHAN_API int chan_make_opts(chan_ctx_t *ctx, chan_conn_t *conn, const char *name, size_t cap,
    const chan_delivery_opts_t *opts, chan_t **out);

/* A received message: the value, and on an ack channel its tag and delivery count. */
typedef struct chan_msg {
	chan_value_t value;
	uint64_t tag;			/* 0: a plain channel's value (nothing to ack) */
	uint32_t count;			/* deliveries of this value, 1 the first time */
	/*
	 * The connection that received the tag (in a cluster, the node that
	 * answered: for a stream or select across nodes its home, not the
	 * channel's owner), where chan_ack, chan_nack and chan_touch send it.
	 * The library's: a reference that chan_msg_clear drops; NULL without
	 * a tag. A message built from a tag alone (conn NULL) goes where
	 * requests about the channel go.
	 */
	chan_conn_t *conn;
} chan_msg_t;

/*
 * v, ok := <-ch, keeping the tag: on an ack channel the value stays in
 * flight until chan_ack. *m is the caller's (chan_msg_clear). Errors as
 * chan_recv; ok false records the close error for chan_err, as chan_recv
 * does (a tagged value never has one). chan_recv, chan_select, chan_op_wait and chan_stream_recv on
 * an ack channel return no tag: they ack the value as they return it.
 */
CHAN_API int chan_recv_msg(chan_ctx_t *ctx, chan_t *ch, chan_msg_t *m, bool *ok);
/* The next stream value with its tag (see chan_stream_recv); the value stays in flight. */
CHAN_API int chan_stream_recv_msg(chan_stream_t *s, chan_msg_t *m, bool *ok, size_t *index);
/* Free the message's value, drop its connection and zero it; does not ack. NULL is a no-op. */
CHAN_API void chan_msg_clear(chan_msg_t *m);

/*
 * ACK m on the connection that received it (m->conn), without a round
 * trip: the ACK leaves with the connection's next write (the next receive,
 * or chan_conn_flush) and its reply, which nobody waits for, with a later
 * one; the tags acked until that write share one ACK frame (512 at most).
 * An ACK that never leaves (the program exits first) or comes after
 * ack_wait means a redelivery: at least once. Errors: CHAN_EINVAL (no tag),
 * CHAN_ENOMEM.
 */
CHAN_API int chan_ack(chan_t *ch, const chan_msg_t *m);
/*
 * ACK tags[0..n) (1 to 65,536) in one frame and wait for the answer.
 * Every tag still in flight is acked even when another is not. Errors:
 * CHAN_ENOTFOUND (a tag not in flight: unknown, acked, given back),
 * CHAN_EPERM (another connection's tag), CHAN_EINVAL, transport/ctx.
 */
CHAN_API int chan_ack_n(chan_ctx_t *ctx, chan_t *ch, const uint64_t *tags, size_t n);
/* NACK: back to the channel after delay_ns (0: now). Errors as chan_ack_n. */
CHAN_API int chan_nack(chan_ctx_t *ctx, chan_t *ch, const chan_msg_t *m, int64_t delay_ns);
/* TOUCH: ack_wait starts again (a long job). Errors as chan_ack_n. */
CHAN_API int chan_touch(chan_ctx_t *ctx, chan_t *ch, const chan_msg_t *m);

/* ---- administration: the operations behind chanctl(1) (PROTOCOL.md §11) ------------ */

typedef struct chan_stat {
	char key[48];
	uint64_t value;
} chan_stat_t;

/*
 * The server's counters (uptime_ms, connections, channels, waiters, ...):
 * *out is a malloc'd array of *n entries; free() it.
 */
CHAN_API int chan_admin_stats(chan_ctx_t *ctx, chan_conn_t *conn, chan_stat_t **out, size_t *n);

/*
 * Channels whose name matches the glob pattern (NULL: all), at most limit
 * (0: the server's default, 1000). *out is a malloc'd array of *n; free()
 * it. *matched (may be NULL) counts every match, listed or not.
 */
CHAN_API int chan_admin_channels(chan_ctx_t *ctx, chan_conn_t *conn, const char *pattern,
    size_t limit, chan_info_t **out, size_t *n, size_t *matched);

typedef struct chan_client_info {
	uint64_t id;			/* the server's client id */
	char peer[80];
	char name[256];			/* from HELLO */
	size_t pending;			/* requests waiting */
	uint64_t age_ms;
	size_t unsent;			/* reply bytes not yet written */
} chan_client_info_t;

/* Every connection of the server. *out: malloc'd array of *n; free() it. */
CHAN_API int chan_admin_clients(chan_ctx_t *ctx, chan_conn_t *conn, chan_client_info_t **out,
    size_t *n);

/* A live node of a cluster (PROTOCOL.md §17), as the answering node sees it. */
typedef struct chan_node_info {
	char name[72];
	char addr[256];			/* its advertise "host:port" */
	size_t owned;			/* channels it owns */
	bool self;			/* the node that answered */
	uint64_t lease_left_ms;		/* self only: until etcd may expire its lease; else 0 */
} chan_node_info_t;

/*
 * The cluster's live nodes (CLUSTER_NODES, an admin op). On a cluster
 * connection any one node answers. *out: malloc'd array of *n; free() it.
 * Errors: CHAN_EBADREQ (not a cluster node), the admin calls' others.
 */
CHAN_API int chan_admin_cluster_nodes(chan_ctx_t *ctx, chan_conn_t *conn, chan_node_info_t **out,
    size_t *n);

typedef struct chan_waiter_case {
	enum chan_dir dir;
	char channel[256];		/* "" for a nil channel */
} chan_waiter_case_t;

typedef struct chan_waiter {
	uint64_t client, request;
	const char *op;			/* "SEND", "RECV", "SELECT", or a link's: "OR" ... "FAN_OUT" (static) */
	uint64_t waited_ms;
	size_t ncases;
	chan_waiter_case_t *cases;	/* owned by the array: chan_admin_waiters_free */
	/*
	 * A remote waiter (a cluster, PROTOCOL.md §17): the node whose
	 * cross-node select it is, its client being that node's; "" otherwise.
	 */
	char home[65];
} chan_waiter_t;

/*
 * Every blocked operation (the broker's goroutine dump), at most limit (0:
 * 1000); *total (may be NULL) counts them all. Free with chan_admin_waiters_free.
 */
CHAN_API int chan_admin_waiters(chan_ctx_t *ctx, chan_conn_t *conn, size_t limit,
    chan_waiter_t **out, size_t *n, size_t *total);
CHAN_API void chan_admin_waiters_free(chan_waiter_t *w, size_t n);
/*
 * End another client's pending request (request != 0) or all of them
 * (request == 0) with CANCELED; *canceled (may be NULL) counts them.
 * Errors: CHAN_ENOTFOUND for an unknown client or request.
 */
CHAN_API int chan_admin_unblock(chan_ctx_t *ctx, chan_conn_t *conn, uint64_t client,
    uint64_t request, size_t *canceled);
/* Ask the server to shut down (as on SIGTERM). */
CHAN_API int chan_admin_shutdown(chan_ctx_t *ctx, chan_conn_t *conn);

/* One value in flight on an ack channel (PROTOCOL.md §16). */
typedef struct chan_inflight {
	uint64_t client;		/* the connection holding it (chan_admin_clients' id) */
	uint64_t tag;
	uint32_t count;			/* its delivery count */
	uint64_t age_ms;		/* since it was delivered */
} chan_inflight_t;

/*
 * The values in flight on the ack channel name, oldest first, at most limit
 * (0: 1000); *total (may be NULL) counts them all. free(*out). Errors:
 * CHAN_ENOTFOUND, CHAN_EBADREQ (a plain channel), CHAN_EPERM.
 */
CHAN_API int chan_admin_inflight(chan_ctx_t *ctx, chan_conn_t *conn, const char *name,
    size_t limit, chan_inflight_t **out, size_t *n, size_t *total);

/* ---- links: the notes' patterns run inside chand (PROTOCOL.md §12) --------------------- */

/*
 * A link is a small goroutine that runs inside the server: or, or-done, tee,
 * bridge, fan-in, repeat, take, and fan-out jobs (a stage function on the
 * server's worker pool). It sends and receives like any client, so it
 * blocks and feels backpressure the same way.
 *
 * Every constructor takes a context first: it is the link's lifetime. Its
 * remaining budget is sent as the request's wait (the server stops the link
 * with DEADLINE_EXCEEDED when it runs out), and cancelling it sends CANCEL
 * (even when no thread is waiting on the link). The link takes a reference
 * on the context, so the caller may free its own at once.
 *
 * A constructor returns once the server said STARTED: *link is the running
 * link and the out parameters are NEW handles to its output channels (free
 * them with chan_free; an out pointer may be NULL when the caller does not
 * want that handle). Outputs are anonymous unbuffered channels unless
 * opts names them; anonymous outputs are held by the connection, so they
 * outlive the link and can be drained after it ends. However a link stops
 * (its input closed, its context ended, chan_link_stop, the done channel,
 * the connection closing), the server closes its outputs: a consumer's
 * range over an output always ends.
 *
 * Every channel must be on the same connection (the link's): the inputs,
 * opts->done, and the connection passed to chan_repeat. Errors of the
 * constructors: CHAN_EINVAL (NULL or mixed connections, n == 0, ...),
 * CHAN_ENOTFOUND (an input or the done channel does not exist; an unknown
 * stage), CHAN_EEXISTS (a named output exists with another cap),
 * CHAN_ELIMIT (too many inputs or workers, cap too large, max_pending),
 * CHAN_EBADREQ, CHAN_EDEADLINE / CHAN_ECANCELED (the context ended before
 * the link started), CHAN_ECONNLOST / CHAN_ENOTCONN, CHAN_ENOMEM. On error
 * nothing is set and nothing runs.
 *
 * Thread-safety: chan_link_stop and chan_link_id may be called from any
 * thread at any time; chan_link_wait by one thread at a time;
 * chan_link_free once, after every other call on the link returned.
 */
typedef struct chan_link chan_link_t;

typedef struct chan_link_opts {
	/*
	 * Go's done channel: the link stops (CHAN_ECANCELED) as soon as a
	 * receive on it completes: it is closed, or a value arrives (and is
	 * consumed). NULL: none (the context alone stops it).
	 */
	chan_t *done;
	/* Per output (tee has two, every other link one): a name (made if
	 * absent, like chan_make; NULL: anonymous) and a buffer size. */
	const char *out_name[2];
	size_t out_cap[2];
} chan_link_opts_t;

/* or-channel: out closes as soon as any of inputs[0..n) closes or yields a value. */
CHAN_API int chan_or(chan_ctx_t *ctx, chan_t *const *inputs, size_t n,
    const chan_link_opts_t *opts, chan_link_t **link, chan_t **out);
/* or-done: forwards in's values to out until in closes (then the link ends OK). */
CHAN_API int chan_or_done(chan_ctx_t *ctx, chan_t *in, const chan_link_opts_t *opts,
    chan_link_t **link, chan_t **out);
/* tee: each value of in goes to both outputs before the next is taken (sent counts twice). */
CHAN_API int chan_tee(chan_ctx_t *ctx, chan_t *in, const chan_link_opts_t *opts,
    chan_link_t **link, chan_t **out1, chan_t **out2);
/*
 * bridge: in carries channel references (chan_send_chan); each referenced
 * channel is drained into out, in order, until it closes. A value that is
 * not a reference, or a reference to no channel, arrives on out as a
 * CHAN_VALUE_ERROR and the bridge goes on.
 */
CHAN_API int chan_bridge(chan_ctx_t *ctx, chan_t *in, const chan_link_opts_t *opts,
    chan_link_t **link, chan_t **out);
/* fan-in: merges inputs[0..n) into out; ends when every input has closed. */
CHAN_API int chan_fan_in(chan_ctx_t *ctx, chan_t *const *inputs, size_t n,
    const chan_link_opts_t *opts, chan_link_t **link, chan_t **out);
/*
 * repeat: sends values[0..n) (CHAN_VALUE_BYTES or CHAN_VALUE_CHAN; copied)
 * to out, over and over, until stopped (it never ends with 0).
 */
CHAN_API int chan_repeat(chan_ctx_t *ctx, chan_conn_t *conn, const chan_value_t *values,
    size_t n, const chan_link_opts_t *opts, chan_link_t **link, chan_t **out);
/* take: forwards the first n values of in, then ends (earlier if in closes). */
CHAN_API int chan_take(chan_ctx_t *ctx, chan_t *in, uint64_t n, const chan_link_opts_t *opts,
    chan_link_t **link, chan_t **out);
/*
 * fan-out job: applies the server's stage function named stage ("identity",
 * "sha256", "isprime", or a configured module) to each value of in on the
 * worker pool, at most workers at once (1 to the pool's size), and sends
 * the results to out; with ordered, in input order. A failed stage gives a
 * CHAN_VALUE_ERROR on out and the job goes on. Ends when in has closed and
 * every result is sent.
 */
CHAN_API int chan_fan_out(chan_ctx_t *ctx, chan_t *in, const char *stage, size_t workers,
    bool ordered, const chan_link_opts_t *opts, chan_link_t **link, chan_t **out);

/*
 * Wait until the link ends; *sent (may be NULL) is the number of values it
 * delivered. Returns 0 when it finished by itself (its input closed, take's
 * n reached), or why it stopped: CHAN_ECANCELED (its context was cancelled,
 * chan_link_stop, the done channel, an admin), CHAN_EDEADLINE (its
 * context's deadline), CHAN_ECLOSED (someone else closed an output),
 * CHAN_ENOTFOUND (one of its channels was deleted), CHAN_ELIMIT,
 * CHAN_ESHUTDOWN, CHAN_ECONNLOST / CHAN_ENOTCONN. The result is kept:
 * later calls return it at once.
 */
CHAN_API int chan_link_wait(chan_link_t *link, uint64_t *sent);
/*
 * Stop the link (CANCEL), without waiting: chan_link_wait then returns
 * CHAN_ECANCELED (or the link's own result if it had ended already).
 * Thread-safe. Returns 0, or CHAN_EINVAL for NULL.
 */
CHAN_API int chan_link_stop(chan_link_t *link);
/* The link's request id: the `request` of chan_admin_waiters and `chanctl links`. */
CHAN_API uint64_t chan_link_id(const chan_link_t *link);
/*
 * Release the link. A link still running is stopped first (CANCEL, not
 * waited for), like Go's `defer cancel()`. Output handles returned by the
 * constructor are separate and stay valid. NULL is a no-op.
 */
CHAN_API void chan_link_free(chan_link_t *link);

#ifdef __cplusplus
}
#endif

#endif
