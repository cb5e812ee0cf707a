/*
 * demo_ops: the operations side of the demo data (see demo.c for the model).
 *
 * Products and their positions in every store are written in one pass, SKU by SKU,
 * so a position knows whether its product is discontinued. Technicians are spread
 * round-robin over the regions (technician t works in region (t - 1) % 5), which lets
 * a work order find a technician of its region without a lookup table. Work orders
 * take the region of their customer, re-derived from the customer's region stream.
 */
#include "autoconfig.h"

#include "admin/demo_internal.h"

#include <string.h>

const struct demo_table demo_ops_tables[F_SUPPORT_CASE - F_PRODUCT] = {
        [F_PRODUCT - F_PRODUCT] = {"product_catalog",
                                   "sku,product_name,category,brand,unit_price,currency,status,"
                                   "pack_size,supplier_lead_days,launched_on" FRESH_COLUMNS},
        [F_INVENTORY - F_PRODUCT] = {"inventory_position",
                                     "store_id,sku,on_hand,reserved,in_transit,stockout_risk,"
                                     "reorder_point,next_delivery_at,"
                                     "last_counted_at" FRESH_COLUMNS},
        [F_TECHNICIAN - F_PRODUCT] = {"technician_profile",
                                      "technician_id,full_name,email,phone,region,skills,"
                                      "certification_level,status,hired_on" FRESH_COLUMNS},
        [F_WORK_ORDER - F_PRODUCT] = {"work_order_current",
                                      "work_order_id,customer_id,status,work_type,priority,"
                                      "region,site_address,opened_at,scheduled_start,sla_due_at,"
                                      "completed_at,sla_breach_risk" FRESH_COLUMNS},
};

/* ---- products and inventory positions ---- */

static const char *const categories[] = {"Tools",      "Paint",    "Garden",
                                         "Electrical", "Plumbing", "Storage"};
static const char *const products[][4] = {
        {"Cordless Drill 18V", "Claw Hammer, 16 oz", "Screwdriver Set (12)", "Tape Measure 25'"},
        {"Interior Paint, Matte 1 gal", "Primer 1 qt", "Roller Kit 9\"", "Painter's Tape 2\""},
        {"Garden Hose 50'", "Pruning Shears", "Potting Soil 25 qt", "Leaf Rake, 24\""},
        {"LED Bulb A19 4-pack", "Extension Cord 25'", "Smart Plug", "Outlet Tester"},
        {"PVC Pipe 1/2\" x 10'", "Faucet Cartridge", "Flange Plunger", "Thread Seal Tape"},
        {"Shelf Bracket 12\"", "Storage Bin 18 gal", "Wall Hook, Heavy Duty", "Tool Chest 26\""},
};
static const char *const brands[] = {"Acme",      "Nordvärk", "Bolt & Co",
                                     "Evergreen", "Stanmore", "Kestrel"};

/* Writes product k; returns whether it is discontinued. */
static bool write_product(struct demo *d, long k, const char *sku)
{
	static const int pack_sizes[] = {1, 1, 1, 2, 4, 6, 12};
	struct out_csv *c = &d->out[F_PRODUCT];
	struct rng r = rng_for(d->seed, K_PRODUCT, (uint64_t)k);
	int cat = (int)rng_below(&r, ODS_ARRAY_LEN(categories));
	const char *brand = RNG_PICK(&r, brands);
	bool discontinued = rng_chance(&r, 50);

	out_str(c, sku);
	out_fmt(c, "%s %s", brand, products[cat][rng_below(&r, 4)]);
	out_str(c, categories[cat]);
	out_str(c, brand);
	out_dec(c, rng_range(&r, 199, 29999), 2);
	out_str(c, "USD");
	out_str(c, discontinued ? "discontinued" : "active");
	out_int(c, RNG_PICK(&r, pack_sizes));
	out_int(c, rng_range(&r, 2, 30));
	out_date(c, d->now - rng_range(&r, 30 * DAY, 8 * 365 * DAY));
	demo_fresh(d, c, &r, -1, LAG_SNAPSHOT);
	return discontinued;
}

