#!/bin/sh
# bootstrap.sh: set up a fresh Debian 12 machine, build chand, then
#   ./bootstrap.sh run    start chand in the foreground with etc/chand.conf
#   ./bootstrap.sh test   run the whole test suite twice: as built, and built
#                         with AddressSanitizer, UBSan and -Werror (build-asan/);
#                         the suites where threads meet a third time, built
#                         with ThreadSanitizer (build-tsan/, Makefile.am's
#                         THREAD_TESTS); then the Python client's pytest suite;
#                         the last line is "N passed, N failed" over all four,
#                         and the exit status is 0 only when nothing failed
# It installs only what is missing (apt-get, as root or through sudo),
# regenerates the build system if needed and builds out of tree in build/.
# SPDX-License-Identifier: BSD-2-Clause
set -eu

cd "$(dirname "$0")"
top=$(pwd)
mode=${1:-}
case "$mode" in
run|test) ;;
*) echo "usage: $0 run|test" >&2; exit 2 ;;
esac

# prometheus: promtool, which test_metrics runs on /metrics
packages="build-essential autoconf automake libtool pkg-config libevent-dev
libmsgpack-dev libssl-dev openssl libcunit1-dev libsystemd-dev libjansson-dev prometheus
python3-msgpack python3-pytest python3-pytest-asyncio etcd-server etcd-client"

missing=""
for p in $packages; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "bootstrap: installing$missing" >&2
	sudo=""
	[ "$(id -u)" -eq 0 ] || sudo=sudo
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $missing >/dev/null
fi

[ -x configure ] || ./autogen.sh >/dev/null 2>&1
jobs=$(nproc 2>/dev/null || echo 2)

# build DIR [CONFIGURE-ARGS...]: configure once, then make, out of tree.
build() {
	dir=$1
	shift
	mkdir -p "$top/$dir"
	cd "$top/$dir"
	[ -f Makefile ] || "$top/configure" --quiet "$@"
	make -s -j"$jobs" >/dev/null
}

build build
if [ "$mode" = run ]; then
	# the README's examples run chanctl from where it was built, not from PATH
	echo "bootstrap: chand runs in the foreground (Ctrl-C stops it); chanctl is at build/client/chanctl" >&2
	echo "bootstrap: try, in another terminal in $top: build/client/chanctl ping" >&2
	exec ./server/chand -f -c "$top/etc/chand.conf"
fi

# check DIR [MAKE-ARGS...]: run the suites there; their logs stay in DIR/tests/.
# Twice as many at once as there are cores: the suites spend much of their time
# waiting (on a lease to end, a deadline, a node to start), so that keeps the
# cores busy.
status=0
check() {
	dir=$1
	shift
	cd "$top/$dir"
	# A sanitizer writes its reports to files in DIR/sanitizer/: chand's stderr
	# is its log, which goes with its temporary directory, and a chand a test
	# kills never exits with the status that would carry a report. Each report
	# counts as one failure.
	rm -rf sanitizer && mkdir sanitizer
	opt="log_path=$top/$dir/sanitizer/report"
	ASAN_OPTIONS=$opt UBSAN_OPTIONS=$opt TSAN_OPTIONS=$opt \
	    make -s -j"$((jobs * 2))" check "$@" >check.out 2>&1 || status=1
	grep -E '^(PASS|FAIL|ERROR|XPASS|SKIP):' check.out | sed "s|^|$dir: |" || cat check.out
	# what failed, from each failed program's log, so that a CI run says why (a
	# sanitizer's reports are not there: they come below, from their files)
	for t in $(sed -n 's/^\(FAIL\|ERROR\): //p' check.out); do
		grep -E 'FAILED|^ +[0-9]+\. .*:[0-9]+ +- |ERROR|Assertion' "$t.log" 2>/dev/null |
		    head -n 20 | sed "s|^|$dir: $t: |"
	done
	make -s totals "$@" >totals.out 2>totals.err || status=1
	grep -v '^make' totals.err | sed "s|^|$dir: |" >&2 || true
	reports=0
	for f in sanitizer/report.*; do
		[ -f "$f" ] || continue
		reports=$((reports + 1))
		head -n 40 "$f" | sed "s|^|$dir: $f: |"
	done
	if [ "$reports" -gt 0 ]; then
		status=1
		awk -v r="$reports" '{ $3 += r; print }' totals.out >totals.tmp && mv totals.tmp totals.out
	fi
	sed "s|^|$dir: |" totals.out
}

check build
build build-asan --enable-asan --enable-ubsan --enable-werror
check build-asan
# ThreadSanitizer cannot share a build with AddressSanitizer; a race it reports
# in chand makes chand exit 66, which the test that stops it counts as a failure
build build-tsan --enable-tsan --enable-werror
check build-tsan 'TESTS=$(THREAD_TESTS)'

# the Python client (client/python/tests) against the first build's chand and chanctl.
# Its counts come from pytest's summary line ("3 failed, 150 passed, 1 error in 4.2s"):
# errors count as failures, and a run that fails without saying what failed (a crash,
# no tests collected) counts as one failure, never as a success.
cd "$top"
pyrc=0
CHAND="$top/build/server/chand" CHANCTL="$top/build/client/chanctl" \
    /usr/bin/python3 -m pytest -q -p no:cacheprovider client/python/tests \
    >"$top/build/pytest.out" 2>&1 || pyrc=$?
summary=$(grep -E '(passed|failed|errors?|no tests ran).* in [0-9.]+s' "$top/build/pytest.out" |
    tail -n 1 || true)
count() {	# WORD: the number before WORD in the summary, 0 if absent
	printf '%s\n' "$summary" | grep -oE "[0-9]+ $1" | awk '{ n += $1 } END { print n + 0 }'
}
py_passed=$(count passed)
py_failed=$(( $(count failed) + $(count 'errors?') ))
if [ "$pyrc" -ne 0 ]; then
	status=1
	[ "$py_failed" -gt 0 ] || py_failed=1
	tail -n 30 "$top/build/pytest.out" | sed 's|^|python: |' >&2
fi
echo "python: ${summary:-pytest exited $pyrc with no summary}"

# the closing line: all four runs together
tail -q -n 1 "$top/build/totals.out" "$top/build-asan/totals.out" "$top/build-tsan/totals.out" |
    awk -v pp="$py_passed" -v pf="$py_failed" \
    '{ p += $1; f += $3 } END { printf "%d passed, %d failed\n", p + pp, f + pf }'
exit $status
