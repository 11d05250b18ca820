#!/bin/bash
# tests/bench/ab10.sh: workload 10's throughput at 1024 in flight, A/B, for
# changes to the cluster's request path, the client's (libchanclient's
# cluster front) or the server's (a node's routing step).
#
#   tests/bench/ab10.sh [--rounds N] [-n VALUES] [--runs K] LABEL=TREE...
#
# TREE is a build tree (server/chand and tests/bench/chanbench in it, e.g.
# before=/tmp/build-369fa25 after=build). Round by round (the order of the
# trees alternates between rounds), each tree gets a fresh etcd, three fresh
# nodes and one more chand on its own, all of its binary, and its own
# chanbench runs run.sh's workload 10 at 1024 in flight (-n VALUES, default
# 1,500,000) K times (default 2) against each of: the single chand
# ("single"), the channel's owner, node 0, dialed straight ("straight"),
# and the cluster dialed through node 2 (cluster://, "routed": the client
# finds the owner). Prints each run's three figures (msgs/s) and the
# server's CPU a value (ns, user and system, /proc/PID/stat) in the first
# two: the single chand's and node 0's; then per label the medians and the
# ratios routed : single (issue 22's row, target >= 0.95), straight :
# single (the node's routing step) and routed : straight (the client's
# cluster front). Needs /usr/bin/etcd.
# SPDX-License-Identifier: BSD-2-Clause
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
rounds=3 n=1500000 runs=2
while [ $# -gt 0 ]; do
	case "$1" in
	--rounds) rounds=$2; shift 2 ;;
	-n) n=$2; shift 2 ;;
	--runs) runs=$2; shift 2 ;;
	*) break ;;
	esac
done
[ $# -gt 0 ] || { echo "usage: $0 [--rounds N] [-n VALUES] [--runs K] LABEL=TREE..." >&2; exit 2; }
[ -x /usr/bin/etcd ] || { echo "$0: /usr/bin/etcd is missing (apt-get install etcd-server)" >&2; exit 2; }
work=$(mktemp -d /tmp/chand-ab10.XXXXXX)
pids=() np=()
. "$(dirname "$0")/ab_cluster.sh"
trap 'ab_stop; rm -rf "$work"' EXIT

stem=$(stem_on ab10 "tp.%s:0")

tick_ns=$((1000000000 / $(getconf CLK_TCK)))
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# one run of chanbench CB against ADDR, its server PID: "msgs/s CPU-ns-a-value"
run_one() {
	local t0 v
	t0=$(cpu_ticks "$3")
	v=$("$1" -A "$2" -N "$stem" -n "$n" -t 1024 -k w10_t1024 throughput | awk '$1 == "RESULT" { print $4 }')
	echo "$v $(( ($(cpu_ticks "$3") - t0) * tick_ns / n ))"
}

# one round of TREE: K lines "single straight routed single_cpu node0_cpu"
run_tree() {
	local tree=$1 cb=$1/tests/bench/chanbench s k n0 spid a b c
	ab_cluster_start "$tree/server/chand" "$tree/client/chanctl" ab10 || { ab_stop; return 1; }
	n0=${pids[1]}	# after etcd's
	s=$(port)
	"$tree/server/chand" -f -c /dev/null -l 127.0.0.1 -p "$s" --set unix_socket= --set log_level=warn \
		2>"$work/single.log" &
	spid=$!
	pids+=("$spid")
	ab_ready "$s" "$tree/client/chanctl" 0
	for k in $(seq "$runs"); do
		a=($(run_one "$cb" "tcp://127.0.0.1:$s" "$spid"))
		b=($(run_one "$cb" "tcp://127.0.0.1:${np[0]}" "$n0"))
		c=($(run_one "$cb" "cluster://127.0.0.1:${np[2]}" "$n0"))
		echo "${a[0]} ${b[0]} ${c[0]} ${a[1]} ${b[1]}"
	done
	ab_stop
}

declare -a m
labels=()
for arg in "$@"; do labels+=("${arg%%=*}"); done
printf '%-8s %5s %10s %10s %10s %10s %9s\n' label round single straight routed single_ns node0_ns
for r in $(seq "$rounds"); do
	order=("$@")
	[ $((r % 2)) = 0 ] && mapfile -t order < <(printf '%s\n' "$@" | tac)
	for lt in "${order[@]}"; do
		label=${lt%%=*} tree=${lt#*=}
		while read -r a b c d e; do
			printf '%-8s %5s %10.0f %10.0f %10.0f %10s %9s\n' "$label" "$r" "$a" "$b" "$c" "$d" "$e"
			echo "$label $a $b $c $d $e" >>"$work/runs"
		done < <(run_tree "$tree")
	done
done
echo "medians over $rounds rounds x $runs runs (msgs/s; CPU ns a value), and their ratios:"
printf '  %-8s %10s %10s %10s %10s %9s %15s %17s %17s\n' label single straight routed single_ns node0_ns \
	routed:single straight:single routed:straight
for label in "${labels[@]}"; do
	for col in 2 3 4 5 6; do
		m[$col]=$(awk -v l="$label" -v c="$col" '$1 == l { print $c }' "$work/runs" | median)
	done
	awk -v l="$label" -v a="${m[2]}" -v b="${m[3]}" -v c="${m[4]}" -v d="${m[5]}" -v e="${m[6]}" \
		'BEGIN { printf "  %-8s %10s %10s %10s %10s %9s %15.2f %17.2f %17.2f\n", l, a, b, c, d, e,
		    c / a, b / a, c / b }'
done
