/*
 * http write tests: the write routes of the reference subjects (support
 * cases, fraud cases, store actions, dispatch), Idempotency-Key, the audit
 * trail and the Debezium ingest, over real HTTP against the real schema and
 * routes (DESIGN sections 4 to 7).
 *
 * Model: every test gets its own database cloned from a template that is the
 * migrated schema plus a 300-customer demo (`odsctl demo generate` + `demo
 * load`, built once per cluster by the first test), starts its own odsd on
 * it and talks HTTP/1.1 over loopback (tests/httptest.h). What HTTP answers
 * is then checked against what the database holds, queried as the superuser:
 * rows written or not, soft deletes, native.audit_log.
 *
 * Concurrency: the races (8 POSTs with one Idempotency-Key, 8 PATCHes with
 * one If-Match) release their threads together on a barrier. The free-running
 * rounds assert what must hold whatever the interleaving; the deterministic
 * ones hold a lock in a separate session until every request is inside the
 * database, so the overlap is certain rather than likely.
 *
 * Waiting: only where an asynchronous effect is under test, by bounded polling
 * against a deadline: the freshness header after an ingest commits (NOTIFY),
 * and requests reaching a lock wait (pg_stat_activity).
 *
 * Processes: as in check_http.c, main() is a child subreaper and kills the
 * odsd processes that failed tests leave behind, by pid.
 */
#include "autoconfig.h"

#include "httptest.h"
#include "testutil.h"

#include "admin/token.h"
#include "core/util.h"

#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CASE_SCOPES  "customers:read cases:read cases:write"
#define FRAUD_SCOPES "customers:read fraud:read fraud:write"
#define FRESH_MS     1000 /* the new as-of shows within a second of the ingest */
#define DEMO_DB      "ods_writes_demo"
#define NCONCURRENT  8

static char *db_uri;
static PGconn *admin;
static struct tu_odsd *od; /* the server of the current test; teardown stops it */

/* ---- fixture ---- */

/* The migrated schema plus the demo, once per cluster; tests clone it. */
static void ensure_demo_template(void)
{
	PGconn *c = tu_connect(getenv("ODS_TEST_DB_URI"));

	tu_exec(c, "SELECT pg_advisory_lock(4343)");
	if (tu_long(c, "SELECT count(*) FROM pg_database WHERE datname = '" DEMO_DB "'") == 0) {
		char *uri = tu_migrated_db(), *dir = tu_tmpdir(), *out = NULL, *sql;
		int rc = tu_odsctl(&out, "demo generate --customers 300 --out '%s'", dir);

		ck_assert_msg(rc == 0, "demo generate failed: %s", out);
		free(out);
		rc = tu_odsctl(&out, "demo load --db '%s' --from '%s'", uri, dir);
		ck_assert_msg(rc == 0, "demo load failed: %s", out);
		free(out);
		sql = xasprintf("ALTER DATABASE %s RENAME TO " DEMO_DB, strrchr(uri, '/') + 1);
		tu_exec(c, sql);
		free(sql);
		free(uri);
		free(dir);
	}
	tu_exec(c, "SELECT pg_advisory_unlock(4343)");
	PQfinish(c);
}

static void setup(void)
{
	PGconn *c;
	char name[64], *sql;

	ensure_demo_template();
	snprintf(name, sizeof(name), "w_%ld", (long)getpid());
	c = tu_connect(getenv("ODS_TEST_DB_URI"));
	sql = xasprintf("CREATE DATABASE %s TEMPLATE " DEMO_DB, name);
	tu_exec(c, sql);
	free(sql);
	PQfinish(c);
	db_uri = tu_uri(name);
	admin = tu_connect(db_uri);
	od = NULL;
}

static void teardown(void)
{
	if (od)
		tu_odsd_stop(od);
	od = NULL;
	PQfinish(admin);
	free(db_uri);
}

static void start(void)
{
	od = tu_odsd_start(db_uri, NULL);
}

/* A thread per connection: every request of a race reaches the database at once. */
static const char *const env_threaded[] = {"ODS_HTTP_THREADS=0", "ODS_DB_POOL_SIZE=8", NULL};

/* ---- SQL as the superuser ---- */

static char *vformat(const char *fmt, va_list ap)
{
	struct strbuf sb;

	strbuf_init(&sb);
	strbuf_vaddf(&sb, fmt, ap);
	return strbuf_detach(&sb);
}

/* The first value of a query (NULL for SQL NULL); caller frees. */
__attribute__((format(printf, 1, 2))) static char *sqlv(const char *fmt, ...)
{
	va_list ap;
	char *sql, *v;

	va_start(ap, fmt);
	sql = vformat(fmt, ap);
	va_end(ap);
	v = tu_value(admin, sql);
	free(sql);
	return v;
}

__attribute__((format(printf, 1, 2))) static long long sqln(const char *fmt, ...)
{
	va_list ap;
	char *sql;
	long long n;

	va_start(ap, fmt);
	sql = vformat(fmt, ap);
	va_end(ap);
	n = tu_long(admin, sql);
	free(sql);
	return n;
}

__attribute__((format(printf, 1, 2))) static void sqlx(const char *fmt, ...)
{
	va_list ap;
	char *sql;

	va_start(ap, fmt);
	sql = vformat(fmt, ap);
	va_end(ap);
	tu_exec(admin, sql);
	free(sql);
}

/* A query's first value must be want (NULL: SQL NULL). */
static void expect_sql(const char *want, const char *sql)
{
	char *v = tu_value(admin, sql);

	if (!want)
		ck_assert_msg(v == NULL, "%s: got \"%s\", want NULL", sql, v);
	else
		ck_assert_msg(v && strcmp(v, want) == 0, "%s: got \"%s\", want \"%s\"", sql,
		              v ? v : "NULL", want);
	free(v);
}

/*
 * Audit rows of one entity with this action and actor whose before/after
 * images fit the action (insert: after only; update / soft_delete: both),
 * and whose role is the token's role (odsd switched to it).
 */
static long long audit_rows(const char *entity, const char *id, const char *action,
                            const char *actor, const char *role)
{
	return sqln("SELECT count(*) FROM native.audit_log WHERE entity = '%s' AND entity_id = '%s'"
	            " AND action = '%s' AND actor = '%s' AND role = '%s'"
	            " AND CASE action WHEN 'insert' THEN before IS NULL AND after IS NOT NULL"
	            "  ELSE before IS NOT NULL AND after IS NOT NULL END",
	            entity, id, action, actor, role);
}

/* ---- HTTP ---- */

/* "Authorization: Bearer <jwt>\r\n" for role/scope/sub, with a region claim when given. */
static char *auth_as(const char *role, const char *scope, const char *sub, const char *region)
{
	char *claim = region ? xasprintf("region=%s", region) : NULL;
	const char *claims[1] = {claim};
	struct token_opts t = {.secret_file = od->secret_file,
	                       .role = role,
	                       .scope = scope,
	                       .sub = sub,
	                       .ttl = 3600,
	                       .claims = claims,
	                       .nclaims = claim ? 1 : 0};
	char err[ODS_ERRLEN];
	char *jwt = NULL, *h;

	ck_assert_msg(token_mint(&t, &jwt, err, sizeof(err)), "%s", err);
	h = xasprintf("Authorization: Bearer %s\r\n", jwt);
	free(jwt);
	free(claim);
	return h;
}

/* A request with a JSON body (Content-Type set) or none; extra: more header lines. */
static void req(const char *method, const char *path, const char *auth, const char *extra,
                const char *body, struct tu_http_response *r)
{
	char *h = xasprintf("%s%s%s", auth ? auth : "",
	                    body ? "Content-Type: application/json\r\n" : "", extra ? extra : "");

	tu_http(od->port, method, path, h, body, r);
	free(h);
}

static int status_of(const char *method, const char *path, const char *auth, const char *body)
{
	struct tu_http_response r;
	int st;

	req(method, path, auth, NULL, body, &r);
	st = r.status;
	tu_http_free(&r);
	return st;
}

static char *must_header(const struct tu_http_response *r, const char *name)
{
	char *v = tu_http_header(r, name);

	ck_assert_msg(v != NULL, "header %s missing in:\n%s", name, r->head);
	return v;
}

static void expect_header(const struct tu_http_response *r, const char *name, const char *want)
{
	char *v = must_header(r, name);

	ck_assert_msg(strcmp(v, want) == 0, "header %s: got \"%s\", want \"%s\"", name, v, want);
	free(v);
}

static void expect_no_header(const struct tu_http_response *r, const char *name)
{
	char *v = tu_http_header(r, name);

	ck_assert_msg(v == NULL, "header %s should be absent, is \"%s\"", name, v ? v : "");
}

static json_t *body_json(const struct tu_http_response *r)
{
	json_error_t e;
	json_t *o = json_loadb(r->body, r->body_len, 0, &e);

	ck_assert_msg(o != NULL, "body is not JSON (%s): %s", e.text, r->body);
	return o;
}

static const char *jstr(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

static long long jint(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);

	ck_assert_msg(json_is_integer(v), "member %s is not an integer", key);
	return json_integer_value(v);
}

/* The item of array arr whose member key is the string want, or NULL. */
static json_t *find_item(const json_t *arr, const char *key, const char *want)
{
	size_t i;
	json_t *it;

	json_array_foreach(arr, i, it)
	{
		if (strcmp(jstr(it, key), want) == 0)
			return it;
	}
	return NULL;
}

/*
 * The RFC 9457 contract for every error: problem+json with the documented
 * members, status = the HTTP status, request_id = Request-Id; detail, when
 * needle is given, mentions it (the field a 422 is about).
 */
static void expect_problem(const struct tu_http_response *r, int status, const char *code,
                           const char *needle)
{
	json_t *o;
	char *rid, *type;
	const char *detail;

	ck_assert_msg(r->status == status, "status %d, want %d; body: %s", r->status, status,
	              r->body);
	expect_header(r, "Content-Type", "application/problem+json");
	o = body_json(r);
	type = xasprintf("urn:ods:problem:%s", code);
	ck_assert_str_eq(jstr(o, "type"), type);
	free(type);
	ck_assert_str_eq(jstr(o, "code"), code);
	ck_assert_msg(*jstr(o, "title"), "problem title missing: %s", r->body);
	ck_assert_msg(json_integer_value(json_object_get(o, "status")) == status,
	              "problem status does not match: %s", r->body);
	ck_assert_msg(json_is_string(json_object_get(o, "detail")), "no detail: %s", r->body);
	detail = jstr(o, "detail");
	ck_assert_msg(!strstr(detail, "ERROR:") && !strstr(detail, "CONTEXT") &&
	                      !strstr(detail, "PL/pgSQL"),
	              "SQL internals in detail: %s", detail);
	if (needle)
		ck_assert_msg(strstr(detail, needle) != NULL, "detail \"%s\" lacks \"%s\"", detail,
		              needle);
	rid = must_header(r, "Request-Id");
	ck_assert_str_eq(jstr(o, "request_id"), rid);
	free(rid);
	json_decref(o);
}

/* A request that must fail with this problem. */
static void expect_fails(const char *method, const char *path, const char *auth, const char *body,
                         int status, const char *code, const char *needle)
{
	struct tu_http_response r;

	req(method, path, auth, NULL, body, &r);
	expect_problem(&r, status, code, needle);
	tu_http_free(&r);
}

static bool is_uuid(const char *s)
{
	static const char shape[] = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";

	if (strlen(s) != sizeof(shape) - 1)
		return false;
	for (size_t i = 0; shape[i]; i++)
		if (shape[i] == '-' ? s[i] != '-' : !strchr("0123456789abcdef", s[i]))
			return false;
	return true;
}

/* ---- support cases ---- */

/* POST /v1/cases with body; must be 201. Returns the case id; *etag (if
 * given) gets the ETag header. */
