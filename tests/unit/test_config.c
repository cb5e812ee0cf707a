/*
 * config unit tests: defaults, every key from a file, environment overrides,
 * the file syntax, one case per error (each must name the file and line),
 * hostile input, dump round trips and reload. Check forks every test, so
 * setenv in a test stays in that test; the fixture clears every ODS_<KEY>
 * so the developer's own environment cannot change the results.
 */
#include "autoconfig.h"

#include "suites.h"

#include "core/config.h"
#include "core/util.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void clear_env(void)
{
	char var[64];

	for (size_t i = 0; config_key(i); i++) {
		snprintf(var, sizeof(var), "ODS_%s", config_key(i));
		for (char *p = var; *p; p++)
			*p = (char)toupper((unsigned char)*p);
		unsetenv(var);
	}
}

/* A temporary file holding len bytes of data; the caller unlinks and frees it. */
static char *write_conf(const void *data, size_t len)
{
	const char *tmp = getenv("TMPDIR");
	char *path = xasprintf("%s/odsd-conf.XXXXXX", tmp ? tmp : "/tmp");
	int fd = mkstemp(path);

	ck_assert_msg(fd >= 0, "mkstemp %s", path);
	ck_assert(write(fd, data, len) == (ssize_t)len);
	ck_assert(close(fd) == 0);
	return path;
}

static bool load_text(const char *text, struct ods_config *c, char *err, size_t errlen)
{
	char *path = write_conf(text, strlen(text));
	bool ok = config_load(c, path, err, errlen);

	unlink(path);
	free(path);
	return ok;
}

/* Loading text must fail at line with a message holding want. */
static void expect_error(const void *data, size_t len, int line, const char *want)
{
	char err[ODS_ERRLEN] = "", where[600];
	struct ods_config c;
	char *path = write_conf(data, len);
	bool ok = config_load(&c, path, err, sizeof(err));

	snprintf(where, sizeof(where), "%s:%d: ", path, line);
	unlink(path);
	free(path);
	if (ok)
		config_free(&c);
	ck_assert_msg(!ok, "loaded, expected an error with %s", want);
	ck_assert_msg(strncmp(err, where, strlen(where)) == 0, "%s does not start with %s", err,
	              where);
	ck_assert_msg(strstr(err, want) != NULL, "%s does not contain %s", err, want);
	for (const char *p = err; *p; p++)
		ck_assert_msg(isprint((unsigned char)*p), "unprintable byte in: %s", err);
}

START_TEST(test_defaults)
{
	char err[ODS_ERRLEN];
	struct ods_config c;

	ck_assert_msg(config_load(&c, NULL, err, sizeof(err)), "%s", err);
	ck_assert_str_eq(c.listen_addr, "127.0.0.1");
	ck_assert_int_eq(c.listen_port, 8080);
	ck_assert_int_eq(c.http_threads, 0);
	ck_assert_int_eq(c.max_connections, 256);
	ck_assert_int_eq(c.connection_timeout_s, 30);
	ck_assert_int_eq(c.max_header_bytes, 32768);
	ck_assert_str_eq(c.db_uri, "");
	ck_assert_int_eq(c.db_pool_size, 8);
	ck_assert_int_eq(c.db_pool_timeout_ms, 2000);
	ck_assert_int_eq(c.statement_timeout_ms, 5000);
	ck_assert_int_eq(c.max_body_bytes, 1048576);
	ck_assert_str_eq(c.jwt_algorithms, "HS256");
	ck_assert_str_eq(c.jwt_secret_file, "");
	ck_assert_str_eq(c.jwt_public_key_file, "");
	ck_assert_str_eq(c.jwt_jwks_file, "");
	ck_assert_str_eq(c.jwt_audience, "");
	ck_assert_str_eq(c.jwt_issuer, "");
	ck_assert_int_eq(c.jwt_leeway_s, 30);
	ck_assert_str_eq(c.jwt_role_claim, "role");
	ck_assert_str_eq(c.app_roles, "support_agent,fraud_analyst,ops_manager,field_dispatcher,"
	                              "ods_admin,ods_sync");
	ck_assert_str_eq(c.cors_origins, "");
	ck_assert_str_eq(c.log_level, "info");
	ck_assert(c.log_json);
	ck_assert_int_eq(c.shutdown_timeout_ms, 10000);
	ck_assert_int_eq(c.freshness_refresh_ms, 5000);
	ck_assert_str_eq(c.openapi_file, ODS_OPENAPI_FILE);
	config_free(&c);
	ck_assert_ptr_null(c.listen_addr);
	config_free(&c); /* a freed (zeroed) config frees again safely */
}
END_TEST

