#!/usr/bin/env bash
# bench/load.sh [CUSTOMERS] [RUNS]: the snapshot loader against raw COPY.
#
# On a throwaway PostgreSQL (fsync on), with the demo's customer_current
# extract for CUSTOMERS [100000] customers, RUNS [5] times each:
#   raw    psql \copy of the file into an empty copy of the table
#   first  odsctl sync load into the empty synced table
#   second odsctl sync load of the same file again (no changes)
# and prints the medians and the ratios of throughput to raw COPY.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build="$top/bench/out/build-release"
. "$top/bench/lib.sh"
if [ -z "${ODS_TEST_DB_URI:-}" ]; then
	bench_build "$build" "" odsd odsctl
	ODS_HARNESS_PG=1 ODS_HARNESS_DURABLE=1 exec "$top/tests/harness.sh" "$0" "$@"
fi
customers=${1:-100000}
runs=${2:-5}
odsctl="$build/odsctl"
uri="$ODS_TEST_DB_URI"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

"$odsctl" migrate --db "$uri" --api-dir "$top/api" >/dev/null
"$odsctl" demo generate --out "$dir" --customers "$customers" >/dev/null
file="$dir/customer_current.csv"
cols=$(head -n 1 "$file")
rows=$(($(wc -l <"$file") - 1))
psql -qX "$uri" -c "CREATE TABLE public.raw_copy (LIKE synced.customer_current INCLUDING ALL)"

now() { date +%s.%N; }
calc() { awk "BEGIN { print $1 }"; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

raw=() first=() second=()
for i in $(seq 1 "$runs"); do
	psql -qX "$uri" -c "TRUNCATE public.raw_copy; CHECKPOINT"
	t0=$(now)
	psql -qX "$uri" -c "\\copy public.raw_copy ($cols) FROM '$file' CSV HEADER"
	raw+=("$(calc "$(now) - $t0")")

	psql -qX "$uri" -c "TRUNCATE synced.customer_current; CHECKPOINT"
	t0=$(now)
	"$odsctl" sync load --db "$uri" customer_current "$file" >/dev/null
	first+=("$(calc "$(now) - $t0")")

	psql -qX "$uri" -c "CHECKPOINT"
	t0=$(now)
	"$odsctl" sync load --db "$uri" customer_current "$file" >/dev/null
	second+=("$(calc "$(now) - $t0")")
done

m_raw=$(printf '%s\n' "${raw[@]}" | median)
m_first=$(printf '%s\n' "${first[@]}" | median)
m_second=$(printf '%s\n' "${second[@]}" | median)
printf 'bench/load: customer_current, %d rows (%s bytes), %d runs each, medians\n' \
	"$rows" "$(wc -c <"$file")" "$runs"
printf '  %-34s %8.3f s  %9.0f rows/s\n' "raw COPY into an empty table" "$m_raw" \
	"$(calc "$rows / $m_raw")"
printf '  %-34s %8.3f s  %9.0f rows/s  ratio %.2f\n' "sync load, first (empty table)" \
	"$m_first" "$(calc "$rows / $m_first")" "$(calc "$m_raw / $m_first")"
printf '  %-34s %8.3f s  %9.0f rows/s  ratio %.2f\n' "sync load, second (no changes)" \
	"$m_second" "$(calc "$rows / $m_second")" "$(calc "$m_raw / $m_second")"
