#!/bin/bash
# tests/bench/pycost.sh: the Python client's own cost a value, A/B, for changes to its
# hot path: instructions (valgrind's callgrind, which counts the same on a busy machine
# as on a quiet one) and CPU time, for each side of workload 1 at 16 in flight.
#
#   tests/bench/pycost.sh [--rounds N] [--chand BIN] LABEL=PYTHONDIR...
#
# PYTHONDIR holds the client's package (chand/), e.g. base=/tmp/old/client/python
# new=client/python (a tree of another commit: git archive COMMIT client/python | tar
# -x -C DIR). One chand (default: build/server/chand), then per label pycost.py's
# producer (Chan.send_async at 16 in flight) and consumer (a stream of credit 16), each
# measured while the other side runs in a process of its own: instructions a value
# under callgrind (two runs, 10,000 and 30,000 values, differenced: start-up cancels
# out), then N rounds (default 5, labels alternating) of 100,000 values without it,
# CPU µs a value. Prints per label the instructions and the median CPU (min-max).
# Needs valgrind (apt-get install valgrind).
# SPDX-License-Identifier: BSD-2-Clause
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
rounds=5 chand=$top/build/server/chand
while [ $# -gt 0 ]; do
	case "$1" in
	--rounds) rounds=$2; shift 2 ;;
	--chand) chand=$2; shift 2 ;;
	*) break ;;
	esac
done
[ $# -gt 0 ] || { echo "usage: $0 [--rounds N] [--chand BIN] LABEL=PYTHONDIR..." >&2; exit 2; }
command -v valgrind >/dev/null || { echo "$0: valgrind is missing (apt-get install valgrind)" >&2; exit 2; }
py=(/usr/bin/python3 "$top/tests/bench/pycost.py")
work=$(mktemp -d /tmp/chand-pycost.XXXXXX)
pid=
trap '[ -z "$pid" ] || kill "$pid" 2>/dev/null; rm -rf "$work"' EXIT

port=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$chand" -f -l 127.0.0.1 -p "$port" --set unix_socket= --set log_level=warn 2>"$work/chand.log" &
pid=$!
for _ in $(seq 100); do
	/usr/bin/python3 -c "import socket; socket.create_connection(('127.0.0.1', $port)).close()" 2>/dev/null && break
	sleep 0.05
done

# instructions DIR SIDE N: what callgrind counted in the measured process
instructions() {
	PYCLI=$1 valgrind --tool=callgrind --callgrind-out-file=/dev/null \
		"${py[@]}" "$port" "$3" "$2" 2>&1 | awk '/Collected/ { print $4; exit }'
}
cpu() { PYCLI=$1 "${py[@]}" "$port" 100000 "$2" | awk '{ print $2 }'; }
stats() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { printf "%s (%s-%s)", a[int((NR + 1) / 2)], a[1], a[NR] }'; }

declare -A ins cpus dirs
for arg; do
	[ -f "${arg#*=}/chand/__init__.py" ] || { echo "$0: ${arg#*=}: no chand/ package there" >&2; exit 2; }
	dirs[${arg%%=*}]=$(cd "${arg#*=}" && pwd)
done
for arg; do
	label=${arg%%=*} dir=${dirs[${arg%%=*}]}
	for side in producer consumer; do
		a=$(instructions "$dir" "$side" 10000) b=$(instructions "$dir" "$side" 30000)
		ins[$label.$side]=$(( (b - a) / 20000 ))
	done
done
for r in $(seq "$rounds"); do
	for arg; do
		label=${arg%%=*} dir=${dirs[${arg%%=*}]}
		for side in producer consumer; do
			cpus[$label.$side]+="$(cpu "$dir" "$side") "
		done
	done
done
printf '%-10s %-9s %16s %24s\n' label side instructions "CPU µs a value"
for arg; do
	label=${arg%%=*}
	for side in producer consumer; do
		printf '%-10s %-9s %16s %24s\n' "$label" "$side" "${ins[$label.$side]}" "$(stats ${cpus[$label.$side]})"
	done
done