START_TEST(test_key_table)
{
	size_t n = 0;

	for (; config_key(n); n++)
		for (size_t j = 0; j < n; j++)
			ck_assert_str_ne(config_key(j), config_key(n));
	ck_assert_int_eq(n, 26);
	ck_assert_ptr_null(config_key(n + 100));
	ck_assert(!config_key_reloadable("listen_addr"));
	ck_assert(!config_key_reloadable("listen_port"));
	ck_assert(!config_key_reloadable("db_uri"));
	ck_assert(!config_key_reloadable("db_pool_size"));
	ck_assert(!config_key_reloadable("max_body_bytes"));
	ck_assert(!config_key_reloadable("http_threads"));
	ck_assert(!config_key_reloadable("openapi_file"));
	ck_assert(config_key_reloadable("log_level"));
	ck_assert(config_key_reloadable("jwt_secret_file"));
	ck_assert(config_key_reloadable("cors_origins"));
	ck_assert(config_key_reloadable("statement_timeout_ms"));
	ck_assert(config_key_reloadable("freshness_refresh_ms"));
	ck_assert(config_key_reloadable("log_json"));
	ck_assert(!config_key_reloadable("no_such_key"));
}
END_TEST

START_TEST(test_every_key_from_file)
{
	const char *text = "listen_addr = 0.0.0.0\n"
	                   "listen_port = 9090\n"
	                   "http_threads = 4\n"
	                   "max_connections = 1000\n"
	                   "connection_timeout_s = 5\n"
	                   "max_header_bytes = 65536\n"
	                   "db_uri = postgresql://ods@db/ods\n"
	                   "db_pool_size = 16\n"
	                   "db_pool_timeout_ms = 1500\n"
	                   "statement_timeout_ms = 7000\n"
	                   "max_body_bytes = 4096\n"
	                   "jwt_algorithms = RS256, ES256\n"
	                   "jwt_secret_file = /etc/odsd/secret\n"
	                   "jwt_public_key_file = /etc/odsd/pub.pem\n"
	                   "jwt_jwks_file = /etc/odsd/jwks.json\n"
	                   "jwt_audience = ods-api\n"
	                   "jwt_issuer = https://idp.example\n"
	                   "jwt_leeway_s = 0\n"
	                   "jwt_role_claim = ods_role\n"
	                   "app_roles = support_agent ,ods_admin\n"
	                   "cors_origins = https://a.example,https://b.example\n"
	                   "log_level = debug\n"
	                   "log_json = off\n"
	                   "shutdown_timeout_ms = 0\n"
	                   "freshness_refresh_ms = 250\n"
	                   "openapi_file = /usr/share/odsd/openapi.yaml\n";
	char err[ODS_ERRLEN];
	struct ods_config c;

	ck_assert_msg(load_text(text, &c, err, sizeof(err)), "%s", err);
	ck_assert_str_eq(c.listen_addr, "0.0.0.0");
	ck_assert_int_eq(c.listen_port, 9090);
	ck_assert_int_eq(c.http_threads, 4);
	ck_assert_int_eq(c.max_connections, 1000);
	ck_assert_int_eq(c.connection_timeout_s, 5);
	ck_assert_int_eq(c.max_header_bytes, 65536);
	ck_assert_str_eq(c.db_uri, "postgresql://ods@db/ods");
	ck_assert_int_eq(c.db_pool_size, 16);
	ck_assert_int_eq(c.db_pool_timeout_ms, 1500);
	ck_assert_int_eq(c.statement_timeout_ms, 7000);
	ck_assert_int_eq(c.max_body_bytes, 4096);
	ck_assert_str_eq(c.jwt_algorithms, "RS256,ES256");
	ck_assert_str_eq(c.jwt_secret_file, "/etc/odsd/secret");
	ck_assert_str_eq(c.jwt_public_key_file, "/etc/odsd/pub.pem");
	ck_assert_str_eq(c.jwt_jwks_file, "/etc/odsd/jwks.json");
	ck_assert_str_eq(c.jwt_audience, "ods-api");
	ck_assert_str_eq(c.jwt_issuer, "https://idp.example");
	ck_assert_int_eq(c.jwt_leeway_s, 0);
	ck_assert_str_eq(c.jwt_role_claim, "ods_role");
	ck_assert_str_eq(c.app_roles, "support_agent,ods_admin");
	ck_assert_str_eq(c.cors_origins, "https://a.example,https://b.example");
	ck_assert_str_eq(c.log_level, "debug");
	ck_assert(!c.log_json);
	ck_assert_int_eq(c.shutdown_timeout_ms, 0);
	ck_assert_int_eq(c.freshness_refresh_ms, 250);
	ck_assert_str_eq(c.openapi_file, "/usr/share/odsd/openapi.yaml");
	config_free(&c);
}
END_TEST

