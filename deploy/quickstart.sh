#!/usr/bin/env bash
# quickstart.sh: the whole thing on one box, from a fresh Debian 12 as root
# (or as a user with the packages already installed).
#
#  1. installs the packages it needs (only those missing) and builds;
#  2. creates an embedded PostgreSQL cluster in .ods/pg (reused when it
#     exists), listening on 127.0.0.1:$ODS_PG_PORT and a socket in .ods/;
#  3. migrates the database `ods` with odsctl migrate;
#  4. generates demo extracts (.ods/demo) and loads them through the real
#     sync path, odsctl demo load;
#  5. starts odsd in the foreground once it exists; until then it stops
#     after loading and says so.
#
# Environment: ODS_PG_PORT [54329], ODS_DEMO_CUSTOMERS [100000].
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
port=${ODS_PG_PORT:-54329}
customers=${ODS_DEMO_CUSTOMERS:-100000}
state="$top/.ods"

say() { printf '\n== %s\n' "$*"; }

say "packages and build"
deploy/install-deps.sh
[ -x configure ] && [ configure -nt configure.ac ] || autoreconf -fi >/dev/null
[ -f Makefile ] || ./configure >/dev/null
make -j"$(nproc)" >/dev/null
echo "built: $top/odsctl"

# PostgreSQL refuses to run as root: as root, the cluster belongs to a
# system user `odsd`, which needs search permission down to .ods/.
pgbin=$(pg_config --bindir 2>/dev/null || true)
[ -x "$pgbin/initdb" ] || pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
as_pg=()
if [ "$(id -u)" = 0 ]; then
	id odsd >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin odsd
	as_pg=(runuser -u odsd --)
	d="$top"
	while [ "$d" != / ]; do
		if ! runuser -u odsd -- test -x "$d"; then
			echo "granting user odsd search (x) permission on $d (ACL)"
			setfacl -m u:odsd:x "$d"
		fi
		d=$(dirname "$d")
	done
fi

say "embedded PostgreSQL in $state/pg (port $port)"
mkdir -p "$state"
[ ${#as_pg[@]} -eq 0 ] || chown odsd "$state"
if [ ! -f "$state/pg/PG_VERSION" ]; then
	"${as_pg[@]}" "$pgbin/initdb" -D "$state/pg" -U postgres --auth=trust -E UTF8 \
		--locale=C.UTF-8 >"$state/initdb.log"
	cat >>"$state/pg/postgresql.conf" <<CONF
# odsd quickstart: loopback only, socket in .ods/
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$state'
max_connections = 200
shared_buffers = 256MB
CONF
	echo "cluster created"
fi
if ! "${as_pg[@]}" "$pgbin/pg_ctl" -D "$state/pg" status >/dev/null 2>&1; then
	"${as_pg[@]}" "$pgbin/pg_ctl" -D "$state/pg" -l "$state/postgres.log" -w start >/dev/null
	echo "cluster started (log: $state/postgres.log)"
else
	echo "cluster already running"
fi
admin_uri="postgresql://postgres@127.0.0.1:$port/postgres"
db_uri="postgresql://postgres@127.0.0.1:$port/ods"
if [ "$(psql "$admin_uri" -tAc "SELECT 1 FROM pg_database WHERE datname = 'ods'")" != 1 ]; then
	psql "$admin_uri" -qc "CREATE DATABASE ods"
fi

say "migrate"
./odsctl migrate --db "$db_uri"

say "demo data: $customers customers, loaded through odsctl sync load"
./odsctl demo generate --out "$state/demo" --customers "$customers"
./odsctl demo load --db "$db_uri" --from "$state/demo"

say "freshness"
./odsctl freshness --db "$db_uri"

if [ ! -x ./odsd ]; then
	say "done"
	cat <<MSG
odsd (the HTTP API) is not part of this build yet, so the quickstart stops
after loading. The data is in PostgreSQL:

  psql '$db_uri' -c 'SELECT * FROM synced.customer_current LIMIT 5'
  ./odsctl sync load --db '$db_uri' customer_current $state/demo/customer_current.csv
  ./odsctl freshness --db '$db_uri'

Stop the cluster with: ${as_pg[*]} $pgbin/pg_ctl -D $state/pg stop
MSG
	exit 0
fi