static char *create_case_body(const char *auth, const char *body, char **etag)
{
	struct tu_http_response r;
	json_t *o;
	char *id;

	req("POST", "/v1/cases", auth, NULL, body, &r);
	ck_assert_msg(r.status == 201, "POST /v1/cases: %d %s", r.status, r.body);
	o = body_json(&r);
	id = xstrdup(jstr(o, "case_id"));
	ck_assert_msg(is_uuid(id), "case_id \"%s\"", id);
	if (etag)
		*etag = must_header(&r, "ETag");
	json_decref(o);
	tu_http_free(&r);
	return id;
}

static char *create_case(const char *auth, long long customer, const char *subject,
                         const char *more)
{
	char *body = xasprintf("{\"customer_id\":%lld,\"subject\":\"%s\"%s}", customer, subject,
	                       more ? more : "");
	char *id = create_case_body(auth, body, NULL);

	free(body);
	return id;
}

/* The path inside <...> of a Link header, or NULL. Caller frees. */
static char *link_next(const struct tu_http_response *r)
{
	char *link = tu_http_header(r, "Link"), *path = NULL;

	if (link) {
		char *lt = strchr(link, '<'), *gt = strchr(link, '>');
		ck_assert_msg(lt && gt && gt > lt && strstr(gt, "rel=\"next\""), "Link: %s", link);
		path = xstrndup(lt + 1, (size_t)(gt - lt - 1));
	}
	free(link);
	return path;
}

/*
 * Walks a paged list from path to its end by following Link rel="next",
 * checking that each Link names the body's next_cursor and that the last
 * page has neither. Returns the ids (member key) in the order shown, comma
 * separated; mid(page) runs after the first page when given.
 */
static char *walk(const char *path, const char *auth, const char *key, void (*mid)(void))
{
	struct strbuf ids;
	char *next = xstrdup(path);
	int pages = 0;

	strbuf_init(&ids);
	while (next) {
		struct tu_http_response r;
		json_t *o, *items, *it;
		const char *cursor;
		char *lnk;
		size_t i;

		ck_assert_msg(++pages < 1000, "list %s does not end", path);
		req("GET", next, auth, NULL, NULL, &r);
		ck_assert_msg(r.status == 200, "GET %s: %d %s", next, r.status, r.body);
		o = body_json(&r);
		items = json_object_get(o, "items");
		ck_assert_msg(json_is_array(items), "no items: %s", r.body);
		json_array_foreach(items, i, it)
		{
			strbuf_addf(&ids, "%s%s", ids.len ? "," : "", jstr(it, key));
		}
		cursor = json_string_value(json_object_get(o, "next_cursor"));
		lnk = link_next(&r);
		if (cursor) {
			ck_assert_msg(lnk != NULL, "next_cursor without Link on %s", next);
			ck_assert_msg(strstr(lnk, cursor) != NULL, "Link %s lacks cursor %s", lnk,
			              cursor);
		} else {
			ck_assert_msg(json_is_null(json_object_get(o, "next_cursor")),
			              "next_cursor missing: %s", r.body);
			ck_assert_msg(lnk == NULL, "Link %s on the last page", lnk);
		}
		free(next);
		next = lnk;
		json_decref(o);
		tu_http_free(&r);
		if (mid && pages == 1)
			mid();
	}
	return strbuf_detach(&ids);
}

/* Whether comma-separated list has item. */
static bool listed(const char *list, const char *item)
{
	size_t n = strlen(item);

	for (const char *p = strstr(list, item); p; p = strstr(p + 1, item))
		if ((p == list || p[-1] == ',') && (p[n] == ',' || p[n] == '\0'))
			return true;
	return false;
}

START_TEST(test_case_create_and_get)
{
	struct tu_http_response r, g;
	json_t *o, *c;
	char *auth, *reader, *loc, *etag, *path, *sql;
	const char *id;

	start();
	auth = auth_as("support_agent", CASE_SCOPES, "alice", NULL);
	req("POST", "/v1/cases", auth, NULL,
	    "{\"customer_id\":42,\"subject\":\"Parcel never arrived\",\"description\":\"since "
	    "Monday\",\"priority\":2,\"assigned_to\":\"bob\",\"channel\":\"email\"}",
	    &r);
	ck_assert_msg(r.status == 201, "POST: %d %s", r.status, r.body);
	o = body_json(&r);
	id = jstr(o, "case_id");
	ck_assert_msg(is_uuid(id), "case_id \"%s\"", id);
	loc = must_header(&r, "Location");
	path = xasprintf("/v1/cases/%s", id);
	ck_assert_str_eq(loc, path);
	etag = must_header(&r, "ETag");
	ck_assert_msg(etag[0] == '"' && strlen(etag) > 2, "ETag %s", etag);
	ck_assert_int_eq(jint(o, "customer_id"), 42);
	ck_assert_str_eq(jstr(o, "subject"), "Parcel never arrived");
	ck_assert_str_eq(jstr(o, "status"), "open");
	ck_assert_str_eq(jstr(o, "created_by"), "alice");
	ck_assert_int_eq(jint(o, "priority"), 2);
	ck_assert_int_eq(jint(o, "version"), 1);
	ck_assert_msg(json_array_size(json_object_get(o, "notes")) == 0, "notes: %s", r.body);

	/* The read: same entity, same ETag; If-None-Match gives 304. */
	req("GET", loc, auth, NULL, NULL, &g);
	ck_assert_msg(g.status == 200, "GET %s: %d %s", loc, g.status, g.body);
	expect_header(&g, "ETag", etag);
	c = body_json(&g);
	ck_assert_str_eq(jstr(c, "case_id"), id);
	ck_assert_str_eq(jstr(c, "description"), "since Monday");
	ck_assert_str_eq(jstr(c, "assigned_to"), "bob");
	ck_assert_str_eq(jstr(c, "channel"), "email");
	json_decref(c);
	tu_http_free(&g);
	{
		char *inm = xasprintf("If-None-Match: %s\r\n", etag);
		req("GET", loc, auth, inm, NULL, &g);
		ck_assert_int_eq(g.status, 304);
		tu_http_free(&g);
		free(inm);
	}

	/* The row, and the 360 lists it among the open cases. */
	sql = xasprintf("SELECT created_by || '/' || priority || '/' || status || '/' ||"
	                " (deleted_at IS NULL) FROM native.support_cases WHERE case_id = '%s'",
	                id);
	expect_sql("alice/2/open/true", sql);
	free(sql);
	reader = auth_as("support_agent", CASE_SCOPES, "reader", NULL);
	req("GET", "/v1/customers/42", reader, NULL, NULL, &g);
	ck_assert_int_eq(g.status, 200);
	c = body_json(&g);
	ck_assert_msg(find_item(json_object_get(c, "open_cases"), "case_id", id),
	              "the new case is not in the 360's open_cases: %s", g.body);
	json_decref(c);
	tu_http_free(&g);
	ck_assert_int_eq(audit_rows("support_cases", id, "insert", "alice", "support_agent"), 1);

	/* Unknown and malformed ids. */
	expect_fails("GET", "/v1/cases/00000000-0000-4000-8000-000000000000", auth, NULL, 404,
	             "not_found", NULL);
	expect_fails("GET", "/v1/cases/not-a-uuid", auth, NULL, 400, "bad_request", NULL);
	json_decref(o);
	tu_http_free(&r);
	free(auth);
	free(reader);
	free(loc);
	free(etag);
	free(path);
}
END_TEST

static char *walk_auth;

/* Runs after the first page: a newer case must not appear, nor shift the rest. */
static void create_mid_walk(void)
{
	free(create_case(walk_auth, 7, "created during the walk", NULL));
}

START_TEST(test_case_list_filters_and_walk)
{
	char *auth, *got, *want, *ids[13];
	static const char *const assignees[] = {"bob", "carol", NULL};

	start();
	auth = auth_as("support_agent", CASE_SCOPES, "alice", NULL);
	for (int i = 0; i < 13; i++) {
		char subject[32], more[64] = "";
		snprintf(subject, sizeof(subject), "walk case %d", i);
		if (assignees[i % 3])
			snprintf(more, sizeof(more), ",\"assigned_to\":\"%s\"", assignees[i % 3]);
		ids[i] = create_case(auth, i % 2 ? 7 : 8, subject, more);
		if (i % 4 == 0) {
			char *p = xasprintf("/v1/cases/%s", ids[i]);
			ck_assert_int_eq(status_of("PATCH", p, auth, "{\"status\":\"pending\"}"),
			                 200);
			free(p);
		}
	}
	{
		char *p = xasprintf("/v1/cases/%s", ids[3]);
		ck_assert_int_eq(status_of("DELETE", p, auth, NULL), 204);
		free(p);
	}

	/* The whole queue, 4 a page, newest first; every live case exactly once, even
	 * though a case is created after the first page. */
	want = sqlv("SELECT string_agg(case_id::text, ',' ORDER BY created_at DESC, case_id DESC)"
	            " FROM native.support_cases WHERE deleted_at IS NULL");
	walk_auth = auth;
	got = walk("/v1/cases?limit=4", auth, "case_id", create_mid_walk);
	ck_assert_str_eq(got, want);
	ck_assert_msg(!listed(got, ids[3]), "a deleted case is listed");
	ck_assert_msg(listed(got, ids[0]) && listed(got, ids[12]), "own cases missing");
	free(got);
	free(want);
	ck_assert_int_eq(sqln("SELECT count(*) FROM native.support_cases"
	                      " WHERE subject = 'created during the walk'"),
	                 1);

	/* Filters: status and assignee, alone and together, one per page. */
	want = sqlv("SELECT coalesce(string_agg(case_id::text, ',' ORDER BY created_at DESC,"
	            " case_id DESC), '') FROM native.support_cases WHERE deleted_at IS NULL"
	            " AND status = 'pending' AND assigned_to = 'bob'");
	ck_assert_msg(*want, "the fixture should have pending cases of bob");
	got = walk("/v1/cases?status=pending&assigned_to=bob&limit=1", auth, "case_id", NULL);
	ck_assert_str_eq(got, want);
	free(got);
	free(want);
	want = sqlv(
	        "SELECT string_agg(case_id::text, ',' ORDER BY created_at DESC, case_id DESC)"
	        " FROM native.support_cases WHERE deleted_at IS NULL AND assigned_to = 'carol'");
	got = walk("/v1/cases?assigned_to=carol&limit=2", auth, "case_id", NULL);
	ck_assert_str_eq(got, want);
	free(got);
	free(want);
	want = sqlv("SELECT string_agg(case_id::text, ',' ORDER BY created_at DESC, case_id DESC)"
	            " FROM native.support_cases WHERE deleted_at IS NULL AND status = 'open'");
	got = walk("/v1/cases?status=open&limit=3", auth, "case_id", NULL);
	ck_assert_str_eq(got, want);
	free(got);
	free(want);

	/* A customer's cases: the same exactly-once walk. */
	want = sqlv("SELECT string_agg(case_id::text, ',' ORDER BY created_at DESC, case_id DESC)"
	            " FROM native.support_cases WHERE deleted_at IS NULL AND customer_id = 7");
	got = walk("/v1/customers/7/cases?limit=2", auth, "case_id", NULL);
	ck_assert_str_eq(got, want);
	ck_assert_msg(!listed(got, ids[3]), "a deleted case is among the customer's cases");
	free(got);
	free(want);

	expect_fails("GET", "/v1/cases?status=bogus", auth, NULL, 400, "bad_request", "status");
	expect_fails("GET", "/v1/cases?cursor=garbage", auth, NULL, 400, "bad_request", NULL);
	for (int i = 0; i < 13; i++)
		free(ids[i]);
	free(auth);
}
END_TEST

