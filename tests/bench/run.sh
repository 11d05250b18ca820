#!/bin/bash
# tests/bench/run.sh: chand side by side with Redis, NATS and a raw TCP relay
# (issue 8), in one command. The relay gives workload 2 two floors: relay
# (2 messages a hop) and rdvrelay (relay ping -r: the 4 requests and 4
# replies a round trip of a blocking call each, matched as on an
# unbuffered channel).
#
#   tests/bench/run.sh [--smoke] [--rounds N] [--only LIST] [--build DIR] [--out DIR]
#                      [--busy-poll US]
#
# Full mode installs the peers if missing (apt-get: redis-server
# libhiredis-dev nats-server golang-go golang-github-nats-io-go-nats-dev
# gnuplot-nox python3-msgpack python3-redis), builds chand, chanbench and
# relay in DIR (default build/, configured like bootstrap.sh does) and the
# peer drivers in a temp dir, starts every server on 127.0.0.1 (ephemeral
# ports), runs each workload on each system in turn (workloads 1 and 2 from
# Python too, with pybench.py: system python is chand's Python client,
# redispy is redis-py on the same Redis, pyaio and redisaio the same through
# asyncio), --rounds times (default 5), stops
# everything it started, and writes to the output directory (default
# tests/bench/out/):
#   results.tsv   one line per figure and round (workloads 2 and 3: per run, three a
#                 round): round system workload metric value
#   summary.tsv   the median of each figure over the rounds: system workload metric median
#   table.txt     the table printed at the end: medians, ratios chand/peer, targets
#   bench.png     latency distributions (workloads 2, 3) and throughput against depth
#   ratios.png    every ratio row of the table: chand / peer per round, median and
#                 min-max over the rounds, with its target (plot.sh, from pairs.tsv:
#                 the table's ratio rows, written by summarize.sh)
#   samples/      the latency samples of round 1, µs, one a line
# --smoke runs every workload tiny (seconds), on chand alone: no peers, no
# install, no plot; make check runs it (tests/bench/smoke.sh).
# --only LIST runs only the workloads listed (comma-separated numbers, e.g.
# --only 7: the ack channel against JetStream and Redis Streams).
# --only 11: select wake-up with its cases on 1, 2 and 3 nodes, a SELECT a wake-up
# and a streaming select (issue 20; etcd).
# --only 10: the cluster (issue 19): etcd and three chand nodes; skipped
# without /usr/bin/etcd.
# --busy-poll US: every chand runs with busy_poll_us = US (default: chand's
# default, 100), and the relay polls as long (relay serve -S), so that the
# floors pay the wake-ups chand pays; --busy-poll 0 measures both sleeping
# at once, as Redis does.
# N7=COUNT in the environment sets workload 7's values per run (default 200000),
# N9=COUNT workload 9's (durable channels; default 100000), N9R=COUNT the values
# its recovery row replays (default 1000000, in 1,000 channels).
# N10=COUNT workload 10's values per throughput run (default 1500000: at 1024 in flight
# 300,000 took 0.15 s, and one system's rounds spread 1.12-1.95 M/s).
# SPDX-License-Identifier: BSD-2-Clause
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
here=$top/tests/bench
. "$here/ab_cluster.sh"	# stem_on, etcd_start, node_start
smoke=0 rounds=5 build=$top/build out="" only="" busy_poll=100
while [ $# -gt 0 ]; do
	case "$1" in
	--smoke) smoke=1; rounds=1 ;;
	--rounds) rounds=$2; shift ;;
	--only) only=$2; shift ;;
	--build) build=$2; shift ;;
	--out) out=$2; shift ;;
	--busy-poll) busy_poll=$2; shift ;;
	*) echo "usage: $0 [--smoke] [--rounds N] [--only LIST] [--build DIR] [--out DIR]" \
		"[--busy-poll US]" >&2; exit 2 ;;
	esac
	shift
done

chand_set=(--set "busy_poll_us=$busy_poll")	# every chand's, the cluster's too (ab_cluster.sh)
work=$(mktemp -d /tmp/chand-bench.XXXXXX)
[ -n "$out" ] || { [ $smoke = 1 ] && out=$work/out || out=$here/out; }
mkdir -p "$out/samples"
pids=()

# Stop exactly what this script started (by pid), then remove the temp dir.
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "bench: $*" >&2; }

