/*
 * ops: /healthz, /readyz, /metrics, /openapi.yaml. /healthz touches nothing
 * shared, so it stays fast when the database or the pool is in trouble.
 */
#include "autoconfig.h"

#include "ods/ops.h"

#include "http/response.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static void render_gauges(struct app *app, struct strbuf *out)
{
	struct pool_stats ps;
	struct freshness_snapshot *snap;
	time_t now = time(NULL);

	pool_stats(app->pool, &ps);
	strbuf_addf(out,
	            "# TYPE ods_db_pool_size gauge\nods_db_pool_size %d\n"
	            "# TYPE ods_db_pool_in_use gauge\nods_db_pool_in_use %d\n"
	            "# TYPE ods_db_pool_waiting gauge\nods_db_pool_waiting %d\n"
	            "# TYPE ods_db_pool_timeouts_total counter\nods_db_pool_timeouts_total %llu\n"
	            "# TYPE ods_db_connects_total counter\nods_db_connects_total %llu\n"
	            "# TYPE ods_db_connect_failures_total counter\n"
	            "ods_db_connect_failures_total %llu\n"
	            "# TYPE ods_db_up gauge\nods_db_up %d\n",
	            ps.size, ps.in_use, ps.waiting, ps.timeouts, ps.connects, ps.connect_fail,
	            listener_connected(app->listener) ? 1 : 0);
	snap = freshness_get(app->fresh);
	strbuf_adds(out, "# HELP ods_freshness_lag_seconds now - as_of per synced table.\n"
	                 "# TYPE ods_freshness_lag_seconds gauge\n");
	for (int i = 0; snap && i < snap->n; i++) {
		const struct freshness_entry *e = &snap->e[i];
		if (e->has_as_of)
			strbuf_addf(out, "ods_freshness_lag_seconds{table=\"synced.%s\"} %lld\n",
			            e->table_name, freshness_entry_lag(e, now));
	}
	strbuf_adds(out, "# HELP ods_freshness_stale 1 when lag exceeds the table's SLA.\n"
	                 "# TYPE ods_freshness_stale gauge\n");
	for (int i = 0; snap && i < snap->n; i++) {
		const struct freshness_entry *e = &snap->e[i];
		strbuf_addf(out, "ods_freshness_stale{table=\"synced.%s\"} %d\n", e->table_name,
		            freshness_entry_stale(e, now) ? 1 : 0);
	}
	freshness_put(app->fresh, snap);
}

static struct MHD_Response *json_reply(const char *body, int status, int *out)
{
	*out = status;
	return response_text(body, strlen(body), "application/json");
}

struct MHD_Response *ops_handle(struct app *app, struct request *req, int *status)
{
	static const char *const paths[] = {"/healthz", "/readyz", "/metrics", "/openapi.yaml"};
	bool known = false;
	struct MHD_Response *r;

	for (size_t i = 0; i < ODS_ARRAY_LEN(paths); i++)
		known |= strcmp(req->path, paths[i]) == 0;
	if (!known)
		return NULL;
	req->label = req->path;
	if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
		r = response_problem(req, 405, "method_not_allowed", "Method Not Allowed",
		                     "this resource supports GET and HEAD");
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
		*status = 405;
		return r;
	}
	if (strcmp(req->path, "/healthz") == 0)
		return json_reply("{\"status\":\"ok\"}", 200, status);
	if (strcmp(req->path, "/readyz") == 0) {
		const char *why = NULL;
		if (app_ready(app, &why))
			return json_reply("{\"status\":\"ready\"}", 200, status);
		r = response_problem(req, 503, "not_ready", "Service Unavailable", why);
		MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, "1");
		*status = 503;
		return r;
	}
	if (strcmp(req->path, "/metrics") == 0) {
		struct strbuf sb;
		strbuf_init(&sb);
		metrics_render(app->metrics, &sb);
		render_gauges(app, &sb);
		*status = 200;
		/* sb.len before strbuf_detach resets it: argument order is unspecified */
		size_t len = sb.len;
		r = MHD_create_response_from_buffer_with_free_callback(len, strbuf_detach(&sb),
		                                                       free);
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
		                        "text/plain; version=0.0.4; charset=utf-8");
		return r;
	}
	if (!app->openapi) {
		*status = 404;
		return response_problem(req, 404, "not_found", "Not Found",
		                        "the OpenAPI document is not installed");
	}
	*status = 200;
	return response_text(app->openapi, app->openapi_len, "application/yaml");
}
