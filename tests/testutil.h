/*
 * testutil: helpers for Check suites that run against the real PostgreSQL
 * started by tests/harness.sh (ODS_TEST_DB_URI). Every helper fails the
 * current test (ck_abort_msg) instead of returning an error.
 */
#ifndef ODS_TESTUTIL_H
#define ODS_TESTUTIL_H

#include <check.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

/* The harness cluster's superuser URI for database dbname (caller frees). */
char *tu_uri(const char *dbname);
PGconn *tu_connect(const char *uri);
/* A fresh, empty database; returns its URI (caller frees). */
char *tu_create_db(void);
/* A fresh database with every migration applied (cloned from a template that
 * is migrated once per test program); returns its URI (caller frees). */
char *tu_migrated_db(void);

void tu_exec(PGconn *c, const char *sql);
/* The first column of the first row as a string the caller frees; NULL for SQL NULL. */
char *tu_value(PGconn *c, const char *sql);
long long tu_long(PGconn *c, const char *sql);
/* Runs sql and returns its SQLSTATE ("" when it succeeded). */
char *tu_sqlstate(PGconn *c, const char *sql);

/* A fresh directory under ODS_TEST_TMP or /tmp (caller frees the path). */
char *tu_tmpdir(void);
/* Writes len bytes of data to dir/name; returns the path (caller frees). */
char *tu_write_file(const char *dir, const char *name, const void *data, size_t len);
/* Runs `$ODSCTL args` through the shell; stdout+stderr go to *output (caller
 * frees). Returns the exit status (or -1 when it did not exit normally). */
int tu_odsctl(char **output, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Stops the harness's PostgreSQL (pg_ctl -m fast) and starts it again on the
 * same port and data: database outage tests. Both wait until done. */
void tu_pg_stop(void);
void tu_pg_start(void);

/* Runs a Check suite and returns the process exit code. */
int tu_run_suite(Suite *s);

#endif
