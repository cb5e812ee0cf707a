/*
 * loader integration tests: `odsctl sync load` (loader_run) and loader_seed
 * against a real PostgreSQL. Each test gets a fresh database with its own
 * small fixture schema (ods.synced_tables, synced.items, the composite-key
 * synced.stock, native.notes), so nothing here depends on api/schema.
 *
 * The concurrency tests are deterministic: a test-only trigger on
 * ods.synced_tables makes a load wait on an advisory lock the test holds at
 * the very end of the load (every row written, nothing committed), and the
 * test waits for that state in pg_locks before it looks.
 */
#include "autoconfig.h"

#include "testutil.h"

#include "core/util.h"
#include "db/db.h"
#include "sync/loader.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <time.h>
#include <zlib.h>

static const char fixture_sql[] =
        "CREATE SCHEMA synced; CREATE SCHEMA ods; CREATE SCHEMA native;"
        "CREATE TABLE ods.synced_tables (table_name text PRIMARY KEY, source_name text,"
        "  mode text, tier text, freshness_sla interval NOT NULL DEFAULT '1 min',"
        "  as_of timestamptz, last_sync_at timestamptz,"
        "  status text NOT NULL DEFAULT 'never_synced', last_error text,"
        "  rows bigint NOT NULL DEFAULT 0);"
        "CREATE TABLE synced.items (id bigint PRIMARY KEY, name text NOT NULL,"
        "  amount numeric(10,2) CHECK (amount >= 0), tags jsonb,"
        "  _source_committed_at timestamptz NOT NULL,"
        "  _synced_at timestamptz NOT NULL DEFAULT now(),"
        "  _source_position bigint NOT NULL DEFAULT 0);"
        "CREATE TABLE synced.stock (store_id integer, sku text, on_hand integer NOT NULL,"
        "  _source_committed_at timestamptz NOT NULL,"
        "  _synced_at timestamptz NOT NULL DEFAULT now(),"
        "  _source_position bigint NOT NULL DEFAULT 0, PRIMARY KEY (store_id, sku));"
        "CREATE TABLE synced.unregistered (id bigint PRIMARY KEY,"
        "  _source_committed_at timestamptz NOT NULL,"
        "  _synced_at timestamptz NOT NULL DEFAULT now());"
        "INSERT INTO ods.synced_tables (table_name, source_name, mode, tier) VALUES"
        "  ('items', 'erp', 'snapshot', 'batch'), ('stock', 'wms', 'snapshot', 'batch');"
        "CREATE TABLE native.notes (id bigint PRIMARY KEY, body text NOT NULL,"
        "  created_at timestamptz NOT NULL DEFAULT now(),"
        "  updated_at timestamptz NOT NULL DEFAULT now(), deleted_at timestamptz,"
        "  version integer NOT NULL DEFAULT 1, created_by text NOT NULL DEFAULT 'seed');";

/* Test-only hook: a load that reaches its bookkeeping UPDATE (status 'ok')
 * waits for advisory lock 4711, then fails if its session asked for it. */
static const char hook_sql[] =
        "CREATE FUNCTION ods.test_hold() RETURNS trigger LANGUAGE plpgsql AS $$"
        " BEGIN"
        "  IF NEW.status = 'ok' THEN"
        "   PERFORM pg_advisory_xact_lock(4711);"
        "   IF current_setting('ods_test.fail_at_end', true) = 'on' THEN"
        "    RAISE EXCEPTION 'injected failure at the end of the load';"
        "   END IF;"
        "  END IF;"
        "  RETURN NEW;"
        " END $$;"
        "CREATE TRIGGER test_hold BEFORE UPDATE ON ods.synced_tables"
        "  FOR EACH ROW EXECUTE FUNCTION ods.test_hold();";

#define HDR "id,name,amount,tags,_source_committed_at\n"
#define TS  "2024-01-01T00:00:00Z"

/* Four rows covering quoting, COPY escaping (tab, backslash, a literal \N), NULLs, jsonb. */
static const char v1_csv[] =
        HDR "1,apple,1.50,\"{\"\"color\"\": \"\"red\"\"}\",2024-03-01T10:00:00Z\n"
            "2,\"pear, green\",2.25,,2024-03-01T11:00:00Z\n"
            "3,\"tab\there \"\"q\"\" back\\slash\",,[],2024-03-02T09:30:00+02:00\n"
            "4,\\N,0,{},2024-03-01T12:00:00Z\n";

static const char v1_ndjson[] =
        "{\"id\":1,\"name\":\"apple\",\"amount\":1.50,\"tags\":{\"color\":\"red\"},"
        "\"_source_committed_at\":\"2024-03-01T10:00:00Z\"}\n"
        "{\"id\":2,\"name\":\"pear, green\",\"amount\":2.25,\"tags\":null,"
        "\"_source_committed_at\":\"2024-03-01T11:00:00Z\"}\n"
        "{\"id\":3,\"name\":\"tab\\there \\\"q\\\" back\\\\slash\",\"amount\":null,\"tags\":[],"
        "\"_source_committed_at\":\"2024-03-02T09:30:00+02:00\"}\n"
        "{\"id\":4,\"name\":\"\\\\N\",\"amount\":0,\"tags\":{},"
        "\"_source_committed_at\":\"2024-03-01T12:00:00Z\"}\n";

/* items_content() after loading v1 */
static const char v1_content[] = "1|apple|1.50|{\"color\": \"red\"}|2024-03-01 10:00:00+00\n"
                                 "2|pear, green|2.25|<null>|2024-03-01 11:00:00+00\n"
                                 "3|tab\there \"q\" back\\slash|<null>|[]|2024-03-02 07:30:00+00\n"
                                 "4|\\N|0.00|{}|2024-03-01 12:00:00+00";

/* v1 with: 1 the same, 2 changed, 3 gone, 4 only a newer commit time, 5 new. */
static const char v2_csv[] =
        HDR "1,apple,1.50,\"{\"\"color\"\": \"\"red\"\"}\",2024-03-01T10:00:00Z\n"
            "2,\"pear, green\",2.30,,2024-03-05T00:00:00Z\n"
            "4,\\N,0,{},2024-03-06T00:00:00Z\n"
            "5,kiwi,0.99,,2024-03-04T00:00:00Z\n";

static char *uri;
static PGconn *conn;
static char *dir;

static void setup(void)
{
	uri = tu_create_db();
	conn = tu_connect(uri);
	tu_exec(conn, fixture_sql);
	tu_exec(conn, "SET TimeZone = 'UTC'");
	dir = tu_tmpdir();
}

static void teardown(void)
{
	PQfinish(conn);
	free(uri);
	free(dir);
}

/* ---- helpers ---- */

static char *sqlf(const char *fmt, va_list ap)
{
	struct strbuf sb;

	strbuf_init(&sb);
	strbuf_vaddf(&sb, fmt, ap);
	return strbuf_detach(&sb);
}

/* The first value of a query (NULL for SQL NULL); caller frees. */
static char *q(PGconn *c, const char *fmt, ...) ODS_PRINTF(2, 3);
static char *q(PGconn *c, const char *fmt, ...)
{
	va_list ap;
	char *sql, *v;

	va_start(ap, fmt);
	sql = sqlf(fmt, ap);
	va_end(ap);
	v = tu_value(c, sql);
	free(sql);
	return v;
}

