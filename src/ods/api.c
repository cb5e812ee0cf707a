/*
 * api: the request pipeline (see api.h). One function per step; every
 * failure ends in problem(), the single place a client-visible error is
 * made. Per-request state (settings, route table, identity) hangs on the
 * request and is released in its completion callback.
 */
#include "autoconfig.h"

#include "ods/api.h"
#include "ods/idempotency.h"

#include "core/log.h"
#include "db/call.h"
#include "db/sqlstate.h"
#include "http/response.h"
#include "ods/ops.h"
#include "ods/params.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

struct api_state {
	struct app *app;
	struct app_settings *settings;
	struct route_table *routes;
	struct auth_identity *ident;
};

static void state_free(void *p)
{
	struct api_state *st = p;

	if (st->ident)
		auth_identity_release(st->ident);
	routes_put(st->app->routes, st->routes);
	app_settings_put(st->app, st->settings);
	free(st);
}

static struct MHD_Response *finish(struct request *req, struct api_state *st,
                                   struct MHD_Response *r, int status, int *out)
{
	response_finish(req, r, st->settings->cfg.cors_origins);
	*out = status;
	return r;
}

static struct MHD_Response *problem(struct request *req, struct api_state *st, int status,
                                    const char *code, const char *title, const char *detail,
                                    int *out)
{
	return finish(req, st, response_problem(req, status, code, title, detail), status, out);
}

static struct MHD_Response *unauthorized(struct request *req, struct api_state *st, bool had_token,
                                         const char *why, int *out)
{
	struct MHD_Response *r = response_problem(req, 401, "unauthorized", "Unauthorized", why);
	char safe[256];
	char *h;

	/* The reason goes into a quoted-string: keep it plain. */
	snprintf(safe, sizeof(safe), "%s", why);
	for (char *p = safe; *p; p++)
		if (*p == '\\' || *p == '"' || (unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
			*p = '\'';
	h = had_token ? xasprintf("Bearer realm=\"ods\", error=\"invalid_token\", "
	                          "error_description=\"%s\"",
	                          safe)
	              : xstrdup("Bearer realm=\"ods\"");
	MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, h);
	free(h);
	return finish(req, st, r, 401, out);
}

/* Browser preflight: allowed origins get the methods and headers we accept. */
static struct MHD_Response *preflight(struct request *req, struct api_state *st, int *out)
{
	struct MHD_Response *r = response_empty();

	MHD_add_response_header(r, "Access-Control-Allow-Methods",
	                        "GET, HEAD, POST, PATCH, PUT, DELETE, OPTIONS");
	MHD_add_response_header(r, "Access-Control-Allow-Headers",
	                        "Authorization, Content-Type, If-Match, If-None-Match, "
	                        "Idempotency-Key, Request-Id");
	MHD_add_response_header(r, "Access-Control-Max-Age", "600");
	return finish(req, st, r, 204, out);
}

static unsigned long long fnv1a(const char *p, size_t n)
{
	unsigned long long h = 1469598103934665603ULL;

	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)p[i]) * 1099511628211ULL;
	return h;
}

/* If-None-Match: "*" or a list of (weak or strong) tags, compared weakly. */
static bool etag_matches(const char *inm, const char *etag)
{
	const char *bare = etag;
	size_t n = strlen(bare);

	if (!inm)
		return false;
	for (const char *p = inm; *p;) {
		while (*p == ' ' || *p == ',')
			p++;
		if (*p == '*')
			return true;
		if (strncmp(p, "W/", 2) == 0)
			p += 2;
		if (strncmp(p, bare, n) == 0 && (p[n] == '\0' || p[n] == ',' || p[n] == ' '))
			return true;
		p += strcspn(p, ",");
	}
	return false;
}

