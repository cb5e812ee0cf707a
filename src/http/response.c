/*
 * response: MHD response constructors and the problem+json writer.
 */
#include "autoconfig.h"

#include "http/response.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* Headers a browser console may read (DESIGN section 5). */
static const char exposed_headers[] =
        "ODS-Freshness, ODS-Data-Age, ODS-Stale, Request-Id, ETag, Location, Link, "
        "Last-Modified, Retry-After, Idempotent-Replayed";

struct MHD_Response *response_text(const char *body, size_t len, const char *content_type)
{
	struct MHD_Response *r =
	        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);

	if (r && content_type)
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
	return r;
}

static void free_pgresult(void *cls)
{
	PQclear(cls);
}

struct MHD_Response *response_pgvalue(PGresult *res, int row, int col, const char *content_type)
{
	struct MHD_Response *r = MHD_create_response_from_buffer_with_free_callback_cls(
	        (size_t)PQgetlength(res, row, col), PQgetvalue(res, row, col), free_pgresult, res);

	if (!r) {
		PQclear(res);
		return NULL;
	}
	if (content_type)
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
	return r;
}

struct MHD_Response *response_empty(void)
{
	return MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
}

struct MHD_Response *response_problem(const struct request *req, int status, const char *code,
                                      const char *title, const char *detail)
{
	struct MHD_Response *r;
	char *type = xasprintf("urn:ods:problem:%s", code);
	json_t *o = json_object();
	char *s;

	json_object_set_new(o, "type", json_string(type));
	json_object_set_new(o, "title", json_string(title));
	json_object_set_new(o, "status", json_integer(status));
	/* json_string rejects invalid UTF-8, which a detail quoting client bytes may hold. */
	if (detail) {
		json_t *d = json_string(detail);
		json_object_set_new(o, "detail",
		                    d ? d : json_string("(detail is not valid UTF-8)"));
	}
	json_object_set_new(o, "code", json_string(code));
	json_object_set_new(o, "request_id", json_string(req ? req->id : ""));
	s = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
	json_decref(o);
	free(type);
	r = MHD_create_response_from_buffer_with_free_callback(strlen(s), s, free);
	if (r)
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
		                        "application/problem+json");
	return r;
}

static bool origin_allowed(const char *origins, const char *origin)
{
	size_t n = strlen(origin);

	for (const char *p = origins; p && *p;) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		if ((len == 1 && *p == '*') || (len == n && strncmp(p, origin, n) == 0))
			return true;
		p = end ? end + 1 : NULL;
	}
	return false;
}

void response_add_cors(struct MHD_Response *r, const char *origins, const char *request_origin)
{
	if (!origins || !*origins || !request_origin || !origin_allowed(origins, request_origin))
		return;
	MHD_add_response_header(r, "Access-Control-Allow-Origin", request_origin);
	MHD_add_response_header(r, "Vary", "Origin");
	MHD_add_response_header(r, "Access-Control-Expose-Headers", exposed_headers);
}

void response_finish(const struct request *req, struct MHD_Response *r, const char *cors_origins)
{
	MHD_add_response_header(r, "Request-Id", req->id);
	response_add_cors(r, cors_origins, request_header(req, "Origin"));
}
