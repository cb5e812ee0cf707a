/*
 * response: building MHD responses. Every error a client sees goes through
 * response_problem (RFC 9457 application/problem+json), the one funnel; every
 * response gets Request-Id and CORS headers from response_finish.
 */
#ifndef ODS_RESPONSE_H
#define ODS_RESPONSE_H

#include "http/request.h"

#include <libpq-fe.h>
#include <microhttpd.h>

/* A copy of body with the given content type. */
struct MHD_Response *response_text(const char *body, size_t len, const char *content_type);

/* The value at (row, col) of res as the body, without copying: res is
 * PQclear()ed when MHD is done with the response. */
struct MHD_Response *response_pgvalue(PGresult *res, int row, int col, const char *content_type);

/* An empty body (204, 304, HEAD). */
struct MHD_Response *response_empty(void);

/*
 * {"type":"urn:ods:problem:<code>","title":...,"status":N,"detail":...,
 *  "code":"<code>","request_id":...}; detail may be NULL.
 */
struct MHD_Response *response_problem(const struct request *req, int status, const char *code,
                                      const char *title, const char *detail);

/* CORS settings shared by every response; origins is a comma-separated list
 * ("*" allows any); empty disables CORS. */
void response_add_cors(struct MHD_Response *r, const char *origins, const char *request_origin);

/* Request-Id and, when the origin is allowed, CORS headers. */
void response_finish(const struct request *req, struct MHD_Response *r, const char *cors_origins);

#endif
