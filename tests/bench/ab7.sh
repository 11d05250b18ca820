#!/bin/bash
# tests/bench/ab7.sh: workload 7 (ack channels), A/B, for changes to the
# ack path on either end.
#
#   tests/bench/ab7.sh [--build DIR] [--rounds N] [-n VALUES] LABEL=TREE...
#
# TREE is a build tree (server/chand, tests/bench/streambench and
# client/.libs/libchanclient.so in it), e.g. before=/tmp/build-8132933
# after=build. Each round runs Redis Streams (redis_bench streams, built
# here with hiredis) once, then every tree in turn (the order alternates
# between rounds), each with its own chand, ack then plain, at 16 then
# 1,024 in flight: streambench (raw protocol) and chanbench -a -w 256
# (chanbench from DIR, default build/, against each tree's libchanclient),
# so that a shared machine's noise spreads over all of them. Prints every
# figure as results.tsv's lines (round, system, workload, metric, value),
# then the median of each.
# SPDX-License-Identifier: BSD-2-Clause
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
build=$top/build rounds=3 n=300000
while [ $# -gt 0 ]; do
	case "$1" in
	--build) build=$2; shift 2 ;;
	--rounds) rounds=$2; shift 2 ;;
	-n) n=$2; shift 2 ;;
	*) break ;;
	esac
done
[ $# -gt 0 ] || { echo "usage: $0 [--build DIR] [--rounds N] [-n VALUES] LABEL=TREE..." >&2; exit 2; }
work=$(mktemp -d /tmp/chand-ab7.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT
CB=$build/tests/bench/.libs/chanbench
[ -x "$CB" ] || CB=$build/tests/bench/chanbench
cc -std=gnu11 -O2 -o "$work/redis_bench" "$top/tests/bench/redis_bench.c" "$top/tests/bench/bench.c" \
	-lhiredis -pthread

# a chand of each tree, and Redis, on free loopback ports
labels=()
for arg in "$@"; do
	label=${arg%%=*} tree=${arg#*=}
	labels+=("$label")
	eval "tree_$label=\$tree"
	"$tree/server/chand" -f -c /dev/null -l 127.0.0.1 -p 0 --set unix_socket= \
		--port-file "$work/$label.port" 2>/dev/null &
	pids+=($!)
done
rport=$("$build/tests/bench/relay" port)
redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no --loglevel warning \
	--dir "$work" >/dev/null 2>&1 &
pids+=($!)
for label in "${labels[@]}"; do
	for i in $(seq 100); do [ -s "$work/$label.port" ] && break; sleep 0.1; done
done
sleep 0.5

result() { awk -v r="$1" -v s="$2" '/^RESULT/ { printf "%s\t%s\t%s\t%s\t%s\n", r, s, $2, $3, $4 }'; }

for r in $(seq "$rounds"); do
	order=("${labels[@]}")
	[ $((r % 2)) = 0 ] && order=($(printf '%s\n' "${labels[@]}" | tac))
	for d in 16 1024; do
		"$work/redis_bench" -p "$rport" -n "$n" -s 16 -t "$d" -k "w7_t$d" streams | result "$r" redis
		for m in ack plain; do
			for label in "${order[@]}"; do
				eval "tree=\$tree_$label"
				port=$(cat "$work/$label.port")
				"$tree/tests/bench/streambench" -k "w7_${m}_t$d" "$port" "$n" stream "$d" \
					$([ $m = ack ] && echo ack) | result "$r" "$label"
				LD_LIBRARY_PATH=$tree/client/.libs "$CB" -p "$port" -n "$n" -s 16 -t "$d" -w 256 \
					$([ $m = ack ] && echo -a) -k "w7_lib_${m}_t$d" throughput | result "$r" "$label"
			done
		done
	done
done | tee "$work/results.tsv"
echo "medians:"
sort -t"$(printf '\t')" -k2,2 -k3,3 -k5,5g "$work/results.tsv" | awk -F'\t' '
function flush() { printf "%-8s %-18s %.0f\n", ps, pw, (n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2); n = 0 }
{ if (n > 0 && ($2 != ps || $3 != pw)) flush(); ps = $2; pw = $3; v[++n] = $5 }
END { if (n > 0) flush() }'