START_TEST(test_case_patch_if_match)
{
	struct tu_http_response r, g;
	char *auth, *id, *etag1, *etag2, *path, *im, *sql;
	json_t *o;

	start();
	auth = auth_as("support_agent", CASE_SCOPES, "alice", NULL);
	id = create_case_body(auth, "{\"customer_id\":11,\"subject\":\"Refund\",\"priority\":4}",
	                      &etag1);
	path = xasprintf("/v1/cases/%s", id);
	im = xasprintf("If-Match: %s\r\n", etag1);

	req("PATCH", path, auth, im,
	    "{\"status\":\"pending\",\"priority\":1,\"assigned_to\":\"dora\"}", &r);
	ck_assert_msg(r.status == 200, "PATCH: %d %s", r.status, r.body);
	etag2 = must_header(&r, "ETag");
	ck_assert_str_ne(etag2, etag1);
	o = body_json(&r);
	ck_assert_str_eq(jstr(o, "status"), "pending");
	ck_assert_str_eq(jstr(o, "assigned_to"), "dora");
	ck_assert_int_eq(jint(o, "priority"), 1);
	ck_assert_int_eq(jint(o, "version"), 2);
	json_decref(o);
	tu_http_free(&r);
	req("GET", path, auth, NULL, NULL, &g);
	expect_header(&g, "ETag", etag2);
	tu_http_free(&g);

	/* Stale: 412, and nothing changed. */
	req("PATCH", path, auth, im, "{\"subject\":\"hijacked\",\"status\":\"closed\"}", &r);
	expect_problem(&r, 412, "precondition_failed", NULL);
	tu_http_free(&r);
	free(im);
	im = xasprintf("If-Match: \"%s\"\r\n", "99");
	req("DELETE", path, auth, im, NULL, &r);
	expect_problem(&r, 412, "precondition_failed", NULL);
	tu_http_free(&r);
	sql = xasprintf("SELECT subject || '/' || status || '/' || version || '/' ||"
	                " (deleted_at IS NULL) FROM native.support_cases WHERE case_id = '%s'",
	                id);
	expect_sql("Refund/pending/2/true", sql);

	/* "*" matches the live case; null unassigns. */
	req("PATCH", path, auth, "If-Match: *\r\n", "{\"assigned_to\":null}", &r);
	ck_assert_msg(r.status == 200, "PATCH If-Match *: %d %s", r.status, r.body);
	tu_http_free(&r);
	free(sql);
	sql = xasprintf("SELECT coalesce(assigned_to, '-') || '/' || version FROM"
	                " native.support_cases WHERE case_id = '%s'",
	                id);
	expect_sql("-/3", sql);

	/* Server-set and fixed fields, bad values: 422 naming the field, no change. */
	expect_fails("PATCH", path, auth, "{\"version\":9}", 422, "unprocessable", "version");
	expect_fails("PATCH", path, auth, "{\"created_by\":\"mallory\"}", 422, "unprocessable",
	             "created_by");
	expect_fails("PATCH", path, auth, "{\"customer_id\":12}", 422, "unprocessable",
	             "customer_id");
	expect_fails("PATCH", path, auth, "{\"status\":\"lost\"}", 422, "unprocessable", "status");
	expect_fails("PATCH", path, auth, "{\"priority\":0}", 422, "unprocessable", "priority");
	expect_sql("-/3", sql);
	expect_fails("PATCH", "/v1/cases/00000000-0000-4000-8000-000000000000", auth,
	             "{\"status\":\"open\"}", 404, "not_found", NULL);

	ck_assert_int_eq(audit_rows("support_cases", id, "update", "alice", "support_agent"), 2);
	ck_assert_int_eq(sqln("SELECT count(*) FROM native.audit_log WHERE entity_id = '%s'"
	                      " AND action = 'update' AND before ->> 'version' = '1'"
	                      " AND after ->> 'version' = '2' AND after ->> 'status' = 'pending'",
	                      id),
	                 1);
	free(sql);
	free(im);
	free(path);
	free(etag1);
	free(etag2);
	free(id);
	free(auth);
}
END_TEST

struct patcher {
	pthread_t th;
	pthread_barrier_t *go;
	int port;
	const char *path, *headers, *body;
	struct tu_http_response r;
};

static void *patch_race(void *arg)
{
	struct patcher *x = arg;

	pthread_barrier_wait(x->go);
	tu_http(x->port, "PATCH", x->path, x->headers, x->body, &x->r);
	return NULL;
}

/*
 * 8 PATCHes with the same If-Match: one wins, the others get 412. To make them
 * truly concurrent, the test holds the case's row lock until all 8 are
 * waiting inside the database, then lets them go at once.
 */
START_TEST(test_case_concurrent_if_match)
{
	struct patcher pt[NCONCURRENT];
	pthread_barrier_t go;
	char *auth, *id, *etag, *path, *headers, *bodies[NCONCURRENT], *sql;
	PGconn *locker;
	int won = -1;

	od = tu_odsd_start(db_uri, env_threaded);
	auth = auth_as("support_agent", CASE_SCOPES, "alice", NULL);
	id = create_case_body(auth, "{\"customer_id\":12,\"subject\":\"contested\"}", &etag);
	path = xasprintf("/v1/cases/%s", id);
	headers = xasprintf("%sContent-Type: application/json\r\nIf-Match: %s\r\n", auth, etag);
	/* Another session holds the lock: admin polls pg_stat_activity, whose snapshot
	 * would stay frozen inside a transaction. */
	locker = tu_connect(db_uri);
	sql = xasprintf("SELECT case_id FROM native.support_cases WHERE case_id = '%s' FOR UPDATE",
	                id);
	tu_exec(locker, "BEGIN");
	free(tu_value(locker, sql));
	free(sql);
	ck_assert(pthread_barrier_init(&go, NULL, NCONCURRENT) == 0);
	for (int i = 0; i < NCONCURRENT; i++) {
		bodies[i] = xasprintf("{\"subject\":\"writer %d\"}", i);
		pt[i] = (struct patcher){.go = &go,
		                         .port = od->port,
		                         .path = path,
		                         .headers = headers,
		                         .body = bodies[i]};
		ck_assert(pthread_create(&pt[i].th, NULL, patch_race, &pt[i]) == 0);
	}
	{
		double deadline = tu_mono_ms() + 10000;
		long long waiting = 0;
		while (waiting < NCONCURRENT && tu_mono_ms() < deadline) {
			waiting =
			        sqln("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type ="
			             " 'Lock' AND query LIKE '%%support_case_update%%'");
			if (waiting < NCONCURRENT)
				tu_tick();
		}
		tu_exec(locker, "COMMIT");
		PQfinish(locker);
		ck_assert_msg(waiting == NCONCURRENT, "only %lld PATCHes waited on the row lock",
		              waiting);
	}
	for (int i = 0; i < NCONCURRENT; i++)
		pthread_join(pt[i].th, NULL);
	pthread_barrier_destroy(&go);
	for (int i = 0; i < NCONCURRENT; i++) {
		if (pt[i].r.status == 200) {
			ck_assert_msg(won < 0, "two PATCHes with one If-Match won: %d and %d", won,
			              i);
			won = i;
		} else {
			expect_problem(&pt[i].r, 412, "precondition_failed", NULL);
		}
		tu_http_free(&pt[i].r);
	}
	ck_assert_msg(won >= 0, "no PATCH won");
	sql = xasprintf("SELECT subject || '/' || version FROM native.support_cases"
	                " WHERE case_id = '%s'",
	                id);
	{
		char *want = xasprintf("writer %d/2", won);
		expect_sql(want, sql);
		free(want);
	}
	ck_assert_int_eq(audit_rows("support_cases", id, "update", "alice", "support_agent"), 1);
	for (int i = 0; i < NCONCURRENT; i++)
		free(bodies[i]);
	free(sql);
	free(headers);
	free(path);
	free(etag);
	free(id);
	free(auth);
}
END_TEST

START_TEST(test_case_soft_delete)
{
	struct tu_http_response r;
	char *auth, *gone, *kept, *etag, *path, *im, *ids;
	json_t *o;

	start();
	auth = auth_as("support_agent", CASE_SCOPES, "alice", NULL);
	gone = create_case_body(auth, "{\"customer_id\":9,\"subject\":\"to delete\"}", &etag);
	kept = create_case(auth, 9, "to keep", NULL);
	path = xasprintf("/v1/cases/%s", gone);
	im = xasprintf("If-Match: %s\r\n", etag);

	req("DELETE", path, auth, im, NULL, &r);
	ck_assert_msg(r.status == 204, "DELETE: %d %s", r.status, r.body);
	ck_assert_uint_eq(r.body_len, 0);
	tu_http_free(&r);

	/* Gone for every read and write... */
	expect_fails("GET", path, auth, NULL, 404, "not_found", NULL);
	expect_fails("DELETE", path, auth, NULL, 404, "not_found", NULL);
	expect_fails("PATCH", path, auth, "{\"status\":\"open\"}", 404, "not_found", NULL);
	{
		char *notes = xasprintf("%s/notes", path);
		expect_fails("POST", notes, auth, "{\"body\":\"late\"}", 404, "not_found", NULL);
		free(notes);
	}
	ids = walk("/v1/cases?limit=500", auth, "case_id", NULL);
	ck_assert_msg(!listed(ids, gone) && listed(ids, kept), "GET /v1/cases: %s", ids);
	free(ids);
	ids = walk("/v1/customers/9/cases", auth, "case_id", NULL);
	ck_assert_msg(!listed(ids, gone) && listed(ids, kept), "customer cases: %s", ids);
	free(ids);
	req("GET", "/v1/customers/9", auth, NULL, NULL, &r);
	o = body_json(&r);
	ck_assert_msg(!find_item(json_object_get(o, "open_cases"), "case_id", gone) &&
	                      find_item(json_object_get(o, "open_cases"), "case_id", kept),
	              "360 open_cases: %s", r.body);
	json_decref(o);
	tu_http_free(&r);

	/* ... but the row stays, with deleted_at. */
	ck_assert_int_eq(sqln("SELECT count(*) FROM native.support_cases WHERE case_id = '%s'"
	                      " AND deleted_at IS NOT NULL AND subject = 'to delete'",
	                      gone),
	                 1);
	ck_assert_int_eq(audit_rows("support_cases", gone, "soft_delete", "alice", "support_agent"),
	                 1);
	ck_assert_int_eq(sqln("SELECT count(*) FROM native.audit_log WHERE entity_id = '%s'"
	                      " AND action = 'soft_delete' AND before ->> 'deleted_at' IS NULL"
	                      " AND after ->> 'deleted_at' IS NOT NULL",
	                      gone),
	                 1);
	free(im);
	free(path);
	free(etag);
	free(gone);
	free(kept);
	free(auth);
}
END_TEST

START_TEST(test_case_notes)
{
	struct tu_http_response r;
	char *auth, *id, *path, *notes, *etag0, *etag1, *im, *note_id;
	json_t *o, *n;

	start();
	auth = auth_as("support_agent", CASE_SCOPES, "alice", NULL);
	id = create_case_body(auth, "{\"customer_id\":21,\"subject\":\"Damaged item\"}", &etag0);
	path = xasprintf("/v1/cases/%s", id);
	notes = xasprintf("%s/notes", path);

	req("POST", notes, auth, NULL, "{\"body\":\"Called the customer back\"}", &r);
	ck_assert_msg(r.status == 201, "POST note: %d %s", r.status, r.body);
	{
		char *loc = must_header(&r, "Location");
		ck_assert_msg(strncmp(loc, path, strlen(path)) == 0, "Location %s", loc);
		free(loc);
	}
	o = body_json(&r);
	note_id = xstrdup(jstr(o, "note_id"));
	ck_assert_msg(is_uuid(note_id), "note_id %s", note_id);
	ck_assert_str_eq(jstr(o, "created_by"), "alice");
	json_decref(o);
	tu_http_free(&r);

	/* The case shows it, and its ETag moved (If-None-Match sees the note). */
	req("GET", path, auth, NULL, NULL, &r);
	ck_assert_int_eq(r.status, 200);
	etag1 = must_header(&r, "ETag");
	ck_assert_str_ne(etag1, etag0);
	o = body_json(&r);
	n = find_item(json_object_get(o, "notes"), "note_id", note_id);
	ck_assert_msg(n != NULL, "note missing: %s", r.body);
	ck_assert_str_eq(jstr(n, "body"), "Called the customer back");
	ck_assert_str_eq(jstr(n, "created_by"), "alice");
	json_decref(o);
	tu_http_free(&r);

	/* A note does not make an edit of the case stale (31_case_writes.sql, ETags). */
	im = xasprintf("If-Match: %s\r\n", etag0);
	req("PATCH", path, auth, im, "{\"status\":\"pending\"}", &r);
	ck_assert_msg(r.status == 200, "PATCH after a note: %d %s", r.status, r.body);
	tu_http_free(&r);

	expect_fails("POST", notes, auth, "{}", 422, "unprocessable", "body");
	expect_fails("POST", notes, auth, "{\"body\":\"x\",\"note_id\":\"n\"}", 422,
	             "unprocessable", "note_id");
	expect_fails("POST", "/v1/cases/00000000-0000-4000-8000-000000000000/notes", auth,
	             "{\"body\":\"x\"}", 404, "not_found", NULL);
	ck_assert_int_eq(sqln("SELECT count(*) FROM native.case_notes WHERE case_id = '%s'", id),
	                 1);
	ck_assert_int_eq(audit_rows("case_notes", note_id, "insert", "alice", "support_agent"), 1);
	free(im);
	free(note_id);
	free(etag0);
	free(etag1);
	free(notes);
	free(path);
	free(id);
	free(auth);
}
END_TEST

