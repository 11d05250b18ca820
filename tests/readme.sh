#!/bin/sh
# readme.sh: the README's quick start runs as written. The block after
# `./bootstrap.sh run` is run, line by line as sh would, from a directory
# where build/ is this build tree, against a chand started with the shipped
# etc/chand.conf (on a free port: $CHAND_ADDR, which chanctl reads, points
# there); it must print the value it sent. And bootstrap.sh run says where
# chanctl is. It counts as one test in the closing "N passed, N failed" line.
# SPDX-License-Identifier: BSD-2-Clause
src=${CHAND_SRCDIR:-.}
top=${CHAND_BUILDDIR:-.}
chand=${CHAND:-$top/server/chand}
tmp=$(mktemp -d /tmp/chand-readme.XXXXXX) || exit 1
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT
failed=0

fail() {
	echo "readme.sh: $*" >&2
	failed=1
}

# the first sh block after the one that holds ./bootstrap.sh run
awk '/^\.\/bootstrap\.sh run$/ { seen = 1; next }
    seen == 1 && /^```sh$/ { seen = 2; next }
    seen == 2 && /^```$/ { exit }
    seen == 2 { print }' "$src/README.md" >"$tmp/quickstart.sh"
grep -q 'build/client/chanctl' "$tmp/quickstart.sh" ||
	fail "README.md: no quick start using build/client/chanctl after ./bootstrap.sh run"
grep -q 'chanctl is at build/client/chanctl' "$src/bootstrap.sh" ||
	fail "bootstrap.sh run does not say where chanctl is"

mkfifo "$tmp/ready" || exit 1
"$chand" -f -c "$src/etc/chand.conf" -l 127.0.0.1 -p 0 --ready-fd 3 3>"$tmp/ready" 2>"$tmp/chand.log" &
pid=$!
port=$(timeout 10 head -n 1 "$tmp/ready")
if [ -z "$port" ]; then
	cat "$tmp/chand.log" >&2
	fail "chand did not start with etc/chand.conf"
else
	mkdir "$tmp/clone" && ln -s "$(cd "$top" && pwd)" "$tmp/clone/build"
	if ! (cd "$tmp/clone" && CHAND_ADDR=tcp://127.0.0.1:$port timeout 30 sh -e "$tmp/quickstart.sh") \
	    >"$tmp/out" 2>&1; then
		cat "$tmp/out" >&2
		fail "the quick start failed"
	fi
	grep -qx hello "$tmp/out" || fail "the quick start did not receive hello"
	cat "$tmp/out"
fi

if [ $failed -eq 0 ]; then
	echo "#totals passed=1 failed=0"
	exit 0
fi
echo "#totals passed=0 failed=1"
exit 1
