/*
 * clustertest.h: the cluster fixture (clustertest.c: a real etcd and three
 * chand nodes on it; clustertest_client.c: the ct_* helpers that speak to
 * them as a client) and what the files of test_cluster and
 * test_cluster_across share with each other. Single-threaded: the CUnit
 * tests only.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#ifndef CHAND_CLUSTERTEST_H
#define CHAND_CLUSTERTEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "srvtest.h"
#include "status.h"

/* Scratch for encoding requests. */
extern struct proto_out ct_out;

/* A loopback port nobody listens on now. */
int ct_free_port(void);
/* The client port of the etcd test_cluster.c started. */
int ct_etcd_port(void);
/* A connection to port whose HELLO says it follows MOVED (moved), or a plain one. 0 or -1. */
int ct_open_client(struct test_conn *c, int port, bool moved);
/* MAKE name on c; the reply's status, and (msg not NULL) an error reply's words. */
int ct_make(struct test_conn *c, const char *name, char *msg, size_t cap);
/* ... with the channel's cap (chan_cap). */
int ct_make_cap(struct test_conn *c, const char *name, uint64_t chan_cap, char *msg, size_t cap);

/* The token the HELLOs of ct_* clients carry from now on (NULL: none, the default). */
void ct_set_token(const char *token);
/* A plain client (no MOVED cap) of node i; the test ends if it cannot connect. */
void ct_client_of(struct test_conn *c, int i);
/*
 * WAITERS at node i: how many pending requests have a case naming name,
 * and (home not NULL) come from that cluster node (their `home`).
 */
int ct_waiters_naming(int i, const char *name, const char *home);
/* The client id of a waiter at node i naming name with home; 0 if none. */
uint64_t ct_waiter_client(int i, const char *name, const char *home);
/* Receivers waiting on name at node i reach want (INFO, polled with a bound). */
bool ct_await_receivers(int i, const char *name, int64_t want);
/* Values buffered in name at node i (LEN); UINT64_MAX on an error. */
uint64_t ct_len(int i, const char *name);
/* LEN of name through node i: its status, *n (UINT64_MAX unless OK), its message in why (NULL: not). */
int ct_len_at(int i, const char *name, uint64_t *n, char *why, size_t cap);
/* SEND v to name at node i (asserts OK within 20 s). */
void ct_send(int i, const char *name, const char *v);
/* An anonymous channel of node i made through a new connection c, which holds it: its name in name. */
void ct_make_anonymous(struct test_conn *c, int i, uint64_t chan_cap, char *name, size_t cap);

#define CT_ETCD "/usr/bin/etcd"
#define CT_NODES 3
#define CT_TTL_S 2		/* the nodes' node_ttl, in seconds, unless a suite sets another */
/*
 * node_ttl for suites that do not time a failover: a node is fenced a
 * quarter of its ttl before its lease can expire, and on a loaded 2-core
 * machine (ASan, load 10-11) every node on it went up to 4.7 s without a
 * keepalive answered, so 2 s (and 6 s) leases ended in the middle of tests
 * that expected none. 10 s: fenced after 7.5 s.
 */
#define CT_STEADY_TTL_S 10
#define CT_CLUSTER "t"		/* their cluster_name */

#define CT_NAME_CAP 96
/* A channel named from base placed on node (made there with cap), into name (CT_NAME_CAP). */
void ct_make_on(int node, char *name, const char *base, uint64_t cap);
/*
 * Channel i (base, then i) placed and made on node i with cap, into
 * names[i]; node 0 knows their owners afterwards (it asked etcd): a
 * request of node 0's is never held for them.
 */
void ct_make_three(char names[CT_NODES][CT_NAME_CAP], const char *base, uint64_t cap);

/*
 * The suites' init and clean: a fresh etcd (temporary data dir) and
 * CT_NODES fresh nodes on it; stopped, the data dir removed. The TLS
 * variant makes certificates by gencerts.sh and puts TLS between the
 * nodes. 0 or -1 (CUnit's convention). The clean sets ct_set_node_extra,
 * ct_set_token and ct_set_node_ttl back to their defaults.
 */
int ct_suite_init(void);
int ct_suite_clean(void);
/* More config lines for the nodes the next ct_suite_init starts (NULL: none again). */
void ct_set_node_extra(const char *lines);
int ct_tls_suite_init(void);
int ct_tls_suite_clean(void);
/*
 * TLS between the nodes and authentication on: the nodes know each other by
 * their certificates (CN localhost), the ct_* clients say HELLO with a token
 * of their own; more: further config lines (allow rules), or NULL.
 */
