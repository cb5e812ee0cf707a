/*
 * migrate integration tests. Each test builds its own small api dir under
 * tu_tmpdir() and migrates a fresh database, so nothing here depends on the
 * real api/schema (one test migrates that too, to prove it is idempotent).
 */
#include "autoconfig.h"

#include "testutil.h"

#include "admin/migrate.h"
#include "core/util.h"
#include "db/db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* A fresh api dir with schema/ and routes/ (caller frees). */
static char *api_dir(void)
{
	char *dir = tu_tmpdir();
	char *sub = xasprintf("%s/schema", dir);

	ck_assert(mkdir(sub, 0700) == 0);
	free(sub);
	sub = xasprintf("%s/routes", dir);
	ck_assert(mkdir(sub, 0700) == 0);
	free(sub);
	return dir;
}

static void put(const char *dir, const char *name, const char *sql)
{
	free(tu_write_file(dir, name, sql, strlen(sql)));
}

static void drop(const char *dir, const char *name)
{
	char *path = xasprintf("%s/%s", dir, name);

	ck_assert_msg(unlink(path) == 0, "unlink %s", path);
	free(path);
}

/* Runs migrate_run on conn; *applied and err are filled either way. */
static bool migrate(PGconn *conn, const char *dir, int *applied, char *err)
{
	*applied = -1;
	err[0] = '\0';
	return migrate_run(conn, dir, applied, err, ODS_ERRLEN);
}

static long long recorded(PGconn *c)
{
	return tu_long(c, "SELECT count(*) FROM ods.schema_migrations");
}

static bool exists(PGconn *c, const char *relation)
{
	char *sql = xasprintf("SELECT to_regclass('%s') IS NOT NULL", relation);
	char *v = tu_value(c, sql);
	bool yes = strcmp(v, "t") == 0;

	free(v);
	free(sql);
	return yes;
}

START_TEST(test_first_run_then_nothing)
{
	char *uri = tu_create_db(), *dir = api_dir(), *before, *after;
	PGconn *c = tu_connect(uri);
	char err[ODS_ERRLEN];
	int applied;

	put(dir, "schema/001_a.sql", "CREATE TABLE a (id int PRIMARY KEY);\n");
	put(dir, "schema/002_b.sql", "CREATE TABLE b (id int);\nINSERT INTO b VALUES (1);\n");
	put(dir, "routes/r.sql",
	    "CREATE OR REPLACE FUNCTION r() RETURNS int\n"
	    "LANGUAGE sql AS 'SELECT count(*)::int FROM b';\n");
	put(dir, "schema/.gitkeep", "not sql");
	put(dir, "schema/003_empty.sql", "");
	put(dir, "schema/004_comment.sql", "-- nothing yet\n");
	ck_assert_msg(migrate(c, dir, &applied, err), "%s", err);
	ck_assert_int_eq(applied, 5);
	ck_assert_int_eq(recorded(c), 5);
	ck_assert_int_eq(tu_long(c, "SELECT count(*) FROM ods.schema_migrations "
	                            "WHERE kind = 'versioned' AND filename LIKE 'schema/00%'"),
	                 4);
	ck_assert_int_eq(tu_long(c, "SELECT count(*) FROM ods.schema_migrations "
	                            "WHERE kind = 'repeatable' AND filename = 'routes/r.sql' "
	                            "AND length(checksum) = 64"),
	                 1);
	ck_assert_int_eq(tu_long(c, "SELECT r()"), 1);

	before = tu_value(c, "SELECT string_agg(filename || checksum || applied_at, ',' "
	                     "ORDER BY filename) FROM ods.schema_migrations");
	ck_assert_msg(migrate(c, dir, &applied, err), "%s", err);
	ck_assert_int_eq(applied, 0);
	after = tu_value(c, "SELECT string_agg(filename || checksum || applied_at, ',' "
	                    "ORDER BY filename) FROM ods.schema_migrations");
	ck_assert_str_eq(before, after);
	ck_assert_int_eq(tu_long(c, "SELECT count(*) FROM b"), 1);
	free(before);
	free(after);
	PQfinish(c);
	free(dir);
	free(uri);
}
END_TEST

