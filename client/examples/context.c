/*
 * context.c: the greeting/farewell program, with contexts on the wire.
 *
 * Mirrors the notes' context programs:
 *
 *	ctx, cancel := context.WithCancel(context.Background())
 *	go func() { if err := printGreeting(ctx); err != nil {
 *		fmt.Printf("cannot print greeting: %v\n", err); cancel() } }()
 *	go func() { if err := printFarewell(ctx); err != nil {
 *		fmt.Printf("cannot print farewell: %v\n", err) } }()
 *	genGreeting: ctx, cancel := context.WithTimeout(ctx, 1*time.Second)
 *	locale: select { case <-ctx.Done(): return "", ctx.Err()
 *	                 case <-time.After(1 * time.Minute): }; return "EN/US"
 *
 * The slow locale lookup is a receive from a "locale service" channel,
 * found through the context (chan_with_value). Three runs:
 *
 * 1. Nobody answers. genGreeting's 1 s timeout, carried to the server with
 *    the receive, ends it with CHAN_EDEADLINE; printGreeting's caller then
 *    cancels the parent, and the farewell's pending receive returns
 *    CHAN_ECANCELED at once (the client sends CANCEL to the server).
 * 2. The notes' Deadline variant: locale knows a lookup takes a minute, sees
 *    (chan_ctx_deadline) that the context ends sooner and fails at once
 *    with CHAN_EDEADLINE, before anything is sent; the farewell is
 *    cancelled as in run 1.
 * 3. A service thread answers "EN/US" twice: both lines are printed.
 *
 * Each thread keeps its line; main prints them after the joins, so the
 * output is fixed:
 *	run 1: timeout and cancel
 *	cannot print greeting: context deadline exceeded
 *	cannot print farewell: context canceled
 *	run 2: checking the deadline first
 *	cannot print greeting: context deadline exceeded (at once)
 *	cannot print farewell: context canceled
 *	run 3: the locale service answers
 *	hello world!
 *	goodbye world!
 *
 * Usage: context tcp://127.0.0.1:7420
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include "example.h"

static const char locale_key;		/* chan_with_value's key: its address */
static bool check_deadline;		/* run 2 */

struct job {
	chan_ctx_t *ctx;		/* shared by both jobs: the value context */
	chan_ctx_t *cancel;		/* its cancellable parent: cancel() */
	bool greeting;
	int err;
	int64_t took;
	char line[96];
	pthread_t thread;
};

/* locale(ctx): ask the service found in ctx; the ctx ends the wait. */
static int
locale(chan_ctx_t *ctx, char *out, size_t size)
{
	chan_t *service = chan_ctx_value(ctx, &locale_key);
	int64_t deadline;
	chan_value_t v;
	bool ok;
	int rc;

	if (check_deadline && chan_ctx_deadline(ctx, &deadline) &&
	    deadline - (chan_now() + 60 * CHAN_SEC) <= 0)
		return CHAN_EDEADLINE;
	if ((rc = chan_recv(ctx, service, &v, &ok)) != CHAN_OK)
		return rc;
	snprintf(out, size, "%.*s", ok ? (int)v.len : 0, ok ? (char *)v.data : "");
	chan_value_clear(&v);
	return CHAN_OK;
}

/* genGreeting / genFarewell */
static int
gen(chan_ctx_t *parent, bool greeting, const char **word)
{
	chan_ctx_t *ctx = parent;
	char loc[16];
	int rc;

	if (greeting)				/* context.WithTimeout(ctx, 1*time.Second) */
		CHECK(chan_with_timeout(&ctx, parent, 1 * CHAN_SEC));
	rc = locale(ctx, loc, sizeof loc);
	if (greeting) {				/* defer cancel() */
		chan_cancel(ctx);
		chan_ctx_free(ctx);
	}
	if (rc != CHAN_OK)
		return rc;
	if (strcmp(loc, "EN/US") != 0)
		return CHAN_EINVAL;		/* "unsupported locale" */
	*word = greeting ? "hello" : "goodbye";
	return CHAN_OK;
}

/* go func() { printGreeting / printFarewell ... }() */
static void *
job_main(void *arg)
{
	struct job *j = arg;
	const char *what = j->greeting ? "greeting" : "farewell", *word = NULL;
	int64_t start = chan_now();

	j->err = gen(j->ctx, j->greeting, &word);
	j->took = chan_now() - start;
	if (j->err == CHAN_OK)
		snprintf(j->line, sizeof j->line, "%s world!", word);
	else
		snprintf(j->line, sizeof j->line, "cannot print %s: %s%s", what,
		    chan_strerror(j->err), check_deadline && j->greeting ? " (at once)" : "");
	if (j->err != CHAN_OK && j->greeting)
		chan_cancel(j->cancel);		/* cancel() */
	return NULL;
}

static void *
service_main(void *arg)
{
	CHECK(chan_send(NULL, arg, "EN/US", 5));
	CHECK(chan_send(NULL, arg, "EN/US", 5));
	return NULL;
}

/* One run; returns true when the errors are the expected ones. */
static bool
run(chan_conn_t *conn, const char *title, bool answer, int want_greet, int want_fare)
{
	chan_ctx_t *root, *ctx;
	chan_t *service;
	struct job jobs[2] = { { .greeting = true }, { .greeting = false } };
	pthread_t svc;
	int i;

	printf("%s\n", title);
	CHECK(chan_make(NULL, conn, NULL, 0, &service));
	CHECK(chan_with_cancel(&root, NULL));
	CHECK(chan_with_value(&ctx, root, &locale_key, service));
	if (answer)
		example_thread(&svc, service_main, service);
	for (i = 0; i < 2; i++) {
		jobs[i].ctx = ctx;
		jobs[i].cancel = root;
		example_thread(&jobs[i].thread, job_main, &jobs[i]);
	}
	for (i = 0; i < 2; i++) {
		pthread_join(jobs[i].thread, NULL);
		printf("%s\n", jobs[i].line);
	}
	if (answer)
		pthread_join(svc, NULL);
	chan_cancel(root);			/* defer cancel() */
	chan_ctx_free(ctx);
	chan_ctx_free(root);
	chan_free(service);
	return jobs[0].err == want_greet && jobs[1].err == want_fare &&
	    (!check_deadline || jobs[0].took < CHAN_SEC);
}

int
main(int argc, char **argv)
{
	chan_conn_t *conn = example_dial(example_addr(argc, argv));
	bool ok = true;

	ok = run(conn, "run 1: timeout and cancel", false, CHAN_EDEADLINE, CHAN_ECANCELED) && ok;
	check_deadline = true;
	ok = run(conn, "run 2: checking the deadline first", false, CHAN_EDEADLINE,
	    CHAN_ECANCELED) && ok;
	check_deadline = false;
	ok = run(conn, "run 3: the locale service answers", true, CHAN_OK, CHAN_OK) && ok;
	chan_conn_close(conn);
	return ok ? 0 : 1;
}
