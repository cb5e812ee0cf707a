/*
 * freshness: `odsctl freshness`, the operator's view of ods.synced_tables:
 * the same facts GET /v1/freshness serves (tier, mode, SLA, as-of, lag,
 * stale, last sync, last error), computed by PostgreSQL from one query.
 */
#ifndef ODS_FRESHNESS_H
#define ODS_FRESHNESS_H

#include "core/util.h"

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdio.h>

bool freshness_report(PGconn *conn, FILE *out, char *err, size_t errlen) ODS_MUST_CHECK;

#endif
