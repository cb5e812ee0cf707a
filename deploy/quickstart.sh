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
#  5. creates a live source database `oms` in the same cluster (the OLTP side:
#     customers, orders, payments, shipments, work orders, seeded from the demo
#     data), starts the CDC worker `odsctl sync run` for it and a steady stream of
#     updates `odsctl demo churn` in the background (logs and pids in .ods/), so
#     every continuous table stays fresh;
#  6. writes .ods/odsd.conf and a demo JWT secret, prints curl commands for
#     every read endpoint with demo tokens (.ods/curl-examples.sh), and runs
#     odsd in the foreground (Ctrl-C stops it; the cluster keeps running).
#
# Environment: ODS_PG_PORT [54329], ODS_HTTP_PORT [8080], ODS_DEMO_CUSTOMERS [100000],
# ODS_CHURN_RATE [20] (source changes per second).
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
wal_level = logical
CONF
	echo "cluster created"
fi
# A cluster from before the live source has wal_level = replica: change it once
# (a running one restarts to take it).
if ! grep -q '^wal_level = logical' "$state/pg/postgresql.conf"; then
	echo "wal_level = logical" >>"$state/pg/postgresql.conf"
	if [ -f "$state/pg/postmaster.pid" ]; then
		"${as_pg[@]}" "$pgbin/pg_ctl" -D "$state/pg" -l "$state/postgres.log" -w restart >/dev/null
		echo "cluster restarted with wal_level = logical (for the CDC source)"
	fi
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

say "live source: database oms (OMS, payments, CRM, field service) -> CDC -> synced tables"
src_uri="postgresql://postgres@127.0.0.1:$port/oms"
churn_rate=${ODS_CHURN_RATE:-20}
if [ "$(psql "$admin_uri" -tAc "SELECT 1 FROM pg_database WHERE datname = 'oms'")" != 1 ]; then
	psql "$admin_uri" -qc "CREATE DATABASE oms"
fi
./odsctl demo source --db "$src_uri" --from "$state/demo"
# A worker and churn from an earlier run stop first: one worker per source.
for p in sync-oms churn; do
	if [ -s "$state/$p.pid" ] && kill -0 "$(cat "$state/$p.pid")" 2>/dev/null; then
		kill "$(cat "$state/$p.pid")" && while kill -0 "$(cat "$state/$p.pid")" 2>/dev/null; do sleep 0.1; done
	fi
done
tables="public.customers=customer_current,public.orders=order_current,public.payments=payment_current"
tables="$tables,public.shipments=shipment_status_latest,public.work_orders=work_order_current"
tables="$tables,public.order_status_history=order_status_history_30d"
setsid nohup ./odsctl sync run --db "$db_uri" --source "$src_uri" --name oms --tables "$tables" \
	>>"$state/sync-oms.log" 2>&1 </dev/null &
echo $! >"$state/sync-oms.pid"
for _ in $(seq 1 600); do
	./odsctl sync status --db "$db_uri" 2>/dev/null | grep -qE '^oms +ods_oms +streaming' && break
	kill -0 "$(cat "$state/sync-oms.pid")" 2>/dev/null || { cat "$state/sync-oms.log"; exit 1; }
	sleep 0.1
done
setsid nohup ./odsctl demo churn --db "$src_uri" --rate "$churn_rate" \
	>>"$state/churn.log" 2>&1 </dev/null &
echo $! >"$state/churn.pid"
./odsctl sync status --db "$db_uri"
echo "CDC worker pid $(cat "$state/sync-oms.pid") (log $state/sync-oms.log), churn at $churn_rate changes/s pid $(cat "$state/churn.pid")"
sleep 2

say "freshness"
./odsctl freshness --db "$db_uri"

say "odsd"
# A demo HMAC secret (32 random bytes, hex) and config, kept in .ods/.
[ -s "$state/jwt.secret" ] || head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$state/jwt.secret"
chmod 600 "$state/jwt.secret"
http_port=${ODS_HTTP_PORT:-8080}
cat >"$state/odsd.conf" <<CONF
# written by deploy/quickstart.sh
listen_addr = 127.0.0.1
listen_port = $http_port
db_uri = postgresql://ods_authenticator@127.0.0.1:$port/ods
jwt_secret_file = $state/jwt.secret
openapi_file = $top/openapi.yaml
cors_origins = http://localhost:3000
log_level = info
CONF

