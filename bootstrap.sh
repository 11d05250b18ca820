#!/bin/sh
# bootstrap.sh: set up a fresh Debian 12 machine, build chand, then
#   ./bootstrap.sh run    start chand in the foreground with etc/chand.conf
#   ./bootstrap.sh test   run the whole test suite; the last line is
#                         "N passed, N failed" and the exit status is 0 only
#                         when nothing failed
# It installs only what is missing (apt-get, as root or through sudo),
# regenerates the build system if needed and builds out of tree in build/.
set -eu

cd "$(dirname "$0")"
top=$(pwd)
mode=${1:-}
case "$mode" in
run|test) ;;
*) echo "usage: $0 run|test" >&2; exit 2 ;;
esac

packages="build-essential autoconf automake libtool pkg-config libevent-dev
libmsgpack-dev libssl-dev openssl libcunit1-dev libsystemd-dev"

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
mkdir -p build
cd build
[ -f Makefile ] || "$top/configure" --quiet
jobs=$(nproc 2>/dev/null || echo 2)
make -s -j"$jobs" >/dev/null

if [ "$mode" = run ]; then
	exec ./server/chand -f -c "$top/etc/chand.conf"
fi

status=0
make -s -j"$jobs" check >check.out 2>&1 || status=$?
grep -E '^(PASS|FAIL|ERROR|XPASS|SKIP):' check.out || cat check.out
make -s totals || status=1
exit $status
