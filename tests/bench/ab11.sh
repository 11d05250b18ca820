#!/bin/bash
# tests/bench/ab11.sh: workload 11's cross-node select wake-up, A/B, for
# changes to the cross-node select (issue 20).
#
#   tests/bench/ab11.sh [--build DIR] [--rounds N] [-n N] [--stream] [--ping I] LABEL=CHAND...
#
# Interleaves the chand binaries given (say old=/tmp/old/build/server/chand
# new=build/server/chand) round by round, each run on a fresh etcd and
# three fresh nodes of that binary, so that a shared machine's noise
# spreads over all of them. Each run is run.sh's workload 11 with the
# cases on 3 nodes (ping channels on nodes 0, 1 and 2, the pong and the
# echo's SELECTs on node 0; chanbench -n N, default 4000, -C 3 -m ops
# select) and prints its p50 and p99 and node 0's cluster_forwarded and
# cluster_xselect_firm; then the same workload on a single chand of that
# binary (run.sh's w11_single) and the ratio of the two p50s, issue 20's
# measure (target <= 2x). With --stream, run.sh's streaming row instead
# (the echo's one STREAM of credit 1, w11_stream). With --ping I, the
# pinger pings channel I only (0: the home's own, on node 0; 1, 2: nodes
# 1 and 2), in both runs, to time one path. Then the medians per label.
# chanbench and chanctl come from DIR (default build/); needs /usr/bin/etcd.
# SPDX-License-Identifier: BSD-2-Clause
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
build=$top/build rounds=6 n=4000 mode="-m ops" kind=w11 ping=
while [ $# -gt 0 ]; do
	case "$1" in
	--build) build=$2; shift 2 ;;
	--rounds) rounds=$2; shift 2 ;;
	-n) n=$2; shift 2 ;;
	--stream) mode="" kind=w11_stream; shift ;;
	--ping) ping="-K $2"; shift 2 ;;
	*) break ;;
	esac
done
[ $# -gt 0 ] || { echo "usage: $0 [--build DIR] [--rounds N] [-n N] [--stream] [--ping I] LABEL=CHAND..." >&2; exit 2; }
CB=$build/tests/bench/chanbench CTL=$build/client/chanctl
work=$(mktemp -d /tmp/chand-ab11.XXXXXX)
pids=() np=()
. "$(dirname "$0")/ab_cluster.sh"
trap 'ab_stop; rm -rf "$work"' EXIT

# ping channels on nodes 0, 1 and 2, the pong on node 0
stem=$(stem_on ab11 "pp.%s.ping.0:0 pp.%s.ping.1:1 pp.%s.ping.2:2 pp.%s.pong:0")

stat() { "$CTL" -s "127.0.0.1:$1" stats | awk -v k="$2" '$1 == k { print $2 }'; }

# one run of CHAND: "p50 p99 forwarded firm"
run_one() {
	local chand=$1
	ab_cluster_start "$chand" "$CTL" ab11 || { ab_stop; return 1; }
	"$CB" -A "cluster://127.0.0.1:${np[0]}" -E "tcp://127.0.0.1:${np[0]}" -N "$stem" -n "$n" \
		-C 3 $mode $ping -k "$kind" select >"$work/out"
	echo "$(awk '$3 == "p50_us" { a = $4 } $3 == "p99_us" { b = $4 } END { print a, b }' "$work/out")" \
		"$(stat "${np[0]}" cluster_forwarded)" "$(stat "${np[0]}" cluster_xselect_firm || true)"
	ab_stop
}

# the same on a single chand of CHAND: its p50
run_single() {
	local chand=$1 p
	p=$(port)
	"$chand" -f -l 127.0.0.1 -p "$p" 2>"$work/single.log" &
	pids=($!)
	ab_ready "$p" "$CTL" 0
	"$CB" -p "$p" -n "$n" -C 3 $mode $ping -k "${kind}_single" select | awk '$3 == "p50_us" { print $4 }'
	ab_stop
}

median() { sort -n | awk '{ v[NR] = $1 } END { printf "%.2f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

printf '%-8s %5s %9s %9s %10s %6s %9s %6s\n' label round p50_us p99_us forwarded firm single_us ratio
for r in $(seq "$rounds"); do
	for lc in "$@"; do
		label=${lc%%=*} chand=${lc#*=}
		read -r p50 p99 fwd firm < <(run_one "$chand")
		single=$(run_single "$chand")
		ratio=$(awk -v a="$p50" -v b="$single" 'BEGIN { printf "%.2f", a / b }')
		printf '%-8s %5s %9s %9s %10s %6s %9s %6s\n' "$label" "$r" "$p50" "$p99" "$fwd" "${firm:--}" \
			"$single" "$ratio"
		echo "$label $p50 $single $ratio" >>"$work/runs"
	done
done
echo "medians over $rounds rounds (3 nodes p50 us, single p50 us, ratio):"
for lc in "$@"; do
	label=${lc%%=*}
	printf '  %-8s' "$label"
	for col in 2 3 4; do
		printf ' %8s' "$(awk -v l="$label" -v c="$col" '$1 == l { print $c }' "$work/runs" | median)"
	done
	echo
done