START_TEST(test_int_and_bool_forms)
{
	char err[ODS_ERRLEN];
	struct ods_config c;

	ck_assert_msg(load_text("listen_port = 65535\ndb_pool_size = 1\nlog_json = No\n", &c, err,
	                        sizeof(err)),
	              "%s", err);
	ck_assert_int_eq(c.listen_port, 65535);
	ck_assert_int_eq(c.db_pool_size, 1);
	ck_assert(!c.log_json);
	config_free(&c);
	ck_assert_msg(load_text("listen_port = 1\nlog_json = YES\n", &c, err, sizeof(err)), "%s",
	              err);
	ck_assert_int_eq(c.listen_port, 1);
	ck_assert(c.log_json);
	config_free(&c);
}
END_TEST

START_TEST(test_syntax)
{
	const char *text = "# a whole-line comment\n"
	                   "   # an indented one\n"
	                   "\n"
	                   " \t \n"
	                   "listen_port=9091\n"
	                   "\tlisten_addr\t=\t::1\t# trailing comment\n"
	                   "jwt_audience = a#b\n"
	                   "jwt_issuer = \"  has # and \\\"quotes\\\" and \\\\  \"  # comment\n"
	                   "jwt_role_claim = \"\"\n"
	                   "db_uri =\n"
	                   "log_level = warn\r\n"
	                   "jwt_jwks_file = #nothing but a comment\n"
	                   "cors_origins = \"https://x.example\"";
	char err[ODS_ERRLEN];
	struct ods_config c;

	ck_assert_msg(load_text(text, &c, err, sizeof(err)), "%s", err);
	ck_assert_int_eq(c.listen_port, 9091);
	ck_assert_str_eq(c.listen_addr, "::1");
	ck_assert_str_eq(c.jwt_audience, "a#b");
	ck_assert_str_eq(c.jwt_issuer, "  has # and \"quotes\" and \\  ");
	ck_assert_str_eq(c.jwt_role_claim, "");
	ck_assert_str_eq(c.db_uri, "");
	ck_assert_str_eq(c.log_level, "warn");
	ck_assert_str_eq(c.jwt_jwks_file, "");
	ck_assert_str_eq(c.cors_origins, "https://x.example");
	config_free(&c);
}
END_TEST

START_TEST(test_empty_file)
{
	char err[ODS_ERRLEN];
	struct ods_config c;

	ck_assert_msg(load_text("", &c, err, sizeof(err)), "%s", err);
	ck_assert_int_eq(c.listen_port, 8080);
	config_free(&c);
}
END_TEST