START_TEST(test_case_body_rules)
{
	struct tu_http_response r;
	char *auth, *h;
	long long cases, audits;

	start();
	auth = auth_as("support_agent", CASE_SCOPES, "alice", NULL);
	cases = sqln("SELECT count(*) FROM native.support_cases");
	audits = sqln("SELECT count(*) FROM native.audit_log");

	h = xasprintf("%sContent-Type: text/plain\r\n", auth);
	tu_http(od->port, "POST", "/v1/cases", h, "customer 1, subject x", &r);
	expect_problem(&r, 415, "unsupported_media_type", NULL);
	tu_http_free(&r);
	free(h);
	expect_fails("POST", "/v1/cases", auth, "{\"customer_id\":1,", 400, "malformed_json", NULL);
	expect_fails("POST", "/v1/cases", auth, "[1,2]", 400, "bad_request", NULL);
	req("POST", "/v1/cases", auth, NULL, NULL, &r);
	ck_assert_msg(r.status == 400 || r.status == 415, "POST without a body: %d", r.status);
	tu_http_free(&r);

	/* Valid JSON that breaks a rule: 422 naming the field. */
	expect_fails("POST", "/v1/cases", auth,
	             "{\"customer_id\":1,\"subject\":\"s\",\"priority\":9}", 422, "unprocessable",
	             "priority");
	expect_fails("POST", "/v1/cases", auth,
	             "{\"customer_id\":1,\"subject\":\"s\",\"priority\":\"high\"}", 422,
	             "unprocessable", "priority");
	expect_fails("POST", "/v1/cases", auth, "{\"customer_id\":1}", 422, "unprocessable",
	             "subject");
	expect_fails("POST", "/v1/cases", auth, "{\"customer_id\":1,\"subject\":\"  \"}", 422,
	             "unprocessable", "subject");
	expect_fails("POST", "/v1/cases", auth, "{\"subject\":\"s\"}", 422, "unprocessable",
	             "customer_id");
	expect_fails("POST", "/v1/cases", auth, "{\"customer_id\":999999,\"subject\":\"s\"}", 422,
	             "unprocessable", "customer_id");
	expect_fails("POST", "/v1/cases", auth, "{\"customer_id\":\"1\",\"subject\":\"s\"}", 422,
	             "unprocessable", "customer_id");
	expect_fails("POST", "/v1/cases", auth,
	             "{\"customer_id\":1,\"subject\":\"s\",\"channel\":\"pigeon\"}", 422,
	             "unprocessable", "channel");
	expect_fails("POST", "/v1/cases", auth, "{\"customer_id\":1,\"subject\":\"s\",\"x\":1}",
	             422, "unprocessable", "x");

	/* Server-set fields are refused, never written. */
	expect_fails("POST", "/v1/cases", auth,
	             "{\"customer_id\":1,\"subject\":\"forged\","
	             "\"case_id\":\"11111111-1111-4111-8111-111111111111\"}",
	             422, "unprocessable", "case_id");
	expect_fails("POST", "/v1/cases", auth,
	             "{\"customer_id\":1,\"subject\":\"forged\",\"created_by\":\"mallory\"}", 422,
	             "unprocessable", "created_by");
	expect_fails("POST", "/v1/cases", auth,
	             "{\"customer_id\":1,\"subject\":\"forged\",\"version\":7}", 422,
	             "unprocessable", "version");
	expect_fails("POST", "/v1/cases", auth,
	             "{\"customer_id\":1,\"subject\":\"forged\",\"status\":\"closed\"}", 422,
	             "unprocessable", "status");

	ck_assert_int_eq(sqln("SELECT count(*) FROM native.support_cases"), cases);
	ck_assert_int_eq(sqln("SELECT count(*) FROM native.support_cases WHERE created_by ="
	                      " 'mallory' OR subject = 'forged'"
	                      " OR case_id = '11111111-1111-4111-8111-111111111111'"),
	                 0);
	ck_assert_int_eq(sqln("SELECT count(*) FROM native.audit_log"), audits);

	/* The scope and the role gate writes too. */
	{
		char *ro = auth_as("support_agent", "customers:read cases:read", "alice", NULL);
		char *fa = auth_as("fraud_analyst", CASE_SCOPES, "fred", "west");
		const char *ok = "{\"customer_id\":1,\"subject\":\"s\"}";
		expect_fails("POST", "/v1/cases", ro, ok, 403, "insufficient_scope", NULL);
		expect_fails("POST", "/v1/cases", fa, ok, 403, "forbidden", NULL);
		expect_fails("POST", "/v1/cases", NULL, ok, 401, "unauthorized", NULL);
		free(ro);
		free(fa);
	}
	ck_assert_int_eq(sqln("SELECT count(*) FROM native.support_cases"), cases);
	free(auth);
}
END_TEST

/* ---- Idempotency-Key ---- */

START_TEST(test_idempotency_replay)
{
	struct tu_http_response r1, r2, r3;
	const char *body = "{\"customer_id\":33,\"subject\":\"idem once\"}";
	char *alice, *bob, *l1, *l2, *e1, *e2, *id1, *key255, *h;
	json_t *o;

	start();
	alice = auth_as("support_agent", CASE_SCOPES, "alice", NULL);
	bob = auth_as("support_agent", CASE_SCOPES, "bob", NULL);

	req("POST", "/v1/cases", alice, "Idempotency-Key: order-33-a\r\n", body, &r1);
	ck_assert_msg(r1.status == 201, "first: %d %s", r1.status, r1.body);
	expect_no_header(&r1, "Idempotent-Replayed");
	req("POST", "/v1/cases", alice, "Idempotency-Key: order-33-a\r\n", body, &r2);
	ck_assert_msg(r2.status == 201, "replay: %d %s", r2.status, r2.body);
	expect_header(&r2, "Idempotent-Replayed", "true");
	expect_header(&r2, "Content-Type", "application/json");
	ck_assert_uint_eq(r2.body_len, r1.body_len);
	ck_assert_str_eq(r2.body, r1.body);
	l1 = must_header(&r1, "Location");
	l2 = must_header(&r2, "Location");
	ck_assert_str_eq(l2, l1);
	e1 = must_header(&r1, "ETag");
	e2 = must_header(&r2, "ETag");
	ck_assert_str_eq(e2, e1);
	o = body_json(&r1);
	id1 = xstrdup(jstr(o, "case_id"));
	json_decref(o);
	ck_assert_int_eq(
	        sqln("SELECT count(*) FROM native.support_cases WHERE subject = 'idem once'"), 1);
	ck_assert_int_eq(audit_rows("support_cases", id1, "insert", "alice", "support_agent"), 1);

	/* The same key with another body: 422, nothing written. */
	req("POST", "/v1/cases", alice, "Idempotency-Key: order-33-a\r\n",
	    "{\"customer_id\":33,\"subject\":\"idem twice\"}", &r3);
	expect_problem(&r3, 422, "unprocessable", "Idempotency-Key");
	tu_http_free(&r3);
	ck_assert_int_eq(
	        sqln("SELECT count(*) FROM native.support_cases WHERE subject LIKE 'idem %%'"), 1);

	/* Keys are scoped to the token's sub: bob's same key is a new request. */
	req("POST", "/v1/cases", bob, "Idempotency-Key: order-33-a\r\n", body, &r3);
	ck_assert_msg(r3.status == 201, "bob: %d %s", r3.status, r3.body);
	expect_no_header(&r3, "Idempotent-Replayed");
	o = body_json(&r3);
	ck_assert_str_ne(jstr(o, "case_id"), id1);
	ck_assert_str_eq(jstr(o, "created_by"), "bob");
	json_decref(o);
	tu_http_free(&r3);
	expect_sql("alice,bob", "SELECT string_agg(created_by, ',' ORDER BY created_by) FROM"
	                        " native.support_cases WHERE subject = 'idem once'");

	/* Only successes are stored: a failed request may be retried with its key. */
	req("POST", "/v1/cases", alice, "Idempotency-Key: retry-1\r\n",
	    "{\"customer_id\":33,\"subject\":\"idem retry\",\"priority\":9}", &r3);
	expect_problem(&r3, 422, "unprocessable", "priority");
	tu_http_free(&r3);
	req("POST", "/v1/cases", alice, "Idempotency-Key: retry-1\r\n",
	    "{\"customer_id\":33,\"subject\":\"idem retry\",\"priority\":5}", &r3);
	ck_assert_msg(r3.status == 201, "retry: %d %s", r3.status, r3.body);
	expect_no_header(&r3, "Idempotent-Replayed");
	tu_http_free(&r3);

	/* Malformed keys: 400, nothing written; 255 characters are fine. */
	static const char *const bad[] = {
	        "Idempotency-Key: \"\"\r\n", "Idempotency-Key: caf\xc3\xa9\r\n",
	        "Idempotency-Key: back\\slash\r\n", "Idempotency-Key: quo\"te\r\n"};
	for (size_t i = 0; i < ODS_ARRAY_LEN(bad); i++) {
		req("POST", "/v1/cases", alice, bad[i],
		    "{\"customer_id\":33,\"subject\":\"idem bad key\"}", &r3);
		expect_problem(&r3, 400, "bad_request", "Idempotency-Key");
		tu_http_free(&r3);
	}
	key255 = xmalloc(257);
	memset(key255, 'k', 256);
	key255[256] = '\0';
	h = xasprintf("Idempotency-Key: %s\r\n", key255);
	req("POST", "/v1/cases", alice, h, "{\"customer_id\":33,\"subject\":\"idem bad key\"}",
	    &r3);
	expect_problem(&r3, 400, "bad_request", "Idempotency-Key");
	tu_http_free(&r3);
	free(h);
	ck_assert_int_eq(
	        sqln("SELECT count(*) FROM native.support_cases WHERE subject = 'idem bad key'"),
	        0);
	key255[255] = '\0';
	h = xasprintf("Idempotency-Key: %s\r\n", key255);
	req("POST", "/v1/cases", alice, h, "{\"customer_id\":33,\"subject\":\"idem long key\"}",
	    &r3);
	ck_assert_msg(r3.status == 201, "255-character key: %d %s", r3.status, r3.body);
	tu_http_free(&r3);
	free(h);
	free(key255);

	tu_http_free(&r1);
	tu_http_free(&r2);
	free(l1);
	free(l2);
	free(e1);
	free(e2);
	free(id1);
	free(alice);
	free(bob);
}
END_TEST

