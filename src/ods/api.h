/*
 * api: odsd's request handler. Built-in operational endpoints (/healthz,
 * /readyz, /metrics, /openapi.yaml) and, for everything else, the generic
 * route pipeline: match the catalog -> authenticate -> check the scope ->
 * bind parameters -> one pipelined database round trip -> headers
 * (freshness, ETag, Link, Location) -> the JSON text from PostgreSQL,
 * untouched, as the body.
 */
#ifndef ODS_API_H
#define ODS_API_H

#include "http/server.h"
#include "ods/app.h"

/* http_handler_fn and http_completed_fn for server.h; cls is the struct app. */
struct MHD_Response *api_handle(void *cls, struct request *req, int *status);
void api_completed(void *cls, struct request *req, bool aborted);

#endif
