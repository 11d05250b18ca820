#!/bin/bash
# tests/bench/bound.sh: what bounds workload 4 and workload 1 at 16 in flight
# (issue 22), counted on both ends: the server's and the generator's CPU
# (user and system) and system calls per operation, chand and Redis, in
# the same run.
#
#   tests/bench/bound.sh [--build DIR] [--rounds N] [--redis-bench BIN] [--nats-bench BIN]
#                        [LABEL=CHAND...]
#
# Each round, for each chand binary given (default: DIR's server/chand as
# "chand"), Redis and NATS (workload 1 only: natsbench pubsub): a fresh server on an ephemeral loopback port, then
# workload 4 (chanbench -c 1000 -d 3 many; redis_bench the same) and
# workload 1 (chanbench -n 200000 -t 16 throughput; redis_bench the same),
# each under `perf stat -e raw_syscalls:sys_enter,context-switches` on the
# server (-p) and on the generator (the command), the CPU of both from
# /proc (the server's utime and stime over the run; the generator's as
# its waited-for children's). Writes one line per figure on stdout:
#   round system workload metric value
# metrics: ops_s (w4) or msgs_s (w1); srv_us_op, srv_usr_us_op,
# srv_sys_us_op, gen_us_op (CPU µs a counted operation); srv_sc_op,
# gen_sc_op (system calls an operation); srv_cs_op, gen_cs_op (context
# switches); srv_util, gen_util (CPU-seconds a second of the run: 1.0 is
# one CPU saturated). The generator's CPU includes perf stat's own (~10 ms a
# run: under 2% of w1's, 1% of w4's); counting the tracepoint costs both
# ends a little kernel time, every system alike. redis_bench and natsbench are built from source when
# not given (natsbench needs golang-go and golang-github-nats-io-go-nats-dev,
# as run.sh installs; without go, NATS is left out).
# SPDX-License-Identifier: BSD-2-Clause
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
here=$top/tests/bench
build=$top/build rounds=3 rb="" nb=""
while [ $# -gt 0 ]; do
	case "$1" in
	--build) build=$2; shift 2 ;;
	--rounds) rounds=$2; shift 2 ;;
	--redis-bench) rb=$2; shift 2 ;;
	--nats-bench) nb=$2; shift 2 ;;
	*) break ;;
	esac