static long long qn(PGconn *c, const char *fmt, ...) ODS_PRINTF(2, 3);
static long long qn(PGconn *c, const char *fmt, ...)
{
	va_list ap;
	char *sql;
	long long n;

	va_start(ap, fmt);
	sql = sqlf(fmt, ap);
	va_end(ap);
	n = tu_long(c, sql);
	free(sql);
	return n;
}

static void assert_q(PGconn *c, const char *want, const char *sql)
{
	char *got = tu_value(c, sql);

	ck_assert_msg(got && strcmp(got, want) == 0, "%s:\n got: %s\nwant: %s", sql,
	              got ? got : "NULL", want);
	free(got);
}

static char *file(const char *name, const char *data, size_t len)
{
	return tu_write_file(dir, name, data, len);
}

static char *text_file(const char *name, const char *data)
{
	return file(name, data, strlen(data));
}

static char *gz_file(const char *name, const char *data, size_t len)
{
	char *path = xasprintf("%s/%s", dir, name);
	gzFile f = gzopen(path, "wb");

	ck_assert(f != NULL);
	ck_assert(gzwrite(f, data, (unsigned)len) == (int)len);
	ck_assert(gzclose(f) == Z_OK);
	return path;
}

static bool load(const char *table, const char *path, const char *as_of, bool incremental,
                 struct load_result *r, char *err)
{
	struct load_opts o = {
	        .table = table, .file = path, .as_of = as_of, .incremental = incremental};

	err[0] = '\0';
	return loader_run(conn, &o, r, err, ODS_ERRLEN);
}

static void load_ok(const char *table, const char *path, const char *as_of, bool incremental,
                    struct load_result *r)
{
	char err[ODS_ERRLEN];

	ck_assert_msg(load(table, path, as_of, incremental, r, err), "load %s failed: %s", path,
	              err);
}

/* Everything in a table, _synced_at included, as one hash. */
static char *digest(const char *table)
{
	return q(conn,
	         "SELECT md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), ''))"
	         " FROM synced.%s t",
	         table);
}

/* The items' content without _synced_at, readable. */
static char *items_content(PGconn *c)
{
	return tu_value(c, "SELECT coalesce(string_agg(concat_ws('|', id, name,"
	                   " coalesce(amount::text, '<null>'), coalesce(tags::text, '<null>'),"
	                   " _source_committed_at), E'\\n' ORDER BY id), '')"
	                   " FROM synced.items");
}

/* Each row's _synced_at, by key. */
static char *synced_ats(void)
{
	return tu_value(conn, "SELECT string_agg(id || '=' || _synced_at, ',' ORDER BY id)"
	                      " FROM synced.items");
}

/* The catalog records a successful load: status ok, no error, rows, a last_sync_at. */
static void assert_catalog_ok(const char *table, long long rows)
{
	char *st = q(conn,
	             "SELECT status || '|' || coalesce(last_error, '<null>') || '|' || rows ||"
	             " '|' || (last_sync_at IS NOT NULL)"
	             " FROM ods.synced_tables WHERE table_name = '%s'",
	             table);
	char *want = xasprintf("ok|<null>|%lld|true", rows);

	ck_assert_msg(strcmp(st, want) == 0, "catalog of %s: got %s, want %s", table, st, want);
	ck_assert_int_eq(qn(conn, "SELECT count(*) FROM synced.%s", table), rows);
	free(st);
	free(want);
}

/* ---- first load, reload, changes ---- */

START_TEST(first_load_into_empty_table)
{
	struct load_result r;
	char *path = text_file("items.csv", v1_csv);
	char *content;

	load_ok("items", path, NULL, false, &r);
	ck_assert_int_eq(r.records, 4);
	ck_assert_int_eq(r.inserted, 4);
	ck_assert_int_eq(r.updated + r.deleted + r.unchanged, 0);
	ck_assert_int_eq(r.rows, 4);
	/* as_of = the newest _source_committed_at (row 3, given as +02:00). */
	ck_assert_str_eq(r.as_of, "2024-03-02T07:30:00Z");
	assert_q(conn, "t",
	         "SELECT as_of = '2024-03-02T07:30:00Z' FROM ods.synced_tables"
	         " WHERE table_name = 'items'");
	assert_catalog_ok("items", 4);
	content = items_content(conn);
	ck_assert_str_eq(content, v1_content);
	/* Every row carries the load's time, the same as last_sync_at. */
	ck_assert_int_eq(qn(conn, "SELECT count(*) FROM synced.items WHERE _synced_at ="
	                          " (SELECT last_sync_at FROM ods.synced_tables"
	                          "   WHERE table_name = 'items')"),
	                 4);
	/* Nothing else was touched. */
	assert_q(conn, "never_synced|0",
	         "SELECT status || '|' || rows FROM ods.synced_tables WHERE table_name = 'stock'");
	free(content);
	free(path);
}
END_TEST

START_TEST(reload_same_file_changes_nothing)
{
	struct load_result r;
	char *path = text_file("items.csv", v1_csv);
	char *before, *after, *sync_before;

	load_ok("items", path, NULL, false, &r);
	before = synced_ats();
	sync_before = q(conn, "SELECT last_sync_at FROM ods.synced_tables"
	                      " WHERE table_name = 'items'");
	load_ok("items", path, NULL, false, &r);
	ck_assert_int_eq(r.records, 4);
	ck_assert_int_eq(r.inserted, 0);
	ck_assert_int_eq(r.updated, 0);
	ck_assert_int_eq(r.deleted, 0);
	ck_assert_int_eq(r.unchanged, 4);
	after = synced_ats();
	ck_assert_str_eq(before, after);
	/* The load itself is recorded (a later last_sync_at) although no row changed. */
	ck_assert_int_eq(qn(conn,
	                    "SELECT count(*) FROM ods.synced_tables WHERE table_name = 'items'"
	                    " AND last_sync_at > '%s'",
	                    sync_before),
	                 1);
	assert_catalog_ok("items", 4);
	free(before);
	free(after);
	free(sync_before);
	free(path);
}
END_TEST

START_TEST(changed_file_full_snapshot)
{
	struct load_result r;
	char *p1 = text_file("v1.csv", v1_csv), *p2 = text_file("v2.csv", v2_csv);
	char *old1, *old4, *content;

	load_ok("items", p1, NULL, false, &r);
	old1 = q(conn, "SELECT _synced_at FROM synced.items WHERE id = 1");
	old4 = q(conn, "SELECT _synced_at FROM synced.items WHERE id = 4");
	load_ok("items", p2, NULL, false, &r);
	ck_assert_int_eq(r.records, 4);
	ck_assert_int_eq(r.inserted, 1);
	ck_assert_int_eq(r.updated, 1);
	ck_assert_int_eq(r.unchanged, 2);
	ck_assert_int_eq(r.deleted, 1);
	ck_assert_int_eq(r.rows, 4);
	assert_catalog_ok("items", 4);
	ck_assert_str_eq(r.as_of, "2024-03-06T00:00:00Z");
	/* Unchanged rows keep their exact _synced_at ... */
	ck_assert_int_eq(qn(conn,
	                    "SELECT count(*) FROM synced.items WHERE id = 1 AND _synced_at = '%s'",
	                    old1),
	                 1);
	ck_assert_int_eq(qn(conn,
	                    "SELECT count(*) FROM synced.items WHERE id = 4 AND _synced_at = '%s'",
	                    old4),
	                 1);
	/* ... changed and new rows get this load's time, which is later. */
	ck_assert_int_eq(qn(conn, "SELECT count(*) FROM synced.items, ods.synced_tables s"
	                          " WHERE s.table_name = 'items' AND _synced_at = s.last_sync_at"),
	                 2);
	ck_assert_int_eq(qn(conn,
	                    "SELECT count(*) FROM synced.items WHERE id IN (2, 5)"
	                    " AND _synced_at > '%s'",
	                    old1),
	                 2);
	content = items_content(conn);
	ck_assert_str_eq(content, "1|apple|1.50|{\"color\": \"red\"}|2024-03-01 10:00:00+00\n"
	                          "2|pear, green|2.30|<null>|2024-03-05 00:00:00+00\n"
	                          "4|\\N|0.00|{}|2024-03-01 12:00:00+00\n"
	                          "5|kiwi|0.99|<null>|2024-03-04 00:00:00+00");
	free(content);
	free(old1);
	free(old4);
	free(p1);
	free(p2);
}
END_TEST

