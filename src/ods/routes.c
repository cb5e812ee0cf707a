/*
 * routes: loads ods.routes as one JSON document (catalog rows with their
 * functions' input arguments), parses it with jansson into a route_table,
 * and matches request paths against the templates. See routes.h.
 */
#include "autoconfig.h"

#include "ods/routes.h"

#include "core/log.h"
#include "db/db.h"

#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Input arguments only: RETURNS TABLE columns are OUT ('t') arguments. */
static const char catalog_sql[] =
        "SELECT coalesce(json_agg(json_build_object("
        "  'method', r.method, 'path', r.path, 'function', r.function, 'scope', r.scope,"
        "  'reads', r.reads, 'paged', r.paged, 'found', p.oid IS NOT NULL,"
        "  'nargs', coalesce(p.pronargs, 0),"
        "  'argnames', (SELECT coalesce(json_agg(a.n ORDER BY a.o), '[]')"
        "                 FROM unnest(p.proargnames, coalesce(p.proargmodes,"
        "                      array_fill('i'::\"char\","
        "                                 ARRAY[coalesce(cardinality(p.proargnames), 0)])))"
        "                      WITH ORDINALITY AS a(n, m, o) WHERE a.m IN ('i', 'b', 'v')),"
        "  'argtypes', (SELECT coalesce(json_agg(format_type(t.t, NULL) ORDER BY t.o), '[]')"
        "                 FROM unnest(p.proargtypes::oid[]) WITH ORDINALITY AS t(t, o)),"
        "  'outnames', (SELECT coalesce(json_agg(a.n), '[]')"
        "                 FROM unnest(p.proargnames, p.proargmodes) AS a(n, m)"
        "                WHERE a.m IN ('o', 'b', 't'))"
        ") ORDER BY r.path, r.method), '[]')"
        "  FROM ods.routes r LEFT JOIN pg_proc p ON p.oid = to_regproc(r.function)";

static unsigned next_generation = 1;
static pthread_mutex_t generation_lock = PTHREAD_MUTEX_INITIALIZER;

static void route_clear(struct route *r)
{
	free(r->method);
	free(r->path);
	free(r->function);
	free(r->scope);
	for (int i = 0; i < r->nreads; i++)
		free(r->reads[i]);
	free(r->reads);
	for (int i = 0; i < r->nseg; i++)
		free(r->seg[i]);
	free(r->seg);
	for (int i = 0; i < r->nargs; i++) {
		free(r->args[i].name);
		free(r->args[i].type);
	}
	free(r->args);
	free(r->sql);
	free(r->sql_idem);
	free(r->label);
}

static void table_free(struct route_table *t)
{
	if (!t)
		return;
	for (int i = 0; i < t->n; i++)
		route_clear(&t->r[i]);
	free(t->r);
	free(t);
}

static const char *jstr(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : "";
}

/* "/v1/a/{x}" -> {"v1", "a", "{x}"} */
static bool split_template(struct route *r)
{
	char *copy = xstrdup(r->path), *save = NULL;

	r->seg = xcalloc(ROUTE_MAX_SEGMENTS, sizeof(char *));
	for (char *s = strtok_r(copy, "/", &save); s; s = strtok_r(NULL, "/", &save)) {
		if (r->nseg == ROUTE_MAX_SEGMENTS) {
			free(copy);
			return false;
		}
		r->seg[r->nseg++] = xstrdup(s);
	}
	free(copy);
	return true;
}

static bool is_param_seg(const char *s)
{
	return s[0] == '{';
}

static bool template_has_param(const struct route *r, const char *name)
{
	for (int i = 0; i < r->nseg; i++)
		if (is_param_seg(r->seg[i]) && strncmp(r->seg[i] + 1, name, strlen(name)) == 0 &&
		    r->seg[i][strlen(name) + 1] == '}')
			return true;
	return false;
}

/* Whether the function's result columns include body, status, location, etag. */
static bool returns_response(json_t *outnames)
{
	static const char *const need[] = {"body", "status", "location", "etag"};
	size_t found = 0;

	for (size_t i = 0; i < ODS_ARRAY_LEN(need); i++)
		for (size_t j = 0; j < json_array_size(outnames); j++)
			if (strcmp(json_string_value(json_array_get(outnames, j)) ?: "", need[i]) ==
			    0) {
				found++;
				break;
			}
	return found == ODS_ARRAY_LEN(need);
}

