/*
 * worker_pool.c: a job queue that survives a crashing worker, on an ack
 * channel (PROTOCOL.md §16): at-least-once delivery where a plain channel
 * would lose the job its dying receiver held.
 *
 *	jobs: an ack channel (ack_wait 30 s) feeding four worker processes
 *	each worker: m := <-jobs; results <- m*m; ack(m)
 *	worker 1 is killed (SIGKILL) holding its first job, unacked:
 *	the server gives the job back at once, another worker does it
 *
 * Workers are processes, so that the kill breaks a real connection.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "example.h"

#define WORKERS 4
#define JOBS 20

/* Both channels, made or opened (the same options make the same channel). */
static void
channels(chan_conn_t *conn, chan_t **jobs, chan_t **results)
{
	chan_delivery_opts_t o = CHAN_DELIVERY_OPTS_INIT;

	CHECK(chan_make_opts(NULL, conn, "pool.jobs", JOBS, &o, jobs));
	CHECK(chan_make(NULL, conn, "pool.results", JOBS, results));
}

static void
worker(const char *addr, int id)
{
	chan_conn_t *conn = example_dial(addr);
	chan_t *jobs, *results;
	chan_msg_t m;
	char out[64];
	bool ok;

	channels(conn, &jobs, &results);
	while (chan_recv_msg(NULL, jobs, &m, &ok) == CHAN_OK && ok) {
		long n = strtol(m.value.data, NULL, 10);

		if (m.count > 1)
			printf("worker %d: job %ld again (delivery %u)\n", id, n, m.count);
		if (id == 1) {
			printf("worker %d: crashing with job %ld\n", id, n);
			fflush(stdout);
			raise(SIGKILL);		/* holding it, unacked */
		}
		snprintf(out, sizeof out, "%ld %ld", n, n * n);
		CHECK(chan_send(NULL, results, out, strlen(out)));
		CHECK(chan_ack(jobs, &m));	/* rides on the next receive */
		chan_msg_clear(&m);
	}
	chan_free(jobs);
	chan_free(results);
	chan_conn_close(conn);
	exit(0);
}

int
main(int argc, char **argv)
{
	const char *addr = example_addr(argc, argv);
	struct timespec ms = { 0, 1000000 };
	chan_conn_t *conn;
	chan_t *jobs, *results;
	chan_info_t info;
	bool done[JOBS] = { false };
	pid_t pids[WORKERS];
	int left = JOBS, status;

	setvbuf(stdout, NULL, _IOLBF, 0);
	/* the workers first: none inherits our connection */
	for (int i = 0; i < WORKERS; i++)
		if ((pids[i] = fork()) == 0)
			worker(addr, i);
	conn = example_dial(addr);
	channels(conn, &jobs, &results);
	/* every worker waiting: the first four jobs go one to each (FIFO) */
	do {
		nanosleep(&ms, NULL);
		CHECK(chan_info(NULL, jobs, &info));
	} while (info.receivers < WORKERS);
	for (long n = 0; n < JOBS; n++)
		CHECK(send_int(NULL, jobs, n));
	while (left > 0) {
		chan_value_t v;
		bool ok;
		long n, sq;

		CHECK(chan_recv(NULL, results, &v, &ok));
		if (sscanf(v.data, "%ld %ld", &n, &sq) == 2 && n >= 0 && n < JOBS && !done[n]) {
			done[n] = true;
			left--;
		}
		chan_value_clear(&v);
	}
	CHECK(chan_info(NULL, jobs, &info));
	printf("%d of %d jobs done; redelivered %llu\n", JOBS, JOBS,
	    (unsigned long long)info.redelivered);
	CHECK(chan_close(NULL, jobs));
	for (int i = 0; i < WORKERS; i++)
		waitpid(pids[i], &status, 0);
	CHECK(chan_delete(NULL, jobs, NULL));
	CHECK(chan_delete(NULL, results, NULL));
	chan_free(jobs);
	chan_free(results);
	chan_conn_close(conn);
	return 0;
}
