/*
 * cdc_map: the mapping between a source's tables and the synced tables; see
 * cdc_map.h. Catalog queries bind every name as a parameter; identifiers that
 * end up in statements are quoted with PQescapeIdentifier.
 */
#include "autoconfig.h"

#include "sync/cdc_map.h"

#include "db/db.h"

#include <stdlib.h>
#include <string.h>

static bool is_freshness_column(const char *name)
{
	return strcmp(name, "_source_committed_at") == 0 || strcmp(name, "_synced_at") == 0 ||
	       strcmp(name, "_source_position") == 0;
}

static bool query(PGconn *conn, const char *sql, int n, const char *const *params, PGresult **out,
                  char *err, size_t errlen)
{
	*out = PQexecParams(conn, sql, n, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(*out) == PGRES_TUPLES_OK || PQresultStatus(*out) == PGRES_COMMAND_OK)
		return true;
	db_fail(conn, *out, err, errlen);
	PQclear(*out);
	*out = NULL;
	return false;
}

/* Writes one "src=target" item of --tables into ods.synced_tables. */
static bool map_one(PGconn *ods, const char *name, const char *item, char *err, size_t errlen)
{
	const char *eq = strchr(item, '=');
	char *src, *target;
	PGresult *res;
	bool ok;

	if (!eq || eq == item || !eq[1])
		return errf(err, errlen, "--tables: \"%s\" is not SOURCE=TARGET", item);
	src = strchr(item, '.') && strchr(item, '.') < eq
	              ? xstrndup(item, (size_t)(eq - item))
	              : xasprintf("public.%.*s", (int)(eq - item), item);
	target = xstrdup(eq + 1);
	const char *params[] = {target, src, name};
	ok = query(ods,
	           "UPDATE ods.synced_tables SET source_name = $2, cdc_source = $3,"
	           "  mode = 'continuous' WHERE table_name = $1",
	           3, params, &res, err, errlen);
	if (ok && strcmp(PQcmdTuples(res), "1") != 0)
		ok = errf(err, errlen, "--tables: synced.%s is not in ods.synced_tables", target);
	PQclear(res);
	free(src);
	free(target);
	return ok;
}

static bool write_mappings(PGconn *ods, const char *name, const char *tables, char *err,
                           size_t errlen)
{
	const char *params[] = {name};
	char *list = xstrdup(tables ? tables : ""), *save = NULL;
	PGresult *res;
	bool ok;

	ok = query(ods,
	           "INSERT INTO ods.cdc_sources (name, slot_name, publication)"
	           " VALUES ($1, 'ods_' || $1, 'ods_' || $1) ON CONFLICT (name) DO NOTHING",
	           1, params, &res, err, errlen);
	PQclear(res);
	for (char *it = strtok_r(list, ",", &save); ok && it; it = strtok_r(NULL, ",", &save))
		ok = map_one(ods, name, it, err, errlen);
	free(list);
	if (!ok)
		return false;
	ok = query(ods,
	           "UPDATE ods.synced_tables SET cdc_source = $1 WHERE mode = 'continuous'"
	           "   AND cdc_source IS NULL"
	           "   AND NOT EXISTS (SELECT 1 FROM ods.synced_tables WHERE cdc_source = $1)",
	           1, params, &res, err, errlen);
	PQclear(res);
	return ok;
}

static bool load_columns(PGconn *ods, struct cdc_table *t, char *err, size_t errlen)
{
	const char *params[] = {t->target};
	PGresult *res;
	int k = 0;

	if (!query(ods,
	           "SELECT a.attname, format_type(a.atttypid, a.atttypmod),"
	           /* int2vector subscripts start at 0: the key position, 1-based */
	           "       coalesce(array_position(i.indkey::int2[], a.attnum)"
	           "                - array_lower(i.indkey::int2[], 1) + 1, 0)"
	           "  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
	           "  JOIN pg_namespace n ON n.oid = c.relnamespace"
	           "  LEFT JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary"
	           " WHERE n.nspname = 'synced' AND c.relname = $1 AND a.attnum > 0"
	           "   AND NOT a.attisdropped ORDER BY a.attnum",
	           1, params, &res, err, errlen))
		return false;
	t->cols = xcalloc((size_t)PQntuples(res) + 1, sizeof(*t->cols));
	t->pk = xcalloc((size_t)PQntuples(res) + 1, sizeof(int));
	for (int i = 0; i < PQntuples(res); i++) {
		const char *col = PQgetvalue(res, i, 0);
		int keypos = atoi(PQgetvalue(res, i, 2));
		if (is_freshness_column(col))
			continue;
		struct cdc_col *c = &t->cols[t->ncols];
		c->name = xstrdup(col);
		c->qname = PQescapeIdentifier(ods, col, strlen(col));
		c->type = xstrdup(PQgetvalue(res, i, 1));
		c->pk = keypos > 0;
		if (c->pk) {
			t->pk[keypos - 1] = t->ncols;
			k++;
		}
		t->ncols++;
	}
	PQclear(res);
	t->npk = k;
	t->col_src = xcalloc((size_t)t->ncols + 1, sizeof(int));
	if (t->ncols == 0)
		return errf(err, errlen, "synced.%s does not exist", t->target);
	if (k == 0)
		return errf(err, errlen, "synced.%s has no primary key", t->target);
	return true;
}

