#!/usr/bin/env bash
# openapi_routes.sh: openapi.yaml documents exactly the routes odsd serves.
#
# Runs under tests/harness.sh (ODS_TEST_DB_URI: a throwaway PostgreSQL). Migrates a
# fresh database, then compares the "METHOD /path" pairs of ods.routes with those of
# openapi.yaml, read line by line: a path is a line "  /...:" inside the top-level
# paths: block, a method a line "    get:" (post, put, patch, delete) under it. The
# operations built into odsd (/healthz, /readyz, /metrics, /openapi.yaml) are not
# in the catalog: the spec must document them, and the catalog must not hold them.
# Then, when npx is on PATH, lints openapi.yaml with Redocly: an error fails the test;
# a registry that cannot be reached (or a package that cannot be installed) is a SKIP.
#
# ODS_REDOCLY_CLI picks the npx package (default: a pinned 1.x release, so a new
# release neither changes the verdict nor breaks the install).
set -u

suite=openapi_routes
. "$(dirname "$0")/lib.sh"
spec=$top/openapi.yaml
redocly=${ODS_REDOCLY_CLI:-@redocly/cli@1.34.20}
builtins=("GET /healthz" "GET /metrics" "GET /openapi.yaml" "GET /readyz")

# ---- the catalog of a freshly migrated database ----
if "$psql" -X -q -v ON_ERROR_STOP=1 -d "$ODS_TEST_DB_URI" -c "DROP DATABASE IF EXISTS $db" \
	-c "CREATE DATABASE $db" >"$work/createdb.log" 2>&1 &&
	"$odsctl" migrate --db "$db_uri" --api-dir "$api_dir" >"$work/migrate.log" 2>&1; then
	ok "migrate a fresh database"
else
	not_ok "migrate a fresh database"
	cat "$work/createdb.log" "$work/migrate.log"
	finish
fi
if "$psql" -X -q -At -v ON_ERROR_STOP=1 -d "$db_uri" \
	-c "SELECT method || ' ' || path FROM ods.routes" 2>"$work/psql.err" |
	LC_ALL=C sort >"$work/catalog.txt" && [ ! -s "$work/psql.err" ]; then
	ok "read ods.routes ($(wc -l <"$work/catalog.txt") routes)"
else
	not_ok "read ods.routes"
	cat "$work/psql.err"
	finish
fi

# ---- the operations of openapi.yaml ----
if [ ! -r "$spec" ]; then
	not_ok "openapi.yaml exists ($spec)"
	finish
fi
awk '
	/^paths:[[:space:]]*$/ { inpaths = 1; next }
	inpaths && /^[^[:space:]#]/ { inpaths = 0 }
	!inpaths { next }
	/^  \/[^[:space:]]*:[[:space:]]*$/ { path = $1; sub(/:$/, "", path); next }
	/^    (get|post|put|patch|delete):[[:space:]]*$/ {
		m = $1; sub(/:$/, "", m)
		if (path == "") { print "ERROR method outside a path at line " NR; next }
		print toupper(m) " " path
	}
' "$spec" | LC_ALL=C sort >"$work/spec_all.txt"
if grep -q '^ERROR' "$work/spec_all.txt"; then
	not_ok "openapi.yaml paths are in the expected layout"
	grep '^ERROR' "$work/spec_all.txt"
	finish
fi
if [ "$(uniq -d "$work/spec_all.txt" | wc -l)" -eq 0 ]; then
	ok "openapi.yaml lists each operation once"
else
	not_ok "openapi.yaml lists an operation twice:"
	uniq -d "$work/spec_all.txt"
fi

printf '%s\n' "${builtins[@]}" | LC_ALL=C sort >"$work/builtins.txt"
missing=$(LC_ALL=C comm -23 "$work/builtins.txt" "$work/spec_all.txt")
if [ -z "$missing" ]; then
	ok "openapi.yaml documents the built-in operations"
else
	not_ok "openapi.yaml lacks built-in operations:"
	echo "$missing"
fi
in_catalog=$(LC_ALL=C comm -12 "$work/builtins.txt" "$work/catalog.txt")
if [ -z "$in_catalog" ]; then
	ok "ods.routes holds none of the built-in operations"
else
	not_ok "ods.routes shadows built-in operations (odsd answers them itself):"
	echo "$in_catalog"
fi

LC_ALL=C comm -23 "$work/spec_all.txt" "$work/builtins.txt" >"$work/spec.txt"
if diff -u --label ods.routes --label openapi.yaml "$work/catalog.txt" "$work/spec.txt" \
	>"$work/routes.diff"; then
	ok "openapi.yaml and ods.routes list the same $(wc -l <"$work/spec.txt") operations"
else
	not_ok "openapi.yaml and ods.routes disagree (- only in ods.routes, + only in openapi.yaml):"
	cat "$work/routes.diff"
fi

# ---- lint ----
if ! command -v npx >/dev/null 2>&1; then
	skipped "lint openapi.yaml: npx is not on PATH"
	finish
fi
# The probe installs the package (or finds it cached): its failure is the registry's
# or the network's, not the document's.
if ! timeout 300 npx --yes "$redocly" --version </dev/null >"$work/probe.log" 2>&1; then
	skipped "lint openapi.yaml: cannot run $redocly through npx (registry unreachable?):"
	grep -v '^npm warn' "$work/probe.log" | tail -n 5
	finish
fi
timeout 300 npx --yes "$redocly" lint --format=stylish "$spec" </dev/null >"$work/lint.log" 2>&1
rc=$?
if [ $rc -eq 0 ]; then
	ok "redocly lint openapi.yaml ($(grep -c ' warning ' "$work/lint.log") warnings)"
	grep ' warning ' "$work/lint.log"
elif [ $rc -eq 124 ]; then
	not_ok "redocly lint openapi.yaml: timed out after 300 s"
else
	not_ok "redocly lint openapi.yaml (exit $rc):"
	grep -v '^npm warn' "$work/lint.log"
fi
finish