static const struct {
	const char *text;
	int line;
	const char *want;
} error_cases[] = {
        {"listen_port = 1\n\n# x\nlisten_prot = 2\n", 4, "unknown key \"listen_prot\""},
        {"listen_port 8080\n", 1, "missing \"=\""},
        {"listen_port # = 8080\n", 1, "missing \"=\""},
        {"\n= 5\n", 2, "missing key"},
        {"=\n", 1, "missing key"},
        {"listen_port = 1\nlisten_port = 2\n", 2,
         "duplicate key \"listen_port\" (first set on line 1)"},
        {"listen_port = http\n", 1, "listen_port: \"http\" is not an integer"},
        {"listen_port =\n", 1, "\"\" is not an integer"},
        {"listen_port = +80\n", 1, "not an integer"},
        {"listen_port = 0x50\n", 1, "not an integer"},
        {"listen_port = 80 80\n", 1, "not an integer"},
        {"listen_port = 99999999999999999999999\n", 1, "is out of range (1 to 65535)"},
        {"listen_port = 0\n", 1, "\"0\" is out of range (1 to 65535)"},
        {"listen_port = 65536\n", 1, "out of range (1 to 65535)"},
        {"listen_port = -1\n", 1, "out of range (1 to 65535)"},
        {"db_pool_size = 1025\n", 1, "db_pool_size: \"1025\" is out of range (1 to 1024)"},
        {"max_header_bytes = 100\n", 1, "out of range (4096 to 1048576)"},
        {"log_json = maybe\n", 1, "log_json: \"maybe\" is not a boolean"},
        {"log_level = verbose\n", 1, "log_level: must be error, warn, info or debug"},
        {"log_level = INFO\n", 1, "must be error, warn, info or debug"},
        {"jwt_issuer = \"abc\n", 1, "unterminated quoted value"},
        {"jwt_issuer = \"abc\\\"\n", 1, "unterminated quoted value"},
        {"jwt_issuer = \"abc\\\n", 1, "unterminated quoted value"},
        {"jwt_issuer = \"a\\nb\"\n", 1, "unknown escape"},
        {"jwt_issuer = \"a\" b\n", 1, "unexpected text after the closing quote"},
        {"app_roles = a,,b\n", 1, "empty item in list"},
        {"app_roles = a,\n", 1, "empty item in list"},
        {"jwt_algorithms = HS256 RS256\n", 1, "list items are separated by commas"},
};

START_TEST(test_errors)
{
	expect_error(error_cases[_i].text, strlen(error_cases[_i].text), error_cases[_i].line,
	             error_cases[_i].want);
}
END_TEST

START_TEST(test_long_lines)
{
	char err[ODS_ERRLEN];
	struct ods_config c;
	struct strbuf sb;
	const char *prefix = "jwt_issuer = ";

	/* Exactly 4096 bytes is fine (the longest value and a comment); one more is not. */
	strbuf_init(&sb);
	strbuf_adds(&sb, prefix);
	while (sb.len < strlen(prefix) + 2016)
		strbuf_addc(&sb, 'x');
	strbuf_adds(&sb, " #");
	while (sb.len < 4096)
		strbuf_addc(&sb, 'c');
	strbuf_addc(&sb, '\n');
	ck_assert_msg(load_text(sb.data, &c, err, sizeof(err)), "%s", err);
	ck_assert_uint_eq(strlen(c.jwt_issuer), 2016);
	config_free(&c);

	strbuf_reset(&sb);
	strbuf_adds(&sb, "# ok\n");
	strbuf_adds(&sb, prefix);
	while (sb.len < 5 + 4097)
		strbuf_addc(&sb, 'x');
	expect_error(sb.data, sb.len, 2, "line is longer than 4096 bytes");

	/* A megabyte without a newline. */
	strbuf_reset(&sb);
	for (int i = 0; i < 1000000; i++)
		strbuf_addc(&sb, 'k');
	expect_error(sb.data, sb.len, 1, "line is longer than 4096 bytes");
	strbuf_free(&sb);
}
END_TEST

START_TEST(test_nul_bytes)
{
	static const char one[] = "listen_port = 1\nlisten_addr = a\0b\n";
	static const char two[] = "\0";

	expect_error(one, sizeof(one) - 1, 2, "NUL byte");
	expect_error(two, sizeof(two) - 1, 1, "NUL byte");
}
END_TEST