START_TEST(test_checksum_is_sha256)
{
	char *uri = tu_create_db(), *dir = api_dir(), *sum;
	PGconn *c = tu_connect(uri);
	char err[ODS_ERRLEN];
	int applied;

	put(dir, "schema/001_a.sql", "SELECT 1;\n");
	ck_assert_msg(migrate(c, dir, &applied, err), "%s", err);
	sum = tu_value(c, "SELECT checksum = encode(sha256('SELECT 1;\n'::bytea), 'hex') "
	                  "FROM ods.schema_migrations");
	ck_assert_str_eq(sum, "t");
	free(sum);
	PQfinish(c);
	free(dir);
	free(uri);
}
END_TEST

START_TEST(test_edited_file_is_refused)
{
	char *uri = tu_create_db(), *dir = api_dir();
	PGconn *c = tu_connect(uri);
	char err[ODS_ERRLEN];
	int applied;

	put(dir, "schema/001_a.sql", "CREATE TABLE a (id int);\n");
	put(dir, "schema/002_b.sql", "CREATE TABLE b (id int);\n");
	ck_assert_msg(migrate(c, dir, &applied, err), "%s", err);

	put(dir, "schema/002_b.sql", "CREATE TABLE b (id bigint);\n");
	put(dir, "schema/003_c.sql", "CREATE TABLE c (id int);\n");
	put(dir, "routes/r.sql", "CREATE TABLE r (id int);\n");
	ck_assert(!migrate(c, dir, &applied, err));
	ck_assert_int_eq(applied, 0);
	ck_assert_msg(strstr(err, "schema/002_b.sql was applied with checksum") &&
	                      strstr(err, "applied migrations are immutable; add a new migration"),
	              "%s", err);
	ck_assert(!exists(c, "c"));
	ck_assert(!exists(c, "r"));
	ck_assert_int_eq(recorded(c), 2);

	/* Restoring the file unblocks the new ones. */
	put(dir, "schema/002_b.sql", "CREATE TABLE b (id int);\n");
	ck_assert_msg(migrate(c, dir, &applied, err), "%s", err);
	ck_assert_int_eq(applied, 2);
	ck_assert(exists(c, "c"));
	PQfinish(c);
	free(dir);
	free(uri);
}
END_TEST

START_TEST(test_missing_applied_file_is_refused)
{
	char *uri = tu_create_db(), *dir = api_dir();
	PGconn *c = tu_connect(uri);
	char err[ODS_ERRLEN];
	int applied;

	put(dir, "schema/001_a.sql", "CREATE TABLE a (id int);\n");
	put(dir, "schema/002_b.sql", "CREATE TABLE b (id int);\n");
	ck_assert_msg(migrate(c, dir, &applied, err), "%s", err);
	drop(dir, "schema/002_b.sql");
	put(dir, "schema/003_c.sql", "CREATE TABLE c (id int);\n");
	ck_assert(!migrate(c, dir, &applied, err));
	ck_assert_msg(strstr(err, "schema/002_b.sql was applied but is no longer on disk"), "%s",
	              err);
	ck_assert(!exists(c, "c"));
	PQfinish(c);
	free(dir);
	free(uri);
}
END_TEST

