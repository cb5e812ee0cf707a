/*
 * migrate: brings a database up to api_dir, the way Flyway would.
 *
 * Everything on disk is read (and checksummed, SHA-256) before the database
 * is touched, so a misnamed file costs nothing. Then, under a session
 * advisory lock held for the whole run (a second migrate waits, then finds
 * nothing left to do), ods.schema_migrations is created if needed and read.
 * Every versioned file it records must still be on disk, byte for byte;
 * otherwise the run stops before applying anything, since the databases
 * already migrated and this tree no longer agree. Then each new versioned
 * file (schema/NNN_name.sql, in name order) and each new or changed
 * repeatable file (routes/name.sql, after them) is applied in a transaction
 * of its own together with its record, so a failure leaves exactly the
 * earlier files applied.
 */
#include "autoconfig.h"

#include "admin/migrate.h"

#include "core/log.h"
#include "db/db.h"

#include <dirent.h>
#include <errno.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Any fixed key will do; advisory locks are per database. */
#define LOCK_SQL   "SELECT pg_advisory_lock(7283049175)"
#define UNLOCK_SQL "SELECT pg_advisory_unlock(7283049175)"

/* Quiet: "schema ods already exists, skipping" on every run is noise. */
static const char bootstrap_sql[] =
        "BEGIN;"
        "SET LOCAL client_min_messages = warning;"
        "CREATE SCHEMA IF NOT EXISTS ods;"
        "CREATE TABLE IF NOT EXISTS ods.schema_migrations ("
        " filename text PRIMARY KEY,"
        " kind text NOT NULL CHECK (kind IN ('versioned', 'repeatable')),"
        " checksum text NOT NULL,"
        " applied_at timestamptz NOT NULL DEFAULT now());"
        "COMMIT";

/*
 * RESET ALL first: a file that SETs search_path or role must not change how
 * the next one runs, or applying files in one run and one by one would differ.
 * lock_timeout: a migration waiting behind a long reader would queue every
 * odsd request behind itself; better to fail and be retried.
 */
static const char begin_sql[] = "RESET ALL; BEGIN; SET LOCAL lock_timeout = '10s'";

static const char record_sql[] =
        "INSERT INTO ods.schema_migrations (filename, kind, checksum) VALUES ($1, $2, $3) "
        "ON CONFLICT (filename) DO UPDATE SET kind = EXCLUDED.kind, "
        "checksum = EXCLUDED.checksum, applied_at = now()";

#define NAME_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_"

struct mfile {
	char *name; /* relative to api_dir: "schema/001_x.sql" */
	char *sql;
	char sum[65]; /* SHA-256 of the bytes, hex */
};

struct mset {
	struct mfile *files;
	size_t n;
};

/* ^[0-9]+_[A-Za-z0-9_]+\.sql$ */
static bool versioned_name(const char *s)
{
	size_t d = strspn(s, "0123456789");
	size_t w = d > 0 && s[d] == '_' ? strspn(s + d + 1, NAME_CHARS) : 0;

	return w > 0 && strcmp(s + d + 1 + w, ".sql") == 0;
}

/* ^[A-Za-z0-9_]+\.sql$ */
static bool repeatable_name(const char *s)
{
	size_t w = strspn(s, NAME_CHARS);

	return w > 0 && strcmp(s + w, ".sql") == 0;
}

static bool sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	if (EVP_Digest(data, len, md, &n, EVP_sha256(), NULL) != 1 || n != 32)
		return false;
	for (unsigned int i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
	return true;
}

static bool read_one(const char *dir, const char *sub, const char *name, struct mfile *f, char *err,
                     size_t errlen)
{
	bool versioned = strcmp(sub, "schema") == 0;
	size_t len = 0;
	char *path;

	f->name = xasprintf("%s/%s", sub, name);
	if (!(versioned ? versioned_name(name) : repeatable_name(name)))
		return errf(err, errlen, "%s: not a migration file name (expected %s)", f->name,
		            versioned ? "NNN_name.sql, name of letters, digits and _"
		                      : "name.sql, name of letters, digits and _");
	path = xasprintf("%s/%s", dir, name);
	f->sql = util_read_file(path, &len, err, errlen);
	free(path);
	if (!f->sql)
		return false;
	f->sql[len] = '\0'; /* util_read_file leaves an empty file's buffer unterminated */
	if (strlen(f->sql) != len)
		return errf(err, errlen, "%s: contains a NUL byte", f->name);
	if (!sha256_hex(f->sql, len, f->sum))
		return errf(err, errlen, "%s: cannot compute its SHA-256", f->name);
	return true;
}

