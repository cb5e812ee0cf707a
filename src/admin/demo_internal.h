/*
 * demo_internal.h - what the demo generator's files share; not part of the demo API.
 *
 *   demo.c         the model, demo_generate(), customers and everything per customer
 *                  (risk, orders, payments, shipments, status history, risk events)
 *   demo_ops.c     products, inventory positions, technicians, work orders
 *   demo_native.c  native seed rows, written next to the synced entity they belong to
 *   demo_util.c    random streams, the CSV row writer, times, shared vocabulary
 */
#ifndef ODS_ADMIN_DEMO_INTERNAL_H
#define ODS_ADMIN_DEMO_INTERNAL_H

#include "core/util.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define MINUTE 60
#define HOUR   3600
#define DAY    86400

/* Who wrote the native seed rows (created_by). */
#define SEED_ACTOR "demo-seed"

/* ---- random streams: splitmix64, one per (seed, kind, id) ----
 * Draw at most once per function call's arguments: C leaves their order of evaluation
 * unspecified, and the output must not depend on the compiler. */

struct rng {
	uint64_t s;
};

enum rng_kind {
	K_CUSTOMER,
	K_REGION,
	K_RISK,
	K_ORDERS,
	K_RISK_EVENTS,
	K_PRODUCT,
	K_POSITION,
	K_TECHNICIAN,
	K_WORK_ORDER,
	K_SUPPORT,
	K_FRAUD,
	K_STORE_ACTION,
	K_DISPATCH,
};

struct rng rng_for(uint64_t seed, enum rng_kind kind, uint64_t id);
uint64_t rng_next(struct rng *r);
/* Uniform in [0, n) (0 when n is 0); uniform in [lo, hi] (lo when hi <= lo). */
uint64_t rng_below(struct rng *r, uint64_t n);
int64_t rng_range(struct rng *r, int64_t lo, int64_t hi);
/* True with probability per_mille / 1000. */
bool rng_chance(struct rng *r, unsigned per_mille);
/* An index in [0, n) drawn with the given weights. */
int rng_weighted(struct rng *r, const unsigned *w, int n);
#define RNG_PICK(r, arr) ((arr)[rng_below((r), ODS_ARRAY_LEN(arr))])

struct uuid {
	uint64_t hi, lo;
};
struct uuid uuid_draw(struct rng *r); /* version 4, RFC 4122 variant */

/* ---- CSV rows: RFC 4180 quoting, LF line ends, an empty unquoted field is NULL ---- */

struct out_csv {
	FILE *f;
	char *path;
	int nfields;     /* fields in the row being built */
	size_t len;      /* bytes in row[] */
	bool overflow;   /* a row did not fit (a bug: rows are small) */
	int write_errno; /* the first write error */
	char row[4096];
	char iobuf[1 << 16];
};

bool out_open(struct out_csv *c, const char *path, const char *header, char *err,
              size_t errlen) ODS_MUST_CHECK;
/* Closes c if open; false with a message naming the file if any write failed. */
bool out_close(struct out_csv *c, char *err, size_t errlen) ODS_MUST_CHECK;
void out_null(struct out_csv *c);
void out_str(struct out_csv *c, const char *s); /* NULL s: a NULL field */
void out_fmt(struct out_csv *c, const char *fmt, ...) ODS_PRINTF(2, 3);
void out_int(struct out_csv *c, int64_t v);
void out_dec(struct out_csv *c, int64_t v, int scale); /* v / 10^scale: 12345, 2 -> 123.45 */
void out_ts(struct out_csv *c, int64_t t);             /* RFC 3339 UTC; t < 0: NULL */
void out_date(struct out_csv *c, int64_t t);           /* YYYY-MM-DD; t < 0: NULL */
void out_uuid(struct out_csv *c, struct uuid u);
void out_phone(struct out_csv *c, struct rng *r); /* a fictional +1-NNN-555-NNNN */
void out_end(struct out_csv *c);                  /* ends the row and writes it */

