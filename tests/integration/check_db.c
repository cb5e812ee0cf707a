/*
 * db integration tests: the pool, the pipelined call, the SQLSTATE mapping,
 * the LISTEN thread and the freshness cache, against the harness cluster.
 *
 * Every test gets a freshly migrated database (the real schema, roles
 * included) plus a few ods_api.t_* functions made here. Pools connect as
 * ods_authenticator, as odsd does, so role switches and grants are the real
 * ones. Waits for the listener are bounded condition-variable waits, never
 * sleeps.
 */
#include "autoconfig.h"

#include "testutil.h"

#include "core/util.h"
#include "db/call.h"
#include "db/listener.h"
#include "db/pool.h"
#include "db/sqlstate.h"
#include "ods/freshness.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WAIT_MS 5000

static const char fixtures_sql[] =
        "CREATE FUNCTION ods_api.t_whoami() RETURNS text LANGUAGE sql AS $$"
        " SELECT current_user || '|' || coalesce(current_setting('request.jwt.claims', true), '')"
        " || '|' || current_setting('statement_timeout') $$;\n"
        "CREATE FUNCTION ods_api.t_fraud_only() RETURNS text LANGUAGE sql AS $$ SELECT 'ok' $$;\n"
        "CREATE FUNCTION ods_api.t_not_found(p_id bigint) RETURNS text LANGUAGE plpgsql AS $$"
        " BEGIN RAISE EXCEPTION 'customer % not found', p_id USING ERRCODE = 'OD404'; END $$;\n"
        "CREATE FUNCTION ods_api.t_sleep(p_s float8) RETURNS text LANGUAGE sql AS $$"
        " SELECT pg_sleep(p_s); SELECT 'woke' $$;\n"
        "CREATE FUNCTION ods_api.t_write_synced() RETURNS text LANGUAGE sql AS $$"
        " UPDATE synced.customer_current SET full_name = 'x'; SELECT 'written' $$;\n"
        "CREATE TABLE public.t_deferred (id int);\n"
        "CREATE FUNCTION public.t_reject() RETURNS trigger LANGUAGE plpgsql AS $$"
        " BEGIN RAISE EXCEPTION 'rejected at commit' USING ERRCODE = 'OD409'; END $$;\n"
        "CREATE CONSTRAINT TRIGGER t_reject AFTER INSERT ON public.t_deferred"
        " DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION public.t_reject();\n"
        "CREATE FUNCTION ods_api.t_insert_deferred() RETURNS text LANGUAGE sql"
        " SECURITY DEFINER AS $$ INSERT INTO public.t_deferred VALUES (1); SELECT 'inserted' $$;\n"
        "GRANT EXECUTE ON FUNCTION ods_api.t_whoami(), ods_api.t_not_found(bigint),"
        " ods_api.t_sleep(float8), ods_api.t_write_synced(), ods_api.t_insert_deferred()"
        " TO support_agent, fraud_analyst;\n"
        "GRANT EXECUTE ON FUNCTION ods_api.t_fraud_only() TO fraud_analyst;\n";

static char *db_uri;   /* the test database, as the superuser ods_test */
static char *auth_uri; /* the same database, as ods_authenticator */
static PGconn *admin;

/* uri with its user replaced (URIs of the form scheme://user@host...). */
static char *with_user(const char *uri, const char *user)
{
	const char *start = strstr(uri, "://"), *at;

	ck_assert(start != NULL);
	start += 3;
	at = strchr(start, '@');
	ck_assert(at != NULL);
	return xasprintf("%.*s%s%s", (int)(start - uri), uri, user, at);
}

static void setup(void)
{
	db_uri = tu_migrated_db();
	auth_uri = with_user(db_uri, "ods_authenticator");
	admin = tu_connect(db_uri);
	tu_exec(admin, fixtures_sql);
}

static void teardown(void)
{
	PQfinish(admin);
	free(auth_uri);
	free(db_uri);
}

/* ---- helpers for calls ---------------------------------------------------- */

struct call_out {
	enum db_call_status st;
	char value[ODS_ERRLEN + 16]; /* first value, or the SQLSTATE of an error */
};

static struct call_out run(struct pool_conn *pc, const char *role, const char *claims,
                           int timeout_ms, unsigned gen, int idx, const char *sql, int nparams,
                           const char *const *values)
{
	struct db_call c = {.role = role,
	                    .claims_json = claims,
	                    .statement_timeout_ms = timeout_ms,
	                    .generation = gen,
	                    .stmt_index = idx,
	                    .stmt_sql = sql,
	                    .nparams = nparams,
	                    .values = values};
	struct call_out out = {0};
	char err[ODS_ERRLEN];
	PGresult *res = NULL;

	out.st = db_call_run(pc, &c, &res, err, sizeof(err));
	if (out.st == DB_CALL_OK) {
		ck_assert_int_eq(PQntuples(res), 1);
		snprintf(out.value, sizeof(out.value), "%s", PQgetvalue(res, 0, 0));
	} else if (out.st == DB_CALL_SQL_ERROR) {
		ck_assert_ptr_nonnull(res);
		snprintf(out.value, sizeof(out.value), "%s",
		         PQresultErrorField(res, PG_DIAG_SQLSTATE));
	} else {
		snprintf(out.value, sizeof(out.value), "conn: %s", err);
	}
	PQclear(res);
	return out;
}

static struct call_out whoami(struct pool_conn *pc, const char *role, const char *claims)
{
	return run(pc, role, claims, 5000, 1, 0, "SELECT ods_api.t_whoami()", 0, NULL);
}