static int visible(const struct dirent *d)
{
	return d->d_name[0] != '.'; /* ".", "..", .gitkeep, editor swap files */
}

/* Byte order, not alphasort's strcoll: the order must not depend on the locale. */
static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

/* Reads api_dir/sub/ into set, in name order; a missing optional dir is empty. */
static bool read_dir(const char *api_dir, const char *sub, bool required, struct mset *set,
                     char *err, size_t errlen)
{
	char *dir = xasprintf("%s/%s", api_dir, sub);
	struct dirent **ents = NULL;
	int n = scandir(dir, &ents, visible, by_name);
	bool ok = true;

	if (n < 0) {
		if (required || errno != ENOENT)
			ok = errf(err, errlen, "cannot read %s: %s", dir, strerror(errno));
		n = 0;
	}
	set->files = xcalloc((size_t)n, sizeof(*set->files));
	for (int i = 0; i < n; i++) {
		if (ok)
			ok = read_one(dir, sub, ents[i]->d_name, &set->files[set->n++], err,
			              errlen);
		free(ents[i]);
	}
	free(ents);
	free(dir);
	return ok;
}

static void mset_free(struct mset *set)
{
	for (size_t i = 0; i < set->n; i++) {
		free(set->files[i].name);
		free(set->files[i].sql);
	}
	free(set->files);
}

