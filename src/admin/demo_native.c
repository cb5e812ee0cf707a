/*
 * demo_native: seed rows for the native tables (see demo.c for the model).
 *
 * demo.c and demo_ops.c call in right after writing the synced entity a seed row
 * belongs to, so every reference (customer, order, store x SKU, work order,
 * technician) points at a row that exists, and every note follows its case. uuids are
 * drawn from the entity's own stream, so they are as reproducible as the rest. Seeds
 * set created_at (at or before as_of) and created_by; version, updated_at and
 * deleted_at are left to their defaults. What is seeded:
 *   support_cases         open / pending cases for ~2% of customers, some with notes
 *   case_notes            1-3 notes on ~60% of those cases
 *   fraud_cases           an open or in_review case for every flagged customer
 *   store_actions         on ~15% of the positions at risk of a stockout, a few others
 *   dispatch_assignments  for the open work orders, and those completed in the last
 *   work_order_updates    7 days: who worked them (now and before), all in the last 7 days
 */
#include "autoconfig.h"

#include "admin/demo_internal.h"

const struct demo_table demo_native_tables[F_COUNT - F_SUPPORT_CASE] = {
        [F_SUPPORT_CASE - F_SUPPORT_CASE] = {"support_cases",
                                             "case_id,customer_id,status,subject,description,"
                                             "priority,assigned_to,channel,order_id,created_at,"
                                             "created_by"},
        [F_CASE_NOTE - F_SUPPORT_CASE] = {"case_notes",
                                          "note_id,case_id,body,visibility,created_at,created_by"},
        [F_FRAUD_CASE - F_SUPPORT_CASE] = {"fraud_cases",
                                           "case_id,customer_id,status,assigned_to,region,"
                                           "priority,reason,created_at,created_by"},
        [F_STORE_ACTION - F_SUPPORT_CASE] = {"store_actions",
                                             "action_id,store_id,sku,action_type,status,quantity,"
                                             "note,completed_at,created_at,created_by"},
        [F_DISPATCH - F_SUPPORT_CASE] = {"dispatch_assignments",
                                         "assignment_id,work_order_id,technician_id,status,"
                                         "assigned_at,scheduled_for,note,created_at,created_by"},
        [F_WO_UPDATE - F_SUPPORT_CASE] = {"work_order_updates",
                                          "update_id,work_order_id,technician_id,kind,note,"
                                          "created_at,created_by"},
};

/* A time in [t, t + (end - t) / 2]: events spread out towards end, never past it. */
static int64_t later(struct rng *r, int64_t t, int64_t end)
{
	return t + (int64_t)rng_below(r, (uint64_t)(end - t) / 2 + 1);
}

/* ---- support and fraud ---- */

static const struct {
	const char *text;
	bool about_order;
} subjects[] = {
        {"Where is my order?", true},
        {"Package arrived damaged, requesting \"replacement\"", true},
        {"Charged twice for one order", true},
        {"Refund not received", true},
        {"Cancel my order", true},
        {"Cannot log in to my account", false},
        {"Update billing address", false},
        {"Loyalty points missing, tier not updated", false},
};

static void write_case_notes(struct demo *d, struct rng *r, struct uuid case_id, int64_t t)
{
	static const char *const bodies[] = {
	        "Called the customer, left a voicemail.",
	        "Checked carrier tracking: at the local hub, delivery expected in 2 days.",
	        "Asked the payments team to reverse the duplicate charge.",
	        "Customer confirmed the new address, \"Apt 4B\".",
	        "Sent a return label by e-mail.",
	};
	struct out_csv *c = &d->out[F_CASE_NOTE];

	for (int n = (int)rng_range(r, 1, 3); n > 0; n--) {
		t = later(r, t, d->now);
		out_uuid(c, uuid_draw(r));
		out_uuid(c, case_id);
		out_str(c, RNG_PICK(r, bodies));
		out_str(c, rng_chance(r, 200) ? "customer" : "internal");
		out_ts(c, t);
		out_str(c, SEED_ACTOR);
		out_end(c);
	}
}