# ---- peers and build -------------------------------------------------------------

install_peers() {
	local want="redis-server libhiredis-dev nats-server golang-go golang-github-nats-io-go-nats-dev gnuplot-nox
python3-msgpack python3-redis"
	local missing="" p sudo=""
	for p in $want; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
	done
	[ -z "$missing" ] && return
	log "installing$missing"
	[ "$(id -u)" -eq 0 ] || sudo=sudo
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $missing >/dev/null
}

build_tree() {
	if [ ! -f "$build/Makefile" ]; then
		[ -x "$top/configure" ] || (cd "$top" && ./autogen.sh >/dev/null 2>&1)
		mkdir -p "$build"
		(cd "$build" && "$top/configure" --quiet)
	fi
	make -s -C "$build" -j"$(nproc)" server/chand tests/bench/chanbench tests/bench/relay \
		tests/bench/streambench tests/bench/wakebench client/chanctl >/dev/null
}

build_peers() {
	cc -std=gnu11 -O2 -Wall -Wextra -o "$work/redis_bench" "$here/redis_bench.c" "$here/bench.c" \
		-lhiredis -pthread
	(cd "$here" && GOPATH=/usr/share/gocode GO111MODULE=off GOCACHE="$work/gocache" \
		go build -o "$work/natsbench" natsbench.go)
}

CHAND=$build/server/chand
CHANBENCH=$build/tests/bench/chanbench
RELAY=$build/tests/bench/relay
STREAMBENCH=$build/tests/bench/streambench
WAKEBENCH=$build/tests/bench/wakebench
CHANCTL=$build/client/chanctl
PYBENCH=(/usr/bin/python3 "$here/pybench.py")	# the Python client, and redis-py beside it

# ---- servers ---------------------------------------------------------------------

# wait_port PORT [PID]: wait (at most 30 s: ASan builds on 2 busy cores start
# slowly) until something listens on 127.0.0.1:PORT; give up at once when
# PID, the process meant to listen there, has exited (say, its port was
# taken between picking it and binding it).
wait_port() {
	local i
	for i in $(seq 300); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		if [ -n "${2:-}" ] && ! kill -0 "$2" 2>/dev/null; then
			log "the process meant to listen on port $1 has exited"; return 1
		fi
		sleep 0.1
	done
	log "nothing listens on port $1"; return 1
}

# start_chand NAME CONF_LINES: chand on an ephemeral port; sets port_NAME, pid_NAME.
start_chand() {
	local name=$1 i
	printf '%b\n' "$2" > "$work/$name.conf"
	rm -f "$work/$name.port"	# a later round's chand must not be taken for the last one
	"$CHAND" -f -c "$work/$name.conf" -l 127.0.0.1 -p 0 --port-file "$work/$name.port" \
		"${chand_set[@]}" 2>"$work/$name.log" &
	pids+=($!)
	eval "pid_$name=$!"
	for i in $(seq 100); do [ -s "$work/$name.port" ] && break; sleep 0.1; done
	if [ ! -s "$work/$name.port" ]; then
		log "chand ($name) reported no port within 10 s; its log:"
		tail -5 "$work/$name.log" >&2
	fi
	eval "port_$name=$(cat "$work/$name.port")"
}

stop_pid() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

start_peers() {
	port_redis=$("$RELAY" port)
	redis-server --port "$port_redis" --bind 127.0.0.1 --save '' --appendonly no \
		--maxclients $((W8 + 100)) --loglevel warning --dir "$work" >"$work/redis.log" 2>&1 &
	pids+=($!)
	pid_redis=$!
	port_nats=$("$RELAY" port)
	nats-server -a 127.0.0.1 -p "$port_nats" >"$work/nats.log" 2>&1 &
	pids+=($!)
	pid_nats=$!
	# JetStream (workload 7) on a server of its own, so workloads 1-2 meet plain NATS as before
	port_js=$("$RELAY" port)
	mkdir -p "$work/js"
	nats-server -a 127.0.0.1 -p "$port_js" -js -sd "$work/js" >"$work/js.log" 2>&1 &
	pids+=($!)
	pid_js=$!
	wait_port "$port_redis" "$pid_redis"
	wait_port "$port_nats" "$pid_nats"
	wait_port "$port_js" "$pid_js"
}

