#!/bin/sh
# install.sh: what `make install` puts on a machine, checked in the build tree.
#  - chanclient.pc: `pkg-config --static --libs chanclient` names every
#    library libchanclient uses: the whole of libchanclient.a links into a
#    program with nothing but what it lists, and the program runs.
#  - chand(8), chand.conf(5), chand.conf and chand.service name the
#    configured paths (--sysconfdir, --libdir, ...), no placeholder and no
#    other prefix's.
# It counts as one test in the closing "N passed, N failed" line.
# SPDX-License-Identifier: BSD-2-Clause
top=${CHAND_BUILDDIR:-.}
src=${CHAND_SRCDIR:-.}
cc=${CHAND_CC:-cc}
sysconfdir=${CHAND_SYSCONFDIR:?set by make check}
libdir=${CHAND_LIBDIR:?set by make check}
tmp=$(mktemp -d /tmp/chand-install.XXXXXX) || exit 1
trap 'rm -rf "$tmp"' EXIT
failed=0

fail() {
	echo "install.sh: $*" >&2
	failed=1
}

# ---- chanclient.pc --static -------------------------------------------------------
lib=$top/client/.libs/libchanclient.a
if [ ! -f "$lib" ]; then
	fail "$lib is missing (configured with --disable-static?)"
else
	export PKG_CONFIG_PATH="$top/client${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
	if ! libs=$(pkg-config --static --libs chanclient) || ! cflags=$(pkg-config --cflags chanclient); then
		fail "pkg-config --static --libs chanclient failed"
	else
		echo "pkg-config --static --libs chanclient: $libs"
		cat >"$tmp/prog.c" <<'PROG'
#include <stdio.h>
#include <chanclient.h>

int
main(void)
{
	chan_conn_t *conn;
	int rc = chan_dial(NULL, "tcp://127.0.0.1:1", NULL, &conn);

	printf("%s\n", chan_strerror(rc));
	return rc == 0;
}
PROG
		# every object of the archive: each undefined symbol must come from the list
		static="-Wl,--whole-archive $lib -Wl,--no-whole-archive"
		# (not installed: the header from the source tree, the archive named by its path)
		libs=$(echo " $libs " | sed -e 's| -lchanclient | |')
		# shellcheck disable=SC2086
		if ! $cc -I"$src/client" $cflags -o "$tmp/prog" "$tmp/prog.c" $static $libs 2>"$tmp/ld.err"; then
			cat "$tmp/ld.err" >&2
			fail "libchanclient.a does not link with only what chanclient.pc lists"
		elif ! "$tmp/prog" >/dev/null; then
			fail "the statically linked program did not run"
		fi
	fi
fi

# ---- configured paths ------------------------------------------------------------
for f in gen/chand.8 gen/chand.conf.5 gen/chand.conf systemd/chand.service; do
	if [ ! -f "$top/$f" ]; then
		fail "$f was not made"
		continue
	fi
	if grep -n '@[a-z]*dir@' "$top/$f" >&2; then
		fail "$f: a placeholder left"
	fi
	case $sysconfdir in
	/usr/local/*) ;;
	*) grep -n '/usr/local' "$top/$f" >&2 && fail "$f: names /usr/local, not the configured prefix" ;;
	esac
done
for f in gen/chand.8 gen/chand.conf.5 systemd/chand.service; do
	grep -q "$sysconfdir/chand.conf" "$top/$f" || fail "$f does not name $sysconfdir/chand.conf"
done
grep -q "$libdir/chand/" "$top/gen/chand.conf" || fail "gen/chand.conf does not name $libdir"

if [ $failed -eq 0 ]; then
	echo "#totals passed=1 failed=0"
	exit 0
fi
echo "#totals passed=0 failed=1"
exit 1