/* Stockout risk in 1/1000 from what can be sold against the reorder point. */
static int stockout_risk(struct rng *r, long sellable, long reorder_point)
{
	if (sellable <= 0)
		return (int)rng_range(r, 950, 1000);
	if (sellable < reorder_point)
		return (int)(600 + (reorder_point - sellable) * 349 / reorder_point);
	if (sellable < 3 * reorder_point)
		return (int)(100 + (3 * reorder_point - sellable) * 499 / (2 * reorder_point));
	return (int)rng_below(r, 100);
}

static void write_position(struct demo *d, long store, long k, const char *sku, bool discontinued)
{
	struct out_csv *c = &d->out[F_INVENTORY];
	struct rng r = rng_for(d->seed, K_POSITION, (uint64_t)store << 32 | (uint64_t)k);
	long u = (long)rng_below(&r, 241);
	long on_hand = discontinued ? rng_range(&r, 0, 8) : rng_chance(&r, 50) ? 0 : u * u / 240;
	long reserved = (long)rng_below(&r, (uint64_t)on_hand / 4 + 1);
	long in_transit = !discontinued && rng_chance(&r, 300) ? rng_range(&r, 12, 120) : 0;
	long reorder_point = rng_range(&r, 10, 40);
	int risk = stockout_risk(&r, on_hand - reserved + in_transit, reorder_point);
	int64_t counted = d->now - rng_range(&r, HOUR, 30 * DAY);

	out_int(c, store);
	out_str(c, sku);
	out_int(c, on_hand);
	out_int(c, reserved);
	out_int(c, in_transit);
	out_dec(c, risk, 3);
	out_int(c, reorder_point);
	out_ts(c, in_transit ? d->now + rng_range(&r, 2 * HOUR, 5 * DAY) : -1);
	out_ts(c, counted);
	demo_fresh(d, c, &r, counted, LAG_TRIGGERED);

	struct position_facts p = {store, k, sku, on_hand, risk};
	demo_native_position(d, &p);
}

/* ---- technicians ---- */

long demo_technician_for(const struct demo *d, int region, struct rng *r)
{
	long per_region = (d->technicians - region - 1) / NREGIONS + 1;
	long t = region + 1 + NREGIONS * (long)rng_below(r, (uint64_t)per_region);

	return TECH_ON_LEAVE(t) ? t - NREGIONS : t; /* a colleague of the same region */
}

static void write_technician(struct demo *d, long t)
{
	static const char *const skills[] = {"install",    "repair",     "maintenance",
	                                     "inspection", "electrical", "hvac"};
	struct out_csv *c = &d->out[F_TECHNICIAN];
	struct rng r = rng_for(d->seed, K_TECHNICIAN, (uint64_t)t);
	const char *first = RNG_PICK(&r, demo_first_names), *last = RNG_PICK(&r, demo_last_names);
	unsigned mask = 1 + (unsigned)rng_below(&r, 63);
	char s1[32], s2[32], set[96] = "{";

	for (unsigned i = 0; i < ODS_ARRAY_LEN(skills); i++) {
		if (!(mask & 1u << i))
			continue;
		if (set[1])
			strcat(set, ",");
		strcat(set, skills[i]);
	}
	strcat(set, "}");
	out_int(c, t);
	out_fmt(c, "%s %s", first, last);
	out_fmt(c, "%s.%s.%ld@field.example.com", demo_slug(first, s1, sizeof(s1)),
	        demo_slug(last, s2, sizeof(s2)), t);
	out_phone(c, &r);
	out_str(c, demo_regions[(t - 1) % NREGIONS]);
	out_str(c, set);
	out_int(c, rng_range(&r, 1, 3));
	out_str(c, TECH_ON_LEAVE(t) ? "on_leave" : "active");
	out_date(c, d->now - rng_range(&r, 90 * DAY, 12 * 365 * DAY));
	demo_fresh(d, c, &r, -1, LAG_SNAPSHOT);
}

/* ---- work orders ---- */

static const char *const wo_statuses[] = {"new",     "scheduled", "dispatched", "in_progress",
                                          "on_hold", "completed", "cancelled"};

