/*
 * config: one static table (keys[]) is the whole model, like PgBouncer's
 * loader. Each entry gives a key's name, type, where it lives in struct
 * ods_config, whether SIGHUP may change it, its default (as text, parsed by
 * the same code as the file, so a bad default fails the unit tests) and,
 * for integers, the allowed range. Loading is: defaults, then the file, then
 * ODS_<KEY> variables, all through set_value; reload and dump walk the same
 * table, so adding a key is one line here plus one field in the struct.
 *
 * File syntax: `key = value` lines; blank lines and `#` comments (a whole
 * line, or trailing after whitespace); a value may be double-quoted, with
 * \" and \\ escapes, to hold a `#` or surrounding spaces. Environment values
 * are taken literally. Every error names where it came from:
 * "odsd.conf:7: unknown key \"listen_prot\"", "ODS_LISTEN_PORT: ...".
 */
#include "autoconfig.h"

#include "core/config.h"

#include "core/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_LINE 4096
/* config_dump quotes values and escapes " and \ (up to twice the bytes):
 * a value this long still dumps into a line config_load reads back. */
#define MAX_VALUE ((MAX_LINE - 64) / 2)
#define MAX_FILE  (1024 * 1024) /* a config file is small; this is someone's log file */
#define SHOW_MAX  40            /* bytes of a hostile value echoed in an error */
#define SHOWN_LEN (SHOW_MAX * 4 + 8)

enum key_type { KEY_STRING, KEY_INT, KEY_BOOL, KEY_LIST };

struct key {
	const char *name;
	enum key_type type;
	size_t offset;
	bool reloadable;
	const char *def;
	long min, max; /* KEY_INT only */
	bool (*check)(const char *value, char *err, size_t errlen);
};

static bool check_log_level(const char *value, char *err, size_t errlen);

#define OFF(field) offsetof(struct ods_config, field)

/*
 * Reloadable: what odsd reads per request or per timer tick (timeouts, JWT
 * verification, CORS, logging, the freshness interval), so SIGHUP can rotate
 * keys or raise the log level. Not reloadable: what is bound or built once at
 * start: the listening socket, the HTTP daemon's threads and limits (it also
 * caps bodies at the max_body_bytes it started with), the pool's connections
 * and their number, the OpenAPI document read at start. Changing those on a
 * running server would mean dropping in-flight work.
 */
static const struct key keys[] = {
        {"listen_addr", KEY_STRING, OFF(listen_addr), false, "127.0.0.1", 0, 0, NULL},
        {"listen_port", KEY_INT, OFF(listen_port), false, "8080", 1, 65535, NULL},
        {"http_threads", KEY_INT, OFF(http_threads), false, "0", -1, 1024, NULL},
        {"max_connections", KEY_INT, OFF(max_connections), false, "256", 1, 100000, NULL},
        {"connection_timeout_s", KEY_INT, OFF(connection_timeout_s), false, "30", 1, 3600, NULL},
        {"max_header_bytes", KEY_INT, OFF(max_header_bytes), false, "32768", 4096, 1048576, NULL},
        {"db_uri", KEY_STRING, OFF(db_uri), false, "", 0, 0, NULL},
        {"db_pool_size", KEY_INT, OFF(db_pool_size), false, "8", 1, 1024, NULL},
        {"db_pool_timeout_ms", KEY_INT, OFF(db_pool_timeout_ms), true, "2000", 1, 600000, NULL},
        {"statement_timeout_ms", KEY_INT, OFF(statement_timeout_ms), true, "5000", 1, 3600000,
         NULL},
        {"max_body_bytes", KEY_INT, OFF(max_body_bytes), false, "1048576", 1, 1073741824, NULL},
        {"jwt_algorithms", KEY_LIST, OFF(jwt_algorithms), true, "HS256", 0, 0, NULL},
        {"jwt_secret_file", KEY_STRING, OFF(jwt_secret_file), true, "", 0, 0, NULL},
        {"jwt_public_key_file", KEY_STRING, OFF(jwt_public_key_file), true, "", 0, 0, NULL},
        {"jwt_jwks_file", KEY_STRING, OFF(jwt_jwks_file), true, "", 0, 0, NULL},
        {"jwt_audience", KEY_STRING, OFF(jwt_audience), true, "", 0, 0, NULL},
        {"jwt_issuer", KEY_STRING, OFF(jwt_issuer), true, "", 0, 0, NULL},
        {"jwt_leeway_s", KEY_INT, OFF(jwt_leeway_s), true, "30", 0, 3600, NULL},
        {"jwt_role_claim", KEY_STRING, OFF(jwt_role_claim), true, "role", 0, 0, NULL},
        {"app_roles", KEY_LIST, OFF(app_roles), true,
         "support_agent,fraud_analyst,ops_manager,field_dispatcher,ods_admin,ods_sync", 0, 0, NULL},
        {"cors_origins", KEY_LIST, OFF(cors_origins), true, "", 0, 0, NULL},
        {"log_level", KEY_STRING, OFF(log_level), true, "info", 0, 0, check_log_level},
        {"log_json", KEY_BOOL, OFF(log_json), true, "true", 0, 0, NULL},
        {"shutdown_timeout_ms", KEY_INT, OFF(shutdown_timeout_ms), true, "10000", 0, 3600000, NULL},
        {"freshness_refresh_ms", KEY_INT, OFF(freshness_refresh_ms), true, "5000", 100, 3600000,
         NULL},
        {"openapi_file", KEY_STRING, OFF(openapi_file), false, ODS_OPENAPI_FILE, 0, 0, NULL},
};