/* Fills r from one catalog object; false (with why) when the route is unusable. */
static bool route_build(struct route *r, json_t *o, char *why, size_t whylen)
{
	json_t *names = json_object_get(o, "argnames"), *types = json_object_get(o, "argtypes");
	json_t *reads = json_object_get(o, "reads");
	struct strbuf sql;
	size_t i;

	r->method = xstrdup(jstr(o, "method"));
	r->path = xstrdup(jstr(o, "path"));
	r->function = xstrdup(jstr(o, "function"));
	r->scope = json_is_string(json_object_get(o, "scope")) ? xstrdup(jstr(o, "scope")) : NULL;
	r->paged = json_is_true(json_object_get(o, "paged"));
	r->label = xasprintf("%s %s", r->method, r->path);
	r->nreads = (int)json_array_size(reads);
	r->reads = xcalloc((size_t)r->nreads + 1, sizeof(char *));
	for (i = 0; i < json_array_size(reads); i++)
		r->reads[i] = xstrdup(json_string_value(json_array_get(reads, i)) ?: "");
	if (!json_is_true(json_object_get(o, "found")))
		return errf(why, whylen, "function %s is missing or overloaded", r->function);
	if (json_integer_value(json_object_get(o, "nargs")) != (json_int_t)json_array_size(names) ||
	    json_array_size(names) != json_array_size(types))
		return errf(why, whylen, "function %s has unnamed arguments", r->function);
	if (!split_template(r))
		return errf(why, whylen, "more than %d path segments", ROUTE_MAX_SEGMENTS);

	r->nargs = (int)json_array_size(names);
	r->args = xcalloc((size_t)r->nargs + 1, sizeof(*r->args));
	strbuf_init(&sql);
	strbuf_addf(&sql, "SELECT * FROM %s(", r->function);
	for (int a = 0; a < r->nargs; a++) {
		struct route_arg *arg = &r->args[a];
		arg->name = xstrdup(json_string_value(json_array_get(names, (size_t)a)) ?: "");
		arg->type = xstrdup(json_string_value(json_array_get(types, (size_t)a)) ?: "text");
		if (strcmp(arg->name, "p_body") == 0)
			arg->source = ARG_BODY;
		else if (strcmp(arg->name, "p_if_match") == 0)
			arg->source = ARG_IF_MATCH;
		else
			arg->source = template_has_param(r, arg->name) ? ARG_PATH : ARG_QUERY;
		strbuf_addf(&sql, "%s\"%s\" => $%d::%s", a ? ", " : "", arg->name, a + 1,
		            arg->type);
	}
	strbuf_adds(&sql, ")");
	r->sql = strbuf_detach(&sql);
	if (strcmp(r->method, "POST") == 0 && returns_response(json_object_get(o, "outnames")))
		r->sql_idem = xasprintf(
		        "WITH r AS (%s), s AS (SELECT ods.idempotency_store($%d, $%d, r.status, "
		        "r.location, r.etag, r.body::text) FROM r) SELECT r.* FROM r, s",
		        r->sql, r->nargs + 1, r->nargs + 2);
	for (int s = 0; s < r->nseg; s++) {
		if (!is_param_seg(r->seg[s]))
			continue;
		bool bound = false;
		for (int a = 0; a < r->nargs && !bound; a++)
			bound = r->args[a].source == ARG_PATH &&
			        strncmp(r->seg[s] + 1, r->args[a].name, strlen(r->args[a].name)) ==
			                0;
		if (!bound)
			return errf(why, whylen, "path parameter %s has no function argument",
			            r->seg[s]);
	}
	return true;
}