/*
 * No pending results, no open transaction, pipeline mode on. Leaving and
 * re-entering pipeline mode proves it: libpq refuses to leave while any
 * result is uncollected.
 */
static void assert_clean(struct pool_conn *pc)
{
	ck_assert_int_eq(PQstatus(pc->conn), CONNECTION_OK);
	ck_assert_int_eq(PQpipelineStatus(pc->conn), PQ_PIPELINE_ON);
	ck_assert_int_eq(PQtransactionStatus(pc->conn), PQTRANS_IDLE);
	ck_assert_int_eq(PQisBusy(pc->conn), 0);
	ck_assert_msg(PQexitPipelineMode(pc->conn) == 1, "%s", PQerrorMessage(pc->conn));
	ck_assert_int_eq(PQenterPipelineMode(pc->conn), 1);
}

/* Runs sql on the pooled connection's own session, outside the pipeline. */
static char *session_value(struct pool_conn *pc, const char *sql)
{
	ck_assert_int_eq(PQexitPipelineMode(pc->conn), 1);
	char *v = tu_value(pc->conn, sql);
	ck_assert_int_eq(PQenterPipelineMode(pc->conn), 1);
	return v;
}

/* Whether route statement idx exists on pc for role. */
static bool is_prepared(const struct pool_conn *pc, int idx, const char *role)
{
	for (int slot = 0; slot < POOL_ROLE_SLOTS && pc->roles[slot]; slot++) {
		int key = idx * POOL_ROLE_SLOTS + slot;
		if (strcmp(pc->roles[slot], role) == 0)
			return key < pc->nprepared && pc->prepared[key];
	}
	return false;
}

static struct pool_conn *acquire(struct pool *p)
{
	char err[ODS_ERRLEN];
	bool timed_out;
	struct pool_conn *pc = pool_acquire(p, 1000, &timed_out, err, sizeof(err));

	ck_assert_msg(pc != NULL, "pool_acquire: %s", err);
	return pc;
}

/* ---- sqlstate ----------------------------------------------------------- */

static void expect_map(const char *state, int status, const char *code, int expose)
{
	const struct sqlstate_map *m = sqlstate_to_http(state);

	ck_assert_msg(m->status == status, "%s: status %d, want %d", state ? state : "NULL",
	              m->status, status);
	ck_assert_str_eq(m->code, code);
	ck_assert_int_eq(!!m->expose_detail, expose);
	ck_assert(m->title != NULL && m->title[0] != '\0');
	if (!expose)
		ck_assert(m->detail != NULL && m->detail[0] != '\0');
}

START_TEST(test_sqlstate_map)
{
	expect_map("42501", 403, "forbidden", 0);
	ck_assert_str_eq(sqlstate_to_http("42501")->detail,
	                 "the role of this token may not do this");
	expect_map("28000", 403, "forbidden", 0);
	expect_map("28P01", 403, "forbidden", 0);
	expect_map("23505", 409, "conflict", 0);
	expect_map("23503", 422, "unprocessable", 0);
	expect_map("23502", 422, "unprocessable", 1);
	expect_map("23514", 422, "unprocessable", 1);
	const char *bad[] = {"22P02", "22003", "22007", "22008", "22023", "2202E", "22001"};
	for (size_t i = 0; i < ODS_ARRAY_LEN(bad); i++)
		expect_map(bad[i], 400, "bad_request", 1);
	expect_map("57014", 504, "gateway_timeout", 0);
	const char *down[] = {"08000", "08006", "53000", "53300", "57P01", "57P02",
	                      "57P03", "57P04", "57P05", "40001", "40P01"};
	for (size_t i = 0; i < ODS_ARRAY_LEN(down); i++)
		expect_map(down[i], 503, "service_unavailable", 0);
	expect_map("OD400", 400, "bad_request", 1);
	expect_map("OD404", 404, "not_found", 1);
	expect_map("OD409", 409, "conflict", 1);
	expect_map("OD412", 412, "precondition_failed", 1);
	expect_map("OD422", 422, "unprocessable", 1);
	const char *internal[] = {"P0001", "42883", "42P01", "42703", "22012",
	                          "XX000", "0A000", "OD500", "",      NULL};
	for (size_t i = 0; i < ODS_ARRAY_LEN(internal); i++)
		expect_map(internal[i], 500, "internal", 0);
}
END_TEST

/* ---- call ----------------------------------------------------------------- */

START_TEST(test_call_role_switch_does_not_leak)
{
	struct pool *p = pool_new(auth_uri, 1);
	struct pool_conn *pc = acquire(p);
	struct call_out o;
	char *v;

	o = whoami(pc, "support_agent", "{\"sub\":\"u1\",\"team\":\"t1\"}");
	ck_assert_int_eq(o.st, DB_CALL_OK);
	ck_assert_str_eq(o.value, "support_agent|{\"sub\":\"u1\",\"team\":\"t1\"}|5s");
	assert_clean(pc);

	/* The session is back to the login role, claims and timeout reset. */
	v = session_value(pc, "SELECT current_user || '|' ||"
	                      " coalesce(current_setting('request.jwt.claims', true), '') || '|' ||"
	                      " current_setting('statement_timeout')");
	ck_assert_str_eq(v, "ods_authenticator||0");
	free(v);

	/* The next call on the same connection sees only its own role and claims. */
	o = whoami(pc, "fraud_analyst", "{\"sub\":\"u2\"}");
	ck_assert_int_eq(o.st, DB_CALL_OK);
	ck_assert_str_eq(o.value, "fraud_analyst|{\"sub\":\"u2\"}|5s");
	o = run(pc, "fraud_analyst", "{}", 5000, 1, 1, "SELECT ods_api.t_fraud_only()", 0, NULL);
	ck_assert_int_eq(o.st, DB_CALL_OK);

	/* A grant decides: support_agent may not run the fraud-only function. */
	o = run(pc, "support_agent", "{}", 5000, 1, 1, "SELECT ods_api.t_fraud_only()", 0, NULL);
	ck_assert_int_eq(o.st, DB_CALL_SQL_ERROR);
	ck_assert_str_eq(o.value, "42501");
	ck_assert_int_eq(sqlstate_to_http(o.value)->status, 403);
	assert_clean(pc);

	/* A role ods_authenticator may not switch to is refused by the database. */
	o = whoami(pc, "ods_test", "{}");
	ck_assert_msg(o.st == DB_CALL_SQL_ERROR, "%s", o.value);
	ck_assert_str_eq(o.value, "42501");
	assert_clean(pc);

	pool_release(p, pc, false);
	pool_free(p);
}
END_TEST

