/*
 * demo: the synthetic gold extracts behind `odsctl demo generate`.
 *
 * The model. Every entity is a pure function of (seed, kind, id): its attributes come
 * from a random stream seeded by the three (rng_for) and drawn in a fixed order. So
 * the same (customers, seed, as_of) gives byte-identical files, nothing is kept per
 * row, and a later pass re-derives what an earlier one decided (the region of a work
 * order's customer). as_of is "now": what happened happened at or before it (plans,
 * like a promised delivery, may lie after it). _source_committed_at is as_of minus a
 * replication or pipeline delay that depends on the table's sync mode (seconds for
 * CDC, minutes for triggered and snapshot jobs), never before the row's last change;
 * _synced_at repeats it (the loader sets its own).
 *
 * Scale, from N customers with ids 1..N:
 *   customer_current, risk_scores  one row per customer; ~3% flagged, with a high score
 *   order_current                  0-6 orders per customer (~3N) over the last 90 days,
 *                                  ids rising with time within a customer
 *   payment_current                one per order, plus a declined attempt for ~3%
 *   shipment_status_latest         one per order once shipped (a label once paid 2 h+)
 *   order_status_history_30d       the order's transitions (placed, paid, shipped,
 *                                  delivered | placed, [paid,] cancelled: 1-4 in its
 *                                  life) that fall in the last 30 days
 *   risk_event_history_7d          2-6 per flagged customer, 1 for ~4% of the others
 *   product_catalog                max(50, N/400) SKUs                     (demo_ops.c)
 *   inventory_position             max(5, N/2000) stores x every SKU
 *   technician_profile             max(5, N/1000), round-robin over 5 regions
 *   work_order_current             max(10, N/20), opened in the last 30 days
 * Native seed rows (demo_native.c) are written from the same passes, next to the
 * entity they belong to, so they only ever refer to rows that exist.
 */
#include "autoconfig.h"

#include "admin/demo.h"
#include "admin/demo_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static const struct demo_table customer_tables[F_PRODUCT] = {
        [F_CUSTOMER] = {"customer_current", "customer_id,email,full_name,tier,segment,status,"
                                            "region,city,phone,signed_up_at,"
                                            "lifetime_value" FRESH_COLUMNS},
        [F_RISK] = {"risk_scores", "customer_id,risk_score,risk_band,model_version,scored_at,"
                                   "flagged_at,top_reason" FRESH_COLUMNS},
        [F_ORDER] = {"order_current", "order_id,customer_id,status,channel,ordered_at,"
                                      "status_changed_at,item_count,total_amount,currency,"
                                      "promised_delivery_at,sla_status" FRESH_COLUMNS},
        [F_PAYMENT] = {"payment_current", "payment_id,order_id,customer_id,method,status,amount,"
                                          "currency,card_last4,initiated_at,captured_at,"
                                          "status_changed_at" FRESH_COLUMNS},
        [F_SHIPMENT] = {"shipment_status_latest", "shipment_id,order_id,carrier,tracking_number,"
                                                  "status,last_event_at,last_location,"
                                                  "estimated_delivery_at,"
                                                  "delivered_at" FRESH_COLUMNS},
        [F_HISTORY] = {"order_status_history_30d",
                       "order_id,seq,status,changed_at,changed_by,reason" FRESH_COLUMNS},
        [F_RISK_EVENT] = {"risk_event_history_7d", "event_id,customer_id,event_type,severity,"
                                                   "score_impact,occurred_at,order_id,"
                                                   "detail" FRESH_COLUMNS},
};

void demo_fresh(struct demo *d, struct out_csv *c, struct rng *r, int64_t changed, int lag)
{
	int64_t t = d->now - rng_range(r, 1, lag);

	if (t < changed)
		t = changed;
	out_ts(c, t);
	out_ts(c, t);
	out_end(c);
}

