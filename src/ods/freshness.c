/*
 * freshness: the freshness cache (contract in DESIGN section 5).
 *
 * Model: an immutable snapshot of ods.synced_tables, sorted by table name,
 * replaced whole by freshness_refresh. The cache holds one reference to the
 * current snapshot; each reader holds one more while it builds headers.
 * Swapping and reference counting happen under one mutex held for a few
 * instructions; the query and the building of a new snapshot happen outside
 * it, so readers never wait for the database. A snapshot is freed by
 * whoever drops its last reference.
 *
 * freshness_headers is pure: it reads a snapshot the caller holds and the
 * `now` it is given, so it is exact to test.
 *
 * Thread-safety: every function may be called from any thread.
 */
#include "autoconfig.h"

#include "ods/freshness.h"

#include "db/db.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct freshness {
	pthread_mutex_t mu;
	struct freshness_snapshot *cur; /* never NULL: empty until the first refresh */
	bool loaded;
};

/* floor(): an as-of of 10:00:00.7 is complete up to 10:00:00, not 10:00:01. */
static const char query[] = "SELECT table_name, tier, mode, status, last_error,"
                            " floor(extract(epoch FROM as_of))::bigint,"
                            " floor(extract(epoch FROM last_sync_at))::bigint,"
                            " ceil(extract(epoch FROM freshness_sla))::bigint, rows"
                            " FROM ods.synced_tables ORDER BY table_name COLLATE \"C\"";

static void snapshot_free(struct freshness_snapshot *s)
{
	for (int i = 0; i < s->n; i++) {
		struct freshness_entry *e = &s->e[i];
		free(e->table_name);
		free(e->tier);
		free(e->mode);
		free(e->status);
		free(e->last_error);
	}
	free(s->e);
	free(s);
}

struct freshness *freshness_new(void)
{
	struct freshness *f = xcalloc(1, sizeof(*f));

	pthread_mutex_init(&f->mu, NULL);
	f->cur = xcalloc(1, sizeof(*f->cur));
	f->cur->refs = 1;
	return f;
}

void freshness_free(struct freshness *f)
{
	if (!f)
		return;
	freshness_put(f, f->cur);
	pthread_mutex_destroy(&f->mu);
	free(f);
}

static char *text_or_null(const PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col) ? NULL : xstrdup(PQgetvalue(r, row, col));
}

static long long int_or_zero(const PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col) ? 0 : strtoll(PQgetvalue(r, row, col), NULL, 10);
}

bool freshness_refresh(struct freshness *f, PGconn *conn, char *err, size_t errlen)
{
	PGresult *r = PQexec(conn, query);
	struct freshness_snapshot *s, *old;

	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		db_fail(conn, r, err, errlen);
		PQclear(r);
		return false;
	}
	s = xcalloc(1, sizeof(*s));
	s->refs = 1;
	s->n = PQntuples(r);
	s->e = xcalloc((size_t)s->n + 1, sizeof(s->e[0]));
	s->loaded_at = time(NULL);
	for (int i = 0; i < s->n; i++) {
		struct freshness_entry *e = &s->e[i];
		e->table_name = xstrdup(PQgetvalue(r, i, 0));
		e->tier = xstrdup(PQgetvalue(r, i, 1));
		e->mode = xstrdup(PQgetvalue(r, i, 2));
		e->status = xstrdup(PQgetvalue(r, i, 3));
		e->last_error = text_or_null(r, i, 4);
		e->has_as_of = !PQgetisnull(r, i, 5);
		e->as_of = (time_t)int_or_zero(r, i, 5);
		e->last_sync_at = (time_t)int_or_zero(r, i, 6);
		e->sla_s = int_or_zero(r, i, 7);
		e->rows = int_or_zero(r, i, 8);
	}
	PQclear(r);

	pthread_mutex_lock(&f->mu);
	old = f->cur;
	f->cur = s;
	f->loaded = true;
	pthread_mutex_unlock(&f->mu);
	freshness_put(f, old);
	return true;
}

bool freshness_loaded(struct freshness *f)
{
	pthread_mutex_lock(&f->mu);
	bool loaded = f->loaded;
	pthread_mutex_unlock(&f->mu);
	return loaded;
}

struct freshness_snapshot *freshness_get(struct freshness *f)
{
	pthread_mutex_lock(&f->mu);
	struct freshness_snapshot *s = f->cur;
	s->refs++;
	pthread_mutex_unlock(&f->mu);
	return s;
}

void freshness_put(struct freshness *f, struct freshness_snapshot *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&f->mu);
	bool last = --s->refs == 0;
	pthread_mutex_unlock(&f->mu);
	if (last)
		snapshot_free(s);
}

static int by_name(const void *key, const void *elem)
{
	return strcmp(key, ((const struct freshness_entry *)elem)->table_name);
}

static const struct freshness_entry *lookup(const struct freshness_snapshot *s, const char *name)
{
	if (s->n == 0)
		return NULL;
	return bsearch(name, s->e, (size_t)s->n, sizeof(s->e[0]), by_name);
}

/*
 * One list member per table, in the order given:
 *   synced.t;as-of="2026-11-24T10:00:00Z";lag=3;sla=60[;stale]
 *   synced.t;sla=60;stale    (known, never synced: no as-of yet)
 *   synced.t;stale           (unknown to the snapshot)
 * Table names come from the route catalog, whose names are SQL identifiers
 * (lower-case letters, digits, '_'): valid in an RFC 8941 token as they are.
 */
bool freshness_headers(const struct freshness_snapshot *s, const char *const *tables, int n,
                       time_t now, struct freshness_headers *out)
{
	struct strbuf sb;

	memset(out, 0, sizeof(*out));
	out->data_age = -1;
	if (n <= 0)
		return false;
	strbuf_init(&sb);
	for (int i = 0; i < n; i++) {
		const char *name = tables[i];
		if (strncmp(name, "synced.", 7) == 0)
			name += 7;
		const struct freshness_entry *e = lookup(s, name);
		bool stale = !e || freshness_entry_stale(e, now);

		strbuf_addf(&sb, "%ssynced.%s", i ? ", " : "", name);
		if (e && e->has_as_of) {
			char stamp[32];
			struct tm tm;
			long long lag = freshness_entry_lag(e, now);

			gmtime_r(&e->as_of, &tm);
			strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
			strbuf_addf(&sb, ";as-of=\"%s\";lag=%lld", stamp, lag);
			if (lag > out->data_age)
				out->data_age = lag;
			if (e->as_of > out->newest_as_of)
				out->newest_as_of = e->as_of;
		}
		if (e)
			strbuf_addf(&sb, ";sla=%lld", e->sla_s);
		if (stale) {
			strbuf_adds(&sb, ";stale");
			out->stale = true;
		}
	}
	out->freshness = strbuf_detach(&sb);
	return true;
}

long long freshness_entry_lag(const struct freshness_entry *e, time_t now)
{
	if (!e->has_as_of)
		return -1;
	return now > e->as_of ? (long long)(now - e->as_of) : 0;
}

bool freshness_entry_stale(const struct freshness_entry *e, time_t now)
{
	return !e->has_as_of || freshness_entry_lag(e, now) > e->sla_s;
}

void freshness_headers_free(struct freshness_headers *h)
{
	free(h->freshness);
	h->freshness = NULL;
}
