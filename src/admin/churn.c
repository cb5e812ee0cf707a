/*
 * churn: one connection, prepared statements (every value bound), one
 * transaction per move. Transaction k is due at start + (changes so far) /
 * rate; when behind, the next runs at once (no sleep) so the rate catches up;
 * when ahead, it sleeps until due. A lost connection is retried with a
 * backoff; the moves pick their rows by a random key and the first eligible
 * row at or above it (indexes in source_schema.sql), so they stay cheap at
 * any table size.
 */
#include "autoconfig.h"

#include "admin/churn.h"

#include "core/log.h"
#include "db/db.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static volatile sig_atomic_t stopping;

static void on_stop(int sig)
{
	(void)sig;
	stopping = 1;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t next(uint64_t *s)
{
	uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

/* A statement and the parameter count it takes. */
static const struct {
	const char *name, *sql;
	int nparams;
} stmts[] = {
        {"order_move",
         "UPDATE orders SET status = CASE status WHEN 'placed' THEN 'paid'"
         "   WHEN 'paid' THEN 'shipped' ELSE 'delivered' END,"
         "  sla_status = CASE WHEN status = 'shipped' THEN 'met' ELSE sla_status END,"
         "  status_changed_at = now(), updated_at = now()"
         " WHERE order_id = coalesce("
         "  (SELECT order_id FROM orders WHERE status = $2 AND order_id >= $1 ORDER BY order_id "
         "LIMIT 1),"
         "  (SELECT order_id FROM orders WHERE status = $2 ORDER BY order_id LIMIT 1))"
         " RETURNING order_id, status",
         2},
        {"status_history",
         "INSERT INTO order_status_history (order_id, seq, status, changed_at, changed_by)"
         " SELECT $1::bigint, coalesce(max(seq), 0) + 1, $2, now(), 'oms'"
         "   FROM order_status_history WHERE order_id = $1::bigint",
         2},
        {"payment_capture",
         "UPDATE payments SET status = 'captured', captured_at = now(), status_changed_at = now(),"
         "  updated_at = now() WHERE order_id = $1 AND status = 'authorized'",
         1},
        {"shipment_create",
         "INSERT INTO shipments (shipment_id, order_id, carrier, tracking_number, status,"
         "  last_event_at, last_location, estimated_delivery_at)"
         " SELECT coalesce((SELECT max(shipment_id) FROM shipments), 0) + 1, $1::bigint, 'UPS',"
         "  '1Z' || lpad(($1::bigint)::text, 12, '0'), 'in_transit', now(), $2, now() + interval "
         "'2 days'"
         " WHERE NOT EXISTS (SELECT 1 FROM shipments WHERE order_id = $1::bigint)"
         " ON CONFLICT DO NOTHING",
         2},
        {"shipment_deliver",
         "UPDATE shipments SET status = 'delivered', delivered_at = now(), last_event_at = now(),"
         "  updated_at = now() WHERE order_id = $1 AND status <> 'delivered'",
         1},
        {"shipment_scan",
         "UPDATE shipments SET status = CASE status WHEN 'label_created' THEN 'in_transit'"
         "   ELSE 'out_for_delivery' END, last_event_at = now(), last_location = $3,"
         "  updated_at = now()"
         " WHERE shipment_id = coalesce("
         "  (SELECT shipment_id FROM shipments WHERE status = $2 AND shipment_id >= $1"
         "    ORDER BY shipment_id LIMIT 1),"
         "  (SELECT shipment_id FROM shipments WHERE status = $2 ORDER BY shipment_id LIMIT 1))",
         3},
        {"customer_edit",
         "UPDATE customers SET phone = $2, city = $3, lifetime_value = lifetime_value + $4,"
         "  updated_at = now()"
         " WHERE customer_id = (SELECT customer_id FROM customers WHERE customer_id >= $1"
         "  ORDER BY customer_id LIMIT 1)",
         4},
        {"work_order_move",
         "UPDATE work_orders SET status = CASE status WHEN 'new' THEN 'scheduled'"
         "   WHEN 'scheduled' THEN 'dispatched' WHEN 'dispatched' THEN 'in_progress'"
         "   ELSE 'completed' END,"
         "  scheduled_start = CASE WHEN status = 'new' THEN now() + interval '1 day'"
         "   ELSE scheduled_start END,"
         "  completed_at = CASE WHEN status = 'in_progress' THEN now() ELSE completed_at END,"
         "  sla_breach_risk = CASE WHEN status = 'in_progress' THEN 0 ELSE sla_breach_risk END,"
         "  updated_at = now()"
         " WHERE work_order_id = coalesce("
         "  (SELECT work_order_id FROM work_orders WHERE status = $2 AND work_order_id >= $1"
         "    ORDER BY work_order_id LIMIT 1),"
         "  (SELECT work_order_id FROM work_orders WHERE status = $2 ORDER BY work_order_id LIMIT "
         "1))",
         2},
        {"order_new",
         "WITH o AS (INSERT INTO orders (order_id, customer_id, status, channel, ordered_at,"
         "   status_changed_at, item_count, total_amount, currency, promised_delivery_at, "
         "sla_status)"
         "  SELECT coalesce((SELECT max(order_id) FROM orders), 0) + 1,"
         "   coalesce((SELECT customer_id FROM customers WHERE customer_id >= $1"
         "    ORDER BY customer_id LIMIT 1), $1), 'placed', $2, now(), now(), $3, $4, 'USD',"
         "   now() + interval '5 days', 'on_track'"
         "  RETURNING order_id, customer_id, total_amount)"
         " INSERT INTO payments (payment_id, order_id, customer_id, method, status, amount,"
         "  currency, card_last4, initiated_at, status_changed_at)"
         " SELECT coalesce((SELECT max(payment_id) FROM payments), 0) + 1, order_id, customer_id,"
         "  'card', 'authorized', total_amount, 'USD', $5, now(), now() FROM o",
         5},
};

static const char *const cities[] = {"Portland", "Seattle", "Denver",  "Austin",
                                     "Boston",   "Chicago", "Atlanta", "Phoenix"};
static const char *const places[] = {"Memphis, TN", "Louisville, KY", "Dallas, TX",
                                     "Ontario, CA", "Newark, NJ",     "Chicago, IL"};

struct churn {
	PGconn *conn;
	uint64_t rng;
	long long max_id[4]; /* orders, shipments, customers, work orders */
	long long txns, changes;
	long long paced; /* changes, counting a move that found no row as one */
};

static bool prepare(struct churn *c, char *err, size_t errlen)
{
	static const char *const maxes[] = {"orders", "shipments", "customers", "work_orders"};
	static const char *const keys[] = {"order_id", "shipment_id", "customer_id",
	                                   "work_order_id"};

	for (size_t i = 0; i < ODS_ARRAY_LEN(stmts); i++) {
		PGresult *res =
		        PQprepare(c->conn, stmts[i].name, stmts[i].sql, stmts[i].nparams, NULL);
		bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;
		if (!ok)
			db_fail(c->conn, res, err, errlen);
		PQclear(res);
		if (!ok)
			return false;
	}
	for (int i = 0; i < 4; i++) {
		char *sql = xasprintf("SELECT coalesce(max(%s), 1) FROM %s", keys[i], maxes[i]);
		PGresult *res = PQexec(c->conn, sql);
		bool ok = PQresultStatus(res) == PGRES_TUPLES_OK;
		free(sql);
		if (ok)
			c->max_id[i] = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		else
			db_fail(c->conn, res, err, errlen);
		PQclear(res);
		if (!ok)
			return false;
	}
	return true;
}

/* Runs a prepared statement; adds its rows to *changes; RETURNING values to out. */
static bool run(struct churn *c, const char *name, int n, const char *const *params,
                long long *changes, char *out1, char *out2, size_t outlen, char *err, size_t errlen)
{
	PGresult *res = PQexecPrepared(c->conn, name, n, params, NULL, NULL, 0);
	ExecStatusType st = PQresultStatus(res);
	bool ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;

	if (!ok)
		db_fail(c->conn, res, err, errlen);
	else {
		*changes += strtoll(PQcmdTuples(res), NULL, 10);
		if (out1 && st == PGRES_TUPLES_OK && PQntuples(res) == 1) {
			snprintf(out1, outlen, "%s", PQgetvalue(res, 0, 0));
			snprintf(out2, outlen, "%s", PQgetvalue(res, 0, 1));
		}
	}
	PQclear(res);
	return ok;
}

#define RAND(c, n) ((long long)(next(&(c)->rng) % (uint64_t)(n)))

/* One move in one transaction; *changes = rows it changed. */
static bool move(struct churn *c, long long *changes, char *err, size_t errlen)
{
	char a[32], b[32], d[32], e[32], id[32] = "", st[32] = "";
	int pick = (int)RAND(c, 100);
	bool ok;

	*changes = 0;
	if (!db_exec(c->conn, "BEGIN", err, errlen))
		return false;
	if (pick < 35) {
		static const char *const from[] = {"placed", "paid", "shipped"};
		snprintf(a, sizeof(a), "%lld", 1 + RAND(c, c->max_id[0]));
		const char *p[] = {a, from[RAND(c, 3)]};
		ok = run(c, "order_move", 2, p, changes, id, st, sizeof(id), err, errlen);
		const char *q[] = {id, places[RAND(c, ODS_ARRAY_LEN(places))]};
		const char *h[] = {id, st};
		if (ok && *id)
			ok = run(c, "status_history", 2, h, changes, NULL, NULL, 0, err, errlen);
		if (ok && strcmp(st, "paid") == 0)
			ok = run(c, "payment_capture", 1, q, changes, NULL, NULL, 0, err, errlen);
		else if (ok && strcmp(st, "shipped") == 0)
			ok = run(c, "shipment_create", 2, q, changes, NULL, NULL, 0, err, errlen);
		else if (ok && strcmp(st, "delivered") == 0)
			ok = run(c, "shipment_deliver", 1, q, changes, NULL, NULL, 0, err, errlen);
	} else if (pick < 55) {
		snprintf(a, sizeof(a), "%lld", 1 + RAND(c, c->max_id[1]));
		const char *p[] = {a, RAND(c, 2) ? "in_transit" : "label_created",
		                   places[RAND(c, ODS_ARRAY_LEN(places))]};
		ok = run(c, "shipment_scan", 3, p, changes, NULL, NULL, 0, err, errlen);
	} else if (pick < 75) {
		snprintf(a, sizeof(a), "%lld", 1 + RAND(c, c->max_id[2]));
		snprintf(b, sizeof(b), "+1-%03lld-555-%04lld", 200 + RAND(c, 800), RAND(c, 10000));
		snprintf(d, sizeof(d), "%lld.%02lld", RAND(c, 50), RAND(c, 100));
		const char *p[] = {a, b, cities[RAND(c, ODS_ARRAY_LEN(cities))], d};
		ok = run(c, "customer_edit", 4, p, changes, NULL, NULL, 0, err, errlen);
	} else if (pick < 88) {
		static const char *const from[] = {"new", "scheduled", "dispatched", "in_progress"};
		snprintf(a, sizeof(a), "%lld", 1 + RAND(c, c->max_id[3]));
		const char *p[] = {a, from[RAND(c, 4)]};
		ok = run(c, "work_order_move", 2, p, changes, NULL, NULL, 0, err, errlen);
	} else {
		static const char *const channels[] = {"web", "mobile", "store", "phone"};
		snprintf(a, sizeof(a), "%lld", 1 + RAND(c, c->max_id[2]));
		snprintf(b, sizeof(b), "%lld", 1 + RAND(c, 6));
		snprintf(d, sizeof(d), "%lld.%02lld", 5 + RAND(c, 400), RAND(c, 100));
		snprintf(e, sizeof(e), "%04lld", RAND(c, 10000));
		const char *p[] = {a, channels[RAND(c, 4)], b, d, e};
		ok = run(c, "order_new", 5, p, changes, NULL, NULL, 0, err, errlen);
		*changes += ok; /* the order, besides its payment */
	}
	if (ok)
		return db_exec(c->conn, "COMMIT", err, errlen);
	PQclear(PQexec(c->conn, "ROLLBACK"));
	return false;
}

static void pause_s(double s)
{
	if (s <= 0)
		return;
	struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
	nanosleep(&ts, NULL);
}

int churn_run(const struct churn_opts *o)
{
	struct churn c = {.rng = o->seed};
	char err[ODS_ERRLEN];
	double start = now_s(), backoff = 0.25;
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	while (!stopping && (o->duration <= 0 || now_s() - start < o->duration)) {
		long long changes;
		if (!c.conn) {
			c.conn = db_connect(o->db, "odsctl demo churn", err, sizeof(err));
			bool connected = c.conn != NULL;
			if (connected && !prepare(&c, err, sizeof(err)) &&
			    PQstatus(c.conn) == CONNECTION_OK) {
				/* Not the network: the source lacks its tables (odsctl demo source). */
				fprintf(stderr, "odsctl demo churn: %s\n", err);
				PQfinish(c.conn);
				return 1;
			}
			if (!connected || PQstatus(c.conn) != CONNECTION_OK) {
				log_warn("demo churn: %s; retrying in %.2f s", err, backoff);
				PQfinish(c.conn);
				c.conn = NULL;
				pause_s(backoff);
				backoff = backoff * 2 > 5 ? 5 : backoff * 2;
				continue;
			}
			backoff = 0.25;
		}
		if (!move(&c, &changes, err, sizeof(err))) {
			if (PQstatus(c.conn) == CONNECTION_OK) {
				/* A move that failed on a healthy connection is a bug in the moves. */
				fprintf(stderr, "odsctl demo churn: %s\n", err);
				PQfinish(c.conn);
				return 1;
			}
			log_warn("demo churn: %s; reconnecting", err);
			PQfinish(c.conn);
			c.conn = NULL;
			continue;
		}
		c.txns++;
		c.changes += changes;
		c.paced += changes ? changes : 1;
		/* Due time of the next transaction: ahead, sleep; behind, go on at once. */
		pause_s(start + (double)c.paced / o->rate - now_s());
	}
	PQfinish(c.conn);
	double secs = now_s() - start;
	printf("demo churn: %lld transactions, %lld changes in %.1f s: %.1f changes/s (asked "
	       "%.1f)\n",
	       c.txns, c.changes, secs, secs > 0 ? (double)c.changes / secs : 0.0, o->rate);
	return 0;
}
