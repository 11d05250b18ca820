#!/bin/sh
# plot.sh OUT: OUT/bench.png from OUT/samples/*.txt (latency CDFs of
# workloads 2 and 3) and OUT/summary.tsv (throughput against requests in
# flight, workload 1, with NATS's pub/sub at the cap run's count), and
# OUT/ratios.png from OUT/pairs.tsv (summarize.sh's ratio rows) and
# OUT/results.tsv: every row's ratio chand / peer, per round, as its median
# and min-max over the rounds, with its target, for every workload and the
# Python client; with gnuplot.
# SPDX-License-Identifier: BSD-2-Clause
set -eu
out=$1
# ratios.dat: index, label, median, min, max, target (NaN: none), 1 met / 2 missed / 3 no target.
# A figure measured several times in a round (workloads 2 and 3) counts as that round's median.
awk -F'\t' -v OFS='\t' '
function med(s,   a, n, i, j, t) {
	n = split(s, a, " ")
	for (i = 2; i <= n; i++)
		for (j = i; j > 1 && a[j - 1] + 0 > a[j] + 0; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
	return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
FNR == NR { row[++nrows] = $0; next }
{ fig[$1, $2, $3, $4] = fig[$1, $2, $3, $4] " " $5; rounds[$1] = 1 }
END {
	for (i = 1; i <= nrows; i++) {
		split(row[i], p, "\t")
		got = ""; lo = ""; hi = ""
		for (r in rounds) {
			if (!((r, p[2], p[3], p[4]) in fig)) continue
			a = med(fig[r, p[2], p[3], p[4]])
			if (p[5] != "") {
				if (!((r, p[5], p[6], p[7]) in fig)) continue
				b = med(fig[r, p[5], p[6], p[7]])
				if (b == 0) continue
				a = a / b
			}
			got = got " " a
			if (lo == "" || a < lo) lo = a
			if (hi == "" || a > hi) hi = a
		}
		if (got == "") continue
		m = med(got)
		label = p[1] (p[5] == "" ? "" : " / " p[5]) (p[8] == "" ? "" : " (" p[8] " " p[9] ")")
		met = p[8] == "" ? 3 : (p[8] == ">=" ? m >= p[9] : m <= p[9]) ? 1 : 2
		print ++n, label, m, lo, hi, (p[8] == "" ? "NaN" : p[9]), met
	}
}' "$out/pairs.tsv" "$out/results.tsv" > "$out/ratios.dat"
rows=$(wc -l < "$out/ratios.dat")
[ "$rows" -eq 0 ] || gnuplot <<GP
set terminal pngcairo size $((400 + rows * 28)),900 font ",10" noenhanced
set output '$out/ratios.png'
set datafile separator "\t"
set title "chand / peer, every workload: median of the rounds (bar: min-max), target (x); green met, red missed, grey no target"
set logscale y 2
set ylabel "ratio chand / peer (log scale)"
set xtics rotate by -55 left font ",9"
set xrange [0:$((rows + 1))]
set grid ytics
set key off
set bmargin 28
set rmargin 12
set arrow from graph 0, first 1 to graph 1, first 1 nohead dt 2 lc rgb "black"
plot '$out/ratios.dat' using 1:3:4:5:(\$7 == 1 ? 0x2ca02c : \$7 == 2 ? 0xd62728 : 0x888888):xticlabels(2) \
	with yerrorbars pt 7 ps 1.2 lw 2 lc rgb variable, \
     '' using 1:6 with points pt 2 ps 2 lw 2 lc rgb "black"
GP

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
