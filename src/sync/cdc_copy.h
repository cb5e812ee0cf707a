/*
 * cdc_copy: the first start of a CDC source, or a restart of a copy that did
 * not finish: the publication, a new slot with an exported snapshot, and a
 * copy of every mapped table read in that snapshot through the snapshot
 * loader (sync/loader.h), so the tables hold exactly what the source held at
 * the slot's consistent point and streaming starts there: no change lost
 * between copy and stream, none applied twice. The source's row in
 * ods.cdc_sources moves to 'streaming' at that point only when every table
 * is copied; until then a restart drops the slot and copies again.
 */
#ifndef ODS_CDC_COPY_H
#define ODS_CDC_COPY_H

#include "core/util.h"
#include "sync/cdc_map.h"

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

struct cdc_source_state {
	char slot[80], publication[80];
	char state[16];
	bool copied;      /* the initial copy covered the current mapping */
	uint64_t applied; /* where streaming resumes */
};

/* Reads the source's row (registered by cdc_map_load). */
bool cdc_state_read(PGconn *ods, const char *name, const struct cdc_map *m,
                    struct cdc_source_state *st, char *err, size_t errlen) ODS_MUST_CHECK;

/* Records a state and, for 'error' and 'reconnecting', why (best effort). */
void cdc_state_write(PGconn *ods, const char *name, const char *state, const char *why);

/*
 * Copies every mapped table; on success *repl is the replication connection
 * that created the slot (ready for START_REPLICATION) and st->applied the
 * slot's consistent point.
 */
bool cdc_copy(PGconn *ods, PGconn *src, const char *source_uri, const char *name,
              const struct cdc_map *m, struct cdc_source_state *st, PGconn **repl, char *err,
              size_t errlen) ODS_MUST_CHECK;

#endif
