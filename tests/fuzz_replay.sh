#!/bin/sh
# fuzz_replay.sh: every fuzzing harness of tests/fuzz/ run once on each seed
# of its corpus (tests/fuzz/corpus/: the seeds, and the inputs that past
# fuzzing runs found, regress-* among them), through tests/fuzz/replay.c:
# built with the tree's compiler and sanitizers, no libFuzzer needed. The
# connection harness runs three times: plain, with the auth rules
# (FUZZ_CONN_AUTH=1) and with durable channels (FUZZ_CONN_DURABLE=1). One
# test a run in the closing "N passed, N failed" line.
# SPDX-License-Identifier: BSD-2-Clause
src=${CHAND_SRCDIR:-.}
bin=${CHAND_BUILDDIR:-.}/tests/fuzz
corpus=$src/tests/fuzz/corpus
passed=0
failed=0

# run NAME COMMAND...: one replay, passed when it exits 0
run() {
	name=$1
	shift
	if out=$("$@" 2>&1); then
		echo "ok: $name: $out"
		passed=$((passed + 1))
	else
		echo "FAILED: $name (exit $?):"
		echo "$out"
		failed=$((failed + 1))
	fi
}

# the decoder gets the top-level seeds (wire bodies) and the connection seeds
run decode "$bin/fuzz_decode" "$corpus" "$corpus/conn"
run conn "$bin/fuzz_conn" "$corpus/conn"
run conn-auth env FUZZ_CONN_AUTH=1 "$bin/fuzz_conn" "$corpus/conn"
run conn-durable env FUZZ_CONN_DURABLE=1 "$bin/fuzz_conn" "$corpus/conn"
run config "$bin/fuzz_config" "$corpus/config"
run journal "$bin/fuzz_journal" "$corpus/journal"
run client "$bin/fuzz_client" "$corpus/client"
run metrics "$bin/fuzz_metrics" "$corpus/metrics"
echo "#totals passed=$passed failed=$failed"
[ "$failed" -eq 0 ]
