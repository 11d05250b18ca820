# tests/bench/ab_cluster.sh: sourced by run.sh (stem_on, etcd_start,
# node_start), ab10.sh, ab11.sh and tls10.sh (median too; ab11.sh keeps its
# own, to two decimals). Channel names placed on chosen nodes, and a fresh etcd and three
# chand nodes on free loopback ports, their files in $work (the sourcing
# script's temporary directory) and their pids in pids[] (its cleanup kills
# what is left there).
# SPDX-License-Identifier: BSD-2-Clause

# stem_on PREFIX "FORMAT:NODE ...": the first stem PREFIX-K for which every
# name FORMAT (a printf format of the stem) lands on node NODE (0-2), all
# three live, by PROTOCOL.md §17's placement: the node whose SHA-256(node
# name ‖ 0 ‖ channel name) has the highest first 8 bytes. One process for
# the whole search (a fork per hash made it most of the smoke run's time).
stem_on() {
	/usr/bin/python3 - "$1" "$2" <<'EOF'
import hashlib, sys

def node(name):
    w = [hashlib.sha256(b"n%d\0%s" % (i, name.encode())).digest()[:8] for i in range(3)]
    return w.index(max(w))

want = [f.rsplit(":", 1) for f in sys.argv[2].split()]
for k in range(1, 5001):
    stem = "%s-%d" % (sys.argv[1], k)
    if all(node(f % stem) == int(n) for f, n in want):
        print(stem)
        sys.exit(0)
sys.exit(1)
EOF
}

# The median of the numbers on stdin, one a line, rounded to an integer.
median() { sort -g | awk '{ v[NR] = $1 } END { printf "%.0f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# A free TCP port of 127.0.0.1.
port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# ab_ready PORT CHANCTL WANT: the server on PORT answers (WANT 0), or sees WANT
# cluster nodes, within 10 s.
ab_ready() {
	for _ in $(seq 200); do
		if [ "$3" = 0 ]; then
			"$2" -s "127.0.0.1:$1" ping >/dev/null 2>&1 && return 0
		else
			"$2" -s "127.0.0.1:$1" stats 2>/dev/null | grep -Eq "^cluster_nodes[[:space:]]+$3\$" && return 0
		fi
		sleep 0.05
	done
	echo "the server on port $1 is not ready" >&2
	return 1
}

# etcd_start DIR CLIENT_PORT PEER_PORT: a one-member etcd on 127.0.0.1, its
# data in DIR/data (DIR made), its log DIR/etcd.log; its pid in etcd_pid and
# pids[].
etcd_start() {
	mkdir -p "$1"
	/usr/bin/etcd --data-dir "$1/data" --listen-client-urls "http://127.0.0.1:$2" \
		--advertise-client-urls "http://127.0.0.1:$2" --listen-peer-urls "http://127.0.0.1:$3" \
		--initial-advertise-peer-urls "http://127.0.0.1:$3" \
		--initial-cluster "default=http://127.0.0.1:$3" >"$1/etcd.log" 2>&1 &
	etcd_pid=$!
	pids+=("$etcd_pid")
}

# node_start CHAND DIR I ETCD_PORT CLUSTER PORT [ADVERTISE_PORT [LINES]]: node
# nI of CLUSTER on PORT, advertising ADVERTISE_PORT (default PORT; a TLS
# cluster's is its tls_listen, in LINES, more config lines), its config
# DIR/nI.conf, its log DIR/nI.log; its pid in node_pid and pids[].
node_start() {
	printf 'log_level = warn\ncluster_etcd = http://127.0.0.1:%s\ncluster_name = %s\nnode_name = n%s\nadvertise = 127.0.0.1:%s\n%s' \
		"$4" "$5" "$3" "${7:-$6}" "${8:-}" >"$2/n$3.conf"
	"$1" -f -c "$2/n$3.conf" -l 127.0.0.1 -p "$6" --set unix_socket= \
		${chand_set[@]+"${chand_set[@]}"} 2>"$2/n$3.log" &
	node_pid=$!
	pids+=("$node_pid")
}

# ab_cluster_start CHAND CHANCTL NAME: etcd and nodes n0, n1, n2 of CHAND
# (cluster_name NAME), each seeing the three; their ports in np[0..2].
ab_cluster_start() {
	local e i
	e=$(port)
	rm -rf "$work/etcd"
	etcd_start "$work/etcd" "$e" "$(port)"
	for i in 0 1 2; do
		np[$i]=$(port)
		node_start "$1" "$work" "$i" "$e" "$3" "${np[$i]}"
	done
	for i in 0 1 2; do ab_ready "${np[$i]}" "$2" 3 || return 1; done
}

# Stop every process in pids[].
ab_stop() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	pids=()
}
