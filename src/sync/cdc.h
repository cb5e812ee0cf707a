/*
 * cdc: `odsctl sync run`, the CDC worker for one PostgreSQL source (DESIGN
 * §11). It owns the session: connections, the initial copy when needed
 * (sync/cdc_copy.h), the replication stream (sync/repl.h, sync/pgoutput.h),
 * the transaction in hand (sync/cdc_batch.h), the apply (sync/cdc_apply.h),
 * freshness and feedback, reconnects with backoff, and stopping.
 */
#ifndef ODS_CDC_H
#define ODS_CDC_H

#include <stdbool.h>

struct cdc_opts {
	const char *db;     /* the ODS */
	const char *source; /* the source database (wal_level = logical) */
	const char *name;   /* the source's name in ods.cdc_sources */
	const char *tables; /* --tables SRC=TARGET,..., or NULL */
	bool once;          /* copy if needed, apply until caught up, exit */
};

/* Runs until SIGTERM/SIGINT (or caught up with --once): 0, or 1 on an error
 * that needs an operator (recorded in ods.cdc_sources, explained on stderr). */
int cdc_run(const struct cdc_opts *o);

#endif
