/*
 * loader: `odsctl sync load`. Streams a CSV (header row) or NDJSON file,
 * optionally gzip-compressed, into a synced table in ONE transaction:
 * upserts rows whose content changed (only they get a new _synced_at),
 * deletes rows absent from a full snapshot, updates ods.synced_tables and
 * NOTIFYs ods_freshness. Any bad input leaves the table untouched and is
 * reported with the file, line and column.
 */
#ifndef ODS_LOADER_H
#define ODS_LOADER_H

#include "core/util.h"
#include "sync/source.h"

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdio.h>

struct load_opts {
	const char *table; /* name in schema synced, e.g. "customer_current" */
	const char *file;  /* .csv or .ndjson, optionally gzip-compressed */
	const char *as_of; /* RFC 3339; NULL = newest _source_committed_at in the file */
	bool incremental;  /* true: never delete rows absent from the file */
	/* _source_position of every row when the file has no such column */
	const char *position;
	/* CSV from elsewhere (a COPY of a CDC source) instead of opening file, which
	 * then only names it in messages; borrowed, the caller closes it. */
	struct source *input;
	bool allow_empty; /* an input with no rows empties the table instead of failing */
};

struct load_result {
	long long records;   /* data rows read from the file */
	long long inserted;  /* new keys */
	long long updated;   /* existing keys whose content changed */
	long long unchanged; /* existing keys with identical content */
	long long deleted;   /* keys absent from a full snapshot */
	long long rows;      /* rows in the table after the load */
	char as_of[64];      /* the as_of recorded, as PostgreSQL prints it */
};

bool loader_run(PGconn *conn, const struct load_opts *o, struct load_result *r, char *err,
                size_t errlen) ODS_MUST_CHECK;

/* Inserts the rows of a CSV/NDJSON file into native.<table>, skipping keys
 * that exist (demo seed rows): r->inserted new, r->unchanged skipped. */
bool loader_seed(PGconn *conn, const char *table, const char *file, struct load_result *r,
                 char *err, size_t errlen) ODS_MUST_CHECK;

void loader_print_result(FILE *out, const struct load_opts *o, const struct load_result *r);

#endif