# The relay on a port picked first: tried again on a new one if it was taken.
start_relay() {
	local try
	for try in 1 2 3; do
		port_relay=$("$RELAY" port)
		"$RELAY" serve -p "$port_relay" -S "$busy_poll" &
		pids+=($!)
		wait_port "$port_relay" "$!" && return 0
	done
}

# ---- workloads --------------------------------------------------------------------

# record ROUND SYSTEM CMD...: run a driver (bounded), keep its RESULT lines.
record() {
	local round=$1 sys=$2
	shift 2
	timeout 600 "$@" </dev/null | while read -r tag w metric value; do
		[ "$tag" = RESULT ] && printf '%s\t%s\t%s\t%s\t%s\n' "$round" "$sys" "$w" "$metric" "$value"
	done >> "$out/results.tsv" || { log "FAILED: $sys: $*"; failed=1; }
}

# record_cpu ROUND SYSTEM PID OPS CMD...: record, then the server's CPU (user
# + system of PID, /proc) per operation over the run as the figure
# srv_us_op. OPS is the count of operations, or "ops" for the driver's own
# "RESULT tag ops N". Throughput on two vCPUs measures the server and its
# one generator together (they share the machine: tests/bench/bound.sh);
# the server's CPU an operation is the server's alone. Other load on the
# machine still raises it (caches, the hypervisor), less than throughput:
# compare it with the peer's from the same run.
record_cpu() {
	local round=$1 sys=$2 pid=$3 ops=$4 c0 c1 from
	shift 4
	from=$(($(wc -l < "$out/results.tsv") + 1))
	c0=$(awk '{ print $14 + $15 }' "/proc/$pid/stat")
	record "$round" "$sys" "$@"
	c1=$(awk '{ print $14 + $15 }' "/proc/$pid/stat")
	tail -n +"$from" "$out/results.tsv" | awk -F'\t' -v OFS='\t' -v ops="$ops" -v c0="$c0" \
	    -v c1="$c1" -v tck="$(getconf CLK_TCK)" '
		ops == "ops" && $4 == "ops" { n = $5 }
		NR == 1 { r = $1; s = $2; w = $3 }
		END {
			if (ops != "ops") n = ops
			if (n > 0) print r, s, w, "srv_us_op", (c1 - c0) / tck * 1e6 / n
		}' >> "$out/results.tsv"
}

# samples ROUND[SUBRUN] NAME: where round 1's first run writes latency samples (nowhere later).
samples() { [ "$1" = 11 ] && echo "-o $out/samples/$2.txt" || echo ""; }

# want N: workload N is to run (--only)
want() { [ -z "$only" ] || [[ ",$only," == *",$1,"* ]]; }

run_round() {
	local r=$1 d
	log "round $r of $rounds"
	want 1 && run_w1 "$r"
	{ want 2 || want 3; } && run_w23 "$r"
	want 4 && run_w4 "$r"
	want 5 && run_w5 "$r"
	want 6 && run_w6 "$r"
	want 7 && run_w7 "$r"
	want 8 && run_w8 "$r"
	want 9 && run_w9 "$r"
	want 10 && run_w10 "$r"
	want 11 && run_w11 "$r"
	return 0
}

