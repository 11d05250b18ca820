#!/bin/sh
# plot.sh OUT: OUT/bench.png from OUT/samples/*.txt (latency CDFs of
# workloads 2 and 3) and OUT/summary.tsv (throughput against requests in
# flight, workload 1, with NATS's pub/sub at the cap run's count), with gnuplot.
# SPDX-License-Identifier: BSD-2-Clause
set -eu
out=$1
# the curve's depths, and the cap run (w1_cap) as depth 1024
awk -F'\t' '($2 ~ /^w1_t/ || $2 == "w1_cap") && $3 == "msgs_s" {
	d = $2 == "w1_cap" ? 1024 : substr($2, 5); v[$1, d] = $4; ds[d] = 1 }
END { for (d in ds) printf "%s\t%s\t%s\n", d, (("chand", d) in v) ? v["chand", d] : "NaN", (("redis", d) in v) ? v["redis", d] : "NaN" }' \
	"$out/summary.tsv" | sort -n > "$out/curve.dat"
nats=$(awk -F'\t' '$1 == "nats" && $2 == "w1_cap" && $3 == "msgs_s" { print $4 }' "$out/summary.tsv")
cdf=""
for s in w2_chand w2_redis w2_nats w2_relay w3_chand; do
	[ -s "$out/samples/$s.txt" ] &&
		cdf="$cdf${cdf:+, }'$out/samples/$s.txt' using 1:(1.0) smooth cnormal with lines lw 2 title '$s'"
done
gnuplot <<GP
set terminal pngcairo size 1400,600 font ",11" noenhanced
set output '$out/bench.png'
set multiplot layout 1,2 title "chand vs Redis, NATS, raw relay (loopback, $(nproc) cores)"
set title "Latency CDF: ping-pong round trip (w2), select wake-up (w3)"
set logscale x
set xlabel "round trip, microseconds"
set ylabel "fraction"
set key bottom right
set grid
plot $cdf
unset logscale x
set title "Buffered throughput (w1) against requests in flight per connection"
set logscale x 2
set logscale y
set xlabel "requests in flight per connection (pipeline depth)"
set ylabel "messages / s"
set key top left
plot '$out/curve.dat' using 1:2 with linespoints lw 2 title 'chand', \
     '$out/curve.dat' using 1:3 with linespoints lw 2 title 'redis'${nats:+, $nats with lines dt 2 title 'nats pub/sub'}
unset multiplot
GP