bool cdc_map_load(PGconn *ods, const char *name, const char *tables, struct cdc_map *m, char *err,
                  size_t errlen)
{
	const char *params[] = {name};
	PGresult *res = NULL;
	bool ok;

	memset(m, 0, sizeof(*m));
	ok = db_exec(ods, "BEGIN", err, errlen) && write_mappings(ods, name, tables, err, errlen) &&
	     query(ods,
	           "SELECT table_name, split_part(source_name, '.', 1), split_part(source_name, "
	           "'.', 2)"
	           "  FROM ods.synced_tables WHERE cdc_source = $1 ORDER BY table_name",
	           1, params, &res, err, errlen);
	if (ok) {
		m->n = PQntuples(res);
		m->t = xcalloc((size_t)m->n + 1, sizeof(*m->t));
		for (int i = 0; i < m->n; i++) {
			struct cdc_table *t = &m->t[i];
			bool bare = PQgetvalue(res, i, 2)[0] == '\0';
			t->target = xstrdup(PQgetvalue(res, i, 0));
			t->src_schema = xstrdup(bare ? "public" : PQgetvalue(res, i, 1));
			t->src_table = xstrdup(PQgetvalue(res, i, bare ? 1 : 2));
			char *q = PQescapeIdentifier(ods, t->target, strlen(t->target));
			t->qtarget = xasprintf("synced.%s", q);
			PQfreemem(q);
		}
		PQclear(res);
		if (m->n == 0)
			ok = errf(
			        err, errlen,
			        "source %s maps no table: pass --tables SOURCE=TARGET,... or mark "
			        "synced tables continuous",
			        name);
	}
	for (int i = 0; ok && i < m->n; i++)
		ok = load_columns(ods, &m->t[i], err, errlen);
	if (ok)
		ok = db_exec(ods, "COMMIT", err, errlen);
	else
		PQclear(PQexec(ods, "ROLLBACK"));
	return ok;
}

void cdc_map_free(struct cdc_map *m)
{
	for (int i = 0; i < m->n; i++) {
		struct cdc_table *t = &m->t[i];
		for (int c = 0; c < t->ncols; c++) {
			free(t->cols[c].name);
			PQfreemem(t->cols[c].qname);
			free(t->cols[c].type);
		}
		free(t->cols);
		free(t->pk);
		free(t->col_src);
		free(t->target);
		free(t->qtarget);
		free(t->src_schema);
		free(t->src_table);
	}
	free(m->t);
	memset(m, 0, sizeof(*m));
}

/* The synced columns missing from names[0..n), as ", "-separated text ("" if none). */
static void missing_columns(const struct cdc_table *t, char *const *names, int n,
                            struct strbuf *out)
{
	for (int c = 0; c < t->ncols; c++) {
		bool found = false;
		for (int j = 0; j < n && !found; j++)
			found = strcmp(names[j], t->cols[c].name) == 0;
		if (!found)
			strbuf_addf(out, "%s%s", out->len ? ", " : "", t->cols[c].name);
	}
}