START_TEST(test_call_sql_errors_leave_connection_clean)
{
	struct pool *p = pool_new(auth_uri, 1);
	struct pool_conn *pc = acquire(p);
	const char *id[] = {"42"}, *bad_id[] = {"forty-two"};
	struct call_out o;

	/* A project code from the route function. */
	o = run(pc, "support_agent", "{}", 5000, 1, 2, "SELECT ods_api.t_not_found($1)", 1, id);
	ck_assert_int_eq(o.st, DB_CALL_SQL_ERROR);
	ck_assert_str_eq(o.value, "OD404");
	ck_assert_int_eq(sqlstate_to_http(o.value)->status, 404);
	assert_clean(pc);
	ck_assert(is_prepared(pc, 2, "support_agent"));

	/* Bad input fails at Bind: the statement stays prepared. */
	o = run(pc, "support_agent", "{}", 5000, 1, 2, "SELECT ods_api.t_not_found($1)", 1, bad_id);
	ck_assert_int_eq(o.st, DB_CALL_SQL_ERROR);
	ck_assert_str_eq(o.value, "22P02");
	ck_assert_int_eq(sqlstate_to_http(o.value)->status, 400);
	assert_clean(pc);

	/* A support agent writing a synced table: refused by the grants, 403. */
	o = run(pc, "support_agent", "{}", 5000, 1, 3, "SELECT ods_api.t_write_synced()", 0, NULL);
	ck_assert_int_eq(o.st, DB_CALL_SQL_ERROR);
	ck_assert_str_eq(o.value, "42501");
	assert_clean(pc);

	/* The connection is still good for the next request. */
	o = whoami(pc, "support_agent", "{}");
	ck_assert_int_eq(o.st, DB_CALL_OK);
	ck_assert_str_eq(o.value, "support_agent|{}|5s");
	assert_clean(pc);
	pool_release(p, pc, false);
	pool_free(p);
}
END_TEST

START_TEST(test_call_error_at_commit)
{
	struct pool *p = pool_new(auth_uri, 1);
	struct pool_conn *pc = acquire(p);
	struct call_out o;

	/* The route's SELECT succeeds; the deferred trigger fails at COMMIT. */
	o = run(pc, "support_agent", "{}", 5000, 1, 1, "SELECT ods_api.t_insert_deferred()", 0,
	        NULL);
	ck_assert_int_eq(o.st, DB_CALL_SQL_ERROR);
	ck_assert_str_eq(o.value, "OD409");
	assert_clean(pc);
	ck_assert_int_eq(tu_long(admin, "SELECT count(*) FROM public.t_deferred"), 0);
	o = whoami(pc, "support_agent", "{}");
	ck_assert_int_eq(o.st, DB_CALL_OK);
	pool_release(p, pc, false);
	pool_free(p);
}
END_TEST

START_TEST(test_call_statement_timeout)
{
	struct pool *p = pool_new(auth_uri, 1);
	struct pool_conn *pc = acquire(p);
	const char *secs[] = {"3"};
	struct call_out o;

	o = run(pc, "support_agent", "{}", 100, 1, 0, "SELECT ods_api.t_sleep($1)", 1, secs);
	ck_assert_int_eq(o.st, DB_CALL_SQL_ERROR);
	ck_assert_str_eq(o.value, "57014");
	ck_assert_int_eq(sqlstate_to_http(o.value)->status, 504);
	assert_clean(pc);

	/* The timeout was local to that request. */
	o = run(pc, "support_agent", "{}", 5000, 1, 1, "SELECT ods_api.t_whoami()", 0, NULL);
	ck_assert_int_eq(o.st, DB_CALL_OK);
	ck_assert_str_eq(o.value, "support_agent|{}|5s");
	pool_release(p, pc, false);
	pool_free(p);
}
END_TEST

static const char prepared_sql[] = "SELECT string_agg(name || '=' || statement, ';' ORDER BY name) "
                                   "FROM pg_prepared_statements";

