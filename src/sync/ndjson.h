/*
 * ndjson: one JSON object per line. The keys of the first object are the
 * file's columns (like a CSV header) and every later object must have
 * exactly those keys. Values become text fields: strings as they are,
 * numbers in their shortest exact form, true/false, null as SQL NULL, and
 * objects/arrays as compact JSON (for jsonb columns). Blank lines are skipped.
 */
#ifndef ODS_NDJSON_H
#define ODS_NDJSON_H

#include "sync/source.h"

struct ndjson_reader;

/* The reader borrows src; close src after the reader. */
struct ndjson_reader *ndjson_open(struct source *src);
/* 1 = a record in *rec, 0 = end of input, -1 = error (err names file, line, column). */
int ndjson_next(struct ndjson_reader *r, struct record *rec, char *err, size_t errlen);
/* The column names (the first object's keys); NULL before the first record. */
const char *const *ndjson_columns(const struct ndjson_reader *r, int *n);
void ndjson_close(struct ndjson_reader *r);

#endif
