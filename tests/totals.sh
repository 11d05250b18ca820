#!/bin/sh
# Sum the "#totals passed=N failed=M" lines that every CUnit suite prints
# into its log, and print the closing line of the test command:
#   N passed, N failed
# A suite log with no totals line (it crashed, or never ran) counts as one
# failure, so a crash can never look like success. Exits 1 if anything failed.
# SPDX-License-Identifier: BSD-2-Clause
passed=0
failed=0
for log in "$@"; do
	line=$(grep '^#totals ' "$log" 2>/dev/null | tail -n 1)
	if [ -z "$line" ]; then
		echo "totals: $log has no totals line (crashed or did not run)" >&2
		failed=$((failed + 1))
		continue
	fi
	p=$(echo "$line" | sed -n 's/.*passed=\([0-9]*\).*/\1/p')
	f=$(echo "$line" | sed -n 's/.*failed=\([0-9]*\).*/\1/p')
	passed=$((passed + p))
	failed=$((failed + f))
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