START_TEST(test_call_prepares_once_per_generation)
{
	struct pool *p = pool_new(auth_uri, 1);
	struct pool_conn *pc = acquire(p);
	char *before, *after, *times_before, *times_after;
	const char *times_sql = "SELECT string_agg(name || '@' || prepare_time, ';' ORDER BY name)"
	                        " FROM pg_prepared_statements";

	ck_assert_int_eq(whoami(pc, "support_agent", "{}").st, DB_CALL_OK);
	ck_assert(pc->setup_prepared && is_prepared(pc, 0, "support_agent"));
	times_before = session_value(pc, times_sql);
	ck_assert_int_eq(whoami(pc, "support_agent", "{}").st, DB_CALL_OK);
	times_after = session_value(pc, times_sql);
	ck_assert_str_eq(times_before, times_after); /* reused, not prepared again */

	/* One statement per route and role: a plan never crosses roles. */
	ck_assert_int_eq(whoami(pc, "fraud_analyst", "{}").st, DB_CALL_OK);
	struct call_out o = run(pc, "fraud_analyst", "{}", 5000, 1, 1,
	                        "SELECT ods_api.t_fraud_only()", 0, NULL);
	ck_assert_int_eq(o.st, DB_CALL_OK);
	before = session_value(pc, prepared_sql);
	ck_assert_str_eq(before, "ods_setup=SELECT set_config('role', $1, true), "
	                         "set_config('request.jwt.claims', $2, true), "
	                         "set_config('statement_timeout', $3, true);"
	                         "r0_0=SELECT ods_api.t_whoami();r0_1=SELECT ods_api.t_whoami();"
	                         "r1_1=SELECT ods_api.t_fraud_only()");

	/* A new catalog generation: the old statements go, index 0 is the new SQL. */
	o = run(pc, "support_agent", "{}", 5000, 2, 0, "SELECT 'v2:' || ods_api.t_whoami()", 0,
	        NULL);
	ck_assert_int_eq(o.st, DB_CALL_OK);
	ck_assert_str_eq(o.value, "v2:support_agent|{}|5s");
	ck_assert_uint_eq(pc->generation, 2);
	ck_assert(pc->setup_prepared && is_prepared(pc, 0, "support_agent"));
	ck_assert(!is_prepared(pc, 0, "fraud_analyst") && !is_prepared(pc, 1, "fraud_analyst"));
	after = session_value(pc, prepared_sql);
	ck_assert_str_eq(after, "ods_setup=SELECT set_config('role', $1, true), "
	                        "set_config('request.jwt.claims', $2, true), "
	                        "set_config('statement_timeout', $3, true);"
	                        "r0_0=SELECT 'v2:' || ods_api.t_whoami()");
	assert_clean(pc);
	free(before);
	free(after);
	free(times_before);
	free(times_after);
	pool_release(p, pc, false);
	pool_free(p);
}
END_TEST

START_TEST(test_call_failed_prepare_is_not_recorded)
{
	struct pool *p = pool_new(auth_uri, 1);
	struct pool_conn *pc = acquire(p);
	struct call_out o;

	/* The function does not exist (yet): Parse fails, nothing is recorded. */
	o = run(pc, "support_agent", "{}", 5000, 1, 4, "SELECT ods_api.t_later()", 0, NULL);
	ck_assert_int_eq(o.st, DB_CALL_SQL_ERROR);
	ck_assert_str_eq(o.value, "42883");
	ck_assert_int_eq(sqlstate_to_http(o.value)->status, 500);
	ck_assert(!is_prepared(pc, 4, "support_agent"));
	assert_clean(pc);

	tu_exec(admin, "CREATE FUNCTION ods_api.t_later() RETURNS text LANGUAGE sql"
	               " AS $$ SELECT 'now here' $$;"
	               "GRANT EXECUTE ON FUNCTION ods_api.t_later() TO support_agent");
	o = run(pc, "support_agent", "{}", 5000, 1, 4, "SELECT ods_api.t_later()", 0, NULL);
	ck_assert_int_eq(o.st, DB_CALL_OK);
	ck_assert_str_eq(o.value, "now here");
	ck_assert(is_prepared(pc, 4, "support_agent"));

	/* Dropped after being prepared: an error, and the connection stays clean. */
	tu_exec(admin, "DROP FUNCTION ods_api.t_later()");
	o = run(pc, "support_agent", "{}", 5000, 1, 4, "SELECT ods_api.t_later()", 0, NULL);
	ck_assert_int_eq(o.st, DB_CALL_SQL_ERROR);
	ck_assert_str_eq(o.value, "42883");
	assert_clean(pc);
	pool_release(p, pc, false);
	pool_free(p);
}
END_TEST

START_TEST(test_call_more_roles_than_slots)
{
	/* The superuser may switch to any role: give it one more than the slots. */
	struct pool *p = pool_new(db_uri, 1);
	struct pool_conn *pc = acquire(p);
	char role[32], want[64];
	struct call_out o;
	char *names;

	tu_exec(admin, "DO $$ BEGIN FOR i IN 0..16 LOOP"
	               " IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 't_role_' || i) THEN"
	               " EXECUTE format('CREATE ROLE %I NOLOGIN', 't_role_' || i); END IF;"
	               " EXECUTE format('GRANT USAGE ON SCHEMA ods_api TO %I', 't_role_' || i);"
	               " EXECUTE format('GRANT EXECUTE ON FUNCTION ods_api.t_whoami() TO %I',"
	               " 't_role_' || i); END LOOP; END $$");
	for (int round = 0; round < 2; round++) {
		for (int i = 0; i <= POOL_ROLE_SLOTS; i++) {
			snprintf(role, sizeof(role), "t_role_%d", i);
			snprintf(want, sizeof(want), "%s|{}|5s", role);
			o = whoami(pc, role, "{}");
			ck_assert_int_eq(o.st, DB_CALL_OK);
			ck_assert_str_eq(o.value, want);
			assert_clean(pc);
		}
	}
	/* The 17th role ran unprepared: no statement of its own was kept. */
	ck_assert(!is_prepared(pc, 0, "t_role_16"));
	names = session_value(pc, "SELECT count(*) || ' ' || bool_or(name = 'r0_15')"
	                          " FROM pg_prepared_statements WHERE name LIKE 'r%'");
	ck_assert_str_eq(names, "16 true");
	free(names);
	pool_release(p, pc, false);
	pool_free(p);
}
END_TEST