START_TEST(incremental_keeps_absent_rows)
{
	struct load_result r;
	char *p1 = text_file("v1.csv", v1_csv), *p2 = text_file("v2.csv", v2_csv);
	char *old3;

	load_ok("items", p1, NULL, false, &r);
	old3 = q(conn, "SELECT _synced_at FROM synced.items WHERE id = 3");
	load_ok("items", p2, NULL, true, &r);
	ck_assert_int_eq(r.inserted, 1);
	ck_assert_int_eq(r.updated, 1);
	ck_assert_int_eq(r.unchanged, 2);
	ck_assert_int_eq(r.deleted, 0);
	ck_assert_int_eq(r.rows, 5);
	assert_catalog_ok("items", 5); /* rows = count(*), not the file's 4 records */
	ck_assert_int_eq(qn(conn,
	                    "SELECT count(*) FROM synced.items WHERE id = 3 AND _synced_at = '%s'",
	                    old3),
	                 1);
	assert_q(conn, "2.30", "SELECT amount::text FROM synced.items WHERE id = 2");
	free(old3);
	free(p1);
	free(p2);
}
END_TEST

/* A composite primary key: the UPDATE, INSERT and DELETE join on both columns. */
START_TEST(composite_key)
{
	struct load_result r;
	char err[ODS_ERRLEN];
	char *p1 = text_file("s1.csv", "store_id,sku,on_hand,_source_committed_at\n"
	                               "1,A,10,2024-01-01T00:00:00Z\n"
	                               "1,B,5,2024-01-01T00:00:00Z\n"
	                               "2,A,0,2024-01-01T00:00:00Z\n");
	char *p2 = text_file("s2.csv", "store_id,sku,on_hand,_source_committed_at\n"
	                               "1,A,11,2024-01-02T00:00:00Z\n"
	                               "2,A,0,2024-01-01T00:00:00Z\n"
	                               "2,B,7,2024-01-02T00:00:00Z\n");
	char *p3 = text_file("s3.csv", "store_id,sku,on_hand,_source_committed_at\n"
	                               "1,A,1,2024-01-03T00:00:00Z\n"
	                               "2,,1,2024-01-03T00:00:00Z\n");
	char *p4 = text_file("s4.csv", "store_id,sku,on_hand,_source_committed_at\n"
	                               "1,A,1,2024-01-03T00:00:00Z\n"
	                               "2,B,1,2024-01-03T00:00:00Z\n"
	                               "1,A,2,2024-01-03T00:00:00Z\n");
	char *old2a, *before;

	load_ok("stock", p1, NULL, false, &r);
	ck_assert_int_eq(r.inserted, 3);
	old2a = q(conn, "SELECT _synced_at FROM synced.stock WHERE store_id = 2 AND sku = 'A'");
	load_ok("stock", p2, NULL, false, &r);
	ck_assert_int_eq(r.inserted, 1);
	ck_assert_int_eq(r.updated, 1);
	ck_assert_int_eq(r.unchanged, 1);
	ck_assert_int_eq(r.deleted, 1);
	assert_catalog_ok("stock", 3);
	assert_q(conn, "1/A=11,2/A=0,2/B=7",
	         "SELECT string_agg(store_id || '/' || sku || '=' || on_hand, ','"
	         " ORDER BY store_id, sku) FROM synced.stock");
	ck_assert_int_eq(qn(conn,
	                    "SELECT count(*) FROM synced.stock WHERE store_id = 2 AND sku = 'A'"
	                    " AND _synced_at = '%s'",
	                    old2a),
	                 1);
	/* A NULL key part and a duplicate composite key fail and change nothing. */
	before = digest("stock");
	ck_assert(!load("stock", p3, NULL, false, &r, err));
	ck_assert_msg(strstr(err, "line 3") && strstr(err, "sku"), "%s", err);
	ck_assert(!load("stock", p4, NULL, false, &r, err));
	ck_assert_msg(strstr(err, "line 4") && strstr(err, "primary key"), "%s", err);
	{
		char *after = digest("stock");
		ck_assert_str_eq(before, after);
		free(after);
	}
	free(before);
	free(old2a);
	free(p1);
	free(p2);
	free(p3);
	free(p4);
}
END_TEST

/* ---- as_of, _source_committed_at, _synced_at ---- */

START_TEST(as_of_option_sets_as_of)
{
	struct load_result r;
	char *path = text_file("items.csv", v1_csv);

	load_ok("items", path, "2024-06-01T02:00:00+02:00", false, &r);
	ck_assert_str_eq(r.as_of, "2024-06-01T00:00:00Z");
	assert_q(conn, "t",
	         "SELECT as_of = '2024-06-01T00:00:00Z' FROM ods.synced_tables"
	         " WHERE table_name = 'items'");
	/* The rows keep the commit times from the file. */
	assert_q(conn, "2024-03-01 10:00:00+00",
	         "SELECT _source_committed_at::text FROM synced.items WHERE id = 1");
	/* Also on the staging path. */
	load_ok("items", path, "2024-07-01T00:00:00Z", false, &r);
	assert_q(conn, "t",
	         "SELECT as_of = '2024-07-01T00:00:00Z' FROM ods.synced_tables"
	         " WHERE table_name = 'items'");
	free(path);
}
END_TEST

START_TEST(file_without_committed_at_needs_as_of)
{
	struct load_result r;
	char err[ODS_ERRLEN];
	char *path = text_file("items.csv", "id,name,amount,tags\n1,a,1,\n2,b,2,\n");
	char *p2 = text_file("items2.csv", "id,name,amount,tags\n1,a,1,\n2,b,3,\n");
	char *old1;

	ck_assert(!load("items", path, NULL, false, &r, err));
	ck_assert_msg(strstr(err, path) && strstr(err, "line 1") &&
	                      strstr(err, "missing column _source_committed_at"),
	              "%s", err);
	assert_q(conn, "error", "SELECT status FROM ods.synced_tables WHERE table_name = 'items'");
	ck_assert_int_eq(qn(conn, "SELECT count(*) FROM synced.items"), 0);

	/* Into the empty table: every row gets --as-of. */
	load_ok("items", path, "2024-07-01T08:00:00+02:00", false, &r);
	ck_assert_int_eq(qn(conn, "SELECT count(*) FROM synced.items"
	                          " WHERE _source_committed_at = '2024-07-01T06:00:00Z'"),
	                 2);
	ck_assert_str_eq(r.as_of, "2024-07-01T06:00:00Z");
	assert_catalog_ok("items", 2);
	/* Through staging: the changed row gets the new --as-of, the other keeps its own. */
	old1 = q(conn, "SELECT _synced_at FROM synced.items WHERE id = 1");
	load_ok("items", p2, "2024-08-01T00:00:00Z", false, &r);
	ck_assert_int_eq(r.updated, 1);
	assert_q(conn, "1=2024-07-01 06:00:00+00,2=2024-08-01 00:00:00+00",
	         "SELECT string_agg(id || '=' || _source_committed_at, ',' ORDER BY id)"
	         " FROM synced.items");
	ck_assert_int_eq(qn(conn,
	                    "SELECT count(*) FROM synced.items WHERE id = 1 AND _synced_at = '%s'",
	                    old1),
	                 1);
	free(old1);
	free(path);
	free(p2);
}
END_TEST