run_w1() {
	local r=$1 d
	# (1) buffered throughput, and the curve against requests in flight
	# (and at 16 in flight the server's CPU a value, beside)
	record_cpu "$r" chand "$pid_chand" "$N1" "$CHANBENCH" -p "$port_chand" -n "$N1" -t 16 throughput
	record "$r" chand "$CHANBENCH" -p "$port_chand" -n "$N1" -t 16 -m ops -k w1_ops throughput
	if [ $smoke = 0 ]; then
		record_cpu "$r" redis "$pid_redis" "$N1" "$work/redis_bench" -p "$port_redis" -n "$N1" -t 16 throughput
		record_cpu "$r" nats "$pid_nats" "$N1" "$work/natsbench" -p "$port_nats" -n "$N1" pubsub
		# at the channel's cap in flight: a Go producer runs that far ahead before it blocks
		record "$r" chand "$CHANBENCH" -p "$port_chand" -n "$NCAP" -t 1024 -k w1_cap throughput
		record "$r" redis "$work/redis_bench" -p "$port_redis" -n "$NCAP" -t 1024 -k w1_cap throughput
		record "$r" nats "$work/natsbench" -p "$port_nats" -n "$NCAP" -k w1_cap pubsub
		for d in $DEPTHS; do
			record "$r" chand "$CHANBENCH" -p "$port_chand" -n "$NCURVE" -t "$d" -k "w1_t$d" throughput
			record "$r" redis "$work/redis_bench" -p "$port_redis" -n "$NCURVE" -t "$d" -k "w1_t$d" throughput
		done
		# the same work from Python: chand's client against redis-py
		record "$r" python "${PYBENCH[@]}" -p "$port_chand" -n "$NPY1" -t 16 throughput
		record "$r" redispy "${PYBENCH[@]}" -p "$port_redis" -n "$NPY1" -t 16 --redis throughput
		# two client processes (one GIL each), and asyncio
		record "$r" python "${PYBENCH[@]}" -p "$port_chand" -n "$NPY1" -t 16 --procs 2 -k w1_p2 throughput
		record "$r" redispy "${PYBENCH[@]}" -p "$port_redis" -n "$NPY1" -t 16 --procs 2 -k w1_p2 --redis throughput
		record "$r" pyaio "${PYBENCH[@]}" -p "$port_chand" -n "$NPY1" -t 16 --aio throughput
		record "$r" redisaio "${PYBENCH[@]}" -p "$port_redis" -n "$NPY1" -t 16 --aio --redis throughput
	fi
}

run_w23() {
	local r=$1 k
	# (2) rendezvous ping-pong and (3) select wake-up: a latency run keeps
	# the CPUs its processes started on, and on two vCPUs that placement
	# moves a round trip by steps of ~10 µs, so each system's figure comes
	# from $SUBRUNS fresh pairs of processes a round
	for k in $(seq "$SUBRUNS"); do
		record "$r" chand "$CHANBENCH" -p "$port_chand" -n "$N2" $(samples "$r$k" w2_chand) pingpong
		record "$r" chand "$CHANBENCH" -p "$port_chand" -n "$N2" -m ops -k w2_ops pingpong
		record "$r" chand "$CHANBENCH" -p "$port_chand" -n "$N2" -m plain -k w2_plain pingpong
		if [ $smoke = 0 ]; then
			record "$r" redis "$work/redis_bench" -p "$port_redis" -n "$N2" $(samples "$r$k" w2_redis) pingpong
			record "$r" nats "$work/natsbench" -p "$port_nats" -n "$N2" $(samples "$r$k" w2_nats) reqrep
			record "$r" relay "$RELAY" ping -p "$port_relay" -n "$N2" $(samples "$r$k" w2_relay)
			# the floor of a blocking call each: the same 4 requests and 4 replies
			record "$r" rdvrelay "$RELAY" ping -r -p "$port_relay" -n "$N2"
		fi
		record "$r" chand "$CHANBENCH" -p "$port_chand" -n "$N3" -C "$SEL" $(samples "$r$k" w3_chand) select
		record "$r" chand "$CHANBENCH" -p "$port_chand" -n "$N3" -C "$SEL" -m ops -k w3_ops select
	done
	if [ $smoke = 0 ]; then		# (2) from Python, once a round
		record "$r" python "${PYBENCH[@]}" -p "$port_chand" -n "$NPY2" pingpong
		record "$r" redispy "${PYBENCH[@]}" -p "$port_redis" -n "$NPY2" --redis pingpong
		record "$r" pyaio "${PYBENCH[@]}" -p "$port_chand" -n "$NPY2" --aio pingpong
		record "$r" redisaio "${PYBENCH[@]}" -p "$port_redis" -n "$NPY2" --aio --redis pingpong
	fi
}

run_w4() {
	local r=$1
	# (4) many clients: each pair's send and receive in one write (-m ops: one at a time);
	# the server's CPU an operation beside the first (the setup's connections included)
	record_cpu "$r" chand "$pid_chand" ops "$CHANBENCH" -p "$port_chand" -c "$CONNS" -d "$SECS" many
	record "$r" chand "$CHANBENCH" -p "$port_chand" -c "$CONNS" -d "$SECS" -m ops -k w4_ops many
	if [ $smoke = 0 ]; then
		record_cpu "$r" redis "$pid_redis" ops "$work/redis_bench" -p "$port_redis" -c "$CONNS" -d "$SECS" many
		record "$r" redis "$work/redis_bench" -p "$port_redis" -c "$CONNS" -d "$SECS" -m ops -k w4_ops many
	fi
}

