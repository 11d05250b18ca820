#!/bin/bash
# tests/bench/ab_client.sh: libchanclient's own cost, A/B, for changes to the client's hot path.
#
#   tests/bench/ab_client.sh [--rounds N] [--chand BIN] [--raw FILE] LABEL=BUILDDIR...
#
# One chand (default: the first build's server/chand) and one raw relay
# (tests/bench/relay: its ping-pong, the floor, and each round its
# rendezvous ping-pong, relay ping -r, the floor of a blocking call each),
# then round by round, each build's chanbench
# in turn (the order rotated every round, so that a shared machine's noise
# spreads over all of them): workload 2's ping-pong with a blocking call each
# (-m ops: a context with a deadline; -m plain: no context, Go's plain
# `ch <- v`), pipelined (the default) and workload 1 at 16 in flight. Then,
# with perf, the counts that do not depend on load: system calls and context
# switches a round trip (a value for workload 1) on the client's side (both
# processes or threads) and on the server's (chand's; the relay's for its
# own ping-pong), and the TCP segments sent a round trip (every side's, from
# /proc/net/snmp: run it on an otherwise quiet machine). Prints the median
# and the range of each figure per label; the relays' p50 and the load
# average each round.
# --raw FILE keeps every run's figure (round label metric value, one a line).
# SPDX-License-Identifier: BSD-2-Clause
set -euo pipefail

rounds=7 chand="" raw=""
while [ $# -gt 0 ]; do
	case "$1" in
	--rounds) rounds=$2; shift 2 ;;
	--chand) chand=$2; shift 2 ;;
	--raw) raw=$2; shift 2 ;;
	*) break ;;
	esac
done
[ $# -gt 0 ] || { echo "usage: $0 [--rounds N] [--chand BIN] LABEL=BUILDDIR..." >&2; exit 2; }
first=${1#*=}
[ -n "$chand" ] || chand=$first/server/chand
work=$(mktemp -d /tmp/chand-abc.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT

"$chand" -f -l 127.0.0.1 -p 0 --port-file "$work/port" --set log_level=warn 2>/dev/null &
pids+=($!)
spid=$!
rport=$("$first/tests/bench/relay" port)
"$first/tests/bench/relay" serve -p "$rport" &
pids+=($!)
rpid=$!
for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.05; done
port=$(cat "$work/port")
(exec 3<>"/dev/tcp/127.0.0.1/$rport") 2>/dev/null || sleep 0.5
field() { awk -v m="$1" '$3 == m {print $4}'; }

labels=("$@")
for r in $(seq "$rounds"); do
	echo "load $(cut -d' ' -f1 /proc/loadavg)" >> "$work/load"
	{
		echo "relay w2_p50_us $("$first/tests/bench/relay" ping -p "$rport" -n 5000 | field p50_us)"
		echo "rdvrelay w2_p50_us $("$first/tests/bench/relay" ping -r -p "$rport" -n 5000 | field p50_us)"
	} | tee -a "$work/res" | sed "s/^/$r /" >> "$work/raw"
	n=${#labels[@]}
	for i in $(seq 0 $((n - 1))); do
		lb=${labels[$(((i + r) % n))]}
		l=${lb%%=*} cb=${lb#*=}/tests/bench/chanbench
		{
			for m in ops plain; do
				echo "$l w2_${m}_p50_us $("$cb" -p "$port" -n 5000 -m "$m" pingpong | field p50_us)"
			done
			echo "$l w2_pipelined_p50_us $("$cb" -p "$port" -n 5000 pingpong | field p50_us)"
			echo "$l w1_msgs_s $("$cb" -p "$port" -n 200000 -t 16 throughput | field msgs_s)"
		} | tee -a "$work/res" | sed "s/^/$r /" >> "$work/raw"
	done
done

# TCP segments sent in this network namespace so far (/proc/net/snmp's
# Tcp OutSegs): the messages on the wire of a run, pure ACKs included, when
# nothing else talks meanwhile.
out_segs() { awk '$1 == "Tcp:" { if (h) print $12; else h = 1 }' /proc/net/snmp; }

# counts: perf stat on the client's command and on its server (chand, or the
# relay for its own ping-pong) over the same run, and the TCP segments the
# run sent (every side's)
count() {
	local l=$1 what=$2 per=$3 srv=$4
	shift 4
	perf stat -x, -e raw_syscalls:sys_enter,context-switches -p "$srv" -o "$work/server" &
	local st=$! s0 side
	sleep 0.2
	s0=$(out_segs)
	perf stat -x, -e raw_syscalls:sys_enter,context-switches -o "$work/client" "$@" > /dev/null
	echo "$l ${what}_tcp_segments_per $(awk -v a="$s0" -v b="$(out_segs)" -v n="$per" \
	    'BEGIN { printf "%.2f", (b - a) / n }')" >> "$work/res"
	kill -INT "$st"; wait "$st" || true
	for side in client server; do
		awk -F, -v l="$l" -v w="$what" -v n="$per" -v side="$side" \
		    '$3 ~ /sys_enter|context-switches/ { sub(/raw_syscalls:sys_enter/, "syscalls", $3);
			printf "%s %s_%s_%s_per %.2f\n", l, w, side, $3, $1 / n }' "$work/$side" >> "$work/res"
	done
}
if command -v perf > /dev/null; then
	count relay w2 5500 "$rpid" "$first/tests/bench/relay" ping -p "$rport" -n 5000
	for lb in "${labels[@]}"; do
		l=${lb%%=*} cb=${lb#*=}/tests/bench/chanbench
		count "$l" w2_ops 11000 "$spid" "$cb" -p "$port" -n 10000 -m ops pingpong
		count "$l" w2_plain 11000 "$spid" "$cb" -p "$port" -n 10000 -m plain pingpong
		count "$l" w2_pipelined 11000 "$spid" "$cb" -p "$port" -n 10000 pingpong
		count "$l" w1 200000 "$spid" "$cb" -p "$port" -n 200000 -t 16 throughput
	done
fi

[ -z "$raw" ] || cp "$work/raw" "$raw"
awk '{ print $2 }' "$work/load" | sort -g | awk '{ v[NR] = $1 } END { printf "load average (1 min), min-max over the rounds: %s-%s\n", v[1], v[NR] }'
for l in relay rdvrelay "${labels[@]%%=*}"; do
	for m in $(awk -v l="$l" '$1 == l { print $2 }' "$work/res" | awk '!seen[$0]++'); do
		awk -v l="$l" -v m="$m" '$1 == l && $2 == m { print $3 }' "$work/res" | sort -g |
		    awk -v l="$l" -v m="$m" '{ v[NR] = $1 }
			END { if (NR) printf "%-8s %-34s median %-10s (%s-%s, %d runs)\n", l, m, v[int((NR + 1) / 2)], v[1], v[NR], NR }'
	done
done