START_TEST(test_binary_garbage)
{
	unsigned char buf[4096];
	char err[ODS_ERRLEN];
	struct ods_config c;
	unsigned int x = 12345;

	/* Deterministic junk (NUL aside, tested on its own): each round must fail cleanly. */
	for (int round = 0; round < 50; round++) {
		for (size_t i = 0; i < sizeof(buf); i++) {
			x = x * 1103515245u + 12345u;
			buf[i] = (unsigned char)(x >> 16);
			if (buf[i] == 0)
				buf[i] = 0xff;
		}
		buf[100] = 'k'; /* the first line starts with a key-ish byte, not a comment */
		char *path = write_conf(buf + 100, sizeof(buf) - 100);
		bool ok = config_load(&c, path, err, sizeof(err));
		unlink(path);
		ck_assert_msg(!ok, "garbage loaded");
		ck_assert_msg(strncmp(err, path, strlen(path)) == 0, "%s", err);
		for (const char *p = err; *p; p++)
			ck_assert_msg(isprint((unsigned char)*p), "unprintable byte in: %s", err);
		free(path);
	}
}
END_TEST

START_TEST(test_hostile_key_is_cut_short)
{
	char err[ODS_ERRLEN];
	struct ods_config c;
	struct strbuf sb;

	strbuf_init(&sb);
	for (int i = 0; i < 3000; i++)
		strbuf_addc(&sb, 'z');
	strbuf_adds(&sb, " = 1\n");
	ck_assert(!load_text(sb.data, &c, err, sizeof(err)));
	ck_assert_msg(strstr(err, "unknown key \"zzzz") && strstr(err, "...\""), "%s", err);
	ck_assert_uint_lt(strlen(err), 200);
	strbuf_free(&sb);
}
END_TEST

START_TEST(test_ten_thousand_lines)
{
	char err[ODS_ERRLEN];
	struct ods_config c;
	struct strbuf sb;

	strbuf_init(&sb);
	for (int i = 0; i < 10000; i++)
		strbuf_adds(&sb, i % 2 ? "# comment line\n" : "   \n");
	strbuf_adds(&sb, "listen_port = 7777\n");
	ck_assert_msg(load_text(sb.data, &c, err, sizeof(err)), "%s", err);
	ck_assert_int_eq(c.listen_port, 7777);
	config_free(&c);
	strbuf_adds(&sb, "bogus = 1\n");
	expect_error(sb.data, sb.len, 10002, "unknown key \"bogus\"");
	strbuf_free(&sb);
}
END_TEST

START_TEST(test_not_a_config_file)
{
	char err[ODS_ERRLEN];
	struct ods_config c;
	const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	char *missing = xasprintf("%s/odsd-no-such-dir/odsd.conf", tmp);
	char *big = xmalloc(2 * 1024 * 1024);

	ck_assert(!config_load(&c, missing, err, sizeof(err)));
	ck_assert_msg(strstr(err, missing) && strstr(err, "No such file"), "%s", err);
	ck_assert(!config_load(&c, tmp, err, sizeof(err)));
	ck_assert_msg(strstr(err, tmp) != NULL, "%s", err);
	memset(big, '#', 2 * 1024 * 1024);
	char *path = write_conf(big, 2 * 1024 * 1024);
	ck_assert(!config_load(&c, path, err, sizeof(err)));
	ck_assert_msg(strstr(err, path) && strstr(err, "larger than"), "%s", err);
	unlink(path);
	free(path);
	free(big);
	free(missing);
}
END_TEST

START_TEST(test_failed_load_leaves_out_alone)
{
	char err[ODS_ERRLEN];
	struct ods_config c;

	memset(&c, 0, sizeof(c));
	c.listen_port = -7;
	ck_assert(!load_text("listen_port = 1\nnope = 2\n", &c, err, sizeof(err)));
	ck_assert_int_eq(c.listen_port, -7);
	ck_assert_ptr_null(c.listen_addr);
}
END_TEST