START_TEST(synced_at_in_file_is_ignored)
{
	struct load_result r;
	char *p1 = text_file("a.csv", "id,name,_synced_at,amount,tags,_source_committed_at\n"
	                              "1,a,2001-01-01T00:00:00Z,1,,2024-01-01T00:00:00Z\n"
	                              "2,b,2001-01-01T00:00:00Z,2,,2024-01-01T00:00:00Z\n");
	char *p2 = text_file("b.csv", "id,name,_synced_at,amount,tags,_source_committed_at\n"
	                              "1,a,2002-01-01T00:00:00Z,1,,2024-01-01T00:00:00Z\n"
	                              "2,b,2002-01-01T00:00:00Z,5,,2024-01-01T00:00:00Z\n"
	                              "3,c,2002-01-01T00:00:00Z,5,,2024-01-01T00:00:00Z\n");
	static const char at_load[] =
	        "SELECT string_agg(id::text, ',' ORDER BY id)"
	        " FROM synced.items, ods.synced_tables s"
	        " WHERE s.table_name = 'items' AND _synced_at = s.last_sync_at";

	load_ok("items", p1, NULL, false, &r);
	assert_q(conn, "1,2", at_load);
	/* The staging path: an updated and an inserted row get the load time, the
	 * unchanged row keeps the first load's, and a _synced_at-only difference is
	 * no change. */
	load_ok("items", p2, NULL, false, &r);
	ck_assert_int_eq(r.unchanged, 1);
	assert_q(conn, "2,3", at_load);
	ck_assert_int_eq(qn(conn, "SELECT count(*) FROM synced.items"
	                          " WHERE _synced_at < '2020-01-01'"),
	                 0);
	free(p1);
	free(p2);
}
END_TEST

/* ---- formats ---- */

START_TEST(ndjson_and_gzip_load_identically)
{
	struct load_result r;
	const char *names[] = {"items.csv", "items.ndjson", "items.csv.gz", "items.ndjson.gz",
	                       "items.jsonl"};
	char *paths[5];

	paths[0] = text_file(names[0], v1_csv);
	paths[1] = text_file(names[1], v1_ndjson);
	paths[2] = gz_file(names[2], v1_csv, strlen(v1_csv));
	paths[3] = gz_file(names[3], v1_ndjson, strlen(v1_ndjson));
	paths[4] = text_file(names[4], v1_ndjson);
	for (int i = 0; i < 5; i++) {
		tu_exec(conn, "DELETE FROM synced.items");
		load_ok("items", paths[i], NULL, false, &r);
		ck_assert_int_eq(r.inserted, 4);
		ck_assert_str_eq(r.as_of, "2024-03-02T07:30:00Z");
		char *content = items_content(conn);
		ck_assert_msg(strcmp(content, v1_content) == 0, "%s loaded as:\n%s", names[i],
		              content);
		free(content);
	}
	/* Loaded over each other the formats are identical: nothing to update. */
	for (int i = 0; i < 5; i++) {
		load_ok("items", paths[i], NULL, false, &r);
		ck_assert_msg(r.unchanged == 4 && r.updated == 0 && r.inserted == 0,
		              "%s over the previous load: %lld updated", names[i], r.updated);
	}
	for (int i = 0; i < 5; i++)
		free(paths[i]);
}
END_TEST

/* NDJSON numbers reach numeric and jsonb columns exactly as written. */
START_TEST(ndjson_numbers_exact)
{
	struct load_result r;
	char *path = text_file("n.ndjson", "{\"id\":1,\"name\":\"n\",\"amount\":19.99,"
	                                   "\"tags\":{\"w\":0.1,\"l\":[1.1,2,1e-7]},"
	                                   "\"_source_committed_at\":\"" TS "\"}\n");

	load_ok("items", path, NULL, false, &r);
	assert_q(conn, "19.99|{\"l\": [1.1, 2, 0.0000001], \"w\": 0.1}",
	         "SELECT amount || '|' || tags FROM synced.items");
	free(path);
}
END_TEST

/* ---- NOTIFY ---- */

/* Waits up to 10 s for the next notification on c; its payload (caller frees) or NULL. */
static char *next_notify(PGconn *c)
{
	struct timespec start, now;

	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		PGnotify *n;
		ck_assert(PQconsumeInput(c) == 1);
		if ((n = PQnotifies(c)) != NULL) {
			char *p = xstrdup(n->extra);
			PQfreemem(n);
			return p;
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
		long left = 10000 - ((now.tv_sec - start.tv_sec) * 1000 +
		                     (now.tv_nsec - start.tv_nsec) / 1000000);
		if (left <= 0)
			return NULL;
		fd_set fds;
		struct timeval tv = {.tv_sec = left / 1000, .tv_usec = (left % 1000) * 1000};
		FD_ZERO(&fds);
		FD_SET(PQsocket(c), &fds);
		ck_assert(select(PQsocket(c) + 1, &fds, NULL, NULL, &tv) >= 0);
	}
}

/*
 * Every ods_freshness payload the listener got, in order, comma-separated.
 * A marker NOTIFY sent after the load bounds the wait: notifications arrive
 * in commit order, so once the marker is in, so is everything before it.
 */
static char *drain_notifies(PGconn *listener)
{
	struct strbuf sb;
	char *p;

	strbuf_init(&sb);
	tu_exec(conn, "NOTIFY ods_freshness, '--marker--'");
	while ((p = next_notify(listener)) != NULL && strcmp(p, "--marker--") != 0) {
		strbuf_addf(&sb, "%s%s", sb.len ? "," : "", p);
		free(p);
	}
	ck_assert_msg(p != NULL, "the marker notification never arrived (got: %s)", sb.data);
	free(p);
	return strbuf_detach(&sb);
}

START_TEST(notify_after_success_and_failure)
{
	struct load_result r;
	char err[ODS_ERRLEN];
	PGconn *listener = tu_connect(uri);
	char *good = text_file("items.csv", v1_csv);
	char *bad = text_file("bad.csv", HDR "1,a,abc,,2024-01-01T00:00:00Z\n");
	char *got;

	tu_exec(listener, "LISTEN ods_freshness");
	load_ok("items", good, NULL, false, &r);
	got = drain_notifies(listener);
	ck_assert_str_eq(got, "items");
	free(got);
	/* A failed load notifies too (the status changed), exactly once. */
	ck_assert(!load("items", bad, NULL, false, &r, err));
	got = drain_notifies(listener);
	ck_assert_str_eq(got, "items");
	free(got);
	/* A table that is not registered has no catalog row to change: no notification. */
	ck_assert(!load("nope", good, NULL, false, &r, err));
	got = drain_notifies(listener);
	ck_assert_str_eq(got, "");
	free(got);
	/* Another table's load names that table. */
	free(good);
	good = text_file("stock.csv",
	                 "store_id,sku,on_hand,_source_committed_at\n1,A,1,2024-01-01T00:00:00Z\n");
	load_ok("stock", good, NULL, false, &r);
	got = drain_notifies(listener);
	ck_assert_str_eq(got, "stock");
	free(got);
	PQfinish(listener);
	free(good);
	free(bad);
}
END_TEST

