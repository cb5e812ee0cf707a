/*
 * migrate: applies api/schema/NNN_name.sql (versioned: each file once, in its
 * own transaction, recorded with its SHA-256 in ods.schema_migrations; an
 * applied file that was edited afterwards is refused, naming the file) and
 * then the api/routes files (repeatable: re-applied whenever its checksum
 * changes). A session advisory lock serializes concurrent runs, so it is
 * safe to run while odsd serves.
 */
#ifndef ODS_MIGRATE_H
#define ODS_MIGRATE_H

#include "core/util.h"

#include <libpq-fe.h>
#include <stdbool.h>

/* api_dir holds schema/ and routes/. *applied counts the files applied now. */
bool migrate_run(PGconn *conn, const char *api_dir, int *applied, char *err,
                 size_t errlen) ODS_MUST_CHECK;

#endif
