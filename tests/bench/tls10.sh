#!/bin/bash
# tests/bench/tls10.sh: what TLS costs, on one chand and through a cluster.
#
#   tests/bench/tls10.sh [--rounds N] [-n VALUES] [BUILD]
#
# BUILD (default build) holds server/chand, client/chanctl and
# tests/bench/chanbench. Round by round, the order alternating, a plain
# and a TLS set-up each get a fresh etcd, three fresh nodes (the TLS one:
# tls_listen advertised, the nodes speak TLS to each other) and one more
# chand on its own, and chanbench runs run.sh's workload 10 (throughput at
# 16 and at 1024 in flight, -n VALUES, default 500,000; ping-pong p50, 20,000)
# against the single chand (tcp:// or tls://), the cluster dialed
# through node 2, which does not own the channels (cluster:// or
# cluster+tls://: the client follows MOVED to node 0), and node 2 dialed
# as one chand (tcp:// or tls://: node 2 forwards to node 0 over its
# node-to-node connection). Certificates from
# tests/gencerts.sh. Prints each run, then the medians and the ratios
# TLS : plain. Needs /usr/bin/etcd and the openssl CLI.
# SPDX-License-Identifier: BSD-2-Clause
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
rounds=3 n=500000 npp=20000
while [ $# -gt 0 ]; do
	case "$1" in
	--rounds) rounds=$2; shift 2 ;;
	-n) n=$2; shift 2 ;;
	*) break ;;
	esac
done
tree=${1:-$top/build}
[ -x /usr/bin/etcd ] || { echo "$0: /usr/bin/etcd is missing (apt-get install etcd-server)" >&2; exit 2; }
work=$(mktemp -d /tmp/chand-tls10.XXXXXX)
pids=() np=()
. "$(dirname "$0")/ab_cluster.sh"
trap 'ab_stop; rm -rf "$work"' EXIT
sh "$top/tests/gencerts.sh" "$work"
chand=$tree/server/chand chanctl=$tree/client/chanctl cb=$tree/tests/bench/chanbench
stem_tp=$(stem_on tls10 "tp.%s:0")
stem_pp=$(stem_on tls10pp "pp.%s.ping.0:0 pp.%s.pong:0")

# tls_lines PORT: a node's TLS listener on PORT, with gencerts.sh's certificates
tls_lines() {
	printf 'tls_listen = 127.0.0.1:%s\ntls_cert = %s/server.pem\ntls_key = %s/server.key\ntls_ca = %s/ca.pem\nprotected_mode = no\n' \
		"$1" "$work" "$work" "$work"
}

# one run of chanbench: ADDR TAG WORKLOAD [ARGS...] -> its figure
bench() {
	local addr=$1 tag=$2 wl=$3 ca=()
	shift 3
	case "$addr" in tls://* | cluster+tls://*) ca=(-T "$work/ca.pem") ;; esac
	"$cb" -A "$addr" "${ca[@]}" -k "$tag" "$@" "$wl" | awk '$1 == "RESULT" { print $4; exit }'
}

# one round of MODE (plain or tls): the nine figures of $cols, single, cluster, forwarded
run_mode() {
	local mode=$1 e i s t single cluster tp
	e=$(port)
	rm -rf "$work/etcd"
	etcd_start "$work/etcd" "$e" "$(port)"
	for i in 0 1 2; do
		np[$i]=$(port)
		if [ "$mode" = tls ]; then
			tp[$i]=$(port)
			node_start "$chand" "$work" "$i" "$e" tls10 "${np[$i]}" "${tp[$i]}" "$(tls_lines "${tp[$i]}")"
		else
			node_start "$chand" "$work" "$i" "$e" tls10 "${np[$i]}"
		fi
	done
	for i in 0 1 2; do ab_ready "${np[$i]}" "$chanctl" 3; done
	s=$(port) t=$(port)
	tls_lines "$t" >"$work/single.conf"
	"$chand" -f -c "$work/single.conf" -l 127.0.0.1 -p "$s" --set unix_socket= --set log_level=warn \
		2>"$work/single.log" &
	pids+=("$!")
	ab_ready "$s" "$chanctl" 0
	if [ "$mode" = tls ]; then
		single="tls://127.0.0.1:$t" cluster="cluster+tls://127.0.0.1:${tp[2]}"
		forwarded="tls://127.0.0.1:${tp[2]}"
	else
		single="tcp://127.0.0.1:$s" cluster="cluster://127.0.0.1:${np[2]}"
		forwarded="tcp://127.0.0.1:${np[2]}"
	fi
	for a in "$single" "$cluster" "$forwarded"; do
		printf '%s %s %s ' "$(bench "$a" w10_t16 throughput -N "$stem_tp" -n "$n" -t 16)" \
			"$(bench "$a" w10_t1024 throughput -N "$stem_tp" -n "$n" -t 1024)" \
			"$(bench "$a" w10_pp pingpong -N "$stem_pp" -n "$npp")"
	done
	echo
	ab_stop
}

cols="single_t16 single_t1024 single_pp_p50us cluster_t16 cluster_t1024 cluster_pp_p50us"
cols="$cols forwarded_t16 forwarded_t1024 forwarded_pp_p50us"
printf '%-6s %5s' mode round
for c in $cols; do printf ' %14s' "$c"; done
echo
for r in $(seq "$rounds"); do
	if [ $((r % 2)) = 1 ]; then order="plain tls"; else order="tls plain"; fi
	for mode in $order; do
		line=$(run_mode "$mode")
		echo "$mode $line" >>"$work/runs"
		printf '%-6s %5s' "$mode" "$r"
		for v in $line; do printf ' %14s' "$v"; done
		echo
	done
done
echo "medians (throughput in msgs/s; ping-pong p50 in µs) and TLS : plain"
for k in 1 2 3 4 5 6 7 8 9; do
	p=$(awk -v k="$k" '$1 == "plain" { print $(k + 1) }' "$work/runs" | median)
	t=$(awk -v k="$k" '$1 == "tls" { print $(k + 1) }' "$work/runs" | median)
	printf '%-16s plain %10s  tls %10s  tls:plain %s\n' "$(echo "$cols" | cut -d' ' -f"$k")" "$p" "$t" \
		"$(awk -v a="$t" -v b="$p" 'BEGIN { printf "%.2f", a / b }')"
done
