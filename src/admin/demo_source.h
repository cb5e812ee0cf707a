/*
 * demo_source: `odsctl demo source`, the demo's OLTP source database: the
 * tables of api/demo/source_schema.sql (customers, orders, payments,
 * shipments, work orders), each seeded once from the matching extract of
 * `odsctl demo generate` (the freshness columns dropped). What
 * `odsctl sync run` then keeps the continuous synced tables current from.
 */
#ifndef ODS_DEMO_SOURCE_H
#define ODS_DEMO_SOURCE_H

#include "core/util.h"

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdio.h>

/* Creates the tables (if absent) and seeds every empty one; prints a line per table. */
bool demo_source(PGconn *conn, const char *api_dir, const char *from_dir, FILE *out, char *err,
                 size_t errlen) ODS_MUST_CHECK;

#endif