done
[ $# -gt 0 ] || set -- "chand=$build/server/chand"
CB=$build/tests/bench/chanbench
RELAY=$build/tests/bench/relay
work=$(mktemp -d /tmp/chand-bound.XXXXXX)
pid=""
cleanup() { [ -z "$pid" ] || { kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; } || true; rm -rf "$work"; }
trap cleanup EXIT
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
printf 'log_level = warn\nmax_connections = 1100\n' > "$work/c.conf"
tck=$(getconf CLK_TCK)
if [ -z "$rb" ]; then
	rb=$work/redis_bench
	cc -std=gnu11 -O2 -Wall -Wextra -o "$rb" "$here/redis_bench.c" "$here/bench.c" -lhiredis -pthread
fi
if [ -z "$nb" ] && command -v go >/dev/null; then
	nb=$work/natsbench
	(cd "$here" && GOPATH=/usr/share/gocode GO111MODULE=off GOCACHE="$work/gocache" \
		go build -o "$nb" natsbench.go)
fi

start_chand() {
	rm -f "$work/port"
	"$1" -f -c "$work/c.conf" -l 127.0.0.1 -p 0 --port-file "$work/port" 2>/dev/null &
	pid=$!
	for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.05; done
	port=$(cat "$work/port")
}
start_redis() {
	port=$("$RELAY" port)
	redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --maxclients 1200 \
		--loglevel warning --dir "$work" >/dev/null 2>&1 &
	pid=$!
	for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done
}
start_nats() {
	port=$("$RELAY" port)
	nats-server -a 127.0.0.1 -p "$port" >/dev/null 2>&1 &
	pid=$!
	for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done
}
stop() { kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""; }
# utime stime of $pid (all threads), in ticks
srv_cpu() { awk '{print $14, $15}' "/proc/$pid/stat"; }

# measure ROUND SYSTEM WORKLOAD METRIC CMD...: CMD's RESULT line METRIC is the
# rate; the operations are w4's rate times its 3 s, or w1's 200,000 values.
measure() {
	local r=$1 sys=$2 w=$3 metric=$4 c0 c1 t0 t1 ppid
	shift 4
	perf stat -x, -e raw_syscalls:sys_enter,context-switches -p "$pid" -o "$work/srv" &
	ppid=$!
	sleep 0.3	# perf attached
	c0=$(srv_cpu)
	t0=$(date +%s.%N)
	# the generator under perf stat; its CPU as the subshell's children's (fields 16, 17)
	bash -c 'perf stat -x, -e raw_syscalls:sys_enter,context-switches -o "$0" -- "$@" >"$0.out"
		awk "{print \$16, \$17}" /proc/$$/stat > "$0.cpu"' "$work/gen" "$@"
	t1=$(date +%s.%N)
	c1=$(srv_cpu)
	kill -INT "$ppid"; wait "$ppid" 2>/dev/null || true
	awk -v r="$r" -v s="$sys" -v w="$w" -v m="$metric" -v tck="$tck" \
	    -v t0="$t0" -v t1="$t1" -v c0="$c0" -v c1="$c1" -v OFS='\t' '
	FILENAME ~ /gen.out$/ && $1 == "RESULT" && $3 == m { rate = $4 }
	FILENAME ~ /gen.cpu$/ { gu = $1; gs = $2 }
	FILENAME ~ /gen$/ && /raw_syscalls/ { gsc = $1 }
	FILENAME ~ /gen$/ && /context-switches/ { gcs = $1 }
	FILENAME ~ /srv$/ && /raw_syscalls/ { ssc = $1 }
	FILENAME ~ /srv$/ && /context-switches/ { scs = $1 }
	END {
		# w4 runs 3 s (plus its drain), w1 moves 200,000 values; the
		# setup (connections, MAKE) is counted with them: ~2% of w4
		secs = t1 - t0; ops = w == "w4" ? rate * 3 : 200000
		split(c0, a, " "); split(c1, b, " ")
		su = (b[1] - a[1]) / tck; ss = (b[2] - a[2]) / tck
		print r, s, w, m, rate
		print r, s, w, "srv_us_op", (su + ss) * 1e6 / ops
		print r, s, w, "srv_usr_us_op", su * 1e6 / ops
		print r, s, w, "srv_sys_us_op", ss * 1e6 / ops
		print r, s, w, "gen_us_op", (gu + gs) / tck * 1e6 / ops
		print r, s, w, "srv_sc_op", ssc / ops
		print r, s, w, "gen_sc_op", gsc / ops
		print r, s, w, "srv_cs_op", scs / ops
		print r, s, w, "gen_cs_op", gcs / ops
		print r, s, w, "srv_util", (su + ss) / secs
		print r, s, w, "gen_util", (gu + gs) / tck / secs
	}' "$work/gen.out" "$work/gen.cpu" "$work/gen" "$work/srv"
}

for r in $(seq "$rounds"); do
	for lb in "$@" redis ${nb:+nats}; do
		l=${lb%%=*}
		if [ "$l" = nats ]; then
			start_nats
			measure "$r" nats w1 msgs_s "$nb" -p "$port" -n 200000 pubsub
		elif [ "$l" = redis ]; then
			start_redis
			measure "$r" redis w4 ops_s "$rb" -p "$port" -c 1000 -d 3 many
			measure "$r" redis w1 msgs_s "$rb" -p "$port" -n 200000 -t 16 throughput
		else
			start_chand "${lb#*=}"
			measure "$r" "$l" w4 ops_s "$CB" -p "$port" -c 1000 -d 3 many
			measure "$r" "$l" w1 msgs_s "$CB" -p "$port" -n 200000 -t 16 throughput
		fi
		stop
	done
done
