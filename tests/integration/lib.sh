# lib.sh: what the shell integration suites share. A suite sets `suite` (its
# name, e.g. routes_sql) and sources this file; it then has:
#   top, odsctl, api_dir   the source tree, the odsctl binary, api/
#   psql                   the harness cluster's psql (else the one on PATH)
#   work                   a scratch directory, removed by finish
#   db, db_uri             the suite's own database "ods_$suite" (not created here)
#   ok / not_ok / skipped  count and print one result
#   finish                 prints "$suite: N passed, M failed, K skipped" (the line
#                          deploy/test.sh adds up) and exits, non-zero on a failure
# Outside tests/harness.sh (no ODS_TEST_DB_URI) the suite exits 77: skipped.

top=${ODS_TOP_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
odsctl=${ODSCTL:-$top/odsctl}
api_dir=${ODS_API_DIR:-$top/api}

pass=0 fail=0 skip=0
ok() { pass=$((pass + 1)); echo "ok - $*"; }
not_ok() { fail=$((fail + 1)); echo "not ok - $*"; }
skipped() { skip=$((skip + 1)); echo "SKIP - $*"; }
finish() {
	echo "$suite: $pass passed, $fail failed, $skip skipped"
	rm -rf "$work"
	[ "$fail" -eq 0 ]
	exit
}

if [ -z "${ODS_TEST_DB_URI:-}" ]; then
	echo "$suite: ODS_TEST_DB_URI is not set (run under tests/harness.sh)" >&2
	exit 77
fi
psql=psql
[ -n "${ODS_TEST_PG_BINDIR:-}" ] && [ -x "$ODS_TEST_PG_BINDIR/psql" ] && psql=$ODS_TEST_PG_BINDIR/psql
work=$(mktemp -d "${TMPDIR:-/tmp}/$suite.XXXXXX")
db=ods_$suite
db_uri=${ODS_TEST_DB_URI%/*}/$db