START_TEST(test_env_beats_file)
{
	char err[ODS_ERRLEN];
	struct ods_config c;

	setenv("ODS_LISTEN_PORT", "9100", 1);
	setenv("ODS_DB_URI", "postgresql://env/db", 1);
	setenv("ODS_APP_ROLES", " a , b ", 1);
	setenv("ODS_JWT_ISSUER", "  kept as is # not a comment", 1);
	setenv("ODS_NO_SUCH_KEY", "whatever", 1); /* other tools share the prefix */
	setenv("ODS_API_DIR", "/elsewhere", 1);
	ck_assert_msg(load_text("listen_port = 9000\nlog_level = debug\ndb_uri = file\n", &c, err,
	                        sizeof(err)),
	              "%s", err);
	ck_assert_int_eq(c.listen_port, 9100);
	ck_assert_str_eq(c.db_uri, "postgresql://env/db");
	ck_assert_str_eq(c.log_level, "debug"); /* file beats default */
	ck_assert_str_eq(c.app_roles, "a,b");
	ck_assert_str_eq(c.jwt_issuer, "  kept as is # not a comment");
	config_free(&c);

	/* No file at all: defaults plus environment. */
	ck_assert_msg(config_load(&c, NULL, err, sizeof(err)), "%s", err);
	ck_assert_int_eq(c.listen_port, 9100);
	ck_assert_str_eq(c.log_level, "info");
	config_free(&c);
}
END_TEST

START_TEST(test_env_errors)
{
	char err[ODS_ERRLEN];
	struct ods_config c;

	setenv("ODS_LISTEN_PORT", "eighty", 1);
	ck_assert(!config_load(&c, NULL, err, sizeof(err)));
	ck_assert_msg(strstr(err, "ODS_LISTEN_PORT: \"eighty\" is not an integer"), "%s", err);
	setenv("ODS_LISTEN_PORT", "80", 1);

	setenv("ODS_DB_POOL_SIZE", "0", 1);
	ck_assert(!config_load(&c, NULL, err, sizeof(err)));
	ck_assert_msg(strstr(err, "ODS_DB_POOL_SIZE: \"0\" is out of range (1 to 1024)"), "%s",
	              err);
	unsetenv("ODS_DB_POOL_SIZE");

	setenv("ODS_LOG_LEVEL", "loud", 1);
	ck_assert(!load_text("listen_port = 1\n", &c, err, sizeof(err)));
	ck_assert_msg(strstr(err, "ODS_LOG_LEVEL: must be error, warn, info or debug"), "%s", err);
	unsetenv("ODS_LOG_LEVEL");

	setenv("ODS_CORS_ORIGINS", "https://a.example\r\nX-Evil: 1", 1);
	ck_assert(!config_load(&c, NULL, err, sizeof(err)));
	ck_assert_msg(strstr(err, "ODS_CORS_ORIGINS: control character"), "%s", err);
	unsetenv("ODS_CORS_ORIGINS");

	ck_assert_msg(config_load(&c, NULL, err, sizeof(err)), "%s", err);
	ck_assert_int_eq(c.listen_port, 80);
	config_free(&c);
}
END_TEST

/* Dumps c into a string the caller frees. */
static char *dump_string(const struct ods_config *c)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	ck_assert_ptr_nonnull(f);
	ck_assert(config_dump(c, f));
	ck_assert(fclose(f) == 0);
	return buf;
}

/* Found by fuzz_config: a bare value full of quotes loaded, but its dump
 * (quoted, each " escaped) was longer than a line may be and did not load
 * back. Values are capped so that every loadable config dumps loadably. */
START_TEST(test_long_value_round_trip)
{
	char err[ODS_ERRLEN], *text, *dumped;
	struct ods_config c, back;
	struct strbuf sb;

	strbuf_init(&sb);
	strbuf_adds(&sb, "db_uri = a");
	for (int i = 0; i < 2015; i++)
		strbuf_addc(&sb, '"');
	strbuf_addc(&sb, '\n');
	ck_assert_msg(load_text(sb.data, &c, err, sizeof(err)), "%s", err);
	dumped = dump_string(&c);
	ck_assert_msg(load_text(dumped, &back, err, sizeof(err)), "%s", err);
	ck_assert_str_eq(back.db_uri, c.db_uri);
	config_free(&back);
	config_free(&c);
	free(dumped);

	strbuf_reset(&sb);
	strbuf_adds(&sb, "db_uri = ");
	for (int i = 0; i < 2100; i++)
		strbuf_addc(&sb, 'x');
	strbuf_addc(&sb, '\n');
	text = strbuf_detach(&sb);
	ck_assert(!load_text(text, &c, err, sizeof(err)));
	ck_assert_msg(strstr(err, "db_uri: value longer than 2016 bytes"), "%s", err);
	free(text);
}
END_TEST

