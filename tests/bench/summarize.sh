#!/bin/sh
# summarize.sh RESULTS.tsv SUMMARY.tsv: the median of every figure over the
# rounds (SUMMARY.tsv: system workload metric median), then the table of
# issue 8 on stdout: chand's medians, the peer's, the ratio chand/peer and
# the target it is held to (MET, MISS, or n/a when a figure is missing).
# Beside SUMMARY.tsv, pairs.tsv: each ratio row of the table whose figures
# were measured (label, system workload metric of chand's figure and of the
# peer's, target op and value, "" when none), one a line, for plot.sh; a
# row of a figure that is a ratio itself (6's speedup) has no peer.
# SPDX-License-Identifier: BSD-2-Clause
set -eu
tab=$(printf '\t')
sort -t"$tab" -k2,2 -k3,3 -k4,4 -k5,5g "$1" | awk -F'\t' -v OFS='\t' '
function flush() { print prev, (n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2); n = 0 }
{ key = $2 OFS $3 OFS $4; if (n > 0 && key != prev) flush(); prev = key; v[++n] = $5 }
END { if (n > 0) flush() }' > "$2"

awk -F'\t' -v pairs="$(dirname "$2")/pairs.tsv" '
BEGIN { printf "" > pairs }
{ m[$1, $2, $3] = $4 }
function fmt(x) { return x >= 1000 ? sprintf("%.0f", x) : sprintf("%.3g", x) }
function judge(r, op, t) {
	if (op == "") return "-"
	return (op == ">=" ? r >= t : r <= t) ? "MET" : "MISS"
}
# ratio row: chand figure (s1 w1 k1) against a peer figure (s2 w2 k2)
function ratio(label, s1, w1, k1, s2, w2, k2, op, t,   a, b, r) {
	if (!((s1, w1, k1) in m)) return
	a = m[s1, w1, k1]
	if (!((s2, w2, k2) in m)) {
		printf "%-36s %10s  %-8s %10s %8s  %-8s %s\n", label, fmt(a), s2, "n/a", "", (op == "" ? "" : op t "x"), op == "" ? "-" : "n/a"
		return
	}
	b = m[s2, w2, k2]; r = b ? a / b : 0
	printf "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", label, s1, w1, k1, s2, w2, k2, op, (op == "" ? "" : t) > pairs
	printf "%-36s %10s  %-8s %10s %7.2fx  %-8s %s\n", label, fmt(a), s2, fmt(b), r, (op == "" ? "" : op t "x"), judge(r, op, t)
}
# absolute row: a chand figure against a fixed bound
function absolute(label, w, k, op, t,   a) {
	if (!(("chand", w, k) in m)) return
	a = m["chand", w, k]
	if (k ~ /^speedup/)
		printf "%s\tchand\t%s\t%s\t\t\t\t%s\t%s\n", label, w, k, op, (op == "" ? "" : t) > pairs
	printf "%-36s %10s  %-8s %10s %8s  %-8s %s\n", label, fmt(a), "", "", "", (op == "" ? "" : op t), judge(a, op, t)
}
END {
	printf "%-36s %10s  %-8s %10s %8s  %-8s %s\n", "workload (medians)", "chand", "peer", "peer", "ratio", "target", "verdict"
	ratio("1 throughput msgs/s (16 in flight)", "chand", "w1", "msgs_s", "redis", "w1", "msgs_s", ">=", 2.0)
	ratio("1 throughput msgs/s (16 in flight)", "chand", "w1", "msgs_s", "nats", "w1", "msgs_s", ">=", 1.0)
	# CPU of the server a value: what the server costs, whatever the generator and the load
	ratio("1 server CPU us/value (16 in flight)", "chand", "w1", "srv_us_op", "redis", "w1", "srv_us_op", "<=", 0.5)
	ratio("1 server CPU us/value (16 in flight)", "chand", "w1", "srv_us_op", "nats", "w1", "srv_us_op", "", 0)
	ratio("1 same, receives one by one (ops)", "chand", "w1_ops", "msgs_s", "redis", "w1", "msgs_s", "", 0)
	ratio("1 throughput msgs/s (1024 = cap)", "chand", "w1_cap", "msgs_s", "redis", "w1_cap", "msgs_s", ">=", 2.0)
	ratio("1 throughput msgs/s (1024 = cap)", "chand", "w1_cap", "msgs_s", "nats", "w1_cap", "msgs_s", ">=", 1.0)
	split("1 4 16 64 256", d, " ")
	for (i = 1; i <= 5; i++)
		ratio("1 curve msgs/s, " d[i] " in flight", "chand", "w1_t" d[i], "msgs_s", "redis", "w1_t" d[i], "msgs_s", "", 0)
	ratio("2 ping-pong p50 us", "chand", "w2", "p50_us", "relay", "w2", "p50_us", "<=", 1.25)
	ratio("2 ping-pong p50 us", "chand", "w2", "p50_us", "nats", "w2", "p50_us", "<=", 0.5)
	ratio("2 ping-pong p50 us", "chand", "w2", "p50_us", "redis", "w2", "p50_us", "", 0)
	ratio("2 same, a blocking call each (ops)", "chand", "w2_ops", "p50_us", "relay", "w2", "p50_us", "<=", 1.15)
	ratio("2 same, a blocking call each (ops)", "chand", "w2_ops", "p50_us", "rdvrelay", "w2", "p50_us", "", 0)
	ratio("2 same, no context (plain)", "chand", "w2_plain", "p50_us", "relay", "w2", "p50_us", "", 0)
	ratio("2 same, no context (plain)", "chand", "w2_plain", "p50_us", "rdvrelay", "w2", "p50_us", "", 0)
	ratio("2 rendezvous relay: 4 exchanges", "rdvrelay", "w2", "p50_us", "relay", "w2", "p50_us", "", 0)
	ratio("2 ping-pong p99 us", "chand", "w2", "p99_us", "relay", "w2", "p99_us", "", 0)
	ratio("2 ping-pong p99 us", "chand", "w2", "p99_us", "nats", "w2", "p99_us", "", 0)
	ratio("2 ping-pong p99 us", "chand", "w2", "p99_us", "redis", "w2", "p99_us", "", 0)
	ratio("1 Python client msgs/s (16 in flight)", "python", "w1", "msgs_s", "redispy", "w1", "msgs_s", ">=", 1.5)
	ratio("1 same, 2 client processes", "python", "w1_p2", "msgs_s", "redispy", "w1_p2", "msgs_s", "", 0)
	ratio("1 same, asyncio", "pyaio", "w1", "msgs_s", "redisaio", "w1", "msgs_s", "", 0)
	ratio("2 Python client ping-pong p50 us", "python", "w2", "p50_us", "redispy", "w2", "p50_us", "<=", 1.1)
	ratio("2 Python client ping-pong p99 us", "python", "w2", "p99_us", "redispy", "w2", "p99_us", "", 0)
	ratio("2 same, asyncio, p50 us", "pyaio", "w2", "p50_us", "redisaio", "w2", "p50_us", "", 0)
	ratio("3 select wake-up p50 us (vs w2)", "chand", "w3", "p50_us", "chand", "w2", "p50_us", "<=", 1.2)
	ratio("3 select wake-up p99 us (vs w2)", "chand", "w3", "p99_us", "chand", "w2", "p99_us", "<=", 1.2)
	ratio("3 a SELECT per wake-up p50 (ops)", "chand", "w3_ops", "p50_us", "chand", "w2", "p50_us", "", 0)
	ratio("4 many clients ops/s", "chand", "w4", "ops_s", "redis", "w4", "ops_s", ">=", 1.5)
	ratio("4 server CPU us/op (1,000 clients)", "chand", "w4", "srv_us_op", "redis", "w4", "srv_us_op", "<=", 0.67)
	ratio("4 many clients p99 us", "chand", "w4", "p99_us", "redis", "w4", "p99_us", "", 0)
	ratio("4 same, one request at a time (ops)", "chand", "w4_ops", "ops_s", "redis", "w4_ops", "ops_s", "", 0)
	ratio("4 same (ops), p99 us", "chand", "w4_ops", "p99_us", "redis", "w4_ops", "p99_us", "", 0)
	absolute("5 bytes per idle channel", "w5", "bytes_per_channel", "<=", 200)
	absolute("5 bytes per blocked receiver+conn", "w5", "bytes_per_receiver", "<=", 2048)
	absolute("6 fan-out sha256 jobs/s, 1 worker", "w6", "jobs_s_1w", "", 0)
	absolute("6 fan-out sha256 jobs/s, 2 workers", "w6", "jobs_s_2w", "", 0)
	absolute("6 fan-out speedup 2w/1w", "w6", "speedup_2w", ">=", 1.7)
	absolute("6 same, fed 8 deep: 1 worker", "w6_t8", "jobs_s_1w", "", 0)
	absolute("6 same, fed 8 deep: 2 workers", "w6_t8", "jobs_s_2w", "", 0)
	absolute("6 same, fed 8 deep: speedup", "w6_t8", "speedup_2w", "", 0)
	split("16 1024", q, " ")
	for (i = 1; i <= 2; i++) {
		ratio("7 ack channel msgs/s, " q[i] " in flight", "chand", "w7_ack_t" q[i], "msgs_s", "nats", "w7_t" q[i], "msgs_s", ">=", 1.0)
		ratio("7 ack channel msgs/s, " q[i] " in flight", "chand", "w7_ack_t" q[i], "msgs_s", "redis", "w7_t" q[i], "msgs_s", ">=", 2.0)
		ratio("7 ack/plain channel, " q[i] " in flight", "chand", "w7_ack_t" q[i], "msgs_s", "chand", "w7_plain_t" q[i], "msgs_s", ">=", 0.7)
		ratio("7 libchanclient ack, " q[i] " in flight", "chand", "w7_lib_ack_t" q[i], "msgs_s", "redis", "w7_t" q[i], "msgs_s", "", 0)
		ratio("7 libchanclient ack/plain, " q[i], "chand", "w7_lib_ack_t" q[i], "msgs_s", "chand", "w7_lib_plain_t" q[i], "msgs_s", "", 0)
	}
	for (i = 1; i <= 2; i++) {
		ratio("9 durable always msgs/s, " q[i] " in flight", "chand", "w9_always_t" q[i], "msgs_s", "redis", "w9_always_t" q[i], "msgs_s", ">=", 1.0)
		ratio("9 durable always msgs/s, " q[i] " in flight", "chand", "w9_always_t" q[i], "msgs_s", "nats", "w9_file_t" q[i], "msgs_s", ">=", 1.0)
		ratio("9 durable always p50 us, " q[i] " in flight", "chand", "w9_always_t" q[i], "p50_us", "redis", "w9_always_t" q[i], "p50_us", "", 0)
		ratio("9 durable always p99 us, " q[i] " in flight", "chand", "w9_always_t" q[i], "p99_us", "redis", "w9_always_t" q[i], "p99_us", "", 0)
		ratio("9 durable everysec msgs/s, " q[i] " in flight", "chand", "w9_everysec_t" q[i], "msgs_s", "redis", "w9_everysec_t" q[i], "msgs_s", "", 0)
		ratio("9 durable everysec/plain, " q[i] " in flight", "chand", "w9_everysec_t" q[i], "msgs_s", "chand", "w9_plain_t" q[i], "msgs_s", ">=", 0.8)
	}
	absolute("9 replay s (N9R values, 1k chans)", "w9_replay", "replay_s", "", 0)
	absolute("9 replay MB/s of journal", "w9_replay", "replay_mb_s", "", 0)
	absolute("9 replay values/s", "w9_replay", "replay_values_s", "", 0)
	split("owner fwd routed", cs, " ")
	for (i = 1; i <= 3; i++) {
		ratio("10 cluster " cs[i] " msgs/s, 16 in flight", cs[i], "w10_t16", "msgs_s", "chand", "w10_t16", "msgs_s", cs[i] == "routed" ? ">=" : "", 0.95)
		ratio("10 cluster " cs[i] " msgs/s, 1024", cs[i], "w10_t1024", "msgs_s", "chand", "w10_t1024", "msgs_s", cs[i] == "routed" ? ">=" : "", 0.95)
		ratio("10 cluster " cs[i] " ping-pong p50 us", cs[i], "w10_pp", "p50_us", "chand", "w10_pp", "p50_us", cs[i] == "fwd" ? "<=" : "", 1.6)
		ratio("10 cluster " cs[i] " ping-pong p99 us", cs[i], "w10_pp", "p99_us", "chand", "w10_pp", "p99_us", "", 0)
	}
	for (i = 1; i <= 3; i++) {
		ratio("11 select wake-up p50, cases on " i " node" (i > 1 ? "s" : ""), "nodes" i, "w11", "p50_us", "chand", "w11_single", "p50_us", i > 1 ? "<=" : "", 2.0)
		ratio("11 select wake-up p99, cases on " i " node" (i > 1 ? "s" : ""), "nodes" i, "w11", "p99_us", "chand", "w11_single", "p99_us", "", 0)
		ratio("11 same, streaming, p50, " i " node" (i > 1 ? "s" : ""), "nodes" i, "w11_stream", "p50_us", "chand", "w11_stream_single", "p50_us", "", 0)
	}
	ratio("8 bytes per blocked receiver (10k)", "chand", "w8", "bytes_per_receiver", "redis", "w8", "bytes_per_receiver", "", 0)
	ratio("8 wake 10k blocked receivers, ms", "chand", "w8", "wake_all_ms", "redis", "w8", "wake_all_ms", "", 0)
	ratio("8 same, p99 wake-up us", "chand", "w8", "p99_us", "redis", "w8", "p99_us", "", 0)
}' "$2"