run_w5() {
	local r=$1
	# (5) memory, on a fresh chand of its own
	start_chand mem "log_level = warn\nmax_connections = $((RECV + 100))\nmax_channels = $((IDLE + 1000))"
	record "$r" chand "$CHANBENCH" -p "$port_mem" -P "$pid_mem" -C "$IDLE" -R "$RECV" memory
	stop_pid "$pid_mem"
}

run_w6() {
	local r=$1
	# (6) fan-out job, 1 and 2 workers; fed 64 deep, like a Go producer that
	# blocks only on the full buffer (the old 8-deep feed as w6_t8)
	record "$r" chand "$CHANBENCH" -p "$port_chand" -n "$N6" -t 64 -s 4096 fanout
	record "$r" chand "$CHANBENCH" -p "$port_chand" -n "$N6" -t 8 -s 4096 -k w6_t8 fanout
}

run_w7() {
	local r=$1 d
	# (7) ack channel throughput (issue 17): one producer, one consumer, DEPTH
	# values delivered unacked at most, acks batched: chand's ack channel (a
	# STREAM with credit DEPTH, one deferred ACK with each CREDIT), the same
	# without acks (a plain channel), JetStream (pull consumer, AckExplicit,
	# max_ack_pending = fetch batch = DEPTH, async acks), Redis Streams
	# (XREADGROUP COUNT DEPTH, one XACK a batch pipelined with the next read);
	# 16-byte values, producers 256 ahead at most; and chand's ack and plain
	# channels again through libchanclient (chanbench -a, w7_lib_*)
	for d in $W7_DEPTHS; do
		record "$r" chand "$STREAMBENCH" -k "w7_ack_t$d" "$port_chand" "$N7" stream "$d" ack
		record "$r" chand "$STREAMBENCH" -k "w7_plain_t$d" "$port_chand" "$N7" stream "$d"
		# the same through libchanclient: chan_stream_recv_msg and chan_ack a value
		record "$r" chand "$CHANBENCH" -p "$port_chand" -n "$N7" -s 16 -t "$d" -w 256 -a \
			-k "w7_lib_ack_t$d" throughput
		record "$r" chand "$CHANBENCH" -p "$port_chand" -n "$N7" -s 16 -t "$d" -w 256 \
			-k "w7_lib_plain_t$d" throughput
		if [ $smoke = 0 ]; then
			record "$r" nats "$work/natsbench" -p "$port_js" -n "$N7" -s 16 -t "$d" -k "w7_t$d" js
			record "$r" redis "$work/redis_bench" -p "$port_redis" -n "$N7" -s 16 -t "$d" -k "w7_t$d" streams
		fi
	done
}

run_w8() {
	local r=$1
	# (8) connection scale: W8 connections each blocked in one receive, then
	# all woken at once (chand: W8 SENDs in one write; Redis: BRPOP woken by
	# one RPUSH of W8 values), on a chand of its own; RSS per blocked receiver
	start_chand wake "log_level = warn\nmax_connections = $((W8 + 100))"
	record "$r" chand "$WAKEBENCH" -s chand -p "$port_wake" -P "$pid_wake" -c "$W8"
	stop_pid "$pid_wake"
	if [ $smoke = 0 ]; then
		record "$r" redis "$WAKEBENCH" -s redis -p "$port_redis" -P "$pid_redis" -c "$W8"
	fi
}

# start_redis_aof NAME FSYNC: a Redis of its own with appendonly yes; sets port_NAME, pid_NAME.
start_redis_aof() {
	local name=$1 p
	p=$("$RELAY" port)
	mkdir -p "$work/$name"
	redis-server --port "$p" --bind 127.0.0.1 --save '' --appendonly yes --appendfsync "$2" \
		--loglevel warning --dir "$work/$name" >"$work/$name.log" 2>&1 &
	pids+=($!)
	eval "pid_$name=$!"
	wait_port "$p" "$!"
	eval "port_$name=$p"
}

