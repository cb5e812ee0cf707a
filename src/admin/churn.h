/*
 * churn: `odsctl demo churn`, a steady stream of realistic OLTP changes on
 * the demo source database (api/demo/source_schema.sql): orders moving
 * placed -> paid (payment captured) -> shipped (shipment in transit) ->
 * delivered, carrier scans, customer profile edits, work orders moving to
 * completion, and new orders with their payment. Each change is its own
 * source transaction, paced by the clock at `rate` changes per second.
 */
#ifndef ODS_CHURN_H
#define ODS_CHURN_H

#include <stdbool.h>
#include <stdint.h>

struct churn_opts {
	const char *db;  /* the source database */
	double rate;     /* changes per second */
	double duration; /* seconds; 0 = until SIGINT/SIGTERM */
	uint64_t seed;
};

/* 0 when it ran its course (or was stopped), 1 on an error it cannot get past. */
int churn_run(const struct churn_opts *o);

#endif