#define NKEYS ODS_ARRAY_LEN(keys)

/* s quoted for an error message: control and non-ASCII bytes as \xNN, cut short. */
static const char *show(const char *s, char buf[SHOWN_LEN])
{
	size_t o = 0, i;

	buf[o++] = '"';
	for (i = 0; s[i] && i < SHOW_MAX; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch < 0x20 || ch >= 0x7f)
			o += (size_t)snprintf(buf + o, SHOWN_LEN - o, "\\x%02x", ch);
		else
			buf[o++] = (char)ch;
	}
	snprintf(buf + o, SHOWN_LEN - o, "%s\"", s[i] ? "..." : "");
	return buf;
}

static bool is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

static char *trim(char *s)
{
	size_t n;

	while (is_ws(*s))
		s++;
	n = strlen(s);
	while (n > 0 && is_ws(s[n - 1]))
		s[--n] = '\0';
	return s;
}

static const struct key *find_key(const char *name)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (strcmp(keys[i].name, name) == 0)
			return &keys[i];
	return NULL;
}

static bool check_log_level(const char *value, char *err, size_t errlen)
{
	char shown[SHOWN_LEN];
	enum log_level level;

	if (log_parse_level(value, &level))
		return true;
	return errf(err, errlen, "must be error, warn, info or debug, not %s", show(value, shown));
}

static bool set_int(long *dst, const struct key *k, const char *v, char *err, size_t errlen)
{
	char shown[SHOWN_LEN];
	const char *digits = v[0] == '-' ? v + 1 : v;
	char *end;
	long n;

	errno = 0;
	n = strtol(v, &end, 10);
	/* strtol alone would also take " 12", "+12" and "12abc" (as 12). */
	if (!(digits[0] >= '0' && digits[0] <= '9') || *end != '\0')
		return errf(err, errlen, "%s is not an integer", show(v, shown));
	if (errno == ERANGE || n < k->min || n > k->max)
		return errf(err, errlen, "%s is out of range (%ld to %ld)", show(v, shown), k->min,
		            k->max);
	*dst = n;
	return true;
}