/* ---- bad input: nothing changes, the error is recorded ---- */

enum bad_kind { BK_PLAIN, BK_GZIP_TRUNCATED, BK_ABSENT };

struct bad_case {
	const char *name;
	const char *table;
	const char *file;
	const char *data;
	size_t len;
	enum bad_kind kind;
	const char *as_of;
	bool names_file; /* the message must start with the file's path */
	bool registered; /* the table has a catalog row that must record the error */
	const char *expect[4];
};

#define LIT(s) s, sizeof(s) - 1
#define R10    "10,x,1.00,," TS "\n"
#define R11    "11,y,2.00,," TS "\n"

static const struct bad_case bad_cases[] = {
        {"unknown table",
         "nope",
         "f.csv",
         LIT(HDR R10),
         BK_PLAIN,
         NULL,
         false,
         false,
         {"unknown table synced.nope"}},
        {"table not registered",
         "unregistered",
         "f.csv",
         LIT("id,_source_committed_at\n1," TS "\n"),
         BK_PLAIN,
         NULL,
         false,
         false,
         {"synced.unregistered is not registered"}},
        {"missing column",
         "items",
         "f.csv",
         LIT("id,amount,tags,_source_committed_at\n10,1,," TS "\n"),
         BK_PLAIN,
         NULL,
         true,
         true,
         {": line 1", "missing column name"}},
        {"extra column",
         "items",
         "f.csv",
         LIT("id,name,amount,tags,_source_committed_at,color\n"
             "10,x,1,," TS ",red\n"),
         BK_PLAIN,
         NULL,
         true,
         true,
         {": line 1, column color", "not a column"}},
        {"duplicate header column",
         "items",
         "f.csv",
         LIT("id,name,name,amount,tags,_source_committed_at\n10,x,x,1,," TS "\n"),
         BK_PLAIN,
         NULL,
         true,
         true,
         {": line 1, column name", "twice"}},
        {"empty header name",
         "items",
         "f.csv",
         LIT("id,,name,amount,tags,_source_committed_at\n"),
         BK_PLAIN,
         NULL,
         true,
         true,
         {": line 1, column 2", "empty column name"}},
        {"null key",
         "items",
         "f.csv",
         LIT(HDR R10 ",y,2.00,," TS "\n"),
         BK_PLAIN,
         NULL,
         true,
         true,
         {": line 3", "column id"}},
        {"null in NOT NULL column",
         "items",
         "f.csv",
         LIT(HDR R10 "11,,2.00,," TS "\n"),
         BK_PLAIN,
         NULL,
         true,
         true,
         {": line 3", "column name"}},
        {"bad numeric",
         "items",
         "f.csv",
         LIT(HDR R10 R11 "12,z,abc,," TS "\n"),
         BK_PLAIN,
         NULL,
         true,
         true,
         {": line 4", "column amount", "numeric"}},
        {"numeric overflow",
         "items",
         "f.csv",
         LIT(HDR R10 R11 "12,z,123456789.5,," TS "\n"),
         BK_PLAIN,
         NULL,
         true,
         true,
         {": line 4", "overflow"}},
        {"bad timestamp",
         "items",
         "f.csv",
         LIT(HDR R10 "11,y,2.00,,not-a-time\n"),
         BK_PLAIN,
         NULL,
         true,
         true,
         {": line 3", "column _source_committed_at"}},
        {"bad jsonb",
         "items",
         "f.csv",
         LIT(HDR R10 "11,y,2.00,{oops," TS "\n"),
         BK_PLAIN,
         NULL,
         true,
         true,
         {": line 3", "column tags", "json"}},
        {"CHECK violation",
         "items",
         "f.csv",
         LIT(HDR R10 "11,y,-1.00,," TS "\n"),
         BK_PLAIN,
         NULL,
         true,
         true,
         {": line 3", "amount_check"}},
        {"duplicate key in the file",
         "items",
         "f.csv",
         LIT(HDR R10 R11 R10),
         BK_PLAIN,
         NULL,
         true,
         true,
         {": line 4", "primary key"}},
        {"wrong field count",
         "items",
         "f.csv",
         LIT(HDR R10 "11,y,2.00\n"),
         BK_PLAIN,
         NULL,
         true,
         true,
         {": line 3", "3 fields, but the header has 5"}},
        {"unterminated quote",
         "items",
         "f.csv",
         LIT(HDR R10 "11,\"y,2.00,," TS "\n" R11),
         BK_PLAIN,
         NULL,
         true,
         true,
         {": line 3, column 2", "never closed"}},
        {"NUL byte",
         "items",
         "f.csv",
         LIT(HDR R10 "11,y\0z,2.00,," TS "\n"),
         BK_PLAIN,
         NULL,
         true,
         true,
         {": line 3", "NUL"}},
        {"invalid UTF-8",
         "items",
         "f.csv",
         LIT(HDR R10 "11,\xff\xfe,2.00,," TS "\n"),
         BK_PLAIN,
         NULL,
         true,
         true,
         {": line 3", "UTF8"}},
        {"truncated gzip",
         "items",
         "f.csv.gz",
         NULL,
         0,
         BK_GZIP_TRUNCATED,
         NULL,
         true,
         true,
         {"truncated"}},
        {"corrupt gzip",
         "items",
         "f.csv.gz",
         LIT("\x1f\x8b\x08\x00garbage, not deflate data"),
         BK_PLAIN,
         NULL,
         true,
         true,
         {"gzip"}},
        {"empty file", "items", "f.csv", LIT(""), BK_PLAIN, NULL, true, true, {"empty file"}},
        {"empty NDJSON file",
         "items",
         "f.ndjson",
         LIT(""),
         BK_PLAIN,
         NULL,
         true,
         true,
         {"empty file"}},
        {"header only", "items", "f.csv", LIT(HDR), BK_PLAIN, NULL, true, true, {"no data rows"}},
        {"unknown extension",
         "items",
         "f.txt",
         LIT(HDR R10),
         BK_PLAIN,
         NULL,
         true,
         true,
         {"unknown file type"}},
        {"nonexistent file",
         "items",
         "missing.csv",
         NULL,
         0,
         BK_ABSENT,
         NULL,
         true,
         true,
         {"No such file"}},
        {"bad --as-of",
         "items",
         "f.csv",
         LIT(HDR R10),
         BK_PLAIN,
         "yesterday-ish",
         false,
         true,
         {"--as-of yesterday-ish"}},
        {"no _source_committed_at",
         "items",
         "f.csv",
         LIT("id,name,amount,tags\n10,x,1,\n"),
         BK_PLAIN,
         NULL,
         true,
         true,
         {": line 1", "missing column _source_committed_at"}},
        {"NDJSON invalid JSON",
         "items",
         "f.ndjson",
         LIT("{\"id\":10,\"name\":\"x\",\"amount\":1,\"tags\":null,\"_source_committed_at\":\"" TS
             "\"}\n{\"id\":11,\n"),
         BK_PLAIN,
         NULL,
         true,
         true,
         {": line 2, column", "invalid JSON"}},
        {"NDJSON missing key",
         "items",
         "f.ndjson",
         LIT("{\"id\":10,\"name\":\"x\",\"amount\":1,\"tags\":null,\"_source_committed_at\":\"" TS
             "\"}\n\n{\"id\":11,\"name\":\"y\",\"tags\":null,\"_source_committed_at\":\"" TS
             "\"}\n"),
         BK_PLAIN,
         NULL,
         true,
         true,
         {": line 3, column amount", "missing key"}},
        {"NDJSON unknown key",
         "items",
         "f.ndjson",
         LIT("{\"id\":10,\"name\":\"x\",\"color\":1,\"amount\":1,\"tags\":null,"
             "\"_source_committed_at\":\"" TS "\"}\n"),
         BK_PLAIN,
         NULL,
         true,
         true,
         {": line 1, column color", "not a column"}},
        {"NDJSON bad type",
         "items",
         "f.ndjson",
         LIT("{\"id\":10,\"name\":\"x\",\"amount\":1,\"tags\":null,\"_source_committed_at\":\"" TS
             "\"}\n{\"id\":\"eleven\",\"name\":\"y\",\"amount\":1,\"tags\":null,"
             "\"_source_committed_at\":\"" TS "\"}\n"),
         BK_PLAIN,
         NULL,
         true,
         true,
         {": line 2", "column id", "bigint"}},
        {"NDJSON NUL in a string",
         "items",
         "f.ndjson",
         LIT("{\"id\":10,\"name\":\"x\\u0000y\",\"amount\":1,\"tags\":null,"
             "\"_source_committed_at\":\"" TS "\"}\n"),
         BK_PLAIN,
         NULL,
         true,
         true,
         {": line 1, column name", "NUL"}},
};