START_TEST(test_dump_round_trip)
{
	const char *text = "listen_port = 9999\n"
	                   "jwt_issuer = \" a \\\"tricky\\\" # \\\\ value \"\n"
	                   "jwt_audience = plain#hash\n"
	                   "cors_origins = https://a.example, https://b.example\n"
	                   "log_json = 0\n";
	char err[ODS_ERRLEN];
	struct ods_config a, b;
	char *first, *second;

	ck_assert_msg(load_text(text, &a, err, sizeof(err)), "%s", err);
	first = dump_string(&a);
	ck_assert_msg(strstr(first, "listen_port = 9999\n"), "%s", first);
	ck_assert_msg(strstr(first, "log_json = false\n"), "%s", first);
	ck_assert_msg(strstr(first, "listen_addr = \"127.0.0.1\"\n"), "%s", first);
	ck_assert_msg(strstr(first, "cors_origins = \"https://a.example,https://b.example\"\n"),
	              "%s", first);
	for (size_t i = 0; config_key(i); i++) {
		char *want = xasprintf("\n%s = ", config_key(i));
		ck_assert_msg(strstr(first, want) ||
		                      strncmp(first, want + 1, strlen(want + 1)) == 0,
		              "dump misses %s", config_key(i));
		free(want);
	}
	ck_assert_msg(load_text(first, &b, err, sizeof(err)), "%s", err);
	ck_assert_str_eq(b.jwt_issuer, " a \"tricky\" # \\ value ");
	second = dump_string(&b);
	ck_assert_str_eq(first, second);
	free(first);
	free(second);
	config_free(&a);
	config_free(&b);
}
END_TEST

START_TEST(test_reload_applies_reloadable_keys_only)
{
	char err[ODS_ERRLEN];
	struct ods_config cur, next;
	char *path = write_conf("", 0);
	FILE *f;

	f = fopen(path, "w");
	/* An empty first key once made reload compare NULL strings. */
	fputs("listen_addr = \"\"\nlisten_port = 9000\ndb_pool_size = 4\nlog_level = info\n"
	      "jwt_issuer = a\n",
	      f);
	ck_assert(fclose(f) == 0);
	ck_assert_msg(config_load(&cur, path, err, sizeof(err)), "%s", err);

	f = fopen(path, "w");
	fputs("listen_addr = \"\"\nlisten_port = 9001\ndb_pool_size = 5\nlog_level = debug\n"
	      "jwt_issuer = b\n"
	      "statement_timeout_ms = 100\n",
	      f);
	ck_assert(fclose(f) == 0);
	ck_assert_msg(config_reload(&cur, &next, path, err, sizeof(err)), "%s", err);
	ck_assert_int_eq(next.listen_port, 9000);
	ck_assert_str_eq(next.listen_addr, "");
	ck_assert_int_eq(next.db_pool_size, 4);
	ck_assert_str_eq(next.log_level, "debug");
	ck_assert_str_eq(next.jwt_issuer, "b");
	ck_assert_int_eq(next.statement_timeout_ms, 100);
	/* cur is only read: threads may still be using it. */
	ck_assert_str_eq(cur.log_level, "info");
	ck_assert_str_eq(cur.jwt_issuer, "a");
	ck_assert_int_eq(cur.statement_timeout_ms, 5000);

	config_free(&cur);
	unlink(path);
	free(path);
	config_free(&next);
}
END_TEST

