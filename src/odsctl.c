/*
 * odsctl: the operator CLI. This file only parses arguments and calls the
 * modules that do the work; each command exits 0 on success, 1 on a failure
 * it explains on stderr, 2 on a usage error.
 */
#include "autoconfig.h"

#include "admin/cdc_status.h"
#include "admin/churn.h"
#include "admin/demo.h"
#include "admin/demo_load.h"
#include "admin/demo_source.h"
#include "admin/freshness.h"
#include "admin/migrate.h"
#include "admin/token.h"
#include "core/log.h"
#include "core/util.h"
#include "db/db.h"
#include "sync/cdc.h"
#include "sync/loader.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage_text[] =
        "usage: odsctl COMMAND [OPTIONS]\n"
        "  migrate --db URI [--api-dir DIR]            apply api/schema + api/routes\n"
        "  demo generate --out DIR [--customers N] [--seed S] [--as-of RFC3339]\n"
        "  demo load --db URI --from DIR               synced extracts + native seed rows\n"
        "  demo source --db SOURCE_URI --from DIR      the demo's OLTP source database (for sync "
        "run)\n"
        "  demo churn --db SOURCE_URI [--rate N] [--duration SECONDS] [--seed S]\n"
        "                                              N realistic source changes per second\n"
        "  sync load --db URI TABLE FILE [--as-of RFC3339] [--incremental]\n"
        "  sync run --db URI --source URI --name NAME [--tables SRC=TARGET,...] [--once]\n"
        "                                              CDC worker for one PostgreSQL source\n"
        "  sync status --db URI                        one line per CDC source\n"
        "  freshness --db URI                          freshness of every synced table\n"
        "  token --role R [--secret-file F] [--scope \"S ...\"] [--sub ID] [--ttl SECONDS]\n"
        "        [--alg HS256|HS384|HS512|RS256|RS384|RS512|ES256|ES384] [--key-file PRIVATE.pem]\n"
        "        [--kid K] [--aud A] [--iss I] [--claim NAME=VALUE ...]   print a dev JWT\n";

static int usage(const char *why)
{
	if (why)
		fprintf(stderr, "odsctl: %s\n", why);
	fputs(usage_text, stderr);
	return 2;
}

static int die(const char *what, const char *err)
{
	fprintf(stderr, "odsctl %s: %s\n", what, err);
	return 1;
}

enum {
	OPT_DB = 1000,
	OPT_API_DIR,
	OPT_OUT,
	OPT_CUSTOMERS,
	OPT_SEED,
	OPT_AS_OF,
	OPT_FROM,
	OPT_INCR,
	OPT_SECRET_FILE,
	OPT_ROLE,
	OPT_SCOPE,
	OPT_SUB,
	OPT_TTL,
	OPT_ALG,
	OPT_KEY_FILE,
	OPT_KID,
	OPT_AUD,
	OPT_ISS,
	OPT_CLAIM,
	OPT_SOURCE,
	OPT_NAME,
	OPT_TABLES,
	OPT_ONCE,
	OPT_RATE,
	OPT_DURATION
};

static const struct option long_opts[] = {
        {"db", required_argument, NULL, OPT_DB},
        {"api-dir", required_argument, NULL, OPT_API_DIR},
        {"out", required_argument, NULL, OPT_OUT},
        {"customers", required_argument, NULL, OPT_CUSTOMERS},
        {"seed", required_argument, NULL, OPT_SEED},
        {"as-of", required_argument, NULL, OPT_AS_OF},
        {"from", required_argument, NULL, OPT_FROM},
        {"incremental", no_argument, NULL, OPT_INCR},
        {"secret-file", required_argument, NULL, OPT_SECRET_FILE},
        {"role", required_argument, NULL, OPT_ROLE},
        {"scope", required_argument, NULL, OPT_SCOPE},
        {"sub", required_argument, NULL, OPT_SUB},
        {"ttl", required_argument, NULL, OPT_TTL},
        {"alg", required_argument, NULL, OPT_ALG},
        {"key-file", required_argument, NULL, OPT_KEY_FILE},
        {"kid", required_argument, NULL, OPT_KID},
        {"aud", required_argument, NULL, OPT_AUD},
        {"iss", required_argument, NULL, OPT_ISS},
        {"claim", required_argument, NULL, OPT_CLAIM},
        {"source", required_argument, NULL, OPT_SOURCE},
        {"name", required_argument, NULL, OPT_NAME},
        {"tables", required_argument, NULL, OPT_TABLES},
        {"once", no_argument, NULL, OPT_ONCE},
        {"rate", required_argument, NULL, OPT_RATE},
        {"duration", required_argument, NULL, OPT_DURATION},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
};

struct args {
	const char *db, *api_dir, *out, *as_of, *from;
	long customers;
	unsigned long long seed;
	double rate, duration; /* odsctl demo churn */
	bool incremental;
	int npos;
	char *pos[4];
	struct cdc_opts cdc;     /* odsctl sync run */
	struct token_opts token; /* odsctl token */
	const char *claims[32];
};