run_w9() {
	local r=$1 d f
	# (9) durable channels (issue 18): one producer DEPTH sends ahead, one
	# consumer, 16-byte values; throughput and each send's latency. chand with
	# fsync always and everysec (a data_dir each), a plain channel beside
	# them; Redis with appendonly yes, appendfsync always and everysec
	# (LPUSH/BRPOP); JetStream file storage (nats-server 2.9 syncs it on an
	# interval, not per message: an fsync=no log)
	for f in always everysec; do
		mkdir -p "$work/dur_$f"
		start_chand "dur_$f" "log_level = warn\ndata_dir = $work/dur_$f\nfsync = $f"
	done
	[ $smoke = 1 ] || { start_redis_aof aof_always always; start_redis_aof aof_everysec everysec; }
	for d in $W9_DEPTHS; do
		record "$r" chand "$CHANBENCH" -p "$port_dur_always" -n "$N9" -t "$d" -s 16 -D -l \
			-k "w9_always_t$d" throughput
		record "$r" chand "$CHANBENCH" -p "$port_dur_everysec" -n "$N9" -t "$d" -s 16 -D -l \
			-k "w9_everysec_t$d" throughput
		record "$r" chand "$CHANBENCH" -p "$port_dur_everysec" -n "$N9" -t "$d" -s 16 -l \
			-k "w9_plain_t$d" throughput
		if [ $smoke = 0 ]; then
			record "$r" redis "$work/redis_bench" -p "$port_aof_always" -n "$N9" -t "$d" -s 16 -l \
				-k "w9_always_t$d" throughput
			record "$r" redis "$work/redis_bench" -p "$port_aof_everysec" -n "$N9" -t "$d" -s 16 -l \
				-k "w9_everysec_t$d" throughput
			record "$r" nats "$work/natsbench" -p "$port_js" -n "$N9" -s 16 -t "$d" -file \
				-k "w9_file_t$d" js
		fi
	done
	for f in always everysec; do eval "stop_pid \$pid_dur_$f"; done
	if [ $smoke = 0 ]; then stop_pid "$pid_aof_always"; stop_pid "$pid_aof_everysec"; fi
	w9_replay "$r"
}

# w9_replay ROUND: recovery speed: N9R values of 16 bytes in 1,000 durable
# channels (fsync = no), chand stopped and started again on them; the
# replay's bytes and time from its journal-replayed log line (the journal's
# open, replay and the values in flight given back: before it listens)
w9_replay() {
	local r=$1 line bytes ms conf
	rm -rf "$work/dur_replay"
	mkdir -p "$work/dur_replay"
	conf="log_level = info\ndata_dir = $work/dur_replay\nfsync = no"
	start_chand dur_replay "$conf"
	record "$r" chand "$CHANBENCH" -p "$port_dur_replay" -n "$N9R" -t 256 -s 16 -C 1000 -k w9_replay fill
	stop_pid "$pid_dur_replay"
	start_chand dur_replay "$conf"
	stop_pid "$pid_dur_replay"
	line=$(grep -o 'journal-replayed .*' "$work/dur_replay.log" | tail -1)
	bytes=$(sed -n 's/.* bytes=\([0-9]*\) .*/\1/p' <<<"$line")
	ms=$(sed -n 's/.* ms=\([0-9]*\).*/\1/p' <<<"$line")
	if [ -z "$bytes" ] || [ -z "$ms" ]; then
		log "workload 9: no journal-replayed line in $work/dur_replay.log"; failed=1; return
	fi
	[ "$ms" -gt 0 ] || ms=1
	awk -v r="$r" -v b="$bytes" -v ms="$ms" -v n="$N9R" 'BEGIN {
		printf "%s\tchand\tw9_replay\treplay_s\t%.3f\n", r, ms / 1000
		printf "%s\tchand\tw9_replay\treplay_mb_s\t%.1f\n", r, b / 1e6 / (ms / 1000)
		printf "%s\tchand\tw9_replay\treplay_values_s\t%.0f\n", r, n / (ms / 1000)
		printf "%s\tchand\tw9_replay\tjournal_mb\t%.1f\n", r, b / 1e6 }' >> "$out/results.tsv"
}