static bool set_bool(bool *dst, const char *v, char *err, size_t errlen)
{
	static const char *const yes[] = {"true", "yes", "on", "1"};
	static const char *const no[] = {"false", "no", "off", "0"};
	char shown[SHOWN_LEN];

	for (size_t i = 0; i < ODS_ARRAY_LEN(yes); i++) {
		if (strcasecmp(v, yes[i]) == 0 || strcasecmp(v, no[i]) == 0) {
			*dst = strcasecmp(v, yes[i]) == 0;
			return true;
		}
	}
	return errf(err, errlen, "%s is not a boolean (true/false, yes/no, on/off, 1/0)",
	            show(v, shown));
}

/* "a, b,c" -> "a,b,c"; an empty item or a space inside one is a mistake. */
static bool set_list(char **dst, const char *v, char *err, size_t errlen)
{
	char *copy = xstrdup(v), *item = copy, *comma;
	char shown[SHOWN_LEN];
	struct strbuf sb;
	bool ok = true, last = false;

	strbuf_init(&sb);
	if (*trim(copy) == '\0')
		last = true;
	while (ok && !last) {
		comma = strchr(item, ',');
		last = comma == NULL;
		if (comma)
			*comma = '\0';
		item = trim(item);
		if (*item == '\0')
			ok = errf(err, errlen, "empty item in list %s", show(v, shown));
		else if (strpbrk(item, " \t"))
			ok = errf(err, errlen, "list items are separated by commas: %s",
			          show(item, shown));
		else
			strbuf_addf(&sb, "%s%s", sb.len ? "," : "", item);
		if (comma)
			item = comma + 1;
	}
	if (ok) {
		free(*dst);
		*dst = strbuf_detach(&sb);
	}
	strbuf_free(&sb);
	free(copy);
	return ok;
}

/* Sets key k of c from text v; errors say what is wrong, the caller says where. */
static bool set_value(struct ods_config *c, const struct key *k, const char *v, char *err,
                      size_t errlen)
{
	char *field = (char *)c + k->offset;

	/* A newline in a value (possible from the environment) would break
	 * config_dump, and a CR/LF in cors_origins would end up in headers. */
	for (const char *p = v; *p; p++)
		if ((unsigned char)*p < 0x20 && *p != '\t')
			return errf(err, errlen, "control character in value");
	if (strlen(v) > MAX_VALUE)
		return errf(err, errlen, "value longer than %d bytes", MAX_VALUE);
	switch (k->type) {
	case KEY_INT:
		return set_int((long *)(void *)field, k, v, err, errlen);
	case KEY_BOOL:
		return set_bool((bool *)(void *)field, v, err, errlen);
	case KEY_LIST:
		return set_list((char **)(void *)field, v, err, errlen);
	case KEY_STRING:
		break;
	}
	if (k->check && !k->check(v, err, errlen))
		return false;
	free(*(char **)(void *)field);
	*(char **)(void *)field = xstrdup(v);
	return true;
}

/* The value of k in c as text, quoted for a config file when quote is set. */
static void format_value(struct strbuf *sb, const struct ods_config *c, const struct key *k,
                         bool quote)
{
	const char *field = (const char *)c + k->offset;
	const char *s;

	switch (k->type) {
	case KEY_INT:
		strbuf_addf(sb, "%ld", *(const long *)(const void *)field);
		return;
	case KEY_BOOL:
		strbuf_adds(sb, *(const bool *)(const void *)field ? "true" : "false");
		return;
	case KEY_STRING:
	case KEY_LIST:
		break;
	}
	s = *(char *const *)(const void *)field;
	if (quote)
		strbuf_addc(sb, '"');
	for (; *s; s++) {
		if (quote && (*s == '"' || *s == '\\'))
			strbuf_addc(sb, '\\');
		strbuf_addc(sb, *s);
	}
	if (quote)
		strbuf_addc(sb, '"');
}

