#!/bin/bash
# tests/bench/ab.sh: the server's own cost, A/B, for changes to chand's hot path.
#
#   tests/bench/ab.sh [--build DIR] [--rounds N] LABEL=CHAND...
#
# Interleaves the chand binaries given (say base=/tmp/chand-before
# new=build/server/chand) round by round, a fresh chand each run, so that a
# shared machine's noise spreads over all of them. Each run: workload 4
# (chanbench -c 1000 -d 5 many: 1,000 raw-protocol connections) with
# chand's CPU time per request (utime+stime from /proc over the run), then
# workload 2 (chanbench -n 20000 pingpong), then workload 3 (chanbench -n
# 10000 -C 1000 select: a streaming select over 1,000 channels, with
# chand's CPU time per wake-up, polling included); then perf stat counts chand's
# syscalls per request over a 3 s workload 4 (skipped without perf). Prints
# the median of each figure per label. chanbench comes from DIR (default
# build/).
# SPDX-License-Identifier: BSD-2-Clause
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
build=$top/build rounds=3
while [ $# -gt 0 ]; do
	case "$1" in
	--build) build=$2; shift 2 ;;
	--rounds) rounds=$2; shift 2 ;;
	*) break ;;
	esac
done
[ $# -gt 0 ] || { echo "usage: $0 [--build DIR] [--rounds N] LABEL=CHAND..." >&2; exit 2; }
CB=$build/tests/bench/chanbench
work=$(mktemp -d /tmp/chand-ab.XXXXXX)
pid=""
cleanup() { [ -z "$pid" ] || { kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; } || true; rm -rf "$work"; }
trap cleanup EXIT
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
printf 'log_level = warn\nmax_connections = 1100\n' > "$work/c.conf"
tck=$(getconf CLK_TCK)

start() {
	rm -f "$work/port"
	"$1" -f -c "$work/c.conf" -l 127.0.0.1 -p 0 --port-file "$work/port" 2>/dev/null &
	pid=$!
	for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.05; done
	port=$(cat "$work/port")
}
stop() { kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""; }
cpu() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
field() { awk -v m="$1" '$3 == m {print $4}'; }

for _ in $(seq "$rounds"); do
	for lb in "$@"; do
		l=${lb%%=*}
		start "${lb#*=}"
		c0=$(cpu)
		w4=$("$CB" -p "$port" -c 1000 -d 5 many)
		c1=$(cpu)
		ops=$(echo "$w4" | field ops_s)
		{
			echo "$l w4_ops_s $ops"
			echo "$l w4_p99_us $(echo "$w4" | field p99_us)"
			awk -v a="$c0" -v b="$c1" -v t="$tck" -v o="$ops" -v l="$l" \
			    'BEGIN { printf "%s w4_cpu_us_per_op %.2f\n", l, (b - a) / t * 1e6 / (o * 5) }'
			w2=$("$CB" -p "$port" -n 20000 pingpong)
			echo "$l w2_p50_us $(echo "$w2" | field p50_us)"
			echo "$l w2_p99_us $(echo "$w2" | field p99_us)"
			c0=$(cpu)
			w3=$("$CB" -p "$port" -n 10000 -C 1000 select)
			c1=$(cpu)
			echo "$l w3_p50_us $(echo "$w3" | field p50_us)"
			echo "$l w3_p99_us $(echo "$w3" | field p99_us)"
			awk -v a="$c0" -v b="$c1" -v t="$tck" -v l="$l" \
			    'BEGIN { printf "%s w3_cpu_us_per_wakeup %.2f\n", l, (b - a) / t * 1e6 / 10000 }'
		} >> "$work/res"
		stop
	done
done
if command -v perf >/dev/null; then
	for lb in "$@"; do
		l=${lb%%=*}
		start "${lb#*=}"
		perf stat -x, -e raw_syscalls:sys_enter -p "$pid" -o "$work/perf" &
		ppid=$!
		sleep 0.2
		ops=$("$CB" -p "$port" -c 1000 -d 3 many | field ops_s)
		kill -INT "$ppid"; wait "$ppid" || true
		awk -F, -v l="$l" -v o="$ops" '/^[0-9]/ { printf "%s w4_syscalls_per_op %.2f\n", l, $1 / (o * 3) }' \
		    "$work/perf" >> "$work/res"
		stop
	done
fi
for lb in "$@"; do
	l=${lb%%=*}
	for m in w4_ops_s w4_cpu_us_per_op w4_p99_us w4_syscalls_per_op w2_p50_us w2_p99_us \
	    w3_p50_us w3_p99_us w3_cpu_us_per_wakeup; do
		awk -v l="$l" -v m="$m" '$1 == l && $2 == m { print $3 }' "$work/res" | sort -g |
		    awk -v l="$l" -v m="$m" '{ v[NR] = $1; all = all " " $1 }
			END { if (NR) printf "%-8s %-20s median %-10s all:%s\n", l, m, v[int((NR + 1) / 2)], all }'
	done
done