START_TEST(test_failed_reload_keeps_old)
{
	char err[ODS_ERRLEN];
	struct ods_config cur, next;
	char *path = write_conf("log_level = warn\n", 17);
	FILE *f;

	ck_assert_msg(config_load(&cur, path, err, sizeof(err)), "%s", err);
	f = fopen(path, "w");
	fputs("log_level = debug\nstatement_timeout_ms = nope\n", f);
	ck_assert(fclose(f) == 0);
	memset(&next, 0, sizeof(next));
	next.listen_port = -3;
	ck_assert(!config_reload(&cur, &next, path, err, sizeof(err)));
	ck_assert_msg(strstr(err, ":2: statement_timeout_ms"), "%s", err);
	ck_assert_int_eq(next.listen_port, -3);
	ck_assert_ptr_null(next.log_level);
	ck_assert_str_eq(cur.log_level, "warn");

	/* The environment is read again on reload too. */
	f = fopen(path, "w");
	fputs("log_level = debug\n", f);
	ck_assert(fclose(f) == 0);
	setenv("ODS_JWT_LEEWAY_S", "5", 1);
	ck_assert_msg(config_reload(&cur, &next, path, err, sizeof(err)), "%s", err);
	ck_assert_int_eq(next.jwt_leeway_s, 5);
	ck_assert_str_eq(next.log_level, "debug");
	unlink(path);
	free(path);
	config_free(&cur);
	config_free(&next);
}
END_TEST

/*
 * PgBouncer's optscan idea: every key of the config table is documented in
 * the sample config (deploy/odsd.conf) and in README.md, and the sample
 * itself loads.
 */
START_TEST(test_keys_documented)
{
	const char *top = getenv("ODS_TOP_SRCDIR");
	char err[ODS_ERRLEN];
	struct ods_config c;
	char *sample, *readme, *path;

	ck_assert_msg(top != NULL, "ODS_TOP_SRCDIR is not set");
	path = xasprintf("%s/deploy/odsd.conf", top);
	sample = util_read_file(path, NULL, err, sizeof(err));
	ck_assert_msg(sample != NULL, "%s", err);
	ck_assert_msg(config_load(&c, path, err, sizeof(err)), "%s", err);
	config_free(&c);
	free(path);
	path = xasprintf("%s/README.md", top);
	readme = util_read_file(path, NULL, err, sizeof(err));
	ck_assert_msg(readme != NULL, "%s", err);
	for (size_t i = 0; config_key(i); i++) {
		char *line = xasprintf("\n#%s =", config_key(i));
		char *set = xasprintf("\n%s =", config_key(i));
		char *doc = xasprintf("`%s`", config_key(i));
		ck_assert_msg(strstr(sample, line) || strstr(sample, set),
		              "key %s is missing from deploy/odsd.conf", config_key(i));
		ck_assert_msg(strstr(readme, doc), "key %s is not documented in README.md",
		              config_key(i));
		free(line);
		free(set);
		free(doc);
	}
	free(sample);
	free(readme);
	free(path);
}
END_TEST

Suite *config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *t = tcase_create("config");

	tcase_add_checked_fixture(t, clear_env, NULL);
	tcase_set_timeout(t, 30);
	tcase_add_test(t, test_defaults);
	tcase_add_test(t, test_key_table);
	tcase_add_test(t, test_every_key_from_file);
	tcase_add_test(t, test_int_and_bool_forms);
	tcase_add_test(t, test_syntax);
	tcase_add_test(t, test_empty_file);
	tcase_add_loop_test(t, test_errors, 0, (int)ODS_ARRAY_LEN(error_cases));
	tcase_add_test(t, test_long_lines);
	tcase_add_test(t, test_nul_bytes);
	tcase_add_test(t, test_binary_garbage);
	tcase_add_test(t, test_hostile_key_is_cut_short);
	tcase_add_test(t, test_ten_thousand_lines);
	tcase_add_test(t, test_not_a_config_file);
	tcase_add_test(t, test_failed_load_leaves_out_alone);
	tcase_add_test(t, test_env_beats_file);
	tcase_add_test(t, test_env_errors);
	tcase_add_test(t, test_dump_round_trip);
	tcase_add_test(t, test_reload_applies_reloadable_keys_only);
	tcase_add_test(t, test_failed_reload_keeps_old);
	tcase_add_test(t, test_keys_documented);
	tcase_add_test(t, test_long_value_round_trip);
	suite_add_tcase(s, t);
	return s;
}
