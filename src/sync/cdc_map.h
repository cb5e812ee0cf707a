/*
 * cdc_map: which source tables feed which synced tables, and how their
 * columns line up. Loaded from ods.synced_tables (cdc_source, source_name)
 * after `--tables` has been written there; checked against the source's
 * catalog at start (every synced business and key column must exist there,
 * and the source's replica identity must carry the synced key) and again on
 * every Relation message of the stream, since the source's columns can
 * change mid-stream. Columns map by name; source columns the synced table
 * lacks are ignored.
 */
#ifndef ODS_CDC_MAP_H
#define ODS_CDC_MAP_H

#include "core/util.h"
#include "sync/pgoutput.h"

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

/* A column of the synced table, the three freshness columns excluded. */
struct cdc_col {
	char *name;
	char *qname; /* quoted identifier */
	char *type;  /* format_type(), e.g. numeric(12,2): the cast from text */
	bool pk;
};

struct cdc_table {
	char *target;  /* name in schema synced */
	char *qtarget; /* synced."name" */
	char *src_schema, *src_table;
	int ncols;
	struct cdc_col *cols;
	int npk;
	int *pk; /* indexes into cols, in key order */
	/* From the latest Relation message: its id, and for each synced column
	 * the relation's column index that carries it. */
	uint32_t relid;
	int *col_src;
	int generation; /* bumped by each Relation message */
};

struct cdc_map {
	int n;
	struct cdc_table *t;
};

/*
 * Registers source `name` in ods.cdc_sources if new, writes the `--tables`
 * mappings ("schema.table=target,...", a bare source name meaning public)
 * into ods.synced_tables, assigns the continuous tables no source owns when
 * the source owns none yet, and loads what the source owns.
 */
bool cdc_map_load(PGconn *ods, const char *name, const char *tables, struct cdc_map *m, char *err,
                  size_t errlen) ODS_MUST_CHECK;
void cdc_map_free(struct cdc_map *m);

/* Checks every mapped table against the source's catalog; names what is missing. */
bool cdc_map_check_source(PGconn *src, const struct cdc_map *m, char *err,
                          size_t errlen) ODS_MUST_CHECK;

/* Takes a Relation message: maps its columns, or says why it cannot. */
bool cdc_map_relation(struct cdc_map *m, const struct pgo_msg *rel, char *err,
                      size_t errlen) ODS_MUST_CHECK;

/* The table a relation id belongs to, NULL when it is not mapped. */
struct cdc_table *cdc_map_find(struct cdc_map *m, uint32_t relid);

/* The mapping as "schema.table=target" items, sorted: ods.cdc_sources.tables. */
char *cdc_map_signature(const struct cdc_map *m);

#endif