START_TEST(test_failing_file_rolls_back)
{
	char *uri = tu_create_db(), *dir = api_dir();
	PGconn *c = tu_connect(uri);
	char err[ODS_ERRLEN];
	int applied;

	put(dir, "schema/001_a.sql", "CREATE TABLE a (id int);\n");
	put(dir, "schema/002_bad.sql",
	    "CREATE TABLE t2 (id int);\n"
	    "INSERT INTO a VALUES (1);\n"
	    "SELECT 1 / 0;\n");
	put(dir, "schema/003_c.sql", "CREATE TABLE c (id int);\n");
	ck_assert(!migrate(c, dir, &applied, err));
	ck_assert_int_eq(applied, 1);
	ck_assert_msg(strstr(err, "schema/002_bad.sql") && strstr(err, "division by zero"), "%s",
	              err);
	ck_assert(exists(c, "a"));
	ck_assert(!exists(c, "t2"));
	ck_assert(!exists(c, "c"));
	ck_assert_int_eq(tu_long(c, "SELECT count(*) FROM a"), 0);
	ck_assert_int_eq(tu_long(c, "SELECT count(*) FROM ods.schema_migrations "
	                            "WHERE filename = 'schema/001_a.sql'"),
	                 1);
	ck_assert_int_eq(recorded(c), 1);
	/* Nothing is left open: the lock is free and no transaction lingers. */
	ck_assert_int_eq(tu_long(c, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"),
	                 0);
	ck_assert_int_eq(PQtransactionStatus(c), PQTRANS_IDLE);

	put(dir, "schema/002_bad.sql", "CREATE TABLE t2 (id int);\n");
	ck_assert_msg(migrate(c, dir, &applied, err), "%s", err);
	ck_assert_int_eq(applied, 2);
	ck_assert(exists(c, "t2") && exists(c, "c"));
	PQfinish(c);
	free(dir);
	free(uri);
}
END_TEST

START_TEST(test_error_names_the_line)
{
	char *uri = tu_create_db(), *dir = api_dir();
	PGconn *c = tu_connect(uri);
	char err[ODS_ERRLEN];
	int applied;

	/* Multi-byte characters before the error: PostgreSQL counts characters,
	 * so counting bytes would put the error, first on line 3, on line 2. */
	put(dir, "schema/001_x.sql",
	    "-- h\xc3\xa9llo w\xc3\xb6rld \xe2\x9c\x93\n"
	    "CREATE TABLE x (id int);\n"
	    "SELEC 1;\n");
	ck_assert(!migrate(c, dir, &applied, err));
	ck_assert_msg(strncmp(err, "schema/001_x.sql:3: syntax error", 32) == 0, "%s", err);
	ck_assert(!exists(c, "x"));
	PQfinish(c);
	free(dir);
	free(uri);
}
END_TEST

static const char *const bad_names[] = {
        "schema/1-a.sql",    "schema/001_a.SQL",    "schema/001a.sql",
        "schema/_a.sql",     "schema/001_.sql",     "schema/README.md",
        "schema/001_a.sql~", "routes/bad name.sql", "routes/x.txt",
};

START_TEST(test_bad_name_is_refused)
{
	char *uri = tu_create_db(), *dir = api_dir();
	PGconn *c = tu_connect(uri);
	char err[ODS_ERRLEN];
	int applied;

	put(dir, "schema/000_ok.sql", "CREATE TABLE ok (id int);\n");
	put(dir, bad_names[_i], "SELECT 1;\n");
	ck_assert(!migrate(c, dir, &applied, err));
	ck_assert_msg(strncmp(err, bad_names[_i], strlen(bad_names[_i])) == 0 &&
	                      strstr(err, "not a migration file name"),
	              "%s", err);
	/* Checked before the database is touched at all. */
	ck_assert(!exists(c, "ods.schema_migrations"));
	ck_assert(!exists(c, "ok"));
	PQfinish(c);
	free(dir);
	free(uri);
}
END_TEST

START_TEST(test_repeatable_files)
{
	char *uri = tu_create_db(), *dir = api_dir();
	PGconn *c = tu_connect(uri);
	char err[ODS_ERRLEN];
	int applied;

	put(dir, "schema/001_log.sql", "CREATE TABLE log (n int);\n");
	put(dir, "routes/a.sql",
	    "CREATE OR REPLACE FUNCTION fa() RETURNS int "
	    "LANGUAGE sql AS 'SELECT 1';\nINSERT INTO log VALUES (1);\n");
	put(dir, "routes/b.sql", "INSERT INTO log VALUES (2);\n");
	ck_assert_msg(migrate(c, dir, &applied, err), "%s", err);
	ck_assert_int_eq(applied, 3);

	/* A changed route file runs again; an unchanged one does not. A route
	 * may use a table that a versioned file of the same run creates. */
	put(dir, "schema/002_t.sql", "CREATE TABLE t (v int);\nINSERT INTO t VALUES (42);\n");
	put(dir, "routes/a.sql",
	    "CREATE OR REPLACE FUNCTION fa() RETURNS int "
	    "LANGUAGE sql AS 'SELECT v FROM t';\nINSERT INTO log VALUES (1);\n");
	ck_assert_msg(migrate(c, dir, &applied, err), "%s", err);
	ck_assert_int_eq(applied, 2);
	ck_assert_int_eq(tu_long(c, "SELECT fa()"), 42);
	ck_assert_int_eq(tu_long(c, "SELECT count(*) FROM log WHERE n = 1"), 2);
	ck_assert_int_eq(tu_long(c, "SELECT count(*) FROM log WHERE n = 2"), 1);
	ck_assert_int_eq(recorded(c), 4);

	ck_assert_msg(migrate(c, dir, &applied, err), "%s", err);
	ck_assert_int_eq(applied, 0);

	/* A failing route file keeps its old version and record. */
	put(dir, "routes/a.sql",
	    "CREATE OR REPLACE FUNCTION fa() RETURNS int "
	    "LANGUAGE sql AS 'SELECT 7';\nSELECT no_such_function();\n");
	ck_assert(!migrate(c, dir, &applied, err));
	ck_assert_msg(strstr(err, "routes/a.sql") && strstr(err, "no_such_function"), "%s", err);
	ck_assert_int_eq(tu_long(c, "SELECT fa()"), 42);
	PQfinish(c);
	free(dir);
	free(uri);
}
END_TEST

START_TEST(test_transaction_settings)
{
	char *uri = tu_create_db(), *dir = api_dir(), *v;
	PGconn *c = tu_connect(uri);
	char err[ODS_ERRLEN];
	int applied;

	/* lock_timeout is set for every file; a file's SET does not leak into the next. */
	put(dir, "schema/001_a.sql",
	    "CREATE TABLE seen AS SELECT current_setting('lock_timeout') "
	    "AS v;\nSET search_path = nowhere;\n");
	put(dir, "schema/002_b.sql", "CREATE TABLE b (id int);\n");
	ck_assert_msg(migrate(c, dir, &applied, err), "%s", err);
	ck_assert_int_eq(applied, 2);
	v = tu_value(c, "SELECT v FROM seen");
	ck_assert_str_eq(v, "10s");
	free(v);
	ck_assert(exists(c, "public.b"));
	PQfinish(c);
	free(dir);
	free(uri);
}
END_TEST

START_TEST(test_own_commit_is_refused)
{
	char *uri = tu_create_db(), *dir = api_dir();
	PGconn *c = tu_connect(uri);
	char err[ODS_ERRLEN];
	int applied;

	put(dir, "schema/001_a.sql", "CREATE TABLE a (id int);\nCOMMIT;\n");
	ck_assert(!migrate(c, dir, &applied, err));
	ck_assert_msg(strstr(err, "schema/001_a.sql") && strstr(err, "must not contain BEGIN"),
	              "%s", err);
	ck_assert_int_eq(recorded(c), 0);
	PQfinish(c);
	free(dir);
	free(uri);
}
END_TEST

/* In a child: migrate and exit with the number applied, or 100 on error. */
static void child_migrate(const char *uri, const char *dir)
{
	char err[ODS_ERRLEN];
	int applied = 0;
	PGconn *c = db_connect(uri, "migrate-child", err, sizeof(err));
	bool ok = c && migrate_run(c, dir, &applied, err, sizeof(err));

	if (!ok)
		fprintf(stderr, "child: %s\n", err);
	PQfinish(c);
	_exit(ok ? applied : 100);
}

START_TEST(test_concurrent_runs)
{
	char *uri = tu_create_db(), *dir = api_dir();
	PGconn *c = tu_connect(uri);
	pid_t pids[2];
	int total = 0, st;
	bool saw_waiter = false;

	put(dir, "schema/001_slow.sql", "SELECT pg_sleep(1);\nCREATE TABLE a (id int);\n");
	put(dir, "schema/002_b.sql", "CREATE TABLE b (id int);\n");
	put(dir, "routes/r.sql", "CREATE TABLE r (id int);\n");
	for (int i = 0; i < 2; i++) {
		pids[i] = fork();
		ck_assert(pids[i] >= 0);
		if (pids[i] == 0)
			child_migrate(uri, dir);
	}
	/* One child holds the lock (and sleeps); the other must be seen waiting. */
	for (int i = 0; i < 100 && !saw_waiter; i++) {
		saw_waiter = tu_long(c, "SELECT count(*) FROM pg_locks "
		                        "WHERE locktype = 'advisory' AND NOT granted") > 0;
		usleep(20000);
	}
	for (int i = 0; i < 2; i++) {
		ck_assert(waitpid(pids[i], &st, 0) == pids[i]);
		ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) < 100, "child %d failed", i);
		total += WEXITSTATUS(st);
	}
	ck_assert_msg(saw_waiter, "the second run never waited for the lock");
	ck_assert_int_eq(total, 3);
	ck_assert_int_eq(recorded(c), 3);
	PQfinish(c);
	free(dir);
	free(uri);
}
END_TEST