struct killer {
	char *uri;
	bool killed;
};

/* Terminates the pool's backend once it is running t_sleep (bounded wait). */
static void *kill_when_sleeping(void *arg)
{
	struct killer *k = arg;
	PGconn *c = PQconnectdb(k->uri);

	for (int i = 0; i < 500 && !k->killed && PQstatus(c) == CONNECTION_OK; i++) {
		PGresult *r =
		        PQexec(c, "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity"
		                  " WHERE application_name = 'odsd' AND state = 'active'"
		                  " AND query LIKE '%t_sleep%'");
		k->killed = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
		PQclear(r);
		if (!k->killed)
			nanosleep(&(struct timespec){0, 10000000}, NULL);
	}
	PQfinish(c);
	return NULL;
}

START_TEST(test_call_connection_lost_mid_call)
{
	struct pool *p = pool_new(auth_uri, 1);
	struct pool_conn *pc = acquire(p);
	struct killer k = {.uri = db_uri};
	const char *secs[] = {"30"};
	struct call_out o;
	pthread_t t;

	ck_assert_int_eq(pthread_create(&t, NULL, kill_when_sleeping, &k), 0);
	o = run(pc, "support_agent", "{}", 60000, 1, 0, "SELECT ods_api.t_sleep($1)", 1, secs);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert(k.killed);
	ck_assert_msg(o.st == DB_CALL_CONN_ERROR, "%d %s", o.st, o.value);
	pool_release(p, pc, true);

	pc = acquire(p);
	o = whoami(pc, "support_agent", "{}");
	ck_assert_int_eq(o.st, DB_CALL_OK);
	pool_release(p, pc, false);
	pool_free(p);
}
END_TEST

/* ---- pool ----------------------------------------------------------------- */

START_TEST(test_pool_bounded_wait)
{
	struct pool *p = pool_new(auth_uri, 1);
	struct pool_conn *held = acquire(p), *none;
	struct pool_stats st;
	char err[ODS_ERRLEN];
	bool timed_out = false;

	none = pool_acquire(p, 100, &timed_out, err, sizeof(err));
	ck_assert_ptr_null(none);
	ck_assert(timed_out);
	pool_stats(p, &st);
	ck_assert_int_eq(st.size, 1);
	ck_assert_int_eq(st.in_use, 1);
	ck_assert_int_eq(st.waiting, 0);
	ck_assert_uint_eq(st.timeouts, 1);
	ck_assert_uint_eq(st.connects, 1);

	/* Given back, the same connection is reused, not reopened. */
	pool_release(p, held, false);
	held = acquire(p);
	pool_stats(p, &st);
	ck_assert_uint_eq(st.connects, 1);
	ck_assert_int_eq(st.in_use, 1);
	pool_release(p, held, false);
	pool_stats(p, &st);
	ck_assert_int_eq(st.in_use, 0);
	pool_free(p);
}
END_TEST

struct waiter {
	struct pool *p;
	struct pool_conn *got;
};

static void *acquire_slowly(void *arg)
{
	struct waiter *w = arg;
	char err[ODS_ERRLEN];
	bool timed_out;

	w->got = pool_acquire(w->p, WAIT_MS, &timed_out, err, sizeof(err));
	return NULL;
}

START_TEST(test_pool_release_wakes_waiter)
{
	struct pool *p = pool_new(auth_uri, 1);
	struct pool_conn *held = acquire(p);
	struct waiter w = {.p = p};
	struct pool_stats st;
	pthread_t t;

	ck_assert_int_eq(pthread_create(&t, NULL, acquire_slowly, &w), 0);
	/* Wait until the thread is waiting (bounded), then hand over. */
	for (int i = 0; i < WAIT_MS; i++) {
		pool_stats(p, &st);
		if (st.waiting == 1)
			break;
		nanosleep(&(struct timespec){0, 1000000}, NULL);
	}
	ck_assert_int_eq(st.waiting, 1);
	pool_release(p, held, false);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert_ptr_eq(w.got, held);
	pool_release(p, w.got, false);
	pool_free(p);
}
END_TEST

START_TEST(test_pool_replaces_broken_connection)
{
	struct pool *p = pool_new(auth_uri, 1);
	struct pool_conn *pc = acquire(p);
	struct pool_stats st;
	struct call_out o;
	int old_pid = PQbackendPID(pc->conn), new_pid;
	char *sql;

	ck_assert_int_eq(whoami(pc, "support_agent", "{}").st, DB_CALL_OK);
	pool_release(p, pc, false);
	sql = xasprintf("SELECT count(*) FROM pg_stat_activity"
	                " WHERE application_name = 'odsd' AND pid = %d",
	                old_pid);
	ck_assert_int_eq(tu_long(admin, sql), 1);
	free(sql);
	sql = xasprintf("SELECT pg_terminate_backend(%d, %d)::int", old_pid, WAIT_MS);
	ck_assert_int_eq(tu_long(admin, sql), 1); /* waits until the backend is gone */
	free(sql);

	/* Either checkout notices, or the call fails and the caller says so. */
	pc = acquire(p);
	o = whoami(pc, "support_agent", "{}");
	if (o.st == DB_CALL_CONN_ERROR) {
		pool_release(p, pc, true);
		pc = acquire(p);
		o = whoami(pc, "support_agent", "{}");
	}
	ck_assert_int_eq(o.st, DB_CALL_OK);
	new_pid = PQbackendPID(pc->conn);
	ck_assert_int_ne(new_pid, old_pid);
	pool_release(p, pc, false);
	pool_stats(p, &st);
	ck_assert_uint_eq(st.connects, 2);

	/* Released as broken: closed now, reopened at the next acquire. */
	pc = acquire(p);
	pool_release(p, pc, true);
	pc = acquire(p);
	ck_assert_int_ne(PQbackendPID(pc->conn), new_pid);
	ck_assert_int_eq(whoami(pc, "support_agent", "{}").st, DB_CALL_OK);
	pool_release(p, pc, false);
	pool_stats(p, &st);
	ck_assert_uint_eq(st.connects, 3);
	pool_free(p);
}
END_TEST