struct route_table *routes_load(PGconn *conn, char *err, size_t errlen)
{
	PGresult *res = PQexec(conn, catalog_sql);
	struct route_table *t;
	json_error_t jerr;
	json_t *doc;

	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
		db_fail(conn, res, err, errlen);
		PQclear(res);
		return NULL;
	}
	doc = json_loads(PQgetvalue(res, 0, 0), 0, &jerr);
	PQclear(res);
	if (!json_is_array(doc)) {
		json_decref(doc);
		errf(err, errlen, "route catalog: unreadable JSON (%s)", jerr.text);
		return NULL;
	}
	t = xcalloc(1, sizeof(*t));
	t->refs = 1;
	t->r = xcalloc(json_array_size(doc) + 1, sizeof(*t->r));
	for (size_t i = 0; i < json_array_size(doc); i++) {
		char why[ODS_ERRLEN];
		struct route *r = &t->r[t->n];
		if (route_build(r, json_array_get(doc, i), why, sizeof(why))) {
			r->index = t->n++;
		} else {
			log_warn("route %s %s skipped: %s", r->method, r->path, why);
			route_clear(r);
			memset(r, 0, sizeof(*r));
		}
	}
	json_decref(doc);
	pthread_mutex_lock(&generation_lock);
	t->generation = next_generation++;
	pthread_mutex_unlock(&generation_lock);
	return t;
}

struct routes {
	pthread_mutex_t lock;
	struct route_table *cur;
};

struct routes *routes_new(void)
{
	struct routes *rs = xcalloc(1, sizeof(*rs));

	pthread_mutex_init(&rs->lock, NULL);
	return rs;
}

void routes_free(struct routes *rs)
{
	if (!rs)
		return;
	routes_put(rs, rs->cur);
	pthread_mutex_destroy(&rs->lock);
	free(rs);
}

void routes_swap(struct routes *rs, struct route_table *t)
{
	struct route_table *old;

	pthread_mutex_lock(&rs->lock);
	old = rs->cur;
	rs->cur = t;
	pthread_mutex_unlock(&rs->lock);
	routes_put(rs, old);
}

struct route_table *routes_get(struct routes *rs)
{
	struct route_table *t;

	pthread_mutex_lock(&rs->lock);
	t = rs->cur;
	if (t)
		t->refs++;
	pthread_mutex_unlock(&rs->lock);
	return t;
}

void routes_put(struct routes *rs, struct route_table *t)
{
	bool last;

	if (!t)
		return;
	pthread_mutex_lock(&rs->lock);
	last = --t->refs == 0;
	pthread_mutex_unlock(&rs->lock);
	if (last)
		table_free(t);
}

/* Whether the path's segments fit r's template (literal segments equal). */
static bool fits(const struct route *r, char *const *segs, int n)
{
	if (r->nseg != n)
		return false;
	for (int i = 0; i < n; i++)
		if (!is_param_seg(r->seg[i]) && strcmp(segs[i], r->seg[i]) != 0)
			return false;
	return true;
}

static void add_allowed(struct route_match *m, const char *method)
{
	size_t n = strlen(m->allow);

	snprintf(m->allow + n, sizeof(m->allow) - n, "%s%s%s", n ? ", " : "", method,
	         strcmp(method, "GET") == 0 ? ", HEAD" : "");
}

enum route_match_result routes_match(const struct route_table *t, const char *method,
                                     const char *path, struct route_match *m)
{
	const char *want = strcmp(method, "HEAD") == 0 ? "GET" : method;
	char *segs[ROUTE_MAX_SEGMENTS], *save = NULL;
	size_t len = strlen(path);
	bool other = false;
	int n = 0;

	m->route = NULL;
	m->nvalues = 0;
	m->allow[0] = '\0';
	/* A trailing slash or an empty segment is not the same resource. */
	if (len >= sizeof(m->path_copy) || strstr(path, "//") || (len > 1 && path[len - 1] == '/'))
		return ROUTE_NOT_FOUND;
	/* Split once; every template is compared against the same segments. */
	memcpy(m->path_copy, path, len + 1);
	for (char *p = strtok_r(m->path_copy, "/", &save); p; p = strtok_r(NULL, "/", &save)) {
		if (n == ROUTE_MAX_SEGMENTS)
			return ROUTE_NOT_FOUND;
		segs[n++] = p;
	}
	for (int i = 0; t && i < t->n; i++) {
		const struct route *r = &t->r[i];
		if (!fits(r, segs, n))
			continue;
		if (strcmp(r->method, want) != 0) {
			add_allowed(m, r->method);
			other = true;
			continue;
		}
		for (int s = 0; s < n; s++)
			if (is_param_seg(r->seg[s]))
				m->values[m->nvalues++] = segs[s];
		m->route = r;
		return ROUTE_FOUND;
	}
	return other ? ROUTE_METHOD_NOT_ALLOWED : ROUTE_NOT_FOUND;
}