static bool read_api_dir(const char *api_dir, struct mset *schema, struct mset *routes, char *err,
                         size_t errlen)
{
	struct stat st;

	if (stat(api_dir, &st) != 0)
		return errf(err, errlen, "api dir %s: %s (set --api-dir or ODS_API_DIR)", api_dir,
		            strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return errf(err, errlen, "api dir %s is not a directory", api_dir);
	return read_dir(api_dir, "schema", true, schema, err, errlen) &&
	       read_dir(api_dir, "routes", false, routes, err, errlen);
}

static const struct mfile *find_file(const struct mset *set, const char *name)
{
	for (size_t i = 0; i < set->n; i++)
		if (strcmp(set->files[i].name, name) == 0)
			return &set->files[i];
	return NULL;
}

/* The recorded checksum of name, or NULL when it was never applied. */
static const char *recorded_sum(PGresult *rec, const char *name)
{
	for (int i = 0; i < PQntuples(rec); i++)
		if (strcmp(PQgetvalue(rec, i, 0), name) == 0)
			return PQgetvalue(rec, i, 2);
	return NULL;
}

/* Refuses when an applied versioned file was edited or removed since. */
static bool check_applied(PGresult *rec, const struct mset *schema, const struct mset *routes,
                          char *err, size_t errlen)
{
	for (int i = 0; i < PQntuples(rec); i++) {
		const char *name = PQgetvalue(rec, i, 0), *sum = PQgetvalue(rec, i, 2);
		bool versioned = strcmp(PQgetvalue(rec, i, 1), "versioned") == 0;
		const struct mfile *f = find_file(versioned ? schema : routes, name);

		if (!f && versioned)
			return errf(err, errlen,
			            "%s was applied but is no longer on disk: applied migrations "
			            "are immutable; restore the file",
			            name);
		if (!f)
			log_warn("%s was applied but is no longer on disk; what it created stays "
			         "until a migration drops it",
			         name);
		else if (versioned && strcmp(f->sum, sum) != 0)
			return errf(err, errlen,
			            "%s was applied with checksum %.12s... but the file now has "
			            "%.12s...: applied migrations are immutable; add a new "
			            "migration instead",
			            name, sum, f->sum);
	}
	return true;
}

/* The 1-based line of PostgreSQL's 1-based character position in sql (UTF-8). */
static int line_of(const char *sql, long pos)
{
	long chars = 0;
	int line = 1;

	for (const char *p = sql; *p; p++) {
		if (((unsigned char)*p & 0xC0) == 0x80)
			continue; /* a UTF-8 continuation byte is not a character */
		if (++chars == pos)
			break;
		if (*p == '\n')
			line++;
	}
	return line;
}

static bool exec_file(PGconn *conn, const struct mfile *f, int *line, char *err, size_t errlen)
{
	PGresult *res = PQexec(conn, f->sql);
	ExecStatusType st = PQresultStatus(res);
	const char *pos = PQresultErrorField(res, PG_DIAG_STATEMENT_POSITION);
	bool ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_EMPTY_QUERY;

	if (!ok) {
		if (pos)
			*line = line_of(f->sql, strtol(pos, NULL, 10));
		db_fail(conn, res, err, errlen);
	} else if (PQtransactionStatus(conn) != PQTRANS_INTRANS) {
		/* Its own COMMIT would leave the file applied but unrecorded. */
		ok = errf(err, errlen,
		          "the file ended the migration's transaction; migrations "
		          "must not contain BEGIN, COMMIT or ROLLBACK");
	}
	PQclear(res);
	return ok;
}

static bool apply_file(PGconn *conn, const struct mfile *f, const char *kind, int *applied,
                       char *err, size_t errlen)
{
	const char *params[] = {f->name, kind, f->sum};
	char msg[ODS_ERRLEN], where[24] = "";
	int line = 0;
	bool ok = db_exec(conn, begin_sql, msg, sizeof(msg)) &&
	          exec_file(conn, f, &line, msg, sizeof(msg)) &&
	          db_exec_params(conn, record_sql, 3, params, msg, sizeof(msg)) &&
	          db_exec(conn, "COMMIT", msg, sizeof(msg));

	if (!ok) {
		if (PQtransactionStatus(conn) != PQTRANS_IDLE)
			PQclear(PQexec(conn, "ROLLBACK"));
		if (line > 0)
			snprintf(where, sizeof(where), ":%d", line);
		return errf(err, errlen, "%s%s: %s", f->name, where, msg);
	}
	(*applied)++;
	log_info("applied %s", f->name);
	return true;
}

static bool migrate_locked(PGconn *conn, const struct mset *schema, const struct mset *routes,
                           int *applied, char *err, size_t errlen)
{
	PGresult *rec = NULL;
	bool ok = db_exec(conn, bootstrap_sql, err, errlen);

	if (ok) {
		rec = PQexec(conn, "SELECT filename, kind, checksum FROM ods.schema_migrations");
		if (PQresultStatus(rec) != PGRES_TUPLES_OK)
			ok = db_fail(conn, rec, err, errlen);
	}
	ok = ok && check_applied(rec, schema, routes, err, errlen);
	for (size_t i = 0; ok && i < schema->n; i++)
		if (!recorded_sum(rec, schema->files[i].name))
			ok = apply_file(conn, &schema->files[i], "versioned", applied, err, errlen);
	for (size_t i = 0; ok && i < routes->n; i++) {
		const char *sum = recorded_sum(rec, routes->files[i].name);
		if (!sum || strcmp(sum, routes->files[i].sum) != 0)
			ok = apply_file(conn, &routes->files[i], "repeatable", applied, err,
			                errlen);
	}
	PQclear(rec);
	return ok;
}

bool migrate_run(PGconn *conn, const char *api_dir, int *applied, char *err, size_t errlen)
{
	struct mset schema = {NULL, 0}, routes = {NULL, 0};
	char msg[ODS_ERRLEN];
	bool ok = read_api_dir(api_dir, &schema, &routes, err, errlen);

	*applied = 0;
	if (ok) {
		if (db_exec(conn, LOCK_SQL, msg, sizeof(msg))) {
			ok = migrate_locked(conn, &schema, &routes, applied, err, errlen);
			/* A session lock outlives transactions: release it on every path. */
			PQclear(PQexec(conn, UNLOCK_SQL));
		} else {
			ok = errf(err, errlen, "cannot take the migration lock: %s", msg);
		}
	}
	mset_free(&schema);
	mset_free(&routes);
	return ok;
}