static void add_freshness(struct api_state *st, const struct route *route, struct MHD_Response *r)
{
	struct freshness_snapshot *snap = freshness_get(st->app->fresh);
	struct freshness_headers fh;
	char buf[64];

	if (snap && freshness_headers(snap, (const char *const *)route->reads, route->nreads,
	                              time(NULL), &fh)) {
		MHD_add_response_header(r, "ODS-Freshness", fh.freshness);
		if (fh.data_age >= 0) { /* -1: no table has an as-of yet */
			snprintf(buf, sizeof(buf), "%lld", fh.data_age);
			MHD_add_response_header(r, "ODS-Data-Age", buf);
		}
		MHD_add_response_header(r, "ODS-Stale", fh.stale ? "?1" : "?0");
		if (fh.newest_as_of > 0) {
			struct tm tm;
			gmtime_r(&fh.newest_as_of, &tm);
			strftime(buf, sizeof(buf), "%a, %d %b %Y %H:%M:%S GMT", &tm);
			MHD_add_response_header(r, MHD_HTTP_HEADER_LAST_MODIFIED, buf);
		}
		freshness_headers_free(&fh);
	}
	freshness_put(st->app->fresh, snap);
}

/* Result columns named count_<name> feed the counter ods_<name>_total. */
static void count_columns(struct api_state *st, const PGresult *res)
{
	for (int c = 0; c < PQnfields(res); c++) {
		const char *name = PQfname(res, c);
		if (strncmp(name, "count_", 6) == 0 && name[6] && PQntuples(res) > 0 &&
		    !PQgetisnull(res, 0, c))
			metrics_count(st->app->metrics, name + 6, atoll(PQgetvalue(res, 0, c)));
	}
}

static int column(const PGresult *res, const char *name)
{
	return PQfnumber(res, name);
}

/* Turns the route function's result into the response. Takes res. */
static struct MHD_Response *from_result(struct request *req, struct api_state *st,
                                        const struct route *route, const struct bound_params *bp,
                                        PGresult *res, int *out)
{
	int cbody = column(res, "body"), cstatus = column(res, "status");
	int cloc = column(res, "location"), cetag = column(res, "etag");
	int ccur = column(res, "next_cursor");
	bool get = strcmp(route->method, "GET") == 0;
	int status = 200;
	char etag[40] = "";
	struct MHD_Response *r;

	if (cbody < 0)
		cbody = 0;
	if (PQntuples(res) < 1 || PQnfields(res) < 1 || PQgetisnull(res, 0, cbody)) {
		int st404 = cstatus >= 0 && PQntuples(res) > 0 && !PQgetisnull(res, 0, cstatus)
		                    ? atoi(PQgetvalue(res, 0, cstatus))
		                    : 0;
		PQclear(res);
		if (st404 == 204)
			return finish(req, st, response_empty(), 204, out);
		return problem(req, st, 404, "not_found", "Not Found", "no such entity", out);
	}
	if (cstatus >= 0 && !PQgetisnull(res, 0, cstatus))
		status = atoi(PQgetvalue(res, 0, cstatus));
	count_columns(st, res);
	if (cetag >= 0 && !PQgetisnull(res, 0, cetag))
		snprintf(etag, sizeof(etag), "\"%s\"", PQgetvalue(res, 0, cetag));
	else if (get)
		snprintf(etag, sizeof(etag), "\"%016llx\"",
		         fnv1a(PQgetvalue(res, 0, cbody), (size_t)PQgetlength(res, 0, cbody)));

	if (get && etag[0] &&
	    etag_matches(request_header(req, MHD_HTTP_HEADER_IF_NONE_MATCH), etag)) {
		PQclear(res);
		r = response_empty();
		status = 304;
	} else {
		char *link = NULL, *loc = NULL;
		if (route->paged && ccur >= 0 && !PQgetisnull(res, 0, ccur))
			link = params_next_link(req, bp, PQgetvalue(res, 0, ccur));
		if (cloc >= 0 && !PQgetisnull(res, 0, cloc))
			loc = xstrdup(PQgetvalue(res, 0, cloc));
		r = response_pgvalue(res, 0, cbody, "application/json");
		if (link)
			MHD_add_response_header(r, MHD_HTTP_HEADER_LINK, link);
		if (loc)
			MHD_add_response_header(r, MHD_HTTP_HEADER_LOCATION, loc);
		free(link);
		free(loc);
	}
	if (etag[0])
		MHD_add_response_header(r, MHD_HTTP_HEADER_ETAG, etag);
	add_freshness(st, route, r);
	return finish(req, st, r, status, out);
}

