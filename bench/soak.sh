#!/usr/bin/env bash
# bench/soak.sh [SECONDS] [CONNECTIONS]: does odsd's memory stay flat under
# steady load?
#
# Builds a release odsd in bench/out/build-release, starts a PostgreSQL
# (tests/harness.sh, fsync off), migrates and loads 100,000 demo customers,
# starts odsd, then with wrk and bench/soak.lua (86% customer reads, 4% 404s,
# 5% case lists, 5% case creates with a fresh Idempotency-Key):
#
#  1. measures the maximum rate for 10 s (CONNECTIONS [32] connections);
#  2. runs SECONDS [300] at half that rate (wrk's delay() paces each thread
#     on a schedule), sampling odsd's VmRSS every 5 s into bench/out/soak-rss.csv.
#
# Prints the maximum and achieved rates, the request, status and non-2xx
# counts, and RSS at start, end and max. Start = mean of the samples in the
# second fifth of the run (the first fifth is warm-up: pool connections,
# prepared statements, the token cache, malloc arenas of new threads); end =
# mean of the last fifth. Verdict GROWING (exit 1) when end - start exceeds
# max(1 MiB, 5% of start), else FLAT. Any answer other than 200/201/404 also
# fails the run.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
out="$top/bench/out"
build="$out/build-release"
. "$top/bench/lib.sh"
if [ -z "${ODS_TEST_DB_URI:-}" ]; then
	"$top/deploy/install-deps.sh" --bench
	bench_build "$build" "" odsd odsctl
	ODS_HARNESS_PG=1 ODS_HARNESS_PG_OPTS="-c shared_buffers=256MB -c max_connections=200" \
		exec "$top/tests/harness.sh" "$0" "$@"
fi
secs=${1:-300}
# RSS is sampled every 5 s and start/end are fifths of the run: each needs samples.
[ "$secs" -ge 60 ] || { echo "bench/soak: SECONDS must be at least 60" >&2; exit 2; }
conns=${2:-32}
customers=100000
threads=2
csv="$out/soak-rss.csv"
sampler_pid=
bench_on_exit() {
	[ -n "$sampler_pid" ] && kill "$sampler_pid" 2>/dev/null && wait "$sampler_pid" 2>/dev/null
	return 0
}
bench_begin
bench_demo "$build" "$customers"
bench_secret
for i in $(seq 1 16); do
	"$build/odsctl" token --secret-file "$work/secret" --role support_agent \
		--scope "customers:read cases:read cases:write" --sub "soak$i" --ttl 7200 >>"$work/tokens"
done
port=$((20000 + RANDOM % 20000))
ODS_LISTEN_PORT=$port ODS_DB_URI="$authn" ODS_DB_POOL_SIZE=16 ODS_MAX_CONNECTIONS=1024 \
	ODS_JWT_SECRET_FILE="$work/secret" ODS_LOG_LEVEL=warn "$build/odsd" 2>"$work/odsd.log" &
odsd_pid=$!
bench_wait_ready "$port"

run_wrk() { # RATE DURATION
	TOKENS="$work/tokens" CUSTOMERS=$customers RATE=$1 THREADS=$threads \
		wrk -t"$threads" -c"$conns" -d"$2" -s "$top/bench/soak.lua" "http://127.0.0.1:$port"
}
field() { awk -v k="$1" '$1 == k {print $2}'; }

echo "bench/soak: $customers customers, $conns connections, ${secs}s paced at half the maximum rate"
maxout=$(run_wrk 0 10s)
max=$(echo "$maxout" | field Requests/sec:)
rate=$(awk -v m="$max" 'BEGIN { printf "%d", m / 2 }')
printf '  maximum rate (10 s): %.0f req/s; pacing at %d req/s\n' "$max" "$rate"

rss() { awk '/^VmRSS/ {print $2}' "/proc/$odsd_pid/status"; }
echo "t_s,rss_kb" >"$csv"
(
	t0=$(date +%s)
	while kill -0 "$odsd_pid" 2>/dev/null; do
		echo "$(($(date +%s) - t0)),$(rss)" >>"$csv"
		sleep 5
	done
) &
sampler_pid=$!
soak=$(run_wrk "$rate" "${secs}s")
kill "$sampler_pid" 2>/dev/null || true
wait "$sampler_pid" 2>/dev/null || true
sampler_pid=

achieved=$(echo "$soak" | field Requests/sec:)
reqs=$(echo "$soak" | awk '/requests in/ {print $1}')
statuses=$(echo "$soak" | awk '/^statuses:/ {$1 = ""; print}')
non2xx=$(echo "$soak" | field non-2xx:)
other=$(echo "$soak" | awk '/^statuses:/ {for (i = 2; i <= NF; i++) if ($i ~ /^other=/) print substr($i, 7)}')
lat=$(echo "$soak" | awk '$1 == "Latency" {print $2 " avg, max " $4}')
printf '  paced run: %.0f req/s achieved, %s requests, latency %s\n' "$achieved" "$reqs" "$lat"
echo "  statuses:$statuses; non-2xx: $non2xx (the 404s are intended)"
awk -F, -v secs="$secs" -v csv="$csv" 'NR > 1 && $2 != "" { t[++n] = $1; r[n] = $2; if ($2 > max) max = $2 }
END {
	fifth = secs / 5
	for (i = 1; i <= n; i++) {
		if (t[i] >= fifth && t[i] < 2 * fifth) { s += r[i]; sn++ }
		if (t[i] >= secs - fifth) { e += r[i]; en++ }
	}
	if (!sn || !en) { print "  too few RSS samples"; exit 2 }
	for (i = 1; i <= n; i++)
		if (t[i] >= fifth) { k++; sx += t[i]; sy += r[i]; sxx += t[i] * t[i]; sxy += t[i] * r[i] }
	slope = (k > 1 && k * sxx != sx * sx) ? (k * sxy - sx * sy) / (k * sxx - sx * sx) * 60 : 0
	s /= sn; e /= en
	limit = s * 0.05; if (limit < 1024) limit = 1024
	printf "  RSS: start %.1f MB (mean of %d samples, %ds-%ds), end %.1f MB (mean of the last %d), max %.1f MB; samples in %s\n",
		s / 1024, sn, fifth, 2 * fifth, e / 1024, en, max / 1024, csv
	printf "  trend after warm-up (least squares): %+.1f KB/min\n", slope
	printf "  growth %+.1f MB, threshold max(1 MiB, 5%% of start) = %.1f MB: %s\n",
		(e - s) / 1024, limit / 1024, (e - s > limit) ? "GROWING" : "FLAT"
	exit (e - s > limit) ? 1 : 0
}' "$csv" && verdict=0 || verdict=$?
if [ "${other:-1}" != 0 ]; then
	echo "bench/soak: FAILED: $other answers other than 200/201/404" >&2
	exit 1
fi
[ "$verdict" -eq 0 ] || { echo "bench/soak: FAILED: RSS $([ "$verdict" -eq 1 ] && echo grew || echo "not measured")" >&2; exit 1; }
echo "bench/soak: FLAT"