static void write_support_cases(struct demo *d, const struct customer_facts *cf)
{
	static const char *const descriptions[] = {
	        "Customer called in; details in the notes.",
	        "Customer wrote:\n\"The box was open and one item is missing.\"",
	        "Escalated from chat, customer asked for a supervisor.",
	        "Customer asks for a call back after 5 pm.",
	};
	static const char *const agents[] = {"agent.kim",   "agent.lopez", "agent.okafor",
	                                     "agent.singh", "agent.novak", "agent.moreau"};
	static const char *const channels[] = {"phone", "email", "chat", "web"};
	static const unsigned prio_w[] = {5, 15, 50, 20, 10};
	struct out_csv *c = &d->out[F_SUPPORT_CASE];
	struct rng r = rng_for(d->seed, K_SUPPORT, (uint64_t)cf->id);

	if (!rng_chance(&r, 20))
		return;
	for (int n = rng_chance(&r, 100) ? 2 : 1; n > 0; n--) {
		struct uuid id = uuid_draw(&r);
		int64_t created = d->now - rng_range(&r, 10 * MINUTE, 14 * DAY);
		bool pending = rng_chance(&r, 300);
		int s = (int)rng_below(&r, ODS_ARRAY_LEN(subjects));
		long order = -1;
		/* the latest order placed before the case was opened */
		for (long i = cf->norders - 1; i >= 0 && subjects[s].about_order; i--) {
			if (cf->placed[i] <= created) {
				order = cf->first_order + i;
				break;
			}
		}
		out_uuid(c, id);
		out_int(c, cf->id);
		out_str(c, pending ? "pending" : "open");
		out_str(c, subjects[s].text);
		out_str(c, RNG_PICK(&r, descriptions));
		out_int(c, rng_weighted(&r, prio_w, 5) + 1);
		out_str(c, pending || rng_chance(&r, 500) ? RNG_PICK(&r, agents) : NULL);
		out_str(c, RNG_PICK(&r, channels));
		if (order > 0)
			out_int(c, order);
		else
			out_null(c);
		out_ts(c, created);
		out_str(c, SEED_ACTOR);
		out_end(c);
		if (rng_chance(&r, 600))
			write_case_notes(d, &r, id, created);
	}
}

static void write_fraud_case(struct demo *d, const struct customer_facts *cf)
{
	static const char *const analysts[] = {"analyst.reyes", "analyst.cho", "analyst.berg",
	                                       "analyst.adeyemi"};
	struct out_csv *c = &d->out[F_FRAUD_CASE];
	struct rng r = rng_for(d->seed, K_FRAUD, (uint64_t)cf->id);
	bool in_review = rng_chance(&r, 400);
	int64_t since = d->now - cf->flagged_at;

	out_uuid(c, uuid_draw(&r));
	out_int(c, cf->id);
	out_str(c, in_review ? "in_review" : "open");
	out_str(c, in_review || rng_chance(&r, 200) ? RNG_PICK(&r, analysts) : NULL);
	out_str(c, demo_regions[cf->region]);
	out_int(c, cf->risk_score >= 9500 ? 1 : cf->risk_score >= 9000 ? 2 : 3);
	out_fmt(c, "risk score 0.%04d, top reason %s", cf->risk_score,
	        cf->top_reason ? cf->top_reason : "none");
	/* opened by the triage job within the hour after the flag */
	out_ts(c, cf->flagged_at +
	                  (int64_t)rng_below(&r, (uint64_t)(since < HOUR ? since : HOUR) + 1));
	out_str(c, SEED_ACTOR);
	out_end(c);
}

void demo_native_customer(struct demo *d, const struct customer_facts *cf)
{
	write_support_cases(d, cf);
	if (cf->flagged)
		write_fraud_case(d, cf);
}

/* ---- store actions ---- */

void demo_native_position(struct demo *d, const struct position_facts *p)
{
	static const char *const types[] = {"replenishment", "transfer", "override", "markdown",
	                                    "recount"};
	static const char *const notes[] = {
	        "Stockout risk high, reorder now.",
	        "Pull stock from the nearest store.",
	        "Shelf count differs from the system, on_hand corrected.",
	        "Slow mover, mark down 30%.",
	        "Count again after the next delivery.",
	};
	static const char *const statuses[] = {"open", "done", "cancelled"};
	static const unsigned status_w[] = {80, 15, 5};
	struct out_csv *c = &d->out[F_STORE_ACTION];
	struct rng r =
	        rng_for(d->seed, K_STORE_ACTION, (uint64_t)p->store << 32 | (uint64_t)p->sku_index);
	bool at_risk = p->stockout_risk >= 600;
	int type, status;
	int64_t created;

	if (!rng_chance(&r, at_risk ? 150 : 3))
		return;
	type = at_risk ? (rng_chance(&r, 800) ? 0 : 1) : 2 + (int)rng_below(&r, 3);
	status = rng_weighted(&r, status_w, 3);
	created = d->now - rng_range(&r, HOUR, 5 * DAY);
	out_uuid(c, uuid_draw(&r));
	out_int(c, p->store);
	out_str(c, p->sku);
	out_str(c, types[type]);
	out_str(c, statuses[status]);
	if (type <= 1)
		out_int(c, rng_range(&r, 12, 144));
	else if (type == 2)
		out_int(c, p->on_hand + rng_range(&r, 0, 6));
	else if (type == 3 && p->on_hand > 0)
		out_int(c, rng_range(&r, 1, p->on_hand));
	else
		out_null(c);
	out_str(c, notes[type]);
	out_ts(c, status == 1 ? later(&r, created, d->now) : -1);
	out_ts(c, created);
	out_str(c, SEED_ACTOR);
	out_end(c);
}

