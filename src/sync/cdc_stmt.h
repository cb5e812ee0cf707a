/*
 * cdc_stmt: the statements cdc_apply sends for a batch (sync/cdc_batch.h):
 *   upsert  INSERT ... SELECT <casts> FROM unnest($1::text[], ...) ON CONFLICT
 *           (key) DO UPDATE ... WHERE the business columns differ; answers how
 *           many keys were new. Parameters: one text[] per synced column, then
 *           the commit time and the commit LSN.
 *   delete  DELETE ... USING unnest(<key arrays>); parameters: one text[] per key column.
 *   one     the same two for a batch of one row: scalar parameters, no unnest
 *           (a single-change transaction is the common case, and unnest's
 *           function scan and array parsing were a third of its cost).
 *   partial UPDATE of the columns a row carries (its unchanged TOASTed ones kept).
 */
#ifndef ODS_CDC_STMT_H
#define ODS_CDC_STMT_H

#include "sync/cdc_batch.h"
#include "sync/cdc_map.h"

#include <libpq-fe.h>
#include <stdbool.h>

char *cdc_stmt_upsert_sql(const struct cdc_table *t, bool one);
char *cdc_stmt_delete_sql(const struct cdc_table *t, bool one);
/* The prepared statement's name: kind 'u' or 'd' ('U', 'D': one row), the table's index,
 * its layout generation. */
void cdc_stmt_name(char *out, size_t n, char kind, int table, int generation);

/* Runs the prepared statement name (upsert, or delete for op CDC_DELETE) over
 * the rows of op in b, or only its only-th one: queued in pipeline mode
 * (pipelined), else executed at once (true when it succeeded). */
bool cdc_stmt_send_arrays(PGconn *conn, const char *name, const struct cdc_batch *b, enum cdc_op op,
                          int only, const char *ts, const char *pos, bool pipelined) ODS_MUST_CHECK;
/* Queues the one-row statement name (upsert, or delete for CDC_DELETE) for the i-th row of op. */
bool cdc_stmt_send_row(PGconn *conn, const char *name, const struct cdc_batch *b, enum cdc_op op,
                       int i, const char *ts, const char *pos) ODS_MUST_CHECK;
/* Queues the UPDATE of the i-th partial row of b. */
bool cdc_stmt_send_partial(PGconn *conn, const struct cdc_batch *b, int i, const char *ts,
                           const char *pos) ODS_MUST_CHECK;

#endif
