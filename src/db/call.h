/*
 * call: one API request = ONE pipelined round trip on a pooled connection.
 *
 * In libpq pipeline mode we send, then Sync once:
 *   [DEALLOCATE ALL, when the route catalog generation changed]
 *   [Parse "ods_setup", the first time on this connection]
 *   [Parse of the route statement, the first time on this connection for
 *    this role: plans are never shared across roles, see db/call.c]
 *   Bind/Execute "ods_setup": set_config('role', $1, true),
 *                set_config('request.jwt.claims', $2, true),
 *                set_config('statement_timeout', $3, true)
 *   Bind/Execute the route statement with the request's parameters
 *   Sync
 * Everything before a Sync is one implicit transaction in PostgreSQL's
 * extended protocol, so this is BEGIN ... COMMIT without the two extra
 * messages, and an error anywhere rolls it all back at the Sync: failures
 * also cost one round trip and leave nothing behind on the connection.
 * The role switch and claims are transaction-local (is_local = true), so the
 * next request on the connection starts as ods_authenticator again.
 */
#ifndef ODS_CALL_H
#define ODS_CALL_H

#include "db/pool.h"

#include <libpq-fe.h>
#include <stdbool.h>

struct db_call {
	const char *role;        /* the JWT's app role */
	const char *claims_json; /* the JWT claims, for request.jwt.claims */
	int statement_timeout_ms;
	unsigned generation;  /* route catalog generation */
	int stmt_index;       /* the route's index in that catalog */
	const char *stmt_sql; /* its SQL, prepared when the connection lacks it */
	int nparams;
	const char *const *values; /* text values, NULL = SQL NULL */
	/* Optional: one more statement between the setup and the route, in the
	 * same transaction (unnamed: parsed each time), e.g. the idempotency
	 * check; when it fails the route does not run. */
	const char *pre_sql;
	int pre_nparams;
	const char *const *pre_values;
};

enum db_call_status {
	DB_CALL_OK,         /* *res holds the route statement's tuples */
	DB_CALL_SQL_ERROR,  /* *res holds the error result (SQLSTATE etc.) */
	DB_CALL_CONN_ERROR, /* the connection failed: release it as broken */
};

/* Runs the call; the caller PQclear()s *res (may be NULL on a connection error). */
enum db_call_status db_call_run(struct pool_conn *pc, const struct db_call *c, PGresult **res,
                                char *err, size_t errlen);

#endif