/* ---- dispatch ---- */

static void write_assignment(struct demo *d, struct rng *r, const struct work_order_facts *w,
                             long tech, const char *status, int64_t at, const char *note)
{
	struct out_csv *c = &d->out[F_DISPATCH];

	out_uuid(c, uuid_draw(r));
	out_int(c, w->id);
	out_int(c, tech);
	out_str(c, status);
	out_ts(c, at);
	out_ts(c, w->scheduled_start);
	out_str(c, note);
	out_ts(c, at);
	out_str(c, SEED_ACTOR);
	out_end(c);
}

static void write_update(struct demo *d, struct rng *r, const struct work_order_facts *w, long tech,
                         const char *kind, const char *note, int64_t at)
{
	struct out_csv *c = &d->out[F_WO_UPDATE];

	out_uuid(c, uuid_draw(r));
	out_int(c, w->id);
	out_int(c, tech);
	out_str(c, kind);
	out_str(c, note);
	out_ts(c, at);
	out_str(c, SEED_ACTOR);
	out_end(c);
}

void demo_native_work_order(struct demo *d, const struct work_order_facts *w)
{
	static const char *const progress[] = {
	        "Diagnosed a faulty valve, replacing it.", "Replaced the control board.",
	        "Tested, running within spec.", "Customer asked to also check the thermostat."};
	int64_t week = d->now - 7 * DAY + HOUR;
	bool done = w->status == WO_COMPLETED && w->completed_at >= week + HOUR;
	int64_t start = w->opened_at > week ? w->opened_at : week;
	int64_t end = done ? w->completed_at : d->now, t;
	const char *note;
	struct rng r;
	long tech;

	if (!done && w->status != WO_DISPATCHED && w->status != WO_IN_PROGRESS &&
	    w->status != WO_ON_HOLD)
		return;
	if (start > end)
		start = end;
	r = rng_for(d->seed, K_DISPATCH, (uint64_t)w->id);
	tech = demo_technician_for(d, w->region, &r);
	if (w->status != WO_DISPATCHED && rng_chance(&r, 200)) {
		/* handed over: a colleague worked the first half */
		long prev = demo_technician_for(d, w->region, &r);
		int64_t mid = start + (end - start) / 2;
		if (prev != tech) {
			t = start + (int64_t)rng_below(&r, (uint64_t)(mid - start) / 4 + 1);
			write_assignment(d, &r, w, prev, "completed", t, "First visit.");
			t = later(&r, t, mid);
			write_update(d, &r, w, prev, "arrived", NULL, t);
			note = RNG_PICK(&r, progress);
			write_update(d, &r, w, prev, "progress", note, later(&r, t, mid));
			start = mid;
		}
	}
	t = start + (int64_t)rng_below(&r, (uint64_t)(end - start) / 4 + 1);
	switch (w->status) {
	case WO_DISPATCHED:
		write_assignment(d, &r, w, tech, rng_chance(&r, 500) ? "en_route" : "assigned", t,
		                 NULL);
		break;
	case WO_ON_HOLD:
		write_assignment(d, &r, w, tech, "assigned", t, "Waiting for parts.");
		t = later(&r, t, end);
		write_update(d, &r, w, tech, "arrived", NULL, t);
		write_update(d, &r, w, tech, "parts_needed", "Needs part A-113, ETA 2 days.",
		             later(&r, t, end));
		break;
	default: /* in progress, or completed this week */
		write_assignment(d, &r, w, tech, done ? "completed" : "on_site", t, NULL);
		t = later(&r, t, end);
		write_update(d, &r, w, tech, "arrived", NULL, t);
		for (int n = (int)rng_range(&r, 0, 2); n > 0; n--) {
			note = RNG_PICK(&r, progress);
			t = later(&r, t, end);
			write_update(d, &r, w, tech, "progress", note, t);
		}
		if (done)
			write_update(d, &r, w, tech, "completed", "Job done, customer signed off.",
			             end);
	}
}
