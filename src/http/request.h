/*
 * request: one HTTP request from its first byte to its completion callback.
 *
 * The request owns its body buffer, its copy of the path, and whatever the
 * application hangs on it (app_data, released by app_cleanup); it borrows the
 * MHD connection. server.c frees it in MHD's completion callback, which runs
 * on success, error, timeout and client abort alike, so nothing a request
 * holds can leak.
 */
#ifndef ODS_REQUEST_H
#define ODS_REQUEST_H

#include "core/util.h"

#include <microhttpd.h>
#include <stdbool.h>
#include <time.h>

struct request {
	struct MHD_Connection *conn; /* borrowed */
	char id[72];                 /* Request-Id: echoed or generated */
	char method[16];
	char *path; /* owned copy of the URL path, without the query */
	struct strbuf body;
	bool body_too_large;
	size_t discarded; /* body bytes thrown away past max_body_bytes */
	bool bad_framing; /* an ambiguous body length (RFC 9112 6.1, 6.3) */
	bool first_call_done;
	struct timespec start;
	double db_ms;      /* time spent in the database, for the log line */
	int status;        /* the status queued, for logs and metrics */
	const char *label; /* route label for logs and metrics; static or route-owned */
	/* Application state hung on the request, released at completion. */
	void *app_data;
	void (*app_cleanup)(void *app_data);
};

/* A request header's value, or NULL. */
const char *request_header(const struct request *req, const char *name);

/* Milliseconds since the request started. */
double request_elapsed_ms(const struct request *req);

#endif