int demo_customer_region(const struct demo *d, long customer_id)
{
	struct rng r = rng_for(d->seed, K_REGION, (uint64_t)customer_id);
	return (int)rng_below(&r, NREGIONS);
}

/* ---- customers and risk ---- */

static void write_customer(struct demo *d, const struct customer_facts *cf)
{
	static const char *const tiers[] = {"bronze", "silver", "gold", "platinum"};
	static const unsigned tier_w[] = {50, 30, 15, 5};
	static const char *const segments[] = {"loyal", "occasional", "high_value", "at_risk",
	                                       "dormant"};
	static const char *const statuses[] = {"active", "suspended", "closed"};
	static const unsigned status_w[] = {960, 30, 10};
	static const char *const domains[] = {"example.com", "example.net", "example.org"};
	struct out_csv *c = &d->out[F_CUSTOMER];
	struct rng r = rng_for(d->seed, K_CUSTOMER, (uint64_t)cf->id);
	const char *first = RNG_PICK(&r, demo_first_names), *last = RNG_PICK(&r, demo_last_names);
	int tier = rng_weighted(&r, tier_w, 4);
	int64_t signed_up = d->now - rng_range(&r, DAY, 6 * 365 * DAY);
	char s1[32], s2[32];

	out_int(c, cf->id);
	out_fmt(c, "%s.%s%ld@%s", demo_slug(first, s1, sizeof(s1)), demo_slug(last, s2, sizeof(s2)),
	        cf->id, RNG_PICK(&r, domains));
	out_fmt(c, "%s %s", first, last);
	out_str(c, tiers[tier]);
	out_str(c, d->now - signed_up < 90 * DAY ? "new" : RNG_PICK(&r, segments));
	out_str(c, statuses[rng_weighted(&r, status_w, 3)]);
	out_str(c, demo_regions[cf->region]);
	out_str(c, demo_cities[cf->region][rng_below(&r, 4)]);
	if (rng_chance(&r, 850))
		out_phone(c, &r);
	else
		out_null(c);
	out_ts(c, signed_up);
	out_dec(c, rng_range(&r, 0, 150000) * (tier + 1), 2);
	demo_fresh(d, c, &r, signed_up, LAG_CONTINUOUS);
}

static void write_risk(struct demo *d, struct customer_facts *cf)
{
	static const char *const reasons[] = {"velocity", "new_device", "geo_mismatch",
	                                      "chargeback_history", "synthetic_identity"};
	struct out_csv *c = &d->out[F_RISK];
	struct rng r = rng_for(d->seed, K_RISK, (uint64_t)cf->id);
	int64_t scored = d->now - rng_range(&r, 2 * MINUTE, DAY);
	int s;

	cf->flagged = rng_chance(&r, 30);
	if (cf->flagged) {
		s = (int)rng_range(&r, 8500, 9990);
		cf->flagged_at = scored - rng_range(&r, 0, 6 * DAY);
	} else {
		int u = (int)rng_below(&r, 100);
		s = u * u * 8 / 10 + (int)rng_below(&r, 80); /* skewed low, below 0.8 */
		cf->flagged_at = -1;
	}
	cf->risk_score = s;
	cf->top_reason = s >= 6000 ? RNG_PICK(&r, reasons) : NULL;
	out_int(c, cf->id);
	out_dec(c, s, 4);
	out_str(c, s < 3000 ? "low" : s < 6000 ? "medium" : s < 8500 ? "high" : "critical");
	out_str(c, "fraud-gbm-7.2");
	out_ts(c, scored);
	out_ts(c, cf->flagged_at);
	out_str(c, cf->top_reason);
	demo_fresh(d, c, &r, scored, LAG_TRIGGERED);
}

/* ---- orders, payments, shipments, status history ---- */

enum order_status { O_PLACED, O_PAID, O_SHIPPED, O_DELIVERED, O_CANCELLED };
static const char *const order_statuses[] = {"placed", "paid", "shipped", "delivered", "cancelled"};