token() { ./odsctl token --secret-file "$state/jwt.secret" --ttl 86400 "$@"; }
q() { psql "$db_uri" -tAXc "$1"; }
customer=$(q "SELECT f.customer_id FROM native.fraud_cases f JOIN native.support_cases s USING (customer_id) JOIN synced.customer_current USING (customer_id) WHERE f.status IN ('open','in_review') AND s.status = 'open' ORDER BY 1 LIMIT 1")
[ -n "$customer" ] || customer=$(q "SELECT min(customer_id) FROM synced.customer_current")
order=$(q "SELECT order_id FROM synced.order_current WHERE customer_id = $customer ORDER BY ordered_at DESC LIMIT 1")
[ -n "$order" ] || order=$(q "SELECT min(order_id) FROM synced.order_current")
read -r store sku < <(q "SELECT a.store_id, a.sku FROM native.store_actions a JOIN synced.inventory_position USING (store_id, sku) WHERE a.status = 'open' ORDER BY 1, 2 LIMIT 1" | tr '|' ' ') || true
[ -n "${store:-}" ] || read -r store sku < <(q "SELECT store_id, sku FROM synced.inventory_position ORDER BY 1, 2 LIMIT 1" | tr '|' ' ') || true
work_order=$(q "SELECT d.work_order_id FROM native.dispatch_assignments d JOIN synced.work_order_current USING (work_order_id) ORDER BY d.assigned_at DESC LIMIT 1")
[ -n "$work_order" ] || work_order=$(q "SELECT min(work_order_id) FROM synced.work_order_current")
technician=$(q "SELECT technician_id FROM synced.technician_profile ORDER BY 1 LIMIT 1")

region=$(q "SELECT region FROM native.fraud_cases WHERE status IN ('open','in_review') GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1")
fraud_case=$(q "SELECT case_id FROM native.fraud_cases WHERE status = 'open' AND region = '$region' AND deleted_at IS NULL ORDER BY created_at DESC LIMIT 1")
demo_key="demo-case-$(date +%s)"
# The support token carries fraud:read on purpose: the fraud queue still answers
# 403, because the database grants the support role nothing there.
support=$(token --role support_agent --sub agent-ana --scope "customers:read cases:read cases:write orders:read fraud:read")
fraud=$(token --role fraud_analyst --sub analyst-fei --scope "customers:read fraud:read fraud:write" --claim "region=${region:-west}")
ops=$(token --role ops_manager --sub manager-omar --scope "inventory:read inventory:write orders:read")
dispatch=$(token --role field_dispatcher --sub dispatcher-dee --scope "workorders:read workorders:write")
base="http://127.0.0.1:$http_port"
cat >"$state/curl-examples.sh" <<EX
# odsd demo requests (tokens valid 24 h; re-run deploy/quickstart.sh for new ones)
SUPPORT='$support'
FRAUD='$fraud'
OPS='$ops'
DISPATCH='$dispatch'
curl -s -i $base/healthz
curl -s -i $base/readyz
curl -s -i -H "Authorization: Bearer \$SUPPORT" $base/v1/customers/$customer
curl -s -i -H "Authorization: Bearer \$SUPPORT" '$base/v1/customers/$customer/cases?status=open'
curl -s -i -H "Authorization: Bearer \$SUPPORT" $base/v1/orders/$order
# Live: the churn keeps the continuous tables current; ODS-Data-Age stays at a second or two
curl -s -D - -o /dev/null -H "Authorization: Bearer \$SUPPORT" $base/v1/orders/$order | grep -i '^ods-'
curl -s -H "Authorization: Bearer \$SUPPORT" $base/v1/freshness
curl -s -i -H "Authorization: Bearer \$FRAUD" '$base/v1/fraud/queue?limit=5'
curl -s -i -H "Authorization: Bearer \$SUPPORT" '$base/v1/fraud/queue?limit=5'   # 403 from the database grant, despite fraud:read
curl -s -i -H "Authorization: Bearer \$OPS" $base/v1/inventory/$store/$sku
curl -s -i -H "Authorization: Bearer \$DISPATCH" $base/v1/work-orders/$work_order
curl -s -i -H "Authorization: Bearer \$SUPPORT" $base/v1/freshness
curl -s $base/metrics | head -n 20
curl -s $base/openapi.yaml | head -n 20