START_TEST(test_missing_api_dir)
{
	char *uri = tu_create_db(), *dir = tu_tmpdir(), *missing = xasprintf("%s/nope", dir);
	PGconn *c = tu_connect(uri);
	char err[ODS_ERRLEN];
	int applied;

	ck_assert(!migrate(c, missing, &applied, err));
	ck_assert_msg(strstr(err, missing) && strstr(err, "No such file or directory"), "%s", err);
	ck_assert_int_eq(applied, 0);

	/* An api dir needs schema/; routes/ is optional. */
	ck_assert(!migrate(c, dir, &applied, err));
	ck_assert_msg(strstr(err, "/schema") && strstr(err, "No such file or directory"), "%s",
	              err);
	char *sub = xasprintf("%s/schema", dir);
	ck_assert(mkdir(sub, 0700) == 0);
	put(dir, "schema/001_a.sql", "CREATE TABLE a (id int);\n");
	ck_assert_msg(migrate(c, dir, &applied, err), "%s", err);
	ck_assert_int_eq(applied, 1);
	free(sub);
	PQfinish(c);
	free(missing);
	free(dir);
	free(uri);
}
END_TEST

START_TEST(test_real_api_dir)
{
	const char *dir = getenv("ODS_API_DIR");
	char *uri = tu_create_db();
	PGconn *c = tu_connect(uri);
	char err[ODS_ERRLEN];
	int applied;

	ck_assert_msg(dir != NULL, "ODS_API_DIR is not set");
	ck_assert_msg(migrate(c, dir, &applied, err), "%s", err);
	ck_assert_int_ge(applied, 0);
	ck_assert_int_eq(recorded(c), applied);
	ck_assert_msg(migrate(c, dir, &applied, err), "%s", err);
	ck_assert_int_eq(applied, 0);
	PQfinish(c);
	free(uri);
}
END_TEST