static bool parse_number(const char *s, unsigned long long *out)
{
	char *end;

	if (!*s || *s == '-')
		return false;
	*out = strtoull(s, &end, 10);
	return *end == '\0';
}

/* Parses argv (after the command words) into a; returns false on a usage error. */
static bool parse_args(int argc, char **argv, struct args *a, char *err, size_t errlen)
{
	unsigned long long n;
	int c;

	memset(a, 0, sizeof(*a));
	a->customers = 1000;
	a->seed = 42;
	a->api_dir = getenv("ODS_API_DIR") ? getenv("ODS_API_DIR") : ODS_API_DIR;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", long_opts, NULL)) != -1) {
		switch (c) {
		case OPT_DB:
			a->db = optarg;
			break;
		case OPT_API_DIR:
			a->api_dir = optarg;
			break;
		case OPT_OUT:
			a->out = optarg;
			break;
		case OPT_FROM:
			a->from = optarg;
			break;
		case OPT_AS_OF:
			a->as_of = optarg;
			break;
		case OPT_INCR:
			a->incremental = true;
			break;
		case OPT_CUSTOMERS:
			if (!parse_number(optarg, &n) || n < 1 || n > 100000000)
				return errf(err, errlen,
				            "--customers takes a number from 1 to 100000000");
			a->customers = (long)n;
			break;
		case OPT_SEED:
			if (!parse_number(optarg, &n))
				return errf(err, errlen, "--seed takes a non-negative number");
			a->seed = n;
			break;
		case OPT_SECRET_FILE:
			a->token.secret_file = optarg;
			break;
		case OPT_ROLE:
			a->token.role = optarg;
			break;
		case OPT_SCOPE:
			a->token.scope = optarg;
			break;
		case OPT_SUB:
			a->token.sub = optarg;
			break;
		case OPT_ALG:
			a->token.alg = optarg;
			break;
		case OPT_KEY_FILE:
			a->token.key_file = optarg;
			break;
		case OPT_KID:
			a->token.kid = optarg;
			break;
		case OPT_AUD:
			a->token.aud = optarg;
			break;
		case OPT_ISS:
			a->token.iss = optarg;
			break;
		case OPT_TTL:
			if (!parse_number(optarg, &n) || n < 1 || n > 315360000)
				return errf(err, errlen, "--ttl takes seconds from 1 to 315360000");
			a->token.ttl = (long)n;
			break;
		case OPT_SOURCE:
			a->cdc.source = optarg;
			break;
		case OPT_NAME:
			a->cdc.name = optarg;
			break;
		case OPT_TABLES:
			a->cdc.tables = optarg;
			break;
		case OPT_RATE:
		case OPT_DURATION: {
			char *end;
			double v = strtod(optarg, &end);
			if (*optarg == '\0' || *end || !(v > 0) || v > 1e6)
				return errf(err, errlen, "--%s takes a positive number",
				            c == OPT_RATE ? "rate" : "duration");
			*(c == OPT_RATE ? &a->rate : &a->duration) = v;
			break;
		}
		case OPT_ONCE:
			a->cdc.once = true;
			break;
		case OPT_CLAIM:
			if (a->token.nclaims == ODS_ARRAY_LEN(a->claims))
				return errf(err, errlen, "too many --claim options");
			a->claims[a->token.nclaims++] = optarg;
			a->token.claims = a->claims;
			break;
		default:
			return errf(err, errlen, "bad option");
		}
	}
	for (int i = optind; i < argc; i++) {
		if (a->npos == (int)ODS_ARRAY_LEN(a->pos))
			return errf(err, errlen, "too many arguments");
		a->pos[a->npos++] = argv[i];
	}
	return true;
}

static PGconn *connect_or_die(const struct args *a, char *err, size_t errlen)
{
	if (!a->db) {
		errf(err, errlen, "--db URI is required");
		return NULL;
	}
	return db_connect(a->db, "odsctl", err, errlen);
}

static int cmd_migrate(const struct args *a)
{
	char err[ODS_ERRLEN];
	int applied = 0;
	PGconn *conn = connect_or_die(a, err, sizeof(err));

	if (!conn)
		return die("migrate", err);
	bool ok = migrate_run(conn, a->api_dir, &applied, err, sizeof(err));
	PQfinish(conn);
	if (!ok)
		return die("migrate", err);
	printf("migrate: %d file(s) applied, database is up to date\n", applied);
	return 0;
}

static int cmd_demo_generate(const struct args *a)
{
	char err[ODS_ERRLEN];
	struct demo_opts o = {
	        .out_dir = a->out, .customers = a->customers, .seed = a->seed, .as_of = a->as_of};

	if (!a->out)
		return usage("demo generate: --out DIR is required");
	if (!demo_generate(&o, err, sizeof(err)))
		return die("demo generate", err);
	printf("demo generate: %ld customers written to %s\n", a->customers, a->out);
	return 0;
}

