/*
 * libFuzzer target: Debezium event parsing, i.e. ods_api.ingest_debezium
 * (api/routes/95_ingest.sql, PL/pgSQL) behind odsd's body checks.
 *
 * LLVMFuzzerInitialize migrates the database at ODS_TEST_DB_URI (run under
 * `ODS_HARNESS_PG=1 tests/harness.sh`), loads the route catalog with
 * routes_load as odsd does, finds POST /v1/ingest/debezium, and connects as
 * ods_authenticator, the user odsd uses.
 *
 * Per input, as odsd would with a valid ods_sync token and
 * Content-Type: application/json:
 *   1. params_bind on that route (UTF-8 check, json_loadb, NUL bytes):
 *      a rejected body must be a 400 and goes no further;
 *   2. BEGIN; the setup statement of db/call.c (role ods_sync, the claims,
 *      statement_timeout); the route's own SQL with the body; ROLLBACK.
 * Findings (abort with the event and the error): an error whose SQLSTATE
 * sqlstate_to_http maps to 500 or more; a result without the body/status
 * columns or with a status of 500 or more; a connection that does not come
 * back idle after the ROLLBACK.
 *
 * request_header and MHD_get_connection_values are stubbed (as in
 * fuzz_params.c): libmicrohttpd is not linked.
 */
#include "autoconfig.h"

#include "admin/migrate.h"
#include "core/log.h"
#include "core/util.h"
#include "db/sqlstate.h"
#include "ods/params.h"
#include "ods/routes.h"

#include <libpq-fe.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The text of setup_sql in db/call.c; keep them the same. */
#define SETUP_SQL                                                                                  \
	"SELECT set_config('role', $1, true), set_config('request.jwt.claims', $2, true), "        \
	"set_config('statement_timeout', $3, true)"
#define CLAIMS                                                                                     \
	"{\"sub\":\"debezium\",\"role\":\"ods_sync\",\"scope\":\"ingest:write\","                  \
	"\"exp\":4102444800}"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static PGconn *conn;
static struct routes *catalog; /* holds the loaded table, as odsd's app does */
static struct route_match match;
static bool verbose; /* FUZZ_DEBEZIUM_VERBOSE=1: the outcome of each input */

/*
 * The function's behaviour is invisible to libFuzzer's coverage (it runs in
 * PostgreSQL), so each input's outcome also sets one of these extra
 * counters, which libFuzzer reads as coverage: an input with a new outcome
 * (an error message, or a result whose tables and zero/non-zero counts are
 * new) is kept in the corpus.
 */
__attribute__((used, section("__libfuzzer_extra_counters"))) static uint8_t outcomes[4096];

/* FNV-1a of s with each run of digits folded to 0 (all zeros) or 1; with
 * upto_quote (error messages, which quote the client's values), up to the
 * first '"'. */
static void record_outcome(const char *s, bool upto_quote)
{
	uint32_t h = 2166136261u;

	while (*s) {
		char c = *s++;
		if (c >= '0' && c <= '9') {
			bool nonzero = c != '0';
			while (*s >= '0' && *s <= '9')
				nonzero |= *s++ != '0';
			c = nonzero ? '1' : '0';
		} else if (c == '"' && upto_quote) {
			break;
		}
		h = (h ^ (uint8_t)c) * 16777619u;
	}
	outcomes[h % sizeof(outcomes)] = 1;
}

/* ---- stubs for the two MHD-facing functions params.c uses ---- */

const char *request_header(const struct request *req, const char *name)
{
	return strcasecmp(name, MHD_HTTP_HEADER_CONTENT_TYPE) == 0 ? "application/json" : NULL;
}

int MHD_get_connection_values(struct MHD_Connection *connection, enum MHD_ValueKind kind,
                              MHD_KeyValueIterator iterator, void *iterator_cls)
{
	return 0; /* no query string */
}

/* ---- set-up ---- */

static void die(const char *what, const char *why)
{
	fprintf(stderr, "fuzz_debezium: %s: %s\n", what, why);
	exit(1);
}

static PGconn *connect_db(const char *uri)
{
	PGconn *c = PQconnectdb(uri);

	if (PQstatus(c) != CONNECTION_OK)
		die("connect", PQerrorMessage(c));
	return c;
}