/* The text after "=": quoted (with escapes) or bare up to a trailing comment. */
static bool parse_value(const char *p, struct strbuf *out, char *err, size_t errlen)
{
	const char *end;

	while (is_ws(*p))
		p++;
	if (*p != '"') {
		for (end = p; *end; end++)
			if (*end == '#' && (end == p || is_ws(end[-1])))
				break;
		while (end > p && is_ws(end[-1]))
			end--;
		strbuf_add(out, p, (size_t)(end - p));
		return true;
	}
	for (p++; *p != '"'; p++) {
		bool escaped = *p == '\\';

		if (escaped)
			p++;
		if (*p == '\0')
			return errf(err, errlen, "unterminated quoted value");
		if (escaped && *p != '"' && *p != '\\')
			return errf(err, errlen,
			            "unknown escape in quoted value (only \\\" and \\\\)");
		strbuf_addc(out, *p);
	}
	for (p++; is_ws(*p); p++)
		;
	if (*p != '\0' && *p != '#')
		return errf(err, errlen, "unexpected text after the closing quote");
	return true;
}

/* One line (NUL-terminated, no newline); seen[] holds the line that set each key. */
static bool parse_line(struct ods_config *c, int *seen, char *line, int lineno, char *err,
                       size_t errlen)
{
	char shown[SHOWN_LEN], why[ODS_ERRLEN];
	const struct key *k;
	struct strbuf value;
	char *key, *eq;
	bool ok;

	line = trim(line);
	if (*line == '\0' || *line == '#')
		return true;
	eq = line + strcspn(line, "=#");
	if (*eq != '=')
		return errf(err, errlen, "missing \"=\" in %s (lines are key = value)",
		            show(line, shown));
	*eq = '\0';
	key = trim(line);
	if (*key == '\0')
		return errf(err, errlen, "missing key before \"=\"");
	k = find_key(key);
	if (!k)
		return errf(err, errlen, "unknown key %s", show(key, shown));
	if (seen[k - keys])
		return errf(err, errlen, "duplicate key \"%s\" (first set on line %d)", k->name,
		            seen[k - keys]);
	seen[k - keys] = lineno;

	strbuf_init(&value);
	ok = parse_value(eq + 1, &value, err, errlen);
	if (ok && !set_value(c, k, value.data ? value.data : "", why, sizeof(why)))
		ok = errf(err, errlen, "%s: %s", k->name, why);
	strbuf_free(&value);
	return ok;
}

/* Parses text (len bytes, NUL-terminated at len) line by line into c. */
static bool parse_text(struct ods_config *c, const char *path, char *text, size_t len, char *err,
                       size_t errlen)
{
	int seen[NKEYS] = {0};
	char msg[ODS_ERRLEN];
	size_t pos = 0;
	int lineno = 0;
	bool ok = true;

	while (ok && pos < len) {
		char *line = text + pos;
		char *nl = memchr(line, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - line) : len - pos;

		lineno++;
		if (memchr(line, '\0', n))
			ok = errf(msg, sizeof(msg), "NUL byte in the file");
		else if (n > MAX_LINE)
			ok = errf(msg, sizeof(msg), "line is longer than %d bytes", MAX_LINE);
		else {
			line[n] = '\0';
			ok = parse_line(c, seen, line, lineno, msg, sizeof(msg));
		}
		pos += n + 1;
	}
	if (!ok)
		return errf(err, errlen, "%s:%d: %s", path, lineno, msg);
	return true;
}

/* The whole file, refusing one larger than MAX_FILE (which never ends, for /dev/zero). */
static char *read_text(const char *path, size_t *len, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	struct strbuf sb;
	char buf[8192];
	size_t n;

	if (!f) {
		errf(err, errlen, "cannot open config file %s: %s", path, strerror(errno));
		return NULL;
	}
	strbuf_init(&sb);
	strbuf_add(&sb, "", 0); /* an empty file is "", not NULL */
	while (sb.len <= MAX_FILE && (n = fread(buf, 1, sizeof(buf), f)) > 0)
		strbuf_add(&sb, buf, n);
	if (ferror(f))
		errf(err, errlen, "cannot read config file %s: %s", path, strerror(errno));
	else if (sb.len > MAX_FILE)
		errf(err, errlen, "config file %s is larger than %d bytes", path, MAX_FILE);
	if (ferror(f) || sb.len > MAX_FILE)
		strbuf_free(&sb);
	fclose(f);
	*len = sb.len;
	return sb.data;
}