# (10) the cluster (issue 19): workload 1 at 16 and 1,024 in flight and
# workload 2, on the single node ("chand") and on three nodes over one
# etcd: straight to the channels' owner ("owner"), through another node
# that forwards ("fwd"), and through libchanclient's cluster routing from
# a seed that is not the owner ("routed"). The names are placed first:
# a stem whose channels all land on node 0 (stem_on: placement is a
# function of the name and the live set).
run_w10() {
	local r=$1 stem_tp stem_pp
	if [ ! -x /usr/bin/etcd ]; then
		log "workload 10: /usr/bin/etcd is missing (apt-get install etcd-server): skipped"
		return 0
	fi
	cluster_start || { failed=1; return 0; }
	stem_tp=$(stem_on tp "tp.%s:0") && stem_pp=$(stem_on pp "pp.%s.ping.0:0 pp.%s.pong:0") ||
		{ log "workload 10: no stem placed on node 0"; failed=1; cluster_stop; return 0; }
	owned_by_node0 "tp.$stem_tp" || { failed=1; cluster_stop; return 0; }
	w10_runs chand "tcp://127.0.0.1:$port_chand" "$stem_tp" "$stem_pp"
	w10_runs owner "tcp://127.0.0.1:${cl_port[0]}" "$stem_tp" "$stem_pp"
	w10_runs fwd "tcp://127.0.0.1:${cl_port[1]}" "$stem_tp" "$stem_pp"
	w10_runs routed "cluster://127.0.0.1:${cl_port[2]}" "$stem_tp" "$stem_pp"
	cluster_stop
}

# w10_runs SYSTEM ADDRESS TP_STEM PP_STEM: workload 1 (16, 1024) and 2 against ADDRESS (round $r).
w10_runs() {
	record "$r" "$1" "$CHANBENCH" -A "$2" -N "$3" -n "$N10" -t 16 -k w10_t16 throughput
	record "$r" "$1" "$CHANBENCH" -A "$2" -N "$3" -n "$N10" -t 1024 -k w10_t1024 throughput
	record "$r" "$1" "$CHANBENCH" -A "$2" -N "$4" -n "$N2" -k w10_pp pingpong
}

# etcd and three nodes n0..n2 on it (ports picked first: each advertises its
# own). Another socket may take a picked port before its server binds it, so
# a start that fails is tried again on new ports, three times at most.
cluster_start() {
	local try
	for try in 1 2 3; do
		cluster_start_once && return 0
		log "cluster start failed (try $try of 3); etcd's and the nodes' logs end:"
		tail -n 3 "$work/etcd/etcd.log" "$work"/n[012].log >&2 2>/dev/null
		cluster_stop
	done
	return 1
}

cluster_start_once() {
	local i n
	cl_etcd=$("$RELAY" port)
	etcd_start "$work/etcd" "$cl_etcd" "$("$RELAY" port)"
	pid_etcd=$etcd_pid
	cl_port=() cl_pid=()
	wait_port "$cl_etcd" "$pid_etcd" || return 1
	for i in 0 1 2; do
		cl_port[$i]=$("$RELAY" port)
		node_start "$CHAND" "$work" "$i" "$cl_etcd" bench "${cl_port[$i]}"
		cl_pid[$i]=$node_pid
	done
	for i in 0 1 2; do
		wait_port "${cl_port[$i]}" "${cl_pid[$i]}" || return 1
		for n in $(seq 300); do
			"$CHANCTL" -s "127.0.0.1:${cl_port[$i]}" stats 2>/dev/null |
				grep -Eq '^cluster_nodes[[:space:]]+3$' && continue 2
			sleep 0.1
		done
		log "node n$i did not see the three nodes within 30 s"; return 1
	done
}

cluster_stop() {
	local p
	for p in "${cl_pid[@]}" "$pid_etcd"; do stop_pid "$p"; done
	rm -rf "$work/etcd"
}

# owned_by_node0 NAME: the cluster itself says node 0 owns NAME (MAKE, cluster
# where, DELETE through chanctl): stem_on's placement is the servers'.
owned_by_node0() {
	local seed="cluster://127.0.0.1:${cl_port[0]}" addr
	"$CHANCTL" -s "$seed" make "$1" >/dev/null &&
		addr=$("$CHANCTL" -s "$seed" cluster where "$1" | awk '$1 == "addr" { print $2 }') &&
		"$CHANCTL" -s "$seed" delete "$1" >/dev/null || return 1
	[ "$addr" = "127.0.0.1:${cl_port[0]}" ] && return 0
	log "stem_on placed $1 on node 0, the cluster on $addr"
	return 1
}