/* An order's life: len planned transitions, of which the first n happened by as_of. */
struct order {
	long id, customer;
	int n, len;
	enum order_status st[4];
	int64_t at[4];
	int cancel;      /* 0: not cancelled; 1: before payment; 2: after payment */
	bool pay_failed; /* cancel 1 because the payment was declined */
	int64_t amount;  /* cents */
};

/* The next id of each sequence. */
struct ids {
	long order, payment, shipment, event;
};

static void write_payment(struct demo *d, struct rng *r, const struct order *o, long id,
                          const char *status, int64_t initiated, int64_t captured, int64_t changed)
{
	static const char *const methods[] = {"card", "paypal", "bank_transfer", "gift_card"};
	static const unsigned method_w[] = {70, 15, 5, 10};
	struct out_csv *c = &d->out[F_PAYMENT];
	int method = rng_weighted(r, method_w, 4);

	out_int(c, id);
	out_int(c, o->id);
	out_int(c, o->customer);
	out_str(c, methods[method]);
	out_str(c, status);
	out_dec(c, o->amount, 2);
	out_str(c, "USD");
	if (method == 0)
		out_fmt(c, "%04d", (int)rng_below(r, 10000));
	else
		out_null(c);
	out_ts(c, initiated);
	out_ts(c, captured);
	out_ts(c, changed);
	demo_fresh(d, c, r, changed, LAG_CONTINUOUS);
}

static void write_payments(struct demo *d, struct rng *r, const struct order *o, struct ids *ids)
{
	int64_t init = o->at[0] + rng_range(r, 5, 59), captured = -1, changed = init;
	const char *status = "authorized";

	if (o->cancel == 0 && rng_chance(r, 30))
		write_payment(d, r, o, ids->payment++, "failed", init - 4, -1, init - 4);
	if (o->n > 1 && o->cancel == 1) {
		status = o->pay_failed ? "failed" : "voided";
		changed = o->at[1];
	} else if (o->n > 1) {
		bool refunded = o->cancel == 2 && o->n == 3;
		status = refunded ? "refunded" : "captured";
		captured = o->at[1];
		changed = o->at[refunded ? 2 : 1];
	}
	write_payment(d, r, o, ids->payment++, status, init, captured, changed);
}

static void write_shipment(struct demo *d, struct rng *r, const struct order *o, struct ids *ids)
{
	static const char *const carriers[] = {"UPS", "FedEx", "USPS", "DHL"};
	static const char *const prefixes[] = {"1Z", "7", "94", "JD"};
	static const char *const hubs[] = {"Memphis, TN", "Louisville, KY", "Reno, NV",
	                                   "Edison, NJ",  "Dallas, TX",     "Atlanta, GA"};
	struct out_csv *c = &d->out[F_SHIPMENT];
	int64_t now = d->now, last, eta, delivered = -1;
	const char *status;
	int carrier;

	if (o->len == 4 && o->n >= 3) {
		int64_t shipped = o->at[2];
		if (o->n == 4) {
			status = "delivered";
			last = delivered = o->at[3];
		} else {
			last = shipped + (int64_t)rng_below(r, (uint64_t)(now - shipped) + 1);
			status = rng_chance(r, 40)                           ? "exception"
			         : now - shipped > DAY && rng_chance(r, 500) ? "out_for_delivery"
			                                                     : "in_transit";
		}
		eta = shipped + 3 * DAY;
	} else if (o->len == 4 && o->n == 2 && now - o->at[1] > 2 * HOUR) {
		status = "label_created";
		last = o->at[1] + rng_range(r, 10 * MINUTE, 2 * HOUR);
		eta = o->at[1] + 4 * DAY;
	} else {
		return;
	}
	carrier = (int)rng_below(r, 4);
	out_int(c, ids->shipment++);
	out_int(c, o->id);
	out_str(c, carriers[carrier]);
	out_fmt(c, "%s%012llu", prefixes[carrier],
	        (unsigned long long)rng_below(r, UINT64_C(1000000000000)));
	out_str(c, status);
	out_ts(c, last);
	out_str(c, RNG_PICK(r, hubs));
	out_ts(c, eta);
	out_ts(c, delivered);
	demo_fresh(d, c, r, last, LAG_CONTINUOUS);
}

