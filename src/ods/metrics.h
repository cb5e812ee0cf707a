/*
 * metrics: request counters by route and status and a latency histogram
 * per route, rendered in the Prometheus text format. Other gauges (pool,
 * freshness) are appended by their owners at scrape time.
 */
#ifndef ODS_METRICS_H
#define ODS_METRICS_H

#include "core/util.h"

struct metrics;

struct metrics *metrics_new(void);
void metrics_free(struct metrics *m);
/* label: the route ("GET /v1/customers/{customer_id}") or a fixed word ("unmatched"). */
void metrics_observe(struct metrics *m, const char *label, int status, double ms);
/* Adds n to the counter ods_<name>_total (a route function reports one
 * through a result column count_<name>, e.g. count_ingest_dead_letters). */
void metrics_count(struct metrics *m, const char *name, long long n);
void metrics_render(struct metrics *m, struct strbuf *out);

#endif
