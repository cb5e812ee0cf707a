/*
 * cdc_batch: the changes of one source transaction (or one chunk of a large
 * one) to one synced table, collapsed to the final state of each key, so that
 * applying them is set-based: one DELETE for the keys that end deleted, one
 * INSERT ... ON CONFLICT for the keys that end with a full row, whatever the
 * order they changed in. Applying the final states in any order equals
 * applying the changes in order, because each key has exactly one.
 *
 * A key change (an Update whose old key differs) ends the old key deleted
 * and the new one upserted. An unchanged TOASTed value ('u') takes the value
 * the same transaction gave the key earlier; when there is none, the row is
 * "partial": only its sent columns are updated, the stored ones kept.
 *
 * The batch copies every value it keeps; tuples are the decoder's, borrowed.
 */
#ifndef ODS_CDC_BATCH_H
#define ODS_CDC_BATCH_H

#include "core/util.h"
#include "sync/cdc_map.h"
#include "sync/pgoutput.h"

#include <stdbool.h>

enum cdc_op { CDC_UPSERT = 'u', CDC_PARTIAL = 'p', CDC_DELETE = 'd' };

struct cdc_batch;

struct cdc_batch *cdc_batch_new(const struct cdc_table *t);
void cdc_batch_free(struct cdc_batch *b);
/* The table it was made for (borrowed). */
const struct cdc_table *cdc_batch_table(const struct cdc_batch *b);
/* Keys held. */
int cdc_batch_size(const struct cdc_batch *b);
/* Keys held whose final state is op. */
int cdc_batch_count(const struct cdc_batch *b, enum cdc_op op);

/* One change, in stream order. err names what is wrong with a malformed tuple. */
bool cdc_batch_insert(struct cdc_batch *b, const struct pgo_tuple *row, char *err,
                      size_t errlen) ODS_MUST_CHECK;
bool cdc_batch_update(struct cdc_batch *b, const struct pgo_tuple *old_key,
                      const struct pgo_tuple *row, char *err, size_t errlen) ODS_MUST_CHECK;
bool cdc_batch_delete(struct cdc_batch *b, const struct pgo_tuple *old_key, char *err,
                      size_t errlen) ODS_MUST_CHECK;

/*
 * A PostgreSQL text[] literal of column col (an index into the table's
 * cols) over the keys whose state is op, in batch order; or of one key only
 * when only >= 0 (the only-th key of that op). NULLs as NULL.
 */
void cdc_batch_array(const struct cdc_batch *b, enum cdc_op op, int col, int only,
                     struct strbuf *out);

/* Of the i-th row whose state is op: whether column col has a value (a partial
 * row lacks its unchanged TOASTed ones), and its text (NULL for SQL NULL). */
bool cdc_batch_value(const struct cdc_batch *b, enum cdc_op op, int i, int col, const char **val,
                     size_t *len);

/* "(k1, k2)=(v1, v2)": the key of the i-th row of op, for messages. */
void cdc_batch_key_text(const struct cdc_batch *b, enum cdc_op op, int i, struct strbuf *out);

#endif