# (11) select wake-up across nodes (issue 20): workload 3 with 3 ping
# channels, the echo's select (one SELECT a ping, -m ops) sent to node 0,
# the home, the pinger routed straight to each channel's owner
# (cluster://); the channels on 1 node (all node 0's), 2 nodes (0, 0, 1)
# and 3 nodes (0, 1, 2); the pong on node 0. Beside it the same on the
# single node ("chand").
run_w11() {
	local r=$1 stem k nodes
	if [ ! -x /usr/bin/etcd ]; then
		log "workload 11: /usr/bin/etcd is missing (apt-get install etcd-server): skipped"
		return 0
	fi
	# a SELECT request a wake-up (-m ops), and workload 3's streaming select of credit 1 beside it
	record "$r" chand "$CHANBENCH" -p "$port_chand" -n "$N3" -C 3 -m ops -k w11_single select
	record "$r" chand "$CHANBENCH" -p "$port_chand" -n "$N3" -C 3 -k w11_stream_single select
	cluster_start || { failed=1; return 0; }
	for k in 1 2 3; do
		# pp.STEM.ping.I on the I-th of the nodes, pp.STEM.pong on node 0
		case $k in 1) nodes="0 0 0" ;; 2) nodes="0 0 1" ;; 3) nodes="0 1 2" ;; esac
		stem=$(stem_on "w11n$k-$r" "$(echo $nodes | awk '{ for (i = 1; i <= NF; i++)
			printf "pp.%%s.ping.%d:%d ", i - 1, $i; print "pp.%s.pong:0" }')") ||
			{ log "workload 11: no stem for $nodes"; failed=1; continue; }
		record "$r" "nodes$k" "$CHANBENCH" -A "cluster://127.0.0.1:${cl_port[0]}" \
			-E "tcp://127.0.0.1:${cl_port[0]}" -N "$stem" -n "$N3" -C 3 -m ops -k w11 select
		record "$r" "nodes$k" "$CHANBENCH" -A "cluster://127.0.0.1:${cl_port[0]}" \
			-E "tcp://127.0.0.1:${cl_port[0]}" -N "$stem" -n "$N3" -C 3 -k w11_stream select
	done
	cluster_stop
}

# ---- main ---------------------------------------------------------------------------

if [ $smoke = 1 ]; then
	N1=2000 NCURVE=0 DEPTHS="" N2=200 N3=100 SEL=100 CONNS=50 SECS=0.5 IDLE=10000 RECV=100 N6=400
	N7=2000 W7_DEPTHS="16 1024" W8=100 N9=2000 N9R=2000 W9_DEPTHS="16 1024" N10=2000
	SUBRUNS=1
	[ -x "$CHAND" ] && [ -x "$CHANBENCH" ] && [ -x "$STREAMBENCH" ] && [ -x "$WAKEBENCH" ] && [ -x "$CHANCTL" ] || build_tree
else
	N1=100000 NCAP=300000 NCURVE=30000 DEPTHS="1 4 16 64 256" N2=8000 N3=2000 SEL=1000 CONNS=1000 SECS=5
	NPY1=50000 NPY2=2000	# pybench.py: Python moves 50k-100k values/s, a round trip ~110 µs
	SUBRUNS=3
	IDLE=1000000 RECV=10000 N6=30000
	N7=${N7:-200000} W7_DEPTHS="16 1024" W8=10000 N9=${N9:-100000} N9R=${N9R:-1000000} W9_DEPTHS="16 1024"
	N10=${N10:-1500000}
	install_peers
	build_tree
	build_peers
fi
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
failed=0
: > "$out/results.tsv"
start_chand chand "log_level = warn\nmax_connections = $((CONNS + 100))"
if [ $smoke = 0 ]; then
	start_peers
	start_relay
fi
for r in $(seq "$rounds"); do run_round "$r"; done
"$here/summarize.sh" "$out/results.tsv" "$out/summary.tsv" | tee "$out/table.txt"
if [ $smoke = 0 ] && [ -z "$only" ] && command -v gnuplot >/dev/null; then
	"$here/plot.sh" "$out" && log "plot: $out/bench.png"
fi
log "results: $out/results.tsv, $out/summary.tsv"
exit $failed