struct racer {
	pthread_t th;
	pthread_barrier_t *go;
	int port;
	const char *headers, *body;
	struct tu_http_response r;
	atomic_bool done;
};

static void *race(void *arg)
{
	struct racer *x = arg;

	pthread_barrier_wait(x->go);
	tu_http(x->port, "POST", "/v1/cases", x->headers, x->body, &x->r);
	atomic_store(&x->done, true);
	return NULL;
}

/*
 * 8 POSTs with one key, released together: exactly one row, and every
 * answer is the original 201, a replay of it, or 409 (still in flight).
 */
START_TEST(test_idempotency_concurrent)
{
	struct racer rc[NCONCURRENT];
	pthread_barrier_t go;
	char *auth;
	int conflicts = 0;

	start();
	auth = auth_as("support_agent", CASE_SCOPES, "alice", NULL);
	for (int round = 0; round < 3; round++) {
		char *headers = xasprintf("%sContent-Type: application/json\r\n"
		                          "Idempotency-Key: race-%d\r\n",
		                          auth, round);
		char *body = xasprintf("{\"customer_id\":55,\"subject\":\"race %d\"}", round);
		char *first = NULL;
		int originals = 0;

		ck_assert(pthread_barrier_init(&go, NULL, NCONCURRENT) == 0);
		for (int i = 0; i < NCONCURRENT; i++) {
			rc[i] = (struct racer){
			        .go = &go, .port = od->port, .headers = headers, .body = body};
			atomic_init(&rc[i].done, false);
			ck_assert(pthread_create(&rc[i].th, NULL, race, &rc[i]) == 0);
		}
		for (int i = 0; i < NCONCURRENT; i++)
			pthread_join(rc[i].th, NULL);
		pthread_barrier_destroy(&go);

		for (int i = 0; i < NCONCURRENT; i++) {
			struct tu_http_response *r = &rc[i].r;
			if (r->status == 409) {
				expect_problem(r, 409, "conflict", NULL);
				conflicts++;
			} else {
				char *replayed = tu_http_header(r, "Idempotent-Replayed");
				json_t *o;
				ck_assert_msg(r->status == 201, "round %d: %d %s", round, r->status,
				              r->body);
				if (!replayed)
					originals++;
				else
					ck_assert_str_eq(replayed, "true");
				free(replayed);
				o = body_json(r);
				if (!first)
					first = xstrdup(jstr(o, "case_id"));
				ck_assert_str_eq(jstr(o, "case_id"), first);
				json_decref(o);
			}
			tu_http_free(r);
		}
		ck_assert_msg(originals == 1, "round %d: %d original 201s", round, originals);
		ck_assert_int_eq(sqln("SELECT count(*) FROM native.support_cases"
		                      " WHERE subject = 'race %d'",
		                      round),
		                 1);
		ck_assert_int_eq(sqln("SELECT count(*) FROM ods.idempotency_keys"
		                      " WHERE key = 'race-%d'",
		                      round),
		                 1);
		/* Settled: a late duplicate is a replay of the one row. */
		{
			struct tu_http_response r;
			json_t *o;
			tu_http(od->port, "POST", "/v1/cases", headers, body, &r);
			ck_assert_int_eq(r.status, 201);
			expect_header(&r, "Idempotent-Replayed", "true");
			o = body_json(&r);
			ck_assert_str_eq(jstr(o, "case_id"), first);
			json_decref(o);
			tu_http_free(&r);
		}
		free(first);
		free(headers);
		free(body);
	}
	/* Informational: how often the race produced 409s. */
	printf("idempotency race: %d conflicts in %d requests\n", conflicts, 3 * NCONCURRENT);
	free(auth);
}
END_TEST

/*
 * The in-flight case, made certain: a session holds a SHARE lock on
 * support_cases, so the first of 8 POSTs with one key takes the key's lock and
 * then waits at its INSERT; the 7 others must get 409 at once, not wait and
 * not write. Then the lock goes and the first one commits its 201.
 */
START_TEST(test_idempotency_in_flight_409)
{
	struct racer rc[NCONCURRENT];
	pthread_barrier_t go;
	PGconn *locker;
	char *auth, *headers;
	const char *body = "{\"customer_id\":56,\"subject\":\"in flight\"}";
	double deadline;
	int finished = 0, created = 0, conflicts = 0;
	long long waiting = 0;

	od = tu_odsd_start(db_uri, env_threaded);
	auth = auth_as("support_agent", CASE_SCOPES, "alice", NULL);
	headers = xasprintf("%sContent-Type: application/json\r\nIdempotency-Key: flight-1\r\n",
	                    auth);
	locker = tu_connect(db_uri);
	tu_exec(locker, "BEGIN");
	tu_exec(locker, "LOCK TABLE native.support_cases IN SHARE MODE");
	ck_assert(pthread_barrier_init(&go, NULL, NCONCURRENT) == 0);
	for (int i = 0; i < NCONCURRENT; i++) {
		rc[i] = (struct racer){
		        .go = &go, .port = od->port, .headers = headers, .body = body};
		atomic_init(&rc[i].done, false);
		ck_assert(pthread_create(&rc[i].th, NULL, race, &rc[i]) == 0);
	}
	deadline = tu_mono_ms() + 10000;
	while ((finished < NCONCURRENT - 1 || waiting < 1) && tu_mono_ms() < deadline) {
		finished = 0;
		for (int i = 0; i < NCONCURRENT; i++)
			finished += atomic_load(&rc[i].done);
		waiting =
		        sqln("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
		             " AND query LIKE '%%support_case_create%%'");
		if (finished < NCONCURRENT - 1 || waiting < 1)
			tu_tick();
	}
	tu_exec(locker, "COMMIT");
	PQfinish(locker);
	ck_assert_msg(finished == NCONCURRENT - 1 && waiting == 1,
	              "%d of %d answered while one waited (%lld waiting)", finished,
	              NCONCURRENT - 1, waiting);
	for (int i = 0; i < NCONCURRENT; i++)
		pthread_join(rc[i].th, NULL);
	pthread_barrier_destroy(&go);
	for (int i = 0; i < NCONCURRENT; i++) {
		if (rc[i].r.status == 409) {
			expect_problem(&rc[i].r, 409, "conflict", "Idempotency-Key");
			conflicts++;
		} else {
			ck_assert_msg(rc[i].r.status == 201, "%d %s", rc[i].r.status, rc[i].r.body);
			expect_no_header(&rc[i].r, "Idempotent-Replayed");
			created++;
		}
		tu_http_free(&rc[i].r);
	}
	ck_assert_int_eq(created, 1);
	ck_assert_int_eq(conflicts, NCONCURRENT - 1);
	ck_assert_int_eq(
	        sqln("SELECT count(*) FROM native.support_cases WHERE subject = 'in flight'"), 1);
	free(headers);
	free(auth);
}
END_TEST

/* ---- fraud ---- */

static char *new_fraud_case(const char *region, int priority, long long customer)
{
	return sqlv("INSERT INTO native.fraud_cases (customer_id, region, priority, reason,"
	            " created_by) VALUES (%lld, '%s', %d, 'test fixture', 'fixture')"
	            " RETURNING case_id",
	            customer, region, priority);
}

/* PATCH /v1/fraud/cases/{id}; returns the status, *etag gets the new ETag on 200. */
static int fraud_patch(const char *auth, const char *id, const char *if_match, const char *body,
                       char **etag)
{
	struct tu_http_response r;
	char *path = xasprintf("/v1/fraud/cases/%s", id);
	char *im = if_match ? xasprintf("If-Match: %s\r\n", if_match) : NULL;
	int st;

	req("PATCH", path, auth, im, body, &r);
	st = r.status;
	if (st == 200 && etag) {
		free(*etag);
		*etag = must_header(&r, "ETag");
	}
	if (st >= 400)
		expect_problem(&r, st,
		               st == 404   ? "not_found"
		               : st == 403 ? "forbidden"
		               : st == 412 ? "precondition_failed"
		                           : "unprocessable",
		               NULL);
	tu_http_free(&r);
	free(path);
	free(im);
	return st;
}

static char *fraud_state(const char *id)
{
	return sqlv("SELECT status || '/' || coalesce(assigned_to, '-') || '/' || priority || '/'"
	            " || (closed_at IS NOT NULL) FROM native.fraud_cases WHERE case_id = '%s'",
	            id);
}

static void expect_fraud_state(const char *id, const char *want)
{
	char *got = fraud_state(id);

	ck_assert_msg(strcmp(got, want) == 0, "fraud case %s: %s, want %s", id, got, want);
	free(got);
}

START_TEST(test_fraud_lifecycle)
{
	char *ann, *a, *b, *etag = NULL, *stale;

	start();
	a = new_fraud_case("north", 3, 11);
	b = new_fraud_case("north", 3, 12);
	ann = auth_as("fraud_analyst", FRAUD_SCOPES, "ann", "north");

	ck_assert_int_eq(fraud_patch(ann, a, NULL, "{\"assigned_to\":\"ann\"}", &etag), 200);
	expect_fraud_state(a, "open/ann/3/false");
	stale = xstrdup(etag);
	ck_assert_int_eq(fraud_patch(ann, a, etag, "{\"status\":\"in_review\"}", &etag), 200);
	expect_fraud_state(a, "in_review/ann/3/false");
	ck_assert_int_eq(fraud_patch(ann, a, stale, "{\"status\":\"closed\"}", NULL), 412);
	expect_fraud_state(a, "in_review/ann/3/false");

	/* Never backwards; a closed case never changes again. */
	ck_assert_int_eq(fraud_patch(ann, a, NULL, "{\"status\":\"open\"}", NULL), 422);
	expect_fraud_state(a, "in_review/ann/3/false");
	ck_assert_int_eq(fraud_patch(ann, a, NULL, "{\"status\":\"escalated\"}", NULL), 422);
	ck_assert_int_eq(fraud_patch(ann, a, NULL, "{\"region\":\"south\"}", NULL), 422);
	ck_assert_int_eq(fraud_patch(ann, a, NULL, "{\"version\":1}", NULL), 422);
	ck_assert_int_eq(fraud_patch(ann, a, etag, "{\"status\":\"closed\"}", &etag), 200);
	expect_fraud_state(a, "closed/ann/3/true");
	ck_assert_int_eq(fraud_patch(ann, a, NULL, "{\"status\":\"in_review\"}", NULL), 422);
	ck_assert_int_eq(fraud_patch(ann, a, NULL, "{\"assigned_to\":\"zed\"}", NULL), 422);
	expect_fraud_state(a, "closed/ann/3/true");

	/* open -> closed directly (dismissed). */
	ck_assert_int_eq(fraud_patch(ann, b, NULL, "{\"status\":\"closed\"}", NULL), 200);
	expect_fraud_state(b, "closed/-/3/true");

	{
		struct tu_http_response r;
		char *path = xasprintf("/v1/fraud/cases/%s", a);
		json_t *o;
		req("GET", path, ann, NULL, NULL, &r);
		ck_assert_int_eq(r.status, 200);
		expect_header(&r, "ETag", etag);
		o = body_json(&r);
		ck_assert_str_eq(jstr(o, "status"), "closed");
		ck_assert_str_eq(jstr(o, "assigned_to"), "ann");
		json_decref(o);
		tu_http_free(&r);
		free(path);
	}
	ck_assert_int_eq(audit_rows("fraud_cases", a, "update", "ann", "fraud_analyst"), 3);
	ck_assert_int_eq(audit_rows("fraud_cases", b, "update", "ann", "fraud_analyst"), 1);
	ck_assert_int_eq(sqln("SELECT count(*) FROM native.audit_log WHERE entity_id = '%s'"
	                      " AND before ->> 'status' = 'in_review'"
	                      " AND after ->> 'status' = 'closed' AND actor = 'ann'",
	                      a),
	                 1);
	free(stale);
	free(etag);
	free(a);
	free(b);
	free(ann);
}
END_TEST