static void write_work_order(struct demo *d, long id)
{
	static const char *const types[] = {"install", "repair", "maintenance", "inspection"};
	static const unsigned type_w[] = {25, 40, 25, 10};
	static const unsigned prio_w[] = {5, 15, 45, 25, 10};
	static const int sla_hours[] = {4, 8, 24, 48, 72};
	/* new, scheduled, dispatched, in progress, on hold, completed, cancelled */
	static const unsigned status_w[2][7] = {{8, 20, 15, 17, 5, 30, 5}, /* this week */
	                                        {0, 0, 0, 2, 6, 80, 12}};  /* older */
	static const char *const streets[] = {"Oak St", "Maple Ave", "Main St",
	                                      "Elm Dr", "Cedar Ln",  "Lakeview Rd"};
	struct out_csv *c = &d->out[F_WORK_ORDER];
	struct rng r = rng_for(d->seed, K_WORK_ORDER, (uint64_t)id);
	long customer = 1 + (long)rng_below(&r, (uint64_t)d->customers);
	struct work_order_facts w = {.id = id,
	                             .region = demo_customer_region(d, customer),
	                             .scheduled_start = -1,
	                             .completed_at = -1};
	int type = rng_weighted(&r, type_w, 4), prio = rng_weighted(&r, prio_w, 5);
	int64_t now = d->now, age = rng_range(&r, HOUR, 30 * DAY), due, changed;
	int risk = 0, house;
	const char *street;

	w.opened_at = now - age;
	if (age < 4 * HOUR)
		w.status = rng_chance(&r, 600) ? WO_NEW : WO_SCHEDULED;
	else
		w.status = (enum wo_status)rng_weighted(&r, status_w[age > 7 * DAY], 7);
	if (w.status == WO_SCHEDULED)
		w.scheduled_start = now + rng_range(&r, HOUR, 5 * DAY);
	else if (w.status == WO_DISPATCHED)
		w.scheduled_start = now + rng_range(&r, -HOUR, 4 * HOUR);
	else if (w.status != WO_NEW)
		w.scheduled_start = w.opened_at + rng_range(&r, 30 * MINUTE,
		                                            age / 2 < 3 * DAY ? age / 2 : 3 * DAY);
	if (w.status == WO_COMPLETED)
		w.completed_at = w.scheduled_start +
		                 (int64_t)rng_below(&r, (uint64_t)(now - w.scheduled_start));
	due = w.opened_at + sla_hours[prio] * HOUR;
	if (w.status != WO_COMPLETED && w.status != WO_CANCELLED)
		risk = now > due              ? (int)rng_range(&r, 900, 1000)
		       : due - now < 4 * HOUR ? (int)rng_range(&r, 600, 899)
		                              : (int)rng_range(&r, 50, 500);
	changed = w.completed_at >= 0 ? w.completed_at : w.opened_at;

	out_int(c, id);
	out_int(c, customer);
	out_str(c, wo_statuses[w.status]);
	out_str(c, types[type]);
	out_int(c, prio + 1);
	out_str(c, demo_regions[w.region]);
	house = (int)rng_range(&r, 1, 9999);
	street = RNG_PICK(&r, streets);
	out_fmt(c, "%d %s, %s", house, street, demo_cities[w.region][rng_below(&r, 4)]);
	out_ts(c, w.opened_at);
	out_ts(c, w.scheduled_start);
	out_ts(c, due);
	out_ts(c, w.completed_at);
	out_dec(c, risk, 3);
	demo_fresh(d, c, &r, changed, LAG_CONTINUOUS);

	demo_native_work_order(d, &w);
}

void demo_ops_generate(struct demo *d)
{
	for (long k = 1; k <= d->skus; k++) {
		char sku[32];
		snprintf(sku, sizeof(sku), "SKU-%06ld", k);
		bool discontinued = write_product(d, k, sku);
		for (long s = 1; s <= d->stores; s++)
			write_position(d, s, k, sku, discontinued);
	}
	for (long t = 1; t <= d->technicians; t++)
		write_technician(d, t);
	for (long w = 1; w <= d->work_orders; w++)
		write_work_order(d, w);
}
