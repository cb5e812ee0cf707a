#!/usr/bin/env bash
# test.sh: the whole test suite, as CI runs it (.ci/run calls this).
# Installs what it needs, builds in build-test/ with AddressSanitizer and
# UBSan, checks formatting, runs `make check` (unit tests, and integration
# tests each against a throwaway PostgreSQL) and `make fuzz-smoke` (each
# libFuzzer target for FUZZ_SMOKE_TIME seconds, default 5; each counts as one
# test), then prints one summary line.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

deploy/install-deps.sh
[ -x configure ] && [ configure -nt configure.ac ] || autoreconf -fi >/dev/null
mkdir -p build-test
cd build-test
[ -f Makefile ] || ../configure --enable-sanitizers >/dev/null
make -j"$(nproc)" >/dev/null
make format-check

status=0
make -j"$(nproc)" check || status=$?
if [ $status -ne 0 ]; then
	cat test-suite.log >&2 || true
fi
# Fuzz smoke: a failing target prints its reproducer and fails the command.
rm -f tests/fuzz/*.log
if make -j"$(nproc)" fuzz >/dev/null; then
	make fuzz-smoke FUZZ_SMOKE_TIME="${FUZZ_SMOKE_TIME:-5}" || status=$?
else
	echo "test.sh: building the fuzz targets failed" >&2
	status=1
fi

# One closing line over every Check runner ("Checks: N, Failures: F, Errors: E")
# and every shell suite and fuzz target ("name: N passed, M failed").
awk '/^[0-9]+%: Checks: / { gsub(",", ""); n += $3; f += $5 + $7 }
/^[a-z_]+: [0-9]+ passed, [0-9]+ failed/ { gsub(",", ""); n += $2 + $4; f += $4 }
END { printf "odsd tests: %d passed, %d failed\n", n - f, f }' $(find tests -name '*.log' ! -name test-suite.log)
exit $status