#define NBAD ((int)ODS_ARRAY_LEN(bad_cases))

/* Writes a gzip file and cuts it in half. */
static char *truncated_gz(const char *name)
{
	struct strbuf sb;
	char *path, *data;
	size_t len;

	strbuf_init(&sb);
	strbuf_adds(&sb, HDR);
	for (int i = 0; i < 20000; i++)
		strbuf_addf(&sb, "%d,name %u,1.00,," TS "\n", i, (unsigned)i * 2654435761u);
	path = gz_file(name, sb.data, sb.len);
	strbuf_free(&sb);
	data = util_read_file(path, &len, NULL, 0);
	ck_assert(data != NULL);
	free(path);
	path = file(name, data, len / 2);
	free(data);
	return path;
}

/* Mode 1: v1 loaded first (the staging path); mode 0: the table stays empty. */
static void prepare(int mode)
{
	struct load_result r;

	if (mode == 1) {
		char *p = text_file("v1.csv", v1_csv);
		load_ok("items", p, NULL, false, &r);
		free(p);
	}
}

/* What a failed load must leave as it was. */
struct snapshot {
	char *items, *unregistered, *catalog_stable, *catalog_all;
};

static struct snapshot take_snapshot(void)
{
	struct snapshot s = {
	        .items = digest("items"),
	        .unregistered = digest("unregistered"),
	        .catalog_stable =
	                tu_value(conn, "SELECT (as_of, last_sync_at, rows)::text"
	                               " FROM ods.synced_tables WHERE table_name = 'items'"),
	        .catalog_all = tu_value(conn, "SELECT md5(string_agg(t::text, ',' ORDER BY"
	                                      " table_name)) FROM ods.synced_tables t"),
	};
	return s;
}

static void free_snapshot(struct snapshot *s)
{
	free(s->items);
	free(s->unregistered);
	free(s->catalog_stable);
	free(s->catalog_all);
}

/* The status and last_error of items equal status and err. */
static void assert_status(const char *status, const char *err)
{
	const char *params[] = {status, err};
	PGresult *res = PQexecParams(conn,
	                             "SELECT status = $1 AND last_error IS NOT DISTINCT FROM $2,"
	                             "  status || ': ' || coalesce(last_error, '<null>')"
	                             " FROM ods.synced_tables WHERE table_name = 'items'",
	                             2, NULL, params, NULL, NULL, 0);

	ck_assert(PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1);
	ck_assert_msg(PQgetvalue(res, 0, 0)[0] == 't', "catalog has %s, want %s: %s",
	              PQgetvalue(res, 0, 1), status, err ? err : "<null>");
	PQclear(res);
}

/* Table content untouched; the catalog changed only in status='error' + last_error = err. */
static void assert_failed_cleanly(const struct snapshot *before, bool registered, const char *err)
{
	struct snapshot after = take_snapshot();

	ck_assert_msg(strcmp(before->items, after.items) == 0, "synced.items changed");
	ck_assert_msg(strcmp(before->unregistered, after.unregistered) == 0,
	              "synced.unregistered changed");
	if (registered) {
		ck_assert_str_eq(before->catalog_stable, after.catalog_stable);
		assert_status("error", err);
	} else {
		ck_assert_msg(strcmp(before->catalog_all, after.catalog_all) == 0,
		              "ods.synced_tables changed");
	}
	free_snapshot(&after);
}

static void assert_err_has(const char *err, const char *const *needles)
{
	for (int i = 0; i < 4 && needles[i]; i++)
		ck_assert_msg(strstr(err, needles[i]) != NULL, "error \"%s\" lacks \"%s\"", err,
		              needles[i]);
}

/* _i: the case, for an empty table (first NBAD) and a loaded one (the staging path). */
START_TEST(bad_input_changes_nothing)
{
	const struct bad_case *c = &bad_cases[_i % NBAD];
	int mode = _i / NBAD;
	struct load_result r;
	struct snapshot before;
	char err[ODS_ERRLEN];
	char *path;
	bool ok;

	prepare(mode);
	if (c->kind == BK_GZIP_TRUNCATED)
		path = truncated_gz(c->file);
	else if (c->kind == BK_ABSENT)
		path = xasprintf("%s/%s", dir, c->file);
	else
		path = file(c->file, c->data, c->len);
	before = take_snapshot();
	ok = load(c->table, path, c->as_of, false, &r, err);
	ck_assert_msg(!ok, "%s (%s table): the load succeeded", c->name, mode ? "loaded" : "empty");
	if (c->names_file)
		ck_assert_msg(strncmp(err, path, strlen(path)) == 0,
		              "%s: the error does not start with the file: %s", c->name, err);
	assert_err_has(err, c->expect);
	assert_failed_cleanly(&before, c->registered, err);
	free_snapshot(&before);
	free(path);
}
END_TEST

/* After a failure, the next good load clears the error. */
START_TEST(success_after_failure_clears_error)
{
	struct load_result r;
	char err[ODS_ERRLEN];
	char *bad = text_file("bad.csv", HDR "1,a,abc,," TS "\n");
	char *good = text_file("good.csv", v1_csv);

	ck_assert(!load("items", bad, NULL, false, &r, err));
	assert_status("error", err);
	load_ok("items", good, NULL, false, &r);
	assert_status("ok", NULL);
	assert_catalog_ok("items", 4);
	free(bad);
	free(good);
}
END_TEST

/*
 * A failure deep in a large file. _i: bit 0 = the path (empty table / staging),
 * bits 1.. = the kind of failure.
 */
