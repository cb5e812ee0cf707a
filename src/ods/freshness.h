/*
 * freshness: the in-memory copy of ods.synced_tables that every response's
 * ODS-Freshness / ODS-Data-Age / ODS-Stale headers are computed from, with
 * no query per request (DESIGN section 5).
 *
 * freshness_refresh replaces the whole snapshot from one query; readers take
 * a reference to the current snapshot (refcounted, swapped under a mutex),
 * so a refresh never blocks or tears a request's view.
 */
#ifndef ODS_FRESHNESS_CACHE_H
#define ODS_FRESHNESS_CACHE_H

#include "core/util.h"

#include <libpq-fe.h>
#include <stdbool.h>
#include <time.h>

struct freshness_entry {
	char *table_name;                        /* name in schema synced */
	char *tier, *mode, *status, *last_error; /* last_error may be NULL */
	bool has_as_of;
	time_t as_of;        /* source time up to which the table is complete */
	time_t last_sync_at; /* 0 when never synced */
	long long sla_s;
	long long rows;
};

struct freshness_snapshot {
	int refs;
	int n;
	struct freshness_entry *e;
	time_t loaded_at;
};

struct freshness;

struct freshness *freshness_new(void);
/* Every snapshot taken with freshness_get must have been put back. */
void freshness_free(struct freshness *f);

/* Reloads the snapshot from ods.synced_tables over conn. */
bool freshness_refresh(struct freshness *f, PGconn *conn, char *err, size_t errlen) ODS_MUST_CHECK;
/* True once a snapshot has been loaded. */
bool freshness_loaded(struct freshness *f);

/* The current snapshot, referenced (never NULL: empty before the first
 * refresh): release it with freshness_put. */
struct freshness_snapshot *freshness_get(struct freshness *f);
void freshness_put(struct freshness *f, struct freshness_snapshot *s);

/* Headers for a route that reads the given synced tables (names with or
 * without the "synced." prefix), at time now. Tables unknown to the
 * snapshot are listed as stale with no as-of. Returns false when n == 0
 * (the route reads no synced table: no freshness headers at all). */
/* now - as_of in whole seconds, never negative; -1 when the table has no as-of yet. */
long long freshness_entry_lag(const struct freshness_entry *e, time_t now);
/* The one staleness rule (DESIGN section 5): no as-of yet, or lag > SLA. */
bool freshness_entry_stale(const struct freshness_entry *e, time_t now);

struct freshness_headers {
	char *freshness;     /* ODS-Freshness value, caller frees */
	long long data_age;  /* ODS-Data-Age; -1 when no table has an as-of (omit it) */
	bool stale;          /* ODS-Stale: ?1 / ?0 */
	time_t newest_as_of; /* for Last-Modified; 0 when none */
};
bool freshness_headers(const struct freshness_snapshot *s, const char *const *tables, int n,
                       time_t now, struct freshness_headers *out);
void freshness_headers_free(struct freshness_headers *h);

#endif