static int cmd_demo_load(const struct args *a)
{
	char err[ODS_ERRLEN];
	PGconn *conn;

	if (!a->from)
		return usage("demo load: --from DIR is required");
	conn = connect_or_die(a, err, sizeof(err));
	if (!conn)
		return die("demo load", err);
	bool ok = demo_load(conn, a->from, stdout, err, sizeof(err));
	PQfinish(conn);
	return ok ? 0 : die("demo load", err);
}

static int cmd_demo_source(const struct args *a)
{
	char err[ODS_ERRLEN];
	PGconn *conn;

	if (!a->from)
		return usage("demo source: --from DIR is required");
	conn = connect_or_die(a, err, sizeof(err));
	if (!conn)
		return die("demo source", err);
	bool ok = demo_source(conn, a->api_dir, a->from, stdout, err, sizeof(err));
	PQfinish(conn);
	return ok ? 0 : die("demo source", err);
}

static int cmd_demo_churn(const struct args *a)
{
	struct churn_opts o = {.db = a->db,
	                       .rate = a->rate > 0 ? a->rate : 50,
	                       .duration = a->duration,
	                       .seed = a->seed};

	if (!a->db)
		return usage("demo churn: --db URI is required");
	return churn_run(&o);
}

static int cmd_sync_load(const struct args *a)
{
	char err[ODS_ERRLEN];
	struct load_result r;
	struct load_opts o = {.as_of = a->as_of, .incremental = a->incremental};
	PGconn *conn;

	if (a->npos != 2)
		return usage("sync load: TABLE and FILE are required");
	o.table = a->pos[0];
	o.file = a->pos[1];
	conn = connect_or_die(a, err, sizeof(err));
	if (!conn)
		return die("sync load", err);
	bool ok = loader_run(conn, &o, &r, err, sizeof(err));
	PQfinish(conn);
	if (!ok)
		return die("sync load", err);
	loader_print_result(stdout, &o, &r);
	return 0;
}

static int cmd_sync_run(struct args *a)
{
	if (!a->db || !a->cdc.source || !a->cdc.name)
		return usage("sync run: --db, --source and --name are required");
	if (a->npos != 0)
		return usage("sync run: unexpected argument");
	a->cdc.db = a->db;
	return cdc_run(&a->cdc);
}

static int cmd_sync_status(const struct args *a)
{
	char err[ODS_ERRLEN];
	PGconn *conn = connect_or_die(a, err, sizeof(err));

	if (!conn)
		return die("sync status", err);
	bool ok = cdc_status_report(conn, stdout, err, sizeof(err));
	PQfinish(conn);
	return ok ? 0 : die("sync status", err);
}

static int cmd_freshness(const struct args *a)
{
	char err[ODS_ERRLEN];
	PGconn *conn = connect_or_die(a, err, sizeof(err));

	if (!conn)
		return die("freshness", err);
	bool ok = freshness_report(conn, stdout, err, sizeof(err));
	PQfinish(conn);
	return ok ? 0 : die("freshness", err);
}

static int cmd_token(const struct args *a)
{
	char err[ODS_ERRLEN];
	char *jwt;

	if (!a->token.role)
		return usage("token: --role is required");
	if (!token_mint(&a->token, &jwt, err, sizeof(err)))
		return die("token", err);
	printf("%s\n", jwt);
	free(jwt);
	return 0;
}

int main(int argc, char **argv)
{
	char err[ODS_ERRLEN];
	struct args a;
	int skip;

	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)
		return usage(NULL);
	/* Two-word commands ("demo generate", "sync load") consume both words. */
	skip = (strcmp(argv[1], "demo") == 0 || strcmp(argv[1], "sync") == 0) ? 2 : 1;
	if (argc <= skip)
		return usage("missing subcommand or options");
	/* getopt permutes argv: take the command words before parsing. */
	const char *cmd = argv[1], *sub = skip == 2 ? argv[2] : "";
	if (!parse_args(argc - skip, argv + skip, &a, err, sizeof(err)))
		return usage(err);

	if (strcmp(cmd, "migrate") == 0)
		return cmd_migrate(&a);
	if (strcmp(cmd, "freshness") == 0)
		return cmd_freshness(&a);
	if (strcmp(cmd, "token") == 0)
		return cmd_token(&a);
	if (strcmp(cmd, "demo") == 0 && strcmp(sub, "generate") == 0)
		return cmd_demo_generate(&a);
	if (strcmp(cmd, "demo") == 0 && strcmp(sub, "load") == 0)
		return cmd_demo_load(&a);
	if (strcmp(cmd, "demo") == 0 && strcmp(sub, "source") == 0)
		return cmd_demo_source(&a);
	if (strcmp(cmd, "demo") == 0 && strcmp(sub, "churn") == 0)
		return cmd_demo_churn(&a);
	if (strcmp(cmd, "sync") == 0 && strcmp(sub, "load") == 0)
		return cmd_sync_load(&a);
	if (strcmp(cmd, "sync") == 0 && strcmp(sub, "run") == 0)
		return cmd_sync_run(&a);
	if (strcmp(cmd, "sync") == 0 && strcmp(sub, "status") == 0)
		return cmd_sync_status(&a);
	return usage("unknown command");
}