static bool check_table(PGconn *src, const struct cdc_table *t, char *err, size_t errlen)
{
	const char *params[] = {t->src_schema, t->src_table};
	PGresult *res;
	struct strbuf miss;
	char **names;
	int n;
	bool ok = true;

	if (!query(src,
	           "SELECT a.attname, c.relreplident, coalesce(a.attnum = ANY (i.indkey), false)"
	           "  FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace"
	           "  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0"
	           "   AND NOT a.attisdropped"
	           "  LEFT JOIN pg_index i ON i.indrelid = c.oid AND CASE c.relreplident"
	           "       WHEN 'i' THEN i.indisreplident WHEN 'd' THEN i.indisprimary END"
	           " WHERE s.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')",
	           2, params, &res, err, errlen))
		return false;
	n = PQntuples(res);
	if (n == 0) {
		PQclear(res);
		return errf(err, errlen, "source table %s.%s (for synced.%s) does not exist",
		            t->src_schema, t->src_table, t->target);
	}
	names = xcalloc((size_t)n, sizeof(char *));
	for (int i = 0; i < n; i++)
		names[i] = PQgetvalue(res, i, 0);
	strbuf_init(&miss);
	missing_columns(t, names, n, &miss);
	if (miss.len)
		ok = errf(err, errlen, "source table %s.%s lacks column(s) %s of synced.%s",
		          t->src_schema, t->src_table, miss.data, t->target);
	/* Deletes and key changes carry the replica identity: it must hold our key. */
	char ident = PQgetvalue(res, 0, 1)[0];
	for (int k = 0; ok && ident != 'f' && k < t->npk; k++) {
		const char *col = t->cols[t->pk[k]].name;
		bool in_ident = false;
		for (int i = 0; i < n; i++)
			in_ident |= strcmp(names[i], col) == 0 && PQgetvalue(res, i, 2)[0] == 't';
		if (!in_ident)
			ok = errf(err, errlen,
			          "source table %s.%s: its replica identity lacks %s, the key of "
			          "synced.%s (give it that primary key or REPLICA IDENTITY FULL)",
			          t->src_schema, t->src_table, col, t->target);
	}
	strbuf_free(&miss);
	free(names);
	PQclear(res);
	return ok;
}

bool cdc_map_check_source(PGconn *src, const struct cdc_map *m, char *err, size_t errlen)
{
	for (int i = 0; i < m->n; i++)
		if (!check_table(src, &m->t[i], err, errlen))
			return false;
	return true;
}

bool cdc_map_relation(struct cdc_map *m, const struct pgo_msg *rel, char *err, size_t errlen)
{
	struct cdc_table *t = NULL;
	struct strbuf miss;
	bool ok = true;

	for (int i = 0; i < m->n && !t; i++)
		if (strcmp(m->t[i].src_schema, rel->relation.nspname) == 0 &&
		    strcmp(m->t[i].src_table, rel->relation.relname) == 0)
			t = &m->t[i];
	if (!t)
		return true; /* not ours: its changes will be skipped */
	strbuf_init(&miss);
	for (int c = 0; c < t->ncols; c++) {
		t->col_src[c] = -1;
		for (int j = 0; j < rel->relation.ncols; j++)
			if (strcmp(rel->relation.cols[j].name, t->cols[c].name) == 0)
				t->col_src[c] = j;
		if (t->col_src[c] < 0)
			strbuf_addf(&miss, "%s%s", miss.len ? ", " : "", t->cols[c].name);
		else if (t->cols[c].pk && rel->relation.replident != 'f' &&
		         !rel->relation.cols[t->col_src[c]].key)
			ok = errf(err, errlen,
			          "source table %s.%s: %s, the key of synced.%s, left its replica "
			          "identity",
			          t->src_schema, t->src_table, t->cols[c].name, t->target);
	}
	if (miss.len)
		ok = errf(err, errlen, "source table %s.%s no longer has column(s) %s of synced.%s",
		          t->src_schema, t->src_table, miss.data, t->target);
	strbuf_free(&miss);
	t->relid = rel->relation.relid;
	t->generation++;
	return ok;
}

struct cdc_table *cdc_map_find(struct cdc_map *m, uint32_t relid)
{
	for (int i = 0; i < m->n; i++)
		if (m->t[i].relid == relid)
			return &m->t[i];
	return NULL;
}

char *cdc_map_signature(const struct cdc_map *m)
{
	struct strbuf sb;

	strbuf_init(&sb);
	strbuf_addc(&sb, '{');
	for (int i = 0; i < m->n; i++)
		strbuf_addf(&sb, "%s\"%s.%s=%s\"", i ? "," : "", m->t[i].src_schema,
		            m->t[i].src_table, m->t[i].target);
	strbuf_addc(&sb, '}');
	return strbuf_detach(&sb);
}