START_TEST(test_pool_unreachable)
{
	struct pool *p = pool_new("postgresql://ods_test@127.0.0.1:1/postgres", 2);
	struct pool_stats st;
	char err[ODS_ERRLEN] = "";
	bool timed_out = true;

	ck_assert_ptr_null(pool_acquire(p, 100, &timed_out, err, sizeof(err)));
	ck_assert(!timed_out);
	ck_assert_msg(strstr(err, "cannot connect") != NULL, "%s", err);
	ck_assert(strchr(err, '\n') == NULL);
	pool_stats(p, &st);
	ck_assert_uint_eq(st.connect_fail, 1);
	ck_assert_int_eq(st.in_use, 0);
	pool_free(p);
}
END_TEST

/* ---- listener ------------------------------------------------------------- */

struct events {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int count[LISTENER_TICK + 1];
	struct freshness *fresh; /* refreshed on every event but ROUTES, as odsd does */
	int refresh_failures;
};

static void events_init(struct events *e, struct freshness *fresh)
{
	memset(e, 0, sizeof(*e));
	pthread_mutex_init(&e->mu, NULL);
	pthread_cond_init(&e->cv, NULL);
	e->fresh = fresh;
}

static void events_destroy(struct events *e)
{
	pthread_cond_destroy(&e->cv);
	pthread_mutex_destroy(&e->mu);
}

static void on_event(enum listener_event ev, PGconn *conn, void *arg)
{
	struct events *e = arg;
	char err[ODS_ERRLEN];
	bool failed = e->fresh && ev != LISTENER_ROUTES &&
	              !freshness_refresh(e->fresh, conn, err, sizeof(err));

	pthread_mutex_lock(&e->mu);
	e->count[ev]++;
	e->refresh_failures += failed;
	pthread_cond_broadcast(&e->cv);
	pthread_mutex_unlock(&e->mu);
}

/* Waits (at most WAIT_MS) until event ev has been seen at least n times. */
static bool wait_for(struct events *e, enum listener_event ev, int n)
{
	struct timespec deadline;
	int rc = 0;

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += WAIT_MS / 1000;
	pthread_mutex_lock(&e->mu);
	while (e->count[ev] < n && rc == 0)
		rc = pthread_cond_timedwait(&e->cv, &e->mu, &deadline);
	bool ok = e->count[ev] >= n;
	pthread_mutex_unlock(&e->mu);
	return ok;
}

static int count_of(struct events *e, enum listener_event ev)
{
	pthread_mutex_lock(&e->mu);
	int n = e->count[ev];
	pthread_mutex_unlock(&e->mu);
	return n;
}

static long long ms_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) * 1000LL + (t.tv_nsec - t0->tv_nsec) / 1000000;
}

START_TEST(test_listener_notifications)
{
	struct events e;
	struct listener *l;

	events_init(&e, NULL);
	l = listener_start(db_uri, 600000, on_event, &e);
	ck_assert_ptr_nonnull(l);
	ck_assert(wait_for(&e, LISTENER_CONNECTED, 1));
	ck_assert(listener_connected(l));

	tu_exec(admin, "NOTIFY ods_freshness");
	ck_assert(wait_for(&e, LISTENER_FRESHNESS, 1));
	tu_exec(admin, "SELECT pg_notify('ods_routes', 'v42')");
	ck_assert(wait_for(&e, LISTENER_ROUTES, 1));
	ck_assert_int_eq(count_of(&e, LISTENER_FRESHNESS), 1);

	/* A burst in one transaction: delivered together, at most one call per kind. */
	tu_exec(admin, "BEGIN; NOTIFY ods_freshness, 'a'; NOTIFY ods_freshness, 'b';"
	               " NOTIFY ods_freshness, 'c'; NOTIFY ods_routes; COMMIT");
	ck_assert(wait_for(&e, LISTENER_ROUTES, 2));
	ck_assert(wait_for(&e, LISTENER_FRESHNESS, 2));
	ck_assert_int_le(count_of(&e, LISTENER_FRESHNESS), 4);
	ck_assert_int_eq(count_of(&e, LISTENER_CONNECTED), 1);
	ck_assert_int_eq(count_of(&e, LISTENER_TICK), 0);

	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	listener_stop(l);
	ck_assert_int_lt(ms_since(&t0), 1000);
	events_destroy(&e);
}
END_TEST

