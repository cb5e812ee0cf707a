/*
 * cdc_status: `odsctl sync status`, one line per CDC source from
 * ods.cdc_sources: slot, applied LSN, lag in bytes and seconds, state, and a
 * warning when the slot retains more WAL than the source's limit.
 */
#ifndef ODS_CDC_STATUS_H
#define ODS_CDC_STATUS_H

#include "core/util.h"

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdio.h>

bool cdc_status_report(PGconn *conn, FILE *out, char *err, size_t errlen) ODS_MUST_CHECK;

#endif
