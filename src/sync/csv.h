/*
 * csv: a streaming RFC 4180 reader. Fields are separated by commas and
 * records by LF or CRLF; a field may be quoted with '"' (a doubled quote is
 * a literal quote; commas and line breaks inside quotes are data). An empty
 * unquoted field is NULL, an empty quoted field ("") the empty string, the
 * same convention as PostgreSQL's COPY ... CSV. Blank lines are skipped.
 */
#ifndef ODS_CSV_H
#define ODS_CSV_H

#include "sync/source.h"

struct csv_reader;

/* The reader borrows src; close src after the reader. */
struct csv_reader *csv_open(struct source *src);
/* 1 = a record in *rec, 0 = end of input, -1 = error (err names file, line, column). */
int csv_next(struct csv_reader *r, struct record *rec, char *err, size_t errlen);
void csv_close(struct csv_reader *r);

#endif
