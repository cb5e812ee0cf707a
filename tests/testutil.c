/*
 * testutil: see testutil.h. Databases are named per process and counter so
 * forked Check tests never share one.
 */
#include "autoconfig.h"

#include "testutil.h"

#include "admin/migrate.h"
#include "core/util.h"
#include "db/db.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *base_uri(void)
{
	const char *u = getenv("ODS_TEST_DB_URI");

	ck_assert_msg(u != NULL, "ODS_TEST_DB_URI is not set: run through tests/harness.sh");
	return u;
}

char *tu_uri(const char *dbname)
{
	const char *u = base_uri();
	const char *slash = strrchr(u, '/');

	ck_assert(slash != NULL);
	return xasprintf("%.*s/%s", (int)(slash - u), u, dbname);
}

PGconn *tu_connect(const char *uri)
{
	char err[ODS_ERRLEN];
	PGconn *c = db_connect(uri, "ods-test", err, sizeof(err));

	ck_assert_msg(c != NULL, "%s", err);
	return c;
}

void tu_exec(PGconn *c, const char *sql)
{
	char err[ODS_ERRLEN];

	ck_assert_msg(db_exec(c, sql, err, sizeof(err)), "%s: %s", sql, err);
}

char *tu_value(PGconn *c, const char *sql)
{
	PGresult *r = PQexec(c, sql);
	char *v = NULL;

	ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK, "%s: %s", sql, PQresultErrorMessage(r));
	ck_assert_msg(PQntuples(r) >= 1, "%s: no rows", sql);
	if (!PQgetisnull(r, 0, 0))
		v = xstrdup(PQgetvalue(r, 0, 0));
	PQclear(r);
	return v;
}

long long tu_long(PGconn *c, const char *sql)
{
	char *v = tu_value(c, sql);
	long long n;

	ck_assert_msg(v != NULL, "%s: NULL", sql);
	n = strtoll(v, NULL, 10);
	free(v);
	return n;
}

char *tu_sqlstate(PGconn *c, const char *sql)
{
	PGresult *r = PQexec(c, sql);
	char *s = xstrdup(db_sqlstate(r));

	PQclear(r);
	return s;
}

static char *new_db(const char *template_name)
{
	static int counter;
	char name[64];
	char *sql;
	PGconn *c = tu_connect(base_uri());

	snprintf(name, sizeof(name), "t_%ld_%d", (long)getpid(), ++counter);
	sql = template_name ? xasprintf("CREATE DATABASE %s TEMPLATE %s", name, template_name)
	                    : xasprintf("CREATE DATABASE %s", name);
	tu_exec(c, sql);
	free(sql);
	PQfinish(c);
	return tu_uri(name);
}

char *tu_create_db(void)
{
	return new_db(NULL);
}

char *tu_migrated_db(void)
{
	char err[ODS_ERRLEN];
	PGconn *c = tu_connect(base_uri());
	const char *api_dir = getenv("ODS_API_DIR");
	long long exists;

	ck_assert_msg(api_dir != NULL, "ODS_API_DIR is not set");
	/* The lock makes concurrent test programs build the template once. */
	tu_exec(c, "SELECT pg_advisory_lock(4242)");
	exists = tu_long(c, "SELECT count(*) FROM pg_database WHERE datname = 'ods_template'");
	if (!exists) {
		tu_exec(c, "CREATE DATABASE ods_template_build");
		char *uri = tu_uri("ods_template_build");
		PGconn *t = tu_connect(uri);
		int applied = 0;
		bool ok = migrate_run(t, api_dir, &applied, err, sizeof(err));
		PQfinish(t);
		free(uri);
		ck_assert_msg(ok, "migrating the template failed: %s", err);
		tu_exec(c, "ALTER DATABASE ods_template_build RENAME TO ods_template");
	}
	tu_exec(c, "SELECT pg_advisory_unlock(4242)");
	PQfinish(c);
	return new_db("ods_template");
}

char *tu_tmpdir(void)
{
	const char *base = getenv("ODS_TEST_TMP");
	char *path = xasprintf("%s/work.XXXXXX", base ? base : "/tmp");

	ck_assert_msg(mkdtemp(path) != NULL, "mkdtemp %s failed", path);
	return path;
}

char *tu_write_file(const char *dir, const char *name, const void *data, size_t len)
{
	char *path = xasprintf("%s/%s", dir, name);
	FILE *f = fopen(path, "wb");

	ck_assert_msg(f != NULL, "cannot create %s", path);
	ck_assert(fwrite(data, 1, len, f) == len);
	ck_assert(fclose(f) == 0);
	return path;
}

int tu_odsctl(char **output, const char *fmt, ...)
{
	struct strbuf cmd, out;
	const char *odsctl = getenv("ODSCTL");
	char buf[4096];
	size_t n;
	va_list ap;
	FILE *p;
	int st;

	ck_assert_msg(odsctl != NULL, "ODSCTL is not set");
	strbuf_init(&cmd);
	strbuf_init(&out);
	strbuf_addf(&cmd, "%s ", odsctl);
	va_start(ap, fmt);
	strbuf_vaddf(&cmd, fmt, ap);
	va_end(ap);
	strbuf_adds(&cmd, " 2>&1");
	p = popen(cmd.data, "r");
	ck_assert_msg(p != NULL, "popen %s", cmd.data);
	while ((n = fread(buf, 1, sizeof(buf), p)) > 0)
		strbuf_add(&out, buf, n);
	st = pclose(p);
	strbuf_free(&cmd);
	if (output)
		*output = strbuf_detach(&out);
	else
		strbuf_free(&out);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The harness's pg_ctl, as the cluster's owner, with the given arguments. */
static void pg_ctl(const char *args)
{
	char *cmd;
	int st;

	ck_assert_msg(getenv("ODS_TEST_PG_BINDIR") && getenv("ODS_TEST_PG_DATA") &&
	                      getenv("ODS_TEST_PG_OPTS"),
	              "not running under tests/harness.sh");
	/* The shell expands the harness's variables: no quoting to get wrong here. */
	cmd = xasprintf("${ODS_TEST_PG_USER:+runuser -u \"$ODS_TEST_PG_USER\" --} "
	                "\"$ODS_TEST_PG_BINDIR/pg_ctl\" -D \"$ODS_TEST_PG_DATA\" -w -t 60 %s "
	                ">/dev/null",
	                args);
	st = system(cmd);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s: status %d", cmd, st);
	free(cmd);
}

void tu_pg_stop(void)
{
	pg_ctl("-m fast stop");
}

void tu_pg_start(void)
{
	pg_ctl("-o \"$ODS_TEST_PG_OPTS\" -l \"$ODS_TEST_PG_LOG\" start");
}

int tu_run_suite(Suite *s)
{
	SRunner *sr = srunner_create(s);
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