int ct_tls_auth_suite_init(const char *more);
/* Start etcd again on its ports and data (0 when healthy), or stop it (SIGTERM). */
int ct_etcd_start(void);
void ct_etcd_stop(void);
/* The value of key in etcd (malloc'd), NULL when absent; node i's node key is there. */
char *ct_etcd_get(const char *key);
bool ct_node_key_present(int i);
/* The ttl (s) etcd granted node i's lease; 0 when its key is gone, -1 when etcd did not answer. */
int64_t ct_node_lease_ttl(int i);
/* Node i's server (pid, port, log); poll its log for needle (up to ms). */
struct test_server *ct_node(int i);
bool ct_await_log(int i, const char *needle, int ms);
/* Lines of node i's log containing needle. */
int ct_log_count(int i, const char *needle);
/* Print node i's log lines that contain needle (to stdout, for a failure's report). */
void ct_print_log(int i, const char *needle);

/*
 * What test_cluster and test_cluster_across share: the test that the
 * suite's three nodes joined (each sees all three, serves, and has its node
 * key in etcd) and the one that stops them all cleanly; the init of a
 * suite that times no failover (CT_STEADY_TTL_S leases).
 */
void ct_test_join(void);
void ct_test_stop_all(void);
int ct_steady_suite_init(void);
/* main's body: SIGPIPE ignored, ct_out ready, test_main over register_suites. */
int ct_main(int argc, char **argv, void (*register_suites)(void));
/* A suite of fresh nodes (init: ct_suite_init or the steady one): they join, add() adds its tests, they stop. */
void ct_nodes_suite(const char *name, CU_InitializeFunc init, void (*add)(CU_pSuite));

/* Node i's port (its advertise address is 127.0.0.1:PORT; it is named n<i>). */
int ct_node_port(int i);
/* With TLS (ct_tls_suite_init): node i's TLS port, the one it advertises; otherwise 0. */
int ct_node_tls_port(int i);
/* With TLS: the directory of gencerts.sh's certificates (ca.pem, client.pem, otherca.pem...); else "". */
const char *ct_certs(void);
/* MAKE name through node from, following one MOVED: the index of the node that made it. */
int ct_make_anywhere(int from, const char *name);

/* PROTOCOL.md §17's place of name among the nodes in the bit set live: its node, or -1. */
int ct_expected_place(const char *name, int live);
/* A name placed on node i (in st_name's buffers: copy it before the next st_name). */
const char *ct_name_placed_on(int i, const char *base);
/* test_cluster_route.c: the routing tests. */
void ct_add_route_tests(CU_pSuite s);

/* Node i's STATS key over a fresh connection; polled until it is want (up to ms). */
uint64_t ct_node_stat(int i, const char *key);
bool ct_await_stat(int i, const char *key, uint64_t want, int ms);
/* SIGKILL node i; start it again (same name, a new port) on the same etcd. */
void ct_node_kill(int i);
int ct_node_restart(int i);
/*
 * Restart node i (the test ends if it cannot) and wait, up to ms, until
 * every node counts CT_NODES and the others forward to i (ct_await_rejoined).
 */
void ct_node_rejoin(int i, int ms);
void ct_await_rejoined(int i, int ms);
/* Send sig (SIGSTOP, SIGCONT) to node i. */
void ct_node_signal(int i, int sig);
/* The fixture's node_ttl, in seconds. */
int ct_node_ttl_s(void);
/* node_ttl for the nodes the next ct_suite_init starts; ct_suite_clean sets CT_TTL_S again. */
void ct_set_node_ttl(int seconds);
/* MAKE name from node `from` as a MOVED-following client, retrying UNAVAILABLE, for up to ms. */
int ct_make_converged(int from, const char *name, int ms);
/* name's owner in etcd (malloc'd), NULL when none; put or delete a key straight in etcd. */
char *ct_chan_owner(const char *name);
bool ct_etcd_put(const char *key, const char *value);
bool ct_etcd_delete(const char *key);
/*
 * Node i's etcd lease ends now (revoked, as its ttl running out would end
 * it: its keys go, the others see it leave), for a node SIGKILLed whose
 * lease a test need not wait out. false when etcd did not.
 */
bool ct_node_expire(int i);

/* test_cluster_failover.c: the failover tests (SIGKILL of 100 channels' owner, ...). */
void ct_add_failover_tests(CU_pSuite s);

/* test_cluster_forward.c: forwarding through a node to the owner. */
void ct_add_forward_tests(CU_pSuite s);
/* ... and with authentication on: the nodes' extra config lines, and the tests. */
const char *ct_auth_conf(void);
void ct_add_auth_tests(CU_pSuite s);
/* The line of ct_auth_conf's that test_cluster_links_auth.c's reloads take away and give back. */
#define CT_AUTH_REVOCABLE "allow = alice lr.* send,recv,close\n"
/* ... and with TLS between the nodes (each advertises its TLS listener). */
void ct_add_tls_tests(CU_pSuite s);
/* ... and on nodes with idle_timeout = 500ms. */
void ct_add_idle_tests(CU_pSuite s);