/* POST a disposition; returns the status; *doc (if given) gets the body on 201. */
static int dispose(const char *auth, const char *id, const char *body, json_t **doc)
{
	struct tu_http_response r;
	char *path = xasprintf("/v1/fraud/cases/%s/dispositions", id);
	int st;

	req("POST", path, auth, NULL, body, &r);
	st = r.status;
	if (st == 201) {
		char *loc = must_header(&r, "Location");
		ck_assert_msg(strstr(loc, id) != NULL, "Location %s", loc);
		free(loc);
		if (doc)
			*doc = body_json(&r);
	} else if (st >= 400) {
		expect_problem(&r, st, st == 404 ? "not_found" : "unprocessable", NULL);
	}
	tu_http_free(&r);
	free(path);
	return st;
}

START_TEST(test_fraud_dispositions)
{
	char *ann, *b, *c, *d, *queue, *sql;
	json_t *o = NULL;

	start();
	b = new_fraud_case("north", 3, 13);
	c = new_fraud_case("north", 4, 14);
	d = new_fraud_case("north", 2, 15);
	ann = auth_as("fraud_analyst", FRAUD_SCOPES, "ann", "north");

	/* escalate keeps the case open and raises its priority (1 is the most urgent) */
	ck_assert_int_eq(dispose(ann, b, "{\"decision\":\"escalate\",\"note\":\"velocity\"}", &o),
	                 201);
	ck_assert_str_eq(jstr(o, "decision"), "escalate");
	ck_assert_str_eq(jstr(o, "created_by"), "ann");
	ck_assert_str_eq(jstr(json_object_get(o, "case"), "status"), "open");
	ck_assert_int_eq(jint(json_object_get(o, "case"), "priority"), 2);
	json_decref(o);
	expect_fraud_state(b, "open/-/2/false");

	/* hold closes it */
	ck_assert_int_eq(dispose(ann, b, "{\"decision\":\"hold\",\"note\":\"card frozen\"}", &o),
	                 201);
	ck_assert_str_eq(jstr(json_object_get(o, "case"), "status"), "closed");
	json_decref(o);
	expect_fraud_state(b, "closed/-/2/true");
	ck_assert_int_eq(dispose(ann, b, "{\"decision\":\"release\"}", NULL), 422);
	ck_assert_int_eq(
	        sqln("SELECT count(*) FROM native.fraud_dispositions WHERE case_id = '%s'", b), 2);

	/* release closes it too */
	ck_assert_int_eq(dispose(ann, c, "{\"decision\":\"release\"}", NULL), 201);
	expect_fraud_state(c, "closed/-/4/true");

	/* bad decisions write nothing */
	ck_assert_int_eq(dispose(ann, d, "{\"decision\":\"maybe\"}", NULL), 422);
	ck_assert_int_eq(dispose(ann, d, "{\"note\":\"no decision\"}", NULL), 422);
	ck_assert_int_eq(dispose(ann, d, "{\"decision\":\"hold\",\"case_id\":\"x\"}", NULL), 422);
	ck_assert_int_eq(
	        sqln("SELECT count(*) FROM native.fraud_dispositions WHERE case_id = '%s'", d), 0);
	expect_fraud_state(d, "open/-/2/false");
	expect_fails("POST", "/v1/fraud/cases/00000000-0000-4000-8000-000000000000/dispositions",
	             ann, "{\"decision\":\"hold\"}", 404, "not_found", NULL);

	/* the case shows its decisions; the queue drops the closed ones */
	{
		struct tu_http_response r;
		char *path = xasprintf("/v1/fraud/cases/%s", b);
		json_t *ds;
		req("GET", path, ann, NULL, NULL, &r);
		ck_assert_int_eq(r.status, 200);
		o = body_json(&r);
		ds = json_object_get(o, "dispositions");
		ck_assert_int_eq(json_array_size(ds), 2);
		ck_assert_str_eq(jstr(json_array_get(ds, 0), "decision"), "escalate");
		ck_assert_str_eq(jstr(json_array_get(ds, 1), "decision"), "hold");
		json_decref(o);
		tu_http_free(&r);
		free(path);
	}
	queue = walk("/v1/fraud/queue?limit=500", ann, "case_id", NULL);
	ck_assert_msg(!listed(queue, b) && !listed(queue, c) && listed(queue, d), "queue: %s",
	              queue);
	free(queue);

	sql = xasprintf("SELECT count(*) FROM native.audit_log WHERE entity = 'fraud_dispositions'"
	                " AND actor = 'ann' AND role = 'fraud_analyst' AND action = 'insert'"
	                " AND before IS NULL AND after ->> 'case_id' = '%s'",
	                b);
	ck_assert_int_eq(tu_long(admin, sql), 2);
	free(sql);
	ck_assert_int_eq(audit_rows("fraud_cases", b, "update", "ann", "fraud_analyst"), 2);
	free(b);
	free(c);
	free(d);
	free(ann);
}
END_TEST

START_TEST(test_fraud_region_rls)
{
	char *ann, *sam, *nobody, *agent, *n, *s, *q, *path;
	struct tu_http_response r;
	json_t *o, *it;
	size_t i;

	start();
	n = new_fraud_case("north", 3, 16);
	s = new_fraud_case("south", 3, 17);
	ann = auth_as("fraud_analyst", FRAUD_SCOPES, "ann", "north");
	sam = auth_as("fraud_analyst", FRAUD_SCOPES, "sam", "south");
	nobody = auth_as("fraud_analyst", FRAUD_SCOPES, "nora", NULL);
	agent = auth_as("support_agent", "customers:read cases:read fraud:read fraud:write",
	                "alice", NULL);

	/* The queue holds only the analyst's region. */
	req("GET", "/v1/fraud/queue?limit=500", ann, NULL, NULL, &r);
	ck_assert_int_eq(r.status, 200);
	o = body_json(&r);
	ck_assert_msg(json_array_size(json_object_get(o, "items")) > 0, "empty queue");
	json_array_foreach(json_object_get(o, "items"), i, it)
	{
		ck_assert_str_eq(jstr(it, "region"), "north");
	}
	json_decref(o);
	tu_http_free(&r);
	q = walk("/v1/fraud/queue?limit=2", ann, "case_id", NULL);
	ck_assert_msg(listed(q, n) && !listed(q, s), "north queue: %s", q);
	free(q);
	q = walk("/v1/fraud/queue?limit=2", sam, "case_id", NULL);
	ck_assert_msg(listed(q, s) && !listed(q, n), "south queue: %s", q);
	free(q);
	q = walk("/v1/fraud/queue", nobody, "case_id", NULL);
	ck_assert_msg(*q == '\0', "an analyst without a region sees: %s", q);
	free(q);

	/* Another region's case is a 404 to read and to write, and stays as it was. */
	path = xasprintf("/v1/fraud/cases/%s", s);
	expect_fails("GET", path, ann, NULL, 404, "not_found", NULL);
	ck_assert_int_eq(fraud_patch(ann, s, NULL, "{\"assigned_to\":\"ann\"}", NULL), 404);
	ck_assert_int_eq(fraud_patch(ann, s, "*", "{\"status\":\"closed\"}", NULL), 404);
	ck_assert_int_eq(dispose(ann, s, "{\"decision\":\"release\"}", NULL), 404);
	ck_assert_int_eq(fraud_patch(nobody, n, NULL, "{\"assigned_to\":\"nora\"}", NULL), 404);
	expect_fraud_state(s, "open/-/3/false");
	expect_fraud_state(n, "open/-/3/false");
	ck_assert_int_eq(
	        sqln("SELECT count(*) FROM native.fraud_dispositions WHERE case_id = '%s'", s), 0);

	/* A support agent: 403 from the database grant, fraud scopes or not. */
	expect_fails("GET", "/v1/fraud/queue", agent, NULL, 403, "forbidden", NULL);
	ck_assert_int_eq(fraud_patch(agent, n, NULL, "{\"assigned_to\":\"alice\"}", NULL), 403);
	expect_fraud_state(n, "open/-/3/false");

	/* The region's own analyst can. */
	ck_assert_int_eq(fraud_patch(sam, s, NULL, "{\"assigned_to\":\"sam\"}", NULL), 200);
	ck_assert_int_eq(dispose(sam, s, "{\"decision\":\"hold\"}", NULL), 201);
	expect_fraud_state(s, "closed/sam/3/true");
	ck_assert_int_eq(fraud_patch(ann, n, NULL, "{\"status\":\"in_review\"}", NULL), 200);
	expect_fraud_state(n, "in_review/-/3/false");

	ck_assert_int_eq(sqln("SELECT count(*) FROM native.audit_log WHERE actor IN ('ann', 'nora',"
	                      " 'alice') AND (entity_id = '%s' OR after ->> 'case_id' = '%s')",
	                      s, s),
	                 0);
	ck_assert_int_eq(audit_rows("fraud_cases", s, "update", "sam", "fraud_analyst"), 2);
	free(path);
	free(n);
	free(s);
	free(ann);
	free(sam);
	free(nobody);
	free(agent);
}
END_TEST

/* ---- retail and field ---- */

START_TEST(test_store_action)
{
	struct tu_http_response r;
	char *mo, *store, *sku, *path, *actions, *id, *loc;
	json_t *o, *a;
	long long before;

	start();
	mo = auth_as("ops_manager", "inventory:read inventory:write", "mo", NULL);
	store = sqlv(
	        "SELECT store_id FROM synced.inventory_position ORDER BY store_id, sku LIMIT 1");
	sku = sqlv("SELECT sku FROM synced.inventory_position ORDER BY store_id, sku LIMIT 1");
	path = xasprintf("/v1/inventory/%s/%s", store, sku);
	actions = xasprintf("%s/actions", path);

	req("POST", actions, mo, NULL,
	    "{\"action_type\":\"recount\",\"quantity\":12,\"note\":\"cycle count\","
	    "\"due_at\":\"2026-12-01T09:00:00Z\"}",
	    &r);
	ck_assert_msg(r.status == 201, "POST action: %d %s", r.status, r.body);
	loc = must_header(&r, "Location");
	ck_assert_msg(strncmp(loc, path, strlen(path)) == 0, "Location %s", loc);
	free(loc);
	o = body_json(&r);
	id = xstrdup(jstr(o, "action_id"));
	ck_assert_msg(is_uuid(id), "action_id %s", id);
	ck_assert_str_eq(jstr(o, "status"), "open");
	ck_assert_str_eq(jstr(o, "created_by"), "mo");
	json_decref(o);
	tu_http_free(&r);

	req("GET", path, mo, NULL, NULL, &r);
	ck_assert_int_eq(r.status, 200);
	o = body_json(&r);
	a = find_item(json_object_get(o, "open_actions"), "action_id", id);
	ck_assert_msg(a != NULL, "the action is not among open_actions: %s", r.body);
	ck_assert_str_eq(jstr(a, "action_type"), "recount");
	ck_assert_int_eq(jint(a, "quantity"), 12);
	ck_assert_str_eq(jstr(a, "due_at"), "2026-12-01T09:00:00Z");
	json_decref(o);
	tu_http_free(&r);

	before = sqln("SELECT count(*) FROM native.store_actions");
	expect_fails("POST", actions, mo, "{\"action_type\":\"teleport\"}", 422, "unprocessable",
	             "action_type");
	expect_fails("POST", actions, mo, "{\"action_type\":\"recount\",\"quantity\":-1}", 422,
	             "unprocessable", "quantity");
	expect_fails("POST", actions, mo, "{\"action_type\":\"recount\",\"due_at\":\"tomorrow\"}",
	             422, "unprocessable", "due_at");
	expect_fails("POST", "/v1/inventory/999999/NOPE/actions", mo,
	             "{\"action_type\":\"recount\"}", 404, "not_found", NULL);
	{
		char *agent =
		        auth_as("support_agent", "inventory:read inventory:write", "alice", NULL);
		expect_fails("POST", actions, agent, "{\"action_type\":\"recount\"}", 403,
		             "forbidden", NULL);
		free(agent);
	}
	ck_assert_int_eq(sqln("SELECT count(*) FROM native.store_actions"), before);
	ck_assert_int_eq(audit_rows("store_actions", id, "insert", "mo", "ops_manager"), 1);
	free(id);
	free(actions);
	free(path);
	free(store);
	free(sku);
	free(mo);
}
END_TEST