START_TEST(failure_in_the_middle_of_a_large_file)
{
	static const char *const kinds[] = {"server-side type error", "client-side field count",
	                                    "duplicate key", "bad last line (CSV syntax)"};
	int mode = _i & 1, kind = _i >> 1;
	struct load_result r;
	struct snapshot before;
	struct strbuf sb;
	char err[ODS_ERRLEN];
	char *path, *want_line;
	const char *what;
	long long bad_line;

	prepare(mode);
	strbuf_init(&sb);
	strbuf_adds(&sb, HDR);
	for (int id = 1; id <= 60000; id++) {
		long long line = id + 1;
		if (kind == 0 && line == 50000)
			strbuf_addf(&sb, "%d,n%d,abc,," TS "\n", id, id);
		else if (kind == 1 && line == 50000)
			strbuf_addf(&sb, "%d,n%d,1.00," TS "\n", id, id);
		else if (kind == 2 && line == 50000)
			strbuf_addf(&sb, "7,dup,1.00,," TS "\n");
		else
			strbuf_addf(&sb, "%d,\"n%d\",%d.%02d,\"{\"\"i\"\": %d}\"," TS "\n", id, id,
			            id % 1000, id % 100, id);
	}
	if (kind == 3)
		strbuf_adds(&sb, "60001,\"never closed,1.00,," TS "\n");
	bad_line = kind == 3 ? 60002 : 50000;
	what = kind == 0   ? "column amount"
	       : kind == 1 ? "fields"
	       : kind == 2 ? "primary key"
	                   : "never closed";
	path = file("big.csv", sb.data, sb.len);
	strbuf_free(&sb);
	before = take_snapshot();
	ck_assert_msg(!load("items", path, NULL, false, &r, err), "%s: the load succeeded",
	              kinds[kind]);
	want_line = xasprintf("%s: line %lld", path, bad_line);
	ck_assert_msg(strncmp(err, want_line, strlen(want_line)) == 0 && strstr(err, what),
	              "%s (%s table): %s", kinds[kind], mode ? "loaded" : "empty", err);
	assert_failed_cleanly(&before, true, err);
	free_snapshot(&before);
	free(want_line);
	free(path);
}
END_TEST

/* ---- the CLI ---- */

START_TEST(cli_exit_codes)
{
	char *good = text_file("items.csv", v1_csv);
	char *bad = text_file("bad.csv", HDR R10 "11,y,abc,," TS "\n");
	char *out, *want;
	int rc;

	rc = tu_odsctl(&out, "sync load --db '%s' items '%s'", uri, good);
	ck_assert_msg(rc == 0, "exit %d: %s", rc, out);
	want = xasprintf("sync load: synced.items from %s (full snapshot): 4 records, 4 inserted",
	                 good);
	ck_assert_msg(strstr(out, want), "output: %s", out);
	free(want);
	free(out);

	rc = tu_odsctl(&out,
	               "sync load --db '%s' items '%s' --incremental --as-of 2024-09-01T00:00:00Z",
	               uri, good);
	ck_assert_msg(rc == 0, "exit %d: %s", rc, out);
	ck_assert_msg(strstr(out, "(incremental)") && strstr(out, "4 unchanged"), "%s", out);
	assert_q(conn, "t",
	         "SELECT as_of = '2024-09-01T00:00:00Z' FROM ods.synced_tables"
	         " WHERE table_name = 'items'");
	free(out);

	rc = tu_odsctl(&out, "sync load --db '%s' items '%s'", uri, bad);
	ck_assert_int_eq(rc, 1);
	ck_assert_msg(strstr(out, bad) && strstr(out, "line 3") && strstr(out, "column amount"),
	              "%s", out);
	assert_q(conn, "error", "SELECT status FROM ods.synced_tables WHERE table_name = 'items'");
	ck_assert_int_eq(qn(conn, "SELECT count(*) FROM synced.items"), 4);
	free(out);

	rc = tu_odsctl(&out, "sync load --db '%s' items '%s/absent.ndjson'", uri, dir);
	ck_assert_int_eq(rc, 1);
	ck_assert_msg(strstr(out, "absent.ndjson"), "%s", out);
	free(out);

	rc = tu_odsctl(&out, "sync load --db '%s' items", uri);
	ck_assert_int_eq(rc, 2);
	free(out);
	rc = tu_odsctl(&out, "sync load items '%s'", good);
	ck_assert_int_ne(rc, 0);
	free(out);
	free(good);
	free(bad);
}
END_TEST

/* ---- concurrency ---- */

struct job {
	const char *app, *table, *file, *setup_sql;
	bool ok;
	char err[ODS_ERRLEN];
	struct load_result r;
	pthread_t thread;
};

/* A load on its own connection (no Check assertions off the main thread). */
static void *run_job(void *arg)
{
	struct job *j = arg;
	struct load_opts o = {.table = j->table, .file = j->file};
	PGconn *c = db_connect(uri, j->app, j->err, sizeof(j->err));

	j->ok = false;
	if (!c)
		return NULL;
	if (!j->setup_sql || db_exec(c, j->setup_sql, j->err, sizeof(j->err)))
		j->ok = loader_run(c, &o, &j->r, j->err, sizeof(j->err));
	PQfinish(c);
	return NULL;
}

static void start_job(struct job *j)
{
	ck_assert(pthread_create(&j->thread, NULL, run_job, j) == 0);
}

static void join_job(struct job *j)
{
	ck_assert(pthread_join(j->thread, NULL) == 0);
}

/* Waits (up to 60 s) until the backend of application app waits for a lock of locktype. */
static void wait_for_lock_wait(PGconn *c, const char *app, const char *locktype)
{
	struct timespec start, now;

	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		if (qn(c,
		       "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
		       " WHERE NOT l.granted AND a.application_name = '%s' AND l.locktype LIKE "
		       "'%s'",
		       app, locktype) > 0)
			return;
		clock_gettime(CLOCK_MONOTONIC, &now);
		ck_assert_msg(now.tv_sec - start.tv_sec < 60, "%s never waited for a %s lock", app,
		              locktype);
		struct timeval tv = {.tv_sec = 0, .tv_usec = 2000};
		select(0, NULL, NULL, NULL, &tv);
	}
}

static char *big_file(const char *name, int from, int to, const char *prefix)
{
	struct strbuf sb;
	char *path;

	strbuf_init(&sb);
	strbuf_adds(&sb, HDR);
	for (int id = from; id <= to; id++)
		strbuf_addf(&sb, "%d,%s%d,%d.50,,2024-02-%02dT00:00:00Z\n", id, prefix, id,
		            id % 500, 1 + id % 28);
	path = file(name, sb.data, sb.len);
	strbuf_free(&sb);
	return path;
}

/*
 * A load held at its very end (all rows written, not committed): a reader
 * sees the old table; after COMMIT it sees the whole new one. _i = 0: the
 * load then commits; _i = 1: it fails at that last moment and rolls back.
 */