/* The transitions of the last 30 days; seq numbers them over the order's life. */
static void write_history(struct demo *d, struct rng *r, const struct order *o)
{
	static const char *const actors[] = {"customer", "payment-service", "warehouse", "carrier"};
	struct out_csv *c = &d->out[F_HISTORY];

	for (int i = 0; i < o->n; i++) {
		const char *actor = "support", *reason = "out_of_stock"; /* cancelled when paid */
		if (o->at[i] < d->now - 30 * DAY)
			continue;
		if (o->st[i] != O_CANCELLED) {
			actor = actors[o->st[i]];
			reason = NULL;
		} else if (o->cancel == 1) {
			actor = o->pay_failed ? "payment-service" : "customer";
			reason = o->pay_failed ? "payment_declined" : "customer_request";
		}
		out_int(c, o->id);
		out_int(c, i + 1);
		out_str(c, order_statuses[o->st[i]]);
		out_ts(c, o->at[i]);
		out_str(c, actor);
		out_str(c, reason);
		demo_fresh(d, c, r, o->at[i], LAG_TRIGGERED);
	}
}

static void write_order(struct demo *d, struct rng *r, long id, long customer, int64_t placed,
                        struct ids *ids)
{
	static const char *const channels[] = {"web", "mobile", "store", "phone"};
	static const unsigned channel_w[] = {55, 30, 10, 5};
	struct out_csv *c = &d->out[F_ORDER];
	struct order o = {.id = id, .customer = customer, .st = {O_PLACED}, .at = {placed}};
	int channel = rng_weighted(r, channel_w, 4);
	int items = (int)rng_range(r, 1, 6);
	int64_t now = d->now, promised = placed + (channel == 2 ? 4 : 5) * DAY;
	const char *sla;

	o.amount = items * rng_range(r, 799, 12999);
	o.cancel = rng_chance(r, 60) ? 1 + (int)rng_below(r, 2) : 0;
	o.pay_failed = o.cancel == 1 && rng_chance(r, 300);
	if (o.cancel == 1) {
		o.st[1] = O_CANCELLED;
		o.at[1] = placed + rng_range(r, 5 * MINUTE, 2 * HOUR);
		o.len = 2;
	} else {
		o.st[1] = O_PAID;
		o.at[1] = placed + rng_range(r, MINUTE, 30 * MINUTE);
		o.st[2] = o.cancel ? O_CANCELLED : O_SHIPPED;
		o.at[2] = o.at[1] +
		          (o.cancel ? rng_range(r, HOUR, DAY) : rng_range(r, 4 * HOUR, 2 * DAY));
		o.st[3] = O_DELIVERED;
		o.at[3] = o.at[2] + rng_range(r, DAY, 4 * DAY);
		o.len = o.cancel ? 3 : 4;
	}
	for (o.n = 1; o.n < o.len && o.at[o.n] <= now; o.n++)
		;
	if (o.st[o.n - 1] == O_CANCELLED)
		sla = NULL;
	else if (o.st[o.n - 1] == O_DELIVERED)
		sla = o.at[3] <= promised ? "met" : "breached";
	else
		sla = now > promised ? "breached" : promised - now < DAY ? "at_risk" : "on_track";

	out_int(c, id);
	out_int(c, customer);
	out_str(c, order_statuses[o.st[o.n - 1]]);
	out_str(c, channels[channel]);
	out_ts(c, placed);
	out_ts(c, o.at[o.n - 1]);
	out_int(c, items);
	out_dec(c, o.amount, 2);
	out_str(c, "USD");
	out_ts(c, promised);
	out_str(c, sla);
	demo_fresh(d, c, r, o.at[o.n - 1], LAG_CONTINUOUS);

