/*
 * call: one request as one pipelined round trip (model in db/call.h).
 *
 * What a call sends, in order, then one Sync:
 *   DEALLOCATE ALL          only when the route catalog generation changed and
 *                           the connection holds statements of the old one
 *   Parse "ods_setup"       when the connection lacks it (new, or deallocated)
 *   Parse "r<index>_<slot>" when the connection lacks the route statement
 *   Bind/Execute ods_setup  role, claims, statement_timeout (all SET LOCAL)
 *   Bind/Execute pre_sql    only when the call has one (the idempotency check)
 *   Bind/Execute the route statement
 * The Parses come first so that names resolve as ods_authenticator, before
 * the role switch.
 *
 * Route statements are per role (slot = the role's place in pc->roles):
 * PostgreSQL inlines simple SQL functions when it plans and checks EXECUTE
 * on them only then, so a cached generic plan made for fraud_analyst would
 * run the fraud queue for support_agent on the same connection. With one
 * statement per (route, role), every plan was made under the role that runs
 * it. A connection that meets more than POOL_ROLE_SLOTS roles runs the
 * extra ones unprepared (the unnamed statement: parsed and planned each time).
 *
 * Prepared statements are session objects, untouched by the rollback of a
 * failed pipeline, so the bookkeeping in struct pool_conn follows each
 * message's own result: a Parse is recorded only when its result says it
 * succeeded, and DEALLOCATE ALL (which also drops ods_setup) resets the
 * bookkeeping only when it ran. A generation change therefore costs one
 * extra message on the next call per connection, and no extra round trip.
 *
 * Results come back in the same order, each followed by a NULL from
 * PQgetResult; after the first error the rest are PGRES_PIPELINE_ABORTED;
 * the Sync ends with PGRES_PIPELINE_SYNC. An error raised at COMMIT
 * (deferred constraints) arrives after the route's own result, as an extra
 * error before the Sync: it is collected too, and turns the call into a
 * SQL error. Anything else out of order means the protocol state is
 * unknown: DB_CALL_CONN_ERROR, and the caller releases the connection as
 * broken.
 *
 * Thread-safety: a call uses only the pool_conn its thread acquired.
 */
#include "autoconfig.h"

#include "db/call.h"

#include "db/db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SETUP_NAME "ods_setup"
static const char setup_sql[] = "SELECT set_config('role', $1, true), "
                                "set_config('request.jwt.claims', $2, true), "
                                "set_config('statement_timeout', $3, true)";

enum step {
	STEP_DEALLOCATE,
	STEP_PREPARE_SETUP,
	STEP_PREPARE_ROUTE,
	STEP_SETUP,
	STEP_PRE,
	STEP_ROUTE
};

/* The slot of role on this connection (assigned on first use); -1 when full. */
static int role_slot(struct pool_conn *pc, const char *role)
{
	for (int i = 0; i < POOL_ROLE_SLOTS; i++) {
		if (!pc->roles[i]) {
			pc->roles[i] = xstrdup(role);
			return i;
		}
		if (strcmp(pc->roles[i], role) == 0)
			return i;
	}
	return -1;
}

static void ensure_capacity(struct pool_conn *pc, int n)
{
	if (n <= pc->nprepared)
		return;
	pc->prepared = xrealloc(pc->prepared, (size_t)n * sizeof(pc->prepared[0]));
	memset(pc->prepared + pc->nprepared, 0,
	       (size_t)(n - pc->nprepared) * sizeof(pc->prepared[0]));
	pc->nprepared = n;
}

static bool holds_route_statements(const struct pool_conn *pc)
{
	for (int i = 0; i < pc->nprepared; i++) {
		if (pc->prepared[i])
			return true;
	}
	return false;
}

struct plan {
	const char *name; /* the route statement; "" = the unnamed one, parsed each time */
	int key;          /* its entry in pc->prepared, or -1 */
	enum step steps[6];
	int nsteps;
};

/* Records what a successful step changed on the connection. */
static void step_done(struct pool_conn *pc, const struct db_call *c, const struct plan *p,
                      enum step s)
{
	switch (s) {
	case STEP_DEALLOCATE:
		memset(pc->prepared, 0, (size_t)pc->nprepared * sizeof(pc->prepared[0]));
		pc->setup_prepared = false;
		pc->generation = c->generation;
		break;
	case STEP_PREPARE_SETUP:
		pc->setup_prepared = true;
		break;
	case STEP_PREPARE_ROUTE:
		if (p->key >= 0)
			pc->prepared[p->key] = true;
		break;
	case STEP_SETUP:
	case STEP_PRE:
	case STEP_ROUTE:
		break;
	}
}

/* Queues the messages of c into p->steps; false when libpq could not send
 * (the connection is then unusable). */