START_TEST(test_listener_reconnects)
{
	struct events e;
	struct listener *l;

	events_init(&e, NULL);
	l = listener_start(db_uri, 600000, on_event, &e);
	ck_assert(wait_for(&e, LISTENER_CONNECTED, 1));
	ck_assert_int_eq(tu_long(admin, "SELECT count(pg_terminate_backend(pid, 5000))"
	                                " FROM pg_stat_activity"
	                                " WHERE application_name = 'odsd-listener'"
	                                " AND datname = current_database()"),
	                 1);
	ck_assert(wait_for(&e, LISTENER_CONNECTED, 2));
	ck_assert(listener_connected(l));

	/* Listening again on the new connection. */
	tu_exec(admin, "NOTIFY ods_routes");
	ck_assert(wait_for(&e, LISTENER_ROUTES, 1));
	listener_stop(l);
	events_destroy(&e);
}
END_TEST

START_TEST(test_listener_ticks_and_refresh_change)
{
	struct events e;
	struct listener *l;

	events_init(&e, NULL);
	l = listener_start(db_uri, 600000, on_event, &e);
	ck_assert(wait_for(&e, LISTENER_CONNECTED, 1));
	ck_assert_int_eq(count_of(&e, LISTENER_TICK), 0);
	listener_set_refresh_ms(l, 50);
	ck_assert(wait_for(&e, LISTENER_TICK, 3));
	listener_stop(l);
	events_destroy(&e);
}
END_TEST

START_TEST(test_listener_stops_while_unreachable)
{
	struct events e;
	struct listener *l;
	struct timespec t0;

	events_init(&e, NULL);
	l = listener_start("postgresql://ods_test@127.0.0.1:1/postgres", 100, on_event, &e);
	ck_assert_ptr_nonnull(l);
	ck_assert(!listener_connected(l));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	listener_stop(l);
	ck_assert_int_lt(ms_since(&t0), 1000);
	ck_assert_int_eq(count_of(&e, LISTENER_CONNECTED), 0);
	events_destroy(&e);
}
END_TEST

/* ---- freshness ------------------------------------------------------------ */

static time_t utc(const char *rfc3339)
{
	struct tm tm = {0};

	ck_assert_ptr_nonnull(strptime(rfc3339, "%Y-%m-%dT%H:%M:%SZ", &tm));
	return timegm(&tm);
}

static void refresh(struct freshness *f, PGconn *conn)
{
	char err[ODS_ERRLEN];

	ck_assert_msg(freshness_refresh(f, conn, err, sizeof(err)), "%s", err);
}

START_TEST(test_freshness_headers_exact)
{
	struct freshness *f = freshness_new();
	struct freshness_snapshot *s;
	struct freshness_headers h;
	const char *tables[] = {"synced.customer_current", "risk_scores", "synced.order_current",
	                        "synced.x"};

	tu_exec(admin,
	        "UPDATE ods.synced_tables SET as_of = '2026-11-24T10:00:00.9Z', status = 'ok'"
	        " WHERE table_name = 'customer_current';"
	        "UPDATE ods.synced_tables SET as_of = '2026-11-24T09:40:00Z', status = 'ok',"
	        " last_error = 'late', last_sync_at = '2026-11-24T09:41:00Z', rows = 7"
	        " WHERE table_name = 'risk_scores'");
	ck_assert(!freshness_loaded(f));
	refresh(f, admin);
	ck_assert(freshness_loaded(f));
	s = freshness_get(f);
	ck_assert_int_eq(s->n, 11);

	ck_assert(freshness_headers(s, tables, 4, utc("2026-11-24T10:00:03Z"), &h));
	ck_assert_str_eq(
	        h.freshness,
	        "synced.customer_current;as-of=\"2026-11-24T10:00:00Z\";lag=3;sla=60, "
	        "synced.risk_scores;as-of=\"2026-11-24T09:40:00Z\";lag=1203;sla=900;stale, "
	        "synced.order_current;sla=30;stale, synced.x;stale");
	ck_assert_int_eq(h.data_age, 1203);
	ck_assert(h.stale);
	ck_assert_int_eq(h.newest_as_of, utc("2026-11-24T10:00:00Z"));
	freshness_headers_free(&h);

	/* All fresh; lag exactly at the SLA is not stale. */
	ck_assert(freshness_headers(s, tables, 1, utc("2026-11-24T10:01:00Z"), &h));
	ck_assert_str_eq(h.freshness,
	                 "synced.customer_current;as-of=\"2026-11-24T10:00:00Z\";lag=60;sla=60");
	ck_assert_int_eq(h.data_age, 60);
	ck_assert(!h.stale);
	freshness_headers_free(&h);

	/* A clock behind the as-of: lag clamps at 0. */
	ck_assert(freshness_headers(s, tables, 1, utc("2026-11-24T09:59:00Z"), &h));
	ck_assert_str_eq(h.freshness,
	                 "synced.customer_current;as-of=\"2026-11-24T10:00:00Z\";lag=0;sla=60");
	ck_assert_int_eq(h.data_age, 0);
	freshness_headers_free(&h);

	/* Nothing synced yet: no data age, no newest as-of. */
	ck_assert(freshness_headers(s, tables + 2, 2, utc("2026-11-24T10:00:03Z"), &h));
	ck_assert_str_eq(h.freshness, "synced.order_current;sla=30;stale, synced.x;stale");
	ck_assert_int_eq(h.data_age, -1);
	ck_assert_int_eq(h.newest_as_of, 0);
	freshness_headers_free(&h);

	/* A route that reads no synced table gets no headers. */
	ck_assert(!freshness_headers(s, tables, 0, utc("2026-11-24T10:00:03Z"), &h));
	ck_assert_ptr_null(h.freshness);

	/* The other columns are carried for /v1/freshness and /metrics. */
	for (int i = 0; i < s->n; i++) {
		const struct freshness_entry *e = &s->e[i];
		if (strcmp(e->table_name, "risk_scores") != 0)
			continue;
		ck_assert_str_eq(e->tier, "feedback");
		ck_assert_str_eq(e->mode, "triggered");
		ck_assert_str_eq(e->status, "ok");
		ck_assert_str_eq(e->last_error, "late");
		ck_assert_int_eq(e->last_sync_at, utc("2026-11-24T09:41:00Z"));
		ck_assert_int_eq(e->rows, 7);
	}
	freshness_put(f, s);
	freshness_free(f);
}
END_TEST

