#!/bin/sh
# smoke.sh: make check's run of the benchmark harness: run.sh --smoke, every
# workload tiny, on chand alone (no peers, a few seconds). It fails only
# when a driver fails, never on a figure. It counts as one test in the
# closing "N passed, N failed" line (tests/totals.sh reads the #totals line).
# SPDX-License-Identifier: BSD-2-Clause
if "${CHAND_SRCDIR:-.}/tests/bench/run.sh" --smoke --build "$(pwd)"; then
	echo "#totals passed=1 failed=0"
	exit 0
fi
echo "#totals passed=0 failed=1"
exit 1