START_TEST(readers_never_see_a_partial_load)
{
	bool fail = _i == 1;
	struct load_result r;
	struct job j = {.app = "loader-a", .table = "items"};
	char *v1 = text_file("v1.csv", v1_csv);
	char *before, *during, *query, *after;
	PGconn *reader = tu_connect(uri), *holder = tu_connect(uri);

	load_ok("items", v1, NULL, false, &r);
	tu_exec(conn, hook_sql);
	before = digest("items");
	j.file = big_file("big.csv", 1, 30000, "big");
	j.setup_sql = fail ? "SET ods_test.fail_at_end = 'on'" : NULL;
	tu_exec(holder, "SELECT pg_advisory_lock(4711)");
	start_job(&j);
	wait_for_lock_wait(reader, "loader-a", "advisory");
	/* The loader is in its final bookkeeping statement: the rows are all written. */
	query = q(reader, "SELECT query FROM pg_stat_activity WHERE application_name = 'loader-a'");
	ck_assert_msg(strstr(query, "UPDATE ods.synced_tables SET"), "loader is at: %s", query);
	free(query);
	during = q(reader, "SELECT md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), ''))"
	                   " FROM synced.items t");
	ck_assert_str_eq(before, during);
	ck_assert_int_eq(qn(reader, "SELECT count(*) FROM synced.items"), 4);
	assert_q(reader, "ok|4",
	         "SELECT status || '|' || rows FROM ods.synced_tables WHERE table_name = 'items'");
	tu_exec(holder, "SELECT pg_advisory_unlock(4711)");
	join_job(&j);
	if (fail) {
		ck_assert_msg(!j.ok, "the load succeeded");
		ck_assert_msg(strstr(j.err, "injected failure"), "%s", j.err);
		after = digest("items");
		ck_assert_str_eq(before, after);
		assert_status("error", j.err);
		free(after);
	} else {
		ck_assert_msg(j.ok, "%s", j.err);
		ck_assert_int_eq(qn(reader, "SELECT count(*) FROM synced.items"), 30000);
		ck_assert_int_eq(
		        qn(reader, "SELECT count(*) FROM synced.items WHERE name LIKE 'big%%'"),
		        30000);
		assert_q(reader, "ok|30000",
		         "SELECT status || '|' || rows FROM ods.synced_tables"
		         " WHERE table_name = 'items'");
	}
	PQfinish(reader);
	PQfinish(holder);
	free(before);
	free(during);
	free((char *)j.file);
	free(v1);
}
END_TEST

/*
 * Two loads of one table at once take turns: A is held at its end, B starts
 * and must wait for A's lock; then both finish and B's file is the result,
 * applied on top of A's (B's counts prove it saw A's rows).
 */
START_TEST(concurrent_loads_serialize)
{
	struct load_result r;
	struct job a = {.app = "loader-a", .table = "items"};
	struct job b = {.app = "loader-b", .table = "items"};
	char *v1 = text_file("v1.csv", v1_csv);
	PGconn *reader = tu_connect(uri), *holder = tu_connect(uri);

	load_ok("items", v1, NULL, false, &r);
	tu_exec(conn, hook_sql);
	a.file = big_file("a.csv", 1, 10000, "a");
	b.file = big_file("b.csv", 5001, 15000, "b");
	tu_exec(holder, "SELECT pg_advisory_lock(4711)");
	start_job(&a);
	wait_for_lock_wait(reader, "loader-a", "advisory");
	start_job(&b);
	wait_for_lock_wait(reader, "loader-b", "%"); /* A's catalog row lock */
	tu_exec(holder, "SELECT pg_advisory_unlock(4711)");
	join_job(&a);
	join_job(&b);
	ck_assert_msg(a.ok, "A: %s", a.err);
	ck_assert_msg(b.ok, "B: %s", b.err);
	/* A replaced v1's 4 rows; B then updated A's 5001..10000, added 10001..15000
	 * and deleted 1..5000. */
	ck_assert_int_eq(a.r.inserted, 9996);
	ck_assert_int_eq(a.r.updated, 4);
	ck_assert_int_eq(b.r.updated, 5000);
	ck_assert_int_eq(b.r.inserted, 5000);
	ck_assert_int_eq(b.r.deleted, 5000);
	assert_q(reader, "10000|5001|15000|10000",
	         "SELECT count(*) || '|' || min(id) || '|' || max(id) || '|' ||"
	         " count(*) FILTER (WHERE name = 'b' || id) FROM synced.items");
	assert_catalog_ok("items", 10000);
	PQfinish(reader);
	PQfinish(holder);
	free((char *)a.file);
	free((char *)b.file);
	free(v1);
}
END_TEST

/* ---- seed rows into native tables ---- */

START_TEST(seed_inserts_new_keys_only)
{
	struct load_result r;
	char err[ODS_ERRLEN];
	char *p1 = text_file("notes.csv", "id,body\n1,hello\n2,world\n");
	char *p2 = text_file("notes2.ndjson", "{\"id\":1,\"body\":\"changed\"}\n"
	                                      "{\"id\":2,\"body\":\"world\"}\n"
	                                      "{\"id\":3,\"body\":\"new\"}\n");
	char *catalog = tu_value(conn, "SELECT md5(string_agg(t::text, ',' ORDER BY table_name))"
	                               " FROM ods.synced_tables t");
	char *after;

	ck_assert_msg(loader_seed(conn, "notes", p1, &r, err, sizeof(err)), "%s", err);
	ck_assert_int_eq(r.inserted, 2);
	ck_assert_int_eq(r.unchanged, 0);
	/* Columns the file leaves out get their defaults. */
	assert_q(conn, "1=hello/1/seed,2=world/1/seed",
	         "SELECT string_agg(id || '=' || body || '/' || version || '/' || created_by, ','"
	         " ORDER BY id) FROM native.notes");
	ck_assert_msg(loader_seed(conn, "notes", p1, &r, err, sizeof(err)), "%s", err);
	ck_assert_int_eq(r.inserted, 0);
	ck_assert_int_eq(r.unchanged, 2);
	/* An edited row is never overwritten by the seed; a new key is added. */
	tu_exec(conn, "UPDATE native.notes SET body = 'edited', version = 2 WHERE id = 1");
	ck_assert_msg(loader_seed(conn, "notes", p2, &r, err, sizeof(err)), "%s", err);
	ck_assert_int_eq(r.inserted, 1);
	ck_assert_int_eq(r.unchanged, 2);
	assert_q(conn, "1=edited/2,2=world/1,3=new/1",
	         "SELECT string_agg(id || '=' || body || '/' || version, ',' ORDER BY id)"
	         " FROM native.notes");
	/* Seeds have no freshness bookkeeping. */
	after = tu_value(conn, "SELECT md5(string_agg(t::text, ',' ORDER BY table_name))"
	                       " FROM ods.synced_tables t");
	ck_assert_str_eq(catalog, after);
	/* A bad seed file fails and inserts nothing. */
	free(p1);
	p1 = text_file("bad.csv", "id,body\n4,ok\n5,\n");
	ck_assert(!loader_seed(conn, "notes", p1, &r, err, sizeof(err)));
	ck_assert_msg(strstr(err, "line 3") && strstr(err, "body"), "%s", err);
	ck_assert_int_eq(qn(conn, "SELECT count(*) FROM native.notes"), 3);
	free(after);
	free(catalog);
	free(p1);
	free(p2);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("loader");
	TCase *tc = tcase_create("loader");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, first_load_into_empty_table);
	tcase_add_test(tc, reload_same_file_changes_nothing);
	tcase_add_test(tc, changed_file_full_snapshot);
	tcase_add_test(tc, incremental_keeps_absent_rows);
	tcase_add_test(tc, composite_key);
	tcase_add_test(tc, as_of_option_sets_as_of);
	tcase_add_test(tc, file_without_committed_at_needs_as_of);
	tcase_add_test(tc, synced_at_in_file_is_ignored);
	tcase_add_test(tc, ndjson_and_gzip_load_identically);
	tcase_add_test(tc, ndjson_numbers_exact);
	tcase_add_test(tc, notify_after_success_and_failure);
	tcase_add_loop_test(tc, bad_input_changes_nothing, 0, 2 * NBAD);
	tcase_add_test(tc, success_after_failure_clears_error);
	tcase_add_loop_test(tc, failure_in_the_middle_of_a_large_file, 0, 8);
	tcase_add_test(tc, cli_exit_codes);
	tcase_add_loop_test(tc, readers_never_see_a_partial_load, 0, 2);
	tcase_add_test(tc, concurrent_loads_serialize);
	tcase_add_test(tc, seed_inserts_new_keys_only);
	suite_add_tcase(s, tc);
	return tu_run_suite(s);
}