/* The technician's entry in GET /v1/work-orders/{id}; caller decrefs *doc. */
static json_t *technician_in(const char *auth, const char *wo, const char *tech, json_t **doc)
{
	struct tu_http_response r;
	char *path = xasprintf("/v1/work-orders/%s", wo);
	json_t *t = NULL, *it;
	size_t i;

	req("GET", path, auth, NULL, NULL, &r);
	ck_assert_msg(r.status == 200, "GET %s: %d %s", path, r.status, r.body);
	*doc = body_json(&r);
	json_array_foreach(json_object_get(*doc, "technicians"), i, it)
	{
		if (json_integer_value(json_object_get(it, "technician_id")) == atoll(tech))
			t = it;
	}
	ck_assert_msg(t != NULL, "technician %s missing in %s", tech, r.body);
	tu_http_free(&r);
	free(path);
	return t;
}

START_TEST(test_dispatch)
{
	struct tu_http_response r;
	char *dina, *wo, *tech, *assign, *updates, *body, *aid, *uid;
	json_t *o, *doc, *t, *a;
	long long before;

	start();
	dina = auth_as("field_dispatcher", "workorders:read workorders:write", "dina", NULL);
	wo = sqlv("SELECT w.work_order_id FROM synced.work_order_current w"
	          " CROSS JOIN synced.technician_profile t WHERE NOT EXISTS (SELECT FROM"
	          " native.dispatch_assignments a WHERE a.work_order_id = w.work_order_id"
	          " AND a.technician_id = t.technician_id) ORDER BY 1, t.technician_id LIMIT 1");
	tech = sqlv("SELECT t.technician_id FROM synced.technician_profile t WHERE NOT EXISTS"
	            " (SELECT FROM native.dispatch_assignments a WHERE a.work_order_id = %s"
	            " AND a.technician_id = t.technician_id) ORDER BY 1 LIMIT 1",
	            wo);
	assign = xasprintf("/v1/work-orders/%s/assignments", wo);
	updates = xasprintf("/v1/work-orders/%s/updates", wo);

	body = xasprintf("{\"technician_id\":%s,\"note\":\"bring a ladder\","
	                 "\"scheduled_for\":\"2026-12-02T08:30:00Z\"}",
	                 tech);
	req("POST", assign, dina, NULL, body, &r);
	ck_assert_msg(r.status == 201, "POST assignment: %d %s", r.status, r.body);
	o = body_json(&r);
	aid = xstrdup(jstr(o, "assignment_id"));
	ck_assert_msg(is_uuid(aid), "assignment_id %s", aid);
	ck_assert_str_eq(jstr(o, "status"), "assigned");
	ck_assert_str_eq(jstr(o, "created_by"), "dina");
	json_decref(o);
	tu_http_free(&r);

	t = technician_in(dina, wo, tech, &doc);
	a = find_item(json_object_get(t, "assignments"), "assignment_id", aid);
	ck_assert_msg(a != NULL, "assignment missing");
	ck_assert_str_eq(jstr(a, "status"), "assigned");
	ck_assert_str_eq(jstr(a, "note"), "bring a ladder");
	json_decref(doc);

	/* A second active assignment, unknown technicians and work orders: nothing written. */
	before = sqln("SELECT count(*) FROM native.dispatch_assignments");
	expect_fails("POST", assign, dina, body, 409, "conflict", NULL);
	expect_fails("POST", assign, dina, "{\"technician_id\":999999}", 422, "unprocessable",
	             "technician_id");
	expect_fails("POST", assign, dina, "{\"note\":\"who?\"}", 422, "unprocessable",
	             "technician_id");
	expect_fails("POST", "/v1/work-orders/999999/assignments", dina, body, 404, "not_found",
	             NULL);
	ck_assert_int_eq(sqln("SELECT count(*) FROM native.dispatch_assignments"), before);
	free(body);

	/* Completion: the update is shown and completes the assignment. */
	body = xasprintf("{\"technician_id\":%s,\"kind\":\"completed\",\"note\":\"replaced pump\"}",
	                 tech);
	req("POST", updates, dina, NULL, body, &r);
	ck_assert_msg(r.status == 201, "POST update: %d %s", r.status, r.body);
	o = body_json(&r);
	uid = xstrdup(jstr(o, "update_id"));
	ck_assert_str_eq(jstr(o, "kind"), "completed");
	a = find_item(json_object_get(o, "assignments"), "assignment_id", aid);
	ck_assert_msg(a && strcmp(jstr(a, "status"), "completed") == 0, "update body: %s", r.body);
	json_decref(o);
	tu_http_free(&r);
	free(body);
	expect_fails("POST", updates, dina, "{\"technician_id\":1,\"kind\":\"napping\"}", 422,
	             "unprocessable", "kind");

	t = technician_in(dina, wo, tech, &doc);
	a = find_item(json_object_get(t, "assignments"), "assignment_id", aid);
	ck_assert_msg(a && strcmp(jstr(a, "status"), "completed") == 0, "assignment not completed");
	a = find_item(json_object_get(t, "updates"), "update_id", uid);
	ck_assert_msg(a != NULL, "update missing");
	ck_assert_str_eq(jstr(a, "kind"), "completed");
	ck_assert_str_eq(jstr(a, "note"), "replaced pump");
	json_decref(doc);

	ck_assert_int_eq(
	        audit_rows("dispatch_assignments", aid, "insert", "dina", "field_dispatcher"), 1);
	ck_assert_int_eq(sqln("SELECT count(*) FROM native.audit_log WHERE entity ="
	                      " 'dispatch_assignments' AND entity_id = '%s' AND action = 'update'"
	                      " AND actor = 'dina' AND before ->> 'status' = 'assigned'"
	                      " AND after ->> 'status' = 'completed'",
	                      aid),
	                 1);
	ck_assert_int_eq(
	        audit_rows("work_order_updates", uid, "insert", "dina", "field_dispatcher"), 1);
	free(uid);
	free(aid);
	free(assign);
	free(updates);
	free(wo);
	free(tech);
	free(dina);
}
END_TEST

/* ---- Debezium ingest ---- */

/* "Authorization: Bearer: <jwt>" (Debezium Server's form, with the colon). */
static char *debezium_auth(const char *role, const char *scope)
{
	char *h = auth_as(role, scope, "debezium", NULL);
	char *sp = strstr(h, "Bearer ");
	char *out = xasprintf("Authorization: Bearer: %s", sp + 7);

	free(h);
	return out;
}

/* A change event of customer_current (PostgreSQL connector shape). */
static char *cc_event(char op, long long id, long long lsn, long long ts_ms, const char *name)
{
	char *row = xasprintf("{\"customer_id\":%lld,\"email\":\"c%lld@example.com\","
	                      "\"full_name\":\"%s\",\"tier\":\"gold\",\"segment\":\"retail\","
	                      "\"status\":\"active\",\"lifetime_value\":12.5,"
	                      "\"_synced_at\":\"1999-01-01T00:00:00Z\"}",
	                      id, id, name ? name : "");
	char *key = xasprintf("{\"customer_id\":%lld}", id);
	char *ev = xasprintf("{\"before\":%s,\"after\":%s,\"source\":{\"version\":\"2.7.0.Final\","
	                     "\"connector\":\"postgresql\",\"name\":\"crm\",\"ts_ms\":%lld,"
	                     "\"db\":\"crm\",\"schema\":\"public\",\"table\":\"customer_current\","
	                     "\"lsn\":%lld},\"op\":\"%c\",\"ts_ms\":%lld,\"transaction\":null}",
	                     op == 'd' ? key : "null", op == 'd' ? "null" : row, ts_ms, lsn, op,
	                     ts_ms + 7);

	free(row);
	free(key);
	return ev;
}

/* POST /v1/ingest/debezium; must answer 200; returns the body (caller decrefs). */
static json_t *ingest(const char *auth, const char *body)
{
	struct tu_http_response r;
	json_t *o;

	req("POST", "/v1/ingest/debezium", auth, NULL, body, &r);
	ck_assert_msg(r.status == 200, "ingest: %d %s", r.status, r.body);
	o = body_json(&r);
	tu_http_free(&r);
	return o;
}

static void expect_counts(const json_t *o, long long received, long long applied, long long skipped,
                          long long dead)
{
	char *s = json_dumps(o, JSON_COMPACT);

	ck_assert_msg(jint(o, "received") == received && jint(o, "applied") == applied &&
	                      jint(o, "skipped") == skipped && jint(o, "dead_lettered") == dead,
	              "counts %s, want received %lld applied %lld skipped %lld dead %lld", s,
	              received, applied, skipped, dead);
	free(s);
}

#define LSN 5000000000LL
#define TS  1767225600000LL /* 2026-01-01T00:00:00Z */

START_TEST(test_ingest_events)
{
	char *sync, *e1, *e2, *e3, *e4, *e5, *batch, *wrapped;
	json_t *o;

	start();
	sync = debezium_auth("ods_sync", "ingest:write");

	/* One event: applied and committed before the answer. */
	e1 = cc_event('c', 100001, LSN + 1, TS + 1000, "New Customer");
	o = ingest(sync, e1);
	expect_counts(o, 1, 1, 0, 0);
	json_decref(o);
	expect_sql("New Customer/5000000001/1767225601000/false",
	           "SELECT full_name || '/' || _source_position || '/' ||"
	           " (extract(epoch FROM _source_committed_at) * 1000)::bigint || '/' ||"
	           " (_synced_at < '2000-01-01') FROM synced.customer_current"
	           " WHERE customer_id = 100001");

	/* An array batch: create, update, create then delete. */
	e2 = cc_event('c', 100002, LSN + 2, TS + 2000, "Second");
	e3 = cc_event('u', 100001, LSN + 3, TS + 3000, "Renamed");
	e4 = cc_event('c', 100003, LSN + 4, TS + 4000, "Short Lived");
	e5 = cc_event('d', 100003, LSN + 5, TS + 5000, NULL);
	batch = xasprintf("[%s,%s,%s,%s]", e2, e3, e4, e5);
	o = ingest(sync, batch);
	expect_counts(o, 4, 4, 0, 0);
	json_decref(o);
	expect_sql("100001:Renamed,100002:Second",
	           "SELECT string_agg(customer_id || ':' || full_name, ',' ORDER BY customer_id)"
	           " FROM synced.customer_current WHERE customer_id > 100000");

	/* At-least-once in, exactly-once effect: the same batch again changes nothing,
	 * and an older event of a deleted key does not bring it back. */
	o = ingest(sync, batch);
	expect_counts(o, 4, 0, 4, 0);
	json_decref(o);
	o = ingest(sync, e4);
	expect_counts(o, 1, 0, 1, 0);
	json_decref(o);
	expect_sql("100001:Renamed,100002:Second",
	           "SELECT string_agg(customer_id || ':' || full_name, ',' ORDER BY customer_id)"
	           " FROM synced.customer_current WHERE customer_id > 100000");

	{
		char *reader = auth_as("support_agent", CASE_SCOPES, "alice", NULL);
		ck_assert_int_eq(status_of("GET", "/v1/customers/100001", reader, NULL), 200);
		ck_assert_int_eq(status_of("GET", "/v1/customers/100003", reader, NULL), 404);
		free(reader);
	}

	/* The schema/payload wrapper (schemas.enable=true). */
	free(e5);
	e5 = cc_event('u', 100002, LSN + 6, TS + 6000, "Wrapped");
	wrapped = xasprintf("{\"schema\":{\"type\":\"struct\",\"name\":\"crm.public.customer_"
	                    "current.Envelope\"},\"payload\":%s}",
	                    e5);
	o = ingest(sync, wrapped);
	expect_counts(o, 1, 1, 0, 0);
	json_decref(o);
	expect_sql("Wrapped", "SELECT full_name FROM synced.customer_current"
	                      " WHERE customer_id = 100002");
	/* Tombstones and heartbeats are ignored. */
	o = ingest(sync, "[null,{\"ts_ms\":1767225600000},{\"schema\":{},\"payload\":null}]");
	ck_assert_int_eq(jint(o, "ignored"), 3);
	ck_assert_int_eq(jint(o, "applied"), 0);
	json_decref(o);

	/* Plain "Bearer <token>" works as well. */
	{
		char *plain = auth_as("ods_sync", "ingest:write", "debezium", NULL);
		char *e6 = cc_event('u', 100002, LSN + 7, TS + 7000, "Plain Bearer");
		o = ingest(plain, e6);
		expect_counts(o, 1, 1, 0, 0);
		json_decref(o);
		free(e6);
		free(plain);
	}
	free(wrapped);
	free(batch);
	free(e1);
	free(e2);
	free(e3);
	free(e4);
	free(e5);
	free(sync);
}
END_TEST