/* test_cluster_ack.c: an ack channel through a forwarder; MOVED from an old owner. */
void ct_add_ack_tests(CU_pSuite s);
/* ACK of n tags on c (test_cluster_ack.c): the status; *acked (OK), the error's words in msg. */
int ct_ack(struct test_conn *c, const uint64_t *tags, size_t n, uint64_t *acked, char *msg,
    size_t cap);
/* NACK (delay 0) or TOUCH of tag on c: the status. */
int ct_nack_touch(struct test_conn *c, uint64_t op, uint64_t tag);

/* test_cluster_select.c: a SELECT over channels on three nodes (cross-node select). */
void ct_add_select_tests(CU_pSuite s);
/* test_cluster_stream.c: a STREAM over channels on three nodes (cross-node stream). */
void ct_add_stream_tests(CU_pSuite s);
/* test_cluster_selfpeer.c: the home's own group over its in-process connection. */
void ct_add_selfpeer_tests(CU_pSuite s);
/* Its first test alone, for the cluster_auth and cluster_tls suites. */
void ct_add_selfpeer_group_test(CU_pSuite s);
/* test_cluster_select_load.c */
void ct_add_select_load_tests(CU_pSuite s);
/* test_cluster_xack.c: a cross-node select over ack channels; and an ack channel (ack_wait 1 min) on node. */
void ct_add_xack_tests(CU_pSuite s);
void ct_add_xack_load_tests(CU_pSuite s);
void ct_make_ack_on(int node, const char *name, uint64_t cap);
/* test_cluster_links.c: links over channels of three nodes; ctl_* are its helpers. */
void ct_add_link_tests(CU_pSuite s);
/* Link l started on node 0 (c: its creator's new connection); its id. The test ends if not. */
uint64_t ctl_start_link(const struct proto_request *l, struct test_conn *c);
/* The link's final reply on c: its status; *sent its count (OK), msg (cap) its words. */
int ctl_link_end(struct test_conn *c, uint64_t op, uint64_t *sent, char *msg, size_t cap);
/* A one-input link request (out: its output, cap 4, or NULL); set_out names output i. */
struct proto_request ctl_one_in(uint64_t op, const char *in, const char *out);
void ctl_set_out(struct proto_request *l, int i, const char *name, uint64_t cap);
struct proto_case ctl_case_of(const char *name);
/* Receive one value of name through node (into buf); its ok. */
bool ctl_recv_from(int node, const char *name, char *buf, size_t cap);
/* Send "<prefix>0" ... "<prefix>n-1" to name through node. */
void ctl_send_n(int node, const char *name, const char *prefix, int n);
/* CLOSE name through node, with an error (code, msg) when msg is not NULL. */
void ctl_close_at(int node, const char *name, uint64_t code, const char *msg);
/* Send a reference to each of the n channels to, to name, through node: each OK. */
void ctl_send_refs(int node, const char *name, const char *const *to, int n);
/* name is closed and drained at node, with the error code (0: none). */
void ctl_assert_closed(int node, const char *name, uint64_t code);
/* Poll (up to 20 s) until want waiters at node name it (from home, if not NULL). */
bool ctl_await_waiters(int node, const char *name, const char *home, int want);
/* Poll (up to 20 s) until name's INFO len at node is want. */
bool ctl_await_len(int node, const char *name, uint64_t want);
/* test_cluster_links_end.c: how such links end. */
void ct_add_link_end_tests(CU_pSuite s);
/* test_cluster_links_auth.c: such links with authentication on (the cluster_auth suite). */
void ct_add_link_auth_tests(CU_pSuite s);

/*
 * The runs of a race whose two outcomes come about half the time each (the
 * home's random order): at least CT_RACE_MIN, then on until both were seen,
 * up to CT_RACE_MAX, so that missing one by chance fails once in 2^39.
 */
#define CT_RACE_MIN 12
#define CT_RACE_MAX 40
static inline bool
ct_race_more(int runs, int one, int other)
{
	return runs < CT_RACE_MIN || (runs < CT_RACE_MAX && (one == 0 || other == 0));
}

/* test_cluster_etcdtls.c: nodes on an etcd spoken to over TLS (its own etcd), cluster metrics. */
void ct_add_etcd_tls_suites(void);

/* test_cluster_etcd.c: the suites that need no etcd; the claim race that does. */
void ct_register_alone(void);
void ct_test_txn_race(void);
void ct_test_session_first(void);

#endif
