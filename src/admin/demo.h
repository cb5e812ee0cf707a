/*
 * demo.h - synthetic data generator behind `odsctl demo generate`.
 *
 * Owns nothing after it returns: demo_generate() writes CSV files and frees what it
 * allocated. The files are the input of `odsctl demo load` (synced extracts through the
 * sync loader, native seeds with INSERT ... ON CONFLICT DO NOTHING).
 */
#ifndef ODS_ADMIN_DEMO_H
#define ODS_ADMIN_DEMO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DEMO_DEFAULT_CUSTOMERS 1000
#define DEMO_DEFAULT_SEED      42

struct demo_opts {
	const char *out_dir; /* created if missing, with out_dir/native/ */
	long customers;      /* default 1000 (0 means the default) */
	uint64_t seed;       /* default 42 */
	const char *
	        as_of; /* RFC3339 UTC "YYYY-MM-DDTHH:MM:SSZ"; NULL = now, truncated to the minute */
};

/*
 * Writes out_dir/<table>.csv for every synced reference table and out_dir/native/<table>.csv
 * seed rows. The same (customers, seed, as_of) gives byte-identical files.
 * Native seeds must be inserted in this order (foreign keys): support_cases, case_notes,
 * fraud_cases, store_actions, dispatch_assignments, work_order_updates.
 * Returns false and writes a one-line message into err on failure.
 */
bool demo_generate(const struct demo_opts *o, char *err, size_t errlen)
        __attribute__((warn_unused_result));

#endif