static struct MHD_Response *from_sql_error(struct request *req, struct api_state *st, PGresult *res,
                                           int *out)
{
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	const struct sqlstate_map *m = sqlstate_to_http(state);
	struct MHD_Response *r;

	static struct log_limit limit;

	if (m->status >= 500)
		log_limited(&limit, LOG_WARN, "request %s: %s: SQLSTATE %s: %s", req->id,
		            req->label, state ? state : "-", msg ? msg : "-");
	r = response_problem(req, m->status, m->code, m->title, m->expose_detail ? msg : m->detail);
	PQclear(res);
	if (m->status == 503)
		MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, "1");
	return finish(req, st, r, m->status, out);
}

/* Every request fails the same way while the database is down: log a sample. */
static struct log_limit unreachable_limit;

static struct MHD_Response *call_route(struct request *req, struct api_state *st,
                                       const struct route *route, const struct bound_params *bp,
                                       const struct idem *idem, int *out)
{
	const struct ods_config *cfg = &st->settings->cfg;
	char err[ODS_ERRLEN];
	bool timed_out = false;
	struct timespec t0;
	PGresult *res = NULL;
	struct pool_conn *pc;
	struct MHD_Response *r;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	pc = pool_acquire(st->app->pool, (int)cfg->db_pool_timeout_ms, &timed_out, err,
	                  sizeof(err));
	if (!pc) {
		r = response_problem(req, 503, "service_unavailable", "Service Unavailable",
		                     timed_out ? "every database connection is busy; retry shortly"
		                               : "the database is not reachable");
		MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, timed_out ? "1" : "2");
		if (!timed_out)
			log_limited(&unreachable_limit, LOG_WARN, "request %s: %s", req->id, err);
		return finish(req, st, r, 503, out);
	}
	struct db_call c = {
	        .role = auth_identity_role(st->ident),
	        .claims_json = auth_identity_claims_json(st->ident),
	        .statement_timeout_ms = (int)cfg->statement_timeout_ms,
	        .generation = st->routes->generation,
	        .stmt_index = route->index,
	        .stmt_sql = route->sql,
	        .nparams = bp->n,
	        .values = bp->values,
	};
	const char *check_values[2] = {idem->key, idem->hash};
	if (idem->active) {
		/* Separate statements: the idempotent form of the call is another SQL text. */
		c.stmt_index = route->index + st->routes->n;
		c.stmt_sql = route->sql_idem;
		c.nparams = bp->n + 2;
		c.values = idem->values;
		c.pre_sql = IDEM_CHECK_SQL;
		c.pre_nparams = 2;
		c.pre_values = check_values;
	}
	enum db_call_status cs = db_call_run(pc, &c, &res, err, sizeof(err));
	pool_release(st->app->pool, pc, cs == DB_CALL_CONN_ERROR);
	req->db_ms += request_elapsed_ms(req) - ((double)(t0.tv_sec - req->start.tv_sec) * 1e3 +
	                                         (double)(t0.tv_nsec - req->start.tv_nsec) / 1e6);
	if (cs == DB_CALL_OK)
		return from_result(req, st, route, bp, res, out);
	if (cs == DB_CALL_SQL_ERROR && idem->active) {
		int status = 0;
		r = idem_replay(req, res, &status);
		if (r) {
			add_freshness(st, route, r);
			return finish(req, st, r, status, out);
		}
	}
	if (cs == DB_CALL_SQL_ERROR)
		return from_sql_error(req, st, res, out);
	PQclear(res);
	log_limited(&unreachable_limit, LOG_WARN, "request %s: database connection failed: %s",
	            req->id, err);
	r = response_problem(req, 503, "service_unavailable", "Service Unavailable",
	                     "the database connection failed; retry shortly");
	MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, "1");
	return finish(req, st, r, 503, out);
}

static struct MHD_Response *handle_route(struct request *req, struct api_state *st, int *out)
{
	struct route_match m;
	struct bound_params bp;
	struct param_error pe;
	struct idem idem;
	enum route_match_result mr;
	enum auth_status as;
	const char *authz;
	char why[256];
	struct MHD_Response *r;

