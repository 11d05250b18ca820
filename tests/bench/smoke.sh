#!/bin/sh
# smoke.sh: make check's run of the benchmark harness: run.sh --smoke, every
# workload tiny, on chand alone (no peers, a few seconds). It fails only
# when a driver fails, never on a figure.
exec "${CHAND_SRCDIR:-.}/tests/bench/run.sh" --smoke --build "$(pwd)"