static bool send_call(struct pool_conn *pc, const struct db_call *c, struct plan *p, char *name,
                      size_t namelen)
{
	PGconn *conn = pc->conn;
	char timeout[24];
	const char *setup_values[3];
	bool reset = pc->generation != c->generation;
	bool deallocate = reset && holds_route_statements(pc);
	int slot = role_slot(pc, c->role ? c->role : "");

	if (reset && !deallocate)
		pc->generation = c->generation; /* nothing of the old generation to forget */
	p->nsteps = 0;
	p->key = -1;
	p->name = "";
	if (slot >= 0) {
		snprintf(name, namelen, "r%d_%d", c->stmt_index, slot);
		p->name = name;
		p->key = c->stmt_index * POOL_ROLE_SLOTS + slot;
		ensure_capacity(pc, (c->stmt_index + 1) * POOL_ROLE_SLOTS);
	}
	snprintf(timeout, sizeof(timeout), "%d",
	         c->statement_timeout_ms > 0 ? c->statement_timeout_ms : 0);
	setup_values[0] = c->role;
	setup_values[1] = c->claims_json;
	setup_values[2] = timeout;

	if (deallocate) {
		if (!PQsendQueryParams(conn, "DEALLOCATE ALL", 0, NULL, NULL, NULL, NULL, 0))
			return false;
		p->steps[p->nsteps++] = STEP_DEALLOCATE;
	}
	if (deallocate || !pc->setup_prepared) {
		if (!PQsendPrepare(conn, SETUP_NAME, setup_sql, 3, NULL))
			return false;
		p->steps[p->nsteps++] = STEP_PREPARE_SETUP;
	}
	if (p->key < 0 || deallocate || !pc->prepared[p->key]) {
		if (!PQsendPrepare(conn, p->name, c->stmt_sql, 0, NULL))
			return false;
		p->steps[p->nsteps++] = STEP_PREPARE_ROUTE;
	}
	if (!PQsendQueryPrepared(conn, SETUP_NAME, 3, setup_values, NULL, NULL, 0))
		return false;
	p->steps[p->nsteps++] = STEP_SETUP;
	if (c->pre_sql) {
		if (!PQsendQueryParams(conn, c->pre_sql, c->pre_nparams, NULL, c->pre_values, NULL,
		                       NULL, 0))
			return false;
		p->steps[p->nsteps++] = STEP_PRE;
	}
	if (!PQsendQueryPrepared(conn, p->name, c->nparams, c->values, NULL, NULL, 0))
		return false;
	p->steps[p->nsteps++] = STEP_ROUTE;
	return PQpipelineSync(conn) == 1;
}

/* Keeps the first error result, frees the rest. */
static void keep_error(PGresult **first, PGresult *r)
{
	if (!*first)
		*first = r;
	else
		PQclear(r);
}

enum db_call_status db_call_run(struct pool_conn *pc, const struct db_call *c, PGresult **res,
                                char *err, size_t errlen)
{
	PGconn *conn = pc->conn;
	PGresult *route = NULL, *error = NULL, *r;
	struct plan p;
	char name[48];
	int nulls = 0;
	bool synced = false;

	*res = NULL;
	if (!conn || PQstatus(conn) != CONNECTION_OK || PQpipelineStatus(conn) != PQ_PIPELINE_ON) {
		errf(err, errlen, "the database connection is not usable");
		return DB_CALL_CONN_ERROR;
	}
	if (!send_call(pc, c, &p, name, sizeof(name))) {
		db_fail(conn, NULL, err, errlen);
		return DB_CALL_CONN_ERROR;
	}

	/* One result per step, each followed by NULL. */
	for (int i = 0; i < p.nsteps; i++) {
		r = PQgetResult(conn);
		if (!r)
			goto lost;
		switch (PQresultStatus(r)) {
		case PGRES_COMMAND_OK:
		case PGRES_TUPLES_OK:
			step_done(pc, c, &p, p.steps[i]);
			if (p.steps[i] == STEP_ROUTE)
				route = r;
			else
				PQclear(r);
			break;
		case PGRES_FATAL_ERROR:
			keep_error(&error, r);
			break;
		case PGRES_PIPELINE_ABORTED:
			PQclear(r);
			break;
		default:
			PQclear(r);
			goto lost;
		}
		r = PQgetResult(conn);
		if (r) {
			PQclear(r);
			goto lost;
		}
	}
	/* Then the Sync, possibly after an error raised at COMMIT. */
	while (!synced) {
		r = PQgetResult(conn);
		if (!r) {
			if (++nulls > 1 || PQstatus(conn) != CONNECTION_OK)
				goto lost;
			continue;
		}
		nulls = 0;
		switch (PQresultStatus(r)) {
		case PGRES_PIPELINE_SYNC:
			synced = true;
			PQclear(r);
			break;
		case PGRES_FATAL_ERROR:
			keep_error(&error, r);
			break;
		default:
			PQclear(r);
			goto lost;
		}
	}
	if (PQstatus(conn) != CONNECTION_OK || PQtransactionStatus(conn) != PQTRANS_IDLE)
		goto lost;

	if (error) {
		PQclear(route);
		db_fail(conn, error, err, errlen);
		*res = error;
		return DB_CALL_SQL_ERROR;
	}
	*res = route;
	return DB_CALL_OK;

lost:
	if (error)
		db_fail(conn, error, err, errlen);
	else if (PQstatus(conn) != CONNECTION_OK)
		db_fail(conn, NULL, err, errlen);
	else
		errf(err, errlen, "unexpected reply from the database in a pipelined call");
	PQclear(error);
	PQclear(route);
	return DB_CALL_CONN_ERROR;
}