	st->routes = routes_get(st->app->routes);
	if (!st->routes)
		return problem(req, st, 503, "service_unavailable", "Service Unavailable",
		               "the route catalog is not loaded yet", out);
	mr = routes_match(st->routes, req->method, req->path, &m);
	if (mr == ROUTE_NOT_FOUND)
		return problem(req, st, 404, "not_found", "Not Found", "no such resource", out);
	if (mr == ROUTE_METHOD_NOT_ALLOWED) {
		r = response_problem(req, 405, "method_not_allowed", "Method Not Allowed",
		                     "this resource does not support that method");
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, m.allow);
		return finish(req, st, r, 405, out);
	}
	req->label = m.route->label;

	authz = request_header(req, MHD_HTTP_HEADER_AUTHORIZATION);
	as = auth_verify(st->settings->auth, authz, &st->ident, why, sizeof(why));
	/* RFC 6750 section 3.1: no error code unless a bearer token was sent. */
	if (as == AUTH_MISSING || as == AUTH_INVALID)
		return unauthorized(req, st,
		                    as == AUTH_INVALID && strncasecmp(authz, "Bearer", 6) == 0, why,
		                    out);
	if (as != AUTH_OK)
		return problem(req, st, 403, "forbidden", "Forbidden", why, out);
	if (m.route->scope && !auth_identity_has_scope(st->ident, m.route->scope)) {
		snprintf(why, sizeof(why), "the token lacks the scope %s", m.route->scope);
		return problem(req, st, 403, "insufficient_scope", "Forbidden", why, out);
	}
	if (!params_bind(m.route, &m, req, &bp, &pe)) {
		params_free(&bp);
		return problem(req, st, pe.status, pe.code,
		               pe.status == 415 ? "Unsupported Media Type" : "Bad Request",
		               pe.detail, out);
	}
	if (!idem_prepare(req, m.route, &bp, &idem, &pe)) {
		params_free(&bp);
		return problem(req, st, pe.status, pe.code, "Bad Request", pe.detail, out);
	}
	r = call_route(req, st, m.route, &bp, &idem, out);
	idem_free(&idem);
	params_free(&bp);
	return r;
}

struct MHD_Response *api_handle(void *cls, struct request *req, int *status)
{
	struct app *app = cls;
	struct api_state *st = xcalloc(1, sizeof(*st));
	struct MHD_Response *r;

	st->app = app;
	st->settings = app_settings_get(app);
	req->app_data = st;
	req->app_cleanup = state_free;
	req->label = "unmatched";

	if (req->body_too_large) {
		char detail[96];
		snprintf(detail, sizeof(detail), "the body is larger than %ld bytes",
		         st->settings->cfg.max_body_bytes);
		r = response_problem(req, 413, "payload_too_large", "Content Too Large", detail);
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
		return finish(req, st, r, 413, status);
	}
	if (req->bad_framing) {
		r = response_problem(req, 400, "bad_request", "Bad Request",
		                     "the body length is ambiguous: send one Content-Length, or "
		                     "Transfer-Encoding: chunked alone");
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
		return finish(req, st, r, 400, status);
	}
	if (strcmp(req->method, "OPTIONS") == 0)
		return preflight(req, st, status);
	r = ops_handle(app, req, status);
	if (r) {
		response_finish(req, r, st->settings->cfg.cors_origins);
		return r;
	}
	return handle_route(req, st, status);
}

void api_completed(void *cls, struct request *req, bool aborted)
{
	struct app *app = cls;
	struct api_state *st = req->app_data;
	double ms = request_elapsed_ms(req);
	/* No label: the request ended (client gone mid-body, timeout, a body too
	 * long to discard) before api_handle ran. */
	const char *label = req->label ? req->label : "unanswered";
	json_t *o;
	char *line;

	metrics_observe(app->metrics, label, req->status, ms);
	if (!log_enabled(LOG_INFO))
		return;
	char ts[32];
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
	o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:f, s:f}", "ts", ts, "level", "info",
	              "request_id", req->id, "method", req->method, "path", req->path, "route",
	              label, "status", req->status, "duration_ms", ms, "db_ms", req->db_ms);
	if (!o)
		return; /* a path that is not UTF-8: the metrics still count it */
	if (st && st->ident) {
		const char *sub = auth_identity_sub(st->ident);
		json_object_set_new(o, "role", json_string(auth_identity_role(st->ident)));
		if (sub)
			json_object_set_new(o, "sub", json_string(sub));
	}
	if (aborted)
		json_object_set_new(o, "aborted", json_true());
	line = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(6));
	json_decref(o);
	if (line) {
		size_t n = strlen(line);
		line = xrealloc(line, n + 2);
		line[n] = '\n';
		line[n + 1] = '\0';
		fputs(line, stderr);
		free(line);
	}
}