START_TEST(test_ingest_rejects)
{
	struct tu_http_response r;
	char *sync, *good, *body, *h;
	long long dead;

	start();
	sync = debezium_auth("ods_sync", "ingest:write");
	good = cc_event('c', 100010, LSN + 10, TS + 10000, "Should Not Land");
	dead = sqln("SELECT count(*) FROM ods.ingest_dead_letters");

	/* Malformed requests: 400 problem, nothing applied. */
	expect_fails("POST", "/v1/ingest/debezium", sync, "{\"op\":", 400, "malformed_json", NULL);
	/* A JSON scalar: odsd's parser or the function refuses it, 400 either way. */
	req("POST", "/v1/ingest/debezium", sync, NULL, "42", &r);
	expect_problem(&r, 400, strstr(r.body, "malformed_json") ? "malformed_json" : "bad_request",
	               NULL);
	tu_http_free(&r);
	body = xasprintf("[%s,{\"op\":\"c\",\"source\":{\"table\":\"customer_current\"}}]", good);
	expect_fails("POST", "/v1/ingest/debezium", sync, body, 400, "bad_request", "events[1]");
	free(body);
	body = xasprintf("[%s,{\"after\":{\"customer_id\":1}}]", good);
	expect_fails("POST", "/v1/ingest/debezium", sync, body, 400, "bad_request", "events[1]");
	free(body);
	body = xasprintf("[%s,17]", good);
	expect_fails("POST", "/v1/ingest/debezium", sync, body, 400, "bad_request", "events[1]");
	free(body);
	h = xasprintf("%sContent-Type: text/plain\r\n", sync);
	tu_http(od->port, "POST", "/v1/ingest/debezium", h, good, &r);
	expect_problem(&r, 415, "unsupported_media_type", NULL);
	tu_http_free(&r);
	free(h);
	ck_assert_int_eq(sqln("SELECT count(*) FROM synced.customer_current"
	                      " WHERE customer_id = 100010"),
	                 0);
	ck_assert_int_eq(sqln("SELECT count(*) FROM ods.ingest_dead_letters"), dead);

	/* Only ods_sync with ingest:write. */
	{
		char *agent = debezium_auth("support_agent", "ingest:write");
		char *noscope = debezium_auth("ods_sync", "customers:read");
		expect_fails("POST", "/v1/ingest/debezium", agent, good, 403, "forbidden", NULL);
		expect_fails("POST", "/v1/ingest/debezium", noscope, good, 403,
		             "insufficient_scope", NULL);
		expect_fails("POST", "/v1/ingest/debezium", NULL, good, 401, "unauthorized", NULL);
		free(agent);
		free(noscope);
	}
	ck_assert_int_eq(sqln("SELECT count(*) FROM synced.customer_current"
	                      " WHERE customer_id = 100010"),
	                 0);
	free(good);
	free(sync);
}
END_TEST

/* The value of a metric line "name value" in /metrics, or -1 when absent. */
static long long metric(const char *name)
{
	struct tu_http_response r;
	long long v = -1;
	char *pat = xasprintf("\n%s ", name);
	const char *p;

	req("GET", "/metrics", NULL, NULL, NULL, &r);
	ck_assert_int_eq(r.status, 200);
	p = strstr(r.body, pat);
	if (p)
		v = atoll(p + strlen(pat));
	tu_http_free(&r);
	free(pat);
	return v;
}

START_TEST(test_ingest_dead_letters)
{
	char *sync, *good, *body, *ok1, *ok2, *poison;
	const char *unmapped = "{\"before\":null,\"after\":{\"id\":1,\"x\":\"y\"},\"source\":{"
	                       "\"schema\":\"public\",\"table\":\"no_such_table\",\"lsn\":77,"
	                       "\"ts_ms\":1767225600000},\"op\":\"c\",\"ts_ms\":1767225600001}";
	long long m1, m2, m3;
	json_t *o;

	start();
	sync = debezium_auth("ods_sync", "ingest:write");
	good = cc_event('c', 100020, LSN + 20, TS + 20000, "Beside A Poison Event");
	body = xasprintf("[%s,%s]", unmapped, good);

	/* The unmapped event is dead-lettered and counted; the rest applies. */
	o = ingest(sync, body);
	expect_counts(o, 2, 1, 0, 1);
	json_decref(o);
	ck_assert_int_eq(sqln("SELECT count(*) FROM synced.customer_current"
	                      " WHERE customer_id = 100020"),
	                 1);
	ck_assert_int_eq(sqln("SELECT count(*) FROM ods.ingest_dead_letters WHERE table_ref ="
	                      " 'public.no_such_table' AND table_name IS NULL"
	                      " AND event -> 'after' ->> 'x' = 'y'"),
	                 1);
	m1 = metric("ods_ingest_dead_letters_total");
	free(body);
	body = xasprintf("[%s,%s]", unmapped, unmapped);
	o = ingest(sync, body);
	expect_counts(o, 2, 0, 0, 2);
	json_decref(o);
	m2 = metric("ods_ingest_dead_letters_total");
	free(body);

	/* A row that breaks a CHECK (an email without @) is dead-lettered alone. */
	ok1 = cc_event('c', 100021, LSN + 21, TS + 21000, "Before Poison");
	poison = cc_event('c', 100022, LSN + 22, TS + 22000, "Poison");
	ok2 = cc_event('c', 100023, LSN + 23, TS + 23000, "After Poison");
	{
		char *p = strstr(poison, "@example.com");
		p[0] = '_';
	}
	body = xasprintf("[%s,%s,%s]", ok1, poison, ok2);
	o = ingest(sync, body);
	expect_counts(o, 3, 2, 0, 1);
	json_decref(o);
	expect_sql("100021,100023", "SELECT string_agg(customer_id::text, ',' ORDER BY customer_id)"
	                            " FROM synced.customer_current WHERE customer_id"
	                            " BETWEEN 100021 AND 100023");
	ck_assert_int_eq(sqln("SELECT count(*) FROM ods.ingest_dead_letters WHERE table_name ="
	                      " 'customer_current' AND sqlstate = '23514'"
	                      " AND event -> 'after' ->> 'customer_id' = '100022'"),
	                 1);
	m3 = metric("ods_ingest_dead_letters_total");
	ck_assert_int_eq(sqln("SELECT count(*) FROM ods.ingest_dead_letters"), 4);

	/* /metrics counts them (a count_ingest_dead_letters result column). */
	ck_assert_msg(m1 == 1 && m2 == 3 && m3 == 4,
	              "ods_ingest_dead_letters_total after each request: %lld, %lld, %lld;"
	              " want 1, 3, 4 (-1: absent from /metrics)",
	              m1, m2, m3);
	free(body);
	free(ok1);
	free(ok2);
	free(poison);
	free(good);
	free(sync);
}
END_TEST

static char *iso8601(time_t t)
{
	char buf[32];
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	return xstrdup(buf);
}

START_TEST(test_ingest_freshness)
{
	struct tu_http_response r;
	char *sync, *reader, *ev, *want, *fresh = NULL;
	time_t src = time(NULL) - 2;
	double t0;
	bool seen = false;
	json_t *o;

	/* customer_current an hour behind before odsd starts. */
	sqlx("UPDATE ods.synced_tables SET as_of = now() - interval '1 hour'"
	     " WHERE table_name = 'customer_current'");
	start();
	sync = debezium_auth("ods_sync", "ingest:write");
	reader = auth_as("support_agent", CASE_SCOPES, "alice", NULL);
	want = iso8601(src);

	ev = cc_event('u', 5, LSN + 30, (long long)src * 1000, "Fresh Name");
	o = ingest(sync, ev);
	expect_counts(o, 1, 1, 0, 0);
	json_decref(o);
	t0 = tu_mono_ms();
	{
		char *sql = xasprintf("SELECT to_char(as_of AT TIME ZONE 'UTC',"
		                      " 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM ods.synced_tables"
		                      " WHERE table_name = 'customer_current'");
		expect_sql(want, sql);
		free(sql);
	}
	/* The header follows the NOTIFY: bounded polling, 1 s. */
	while (!seen && tu_mono_ms() - t0 < FRESH_MS) {
		char *needle = xasprintf("synced.customer_current;as-of=\"%s\"", want);
		req("GET", "/v1/customers/5", reader, NULL, NULL, &r);
		ck_assert_int_eq(r.status, 200);
		free(fresh);
		fresh = must_header(&r, "ODS-Freshness");
		seen = strstr(fresh, needle) != NULL;
		if (seen) {
			o = body_json(&r);
			ck_assert_str_eq(jstr(json_object_get(o, "profile"), "full_name"),
			                 "Fresh Name");
			json_decref(o);
		}
		tu_http_free(&r);
		free(needle);
		if (!seen)
			tu_tick();
	}
	ck_assert_msg(seen, "ODS-Freshness still \"%s\" %.0f ms after the ingest, want as-of %s",
	              fresh, tu_mono_ms() - t0, want);
	free(fresh);
	free(ev);
	free(want);
	free(reader);
	free(sync);
}
END_TEST

static TCase *tcase(Suite *s, const char *name)
{
	TCase *tc = tcase_create(name);

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 180);
	suite_add_tcase(s, tc);
	return tc;
}

int main(void)
{
	Suite *s = suite_create("http_writes");
	TCase *tc;
	int rc;

#ifdef PR_SET_CHILD_SUBREAPER
	prctl(PR_SET_CHILD_SUBREAPER, 1);
#endif
	tc = tcase(s, "cases");
	tcase_add_test(tc, test_case_create_and_get);
	tcase_add_test(tc, test_case_list_filters_and_walk);
	tcase_add_test(tc, test_case_patch_if_match);
	tcase_add_test(tc, test_case_concurrent_if_match);
	tcase_add_test(tc, test_case_soft_delete);
	tcase_add_test(tc, test_case_notes);
	tcase_add_test(tc, test_case_body_rules);

	tc = tcase(s, "idempotency");
	tcase_add_test(tc, test_idempotency_replay);
	tcase_add_test(tc, test_idempotency_concurrent);
	tcase_add_test(tc, test_idempotency_in_flight_409);

	tc = tcase(s, "fraud");
	tcase_add_test(tc, test_fraud_lifecycle);
	tcase_add_test(tc, test_fraud_dispositions);
	tcase_add_test(tc, test_fraud_region_rls);

	tc = tcase(s, "retail_field");
	tcase_add_test(tc, test_store_action);
	tcase_add_test(tc, test_dispatch);

	tc = tcase(s, "ingest");
	tcase_add_test(tc, test_ingest_events);
	tcase_add_test(tc, test_ingest_rejects);
	tcase_add_test(tc, test_ingest_dead_letters);
	tcase_add_test(tc, test_ingest_freshness);

	rc = tu_run_suite(s);
	tu_kill_orphans();
	return rc;
}