START_TEST(test_freshness_snapshot_survives_refresh)
{
	struct freshness *f = freshness_new();
	struct freshness_snapshot *empty, *old, *cur;
	struct freshness_headers h;
	const char *t[] = {"customer_current"};
	time_t now = utc("2026-11-24T10:00:10Z");

	empty = freshness_get(f); /* before any load: an empty snapshot */
	ck_assert_int_eq(empty->n, 0);
	ck_assert(freshness_headers(empty, t, 1, now, &h));
	ck_assert_str_eq(h.freshness, "synced.customer_current;stale");
	freshness_headers_free(&h);

	tu_exec(admin, "UPDATE ods.synced_tables SET as_of = '2026-11-24T10:00:00Z'"
	               " WHERE table_name = 'customer_current'");
	refresh(f, admin);
	old = freshness_get(f);
	tu_exec(admin, "UPDATE ods.synced_tables SET as_of = '2026-11-24T10:00:05Z'"
	               " WHERE table_name = 'customer_current'");
	refresh(f, admin);
	cur = freshness_get(f);
	ck_assert_ptr_ne(old, cur);

	/* The held snapshots still read as they were. */
	ck_assert(freshness_headers(old, t, 1, now, &h));
	ck_assert_str_eq(h.freshness,
	                 "synced.customer_current;as-of=\"2026-11-24T10:00:00Z\";lag=10;sla=60");
	freshness_headers_free(&h);
	ck_assert(freshness_headers(cur, t, 1, now, &h));
	ck_assert_str_eq(h.freshness,
	                 "synced.customer_current;as-of=\"2026-11-24T10:00:05Z\";lag=5;sla=60");
	freshness_headers_free(&h);
	ck_assert_int_eq(empty->n, 0);
	freshness_put(f, empty);
	freshness_put(f, old);
	freshness_put(f, cur);
	freshness_free(f);
}
END_TEST

START_TEST(test_freshness_refreshed_by_listener)
{
	struct freshness *f = freshness_new();
	struct events e;
	struct listener *l;
	struct freshness_snapshot *s;
	struct freshness_headers h;
	const char *t[] = {"risk_scores"};

	events_init(&e, f);
	l = listener_start(db_uri, 600000, on_event, &e);
	ck_assert(wait_for(&e, LISTENER_CONNECTED, 1));
	ck_assert(freshness_loaded(f));

	/* The catalog trigger notifies ods_freshness; the callback reloads. */
	tu_exec(admin, "UPDATE ods.synced_tables SET as_of = '2026-11-24T09:58:00Z'"
	               " WHERE table_name = 'risk_scores'");
	ck_assert(wait_for(&e, LISTENER_FRESHNESS, 1));
	s = freshness_get(f);
	ck_assert(freshness_headers(s, t, 1, utc("2026-11-24T10:00:05Z"), &h));
	ck_assert_str_eq(h.freshness,
	                 "synced.risk_scores;as-of=\"2026-11-24T09:58:00Z\";lag=125;sla=900");
	freshness_headers_free(&h);
	freshness_put(f, s);
	listener_stop(l);
	ck_assert_int_eq(e.refresh_failures, 0);
	events_destroy(&e);
	freshness_free(f);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("db");
	TCase *tc;

	tc = tcase_create("sqlstate");
	tcase_add_test(tc, test_sqlstate_map);
	suite_add_tcase(s, tc);

	tc = tcase_create("call");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_call_role_switch_does_not_leak);
	tcase_add_test(tc, test_call_sql_errors_leave_connection_clean);
	tcase_add_test(tc, test_call_error_at_commit);
	tcase_add_test(tc, test_call_statement_timeout);
	tcase_add_test(tc, test_call_prepares_once_per_generation);
	tcase_add_test(tc, test_call_failed_prepare_is_not_recorded);
	tcase_add_test(tc, test_call_more_roles_than_slots);
	tcase_add_test(tc, test_call_connection_lost_mid_call);
	suite_add_tcase(s, tc);

	tc = tcase_create("pool");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_pool_bounded_wait);
	tcase_add_test(tc, test_pool_release_wakes_waiter);
	tcase_add_test(tc, test_pool_replaces_broken_connection);
	tcase_add_test(tc, test_pool_unreachable);
	suite_add_tcase(s, tc);

	tc = tcase_create("listener");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_listener_notifications);
	tcase_add_test(tc, test_listener_reconnects);
	tcase_add_test(tc, test_listener_ticks_and_refresh_change);
	tcase_add_test(tc, test_listener_stops_while_unreachable);
	suite_add_tcase(s, tc);

	tc = tcase_create("freshness");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_freshness_headers_exact);
	tcase_add_test(tc, test_freshness_snapshot_survives_refresh);
	tcase_add_test(tc, test_freshness_refreshed_by_listener);
	suite_add_tcase(s, tc);

	return tu_run_suite(s);
}