static void stop(void)
{
	PQfinish(conn);
	routes_free(catalog);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *uri = getenv("ODS_TEST_DB_URI");
	const char *api = getenv("ODS_API_DIR") ? getenv("ODS_API_DIR") : ODS_API_DIR;
	char err[ODS_ERRLEN];
	const char *at;
	struct route_table *table;
	PGconn *super;
	int applied;

	verbose = getenv("FUZZ_DEBEZIUM_VERBOSE") != NULL;
	if (!uri)
		die("ODS_TEST_DB_URI is not set",
		    "run me under ODS_HARNESS_PG=1 tests/harness.sh (make fuzz-smoke does)");
	super = connect_db(uri);
	log_set_level(LOG_WARN); /* quiet: no line per applied file */
	PQclear(PQexec(super, "SET client_min_messages = warning"));
	if (!migrate_run(super, api, &applied, err, sizeof(err)))
		die("migrate", err);
	PQfinish(super);

	at = strchr(uri, '@');
	if (!at || strncmp(uri, "postgresql://", 13) != 0)
		die("unexpected ODS_TEST_DB_URI", uri);
	char *auth_uri = xasprintf("postgresql://ods_authenticator%s", at);
	conn = connect_db(auth_uri);
	free(auth_uri);
	table = routes_load(conn, err, sizeof(err));
	if (!table)
		die("routes_load", err);
	catalog = routes_new();
	routes_swap(catalog, table); /* match points into it until exit */
	atexit(stop);
	if (routes_match(table, "POST", "/v1/ingest/debezium", &match) != ROUTE_FOUND)
		die("route catalog", "no POST /v1/ingest/debezium");
	return 0;
}

/* ---- one input ---- */

static void finding(const uint8_t *data, size_t size, const char *what, const PGresult *res)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

	fprintf(stderr, "fuzz_debezium: %s\n  SQLSTATE %s: %s\n  event: %.*s\n", what,
	        state ? state : "-", res ? PQresultErrorMessage(res) : PQerrorMessage(conn),
	        (int)(size < 2000 ? size : 2000), (const char *)data);
	abort();
}

static void exec_ok(const char *sql, const uint8_t *data, size_t size)
{
	PGresult *r = PQexec(conn, sql);

	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		finding(data, size, sql, r);
	PQclear(r);
}

/* The route's answer: body and status columns, a status below 500. */
static void check_result(const PGresult *r, const uint8_t *data, size_t size)
{
	int cbody = PQfnumber(r, "body"), cstatus = PQfnumber(r, "status");

	if (cbody < 0 || cstatus < 0 || PQntuples(r) != 1 || PQgetisnull(r, 0, cbody))
		finding(data, size, "the result lacks body or status", r);
	if (!PQgetisnull(r, 0, cstatus) && atoi(PQgetvalue(r, 0, cstatus)) >= 500)
		finding(data, size, "the route answered a status >= 500", r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct route *route = match.route;
	struct request req = {.path = (char *)"/v1/ingest/debezium"};
	struct bound_params bp;
	struct param_error pe = {0};
	const char *setup[3] = {"ods_sync", CLAIMS, "5000"};
	PGresult *r;

	snprintf(req.method, sizeof(req.method), "POST");
	strbuf_init(&req.body);
	strbuf_add(&req.body, data, size);
	if (!params_bind(route, &match, &req, &bp, &pe)) {
		if (verbose)
			fprintf(stderr, "fuzz_debezium: rejected: %d %s\n", pe.status, pe.detail);
		if (pe.status != 400)
			abort(); /* a JSON body can only be malformed */
		params_free(&bp);
		strbuf_free(&req.body);
		return 0;
	}

	exec_ok("BEGIN", data, size);
	r = PQexecParams(conn, SETUP_SQL, 3, NULL, setup, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK)
		finding(data, size, "the setup statement failed", r);
	PQclear(r);
	r = PQexecParams(conn, route->sql, bp.n, NULL, bp.values, NULL, NULL, 0);
	if (verbose)
		fprintf(stderr, "fuzz_debezium: %s %s\n", PQresStatus(PQresultStatus(r)),
		        PQresultStatus(r) == PGRES_TUPLES_OK && PQnfields(r) > 0
		                ? PQgetvalue(r, 0, 0)
		                : PQresultErrorMessage(r));
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQnfields(r) > 0 && PQntuples(r) > 0)
		record_outcome(PQgetvalue(r, 0, 0), false);
	else
		record_outcome(PQresultErrorMessage(r), true);
	if (PQresultStatus(r) == PGRES_TUPLES_OK)
		check_result(r, data, size);
	else if (sqlstate_to_http(PQresultErrorField(r, PG_DIAG_SQLSTATE))->status >= 500)
		finding(data, size, "an error that odsd answers with 5xx", r);
	PQclear(r);
	exec_ok("ROLLBACK", data, size);
	if (PQstatus(conn) != CONNECTION_OK || PQtransactionStatus(conn) != PQTRANS_IDLE)
		finding(data, size, "the connection is not idle after ROLLBACK", NULL);
	params_free(&bp);
	strbuf_free(&req.body);
	return 0;
}