# Support cockpit: open a case (idempotent: run it twice, one case), read it, update it with If-Match, add a note
curl -s -i -X POST -H "Authorization: Bearer \$SUPPORT" -H 'Content-Type: application/json' -H 'Idempotency-Key: $demo_key' -d '{"customer_id": $customer, "subject": "Parcel not delivered", "priority": 2}' $base/v1/cases
CASE=\$(curl -s -X POST -H "Authorization: Bearer \$SUPPORT" -H 'Content-Type: application/json' -H 'Idempotency-Key: $demo_key' -d '{"customer_id": $customer, "subject": "Parcel not delivered", "priority": 2}' $base/v1/cases | sed -E 's/.*"case_id" *: *"([^"]+)".*/\\1/')
curl -s -i -X PATCH -H "Authorization: Bearer \$SUPPORT" -H 'Content-Type: application/json' -H 'If-Match: "1"' -d '{"status": "pending", "assigned_to": "agent-ana"}' $base/v1/cases/\$CASE
curl -s -i -X PATCH -H "Authorization: Bearer \$SUPPORT" -H 'Content-Type: application/json' -H 'If-Match: "1"' -d '{"priority": 1}' $base/v1/cases/\$CASE   # 412: stale If-Match
curl -s -i -X POST -H "Authorization: Bearer \$SUPPORT" -H 'Content-Type: application/json' -d '{"body": "Carrier says it is at the depot."}' $base/v1/cases/\$CASE/notes
# Fraud triage: take an open case of the queue into review, then hold it (closes it)
curl -s -i -X PATCH -H "Authorization: Bearer \$FRAUD" -H 'Content-Type: application/json' -d '{"status": "in_review", "assigned_to": "analyst-fei"}' $base/v1/fraud/cases/$fraud_case
curl -s -i -X POST -H "Authorization: Bearer \$FRAUD" -H 'Content-Type: application/json' -d '{"decision": "hold", "note": "Velocity pattern confirmed."}' $base/v1/fraud/cases/$fraud_case/dispositions
# Retail ops: request replenishment, then see it in the inventory read
curl -s -i -X POST -H "Authorization: Bearer \$OPS" -H 'Content-Type: application/json' -d '{"action_type": "replenishment", "quantity": 24, "note": "Promo next week"}' $base/v1/inventory/$store/$sku/actions
# Field dispatch: send a technician, then see them on the work order
curl -s -i -X POST -H "Authorization: Bearer \$DISPATCH" -H 'Content-Type: application/json' -d '{"technician_id": $technician, "note": "Bring the spare pump"}' $base/v1/work-orders/$work_order/assignments
curl -s -i -H "Authorization: Bearer \$DISPATCH" $base/v1/work-orders/$work_order
EX
cat <<MSG

odsd is starting on $base (config: $state/odsd.conf). In another terminal:

$(sed -e 's/^/  /' "$state/curl-examples.sh")

(also saved as $state/curl-examples.sh: \`bash $state/curl-examples.sh\` runs them all)
Stop odsd with Ctrl-C. The CDC worker and the churn keep running in the background
(stop them with: kill \$(cat $state/sync-oms.pid) \$(cat $state/churn.pid);
\`./odsctl sync status --db $db_uri\` shows the worker), and so does the PostgreSQL cluster
(stop it with: ${as_pg[*]} $pgbin/pg_ctl -D $state/pg stop).

Watch an order change: pick one the churn moves, e.g.
  psql $src_uri -c "UPDATE orders SET status = 'cancelled', status_changed_at = now() WHERE order_id = $order"
then re-run the GET /v1/orders/$order above: the ODS shows it within a second.

MSG
exec ./odsd --config "$state/odsd.conf"