/* "YYYY-MM-DDTHH:MM:SSZ" (years 2000-9999) -> seconds since the epoch. */
bool demo_parse_time(const char *s, int64_t *t) ODS_MUST_CHECK;

/* ---- shared vocabulary ---- */

#define NREGIONS 5
extern const char *const demo_regions[NREGIONS];
extern const char *const demo_cities[NREGIONS][4];
extern const char *const demo_first_names[32];
extern const char *const demo_last_names[32];
/* The ASCII letters of s, lowercased, for e-mail local parts: "O'Brien" -> "obrien". */
const char *demo_slug(const char *s, char *buf, size_t len);

/* ---- the run ---- */

enum demo_file {
	/* synced extracts, out_dir/<table>.csv (demo.c, then demo_ops.c) */
	F_CUSTOMER,
	F_RISK,
	F_ORDER,
	F_PAYMENT,
	F_SHIPMENT,
	F_HISTORY,
	F_RISK_EVENT,
	F_PRODUCT,
	F_INVENTORY,
	F_TECHNICIAN,
	F_WORK_ORDER,
	/* native seeds, out_dir/native/<table>.csv, in insertion (foreign key) order */
	F_SUPPORT_CASE,
	F_CASE_NOTE,
	F_FRAUD_CASE,
	F_STORE_ACTION,
	F_DISPATCH,
	F_WO_UPDATE,
	F_COUNT
};

struct demo_table {
	const char *name;
	const char *header; /* the column names, in the table's column order */
};

#define FRESH_COLUMNS ",_source_committed_at,_synced_at"
extern const struct demo_table demo_ops_tables[F_SUPPORT_CASE - F_PRODUCT];
extern const struct demo_table demo_native_tables[F_COUNT - F_SUPPORT_CASE];

/* Replication / pipeline delay before as_of, by sync mode (ods.synced_tables.mode). */
enum { LAG_CONTINUOUS = 90, LAG_TRIGGERED = 600, LAG_SNAPSHOT = 1800 };

struct demo {
	uint64_t seed;
	int64_t now; /* as_of, seconds since the epoch */
	long customers, stores, skus, technicians, work_orders;
	struct out_csv out[F_COUNT];
};

/* The freshness columns, then the end of the row: committed up to lag seconds before
 * as_of, but not before the row's last change. */
void demo_fresh(struct demo *d, struct out_csv *c, struct rng *r, int64_t changed, int lag);

int demo_customer_region(const struct demo *d, long customer_id);
void demo_ops_generate(struct demo *d);

/* Technicians are spread round-robin over the regions; every 17th is on leave. */
#define TECH_ON_LEAVE(t) ((t) % 17 == 0)
long demo_technician_for(const struct demo *d, int region, struct rng *r);

/* ---- facts native seed rows need about synced entities ---- */

struct customer_facts {
	long id;
	int region;
	long first_order, norders; /* order ids first_order .. first_order + norders - 1 */
	const int64_t *placed;     /* when each was placed, oldest first */
	bool flagged;
	int64_t flagged_at;
	int risk_score; /* in 1/10000 */
	const char *top_reason;
};

struct position_facts {
	long store, sku_index;
	const char *sku;
	long on_hand;
	int stockout_risk; /* in 1/1000 */
};

enum wo_status {
	WO_NEW,
	WO_SCHEDULED,
	WO_DISPATCHED,
	WO_IN_PROGRESS,
	WO_ON_HOLD,
	WO_COMPLETED,
	WO_CANCELLED
};

struct work_order_facts {
	long id;
	int region;
	enum wo_status status;
	int64_t opened_at, scheduled_start, completed_at; /* -1: NULL */
};

void demo_native_customer(struct demo *d, const struct customer_facts *c);
void demo_native_position(struct demo *d, const struct position_facts *p);
void demo_native_work_order(struct demo *d, const struct work_order_facts *w);

#endif