START_TEST(test_cli)
{
	char *uri = tu_create_db(), *dir = api_dir(), *out;
	int rc;

	put(dir, "schema/001_a.sql", "CREATE TABLE a (id int);\n");
	rc = tu_odsctl(&out, "migrate --db '%s' --api-dir '%s'", uri, dir);
	ck_assert_msg(rc == 0 && strstr(out, "applied schema/001_a.sql") &&
	                      strstr(out, "1 file(s) applied"),
	              "rc %d: %s", rc, out);
	free(out);
	rc = tu_odsctl(&out, "migrate --db '%s' --api-dir '%s'", uri, dir);
	ck_assert_msg(rc == 0 && strstr(out, "0 file(s) applied"), "rc %d: %s", rc, out);
	free(out);

	rc = tu_odsctl(&out, "migrate --db 'postgresql://nobody@127.0.0.1:1/none' --api-dir '%s'",
	               dir);
	ck_assert_msg(rc == 1 && strstr(out, "odsctl migrate: cannot connect"), "rc %d: %s", rc,
	              out);
	free(out);
	rc = tu_odsctl(&out, "migrate --db '%s' --api-dir '%s/missing'", uri, dir);
	ck_assert_msg(rc == 1 && strstr(out, "odsctl migrate: api dir"), "rc %d: %s", rc, out);
	free(out);
	free(dir);
	free(uri);
}
END_TEST

static Suite *migrate_suite(void)
{
	Suite *s = suite_create("migrate");
	TCase *t = tcase_create("migrate");

	tcase_set_timeout(t, 60);
	tcase_add_test(t, test_first_run_then_nothing);
	tcase_add_test(t, test_checksum_is_sha256);
	tcase_add_test(t, test_edited_file_is_refused);
	tcase_add_test(t, test_missing_applied_file_is_refused);
	tcase_add_test(t, test_failing_file_rolls_back);
	tcase_add_test(t, test_error_names_the_line);
	tcase_add_loop_test(t, test_bad_name_is_refused, 0, (int)ODS_ARRAY_LEN(bad_names));
	tcase_add_test(t, test_repeatable_files);
	tcase_add_test(t, test_transaction_settings);
	tcase_add_test(t, test_own_commit_is_refused);
	tcase_add_test(t, test_concurrent_runs);
	tcase_add_test(t, test_missing_api_dir);
	tcase_add_test(t, test_real_api_dir);
	tcase_add_test(t, test_cli);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	return tu_run_suite(migrate_suite());
}