static bool apply_env(struct ods_config *c, char *err, size_t errlen)
{
	char var[64], why[ODS_ERRLEN];

	for (size_t i = 0; i < NKEYS; i++) {
		snprintf(var, sizeof(var), "ODS_%s", keys[i].name);
		for (char *p = var; *p; p++)
			if (*p >= 'a' && *p <= 'z')
				*p = (char)(*p - 'a' + 'A');
		const char *v = getenv(var);
		if (v && !set_value(c, &keys[i], v, why, sizeof(why)))
			return errf(err, errlen, "%s: %s", var, why);
	}
	return true;
}

void config_init_defaults(struct ods_config *c)
{
	char err[ODS_ERRLEN];

	memset(c, 0, sizeof(*c));
	for (size_t i = 0; i < NKEYS; i++) {
		if (!set_value(c, &keys[i], keys[i].def, err, sizeof(err))) {
			/* A bug in keys[], not a user error; the unit tests catch it. */
			fprintf(stderr, "config: bad default for %s: %s\n", keys[i].name, err);
			abort();
		}
	}
}

bool config_load(struct ods_config *out, const char *path, char *err, size_t errlen)
{
	struct ods_config c;
	char *text = NULL;
	size_t len = 0;
	bool ok = true;

	config_init_defaults(&c);
	if (path) {
		text = read_text(path, &len, err, errlen);
		ok = text && parse_text(&c, path, text, len, err, errlen);
	}
	ok = ok && apply_env(&c, err, errlen);
	free(text);
	if (ok)
		*out = c;
	else
		config_free(&c);
	return ok;
}

bool config_reload(const struct ods_config *cur, struct ods_config *next, const char *path,
                   char *err, size_t errlen)
{
	struct ods_config fresh;
	struct strbuf was, now;
	char why[ODS_ERRLEN];

	if (!config_load(&fresh, path, err, errlen))
		return false;
	strbuf_init(&was);
	strbuf_init(&now);
	strbuf_add(&was, "", 0); /* .data is never NULL below, even for "" values */
	strbuf_add(&now, "", 0);
	for (size_t i = 0; i < NKEYS; i++) {
		const struct key *k = &keys[i];
		strbuf_reset(&was);
		strbuf_reset(&now);
		format_value(&was, cur, k, false);
		format_value(&now, &fresh, k, false);
		if (strcmp(was.data, now.data) == 0)
			continue;
		/* Values stay out of the log: db_uri may hold a password. */
		if (k->reloadable) {
			log_info("config reload: %s changed", k->name);
		} else {
			log_warn("config reload: %s changed but takes effect only on restart; "
			         "keeping the running value",
			         k->name);
			/* The running value passed validation once; it passes again. */
			if (!set_value(&fresh, k, was.data, why, sizeof(why)))
				abort();
		}
	}
	strbuf_free(&was);
	strbuf_free(&now);
	*next = fresh;
	return true;
}

void config_free(struct ods_config *c)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (keys[i].type == KEY_STRING || keys[i].type == KEY_LIST)
			free(*(char **)(void *)((char *)c + keys[i].offset));
	memset(c, 0, sizeof(*c));
}

const char *config_key(size_t i)
{
	return i < NKEYS ? keys[i].name : NULL;
}

bool config_key_reloadable(const char *key)
{
	const struct key *k = find_key(key);

	return k && k->reloadable;
}

bool config_dump(const struct ods_config *c, FILE *f)
{
	struct strbuf line;

	strbuf_init(&line);
	for (size_t i = 0; i < NKEYS; i++) {
		strbuf_reset(&line);
		strbuf_addf(&line, "%s = ", keys[i].name);
		format_value(&line, c, &keys[i], true);
		strbuf_addc(&line, '\n');
		fputs(line.data, f);
	}
	strbuf_free(&line);
	return fflush(f) == 0 && !ferror(f);
}
