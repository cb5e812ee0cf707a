/*
 * ndjson: splits the source into lines, parses each with jansson (duplicate
 * keys rejected) and lays the values out in column order in a record_buf.
 */
#include "autoconfig.h"

#include "sync/ndjson.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NDJSON_BUFSIZE  (256 * 1024)
#define NDJSON_MAX_LINE (64 * 1024 * 1024)

struct ndjson_reader {
	struct source *src;
	char *buf;
	size_t pos, end;
	bool eof;
	long long line;
	struct strbuf cur; /* the line being assembled */
	char **cols;
	int ncols;
	struct record_buf rec;
};

struct ndjson_reader *ndjson_open(struct source *src)
{
	struct ndjson_reader *r = xcalloc(1, sizeof(*r));

	r->src = src;
	r->buf = xmalloc(NDJSON_BUFSIZE);
	strbuf_init(&r->cur);
	record_buf_init(&r->rec);
	return r;
}

void ndjson_close(struct ndjson_reader *r)
{
	if (!r)
		return;
	for (int i = 0; i < r->ncols; i++)
		free(r->cols[i]);
	free(r->cols);
	record_buf_free(&r->rec);
	strbuf_free(&r->cur);
	free(r->buf);
	free(r);
}

const char *const *ndjson_columns(const struct ndjson_reader *r, int *n)
{
	*n = r->ncols;
	return (const char *const *)r->cols;
}

/* Reads the next line into r->cur: 1 = a line, 0 = end, -1 = error. */
static int read_line(struct ndjson_reader *r, char *err, size_t errlen)
{
	strbuf_reset(&r->cur);
	for (;;) {
		if (r->pos == r->end) {
			if (r->eof)
				return r->cur.len > 0 ? 1 : 0;
			ssize_t n = source_read(r->src, r->buf, NDJSON_BUFSIZE, err, errlen);
			if (n < 0)
				return -1;
			if (n == 0) {
				r->eof = true;
				continue;
			}
			r->pos = 0;
			r->end = (size_t)n;
		}
		char *start = r->buf + r->pos;
		char *nl = memchr(start, '\n', r->end - r->pos);
		size_t take = nl ? (size_t)(nl - start) : r->end - r->pos;
		strbuf_add(&r->cur, start, take);
		r->pos += take + (nl ? 1 : 0);
		if (r->cur.len > NDJSON_MAX_LINE)
			return errf(err, errlen, "%s: line %lld: longer than 64 MiB",
			            source_path(r->src), r->line + 1),
			       -1;
		if (nl)
			return 1;
	}
}

static bool blank(const struct strbuf *sb)
{
	for (size_t i = 0; i < sb->len; i++)
		if (!strchr(" \t\r", sb->data[i]))
			return false;
	return true;
}

/* Shortest decimal text that reads back as exactly d. */
static void add_real(struct strbuf *sb, double d)
{
	char tmp[40];

	for (int prec = 1; prec <= 17; prec++) {
		snprintf(tmp, sizeof(tmp), "%.*g", prec, d);
		if (strtod(tmp, NULL) == d)
			break;
	}
	strbuf_adds(sb, tmp);
}

/* v as compact JSON; reals in their shortest form, as add_real (json_dumps
 * would print 0.1 as 0.10000000000000001). */
static void add_json(struct strbuf *sb, json_t *v)
{
	const char *key;
	json_t *e;
	char *s;
	bool first = true;

	switch (json_typeof(v)) {
	case JSON_OBJECT:
		strbuf_addc(sb, '{');
		json_object_foreach(v, key, e)
		{
			json_t *k = json_string_nocheck(key);
			s = json_dumps(k, JSON_ENCODE_ANY);
			strbuf_addf(sb, "%s%s:", first ? "" : ",", s);
			free(s);
			json_decref(k);
			add_json(sb, e);
			first = false;
		}
		strbuf_addc(sb, '}');
		break;
	case JSON_ARRAY:
		strbuf_addc(sb, '[');
		for (size_t i = 0; i < json_array_size(v); i++) {
			if (i)
				strbuf_addc(sb, ',');
			add_json(sb, json_array_get(v, i));
		}
		strbuf_addc(sb, ']');
		break;
	case JSON_REAL:
		add_real(sb, json_real_value(v));
		break;
	default:
		s = json_dumps(v, JSON_ENCODE_ANY);
		strbuf_adds(sb, s ? s : "null");
		free(s);
		break;
	}
}

static void add_value(struct record_buf *b, json_t *v)
{
	record_buf_begin_field(b, json_is_null(v));
	switch (json_typeof(v)) {
	case JSON_STRING:
		strbuf_add(&b->bytes, json_string_value(v), json_string_length(v));
		break;
	case JSON_INTEGER:
		strbuf_addf(&b->bytes, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		break;
	case JSON_REAL:
		add_real(&b->bytes, json_real_value(v));
		break;
	case JSON_TRUE:
		strbuf_adds(&b->bytes, "true");
		break;
	case JSON_FALSE:
		strbuf_adds(&b->bytes, "false");
		break;
	case JSON_NULL:
		break;
	case JSON_OBJECT:
	case JSON_ARRAY:
		add_json(&b->bytes, v);
		break;
	}
	record_buf_end_field(b);
}

/* Learns the columns from the first object. */
static void learn_columns(struct ndjson_reader *r, json_t *obj)
{
	const char *key;
	json_t *v;

	r->cols = xcalloc(json_object_size(obj) + 1, sizeof(*r->cols));
	json_object_foreach(obj, key, v)
	{
		(void)v;
		r->cols[r->ncols++] = xstrdup(key);
	}
}

/* Lays obj out in column order; false with err when its keys differ. */
static bool fill_record(struct ndjson_reader *r, json_t *obj, char *err, size_t errlen)
{
	const char *key;
	json_t *v;

	record_buf_reset(&r->rec);
	for (int i = 0; i < r->ncols; i++) {
		v = json_object_get(obj, r->cols[i]);
		if (!v)
			return errf(err, errlen,
			            "%s: line %lld, column %s: missing key (the first "
			            "record has it)",
			            source_path(r->src), r->line, r->cols[i]);
		add_value(&r->rec, v);
	}
	if (json_object_size(obj) != (size_t)r->ncols) {
		json_object_foreach(obj, key, v)
		{
			bool known = false;
			for (int i = 0; i < r->ncols && !known; i++)
				known = strcmp(r->cols[i], key) == 0;
			if (!known)
				return errf(err, errlen,
				            "%s: line %lld, column %s: unexpected key (the first "
				            "record "
				            "does not have it)",
				            source_path(r->src), r->line, key);
		}
	}
	return true;
}

int ndjson_next(struct ndjson_reader *r, struct record *rec, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *obj;
	int got;

	do {
		got = read_line(r, err, errlen);
		if (got <= 0)
			return got;
		r->line++;
	} while (blank(&r->cur));

	obj = json_loadb(r->cur.data, r->cur.len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
	if (!obj) {
		errf(err, errlen, "%s: line %lld, column %d: invalid JSON: %s", source_path(r->src),
		     r->line, jerr.column, jerr.text);
		return -1;
	}
	if (!json_is_object(obj)) {
		json_decref(obj);
		errf(err, errlen, "%s: line %lld: expected a JSON object", source_path(r->src),
		     r->line);
		return -1;
	}
	if (!r->cols)
		learn_columns(r, obj);
	bool ok = fill_record(r, obj, err, errlen);
	json_decref(obj);
	if (!ok)
		return -1;
	record_buf_publish(&r->rec, rec, r->line);
	return 1;
}
