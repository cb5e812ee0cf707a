#!/usr/bin/env bash
# harness.sh TEST [ARGS]: the LOG_COMPILER of `make check`.
#
# Unit tests run as they are. An integration test (a path under
# tests/integration/) gets its own throwaway PostgreSQL: initdb in a fresh
# temp dir (as an unprivileged user when we are root, since initdb refuses
# root), a free loopback port, trust auth for the one superuser ods_test.
# ODS_TEST_DB_URI points at it. The cluster is stopped and removed when the
# test ends, also when it fails or is interrupted.
set -u

# ODS_HARNESS_PG=1 asks for a cluster whatever the path (bench/ uses it);
# ODS_HARNESS_DURABLE=1 keeps fsync on, for measurements.
case "$1" in
*/integration/*) ;;
*) [ "${ODS_HARNESS_PG:-0}" = 1 ] || exec "$@" ;;
esac

find_pg_bindir() {
	local d
	if command -v pg_config >/dev/null 2>&1; then
		d=$(pg_config --bindir 2>/dev/null)
		[ -x "$d/initdb" ] && { echo "$d"; return; }
	fi
	for d in /usr/lib/postgresql/*/bin; do
		[ -x "$d/initdb" ] && { echo "$d"; return; }
	done
	command -v initdb >/dev/null 2>&1 && dirname "$(command -v initdb)"
}

bindir=$(find_pg_bindir)
if [ -z "$bindir" ]; then
	echo "harness: no PostgreSQL server binaries (initdb) found; install postgresql" >&2
	exit 99
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ods-test.XXXXXX")
run_pg=()
if [ "$(id -u)" = 0 ]; then
	chown nobody "$tmp"
	chmod 700 "$tmp"
	run_pg=(runuser -u nobody --)
fi

cleanup() {
	if [ -f "$tmp/data/postmaster.pid" ]; then
		"${run_pg[@]}" "$bindir/pg_ctl" -D "$tmp/data" -m immediate -w stop >/dev/null 2>&1
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if ! "${run_pg[@]}" "$bindir/initdb" -D "$tmp/data" -U ods_test --auth=trust -E UTF8 \
	--locale=C >"$tmp/initdb.log" 2>&1; then
	echo "harness: initdb failed:" >&2
	cat "$tmp/initdb.log" >&2
	exit 99
fi

port_free() {
	! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# wal_level=logical: the CDC suites use the cluster as a replication source too.
opts="-c listen_addresses=127.0.0.1 -c max_connections=100 -c wal_level=logical"
opts="$opts -c max_replication_slots=20 -c max_wal_senders=20"
if [ "${ODS_HARNESS_DURABLE:-0}" != 1 ]; then
	opts="$opts -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
fi
started=
for _ in $(seq 1 20); do
	port=$((20000 + RANDOM % 30000))
	port_free "$port" || continue
	if "${run_pg[@]}" "$bindir/pg_ctl" -D "$tmp/data" -l "$tmp/server.log" -w -t 30 \
		-o "-p $port -k $tmp $opts ${ODS_HARNESS_PG_OPTS:-}" \
		start >/dev/null 2>&1; then
		started=1
		break
	fi
done
if [ -z "$started" ]; then
	echo "harness: could not start PostgreSQL:" >&2
	cat "$tmp/server.log" >&2 2>/dev/null
	exit 99
fi

export ODS_TEST_DB_URI="postgresql://ods_test@127.0.0.1:$port/postgres"
export ODS_TEST_PG_BINDIR="$bindir"
export ODS_TEST_PG_DATA="$tmp/data"
# What a test needs to stop and restart this cluster itself (outage tests):
# pg_ctl -D "$ODS_TEST_PG_DATA" -o "$ODS_TEST_PG_OPTS" -l "$ODS_TEST_PG_LOG" start,
# run as ODS_TEST_PG_USER when that is set.
export ODS_TEST_PG_OPTS="-p $port -k $tmp $opts ${ODS_HARNESS_PG_OPTS:-}"
export ODS_TEST_PG_LOG="$tmp/server.log"
export ODS_TEST_PG_USER="${run_pg[2]:-}"
export ODS_TEST_TMP="$tmp"
"$@"
rc=$?
if [ $rc -ne 0 ] && [ -f "$tmp/server.log" ]; then
	echo "---- PostgreSQL log (last 40 lines) ----" >&2
	tail -n 40 "$tmp/server.log" >&2
fi
exit $rc
