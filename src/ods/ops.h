/*
 * ops: the built-in operational endpoints, served without a token:
 * GET /healthz (the process answers), /readyz (database reachable and
 * catalogs loaded), /metrics (Prometheus text), /openapi.yaml (the spec).
 */
#ifndef ODS_OPS_H
#define ODS_OPS_H

#include "http/request.h"
#include "ods/app.h"

/* The response for an ops path (status in *status), or NULL for any other path. */
struct MHD_Response *ops_handle(struct app *app, struct request *req, int *status);

#endif