	write_payments(d, r, &o, ids);
	write_shipment(d, r, &o, ids);
	write_history(d, r, &o);
}

/* 0-6 orders placed in the last 90 days, oldest first; their times go to placed[]. */
static long write_orders(struct demo *d, const struct customer_facts *cf, int64_t placed[6],
                         struct ids *ids)
{
	struct rng r = rng_for(d->seed, K_ORDERS, (uint64_t)cf->id);
	int n = (int)rng_below(&r, 7);

	for (int i = 0; i < n; i++) {
		int64_t t = d->now - rng_range(&r, MINUTE, 90 * DAY);
		int j = i;
		for (; j > 0 && placed[j - 1] > t; j--)
			placed[j] = placed[j - 1];
		placed[j] = t;
	}
	for (int i = 0; i < n; i++)
		write_order(d, &r, ids->order++, cf->id, placed[i], ids);
	return n;
}

/* ---- risk events ---- */

/* At most one draw per call: the order in which arguments are evaluated is unspecified. */
static void write_event_detail(struct out_csv *c, struct rng *r, int type)
{
	static const char *const countries[] = {"DE", "BR", "NG", "VN", "RO", "CA"};
	int n;

	switch (type) {
	case 0:
		out_fmt(c, "login from a new device, IP 203.0.113.%d", (int)rng_below(r, 256));
		break;
	case 1:
		n = (int)rng_range(r, 3, 9);
		out_fmt(c, "%d orders in %d minutes", n, (int)rng_range(r, 2, 15));
		break;
	case 2:
		out_fmt(c, "billing country US, IP geolocated to %s", RNG_PICK(r, countries));
		break;
	case 3:
		out_fmt(c, "card ending %04d added", (int)rng_below(r, 10000));
		break;
	case 4:
		out_str(c, "password reset by e-mail link");
		break;
	case 5:
		out_fmt(c, "order total %dx the customer's average", (int)rng_range(r, 3, 12));
		break;
	default:
		out_str(c, "chargeback filed: \"item not received\"");
	}
}

static void write_risk_events(struct demo *d, const struct customer_facts *cf,
                              const int64_t placed[6], struct ids *ids)
{
	static const char *const types[] = {"new_device_login", "velocity_spike", "geo_mismatch",
	                                    "card_added",       "password_reset", "large_order",
	                                    "chargeback"};
	static const unsigned type_w[] = {25, 15, 15, 15, 10, 12, 8};
	struct out_csv *c = &d->out[F_RISK_EVENT];
	struct rng r = rng_for(d->seed, K_RISK_EVENTS, (uint64_t)cf->id);
	int n = cf->flagged ? (int)rng_range(&r, 2, 6) : rng_chance(&r, 40) ? 1 : 0;
	int last = (int)cf->norders - 1;
	/* order-related events point at the latest order if it is from this week */
	bool recent = last >= 0 && placed[last] >= d->now - 7 * DAY + MINUTE;

	for (int i = 0; i < n; i++) {
		int type = rng_weighted(&r, type_w, 7);
		int64_t at = d->now - rng_range(&r, MINUTE, 7 * DAY - 2 * MINUTE);
		bool about_order = recent && (type == 1 || type == 5 || type == 6);
		if (about_order)
			at = placed[last] +
			     (int64_t)rng_below(&r, (uint64_t)(d->now - placed[last]) + 1);
		out_int(c, ids->event++);
		out_int(c, cf->id);
		out_str(c, types[type]);
		if (cf->flagged)
			out_str(c, rng_chance(&r, 400) ? "critical" : "high");
		else
			out_str(c, rng_chance(&r, 700) ? "low" : "medium");
		out_dec(c, cf->flagged ? rng_range(&r, 300, 2500) : rng_range(&r, 10, 800), 4);
		out_ts(c, at);
		if (about_order)
			out_int(c, cf->first_order + last);
		else
			out_null(c);
		write_event_detail(c, &r, type);
		demo_fresh(d, c, &r, at, LAG_TRIGGERED);
	}
}

static void customer_pass(struct demo *d)
{
	struct ids ids = {1, 1, 1, 1};
	int64_t placed[6];

	for (long id = 1; id <= d->customers; id++) {
		struct customer_facts cf = {
		        .id = id, .region = demo_customer_region(d, id), .placed = placed};
		write_customer(d, &cf);
		write_risk(d, &cf);
		cf.first_order = ids.order;
		cf.norders = write_orders(d, &cf, placed, &ids);
		write_risk_events(d, &cf, placed, &ids);
		demo_native_customer(d, &cf);
	}
}

/* ---- the run ---- */

/* mkdir -p */
static bool make_dirs(const char *path, char *err, size_t errlen)
{
	char *p = xstrdup(path);
	bool ok = true;

	for (char *s = p + 1;; s++) {
		char saved = *s;
		if (saved != '/' && saved != '\0')
			continue;
		*s = '\0';
		if (mkdir(p, 0777) != 0 && errno != EEXIST)
			ok = errf(err, errlen, "cannot create directory %s: %s", p,
			          strerror(errno));
		*s = saved;
		if (!ok || saved == '\0')
			break;
	}
	free(p);
	return ok;
}

static bool open_files(struct demo *d, const char *dir, char *err, size_t errlen)
{
	for (int f = 0; f < F_COUNT; f++) {
		const struct demo_table *t = f < F_PRODUCT ? &customer_tables[f]
		                             : f < F_SUPPORT_CASE
		                                     ? &demo_ops_tables[f - F_PRODUCT]
		                                     : &demo_native_tables[f - F_SUPPORT_CASE];
		char *path =
		        xasprintf("%s/%s%s.csv", dir, f < F_SUPPORT_CASE ? "" : "native/", t->name);
		bool ok = out_open(&d->out[f], path, t->header, err, errlen);
		free(path);
		if (!ok)
			return false;
	}
	return true;
}

/* Closes every file; the first failure is the one reported. */
static bool close_files(struct demo *d, bool ok, char *err, size_t errlen)
{
	for (int f = 0; f < F_COUNT; f++)
		ok = out_close(&d->out[f], ok ? err : NULL, ok ? errlen : 0) && ok;
	return ok;
}

bool demo_generate(const struct demo_opts *o, char *err, size_t errlen)
{
	long n = o->customers ? o->customers : DEMO_DEFAULT_CUSTOMERS;
	struct demo *d;
	int64_t now;
	char *native;
	bool ok;

	if (!o->out_dir || !*o->out_dir)
		return errf(err, errlen, "no output directory");
	if (n < 1 || n > 100000000)
		return errf(err, errlen, "customers must be from 1 to 100000000, not %ld", n);
	if (!o->as_of)
		now = (int64_t)time(NULL) / MINUTE * MINUTE;
	else if (!demo_parse_time(o->as_of, &now))
		return errf(err, errlen, "as-of %s: expected YYYY-MM-DDTHH:MM:SSZ (UTC)", o->as_of);

	native = xasprintf("%s/native", o->out_dir);
	ok = make_dirs(native, err, errlen);
	free(native);
	if (!ok)
		return false;

	d = xcalloc(1, sizeof(*d));
	d->seed = o->seed;
	d->now = now;
	d->customers = n;
	d->stores = n / 2000 > 5 ? n / 2000 : 5;
	d->skus = n / 400 > 50 ? n / 400 : 50;
	d->technicians = n / 1000 > 5 ? n / 1000 : 5;
	d->work_orders = n / 20 > 10 ? n / 20 : 10;
	ok = open_files(d, o->out_dir, err, errlen);
	if (ok) {
		customer_pass(d);
		demo_ops_generate(d);
	}
	ok = close_files(d, ok, err, errlen);
	free(d);
	return ok;
}
